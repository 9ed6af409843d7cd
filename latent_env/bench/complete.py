"""``latent-env complete "TEXT"``: the founding document's inference mode, on any text.

The policy reads TEXT (in the environment's prompt) and writes latent data; its tool blocks run
with the environment's tools; then the scorer model continues TEXT greedily twice — after
c(TEXT, L) and after TEXT alone — so the effect of the latent is visible side by side.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from latent_env.bench.cli import HelpFormatter, add_prompt_argument
from latent_env.bench.common import DEFAULT_TOOLS, BenchUsageError, load_scorer, load_tool_set
from latent_env.context import COMBINERS


def add_complete_subparser(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "complete",
        help="write latent data for a text, then continue it with and without the latent",
        description=(
            "Run the policy's latent generation on TEXT (tool blocks executed), then continue "
            "TEXT greedily with the scorer model given c(TEXT, L) and given TEXT alone."
        ),
        formatter_class=HelpFormatter,
    )
    parser.add_argument("text", help="the text to continue")
    parser.add_argument("--policy", default="hf:default", metavar="SPEC",
                        help="policy that writes the latent (not oracle: it needs a task)")
    parser.add_argument("--model", default="default",
                        help="scorer/continuation model; self: the hf: policy's own model, "
                             "which then both writes the latent and predicts the text (a "
                             "self-predicting checkpoint, train_rl.py --predictor self)")
    parser.add_argument("--max-new-tokens", type=int, default=20,
                        help="length of each continuation")
    parser.add_argument("--tools", default=DEFAULT_TOOLS, help="comma-separated tools")
    parser.add_argument("--combiner", default="prefix", choices=sorted(COMBINERS),
                        help="how c(TEXT, L) is formed")
    add_prompt_argument(parser)
    parser.add_argument("--seed", type=int, default=0, help="seeds the policy")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(func=run_complete)


def greedy_continuation(model: Any, tokenizer: Any, context: str, max_new_tokens: int) -> str:
    """Greedy continuation of ``context``, tokenised as the scorer does (start token + text)."""
    import torch

    from latent_env.tokens import pad_token_id, start_token_id

    ids = [start_token_id(tokenizer)] + (tokenizer(context, add_special_tokens=False).input_ids if context else [])
    input_ids = torch.tensor([ids], dtype=torch.long)
    pad = pad_token_id(tokenizer)
    with torch.inference_mode():
        out = model.generate(input_ids=input_ids, attention_mask=torch.ones_like(input_ids),
                             max_new_tokens=max_new_tokens, do_sample=False, pad_token_id=pad)
    return tokenizer.decode(out[0, len(ids) :], skip_special_tokens=True)


def run_complete(args: argparse.Namespace) -> int:
    """The ``complete`` command: prints latent, tool outputs and both continuations."""
    from latent_env.agents import PolicyError, make_policy
    from latent_env.engine import EpisodeEngine
    from latent_env.prompt import render_prompt

    if args.max_new_tokens < 1:
        raise BenchUsageError(f"--max-new-tokens must be at least 1, got {args.max_new_tokens}")
    tools = load_tool_set(args.tools)
    checked = make_policy(args.policy, tools=tools)  # a bad SPEC fails before the model loads
    model_spec = args.model
    if model_spec == "self":
        model_spec = getattr(checked, "model_spec", None)
        if model_spec is None:
            raise BenchUsageError(f"--model self needs an hf: policy, whose model writes the "
                                  f"latent and predicts the text; got --policy {args.policy}")
    scorer = load_scorer(model_spec, args.combiner)
    policy = make_policy(args.policy, tools=tools,
                         shared_models={model_spec: (scorer.model, scorer.tokenizer)})
    policy.reset(args.seed)
    # The policy reads exactly what the environment would show it (the same template).
    observation = render_prompt(args.prompt, args.text, tools)
    try:
        action = policy.act_batch([observation])[0]
        latent = EpisodeEngine(tools).latents([action])[0]
    except PolicyError as exc:
        print(f"latent-env complete: error: {exc}", file=sys.stderr)
        return 1
    finally:
        for tool in tools.values():
            tool.close()
    model, tokenizer = scorer.model, scorer.tokenizer
    with_latent = greedy_continuation(
        model, tokenizer, scorer.combiner(args.text, latent.text), args.max_new_tokens)
    without_latent = greedy_continuation(model, tokenizer, args.text, args.max_new_tokens)
    result = {
        "text": args.text, "policy": args.policy, "action": action, "latent": latent.text,
        "tools": [{"tag": c.tag, "code": c.text, "status": c.output.status,
                   "output": c.output.output} for c in latent.calls],
        "continuation_with_latent": with_latent,
        "continuation_without_latent": without_latent,
    }
    _print(result, as_json=args.json)
    return 0


def _print(result: dict[str, Any], as_json: bool) -> None:
    if as_json:
        json.dump(result, sys.stdout, indent=2, ensure_ascii=False)
        print()
        return
    from rich.console import Console
    from rich.panel import Panel
    from rich.text import Text

    console = Console()
    console.print(Panel(Text(result["action"] or "(nothing)"), title="policy output"))
    console.print(Panel(Text(result["latent"] or "(empty latent)"), title="latent data L"))
    for call in result["tools"]:
        console.print(Panel(Text(f"{call['code']}\n→ {call['output']}"),
                            title=f"<{call['tag']}> {call['status']}"))
    text = result["text"]
    console.print(Panel(Text(text) + Text(result["continuation_with_latent"], style="green"),
                        title="continuation given c(X, L)"))
    console.print(Panel(Text(text) + Text(result["continuation_without_latent"], style="yellow"),
                        title="continuation given X alone"))
