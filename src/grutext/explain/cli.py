"""`grutext explain` and `grutext report`: thin commands over :mod:`grutext.explain`."""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from grutext.explain.core import METHODS


def cmd_explain(args: argparse.Namespace) -> int:
    """Explain one prediction: token importance (integrated gradients, occlusion or attention) and
    the GRU's gates per token; for language models, the surprisal of each token and the gates along
    the prompt (and --generate N tokens). Writes a self-contained HTML page and/or a PNG heat map.

    example: grutext explain runs/sst2 "a gorgeous , witty film" --html out.html --png out.png
    """
    from grutext.artifact import load_model
    from grutext.explain import explain, explain_lm, render_html, render_png

    loaded = load_model(args.model, member=args.member)
    if loaded.kind == "classifier":
        ex = explain(loaded, args.text, method=args.method, target=args.target, steps=args.steps)
    else:
        ex = explain_lm(loaded, args.text, generate=args.generate, temperature=args.temperature, seed=args.seed)
    if args.json:
        print(json.dumps(ex.to_dict()))
    else:
        print(ex.summary())
    if args.png:
        render_png(ex, args.png)
        print(f"wrote {args.png}")
    if args.html:
        render_html(ex, args.html)
        print(f"wrote {args.html}")
    return 0


def cmd_report(args: argparse.Namespace) -> int:
    """Write one HTML page about a trained model: epoch trace, curves, scores, per-class metrics,
    confusion matrix, the most confident validation mistakes with explanations, the model summary
    and the run's configuration."""
    from grutext.explain.report import training_report

    path = training_report(
        args.model, out=args.out, data=args.data, mistakes=args.mistakes, method=args.method, member=args.member
    )
    print(f"wrote {path}")
    return 0


def register_cli(sub: Any, add: Callable[[str, Callable[[argparse.Namespace], int]], argparse.ArgumentParser]) -> None:
    """Add the `explain` and `report` subcommands (called by `grutext.cli`)."""
    p = add("explain", cmd_explain)
    p.add_argument("model", help="model directory")
    p.add_argument("text", help="the text to explain (the prompt, for a language model)")
    p.add_argument("--html", metavar="FILE", help="write a self-contained HTML page")
    p.add_argument("--png", metavar="FILE", help="write a PNG heat map (needs matplotlib)")
    p.add_argument("--method", choices=METHODS, default="ig", help="token importance method (default: ig)")
    p.add_argument("--target", default=None, help="class to explain (default: the predicted class)")
    p.add_argument("--steps", type=int, default=48, help="integrated-gradients steps (default: 48)")
    p.add_argument("--generate", type=int, default=0, help="language models: generate N tokens after the prompt")
    p.add_argument("--temperature", type=float, default=0.0, help="language models: 0 = greedy (default)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed")
    p.add_argument("--json", action="store_true", help="print the explanation as JSON")
    p.add_argument(
        "--member",
        type=int,
        default=None,
        metavar="K",
        help="an ensemble (model.ensemble > 1): explain its member K (0-based)",
    )

    p = add("report", cmd_report)
    p.add_argument("model", help="model directory")
    p.add_argument("--out", default=None, help="HTML file (default: MODEL_DIR/report.html)")
    p.add_argument("--data", default=None, help="labelled file for the mistakes (default: the run's validation split)")
    p.add_argument("--mistakes", type=int, default=5, help="how many confident mistakes to explain (default: 5)")
    p.add_argument("--method", choices=METHODS, default="ig", help="importance method for the mistakes")
    p.add_argument(
        "--member",
        type=int,
        default=0,
        metavar="K",
        help="an ensemble: explain the mistakes through its member K (default: 0)",
    )
