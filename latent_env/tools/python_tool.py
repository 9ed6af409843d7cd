"""``<python>`` blocks: model-written code run in the sandbox's isolated worker pool."""

from __future__ import annotations

from collections.abc import Sequence

from latent_env.tools.base import Tool, ToolOutput, clip_output


class PythonTool(Tool):
    """Runs the block as Python in :mod:`latent_env.sandbox`; the output is what it printed.

    When nothing is printed, the value of the last expression (or of a ``result`` variable) is
    shown instead. Errors become one readable line, ``Error: ZeroDivisionError: division by zero``.
    """

    name = "python"
    tag = "python"
    description = "Python 3 code, run in a sandbox; its printed output is shown."

    def __init__(self, sandbox=None) -> None:
        self._sandbox = sandbox

    @property
    def sandbox(self):
        if self._sandbox is None:
            from latent_env.sandbox import get_default_sandbox

            self._sandbox = get_default_sandbox()
        return self._sandbox

    def run(self, text: str) -> ToolOutput:
        return self.run_batch([text])[0]

    def run_batch(self, texts: Sequence[str]) -> list[ToolOutput]:
        results = self.sandbox.run_many(list(texts))
        return [self._to_output(r) for r in results]

    @staticmethod
    def _to_output(result) -> ToolOutput:
        if result.status == "ok":
            shown = result.stdout.strip()
            if not shown and result.value is not None:
                shown = str(result.value)
            return ToolOutput("ok", clip_output(shown), None, result.duration_s)
        error = result.error or result.status
        printed = (result.stdout or "").strip()
        shown = f"{printed}\nError: {error}" if printed else f"Error: {error}"
        return ToolOutput(result.status, clip_output(shown), error, result.duration_s)
