"""Tagging benchmark: CoNLL-2000 chunking, test F1 exactly as conlleval computes it, per recipe and
seed, and the in-process latency of tagging one 20-token sentence.

    python benchmarks/tagging.py --recipes crf --seeds 1             # one run (minutes on 2 cores)
    python benchmarks/tagging.py --seeds 5                           # the whole table, 5 seeds each
    python benchmarks/tagging.py --latency-only --model runs/chunker # the latency of a saved tagger
    python benchmarks/tagging.py --latency-only --recipes crf        # ... of the crf recipe's network, untrained
    python benchmarks/tagging.py --recipes crf --seeds 1 --latency   # a run, then the latency of its model

Each run's figures are merged into benchmarks/results/tagging.json (by recipe and seed, so the
table fills up over several invocations) and the table is rewritten in tagging.md; a recipe
without runs is shown as "not run". Data from ../shared/data/conll2000 (or $GRUTEXT_DATA);
the validation set is 10% of the training sentences (CoNLL-2000 has no development set).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import torch

from _machine import cpu_name
from grutext.config import Config, DataConfig, ModelConfig, TrainConfig
from grutext.tasks.tagging.config import TagConfig

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("GRUTEXT_DATA", ROOT / ".." / "shared" / "data")).resolve() / "conll2000"
RESULTS = ROOT / "benchmarks" / "results"

# The recipes: what `grutext train train.txt --task tag --test test.txt` does with these flags.
# Shared settings follow Lample et al. (2016) where the defaults differ: dropout 0.5 on the
# BiGRU's input and output; character BiGRU of 25 units over 25-d characters (TagConfig defaults).
_BASE = Config(
    DataConfig(valid_fraction=0.1),
    ModelConfig(hidden_size=128, dropout=0.5),
    TrainConfig(epochs=25, batch_size=64, lr=2e-3, patience=5),
)
RECIPES: dict[str, tuple[Config, TagConfig, str]] = {
    "crf": (_BASE, TagConfig(), "--dropout 0.5 --epochs 25 --patience 5"),
    "softmax": (_BASE, TagConfig(decoder="softmax"), "--dropout 0.5 --epochs 25 --patience 5 --decoder softmax"),
    "cnn-crf": (_BASE, TagConfig(char_encoder="cnn"), "--dropout 0.5 --epochs 25 --patience 5 --char-encoder cnn"),
    "glove-crf": (
        replace(_BASE, model=replace(_BASE.model, pretrained="glove-6b-50d", embed_dim=50)),
        TagConfig(),
        "--dropout 0.5 --epochs 25 --patience 5 --pretrained glove-6b-50d --embed-dim 50",
    ),
    "glove-softmax": (
        replace(_BASE, model=replace(_BASE.model, pretrained="glove-6b-50d", embed_dim=50)),
        TagConfig(decoder="softmax"),
        "--dropout 0.5 --epochs 25 --patience 5 --pretrained glove-6b-50d --embed-dim 50 --decoder softmax",
    ),
    # the POS column of the file (column 1) as the feature embedding: part of CoNLL-2000, not external data
    "crf-pos": (_BASE, TagConfig(feature_col=1), "--dropout 0.5 --epochs 25 --patience 5 --feature-col 1"),
    "glove-crf-pos": (
        replace(_BASE, model=replace(_BASE.model, pretrained="glove-6b-50d", embed_dim=50)),
        TagConfig(feature_col=1),
        "--dropout 0.5 --epochs 25 --patience 5 --pretrained glove-6b-50d --embed-dim 50 --feature-col 1",
    ),
}

# 20 tokens, the shape of a CoNLL-2000 sentence
SENTENCE = [
    "Rockwell",
    "'s",
    "Tulsa",
    "unit",
    "said",
    "it",
    "signed",
    "a",
    "tentative",
    "agreement",
    "extending",
    "its",
    "contract",
    "with",
    "Boeing",
    "Co.",
    "to",
    "provide",
    "parts",
    ".",
]


def _load() -> dict[str, Any]:
    path = RESULTS / "tagging.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def _save(results: dict[str, Any]) -> None:
    RESULTS.mkdir(parents=True, exist_ok=True)
    tmp = RESULTS / "tagging.json.tmp"
    tmp.write_text(json.dumps(results, indent=2, allow_nan=False) + "\n")
    tmp.replace(RESULTS / "tagging.json")
    (RESULTS / "tagging.md").write_text(table(results))


def run_recipe(name: str, seed: int, work: Path, max_minutes: float | None, threads: int | None) -> dict[str, Any]:
    """Train one recipe with one seed on CoNLL-2000; its test scores, epochs and times."""
    from grutext.tasks.tagging.train import train_tagger

    cfg, tag_cfg, _ = RECIPES[name]
    out = work / f"{name}-seed{seed}"
    cfg = replace(
        cfg,
        data=replace(cfg.data, train=str(DATA / "train.txt"), test=str(DATA / "test.txt")),
        train=replace(cfg.train, seed=seed, out=str(out), overwrite=True, max_minutes=max_minutes, threads=threads),
    )
    t0 = time.perf_counter()
    run = train_tagger(cfg, tag_cfg, progress=False)
    seconds = time.perf_counter() - t0
    assert run.test_scores is not None
    history = run.fit.history
    return {
        "seed": seed,
        "test_f1": round(100 * run.test_scores["f1"], 2),
        "test_precision": round(100 * run.test_scores["precision"], 2),
        "test_recall": round(100 * run.test_scores["recall"], 2),
        "test_token_accuracy": round(100 * run.test_scores["accuracy"], 2),
        "valid_f1": round(100 * run.valid_scores["f1"], 2),
        "epochs_run": len(history),
        "epochs_planned": cfg.train.epochs,
        "best_epoch": run.fit.best_epoch,
        "stopped": "time budget" if max_minutes and len(history) < cfg.train.epochs else "",
        "train_seconds": round(run.fit.train_seconds, 1),
        "total_seconds": round(seconds, 1),
        "seconds_per_epoch": round(run.fit.train_seconds / max(len(history), 1), 1),
        "max_minutes": max_minutes,
        "threads": torch.get_num_threads(),
        "model_dir": str(out),
    }


def untrained_model(name: str, work: Path) -> str:
    """A recipe's network, untrained, with the vocabularies of CoNLL-2000's training file, saved as a model
    folder: the latency of a forward pass and Viterbi does not depend on the weights' values, so this
    times the recipe's shape without a training run."""
    from grutext.artifact import save_model
    from grutext.tasks.tagging.config import KIND, SECTION, tagger_config
    from grutext.tasks.tagging.data import build_vocab, build_word_tokenizer, read_tagged
    from grutext.tasks.tagging.model import Tagger

    cfg, tag_cfg, _ = RECIPES[name]
    tag_cfg = replace(tag_cfg).check()
    corpus = read_tagged(str(DATA / "train.txt"), tag_cfg)
    cfg = tagger_config(cfg, corpus.scheme)
    vocab = build_vocab(corpus, tag_cfg)
    d = cfg.data
    tok = build_word_tokenizer(corpus.tokens, lowercase=d.lowercase, min_freq=d.min_freq, max_vocab=d.max_vocab)
    cfg = replace(
        cfg, model=replace(cfg.model, vocab_size=tok.vocab_size, num_classes=len(vocab.tags), pretrained=None)
    )
    torch.manual_seed(0)
    model = Tagger.from_config(cfg.model, tag_cfg, vocab)
    out = work / f"{name}-untrained"
    save_model(out, model, tok, cfg, kind=KIND, meta={SECTION: {**tag_cfg.to_dict(), **vocab.to_dict()}})
    return str(out)


def latency(model_dir: str, repeats: int = 300) -> dict[str, Any]:
    """Median in-process time to tag SENTENCE with `tag_tokens` (encoding, BiGRU, Viterbi, conversion)."""
    from grutext.artifact import load_model
    from grutext.tasks.tagging.predict import tag_tokens

    loaded = load_model(model_dir)
    for _ in range(20):  # warm-up: first calls build caches
        tag_tokens(loaded, [SENTENCE])
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        tag_tokens(loaded, [SENTENCE])
        times.append(time.perf_counter() - t0)
    times.sort()
    return {
        "model_dir": model_dir,
        "tokens": len(SENTENCE),
        "repeats": repeats,
        "median_ms": round(1000 * statistics.median(times), 3),
        "p90_ms": round(1000 * times[int(0.9 * len(times))], 3),
        "threads": torch.get_num_threads(),
        "runtime": runtime_latency(model_dir, repeats),
    }


def runtime_latency(model_dir: str, repeats: int) -> dict[str, Any] | None:
    """The same sentence through the model's ONNX export (`grutext.runtime`, onnxruntime, 1 thread,
    NumPy Viterbi); None without onnx/onnxruntime."""
    try:
        from grutext import runtime
        from grutext.export.exporter import export_model
    except ImportError:
        return None
    with tempfile.TemporaryDirectory() as tmp:
        export_model(model_dir, Path(tmp) / "onnx", log=lambda s: None)
        tagger = runtime.load(Path(tmp) / "onnx", threads=1)
        for _ in range(20):
            tagger.tag([SENTENCE])
        times = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            tagger.tag([SENTENCE])
            times.append(time.perf_counter() - t0)
    times.sort()
    return {
        "median_ms": round(1000 * statistics.median(times), 3),
        "p90_ms": round(1000 * times[int(0.9 * len(times))], 3),
    }


def table(results: dict[str, Any]) -> str:
    """The markdown table: one row per recipe, mean ± std over the seeds run (or "not run")."""
    lines = [
        "# CoNLL-2000 chunking (test F1, conlleval-exact)",
        "",
        f"Machine: {results.get('_machine', '?')}. Shared with other jobs: times are indicative.",
        "",
        "| recipe | flags | seeds run | test F1 mean ± std | per seed | epochs run (best) | minutes per run |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, (_, _, flags) in RECIPES.items():
        runs = sorted(results.get(name, {}).values(), key=lambda r: r["seed"])
        if not runs:
            lines.append(f"| {name} | `{flags}` | 0 | not run | | | |")
            continue
        f1 = [r["test_f1"] for r in runs]
        std = f"{statistics.stdev(f1):.2f}" if len(f1) > 1 else "n/a (1 seed)"
        per = ", ".join(f"{r['test_f1']:.2f}" for r in runs)
        ep = ", ".join(f"{r['epochs_run']} ({r['best_epoch']}){' time-cut' if r['stopped'] else ''}" for r in runs)
        mins = ", ".join(f"{r['train_seconds'] / 60:.1f}" for r in runs)
        lines.append(
            f"| {name} | `{flags}` | {len(runs)} | {statistics.mean(f1):.2f} ± {std} | {per} | {ep} | {mins} |"
        )
    lat = results.get("_latency")
    lines += ["", "Latency of tagging one 20-token sentence in-process (`tag_tokens`, median of repeats):", ""]
    if lat:
        lines.append(
            f"- {lat['median_ms']:.2f} ms median, {lat['p90_ms']:.2f} ms p90 over {lat['repeats']} repeats, "
            f"{lat['threads']} torch thread(s), model `{Path(lat['model_dir']).name}`"
            + (
                f" (the {lat['recipe']} recipe's network, untrained: the time does not depend on the weights)"
                if lat.get("untrained")
                else ""
            )
        )
        rt = lat.get("runtime")
        if rt:
            lines.append(
                f"- its ONNX export through `grutext.runtime` (onnxruntime, 1 thread, NumPy Viterbi): "
                f"{rt['median_ms']:.2f} ms median, {rt['p90_ms']:.2f} ms p90"
            )
    else:
        lines.append("- not measured")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--recipes", default=",".join(RECIPES), help=f"comma-separated, of {', '.join(RECIPES)}")
    p.add_argument("--seeds", type=int, default=5, help="seeds 0..N-1 per recipe (default 5)")
    p.add_argument("--first-seed", type=int, default=0)
    p.add_argument("--max-minutes", type=float, default=None, help="time budget per training run")
    p.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's)")
    p.add_argument("--work", default=str(ROOT / "benchmarks" / "out" / "tagging"), help="model folders")
    p.add_argument(
        "--latency-only",
        action="store_true",
        help="only measure the latency: of --model, else of the first recipe's network untrained (its shape)",
    )
    p.add_argument(
        "--latency",
        action="store_true",
        help="after the runs, also measure the latency (of --model, else of the first run's model); without it the "
        "table keeps the latency measured before",
    )
    p.add_argument("--model", default=None, help="tagger for the latency (default: the first run's model)")
    args = p.parse_args(argv)
    names = [n.strip() for n in args.recipes.split(",") if n.strip()]
    unknown = [n for n in names if n not in RECIPES]
    if unknown:
        p.error(f"--recipes: unknown {', '.join(unknown)}; expected some of {', '.join(RECIPES)}")
    if not (DATA / "train.txt").is_file():
        print(f"error: {DATA / 'train.txt'} not found (set GRUTEXT_DATA)", file=sys.stderr)
        return 1
    results = _load()
    results["_machine"] = f"{cpu_name()}, {os.cpu_count()} logical CPUs"
    model = args.model
    if not args.latency_only:
        for name in names:
            for seed in range(args.first_seed, args.first_seed + args.seeds):
                r = run_recipe(name, seed, Path(args.work), args.max_minutes, args.threads)
                print(json.dumps({"recipe": name, **r}), flush=True)
                results.setdefault(name, {})[str(seed)] = r
                _save(results)
                model = model or r["model_dir"]
    if args.threads:
        torch.set_num_threads(args.threads)
    untrained = args.latency_only and not model
    if untrained:
        model = untrained_model(names[0], Path(args.work))
    if model and (args.latency or args.latency_only):
        results["_latency"] = latency(model)
        results["_latency"]["untrained"] = untrained
        results["_latency"]["recipe"] = names[0] if untrained else None
        print(json.dumps(results["_latency"]), flush=True)
    _save(results)
    print((RESULTS / "tagging.md").read_text())
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
