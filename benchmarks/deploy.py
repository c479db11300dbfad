"""Deployment benchmark, latency part: one 50-word text, string in, label out, one thread, for

- torch eager: grutext's tokenizer + the model called directly (no Predictor machinery);
- grutext `Predictor.predict`;
- `grutext.runtime` fp32 (``model.onnx``) and int8 (``model.int8.onnx``),

with the file sizes and each one's accuracy on the model's test split. Writes
benchmarks/results/deploy.json and deploy.md, and the table into README.md (between the DEPLOY
markers of "Export and serve").

    flock /tmp/grutext-bench.lock python benchmarks/deploy.py --model runs/demo-bbc

Without --model's folder present it trains the demo model first (`grutext demo`, ~1-6 minutes
on 2 cores). Timings are interleaved (a block of each method in turn, repeated) so that load from
other processes falls on all methods alike; the load average before and after is recorded.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from _machine import cpu_name
from grutext import runtime
from grutext.artifact import load_model
from grutext.export.exporter import classifier_accuracy, export_model
from grutext.infer.predict import Predictor
from grutext.tasks.classification.data import load_splits

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"


def ensure_model(path: Path) -> None:
    if (path / "config.json").is_file():
        return
    print(f"{path}: not found, training the demo model (grutext demo)", flush=True)
    env = dict(os.environ, PYTHONPATH=str(ROOT / "src"))
    subprocess.run([sys.executable, "-m", "grutext.cli", "demo", "--out", str(path)], check=True, env=env)


def timed(fn: Callable[[], object], calls: int) -> list[float]:
    out = []
    for _ in range(calls):
        t0 = time.perf_counter()
        fn()
        out.append(time.perf_counter() - t0)
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default="runs/demo-bbc", help="classifier model directory (default: runs/demo-bbc)")
    ap.add_argument("--export", default=None, help="export folder to write (default: MODEL-onnx)")
    ap.add_argument("--rounds", type=int, default=20, help="interleaved rounds (default 20)")
    ap.add_argument("--calls", type=int, default=100, help="calls per method per round (default 100)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    model_dir = Path(args.model)
    ensure_model(model_dir)
    out = Path(args.export) if args.export else model_dir.with_name(model_dir.name + "-onnx")
    t0 = time.perf_counter()
    info = export_model(model_dir, out, int8=True, overwrite=True)
    export_s = time.perf_counter() - t0

    loaded = load_model(model_dir)
    cfg = loaded.config
    test = load_splits(cfg.data, seed=cfg.train.seed).test
    assert test is not None and test.labels is not None
    words = " ".join(test.texts[0].split()[:50])  # a real 50-word text from the test split
    assert len(words.split()) == 50

    model, tok, labels = loaded.model.eval(), loaded.tokenizer, loaded.labels
    max_len, policy = cfg.data.max_len, cfg.data.truncation
    from grutext.data.batching import truncate

    def eager(text: str) -> str:
        ids = truncate(tok.encode(text) or [tok.unk_id], max_len, policy)
        with torch.no_grad():
            logits, _ = model(torch.tensor([ids]), torch.tensor([len(ids)]))
            return labels[int(model.probabilities(logits)[0].argmax())]

    predictor = Predictor(loaded)
    fp32 = runtime.load(out, threads=1)
    int8 = runtime.load(out, threads=1, int8=True)
    methods: dict[str, Callable[[], object]] = {
        "torch eager": lambda: eager(words),
        "Predictor": lambda: predictor.predict([words])[0]["label"],
        "runtime fp32": lambda: fp32.predict([words])[0]["label"],  # type: ignore[attr-defined]
        "runtime int8": lambda: int8.predict([words])[0]["label"],  # type: ignore[attr-defined]
    }
    answers = {name: fn() for name, fn in methods.items()}
    load_before = os.getloadavg()
    times: dict[str, list[float]] = {name: [] for name in methods}
    for fn in methods.values():  # warm-up
        timed(fn, 50)
    for _ in range(args.rounds):
        for name, fn in methods.items():
            times[name] += timed(fn, args.calls)
    load_after = os.getloadavg()

    # accuracy of each on the whole test split
    y = list(test.labels)
    task = cfg.model.task
    probs = {
        "torch eager": None,
        "Predictor": predictor.predict_proba(test.texts),
        "runtime fp32": fp32.predict_proba(test.texts),  # type: ignore[attr-defined]
        "runtime int8": int8.predict_proba(test.texts),  # type: ignore[attr-defined]
    }
    eager_pred = [eager(t) for t in test.texts]
    acc = {name: classifier_accuracy(p, y, labels, task, 0.5) for name, p in probs.items() if p is not None}
    acc["torch eager"] = 100.0 * float(np.mean([p == t for p, t in zip(eager_pred, y, strict=True)]))

    sizes = {
        "model.safetensors": (model_dir / "model.safetensors").stat().st_size,
        "model.onnx": (out / "model.onnx").stat().st_size,
        "model.int8.onnx": (out / "model.int8.onnx").stat().st_size,
        "tokenizer.json": (out / "tokenizer.json").stat().st_size,
    }
    rows = {}
    for name, ts in times.items():
        a = np.array(ts) * 1e3
        rows[name] = {
            "median_ms": round(float(np.median(a)), 4),
            "p99_ms": round(float(np.percentile(a, 99)), 4),
            "mean_ms": round(float(a.mean()), 4),
            "calls": len(ts),
            "test_accuracy": round(acc[name], 2),
            "label": answers[name],
        }
    med = {k: v["median_ms"] for k, v in rows.items()}
    result = {
        "what": "latency of one 50-word text, string in -> label out, 1 thread (torch and onnxruntime), "
        "interleaved rounds; test accuracy on the model's test split",
        "model": str(model_dir),
        "text_words": 50,
        "text_tokens": len(fp32.encode([words])[0]),  # type: ignore[attr-defined]
        "test_texts": len(test.texts),
        "results": rows,
        "speedup_fp32_vs_predictor": round(med["Predictor"] / med["runtime fp32"], 2),
        "speedup_fp32_vs_eager": round(med["torch eager"] / med["runtime fp32"], 2),
        "sizes_bytes": sizes,
        "int8_size_ratio": round(sizes["model.int8.onnx"] / sizes["model.onnx"], 4),
        "int8_accuracy_change_points": round(acc["runtime int8"] - acc["runtime fp32"], 2),
        "export": {"seconds": round(export_s, 1), "parity_max_abs_diff": info["parity"]["max_abs_diff"]},
        "machine": {
            "cpu": cpu_name(),
            "cores": os.cpu_count(),
            "python": platform.python_version(),
            "torch": torch.__version__,
            "onnxruntime": __import__("onnxruntime").__version__,
            "loadavg_before": [round(x, 2) for x in load_before],
            "loadavg_after": [round(x, 2) for x in load_after],
            "note": "a 2-core machine shared with other engineers' jobs; figures vary with their load",
        },
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    targets = {
        "runtime fp32 median <= 0.15 ms": med["runtime fp32"] <= 0.15,
        "runtime fp32 >= 3x faster than Predictor": result["speedup_fp32_vs_predictor"] >= 3,
        "int8 file <= 35% of fp32": result["int8_size_ratio"] <= 0.35,
        "int8 test accuracy within 0.5 points": abs(result["int8_accuracy_change_points"]) <= 0.5,
    }
    result["targets"] = targets
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "deploy.json").write_text(json.dumps(result, indent=2, allow_nan=False) + "\n")
    blend = fp32.blend_weight  # type: ignore[attr-defined]
    md = [
        "| | median ms | p99 ms | test accuracy % |",
        "|---|---:|---:|---:|",
        *(f"| {k} | {v['median_ms']:.3f} | {v['p99_ms']:.3f} | {v['test_accuracy']:.2f} |" for k, v in rows.items()),
        "",
        (
            "torch eager is the network alone; Predictor and the runtimes blend it with the model's n-gram "
            f"model (weight {blend}), as a default-trained classifier does, hence their accuracy. "
            if blend is not None
            else ""
        )
        + f"runtime fp32 is {result['speedup_fp32_vs_predictor']}x faster than Predictor "
        f"({result['speedup_fp32_vs_eager']}x torch eager). Files: model.safetensors "
        f"{sizes['model.safetensors'] / 1e6:.2f} MB, model.onnx {sizes['model.onnx'] / 1e6:.2f} MB, "
        f"model.int8.onnx {sizes['model.int8.onnx'] / 1e6:.2f} MB ({result['int8_size_ratio']:.1%} of fp32); "
        f"int8 accuracy change {result['int8_accuracy_change_points']:+.2f} points on {len(test.texts)} test texts. "
        f"{cpu_name()}, {os.cpu_count()} cores shared, load average {load_before[0]:.1f} before / "
        f"{load_after[0]:.1f} after, {result['date']}.",
        "",
        "Targets: " + "; ".join(f"{k} {'✓' if ok else '✗'}" for k, ok in targets.items()) + ".",
    ]
    (RESULTS / "deploy.md").write_text("\n".join(md) + "\n")
    readme = ROOT / "README.md"
    text = readme.read_text(encoding="utf-8")
    start, end = "<!-- DEPLOY -->\n", "<!-- /DEPLOY -->"
    if start in text and end in text:  # the README's "Export and serve" figures, replaced in place
        head, rest = text.split(start, 1)
        readme.write_text(head + start + "\n".join(md) + "\n" + end + rest.split(end, 1)[1], encoding="utf-8")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
