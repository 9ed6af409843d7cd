"""The capped print collector of the policy layer: what ``print`` in model code writes to.

Re-exported by :mod:`.guards`, where the other runtime pieces of the policy layer live.
"""

from __future__ import annotations

from typing import Any


class OutputLimitExceeded(BaseException):
    """Printing went past the cap. A BaseException so ``except Exception`` does not swallow it;
    a bare ``except:`` can, so the buffer also remembers that the cap was hit."""


class OutputBuffer:
    """Collects one run's printed text up to ``cap`` characters."""

    __slots__ = ("_parts", "_size", "_cap", "exceeded")

    def __init__(self, cap: int) -> None:
        self._parts: list[str] = []
        self._size = 0
        self._cap = cap
        self.exceeded = False

    def write(self, text: str) -> int:
        """File protocol for ``print``; raises OutputLimitExceeded past the cap."""
        room = self._cap - self._size
        if self.exceeded or len(text) > room:
            if not self.exceeded:
                self._parts.append(text[:room])
                self._size = self._cap
                self.exceeded = True
            raise OutputLimitExceeded(f"printed output exceeded {self._cap} characters")
        self._parts.append(text)
        self._size += len(text)
        return len(text)

    def flush(self) -> None:
        """File protocol; nothing to flush."""

    def getvalue(self) -> str:
        """Everything printed so far."""
        return "".join(self._parts)

    def collector(self, _getattr: Any = None) -> PrintCollector:
        """RestrictedPython's ``_print_`` factory, called once per function that prints."""
        return PrintCollector(self)


class PrintCollector:
    """The object behind ``print`` in compiled model code; all scopes share one buffer."""

    __slots__ = ("_buffer",)

    def __init__(self, buffer: OutputBuffer) -> None:
        self._buffer = buffer

    def _call_print(
        self,
        *objects: Any,
        sep: str | None = " ",
        end: str | None = "\n",
        file: Any = None,
        flush: bool = False,
    ) -> None:
        if file is not None:
            raise TypeError("print(file=...) is not supported in the sandbox")
        print(*objects, sep=sep, end=end, file=self._buffer)

    def __call__(self) -> str:
        return self._buffer.getvalue()
