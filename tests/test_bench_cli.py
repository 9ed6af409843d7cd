"""Subprocess smoke tests of the CLI, and ``latent-env complete`` in process."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from latent_env.bench.complete import greedy_continuation
from latent_env.cli import main
from tests.test_agents import one_torch_thread  # noqa: F401 (autouse: one torch thread)

ROOT = Path(__file__).resolve().parents[1]
HANDMADE = ROOT / "tests" / "fixtures" / "handmade.jsonl"


def default_sigint() -> None:
    # A shell starts background jobs with SIGINT ignored, and Python then installs no Ctrl-C
    # handler; the CLI must see Ctrl-C as a user at a terminal does, however pytest was started.
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def run_cli(*args: str, cwd: Path = ROOT) -> subprocess.CompletedProcess:
    env = {**os.environ, "LATENT_ENV_THREADS": "1", "HF_HUB_OFFLINE": "1"}
    return subprocess.run(
        [sys.executable, "-m", "latent_env.cli", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        preexec_fn=default_sigint,
    )


@pytest.mark.parametrize(
    "command, expected",
    [
        ("bench", ["--policy SPEC", "--episodes", "--jobs", "--families", "(default: synthetic)",
                   "--no-oracle-by-kind", "--resume", "MODULE:CLASS or FILE.py:CLASS"]),
        ("complete", ["--max-new-tokens", "(default: hf:default)", "--policy SPEC"]),
        ("compare", ["RESULTS_JSON", "--baseline POLICY", "--out OUT"]),
    ],
)
def test_help(command, expected):
    done = run_cli(command, "--help")
    assert done.returncode == 0, done.stderr
    for text in expected:
        assert text in done.stdout


def test_tiny_bench_run_in_a_subprocess(tmp_path):
    done = run_cli(
        "bench",
        "--model",
        "tiny-random",
        "--policy",
        "none",
        "--policy",
        "oracle",
        "--tasks",
        str(HANDMADE),
        "--out",
        "tmp",
        "--jobs",
        "2",
        cwd=tmp_path,
    )
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "tmp" / "results.json").read_text())
    assert list(results["policies"]) == ["none", "oracle", "oracle by kind"]
    assert results["policies"]["none"]["mean_gain_nats"] == 0.0
    assert "latent-env bench: policies" in done.stdout and "oracle" in done.stdout
    assert "choice of latent kind" in done.stdout and results["choice"]["none"]["*"]["regret"] >= 0
    assert (tmp_path / "tmp" / "report.html").is_file()


def test_bench_on_a_text_file_in_a_subprocess(tmp_path):
    from tests.test_tasks_rawtext import PROSE, TEXT

    (tmp_path / "notes.txt").write_text(TEXT, encoding="utf-8")
    done = run_cli("bench", "--model", "tiny-random", "--policy", "none", "--no-oracle-by-kind",
                   "--tasks", "notes.txt?min_context_chars=20", "--out", "out", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["policies"]["none"]["episodes"] == 6  # one per number after 20 characters
    assert {e["task_id"] for e in results["episodes"]} == {f"notes/{i:04d}" for i in range(6)}

    (tmp_path / "prose.txt").write_text(PROSE, encoding="utf-8")
    bad = run_cli("bench", "--policy", "none", "--tasks", "prose.txt", cwd=tmp_path)
    assert bad.returncode == 2
    assert bad.stderr.strip().splitlines() == [
        "latent-env bench: error: prose.txt: no tasks: the text has no number to split before "
        '(mode "numbers"; mode "random" splits at any word); options change the cut: '
        "'prose.txt?mode=random&min_context_chars=N'"
    ]


def test_a_user_mistake_in_a_subprocess_is_one_line(tmp_path):
    done = run_cli("bench", "--policy", "nonsense", "--tasks", str(HANDMADE), cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "latent-env bench: error: unknown policy 'nonsense'; SPEC is one of: none, random, "
        "oracle, hf:PATH_OR_ID, openai:BASE_URL#MODEL, tree:BASE_SPEC, MODULE:CLASS, "
        "FILE.py:CLASS"
    ]


INTERRUPTER = """\
import os
import signal
from pathlib import Path

HERE = Path(__file__).parent


class Interrupter:
    \"\"\"Writes nothing; its first process presses Ctrl-C during its second batch.\"\"\"

    def __init__(self):
        self.calls = 0

    def act_batch(self, observations, tasks=None):
        self.calls += 1
        with open(HERE / "calls.log", "a") as log:
            log.write(f"{os.getpid()} {len(observations)}\\n")
        if self.calls == 2 and not (HERE / "pressed").exists():
            (HERE / "pressed").touch()
            os.kill(os.getpid(), signal.SIGINT)
        return ["" for _ in observations]

    def reset(self, seed=None):
        self.calls = 0

    def get_state(self):
        return {"calls": self.calls}

    def set_state(self, state):
        self.calls = state["calls"]
"""


def test_ctrl_c_keeps_finished_work_and_resume_finishes_it(tmp_path):
    (tmp_path / "mine.py").write_text(INTERRUPTER)
    args = ("bench", "--model", "tiny-random", "--policy", "none", "--policy",
            "mine.py:Interrupter", "--tasks", str(HANDMADE), "--out", "out", "--jobs", "3",
            "--no-oracle-by-kind")
    done = run_cli(*args, cwd=tmp_path)
    assert done.returncode == 130, done.stderr
    assert "interrupted: 1 of 2 runs finished" in done.stderr
    assert "--resume" in done.stderr.splitlines()[-1]
    kept = json.loads((tmp_path / "out" / "results.json").read_text())
    assert kept["complete"] is False and list(kept["policies"]) == ["none"]

    done = run_cli(*args, "--resume", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["complete"] is True
    assert [s["episodes"] for s in results["policies"].values()] == [7, 7]
    calls = [line.split() for line in (tmp_path / "calls.log").read_text().splitlines()]
    first_pid = calls[0][0]
    # Batch 1 was saved; batch 2 was in flight, so the resumed process runs batches 2 and 3.
    assert [n for pid, n in calls if pid != first_pid] == ["3", "1"]
    assert not (tmp_path / "out" / "checkpoint").exists()


def test_a_policy_file_with_no_such_class_is_one_line(tmp_path):
    (tmp_path / "mine.py").write_text(INTERRUPTER)
    done = run_cli("bench", "--policy", "mine.py:Interupter", "--tasks", str(HANDMADE),
                   cwd=tmp_path)
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [
        "latent-env bench: error: mine.py:Interupter: mine.py has no class 'Interupter' "
        "(policy classes there: Interrupter)"
    ]


def test_complete_prints_latent_tools_and_both_continuations(capsys, tiny):
    text = "Tom has 12 apples and buys 30 more. Now he has"
    # Seed 2: the random policy writes two <calc> blocks for this text.
    code = main(
        [
            "complete",
            text,
            "--policy",
            "random",
            "--model",
            "tiny-random",
            "--max-new-tokens",
            "5",
            "--tools",
            "calc",
            "--seed",
            "2",
            "--json",
        ]
    )
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    assert len(result["tools"]) == 2
    for call in result["tools"]:
        assert call["tag"] == "calc" and call["status"] == "ok"
        assert f"<output>{call['output']}</output>" in result["latent"]
    model, tokenizer = tiny
    assert result["continuation_without_latent"] == greedy_continuation(model, tokenizer, text, 5)
    latent_context = f"<|latent|>{result['latent']}<|latent|>{text}"
    assert result["continuation_with_latent"] == greedy_continuation(
        model, tokenizer, latent_context, 5
    )


def test_complete_text_output(capsys):
    code = main(
        [
            "complete",
            "One plus one is",
            "--policy",
            "none",
            "--model",
            "tiny-random",
            "--max-new-tokens",
            "3",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "(empty latent)" in out and "continuation given c(X, L)" in out
    assert "continuation given X alone" in out


def test_complete_with_model_self_writes_and_predicts_with_one_model(capsys, tiny):
    text = "Tom has 12 apples and buys 30 more. Now he has"
    code = main(["complete", text, "--policy", "hf:tiny-random?max_new_tokens=6", "--model",
                 "self", "--max-new-tokens", "4", "--json"])
    assert code == 0
    result = json.loads(capsys.readouterr().out)
    model, tokenizer = tiny
    assert result["continuation_without_latent"] == greedy_continuation(model, tokenizer, text, 4)
    code = main(["complete", text, "--policy", "none", "--model", "self"])
    assert code == 2
    assert "--model self needs an hf: policy" in capsys.readouterr().err


def test_complete_with_the_oracle_explains_why_not(capsys):
    code = main(["complete", "Some text", "--policy", "oracle", "--model", "tiny-random"])
    assert code == 1
    assert "the oracle needs the tasks" in capsys.readouterr().err
