"""The `latent-env` command line, as a user runs it (subprocess)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

ENV = {**os.environ, "HF_HUB_OFFLINE": "1", "LATENT_ENV_THREADS": "1"}


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "latent_env.cli", *args], env=ENV,
                          capture_output=True, text=True, timeout=300)


def test_help_lists_every_command():
    out = cli("--help")
    assert out.returncode == 0
    for command in ("score", "tasks", "bench", "complete"):
        assert command in out.stdout


def test_version():
    import latent_env

    out = cli("--version")
    assert (out.returncode, out.stdout.strip()) == (0, f"latent-env {latent_env.__version__}")


def test_score_runs_the_latent_and_reports_the_gain_as_json():
    out = cli("score", "Tom has 12 apples and buys 7 more. Now he has", " 19", "--run",
              "--latent", "<python>print(12 + 7)</python>", "--model", "tiny-random", "--json")
    assert out.returncode == 0, out.stderr
    payload = json.loads(out.stdout)
    assert payload["latent"] == "<python>print(12 + 7)</python><output>19</output>"
    assert payload["tokens"] == [" ", "1", "9"]
    gain = payload["logp_with_latent"] - payload["logp_without_latent"]
    assert abs(payload["gain_nats"] - gain) < 1e-9


def test_score_table_output():
    out = cli("score", "A", " b", "--model", "tiny-random")
    assert out.returncode == 0 and "total" in out.stdout and "gain" in out.stdout


def test_a_user_mistake_is_one_line_and_exit_2(tmp_path):
    out = cli("score", "A", " b", "--model", str(tmp_path / "missing"))
    assert out.returncode == 2
    assert out.stderr.strip().count("\n") == 0 and "does not exist" in out.stderr
