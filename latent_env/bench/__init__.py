"""Benchmarking policies: :func:`run_bench` (``latent-env bench``) and ``latent-env complete``.

    from latent_env.bench import run_bench

    results = run_bench(["none", "oracle", "hf:default"], tasks="synthetic", out="bench-out")

* :mod:`.episodes` picks the tasks a benchmark walks (families, per-family cap, episode count).
* :mod:`.runner` runs one policy over them through :class:`~latent_env.vector.LatentVectorEnv`.
* :mod:`.stats` turns per-episode records into summaries with bootstrap intervals.
* :mod:`.choice` measures the choice of latent kind against the oracle by kind.
* :mod:`.table`, :mod:`.plots` and :mod:`.report` show them: terminal, PNG, HTML.
* :mod:`.run` is :func:`run_bench`, the whole benchmark, kept in :mod:`.checkpoint` as it goes
  and written by :mod:`.results`.
* :mod:`.cli` wires ``latent-env bench`` to it; :mod:`.complete` is ``latent-env complete``.
"""

from latent_env.bench.run import run_bench

__all__ = ["run_bench"]
