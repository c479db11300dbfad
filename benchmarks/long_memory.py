"""Long-memory tasks for GRU, LSTM and minGRU with matched parameter counts: the adding problem and the
copy task at several sequence lengths T, several seeds; writes a table (markdown + JSON) and a plot.

- Adding problem (Hochreiter & Schmidhuber 1997, in the form of Le, Jaitly & Hinton 2015): each step has
  a value drawn from U[0, 1] and a marker; exactly two steps are marked (one in each half) and the target
  is the sum of their values, read from the last step. Mean squared error on fresh test sequences; always
  answering 1 scores 1/6 ≈ 0.167.
- Copy task (Arjovsky, Shah & Bengio 2016): 10 symbols from 8, then T - 1 blanks, a delimiter, and 10
  blanks during which the network must emit the 10 symbols. Accuracy on those 10 symbols of fresh test
  sequences (chance 1/8 = 12.5%).

Each cell's hidden size is chosen so that its trainable parameters (encoder and head) are within 2% of
the GRU's (`grutext.experiments.matching.match_hidden_sizes`). Every (task, T, seed) gives all cells the
same training batches; cells are trained one after the other at each (task, T, seed).

    python benchmarks/long_memory.py                              # T = 50 200 500 1000, 3 seeds (hours)
    python benchmarks/long_memory.py --lengths 50 200 --seeds 1   # the small configuration
    python benchmarks/long_memory.py --out DIR                    # JSON, markdown and PNG into DIR
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

import torch
from torch import nn

from _machine import cpu_name

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from grutext.experiments.matching import match_hidden_sizes, trainable_parameters  # noqa: E402
from grutext.experiments.worker import warm_up  # noqa: E402
from grutext.nn.cells import make_encoder  # noqa: E402

CELLS = ["gru", "lstm", "mingru"]
SYMBOLS = 8  # copy task: symbols 1..8; 0 = blank, 9 = delimiter
COPY_LEN = 10


class Net(nn.Module):
    """A unidirectional one-layer recurrent encoder and a linear read-out at every step."""

    def __init__(self, cell: str, inputs: int, hidden: int, outputs: int, embed: bool):
        super().__init__()
        self.embed = nn.Embedding(SYMBOLS + 2, inputs) if embed else None
        self.rnn = make_encoder(cell, inputs, hidden)
        self.head = nn.Linear(hidden, outputs)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.embed is not None:
            x = self.embed(x)
        out, _ = self.rnn(x)
        return self.head(out)  # (B, T, outputs)


def adding_batch(b: int, t: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    values = torch.rand(b, t, generator=gen)
    marks = torch.zeros(b, t)
    half = t // 2
    first = torch.randint(0, half, (b,), generator=gen)
    second = torch.randint(half, t, (b,), generator=gen)
    rows = torch.arange(b)
    marks[rows, first] = 1.0
    marks[rows, second] = 1.0
    x = torch.stack([values, marks], dim=-1)  # (B, T, 2)
    y = values[rows, first] + values[rows, second]  # (B,)
    return x, y


def copy_batch(b: int, t: int, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    symbols = torch.randint(1, SYMBOLS + 1, (b, COPY_LEN), generator=gen)
    total = COPY_LEN + t + COPY_LEN
    x = torch.zeros(b, total, dtype=torch.long)
    x[:, :COPY_LEN] = symbols
    x[:, COPY_LEN + t - 1] = SYMBOLS + 1  # the delimiter: recall starts after it
    y = torch.zeros(b, total, dtype=torch.long)
    y[:, -COPY_LEN:] = symbols
    return x, y


def build(task: str, cell: str, hidden: int) -> Net:
    if task == "adding":
        return Net(cell, 2, hidden, 1, embed=False)
    return Net(cell, 16, hidden, SYMBOLS + 2, embed=True)


def loss_of(task: str, net: Net, x: torch.Tensor, y: torch.Tensor) -> tuple[torch.Tensor, float]:
    """The training loss and the task's score (adding: MSE; copy: accuracy on the recalled symbols)."""
    out = net(x)
    if task == "adding":
        pred = out[:, -1, 0]
        mse = ((pred - y) ** 2).mean()
        return mse, float(mse.detach())
    loss = nn.functional.cross_entropy(out.reshape(-1, out.shape[-1]), y.reshape(-1))
    acc = (out[:, -COPY_LEN:].argmax(-1) == y[:, -COPY_LEN:]).float().mean()
    return loss, float(acc)


def train_one(
    task: str, cell: str, hidden: int, t: int, seed: int, steps: int, batch: int, lr: float
) -> dict[str, Any]:
    torch.manual_seed(1000 + seed)
    net = build(task, cell, hidden)
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    data_gen = torch.Generator().manual_seed(seed)  # the same batches for every cell
    make = adding_batch if task == "adding" else copy_batch
    t0 = time.perf_counter()
    for _ in range(steps):
        x, y = make(batch, t, data_gen)
        loss, _ = loss_of(task, net, x, y)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        nn.utils.clip_grad_norm_(net.parameters(), 1.0)
        opt.step()
    seconds = time.perf_counter() - t0
    net.eval()
    test_gen = torch.Generator().manual_seed(10_000 + seed)
    with torch.no_grad():
        x, y = make(512, t, test_gen)
        _, score = loss_of(task, net, x, y)
    return {"score": score if math.isfinite(score) else None, "seconds": seconds}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--lengths", type=int, nargs="+", default=[50, 200, 500, 1000], help="sequence lengths T")
    p.add_argument("--seeds", type=int, default=3, help="seeds per (task, T, cell)")
    p.add_argument("--tasks", nargs="+", default=["adding", "copy"], choices=["adding", "copy"])
    p.add_argument("--cells", nargs="+", default=CELLS, help="cells; the first is the size reference")
    p.add_argument("--hidden", type=int, default=64, help="hidden size of the first cell")
    p.add_argument("--steps", type=int, default=1000, help="training steps per run")
    p.add_argument("--batch", type=int, default=32, help="sequences per step")
    p.add_argument("--lr", type=float, default=5e-3, help="Adam's learning rate (default 5e-3)")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--out", default=str(ROOT / "benchmarks" / "out"), help="folder for JSON, markdown and PNG")
    p.add_argument("--label", default="", help="a note printed with the table (e.g. 'small configuration')")
    p.add_argument(
        "--combine",
        nargs="+",
        default=None,
        metavar="JSON",
        help="no training: the table and plot of earlier runs' long_memory.json files together (e.g. one per task)",
    )
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    if args.combine:
        runs = [json.loads(Path(f).read_text(encoding="utf-8")) for f in args.combine]
    else:
        runs = [run(args)]
        (out / "long_memory.json").write_text(json.dumps(runs[0], indent=1), encoding="utf-8")
    md = table(runs, args.label)
    (out / "long_memory.md").write_text(md, encoding="utf-8")
    print(md)
    plot(runs, out / "long_memory.png")
    return 0


def run(args: argparse.Namespace) -> dict[str, Any]:
    """Every (task, T, seed, cell) of `args` trained and scored: ``{"meta": ..., "rows": [...]}``."""
    torch.set_num_threads(args.threads)
    sizes = {
        task: match_hidden_sizes(lambda c, h, task=task: build(task, c, h), args.cells, args.hidden)
        for task in args.tasks
    }
    warm_up(args.cells)  # any C++ loop built before the first timed run
    rows: list[dict[str, Any]] = []
    for task in args.tasks:
        for t in args.lengths:
            for seed in range(1, args.seeds + 1):
                for cell in args.cells:
                    h = sizes[task][cell]["hidden_size"]
                    r = train_one(task, cell, h, t, seed, args.steps, args.batch, args.lr)
                    row = {"task": task, "T": t, "seed": seed, "cell": cell, "hidden": h, **r}
                    row["params"] = trainable_parameters(build(task, cell, h))
                    rows.append(row)
                    print(json.dumps(row), flush=True)
    meta = {
        "machine": f"{cpu_name()}, {platform.machine()}, torch {torch.__version__}, {args.threads} threads",
        "settings": {k: v for k, v in vars(args).items() if k not in ("out", "combine")},
        "sizes": sizes,
    }
    return {"meta": meta, "rows": rows}


def _mean(xs: list[float]) -> float | None:
    xs = [x for x in xs if x is not None]
    return sum(xs) / len(xs) if xs else None


def _tasks(runs: list[dict[str, Any]]) -> list[tuple[str, dict[str, Any], list[dict[str, Any]]]]:
    """(task, that run's settings, its rows) for every task of every run, in order."""
    out = []
    for r in runs:
        for task in r["meta"]["settings"]["tasks"]:
            out.append((task, r["meta"]["settings"], [row for row in r["rows"] if row["task"] == task]))
    return out


def _shown(task: str, m: float | None) -> str:
    return "n/a" if m is None else (f"{m:.4f}" if task == "adding" else f"{100 * m:.1f}%")


def table(runs: list[dict[str, Any]], label: str) -> str:
    """One row per (task, T): each cell's mean score over the seeds (and its mean training seconds)."""
    cells = runs[0]["meta"]["settings"]["cells"]
    lines = [f"_{label}_\n"] if label else []
    lines += ["| task | T | steps x batch, lr, seeds | " + " | ".join(cells) + " |", "|" + "---|" * (3 + len(cells))]
    for task, st, rows in _tasks(runs):
        metric = "test MSE (1/6 = always 1)" if task == "adding" else "recall accuracy (chance 12.5%)"
        for t in sorted({row["T"] for row in rows}):
            shown = []
            for cell in cells:
                rs = [row for row in rows if row["T"] == t and row["cell"] == cell]
                m = _mean([row["score"] for row in rs])
                per = ", ".join(_shown(task, row["score"]) for row in rs)
                secs = _mean([row["seconds"] for row in rs]) or 0.0
                shown.append(f"{_shown(task, m)} ({per}; {secs:.0f}s)")
            how = f"{st['steps']} x {st['batch']}, {st.get('lr', 1e-3):g}, {st['seeds']}"
            lines.append(f"| {task}: {metric} | {t} | {how} | " + " | ".join(shown) + " |")
    sizes = "; ".join(
        f"{task}: " + ", ".join(f"{c} {v['hidden_size']} units" for c, v in r["meta"]["sizes"][task].items())
        for r in runs
        for task in r["meta"]["settings"]["tasks"]
    )
    lines += ["", f"Hidden sizes (parameters matched within 2%): {sizes}. Machine: {runs[0]['meta']['machine']}."]
    return "\n".join(lines) + "\n"


def plot(runs: list[dict[str, Any]], path: Path) -> None:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib is not installed, no plot")
        return
    tasks = _tasks(runs)
    cells = runs[0]["meta"]["settings"]["cells"]
    fig, axes = plt.subplots(1, len(tasks), figsize=(5.5 * len(tasks), 3.8))
    axes = [axes] if len(tasks) == 1 else list(axes)
    for ax, (task, st, rows) in zip(axes, tasks, strict=True):
        lengths = sorted({row["T"] for row in rows})
        for i, cell in enumerate(cells):
            xs, ys = [], []
            for t in lengths:
                m = _mean([row["score"] for row in rows if row["T"] == t and row["cell"] == cell])
                if m is not None:
                    xs.append(t)
                    ys.append(m if task == "adding" else 100 * m)
            ax.plot(xs, ys, marker="o", color=f"C{i}", label=cell)
        ax.set_xscale("log")
        ax.set_xticks(lengths)
        ax.set_xticklabels([str(t) for t in lengths])
        ax.set_xlabel("T (steps between the information and its use)")
        if task == "adding":
            ax.axhline(1 / 6, color="grey", linestyle=":", label="always 1")
            ax.set_ylabel("test MSE (lower is better)")
        else:
            ax.axhline(12.5, color="grey", linestyle=":", label="chance")
            ax.set_ylabel("recall accuracy % (higher is better)")
        ax.set_title(f"{task} ({st['seeds']} seed(s), {st['steps']} steps)")
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


if __name__ == "__main__":
    sys.exit(main())
