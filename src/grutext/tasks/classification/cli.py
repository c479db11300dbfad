"""The classification task's part of the `grutext` command: training, evaluation and
explanation of classifiers, and the terminal report (per-class scores, confusions).

The shared commands (grutext.cli) reach this module through grutext.cli.dispatch. Top-level
imports stay light (no torch): the report printing is imported by the pipeline too.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any, TextIO

from grutext.config import Config
from grutext.safeio import dumps
from grutext.train.metrics import (  # the confusion printing lives with the metrics (training prints it too)
    MAX_MATRIX_CLASSES,
    TOP_CONFUSIONS,
    format_confusions,
    format_per_class,
    top_confusions,
)


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """A classifier needs no flags beyond the shared [data] [model] [train] ones."""


def reject_train_flags(args: argparse.Namespace) -> None:
    """Nothing to reject: every classifier flag is a shared config flag."""


def train(cfg: Config, args: argparse.Namespace) -> int:
    """`grutext train` for classifiers."""
    from grutext.data.prepared import is_prepared
    from grutext.tasks.classification.train import train_classifier

    if cfg.data.train and is_prepared(cfg.data.train):  # asked for on the command line: an error, not a note
        from grutext.tasks.classification.prepared import prepared_config

        asked = {"model.blend", "train.baseline"}
        prepared_config(cfg, {key for key in asked if getattr(args, key, None) is not None})
    train_classifier(cfg, resume=args.resume)
    return 0


def evaluate(loaded: Any, args: argparse.Namespace) -> int:
    """`grutext evaluate MODEL DATA` for classifiers: the report (or JSON)."""
    from grutext.data.readers import load_named, read_dataset
    from grutext.tasks.classification.data import _is_named
    from grutext.tasks.classification.evaluate import evaluate_classifier

    if _is_named(args.data) and not Path(args.data).exists():
        parts = load_named(args.data)
        ds = parts.get(args.split) or next(iter(parts.values()))
    else:
        ds = read_dataset(args.data, fmt=args.format, text_col=args.text_col, label_col=args.label_col)
    rep = evaluate_classifier(loaded, ds)
    if getattr(args, "baseline", None) is not False:
        rep["baseline"] = evaluate_baseline(loaded, ds, getattr(args, "baseline_train", None))
    if args.json:
        print(dumps(rep, what="evaluate --json"))
    else:
        print_report(rep)
    return 0


def _stored_training_split(loaded: Any) -> Any:
    """The training split the model's config.json names, re-read with its seed; None, with a note, when a
    stored path lies outside the model folder (never followed) or cannot be read here."""
    from grutext.data.named import is_named
    from grutext.data.prepared import is_prepared
    from grutext.errors import GrutextError
    from grutext.safeio import inside
    from grutext.tasks.classification.baseline import NAME
    from grutext.tasks.classification.data import load_splits

    cfg = loaded.config
    folder = Path(getattr(loaded, "path", None) or ".")
    if cfg.data.train and is_prepared(cfg.data.train):
        print(
            f"baseline {NAME}: skipped: the model was trained on the prepared corpus {cfg.data.train} (token ids, "
            "no texts to fit TF-IDF on); pass --baseline-train FILE (or --no-baseline)",
            file=sys.stderr,
        )
        return None
    for field in ("train", "valid", "test"):
        stored = getattr(cfg.data, field)
        if stored and not is_named(stored) and not inside(stored, folder):
            print(
                f"baseline {NAME}: skipped: the model's {field} data {stored} lies outside its folder, and paths "
                "stored in a model folder are not followed; pass --baseline-train FILE (or --no-baseline)",
                file=sys.stderr,
            )
            return None
    if not cfg.data.train:
        print(
            f"baseline {NAME}: skipped: the model records no training data (saved from Python); "
            "--no-baseline silences this",
            file=sys.stderr,
        )
        return None
    try:
        splits = load_splits(cfg.data, seed=cfg.train.seed)
    except (GrutextError, OSError) as exc:
        print(
            f"baseline {NAME}: skipped: its training data {cfg.data.train} cannot be read here ({exc}); "
            "--no-baseline silences this",
            file=sys.stderr,
        )
        return None
    return splits.train


def evaluate_baseline(loaded: Any, ds: Any, train_file: str | None = None) -> dict[str, Any] | None:
    """The TF-IDF + logistic regression baseline refitted on the model's own training split (read again
    from its config.json's [data] with its seed, so the same split) or on `train_file` (named by the
    user), and scored on `ds`. A model folder is untrusted input: the data paths its config names are
    followed only when they are named datasets or resolve inside the folder. None, with a note on
    stderr, when the training data cannot be read here."""
    from grutext.tasks.classification.baseline import NAME, SETTINGS, Baseline

    cfg = loaded.config
    if train_file is not None:  # named by the user: fitted on the whole file, as given
        from grutext.data.readers import read_dataset

        train = read_dataset(train_file, fmt=cfg.data.format, text_col=cfg.data.text_col, label_col=cfg.data.label_col)
    else:
        train = _stored_training_split(loaded)
        if train is None:
            return None
    b = Baseline(cfg.model.task, loaded.labels).fit(train)
    return {
        "name": NAME,
        "settings": dict(SETTINGS, one_vs_rest=b.multilabel),
        "train_examples": len(train),
        "data": b.scores(ds),
        "seconds": round(b.seconds, 3),
    }


def explain(loaded: Any, args: argparse.Namespace) -> Any:
    """`grutext explain` for classifiers: token importance and gates of one prediction."""
    from grutext.explain import explain as explain_prediction

    return explain_prediction(loaded, args.text, method=args.method, target=args.target, steps=args.steps)


def add_predict_arguments(p: argparse.ArgumentParser) -> None:
    """A classifier needs no flags beyond the shared predict ones."""


def predict(args: argparse.Namespace) -> int:
    """`grutext predict CLASSIFIER ...`: the label and the top probabilities per text (or JSON)."""
    from grutext.cli.predict import read_inputs
    from grutext.infer.predict import Predictor

    predictor = Predictor.load(args.model)
    for row in predictor.predict(read_inputs(args)):
        if args.json:
            print(dumps(row, what="predict --json", ensure_ascii=False))
        else:
            top = sorted(row["probabilities"].items(), key=lambda kv: -kv[1])[:3]
            label = row.get("label", ",".join(row.get("labels", [])))
            print(f"{label:<14} {'  '.join(f'{k}={v:.3f}' for k, v in top)}  | {row['text'][:70]}")
    return 0


def print_report(rep: dict[str, Any], stream: TextIO | None = None) -> None:
    """Accuracy, macro-F1 and loss, the per-class table and the confusions of a classifier report."""
    stream = stream or sys.stdout
    print(
        f"accuracy {rep['accuracy']:.4f}  macro-F1 {rep['macro_f1']:.4f}  loss {rep.get('loss', float('nan')):.4f}"
        f"  (n={rep['n']:,})",
        file=stream,
    )
    print(format_per_class(rep), file=stream)
    if "confusion_matrix" in rep:
        print(format_confusions(rep["confusion_matrix"], rep["labels"]), file=stream)
    if rep.get("baseline"):
        from grutext.tasks.classification.baseline import comparison_line

        print(comparison_line(rep["baseline"], rep, "data"), file=stream)


__all__ = [
    "MAX_MATRIX_CLASSES",
    "TOP_CONFUSIONS",
    "add_predict_arguments",
    "predict",
    "evaluate",
    "explain",
    "format_confusions",
    "print_report",
    "top_confusions",
    "train",
]
