"""``openai:BASE_URL#MODEL``: any OpenAI-compatible chat server (vLLM, llama.cpp, Ollama, …).

Each observation is sent as the user message to ``POST {BASE_URL}/chat/completions`` with the
standard library's ``urllib`` (no extra dependency). Requests run concurrently in a small thread
pool; each has a timeout, and timeouts, connection failures, 429 and 5xx answers are retried a
bounded number of times with exponential backoff. A request that still fails raises
:class:`~latent_env.agents.base.PolicyError` naming the URL and the HTTP status.

The API key, if the server needs one, comes from ``$OPENAI_API_KEY`` (never from the spec, so it
does not end up in ``results.json``).
"""

from __future__ import annotations

import json
import os
import time
import urllib.error
import urllib.request
from collections.abc import Collection, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from latent_env.agents.base import PolicyError, PolicySpecError
from latent_env.agents.spec import typed_options

from latent_env.actions import DONE_TOKEN
from latent_env.tasks import Task

RETRY_STATUSES = frozenset({408, 429, 500, 502, 503, 504})
MAX_ERROR_BODY = 200
OPENAI_OPTIONS = {"temperature": float, "max_tokens": int, "timeout": float, "retries": int,
                  "backoff": float, "concurrency": int}


class _Retryable(Exception):
    """A failure worth another attempt; the message is the last one's description."""


class OpenAIPolicy:
    """Chat-completions client as a policy.

    Args:
        base_url: e.g. ``http://127.0.0.1:8000/v1`` (``/chat/completions`` is appended).
        model: the ``model`` field of the request.
        temperature, max_tokens: passed to the server (greedy by default).
        timeout: seconds per request attempt.
        retries: extra attempts after a retryable failure (so ``retries + 1`` in all).
        backoff: seconds before the first retry; doubled each time.
        concurrency: requests in flight at once.
    """

    def __init__(
        self,
        base_url: str,
        model: str,
        temperature: float = 0.0,
        max_tokens: int = 256,
        timeout: float = 60.0,
        retries: int = 2,
        backoff: float = 0.5,
        concurrency: int = 4,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise PolicySpecError(f"openai:{base_url}: the base URL must start with http(s)://")
        if not model:
            raise PolicySpecError(f"openai:{base_url}: name the model after '#'")
        if timeout <= 0 or retries < 0 or backoff < 0 or concurrency < 1:
            raise PolicySpecError(f"openai:{base_url}#{model}: timeout, retries, backoff and "
                                  "concurrency must be positive (retries, backoff may be 0)")
        self.url = base_url.rstrip("/") + "/chat/completions"
        self.model = model
        self.name = f"openai:{base_url}#{model}"
        self.temperature, self.max_tokens = temperature, max_tokens
        self.timeout, self.retries, self.backoff = timeout, retries, backoff
        self.concurrency = concurrency
        self.seed: int | None = None

    @classmethod
    def from_spec(
        cls,
        target: str,
        options: Mapping[str, Any],
        *,
        tools: Mapping[str, Any] | Collection[str] | None = None,
        shared_models: Mapping[str, tuple[Any, Any]] | None = None,
    ) -> OpenAIPolicy:
        """``openai:BASE_URL#MODEL?options``."""
        base_url, sep, model = target.rpartition("#")
        if not sep:
            raise PolicySpecError(f"openai:{target}: expected openai:BASE_URL#MODEL")
        return cls(base_url, model, **typed_options("openai", options, OPENAI_OPTIONS))

    def reset(self, seed: int | None = None) -> None:
        """Servers that honour ``seed`` get it with every request."""
        self.seed = seed

    def get_state(self) -> dict[str, Any]:
        """Nothing beyond the seed ``reset`` sets: every request carries the same one."""
        return {}

    def set_state(self, state: Mapping[str, Any]) -> None:
        """Nothing to restore (see :meth:`get_state`)."""

    def act_batch(self, observations: list[str], tasks: list[Task] | None = None) -> list[str]:
        if len(observations) <= 1 or self.concurrency == 1:
            return [self.complete(obs) for obs in observations]
        with ThreadPoolExecutor(min(self.concurrency, len(observations))) as pool:
            return list(pool.map(self.complete, observations))

    def complete(self, observation: str) -> str:
        """The server's reply to one observation, retried as configured."""
        body = json.dumps(self._request_body(observation)).encode("utf-8")
        failure = ""
        for attempt in range(self.retries + 1):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1))
            try:
                return self._post(body)
            except _Retryable as exc:
                failure = str(exc)
        attempts = self.retries + 1
        raise PolicyError(f"POST {self.url} failed after {attempts} attempt"
                          f"{'s' if attempts > 1 else ''}: {failure}")

    def _request_body(self, observation: str) -> dict[str, Any]:
        body: dict[str, Any] = {
            "model": self.model,
            "messages": [{"role": "user", "content": observation}],
            "temperature": self.temperature,
            "max_tokens": self.max_tokens,
            "stop": [DONE_TOKEN],
        }
        if self.seed is not None:
            body["seed"] = self.seed
        return body

    def _post(self, body: bytes) -> str:
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        key = os.environ.get("OPENAI_API_KEY")
        if key:
            headers["Authorization"] = f"Bearer {key}"
        request = urllib.request.Request(self.url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            detail = _error_detail(exc)
            message = f"HTTP {exc.code} {exc.reason}{detail}"
            if exc.code in RETRY_STATUSES:
                raise _Retryable(message) from None
            raise PolicyError(f"POST {self.url} failed: {message}") from None
        except TimeoutError:
            raise _Retryable(f"no answer within the {self.timeout:g} s timeout") from None
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, TimeoutError):
                raise _Retryable(f"no answer within the {self.timeout:g} s timeout") from None
            raise _Retryable(f"could not connect ({exc.reason})") from None
        except (ConnectionError, OSError) as exc:
            raise _Retryable(f"connection failed ({exc})") from None
        return self._parse(payload)

    def _parse(self, payload: bytes) -> str:
        try:
            data = json.loads(payload)
            content = data["choices"][0]["message"]["content"]
        except (ValueError, KeyError, IndexError, TypeError):
            snippet = payload[:MAX_ERROR_BODY].decode("utf-8", "replace")
            raise PolicyError(
                f"POST {self.url}: the answer is not a chat completion: {snippet!r}"
            ) from None
        return content if isinstance(content, str) else ""


def _error_detail(exc: urllib.error.HTTPError) -> str:
    """A short piece of the error body (servers put the reason there)."""
    try:
        text = exc.read(MAX_ERROR_BODY).decode("utf-8", "replace").strip()
    except OSError:
        return ""
    return f": {' '.join(text.split())}" if text else ""
