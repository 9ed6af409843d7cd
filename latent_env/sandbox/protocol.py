"""Length-prefixed JSON frames between the pool and its workers.

A frame is a 4-byte big-endian length followed by that many bytes of UTF-8 JSON holding one
object. JSON rather than pickle because worker replies are untrusted: decoding them must not be
able to run code. Both sides cap frame sizes before reading a body, and the parent validates the
schema of every reply (:func:`validate_reply`); any violation kills the worker.
"""

from __future__ import annotations

import json
import os
import select
import struct
import time
from typing import Any

from .result import WORKER_STATUSES

HEADER = struct.Struct(">I")
_READ_CHUNK = 1 << 16


class ProtocolError(Exception):
    """A frame was oversized, truncated, not JSON, or had the wrong shape."""


class FrameTimeout(Exception):
    """No complete frame arrived before the deadline."""


def encode_frame(message: dict[str, Any]) -> bytes:
    """Serialise one message as a frame."""
    body = json.dumps(message, ensure_ascii=False, separators=(",", ":")).encode("utf-8")
    return HEADER.pack(len(body)) + body


def decode_body(body: bytes) -> dict[str, Any]:
    """Parse a frame body into a dict, or raise :class:`ProtocolError`."""
    try:
        message = json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise ProtocolError(f"malformed frame: {type(exc).__name__}") from None
    if not isinstance(message, dict):
        raise ProtocolError("frame is not a JSON object")
    return message


def write_all(fd: int, data: bytes, deadline: float | None = None) -> None:
    """Write every byte to ``fd``; with a deadline the fd must be non-blocking."""
    view = memoryview(data)
    while view:
        if deadline is not None:
            _wait(fd, select.POLLOUT, deadline)
        try:
            written = os.write(fd, view)
        except BlockingIOError:
            continue
        view = view[written:]


def read_frame(fd: int, max_bytes: int, deadline: float | None = None) -> dict[str, Any] | None:
    """Read one frame from ``fd``; None on a clean end of stream before any byte.

    Raises :class:`ProtocolError` for oversized, truncated or malformed frames and
    :class:`FrameTimeout` when ``deadline`` (a ``time.monotonic()`` value) passes first.
    """
    header = _read_exact(fd, HEADER.size, deadline, allow_eof=True)
    if header is None:
        return None
    (length,) = HEADER.unpack(header)
    if length > max_bytes:
        raise ProtocolError(f"frame of {length} bytes exceeds the {max_bytes}-byte cap")
    body = _read_exact(fd, length, deadline, allow_eof=False)
    assert body is not None
    return decode_body(body)


def _read_exact(fd: int, size: int, deadline: float | None, *, allow_eof: bool) -> bytes | None:
    chunks: list[bytes] = []
    remaining = size
    while remaining:
        if deadline is not None:
            _wait(fd, select.POLLIN, deadline)
        try:
            chunk = os.read(fd, min(remaining, _READ_CHUNK))
        except BlockingIOError:
            continue
        if not chunk:
            if allow_eof and remaining == size:
                return None
            raise ProtocolError("stream ended inside a frame")
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def _wait(fd: int, event: int, deadline: float) -> None:
    """Block until ``fd`` is ready for ``event`` (or hung up), or raise FrameTimeout."""
    poller = select.poll()
    poller.register(fd, event)
    while True:
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise FrameTimeout()
        # Round up so a short remainder does not turn into a busy loop of 0 ms polls.
        if poller.poll(max(1, int(remaining * 1000 + 0.999))):
            return


def validate_reply(
    message: dict[str, Any],
    *,
    request_id: int,
    max_output_chars: int,
    max_value_chars: int,
    max_error_chars: int,
) -> dict[str, Any]:
    """Check a worker's reply to run ``request_id`` field by field; return it if sound.

    A compromised worker could claim anything, so the parent accepts only the exact keys, the
    statuses a worker may report, and strings within the configured sizes.
    """
    expected = {"id", "status", "stdout", "value", "error"}
    if set(message) != expected:
        raise ProtocolError(f"reply has keys {sorted(message)!r}, expected {sorted(expected)!r}")
    if type(message["id"]) is not int or message["id"] != request_id:
        raise ProtocolError("reply answers a different request")
    if message["status"] not in WORKER_STATUSES:
        raise ProtocolError(f"reply has invalid status {str(message['status'])[:40]!r}")
    _check_text(message, "stdout", max_output_chars, optional=False)
    _check_text(message, "value", max_value_chars, optional=True)
    _check_text(message, "error", max_error_chars, optional=True)
    if (message["status"] == "ok") != (message["error"] is None):
        raise ProtocolError("reply status and error disagree")
    return message


def validate_compile_reply(
    message: dict[str, Any], *, request_id: int, max_program_chars: int, max_error_chars: int
) -> dict[str, Any]:
    """Check the compiler's reply to ``request_id``: "ok" with a base64 program (None when too
    large to ship) or "compile_error" with an error line."""
    expected = {"id", "status", "program", "error"}
    if set(message) != expected:
        raise ProtocolError(f"reply has keys {sorted(message)!r}, expected {sorted(expected)!r}")
    if type(message["id"]) is not int or message["id"] != request_id:
        raise ProtocolError("reply answers a different request")
    if message["status"] == "ok":
        _check_text(message, "program", max_program_chars, optional=True)
        if message["error"] is not None:
            raise ProtocolError("reply status and error disagree")
    elif message["status"] == "compile_error":
        _check_text(message, "error", max_error_chars, optional=False)
        if message["program"] is not None:
            raise ProtocolError("a compile error carries no program")
    else:
        raise ProtocolError(f"reply has invalid status {str(message['status'])[:40]!r}")
    return message


def _check_text(message: dict[str, Any], key: str, cap: int, *, optional: bool) -> None:
    value = message[key]
    if value is None and optional:
        return
    if type(value) is not str:
        raise ProtocolError(f"reply field {key!r} is not a string")
    if len(value) > cap:
        raise ProtocolError(f"reply field {key!r} exceeds {cap} characters")
