"""One run of an experiment, trained through the task's public training function, and the latency pass.

`python -m grutext.experiments.worker` reads one run's spec (JSON) on stdin, trains it into its model
folder and writes the folder's `run.json` (the run's figures, peak resident memory of this process
included); with `--latency` it reads a list of model folders and times single predictions, round-robin
over them. The runner starts one such process per run, so each run's memory and threads are its own.
"""

from __future__ import annotations

import argparse
import importlib
import json
import math
import os
import resource
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from grutext.config import Config

RUN_FILE = "run.json"  # in each run's model folder: written last, so its presence means the run is finished
LATENCY_TOKENS = 50


def metric_of(kind: str, scores: dict[str, Any] | None) -> tuple[str, float | None]:
    """The headline metric of a task's score dict: accuracy (classifier), perplexity or bits per character
    (language model), chunk F1 else token accuracy (tagger)."""
    if kind == "classifier":
        name = "accuracy"
    elif kind == "language_model":
        name = "perplexity" if scores is None or "perplexity" in scores else "bpc"
    else:
        name = "f1" if scores is not None and "f1" in scores else "accuracy"
    if scores is None or scores.get(name) is None:
        return name, None
    return name, float(scores[name])


HIGHER_IS_BETTER = {"accuracy": True, "f1": True, "perplexity": False, "bpc": False}
SCALE = {"accuracy": 100.0, "f1": 100.0, "perplexity": 1.0, "bpc": 1.0}  # accuracy and F1 shown in points


def _finite(x: Any) -> float | None:
    return float(x) if x is not None and math.isfinite(float(x)) else None


def _curve(history: list[dict[str, Any]], metric: str) -> list[float | None]:
    """The validation metric of each epoch (the task's `val_<metric>` column)."""
    return [_finite(row.get(f"val_{metric}")) for row in history]


def write_json_atomic(path: Path, data: Any) -> None:
    """Write JSON (no NaN/Infinity) to a temporary sibling and rename it into place."""
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    tmp.write_text(json.dumps(data, indent=1, allow_nan=False) + "\n", encoding="utf-8")
    os.replace(tmp, path)


def train_run(spec: dict[str, Any]) -> dict[str, Any]:
    """Train one run as `spec` says (through the task's public training function) and write its `run.json`.

    spec: kind, config (a Config dict with train.seed and train.out set), extra (the task's own table),
    threads, split_seed, point, label, values, seed (1-based).
    """
    import torch

    from grutext.config import Config
    from grutext.experiments.matching import trainable_parameters
    from grutext.experiments.plan import TASK_RUNS
    from grutext.train.run import checkpoint_folder

    torch.set_num_threads(int(spec["threads"]))
    kind = spec["kind"]
    task = TASK_RUNS[kind]
    cfg = Config.from_dict(spec["config"], source=f"run {spec['point']}-seed{spec['seed']}")
    out = Path(cfg.train.out or "")
    resume = (checkpoint_folder(out) / "state.json").is_file()  # an interrupted run continues from its last epoch
    train_fn = getattr(importlib.import_module(task.module), task.function)
    warm_up([cfg.model.cell])  # a first build of the cell's C++ loop happens here, not in the timed training
    t0 = time.perf_counter()
    result, valid, test = _train(kind, train_fn, cfg, spec, resume)
    wall = time.perf_counter() - t0
    metric, valid_value = metric_of(kind, valid)
    _, test_value = metric_of(kind, test)
    weights = out / "model.safetensors"
    record = {
        "point": spec["point"],
        "label": spec["label"],
        "values": spec["values"],
        "seed": spec["seed"],
        "train_seed": cfg.train.seed,
        "kind": kind,
        "cell": result.config.model.cell,
        "hidden_size": result.config.model.hidden_size,
        "params": trainable_parameters(result.model),
        "metric": metric,
        "valid": _finite(valid_value),
        "test": _finite(test_value),
        **_fit_figures(result.fit),
        "size_bytes": weights.stat().st_size if weights.is_file() else None,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0,  # Linux: KiB
        "wall_seconds": wall,
        "threads": int(spec["threads"]),
        "curve": _curve(result.fit.history, metric),
        "resumed": resume,
    }
    write_json_atomic(out / RUN_FILE, record)
    return record


def _train(
    kind: str, train_fn: Callable[..., Any], cfg: Config, spec: dict[str, Any], resume: bool
) -> tuple[Any, dict[str, Any] | None, dict[str, Any] | None]:
    """Train `cfg` with the task's training function; returns its result and the validation and test scores."""
    if kind == "classifier":
        from grutext.tasks.classification.data import load_splits

        splits = load_splits(cfg.data, seed=int(spec["split_seed"]))  # one split for every run
        result = train_fn(cfg, splits=splits, resume=resume, progress=False)
        return result, result.valid_report, result.test_report
    from grutext.experiments.plan import extra_settings

    result = train_fn(cfg, resume=resume, progress=False, **extra_settings(kind, spec["extra"]))
    if kind == "language_model":
        return result, result.valid, result.test
    return result, result.valid_scores, result.test_scores


def _fit_figures(fit: Any) -> dict[str, Any]:
    """A fit's best epoch, epochs, training seconds, seconds per epoch and tokens per second."""
    history = fit.history
    seconds = sum(float(r.get("time", 0.0)) for r in history)
    tokens = sum(float(r.get("tokens_per_s", 0.0)) * float(r.get("time", 0.0)) for r in history)
    return {
        "best_epoch": fit.best_epoch,
        "epochs": len(history),
        "train_seconds": _finite(fit.train_seconds),
        "seconds_per_epoch": _finite(seconds / len(history)) if history else None,
        "tokens_per_s": _finite(tokens / seconds) if seconds > 0 else None,
    }


def warm_up(cells: list[str]) -> None:
    """One small forward and backward pass through each cell's encoder, so that any C++ loop a cell uses is
    built (and cached on disk) before the timed runs rather than inside the first of them."""
    import torch

    from grutext.nn.cells import make_encoder

    for cell in cells:
        enc = make_encoder(cell, 8, 8, bidirectional=True)
        x = torch.randn(2, 5, 8, requires_grad=True)
        out, _ = enc(x, torch.tensor([5, 3]))
        out.sum().backward()


# ---- latency ------------------------------------------------------------------------------------------


def _predictor(loaded: Any, tokens: int) -> Any:
    """A no-argument function making one prediction of 1 x `tokens` with `loaded`'s network."""
    import torch

    model = loaded.model.eval()
    gen = torch.Generator().manual_seed(0)
    vocab = max(int(loaded.config.model.vocab_size), 3)
    ids = torch.randint(2, vocab, (1, tokens), generator=gen)
    if loaded.kind == "classifier":
        lengths = torch.tensor([tokens])
        return lambda: model(ids, lengths)
    if loaded.kind == "language_model":
        return lambda: model(ids)
    from grutext.tasks.tagging.data import Encoder, TagVocab, collate

    words = [f"word{i % 7}" for i in range(tokens)]
    batch = collate([Encoder(loaded.tokenizer, TagVocab.from_meta(loaded.meta)).encode(words)])
    return lambda: model.decode(model.emissions(batch), batch["lengths"])


def measure_latency(folders: list[str], repeats: int, tokens: int = LATENCY_TOKENS) -> dict[str, float]:
    """Median milliseconds of one prediction (1 x `tokens` ids, 1 thread) per model folder, the folders
    timed round-robin (each repeat visits every folder once) so machine noise hits them alike."""
    import torch

    from grutext.artifact import load_model

    torch.set_num_threads(1)
    predictors = {f: _predictor(load_model(f), tokens) for f in folders}
    times: dict[str, list[float]] = {f: [] for f in folders}
    with torch.inference_mode():
        for f in folders:  # one warm-up each (first call builds caches)
            predictors[f]()
        for _ in range(repeats):
            for f in folders:
                t0 = time.perf_counter()
                predictors[f]()
                times[f].append(time.perf_counter() - t0)
    return {f: 1000.0 * statistics.median(ts) for f, ts in times.items()}


def main(argv: list[str] | None = None) -> int:
    from grutext.errors import GrutextError

    p = argparse.ArgumentParser(prog="python -m grutext.experiments.worker")
    p.add_argument("--latency", action="store_true", help="stdin: {folders, repeats}; stdout: JSON")
    args = p.parse_args(argv)
    spec = json.loads(sys.stdin.read())
    try:
        if args.latency:
            print(json.dumps(measure_latency(spec["folders"], int(spec["repeats"]))))
        else:
            train_run(spec)
    except GrutextError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
