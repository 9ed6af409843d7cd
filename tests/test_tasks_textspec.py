"""Tests for raw text as a task spec: ``load_tasks("notes.txt")`` and ``load_tasks("hf:PATH")``."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from latent_env.tasks import NoTasksError, TaskError, load_tasks, tasks_from_text
from tests.test_tasks_rawtext import PROSE, TEXT

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def notes(tmp_path: Path) -> Path:
    path = tmp_path / "notes.txt"
    path.write_text(TEXT, encoding="utf-8")
    return path


def test_a_text_file_becomes_tasks_with_the_documented_defaults(notes, tmp_path):
    tasks = load_tasks(notes)
    # Defaults: numbers mode, 8-word continuations, min_context_chars=200, max 4000.
    assert tasks == tasks_from_text(TEXT, id_prefix="notes")
    assert [t.answer for t in tasks] == ["3.5", "12", "1,200"]
    assert tasks[0].id == "notes/0000" and len(tasks[0].continuation.split()) == 8
    assert load_tasks(str(notes), split="train") == tasks  # a file is read whole
    md = tmp_path / "notes.md"
    md.write_text(TEXT, encoding="utf-8")
    assert [t.answer for t in load_tasks(md)] == ["3.5", "12", "1,200"]


def test_options_after_a_question_mark(notes):
    tasks = load_tasks(f"{notes}?min_context_chars=20&n_continuation_tokens=3&max_tasks=2")
    assert [t.answer for t in tasks] == ["1998", "1,200"]
    assert all(len(t.continuation.split()) == 3 for t in tasks)
    random = load_tasks(f"{notes}?mode=random&max_tasks=3&seed=4&min_context_chars=50")
    assert len(random) == 3 and all(t.meta["mode"] == "random" for t in random)
    assert random == load_tasks(f"{notes}?mode=random&max_tasks=3&seed=4&min_context_chars=50")
    assert random != load_tasks(f"{notes}?mode=random&max_tasks=3&seed=5&min_context_chars=50")


@pytest.mark.parametrize("suffix, message", [
    ("?mode=loss", 'mode "loss" needs a scoring model'),
    ("?mode=words", 'unknown mode "words" (choose from numbers, random)'),
    ("?colour=red", 'unknown option "colour" (options: mode, max_tasks,'),
    ("?max_tasks=many", "option max_tasks='many' must be a whole number >= 1"),
    ("?n_continuation_tokens=0", "n_continuation_tokens='0' must be a whole number >= 1"),
    ("?mode", 'options after "?" must be key=value pairs'),
])
def test_bad_options_are_named(notes, suffix, message):
    with pytest.raises(TaskError, match=f"^{notes}") as caught:
        load_tasks(f"{notes}{suffix}")
    assert message in str(caught.value)


def test_no_tasks_is_one_clear_error(tmp_path):
    prose = tmp_path / "prose.txt"
    prose.write_text(PROSE, encoding="utf-8")
    with pytest.raises(NoTasksError) as caught:
        load_tasks(prose)
    assert str(caught.value) == (
        f'{prose}: no tasks: the text has no number to split before (mode "numbers"; mode '
        f"\"random\" splits at any word); options change the cut: "
        f"'{prose}?mode=random&min_context_chars=N'")
    assert len(load_tasks(f"{prose}?mode=random")) == 1  # one per 100 words by default
    with pytest.raises(TaskError, match="no such text file"):
        load_tasks(tmp_path / "missing.txt")


def test_a_local_hf_dataset(tmp_path):
    datasets = pytest.importorskip("datasets")
    rows = {"body": [TEXT, PROSE, TEXT.replace("1,200", "1,900")]}
    datasets.Dataset.from_dict(rows).save_to_disk(str(tmp_path / "docs"))
    tasks = load_tasks(f"hf:{tmp_path / 'docs'}?text_field=body&max_documents=2")
    assert [t.id for t in tasks] == ["docs/0/0000", "docs/0/0001", "docs/0/0002"]
    everything = load_tasks(f"hf:{tmp_path / 'docs'}?text_field=body&max_tasks=1", split="train")
    assert [(t.id, t.answer) for t in everything] == [("docs/0/0000", "3.5"),
                                                      ("docs/2/0000", "3.5")]

    splits = {"train": datasets.Dataset.from_dict({"text": [TEXT]}),
              "test": datasets.Dataset.from_dict({"text": [PROSE]})}
    datasets.DatasetDict(splits).save_to_disk(str(tmp_path / "dd"))
    assert [t.answer for t in load_tasks(f"hf:{tmp_path / 'dd'}", split="train")] == [
        "3.5", "12", "1,200"]
    with pytest.raises(NoTasksError, match="no row gave a task .* '.*dd\\?mode=random"):
        load_tasks(f"hf:{tmp_path / 'dd'}", split="test")
    with pytest.raises(TaskError, match='no column "text"'):
        load_tasks(f"hf:{tmp_path / 'docs'}")
    with pytest.raises(TaskError, match="no such local dataset"):
        load_tasks(f"hf:{tmp_path / 'nowhere'}")


def run_tasks_cli(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(REPO), "HF_HUB_OFFLINE": "1"}
    return subprocess.run([sys.executable, "-m", "latent_env.tasks.cli", *args],
                          capture_output=True, text=True, env=env, timeout=120)


def test_cli_shows_text_and_hf_tasks_in_a_subprocess(notes, tmp_path):
    datasets = pytest.importorskip("datasets")
    datasets.Dataset.from_dict({"text": [TEXT]}).save_to_disk(str(tmp_path / "ds"))
    done = run_tasks_cli("show", str(notes), "--limit", "1")
    assert done.returncode == 0, done.stderr
    assert "notes/0000  [rawtext]" in done.stdout and "(1 of 3 tasks)" in done.stdout
    done = run_tasks_cli("show", f"hf:{tmp_path / 'ds'}?min_context_chars=20", "--limit", "0")
    assert done.returncode == 0, done.stderr
    assert "(0 of 6 tasks)" in done.stdout

    prose = tmp_path / "prose.txt"
    prose.write_text(PROSE, encoding="utf-8")
    bad = run_tasks_cli("show", str(prose))
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert bad.stderr.count("\n") == 1
    assert bad.stderr.startswith(f"latent-env tasks: error: {prose}: no tasks: the text has no")
