"""Task sources for latent-env: what the policy reads (context X) and must predict (Y).

Task format
-----------
Task files are JSONL, one JSON object per line::

    {"id": "synthetic/test/average/0000",
     "context": "The names of the students are John, Mary, and Peter. ... Their average age is",
     "continuation": " 16 years old.",
     "answer": "16",
     "program": "from statistics import mean\\n...\\nprint(average_age)",
     "family": "average",
     "difficulty": 1, "template": "average/intro", "split": "test", "suite": "synthetic"}

``id``, ``context`` and ``continuation`` (non-empty) are required strings; ``answer`` (the bare
value the continuation starts with), ``program`` (gold Python whose printed output is the
answer), ``reason`` (gold reasoning text, written as ``<reason>…</reason>``) and ``family`` are
optional strings; every other key is kept in :attr:`Task.meta`.
Blank lines are skipped; a malformed line or a duplicate id raises :class:`TaskFormatError`
naming ``file:line``. The context never ends in whitespace; the continuation starts with it.

Synthetic families (``FAMILIES``; ``generate(rng, difficulty) -> Task``, difficulty 1..3)
-----------------------------------------------------------------------------------------
``average``       mean of people's ages, scores, heights, ... (integer, or one decimal at 3)
``sum_diff``      running totals in stories, shop stock, comparisons, sums of holdings
``multi_step``    boxes x items x price, seats left, packs + loose, change, rates, bill split
``percent``       share of a group, sale price, saving, growth, test score, price drop, tip
``unit_convert``  exact km/m, h/min, kg/g, ft/in, ... conversions, compound and two-step
``date_arith``    end dates, weekdays, day spans, ages, clock times (programs use datetime)
``count_items``   things packed, outcomes in a list, letters in words, guests, words
``sequence``      next term of arithmetic, geometric, quadratic, Fibonacci-like sequences
``trend``         linear extrapolation of yearly/monthly values with noise (np.polyfit)
``order``         who is oldest / tallest / first from comparisons spread through a story
``where_now``     where a thing is after several moves (gold: a ``reason``, no program)
``prose``         a word boundary in the bundled Python docs (no gold: the best latent is none)
``text_numbers``  the position before a number in the bundled Python docs (no gold either)

Each family mixes several surface templates (``meta["template"]``), names and units.

Suites (``make_suite``, ``load_tasks``, ``load_split``, ``list_suites``)
----------------------------------------------------------------------
``founding`` (the founding example, one test task), ``synthetic-small`` (4 per family and
split) and ``synthetic`` (train 200 / validation 20 / test 25 per family). Splits never share
a context: each context is owned by one split through a hash (see :mod:`.suites`).
A single task file has no splits of its own: :func:`load_split` splits it by each task's
``"split"`` field, or without one by that same hash (:func:`split_task_file`).

Other sources: :func:`tasks_from_text` / :func:`tasks_from_file` /
:func:`tasks_from_hf_dataset` cut raw text at numbers, random words or high-loss positions
(no task: a :class:`NoTasksWarning` naming why); :func:`load_tasks` takes a ``.txt``/``.md``
file or ``hf:PATH`` (a local dataset) as well, with ``?key=value`` options (:mod:`.textspec`);
:func:`tasks_from_reasoning_gym` adapts the optional reasoning-gym package.
:func:`corpus_tasks` cuts tasks from the passages of a corpus (:func:`read_texts`, or the
bundled Python docs, :func:`bundled_documents`) that one split owns (:mod:`.corpus`).
"""

from latent_env.tasks.corpus import (
    Passage,
    bundled_documents,
    corpus_passages,
    corpus_tasks,
    passages,
    read_texts,
)
from latent_env.tasks.families import DIFFICULTIES, FAMILIES, generate_task
from latent_env.tasks.jsonl import load_jsonl, write_jsonl
from latent_env.tasks.rawtext import (
    NoTasksError,
    NoTasksWarning,
    tasks_from_file,
    tasks_from_hf_dataset,
    tasks_from_text,
)
from latent_env.tasks.reasoning_gym import tasks_from_reasoning_gym
from latent_env.tasks.suites import (
    FOUNDING_TASK,
    SPLITS,
    SUITES,
    Suite,
    context_key,
    list_suites,
    load_split,
    load_tasks,
    make_suite,
    split_of,
    split_task_file,
    task_file,
)
from latent_env.tasks.task import Task, TaskError, TaskFormatError

__all__ = [
    "DIFFICULTIES", "FAMILIES", "FOUNDING_TASK", "NoTasksError", "NoTasksWarning", "SPLITS",
    "SUITES", "Suite", "Task",
    "TaskError", "TaskFormatError", "context_key", "generate_task", "list_suites",
    "load_jsonl", "load_split", "load_tasks", "make_suite", "split_of", "split_task_file",
    "task_file", "tasks_from_file",
    "tasks_from_hf_dataset", "tasks_from_reasoning_gym", "tasks_from_text", "write_jsonl",
    "Passage", "bundled_documents", "corpus_passages", "corpus_tasks", "passages", "read_texts",
]
