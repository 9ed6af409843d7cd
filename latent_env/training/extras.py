"""Optional packages a run asks for, checked before any work starts.

A missing one is a one-line error that names the extra to install, not a traceback from deep in
a Trainer's constructor minutes into the run.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Iterable
from typing import Any

#: ``--report_to`` integrations this project ships an extra for; others name their own package.
REPORTER_EXTRAS = {"wandb": "pip install 'latent-env[wandb]'"}
LORA_INSTALL = "pip install 'latent-env[lora]'"


def require_reporters(report_to: Iterable[str]) -> None:
    """Raise ``ValueError`` when a ``--report_to`` integration is not installed."""
    from transformers.integrations.integration_utils import (
        INTEGRATION_TO_CALLBACK,
        get_available_reporting_integrations,
    )

    available = set(get_available_reporting_integrations())
    for name in report_to:
        if name in ("none", "all") or name in available:
            continue
        if name not in INTEGRATION_TO_CALLBACK:
            raise ValueError(f"--report_to {name}: not a reporting integration; choose from "
                             f"{', '.join(sorted(INTEGRATION_TO_CALLBACK))} or none")
        hint = REPORTER_EXTRAS.get(name, f"pip install {name}")
        raise ValueError(f"--report_to {name}: {name} is not installed ({hint}), or drop it "
                         "from --report_to")


def require_peft(flag: str = "--lora_r") -> Any:
    """The ``peft`` module, or a ``ValueError`` whose one line says how to install it."""
    if importlib.util.find_spec("peft") is None:
        raise ValueError(f"{flag} needs peft, which is not installed: {LORA_INSTALL}")
    import peft

    return peft
