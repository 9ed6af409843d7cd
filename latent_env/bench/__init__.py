"""Benchmarking policies: ``latent-env bench`` and ``latent-env complete``.

* :mod:`.episodes` picks the tasks a benchmark walks (families, per-family cap, episode count).
* :mod:`.runner` runs one policy over them through :class:`~latent_env.vector.LatentVectorEnv`.
* :mod:`.stats` turns per-episode records into summaries with bootstrap intervals.
* :mod:`.choice` measures the choice of latent kind against the oracle by kind.
* :mod:`.table`, :mod:`.plots` and :mod:`.report` show them: terminal, PNG, HTML.
* :mod:`.cli` wires ``latent-env bench``; :mod:`.complete` is ``latent-env complete``.
"""
