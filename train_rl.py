"""Train a policy to write latent data: supervised stages, then RL on the environment's reward.

    python train_rl.py                      # the default CPU pipeline on SmolLM2-135M (see README)
    python train_rl.py --preset smoke       # every stage on a tiny model, under two minutes
    python train_rl.py --algo rloo --stages sft,rl --run_dir runs/rloo
    python train_rl.py --resume             # continue the newest run in runs/ after a kill
    python train_rl.py --preset smoke --print_config   # the resolved configuration, then exit
    accelerate launch --multi_gpu --num_processes 2 train_rl.py --preset smoke

Presets live in latent_env/training/presets/*.yaml; any flag overrides them, and every option of the
chosen TRL trainer (GRPOConfig, RLOOConfig, PPOConfig) is accepted too. ``--help`` shows the
defaults of the chosen ``--preset`` and ``--algo``.
"""

from __future__ import annotations

import json
import os
import sys
import tempfile
from collections.abc import Sequence

os.environ.setdefault("TRL_EXPERIMENTAL_SILENCE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

EXIT_USAGE = 2


def flag_value(argv: Sequence[str], name: str, default: str) -> str:
    """The value of ``--name X`` or ``--name=X`` in argv (last one wins), before full parsing."""
    value = default
    for i, arg in enumerate(argv):
        if arg == f"--{name}" and i + 1 < len(argv):
            value = argv[i + 1]
        elif arg.startswith(f"--{name}="):
            value = arg.split("=", 1)[1]
    return value


def preset_values(preset: str, algo: str) -> dict:
    """A preset's ``common`` and ``<algo>`` sections, flattened (``<algo>`` wins)."""
    import yaml

    from latent_env.training.config import PRESET_DIR, available_presets

    path = PRESET_DIR / f"{preset}.yaml"
    if not path.is_file():
        raise ValueError(f"unknown preset '{preset}'; choose one of {', '.join(available_presets())}")
    sections = yaml.safe_load(path.read_text()) or {}
    values = {**sections.get("common", {}), **sections.get(algo, {}), "preset": preset}
    if "use_cpu" not in values:
        # The one place the device is chosen: the accelerator where there is one. On the CPU,
        # TRL's use_cpu also picks gloo for `accelerate launch --multi_gpu` there.
        import torch

        values["use_cpu"] = not torch.cuda.is_available()
    return values


def preset_config_file(preset: str, algo: str) -> str:
    """:func:`preset_values` as a TrlParser config file (the caller deletes it)."""
    import yaml

    handle = tempfile.NamedTemporaryFile("w", suffix=".yaml", delete=False)
    with handle:
        yaml.safe_dump(preset_values(preset, algo), handle)
    return handle.name


def parse(argv: Sequence[str]):
    from trl import TrlParser

    from latent_env.training.algos import config_class
    from latent_env.training.config import (
        EvalArguments,
        LatentArguments,
        LoraArguments,
        PipelineArguments,
        RLArguments,
        SFTArguments,
        available_presets,
    )

    algo = flag_value(argv, "algo", "grpo")
    preset = flag_value(argv, "preset", "default")
    parser = TrlParser(
        (PipelineArguments, SFTArguments, LatentArguments, EvalArguments, RLArguments,
         LoraArguments, config_class(algo)),
        description=__doc__.split("\n\n")[0],
        epilog=f"presets: {', '.join(available_presets())} (latent_env/training/presets/)",
    )
    if any(a in ("-h", "--help") for a in argv):
        # Show what this preset runs with, not the dataclasses' and TRL's own defaults.
        parser.set_defaults(**preset_values(preset, algo))
        parser.description += f" Defaults shown: --preset {preset} --algo {algo}."
        parser.print_help()
        sys.exit(0)
    config = preset_config_file(preset, algo)
    try:
        return parser.parse_args_and_config(["--config", config, *argv])
    finally:
        os.unlink(config)


def run_flags(argv: Sequence[str]) -> list[str]:
    """The flags that define a run: ``argv`` less ``--resume`` and ``--run_dir``."""
    out, skip = [], False
    for i, arg in enumerate(argv):
        if skip:
            skip = False
        elif arg in ("--resume", "--run_dir"):
            following = argv[i + 1] if i + 1 < len(argv) else ""
            skip = arg == "--run_dir" or following.lower() in ("true", "false", "1", "0")
        elif not arg.startswith(("--resume=", "--run_dir=")):
            out.append(arg)
    return out


def resumed_argv(argv: Sequence[str]) -> list[str]:
    """With ``--resume``: the flags the run was started with, then those given now (which win),
    so ``train_rl.py --resume`` goes on with the run's own preset and options."""
    from latent_env.training.checkpoints import RunState
    from latent_env.training.run_context import is_main_process, resolve_run_dir

    if not any(a == "--resume" or a.startswith("--resume=") for a in argv):
        return list(argv)
    run_dir = resolve_run_dir(flag_value(argv, "run_dir", ""), resume=True)
    saved = RunState(run_dir).data.get("flags")
    if saved is None:  # a run from before flags were recorded: what is given now
        return list(argv)
    now = run_flags(argv)
    if is_main_process():
            print(f"resuming {run_dir} with its flags: {' '.join(saved) or '(none)'}"
              + (f"; then {' '.join(now)}" if now else ""))
    return [*saved, *argv, "--run_dir", str(run_dir)]


def main(argv: Sequence[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    try:
        argv = resumed_argv(argv)
        pipeline, sft, latent, evaluation, rl, lora, trl_config = parse(argv)
        from latent_env.training.pipeline import build_context, run_pipeline
        from latent_env.training.run_context import StageError, is_main_process, resolved_config

        if pipeline.print_config:
            config = resolved_config(pipeline, sft, latent, evaluation, rl, trl_config, lora)
            print(json.dumps(config, indent=2, default=str))
            return 0
        ctx = build_context(pipeline, sft, latent, evaluation, trl_config, rl, lora,
                            flags=run_flags(argv))
    except (ValueError, FileNotFoundError) as exc:
        print(f"train_rl.py: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    try:
        metrics = run_pipeline(ctx)
    except StageError as exc:
        print(f"train_rl.py: error: {exc}", file=sys.stderr)
        return 1
    if is_main_process():
        written = ["metrics.json", "config.json", "eval/"]
        print(f"run directory: {ctx.run_dir}  "
              f"({', '.join(w for w in written if (ctx.run_dir / w).exists())})")
    return 0 if metrics else 1


if __name__ == "__main__":
    sys.exit(main())
