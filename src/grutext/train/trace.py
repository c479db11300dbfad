"""The epoch trace (a table printed row by row), the progress line (live on a terminal, plain lines
in a log), and curve plots."""

from __future__ import annotations

import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sized
from pathlib import Path
from typing import Any, TextIO, TypeVar

T = TypeVar("T")

COLUMNS = [
    ("epoch", "epoch", "{:>5d}"),
    ("loss", "loss", "{:>8.4f}"),
    ("accuracy", "acc", "{:>7.4f}"),
    ("perplexity", "ppl", "{:>9.2f}"),
    ("bpc", "bpc", "{:>7.4f}"),
    ("val_loss", "val_loss", "{:>9.4f}"),
    ("val_accuracy", "val_acc", "{:>8.4f}"),
    ("val_macro_f1", "val_f1", "{:>7.4f}"),
    ("val_chunk_f1", "val_chunk_f1", "{:>13.4f}"),
    ("val_perplexity", "val_ppl", "{:>9.2f}"),
    ("val_bpc", "val_bpc", "{:>8.4f}"),
    ("lr", "lr", "{:>9.2e}"),
    ("time", "time_s", "{:>7.1f}"),
    ("tokens_per_s", "tok/s", "{:>8.0f}"),
]


class EpochTable:
    """Prints the epoch trace as an aligned table, one row per epoch, as the Keras seeds do.

    Only the columns present in the first row are shown.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream or sys.stdout
        self.cols: list[tuple[str, str, str]] | None = None

    def header(self) -> str:
        assert self.cols is not None
        return "  ".join(title.rjust(len(fmt.format(0 if key == "epoch" else 0.0))) for key, title, fmt in self.cols)

    def row(self, values: dict[str, Any]) -> str:
        if self.cols is None:
            self.cols = [c for c in COLUMNS if values.get(c[0]) is not None]
        cells = []
        for key, _title, fmt in self.cols:
            v = values.get(key)
            width = len(fmt.format(0 if key == "epoch" else 0.0))
            cells.append(
                " " * (width - 1) + "-" if v is None or (isinstance(v, float) and math.isnan(v)) else fmt.format(v)
            )
        return "  ".join(cells)

    def print_row(self, values: dict[str, Any]) -> None:
        first = self.cols is None
        line = self.row(values)
        if first:
            print(self.header(), file=self.stream)
        print(line, file=self.stream, flush=True)


PLAIN_INTERVAL_S = 30.0  # seconds between plain progress lines when the stream is not a terminal


class Progress:
    """Progress through an epoch (or an evaluation) on stderr.

    On a terminal (or with ``enabled=True``): a live one-line bar redrawn in place. When the stream
    is not a terminal (a log file, CI) and ``enabled`` is None: a plain line every
    `PLAIN_INTERVAL_S` seconds (``interval``), so long epochs are not minutes of silence.
    ``enabled=False``: nothing.

    Call `update(done, tokens, loss)` after each step and `close()` at the end; `track` wraps
    an iterable (evaluation batches) in both.

    Args:
        total: steps expected.
        desc: what is running (``"epoch 2/10"``, ``"validation"``).
        enabled: True: the live bar; False: silent; None: the bar on a terminal, plain lines elsewhere.
        stream: where to write (default: stderr).
        interval: seconds between plain lines (default: `PLAIN_INTERVAL_S`).
        clock: the time source (tests pass a fake one).
    """

    def __init__(
        self,
        total: int,
        desc: str = "",
        enabled: bool | None = None,
        stream: TextIO | None = None,
        *,
        interval: float | None = None,
        clock: Callable[[], float] = time.perf_counter,
    ) -> None:
        self.stream = stream or sys.stderr
        tty = self.stream.isatty()
        self.enabled = tty if enabled is None else bool(enabled)  # the live bar
        self.plain = enabled is None and not tty  # plain lines instead
        if os.environ.get("RANK", "0") != "0":  # a distributed run: only rank 0 shows progress
            self.enabled = self.plain = False
        self.interval = PLAIN_INTERVAL_S if interval is None else float(interval)
        self.total = max(total, 1)
        self.desc = desc
        self.clock = clock
        self.start = clock()
        self.last = 0.0
        self.last_plain = self.start

    def update(self, done: int, tokens: int = 0, loss: float | None = None) -> None:
        """`done` steps of `total` finished, `tokens` processed so far, the running mean `loss`."""
        if not (self.enabled or self.plain):
            return
        now = self.clock()
        frac = min(done / self.total, 1.0)
        elapsed = max(now - self.start, 1e-9)
        rate = tokens / elapsed
        eta = elapsed / max(frac, 1e-9) * (1 - frac)
        loss_text = "" if loss is None else f" loss {loss:.4f}"
        rate_text = f" {rate:,.0f} tok/s" if tokens else ""
        if self.enabled:
            if now - self.last < 0.2 and done < self.total:
                return
            self.last = now
            bar = "#" * int(frac * 24)
            self.stream.write(f"\r{self.desc} [{bar:<24}] {done}/{self.total}{loss_text}{rate_text} eta {eta:4.0f}s ")
            self.stream.flush()
            return
        if now - self.last_plain < self.interval or done >= self.total:
            return  # the epoch table row (or the caller's result) follows the last step
        self.last_plain = now
        self.stream.write(
            f"{self.desc + ': ' if self.desc else ''}{done}/{self.total} ({frac:.0%}){loss_text}{rate_text}, "
            f"{elapsed:.0f}s elapsed, eta {eta:.0f}s\n"
        )
        self.stream.flush()

    def close(self) -> None:
        if self.enabled:
            self.stream.write("\r" + " " * 90 + "\r")
            self.stream.flush()


def track(
    items: Iterable[T],
    total: int | None = None,
    desc: str = "",
    enabled: bool | None = None,
    stream: TextIO | None = None,
) -> Iterator[T]:
    """Yield `items`, reporting progress through them (as `Progress`): for evaluation loops,
    ``for batch in track(valid_batches, desc="validation"): ...``. `total` defaults to ``len(items)``."""
    n = total if total is not None else (len(items) if isinstance(items, Sized) else 0)
    bar = Progress(n, desc=desc, enabled=enabled, stream=stream)
    try:
        for i, item in enumerate(items, 1):
            yield item
            bar.update(i)
    finally:
        bar.close()


def plot_curves(history: list[dict[str, Any]], path: str | Path) -> Path | None:
    """Loss and accuracy (or perplexity) curves, train and validation, as a PNG.

    Returns the path, or None when matplotlib is not installed (a note is printed).
    """
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib is not installed, no curves PNG (pip install matplotlib)", file=sys.stderr)
        return None
    second = next((k for k in ("accuracy", "perplexity", "bpc") if history and history[0].get(k) is not None), None)
    fig, axes = plt.subplots(1, 2 if second else 1, figsize=(10 if second else 5, 3.6))
    axes = list(axes) if second else [axes]
    members = sorted({h.get("member", 0) for h in history})  # an ensemble's rows carry their member
    keys = ["loss", second] if second else ["loss"]
    for ax, key, title in zip(axes, keys, keys, strict=True):
        for i, k in enumerate(members):
            rows = [h for h in history if h.get("member", 0) == k]
            epochs = [h["epoch"] for h in rows]
            tag = f" (member {k})" if len(members) > 1 else ""
            ax.plot(epochs, [h.get(key) for h in rows], marker="o", color=f"C{2 * i % 10}", label="train" + tag)
            if any(h.get(f"val_{key}") is not None for h in rows):
                ax.plot(
                    epochs,
                    [h.get(f"val_{key}") for h in rows],
                    marker="o",
                    linestyle="--",
                    color=f"C{(2 * i + 1) % 10}",
                    label="validation" + tag,
                )
        ax.set_title(title)
        ax.set_xlabel("epoch")
        ax.grid(alpha=0.3)
        ax.legend(fontsize="small" if len(members) > 1 else None)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_confusion(cm: list[list[int]], labels: list[str], path: str | Path) -> Path | None:
    """The confusion matrix as a PNG heat map with counts; None without matplotlib."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        return None
    import numpy as np

    arr = np.asarray(cm)
    n = len(labels)
    fig, ax = plt.subplots(figsize=(1.0 + 0.7 * n, 0.8 + 0.6 * n))
    ax.imshow(arr, cmap="Blues")
    ax.set_xticks(range(n), [str(x) for x in labels], rotation=45, ha="right")
    ax.set_yticks(range(n), [str(x) for x in labels])
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    for i in range(n):
        for j in range(n):
            ax.text(
                j,
                i,
                str(arr[i, j]),
                ha="center",
                va="center",
                color="white" if arr[i, j] > arr.max() / 2 else "black",
                fontsize=8,
            )
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
