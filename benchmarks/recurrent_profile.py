"""Where the time of a recurrent training step goes: grutext's fused GRU against torch.nn.LSTM
(oneDNN) at the size where the speed table compares them (B=64, T=200, H=256, input size = H).

For each layer and direction setting it times, interleaved and repeated (medians):

- forward without autograd, forward with autograd (what training runs), the backward pass;
- the GEMM floor: the layer's analytic GEMM FLOPs at the rate the GEMMs alone reach in the shapes the
  layer issues them. The GRU's C++ loop gives each thread its own (direction, batch chunk) items and
  single-threaded GEMMs of chunk x H x 3H per step; torch's LSTM runs each step's 64 x H x 4H GEMM
  on all threads. The floor is what the step would cost if nothing but those GEMMs ran.

The fused GRU is also timed with its input projections as one GEMM before the loop
(``fused.PROJECT_IN_LOOP = False``), the alternative the loop was measured against.

    python benchmarks/recurrent_profile.py            # markdown into benchmarks/results/recurrent_profile.md
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import torch

from _machine import cpu_name

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from grutext.nn import fused  # noqa: E402
from grutext.nn.gru import GRU  # noqa: E402

B, T, H = 64, 200, 256


def gemm_rate(m: int, k: int, n: int, threads: int, reps: int = 200) -> float:
    """GFLOP/s of (m, k) @ (k, n) with `threads` torch threads, median of `reps` back-to-back calls."""
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    a, b, out = torch.randn(m, k), torch.randn(k, n), torch.empty(m, n)
    for _ in range(10):
        torch.mm(a, b, out=out)
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        torch.mm(a, b, out=out)
        times.append(time.perf_counter() - t0)
    torch.set_num_threads(before)
    return 2 * m * k * n / statistics.median(times) / 1e9


def phases(layer: torch.nn.Module, x: torch.Tensor) -> dict[str, Callable[[], None]]:
    def fwd() -> None:
        with torch.no_grad():
            layer(x)

    state: dict[str, torch.Tensor] = {}

    def fwd_grad() -> None:
        layer.zero_grad(set_to_none=True)
        out, _ = layer(x)
        state["loss"] = out.square().mean()

    def bwd() -> None:
        state["loss"].backward()

    return {"forward (no grad)": fwd, "forward (autograd)": fwd_grad, "backward": bwd}


def profile(bi: bool, reps: int) -> list[str]:
    D, threads = (2 if bi else 1), torch.get_num_threads()
    x = torch.randn(B, T, H, requires_grad=True)
    layers: dict[str, torch.nn.Module] = {
        "gru (fused, projections in the loop)": GRU(H, H, batch_first=True, bidirectional=bi, impl="fused")
    }
    layers["gru (fused, projections before the loop)"] = layers["gru (fused, projections in the loop)"]
    layers["torch.nn.LSTM"] = torch.nn.LSTM(H, H, batch_first=True, bidirectional=bi)
    times: dict[str, dict[str, list[float]]] = {name: {} for name in layers}
    for _ in range(reps + 1):  # the first round warms up
        for name, layer in layers.items():
            fused.PROJECT_IN_LOOP = "in the loop" in name
            for phase, fn in phases(layer, x).items():
                t0 = time.perf_counter()
                fn()
                times[name].setdefault(phase, []).append(time.perf_counter() - t0)
    fused.PROJECT_IN_LOOP = True
    chunks = max(1, min((threads + D - 1) // D, B // 8))  # the C++ loop's batch_chunks
    rows = B // chunks
    gru_rate = gemm_rate(rows, H, 3 * H, 1) * min(threads, D * chunks)
    lstm_rate = gemm_rate(B, H, 4 * H, threads)
    out = [
        f"| {'bi' if bi else 'uni'} | layer | forward (no grad) ms | forward (autograd) ms | backward ms "
        "| step ms | GEMM floor ms | floor / step |",
        "|---|---|---:|---:|---:|---:|---:|---:|",
    ]
    for name, ph in times.items():
        med = {p: 1000 * statistics.median(v[1:]) for p, v in ph.items()}
        step = med["forward (autograd)"] + med["backward"]
        gates, rate = (4, lstm_rate) if "LSTM" in name else (3, gru_rate)
        floor = 1000 * 3 * 2 * T * B * gates * H * (2 * H) * D / (rate * 1e9)
        out.append(
            f"| | {name} | {med['forward (no grad)']:.1f} | {med['forward (autograd)']:.1f} | "
            f"{med['backward']:.1f} | {step:.1f} | {floor:.1f} | {floor / step:.2f} |"
        )
    out.append(
        f"\nGEMM rates: gru {rows}x{H}x{3 * H} single-threaded x {min(threads, D * chunks)} threads = "
        f"{gru_rate:.0f} GFLOP/s; lstm {B}x{H}x{4 * H} on {threads} threads = {lstm_rate:.0f} GFLOP/s.\n"
    )
    return out


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "recurrent_profile.md")
    args = ap.parse_args()
    torch.manual_seed(0)
    fused.extension_available()  # compile outside the timings
    lines = [
        "# One training step, phase by phase: fused GRU vs torch.nn.LSTM",
        "",
        f"B={B}, T={T}, H={H} (input size = H), {torch.get_num_threads()} threads, {cpu_name()}, "
        f"torch {torch.__version__}, medians of {args.repeats} interleaved repeats. "
        "`step` = forward (autograd) + backward; `GEMM floor` = the layer's analytic GEMM FLOPs "
        "(3x the forward's) at the rate its GEMMs reach alone in the shapes it issues them.",
        "",
    ]
    for bi in (False, True):
        lines += profile(bi, args.repeats)
    lines.append(f"Command: `python benchmarks/recurrent_profile.py --repeats {args.repeats}`")
    text = "\n".join(lines) + "\n"
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
