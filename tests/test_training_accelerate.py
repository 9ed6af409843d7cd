"""The shipped accelerate configs: read by accelerate itself, sized by the machine at launch."""
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CONFIGS = ROOT / "latent_env" / "training" / "accelerate"
GPU_CONFIGS = ["deepspeed_zero2.yaml", "fsdp.yaml"]


def _load(name: str):
    from accelerate.commands.config.config_args import load_config_from_file

    return load_config_from_file(str(CONFIGS / name))


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("*.yaml")))
def test_every_config_loads_through_accelerate(name):
    config = _load(name)
    assert config.num_machines == 1 and config.machine_rank == 0


@pytest.mark.parametrize("name", GPU_CONFIGS)
def test_gpu_configs_leave_the_process_count_to_the_machine(name):
    # -1 is accelerate's "not set": a fixed count would launch 8 ranks on a 2-GPU box.
    assert _load(name).num_processes == -1


def test_the_cpu_config_runs_two_processes():
    config = _load("cpu_2proc.yaml")
    assert config.num_processes == 2 and config.use_cpu


def _documented_launches(name: str) -> list[tuple[str, str]]:
    """(file, command) for every `accelerate launch --config_file …name` in the docs and presets,
    with the comment line that continues it, if any."""
    command = re.compile(rf"accelerate launch --config_file \S*{re.escape(name)}[^\n]*"
                         r"(\n#?\s+--[^\n]*)?")
    files = [ROOT / "README.md", CONFIGS / name, *(ROOT / "latent_env/training/presets").glob("*.yaml")]
    return [(path.name, m.group(0)) for path in files for m in command.finditer(path.read_text())]


@pytest.mark.parametrize("name", GPU_CONFIGS)
def test_every_documented_gpu_launch_passes_the_process_count(name):
    launches = _documented_launches(name)
    assert launches, f"no documented launch uses {name}"
    for path, command in launches:
        assert "--num_processes" in command, f"{path}: {command}"


@pytest.mark.slow
def test_launching_a_gpu_config_without_a_count_says_what_to_pass():
    accelerate = Path(sys.executable).with_name("accelerate")
    out = subprocess.run([str(accelerate), "launch", "--config_file", str(CONFIGS / "fsdp.yaml"),
                          "train_rl.py", "--help"],
                         cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert out.returncode != 0
    assert "You need to manually pass in `--num_processes`" in out.stderr
