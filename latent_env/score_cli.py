"""``latent-env score``: how much does a latent raise the log-likelihood of a continuation?"""

from __future__ import annotations

import argparse
import json
import sys

from latent_env.context import COMBINERS


def add_score_subparser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "score",
        help="score a continuation with and without a latent",
        description=(
            "Print log p(continuation | context), log p(continuation | c(context, latent)) and "
            "their difference (the gain, in nats), with per-token values."
        ),
        formatter_class=argparse.ArgumentDefaultsHelpFormatter,
    )
    parser.add_argument("context", help="the text prefix X")
    parser.add_argument("continuation", help="the true continuation Y (mind its leading space)")
    parser.add_argument("--latent", default="", help="latent data L, e.g. '<python>…</python>"
                        "<output>…</output>'; empty means no latent")
    parser.add_argument("--run", action="store_true",
                        help="execute the latent's tool blocks in the sandbox first and append "
                        "their outputs (otherwise the latent is used verbatim)")
    parser.add_argument("--model", default="default", help="model spec: default, tiny-random, "
                        "a local path or a HF id")
    parser.add_argument("--combiner", default="prefix", choices=sorted(COMBINERS),
                        help="how c(X, L) is formed")
    parser.add_argument("--json", action="store_true", help="print JSON instead of a table")
    parser.set_defaults(func=run_score)


def run_score(args: argparse.Namespace) -> int:
    from latent_env.models import load_model
    from latent_env.scoring import LogLikScorer

    latent = args.latent
    if args.run and latent:
        from latent_env.engine import EpisodeEngine
        from latent_env.tools.registry import load_tools

        engine = EpisodeEngine(load_tools())
        try:
            latent = engine.latents([latent])[0].text
        finally:
            engine.close()
    model, tokenizer = load_model(args.model, device="auto")
    scorer = LogLikScorer(model, tokenizer, combiner=args.combiner)
    result = scorer.gain([args.context], [latent], [args.continuation])[0]
    if args.json:
        payload = {
            "latent": latent,
            "logp_without_latent": result.baseline.total,
            "logp_with_latent": result.enriched.total,
            "gain_nats": result.gain,
            "tokens": [tokenizer.convert_tokens_to_string([t]) for t in result.baseline.tokens],
            "token_logprobs_without": result.baseline.token_logprobs,
            "token_logprobs_with": result.enriched.token_logprobs,
        }
        json.dump(payload, sys.stdout, indent=2)
        print()
        return 0
    _print_table(result, latent, tokenizer)
    return 0


def _print_table(result, latent: str, tokenizer) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if latent:
        console.print("[bold]latent[/bold]", latent, markup=True, highlight=False)
    table = Table(title="log-likelihood of the continuation (nats)")
    table.add_column("token")
    table.add_column("without latent", justify="right")
    table.add_column("with latent", justify="right")
    table.add_column("gain", justify="right")
    for token, base, rich_lp in zip(
        result.baseline.tokens, result.baseline.token_logprobs, result.enriched.token_logprobs
    ):
        text = tokenizer.convert_tokens_to_string([token])
        table.add_row(repr(text), f"{base:.3f}", f"{rich_lp:.3f}", f"{rich_lp - base:+.3f}")
    table.add_row(
        "[bold]total[/bold]",
        f"{result.baseline.total:.3f}",
        f"{result.enriched.total:.3f}",
        f"[bold]{result.gain:+.3f}[/bold]",
    )
    console.print(table)
