"""Forward+backward training speed of the recurrent layers on CPU.

Compares torch.nn.GRU, torch.nn.LSTM, grutext's GRU (fp32 and bf16 GEMMs), minGRU, LSTM (on a full
batch, and on a padded one: lengths spread over [T/2, T]) and RNN at B=64, T in {50, 200, 400},
H in {128, 256} (input size = H), uni- and bidirectional. All models of one configuration are timed
interleaved (round robin), repeated, and the median is kept, so that ratios come from the same
moments of a shared machine. The same run also measures fp32 GEMM GFLOP/s (and bf16 when gru_bf16
is timed: on a CPU without AVX-512 BF16 a 2048³ bf16 GEMM takes about a minute); each layer's
achieved GFLOP/s uses analytic FLOP counts.

    python benchmarks/recurrent_speed.py                 # full run (~10 min on 2 cores)
    python benchmarks/recurrent_speed.py --quick         # T=200 only, fewer repeats
    python benchmarks/recurrent_speed.py --out DIR       # JSON + markdown into DIR (default benchmarks/out)
    python benchmarks/recurrent_speed.py --results       # also write benchmarks/results/recurrent_speed.{md,json}
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from _machine import cpu_name

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from grutext.nn import fused  # noqa: E402
from grutext.nn.cells import LSTM, RNN, MinGRU  # noqa: E402
from grutext.nn.gru import GRU  # noqa: E402

B = 64
MODELS = ["torch_gru", "torch_lstm", "gru_fp32", "gru_bf16", "mingru", "mingru_log", "lstm", "lstm_padded", "rnn"]
# the ratio columns of the table (a/b in tokens/s), each shown when both models were timed
RATIOS = [
    ("gru_fp32", "torch_gru"),
    ("gru_fp32", "torch_lstm"),
    ("gru_bf16", "torch_gru"),
    ("mingru", "gru_fp32"),
    ("mingru_log", "gru_fp32"),
    ("lstm", "torch_lstm"),
    ("lstm_padded", "torch_lstm"),
]
GATES = {"torch_gru": 3, "torch_lstm": 4, "gru_fp32": 3, "gru_bf16": 3, "lstm": 4, "lstm_padded": 4, "rnn": 1}


def layer_flops(model: str, T: int, H: int, In: int, D: int) -> float:
    """Forward+backward FLOPs of one layer: forward GEMMs, then dx/dh and dW (2x forward)."""
    if model.startswith("mingru"):
        return 3 * 2 * T * B * In * 2 * H * D  # one (In -> 2H) projection, the scan is O(T*B*H)
    g = GATES[model]
    return 3 * 2 * T * B * g * H * (In + H) * D


def build(model: str, H: int, bi: bool) -> torch.nn.Module:
    kw: dict[str, Any] = {"batch_first": True, "bidirectional": bi}
    if model == "torch_gru":
        return torch.nn.GRU(H, H, **kw)
    if model == "torch_lstm":
        return torch.nn.LSTM(H, H, **kw)
    if model == "gru_fp32":
        return GRU(H, H, impl="fused", **kw)
    if model == "gru_bf16":
        return GRU(H, H, impl="fused", compute_dtype=torch.bfloat16, **kw)
    if model == "mingru":
        return MinGRU(H, H, **kw)  # default scan on CPU: the compiled sequential scan
    if model == "mingru_log":
        return MinGRU(H, H, scan="log", **kw)  # the paper's log-space parallel scan
    if model in ("lstm", "lstm_padded"):
        return LSTM(H, H, **kw)
    if model == "rnn":
        return RNN(H, H, **kw)
    raise ValueError(model)


def padded_lengths(T: int) -> torch.Tensor:
    """B lengths spread evenly over [T/2, T] (the longest is T): a padded batch, a quarter of it padding."""
    return torch.linspace(T / 2, T, B).round().long()


def step_fn(module: torch.nn.Module, x: torch.Tensor, lengths: torch.Tensor | None = None) -> Callable[[], None]:
    def run() -> None:
        module.zero_grad(set_to_none=True)
        out, h_n = (module(x) if lengths is None else module(x, lengths))[:2]
        h = h_n[0] if isinstance(h_n, tuple) else h_n
        loss = out.float().square().mean() + h.float().square().mean()
        loss.backward()

    return run


def _gf(gemm: dict[str, float], key: str) -> str:
    return f"{gemm[key]:.0f}" if key in gemm else "not measured"


def gemm_gflops(dtype: torch.dtype, m: int, k: int, n: int, reps: int) -> float:
    a = torch.randn(m, k).to(dtype)
    b = torch.randn(k, n).to(dtype)
    for _ in range(2):
        a @ b
    times = []
    for _ in range(reps):
        t0 = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - t0)
    return 2 * m * k * n / statistics.median(times) / 1e9


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--quick", action="store_true", help="T=200 only, 3 repeats")
    ap.add_argument("--repeats", type=int, default=None, help="timed repeats per model (default 5, quick 3)")
    ap.add_argument("--T", type=int, nargs="*", default=None, help="sequence lengths (default 50 200 400)")
    ap.add_argument("--H", type=int, nargs="*", default=None, help="hidden sizes (default 128 256)")
    ap.add_argument("--models", nargs="*", default=MODELS, choices=MODELS)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "out")
    ap.add_argument("--results", action="store_true", help="also write benchmarks/results/recurrent_speed.{md,json}")
    args = ap.parse_args()
    Ts = args.T or ([200] if args.quick else [50, 200, 400])
    Hs = args.H or [128, 256]
    reps = args.repeats or (3 if args.quick else 5)
    torch.manual_seed(0)
    fused.extension_available()  # compile outside the timings

    gemm = {
        "fp32_2048": gemm_gflops(torch.float32, 2048, 2048, 2048, reps),
        "fp32_step_64x256x768": gemm_gflops(torch.float32, 64, 256, 768, 50),
    }
    if "gru_bf16" in args.models:
        gemm["bf16_2048"] = gemm_gflops(torch.bfloat16, 2048, 2048, 2048, reps)
        gemm["bf16_step_64x256x768"] = gemm_gflops(torch.bfloat16, 64, 256, 768, 50)
    print("GEMM GFLOP/s:", {k: round(v, 1) for k, v in gemm.items()}, flush=True)

    rows = []
    t_start = time.time()
    for T in Ts:
        for H in Hs:
            for bi in (False, True):
                D = 2 if bi else 1
                x = torch.randn(B, T, H, requires_grad=True)
                lengths = {"lstm_padded": padded_lengths(T)}  # tokens/s counts the padded B x T, as for the rest
                fns = {m: step_fn(build(m, H, bi), x, lengths.get(m)) for m in args.models}
                for fn in fns.values():  # warm-up
                    fn()
                times: dict[str, list[float]] = {m: [] for m in fns}
                for _ in range(reps):
                    for m, fn in fns.items():  # interleaved: every model once per round
                        t0 = time.perf_counter()
                        fn()
                        times[m].append(time.perf_counter() - t0)
                row: dict[str, Any] = {"T": T, "H": H, "dir": "bi" if bi else "uni", "models": {}}
                for m, ts in times.items():
                    med = statistics.median(ts)
                    row["models"][m] = {
                        "median_s": med,
                        "tokens_per_s": B * T / med,
                        "gflops": layer_flops(m, T, H, H, D) / med / 1e9,
                        "times_s": ts,
                    }
                rows.append(row)
                print(_row_line(row), flush=True)
    result = {
        "machine": {
            "platform": platform.platform(),
            "processor": platform.processor(),
            "threads": torch.get_num_threads(),
            "torch": torch.__version__,
            "cpp_extension": fused.extension_available(),
            "malloc_tuned": fused.tune_allocator(),
            "cpu": cpu_name(),
        },
        "batch": B,
        "repeats": reps,
        "gemm_gflops": gemm,
        "rows": rows,
        "wall_s": time.time() - t_start,
        "command": "python " + " ".join(sys.argv),
    }
    md = markdown(result)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "recurrent_speed.json").write_text(json.dumps(result, indent=1))
    (args.out / "recurrent_speed.md").write_text(md)
    if args.results:
        res = ROOT / "benchmarks" / "results"
        res.mkdir(parents=True, exist_ok=True)
        (res / "recurrent_speed.json").write_text(json.dumps(result, indent=1))
        (res / "recurrent_speed.md").write_text(md)
    print(md)


def _row_line(row: dict[str, Any]) -> str:
    ms = row["models"]
    return f"T={row['T']} H={row['H']} {row['dir']}: " + ", ".join(
        f"{m} {v['tokens_per_s']:.0f} tok/s" for m, v in ms.items()
    )


def _ratio(ms: dict[str, Any], a: str, b: str) -> str:
    if a in ms and b in ms:
        return f"{ms[a]['tokens_per_s'] / ms[b]['tokens_per_s']:.2f}"
    return "-"


def markdown(result: dict[str, Any]) -> str:
    g = result["gemm_gflops"]
    lines = [
        "# Recurrent layer speed (forward + backward, CPU)",
        "",
        f"B={result['batch']}, input size = H, medians of {result['repeats']} interleaved repeats; "
        f"{result['machine'].get('cpu', '?')}, torch {result['machine']['torch']}, "
        f"{result['machine']['threads']} threads, "
        f"C++ loop: {result['machine']['cpp_extension']}, malloc tuning (`grutext.nn.fused.tune_allocator`, "
        f"applies to every model in the run): {result['machine'].get('malloc_tuned', False)}.",
        "",
        f"GEMM GFLOP/s in this run: fp32 2048³ {g['fp32_2048']:.0f}, bf16 2048³ {_gf(g, 'bf16_2048')}; "
        f"per-step shape 64×256×768: fp32 {g['fp32_step_64x256x768']:.0f}, bf16 {_gf(g, 'bf16_step_64x256x768')}.",
        "",
        "Tokens/s (thousands), achieved GFLOP/s in brackets (analytic FLOPs: 3 x forward GEMM FLOPs per layer). "
        "gru_* = grutext GRU fused path; mingru = compiled sequential scan (the CPU default), "
        "mingru_log = the paper's log-space parallel scan; lstm = grutext's LSTM on a full batch (torch's "
        "oneDNN kernel, which computes exactly our function there), lstm_padded = the same on a padded batch "
        "(lengths spread over [T/2, T]; the C++ loop of `csrc/lstm_loop.cpp`, each row walking its own length; "
        "tokens/s counts B x T as for the others), rnn = grutext's RNN (C++ loop).",
        "",
        "The fused GRU (`grutext.nn.fused`, C++ loops in `csrc/gru_loop.cpp`): each call splits its "
        "(direction, batch chunk) items across the threads once, and every thread walks all steps of its "
        "items with single-threaded BLAS calls (rows and directions are independent recurrences: no "
        "synchronisation per step); per step one GEMM for W_ih x (fp32; bf16 does all steps in one GEMM "
        "before the loop), one for W_hh h and one fused elementwise pass; backward sums the bias gradients "
        "in the loop and does dx, dW_ih and dW_hh as GEMMs over all steps, dW_hh against the layer's own "
        "shifted outputs. minGRU's analytic FLOPs are a third of the GRU's at input size = H (one In x 2H "
        "projection, no recurrent GEMM), so at equal GFLOP/s it can be at most about 3x faster than the GRU.",
        "",
    ]
    models = list(result["rows"][0]["models"]) if result["rows"] else []
    ratios = [(a, b) for a, b in RATIOS if a in models and b in models]  # only the pairs this run timed
    short = {"gru_fp32": "gru", "gru_bf16": "bf16"}
    names = [f"{short.get(a, a)}/{short.get(b, b)}" for a, b in ratios]
    lines.append("| T | H | dir | " + " | ".join(models + names) + " |")
    lines.append("|---" * (3 + len(models) + len(ratios)) + "|")
    for row in result["rows"]:
        ms = row["models"]
        cells = [f"{ms[m]['tokens_per_s'] / 1e3:.1f} ({ms[m]['gflops']:.0f})" for m in models]
        lines.append(
            f"| {row['T']} | {row['H']} | {row['dir']} | "
            + " | ".join(cells)
            + " | "
            + " | ".join(_ratio(ms, a, b) for a, b in ratios)
            + " |"
        )
    lines += ["", f"Command: `{result['command']}`; wall time {result['wall_s']:.0f} s.", ""]
    return "\n".join(lines)


if __name__ == "__main__":
    main()
