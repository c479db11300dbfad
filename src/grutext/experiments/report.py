"""The results of an experiment: the summary table (mean ± std, min-max per point), the paired comparisons
against the first point, the baseline row, CSV and JSON files, the plots and one self-contained HTML page."""

from __future__ import annotations

import base64
import csv
import html
import io
import math
import sys
from pathlib import Path
from typing import Any

from grutext.experiments.plan import Experiment
from grutext.experiments.stats import Paired, paired_comparison, spread
from grutext.experiments.worker import HIGHER_IS_BETTER, SCALE, write_json_atomic

RUN_COLUMNS = [
    "name", "label", "seed", "train_seed", "cell", "hidden_size", "params", "metric", "valid", "test", "best_epoch",
    "epochs", "train_seconds", "seconds_per_epoch", "tokens_per_s", "size_bytes", "peak_rss_mb", "latency_ms",
]  # fmt: skip
SPREAD_COLUMNS = [
    "valid", "test", "best_epoch", "train_seconds", "seconds_per_epoch", "tokens_per_s", "size_bytes", "peak_rss_mb",
    "latency_ms",
]  # fmt: skip


def _unit(metric: str) -> str:
    return "points" if SCALE.get(metric, 1.0) == 100.0 else metric


def summarize(exp: Experiment, records: list[dict[str, Any]]) -> dict[str, Any]:
    """Per point: its runs' spreads; per point after the first: the paired comparison on test (else valid)."""
    metric = records[0]["metric"] if records else "accuracy"
    scale = SCALE.get(metric, 1.0)
    rows: list[dict[str, Any]] = []
    for p in exp.points:
        runs = [r for r in records if r["point"] == p.name]
        row: dict[str, Any] = {"point": p.name, "label": p.label, "values": p.values, "runs": len(runs)}
        row["params"] = runs[0]["params"] if runs else None
        row["hidden_size"] = runs[0]["hidden_size"] if runs else None
        for col in SPREAD_COLUMNS:
            factor = scale if col in ("valid", "test") else 1.0
            s = spread([r[col] * factor for r in runs if r.get(col) is not None])
            row[col] = None if s is None else s.__dict__
        rows.append(row)
    split = "test" if records and all(r.get("test") is not None for r in records) else "valid"
    comparisons: list[Paired] = []
    if len(exp.points) > 1:
        ref = exp.points[0]
        ref_values = {r["seed"]: r[split] * scale for r in records if r["point"] == ref.name and r[split] is not None}
        for p in exp.points[1:]:
            vals = {r["seed"]: r[split] * scale for r in records if r["point"] == p.name and r[split] is not None}
            c = paired_comparison(
                p.label, ref.label, vals, ref_values, higher_is_better=HIGHER_IS_BETTER.get(metric, True),
                unit=_unit(metric), digits=1 if scale == 100.0 else 2,
            )  # fmt: skip
            if c is not None:
                comparisons.append(c)
    return {
        "metric": metric,
        "scale": scale,
        "higher_is_better": HIGHER_IS_BETTER.get(metric, True),
        "compared_on": split,
        "points": rows,
        "comparisons": [c.__dict__ for c in comparisons],
    }


def _monitor(kind: str, asked: str) -> str:
    """The validation figure the runs really pick their best epoch by (the tasks override the classifier's
    default: a language model always val_loss, a tagger chunk F1 or, for plain labels, token accuracy)."""
    if kind == "language_model" or asked == "val_loss":
        return "val_loss"
    if kind == "tagger":
        return "val_chunk_f1 (val_accuracy for plain labels)"
    return asked


def settings_line(exp: Experiment) -> str:
    """The settings every run shares, in one line (data, network, optimisation, seeds)."""
    c = exp.config
    d, m, t = c["data"], c["model"], c["train"]
    parts = [
        f"data {d['train']}",
        f"task {exp.kind}",
        f"embed {m['embed_dim']}",
        f"layers {m['num_layers']}",
        "bidirectional" if m["bidirectional"] and exp.kind != "language_model" else "unidirectional",
        f"dropout {m['dropout']}",
        f"epochs {t['epochs'] or 'auto'} (patience {t['patience']}, monitor {_monitor(exp.kind, t['monitor'])})",
        f"batch {t['batch_size']}",
        f"lr {t['lr']} ({t['schedule']})",
        f"seeds {exp.seeds} (training seeds {exp.base_seed}..{exp.train_seed(exp.seeds)})",
    ]
    if exp.match:
        parts.append(f"--match {exp.match}")
    return "settings: " + ", ".join(parts)


def _fmt(s: dict[str, Any] | None, digits: int = 1, minmax: bool = True) -> str:
    if s is None:
        return "n/a"
    text = f"{s['mean']:.{digits}f} ± {s['std']:.{digits}f}"
    if minmax and s["n"] > 1:
        text += f" ({s['min']:.{digits}f}-{s['max']:.{digits}f})"
    return text


def _mean(s: dict[str, Any] | None, digits: int = 1, factor: float = 1.0) -> str:
    return "n/a" if s is None else f"{s['mean'] * factor:.{digits}f}"


def table_rows(summary: dict[str, Any], baseline: dict[str, Any] | None = None) -> tuple[list[str], list[list[str]]]:
    """The summary as a header and rows of strings (for the terminal, markdown and HTML)."""
    metric = summary["metric"]
    d = 1 if summary["scale"] == 100.0 else 2
    unit = " (points)" if summary["scale"] == 100.0 else ""
    head = [
        "", "params", "hidden", f"valid {metric}{unit}", f"test {metric}{unit}", "best epoch", "train s", "s/epoch",
        "tokens/s", "size MB", "peak RSS MB", "latency ms",
    ]  # fmt: skip
    rows = []
    for r in summary["points"]:
        rows.append(
            [
                r["label"],
                f"{r['params']:,}" if r["params"] is not None else "n/a",
                str(r["hidden_size"]),
                _fmt(r["valid"], d),
                _fmt(r["test"], d),
                _mean(r["best_epoch"], 1),
                _mean(r["train_seconds"], 0),
                _mean(r["seconds_per_epoch"], 1),
                _mean(r["tokens_per_s"], 0),
                _mean(r["size_bytes"], 2, 1e-6),
                _mean(r["peak_rss_mb"], 0),
                _mean(r["latency_ms"], 2),
            ]
        )
    if baseline is not None:
        f = summary["scale"]
        v, t = baseline.get("valid"), baseline.get("test")
        rows.append(
            [
                baseline["name"],
                "",
                "",
                "n/a" if v is None else f"{v * f:.{d}f}",
                "n/a" if t is None else f"{t * f:.{d}f}",
            ]
            + ["", f"{baseline['seconds']:.0f}", "", "", "", "", ""]
        )
    return head, rows


def format_table(head: list[str], rows: list[list[str]]) -> str:
    widths = [max(len(head[i]), *(len(r[i]) for r in rows)) if rows else len(head[i]) for i in range(len(head))]
    lines = ["  ".join(h.ljust(w) for h, w in zip(head, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in rows]
    return "\n".join(lines)


def markdown_table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


# ---- plots ---------------------------------------------------------------------------------------------


def _pyplot() -> Any:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        print("note: matplotlib is not installed, no plots (pip install matplotlib)", file=sys.stderr)
        return None
    return plt


def plot_curves(exp: Experiment, records: list[dict[str, Any]], metric: str, path: Path) -> Path | None:
    """Validation metric per epoch: one line per point (mean over seeds) with a band from min to max."""
    plt = _pyplot()
    if plt is None:
        return None
    scale = SCALE.get(metric, 1.0)
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    for i, p in enumerate(exp.points):
        curves = [r["curve"] for r in records if r["point"] == p.name and r.get("curve")]
        if not curves:
            continue
        n = max(len(c) for c in curves)
        mean, lo, hi, xs = [], [], [], []
        for e in range(n):
            vals = [c[e] * scale for c in curves if e < len(c) and c[e] is not None and math.isfinite(c[e])]
            if vals:
                xs.append(e + 1)
                mean.append(sum(vals) / len(vals))
                lo.append(min(vals))
                hi.append(max(vals))
        ax.plot(xs, mean, marker="o", color=f"C{i % 10}", label=f"{p.label} ({len(curves)} seeds)")
        ax.fill_between(xs, lo, hi, color=f"C{i % 10}", alpha=0.18)
    ax.set_xlabel("epoch")
    ax.xaxis.get_major_locator().set_params(integer=True)
    ax.set_ylabel(f"validation {metric}" + (" (points)" if scale == 100.0 else ""))
    ax.set_title("validation curves: mean over seeds, band = min-max")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_against(
    exp: Experiment, records: list[dict[str, Any]], metric: str, split: str, x_key: str, x_label: str, path: Path
) -> Path | None:
    """The metric of every run against `x_key` (parameters, training seconds, a swept value), one colour a point."""
    plt = _pyplot()
    if plt is None:
        return None
    scale = SCALE.get(metric, 1.0)
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    numeric = all(isinstance(r.get(x_key), int | float) for r in records if r.get(x_key) is not None)
    for i, p in enumerate(exp.points):
        runs = [r for r in records if r["point"] == p.name and r.get(split) is not None and r.get(x_key) is not None]
        if not runs:
            continue
        ys = [r[split] * scale for r in runs]
        if numeric:
            xs = [float(r[x_key]) for r in runs]
            ax.scatter(xs, ys, color=f"C{i % 10}", label=p.label, alpha=0.8)
            ax.scatter([sum(xs) / len(xs)], [sum(ys) / len(ys)], color=f"C{i % 10}", marker="x", s=80)
        else:
            ax.scatter([str(r[x_key]) for r in runs], ys, color=f"C{i % 10}", label=p.label, alpha=0.8)
    ax.set_xlabel(x_label)
    ax.set_ylabel(f"{split} {metric}" + (" (points)" if scale == 100.0 else ""))
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_swept(exp: Experiment, summary: dict[str, Any], path: Path) -> Path | None:
    """Sweep: the metric (mean, min-max bars) against the first swept field, one line per value of the others."""
    plt = _pyplot()
    if plt is None or not exp.swept:
        return None
    split = summary["compared_on"]
    first = exp.swept[0]
    groups: dict[str, list[dict[str, Any]]] = {}
    for row in summary["points"]:
        rest = ", ".join(f"{k.split('.', 1)[1]}={v}" for k, v in row["values"].items() if k != first)
        groups.setdefault(rest, []).append(row)
    fig, ax = plt.subplots(figsize=(6.4, 4.0))
    numeric = all(isinstance(r["values"][first], int | float) for r in summary["points"])
    for i, (rest, rows) in enumerate(groups.items()):
        rows = [r for r in rows if r[split] is not None]
        xs = [r["values"][first] if numeric else str(r["values"][first]) for r in rows]
        ys = [r[split]["mean"] for r in rows]
        err = [[r[split]["mean"] - r[split]["min"] for r in rows], [r[split]["max"] - r[split]["mean"] for r in rows]]
        ax.errorbar(xs, ys, yerr=err, marker="o", capsize=4, color=f"C{i % 10}", label=rest or None)
    if numeric and all(isinstance(r["values"][first], int) for r in summary["points"]):
        vals = sorted({r["values"][first] for r in summary["points"]})
        if len(vals) > 2 and vals[0] > 0 and vals[-1] / vals[0] >= 8:
            ax.set_xscale("log", base=2)
        ax.set_xticks(vals)
        ax.set_xticklabels([str(v) for v in vals])
    metric = summary["metric"]
    ax.set_xlabel(first.split(".", 1)[1])
    ax.set_ylabel(f"{split} {metric}" + (" (points)" if summary["scale"] == 100.0 else "") + ": mean, min-max")
    ax.grid(alpha=0.3)
    if any(groups):
        ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


# ---- files ------------------------------------------------------------------------------------------------


def _csv_value(v: Any) -> Any:
    if isinstance(v, float):
        return f"{v:.6g}"
    return "" if v is None else v


def write_results(
    exp: Experiment, records: list[dict[str, Any]], baseline: dict[str, Any] | None, log: Any = print
) -> dict[str, Path]:
    """runs.csv, summary.csv, summary.md, results.json, the PNGs and report.html in `exp.out`; prints the table
    and the comparison sentences. Returns the files written, by role."""
    out = exp.out
    summary = summarize(exp, records)
    head, rows = table_rows(summary, baseline)
    log("\n" + format_table(head, rows))
    for c in summary["comparisons"]:
        log(c["sentence"])
    files: dict[str, Path] = {}
    files["runs_csv"] = _write_runs_csv(out / "runs.csv", records)
    files["summary_csv"] = _write_summary_csv(out / "summary.csv", summary)
    md = (
        f"{settings_line(exp)}\n\n"
        + markdown_table(head, rows)
        + "\n\n"
        + "\n".join(f"- {c['sentence']}" for c in summary["comparisons"])
        + "\n"
    )
    (out / "summary.md").write_text(md, encoding="utf-8")
    files["summary_md"] = out / "summary.md"
    plots = _plots(exp, records, summary)
    for title, path in plots:
        if path is not None:
            files[title] = path
    results = {
        "mode": exp.mode,
        "kind": exp.kind,
        "seeds": exp.seeds,
        "match": exp.match,
        "matching": exp.matching,
        "swept": exp.swept,
        "summary": summary,
        "baseline": baseline,
        "runs": records,
    }
    write_json_atomic(out / "results.json", _clean(results))
    files["results_json"] = out / "results.json"
    (out / "report.html").write_text(_html(exp, summary, head, rows, plots, baseline), encoding="utf-8")
    files["report_html"] = out / "report.html"
    return files


def _write_runs_csv(path: Path, records: list[dict[str, Any]]) -> Path:
    """One row per run: `RUN_COLUMNS`, then every swept setting's value (sorted by name)."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        extra = sorted({k for r in records for k in r.get("values", {})})
        w.writerow(RUN_COLUMNS + extra)
        for r in records:
            w.writerow([_csv_value(r.get(c)) for c in RUN_COLUMNS] + [_csv_value(r["values"].get(k)) for k in extra])
    return path


def _write_summary_csv(path: Path, summary: dict[str, Any]) -> Path:
    """One row per point: runs, parameters, hidden size and the mean, std, min and max of each `SPREAD_COLUMNS`."""
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(
            ["point", "runs", "params", "hidden_size"]
            + [f"{c}_{s}" for c in SPREAD_COLUMNS for s in ("mean", "std", "min", "max")]
        )
        for r in summary["points"]:
            vals = [
                r[c][s] if r[c] is not None else None for c in SPREAD_COLUMNS for s in ("mean", "std", "min", "max")
            ]
            w.writerow([r["label"], r["runs"], r["params"], r["hidden_size"]] + [_csv_value(v) for v in vals])
    return path


def _plots(exp: Experiment, records: list[dict[str, Any]], summary: dict[str, Any]) -> list[tuple[str, Path | None]]:
    """The PNGs in `exp.out`, by title (None where a plot has nothing to show): the validation curves, the
    metric against parameters and against training time, and (when swept) against the swept setting."""
    out, split, metric = exp.out, summary["compared_on"], summary["metric"]
    plots: list[tuple[str, Path | None]] = [
        ("validation curves", plot_curves(exp, records, metric, out / "curves.png")),
        (
            f"{split} {metric} vs trainable parameters",
            plot_against(exp, records, metric, split, "params", "trainable parameters", out / "metric_vs_params.png"),
        ),
        (
            f"{split} {metric} vs training time",
            plot_against(exp, records, metric, split, "train_seconds", "training seconds", out / "metric_vs_time.png"),
        ),
    ]
    if exp.swept:
        plots.append((f"{split} {metric} vs {exp.swept[0]}", plot_swept(exp, summary, out / "metric_vs_swept.png")))
    return plots


def _clean(x: Any) -> Any:
    """NaN and infinities as None (JSON has neither); the records hold finite values already."""
    if isinstance(x, float):
        return x if math.isfinite(x) else None
    if isinstance(x, dict):
        return {k: _clean(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [_clean(v) for v in x]
    return x


def _img(path: Path) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(path.name)}" src="data:image/png;base64,{data}">'


def _html(
    exp: Experiment,
    summary: dict[str, Any],
    head: list[str],
    rows: list[list[str]],
    plots: list[tuple[str, Path | None]],
    baseline: dict[str, Any] | None,
) -> str:
    buf = io.StringIO()
    title = f"grutext {exp.mode}: {', '.join(p.label for p in exp.points)}"
    buf.write(f"<!doctype html><html><head><meta charset='utf-8'><title>{html.escape(title)}</title>")
    buf.write(
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}table{border-collapse:collapse}"
        "td,th{border:1px solid #ccc;padding:3px 8px;text-align:right}td:first-child{text-align:left}"
        "figure{display:inline-block;width:47%;margin:4px}img{width:100%}</style></head><body>"
    )
    buf.write(f"<h1>{html.escape(title)}</h1>")
    buf.write(
        f"<p>{html.escape(settings_line(exp))}; metric {html.escape(summary['metric'])}; paired comparisons on "
        f"{summary['compared_on']}.</p>"
    )
    if exp.matching:
        buf.write("<p>matched parameters (--match params): ")
        buf.write(
            "; ".join(
                f"{html.escape(c)} hidden {m['hidden_size']} ({m['params']:,}, {m['relative_difference']:+.2%})"
                for c, m in exp.matching.items()
            )
        )
        buf.write("</p>")
    buf.write("<table><tr>" + "".join(f"<th>{html.escape(h)}</th>" for h in head) + "</tr>")
    for r in rows:
        buf.write("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>")
    buf.write("</table>")
    if baseline is not None:
        buf.write(f"<p>{html.escape(baseline['name'])}: {html.escape(baseline['description'])}</p>")
    if summary["comparisons"]:
        buf.write("<ul>" + "".join(f"<li>{html.escape(c['sentence'])}</li>" for c in summary["comparisons"]) + "</ul>")
    for title, path in plots:
        if path is not None:
            buf.write(f"<figure>{_img(path)}<figcaption>{html.escape(title)}</figcaption></figure>")
    buf.write("</body></html>\n")
    return buf.getvalue()


__all__ = ["format_table", "markdown_table", "summarize", "table_rows", "write_results"]
