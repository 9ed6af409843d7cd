"""Module-level plugin tools for the IsolatedTool tests: a spawned worker imports them by name."""

from __future__ import annotations

import os
import time

from latent_env.tools import IsolatedTool, ToolOutput


class Sleepy(IsolatedTool):
    """``<sleepy>SECONDS</sleepy>``: sleeps, then prints its worker's pid."""

    tag = "sleepy"
    timeout_s = 0.5

    def run(self, text: str) -> ToolOutput:
        if text == "exit":
            os._exit(3)
        if text == "raise":
            raise RuntimeError("plugin bug")
        time.sleep(float(text))
        return ToolOutput("ok", str(os.getpid()))
