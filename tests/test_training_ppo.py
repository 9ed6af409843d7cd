"""PPO (``--algo ppo``): it needs trl 1.12.x, the last TRL with PPOTrainer (the ppo extra).

Marked ``ppo``: `make test-ppo` runs them in .venv-ppo (requirements/ppo.txt) as the second step
of `.ci/run`, and fails if that venv has no PPO. Without PPO, `--algo ppo` must exit with one line
that names the install command: the last test checks that under the main lock's TRL.
"""

from __future__ import annotations

import importlib.util

import pytest

from tests.test_train_rl import run_smoke_rl_stage, run_train

HAS_PPO = importlib.util.find_spec("trl.experimental.ppo") is not None


@pytest.mark.ppo
def test_the_ppo_configuration_has_trl_with_ppo():
    import trl

    assert HAS_PPO, f"trl {trl.__version__} has no trl.experimental.ppo: use requirements/ppo.txt"
    assert trl.__version__.startswith("1.12.")


@pytest.mark.ppo
@pytest.mark.slow
def test_ppo_runs_a_smoke_rl_stage(tmp_path):
    run_smoke_rl_stage(tmp_path / "ppo", "ppo")


@pytest.mark.ppo
def test_ppo_rejects_the_supervised_anchor_with_a_fix(tmp_path):
    out = run_train("--preset", "smoke", "--algo", "ppo", "--rl_sft_anchor", "1",
                    "--run_dir", str(tmp_path / "ppo"), timeout=120)
    assert out.returncode == 2 and "--rl_sft_anchor works with --algo grpo or rloo" in out.stderr


def test_ppo_on_a_trl_without_it_is_one_line_naming_the_install(monkeypatch):
    import sys

    from latent_env.training.algos import PPO_INSTALL, config_class

    monkeypatch.setitem(sys.modules, "trl.experimental.ppo", None)  # import fails, as in 1.13+
    with pytest.raises(ValueError, match="removed it in 1.13") as raised:
        config_class("ppo")
    assert PPO_INSTALL in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.skipif(HAS_PPO, reason="this trl has PPO; the ppo tests above cover it")
def test_train_rl_with_ppo_on_the_main_lock_exits_2_with_the_install_line(tmp_path):
    out = run_train("--preset", "smoke", "--algo", "ppo", "--run_dir", str(tmp_path), timeout=120)
    assert out.returncode == 2
    lines = out.stderr.strip().splitlines()
    assert len(lines) == 1 and "pip install 'latent-env[ppo]'" in lines[0], out.stderr
    assert lines[0].startswith("train_rl.py: error: --algo ppo needs TRL's PPOTrainer")
