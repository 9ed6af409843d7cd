"""Policy classes the registry and bench tests load by ``MODULE:CLASS`` or entry point."""

from __future__ import annotations

from typing import Any


class Echo:
    """Writes ``<reason>`` blocks made of ``word`` (typed options: str, int, bool)."""

    def __init__(self, word: str = "x", repeat: int = 1, loud: bool = False) -> None:
        self.word, self.repeat, self.loud = word, repeat, loud

    def act_batch(self, observations: list[str], tasks: Any = None) -> list[str]:
        text = " ".join([self.word.upper() if self.loud else self.word] * self.repeat)
        return [f"<reason>{text}</reason>" for _ in observations]

    def reset(self, seed: int | None = None) -> None:
        pass


class WithTools(Echo):
    """Receives the environment's tools because its constructor has a ``tools`` parameter."""

    def __init__(self, tools: Any = None, word: str = "x") -> None:
        super().__init__(word)
        self.tools = tools


class NeedsLevel(Echo):
    def __init__(self, level: int) -> None:
        super().__init__(str(level))


class BrokenInit(Echo):
    def __init__(self) -> None:
        raise RuntimeError("no GPU here")


class NotAPolicy:
    """Acts, but cannot be reset: not a policy."""

    def act_batch(self, observations: list[str], tasks: Any = None) -> list[str]:
        return ["" for _ in observations]


def not_a_class(observations: list[str]) -> list[str]:
    return ["" for _ in observations]
