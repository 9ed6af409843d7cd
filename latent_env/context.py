"""c(X, L): how latent data L is combined with the raw text X into the context the model reads.

The founding document defines ``c(X, L) = '<|latent|>' + L + '<|latent|>' + X``; that is the
default here. Other combiners are registered by name and can be passed wherever a combiner is
accepted (the environment, the scorer, the benchmark CLI). A combiner is any callable
``(context: str, latent: str) -> str``.

An empty (or whitespace-only) latent always means "no latent data": every combiner returns X
unchanged, so a policy that writes nothing earns a gain of exactly zero.
"""

from __future__ import annotations

from collections.abc import Callable

LATENT_DELIMITER = "<|latent|>"

Combiner = Callable[[str, str], str]


def prefix_combiner(context: str, latent: str) -> str:
    """The founding document's form: ``<|latent|>L<|latent|>X``."""
    if not latent.strip():
        return context
    return f"{LATENT_DELIMITER}{latent}{LATENT_DELIMITER}{context}"


def prefix_newline_combiner(context: str, latent: str) -> str:
    """Like :func:`prefix_combiner`, with the latent block on its own lines."""
    if not latent.strip():
        return context
    return f"{LATENT_DELIMITER}\n{latent.strip()}\n{LATENT_DELIMITER}\n{context}"


def suffix_note_combiner(context: str, latent: str) -> str:
    """Latent data as a note right before the text (for models that ignore distant prefixes)."""
    if not latent.strip():
        return context
    return f"Note: {latent.strip()}\n\n{context}"


COMBINERS: dict[str, Combiner] = {
    "prefix": prefix_combiner,
    "prefix_newline": prefix_newline_combiner,
    "note": suffix_note_combiner,
}


def get_combiner(spec: str | Combiner | None = None) -> Combiner:
    """Resolve a combiner by name (see ``COMBINERS``) or return a callable unchanged."""
    if spec is None:
        return prefix_combiner
    if callable(spec):
        return spec
    try:
        return COMBINERS[spec]
    except KeyError:
        known = ", ".join(sorted(COMBINERS))
        raise ValueError(f"unknown combiner '{spec}'; choose one of: {known}") from None
