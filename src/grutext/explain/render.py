"""Render an `Explanation`: a self-contained HTML page (inline CSS, no scripts, no external
assets) and a PNG heat map (matplotlib, imported lazily)."""

from __future__ import annotations

import base64
import html
import math
from pathlib import Path
from typing import Any

import numpy as np

from grutext.explain.core import Explanation
from grutext.explain.gates import DIRECTIONS
from grutext.safeio import output_path, write_output

CSS = """
body{font-family:-apple-system,Segoe UI,Helvetica,Arial,sans-serif;margin:24px auto;max-width:1100px;color:#222;
padding:0 12px}
h1{font-size:1.4em;margin-bottom:4px}
h2{font-size:1.15em;margin-top:28px;border-bottom:1px solid #ddd;padding-bottom:3px}
h3{font-size:1em;margin:16px 0 6px}
.meta{color:#666;font-size:.9em}.note{background:#fff4d6;border-left:4px solid #e0a800;padding:6px 10px;margin:6px 0}
.text{line-height:2.1em;font-size:1.05em}
.tok{padding:2px 3px;margin:0 1px;border-radius:3px;white-space:pre}
.tok.unk{text-decoration:underline dotted #a00}.tok.gen{font-style:italic;outline:1px dashed #888}
table{border-collapse:collapse;font-size:.85em;margin:6px 0}
td,th{border:1px solid #e3e3e3;padding:3px 6px;text-align:right}th{background:#f6f6f6}
td.l,th.l{text-align:left}
.bar{display:inline-block;height:10px;background:#4a7bd0;vertical-align:middle}
.heat td{padding:2px 4px;min-width:26px;font-size:.8em}.heat th{font-weight:normal;font-size:.8em}
.heat th.col{writing-mode:vertical-rl;transform:rotate(180deg);text-align:left;max-height:120px;white-space:nowrap}
.scroll{overflow-x:auto}
.legend span{display:inline-block;width:22px;height:12px;vertical-align:middle}
pre{background:#f7f7f7;padding:8px;overflow-x:auto;font-size:.82em}
img{max-width:100%}
"""

GATE_ROWS = (
    ("z", "update z", "seq"),
    ("r", "reset r", "seq"),
    ("n", "candidate n", "div"),
    ("dh", "|Δh|", "seq"),
    ("retention", "retention", "seq"),
)


def _rgb(value: float, vmax: float, scale: str) -> tuple[int, int, int]:
    """A background colour: diverging red (+) / blue (−), or sequential white -> blue."""
    if value is None or not np.isfinite(value) or vmax <= 0:
        return (255, 255, 255)
    a = max(-1.0, min(1.0, float(value) / vmax))
    if scale == "div":
        if a >= 0:
            return (255, int(255 - 170 * a), int(255 - 190 * a))  # towards (255, 85, 65)
        a = -a
        return (int(255 - 200 * a), int(255 - 130 * a), 255)  # towards (55, 125, 255)
    if scale == "warm":
        a = max(a, 0.0)
        return (255, int(255 - 150 * a), int(255 - 230 * a))  # towards (255, 105, 25)
    a = max(a, 0.0)
    return (int(255 - 215 * a), int(255 - 165 * a), int(255 - 80 * a))  # towards (40, 90, 175)


def _style(value: float, vmax: float, scale: str) -> str:
    r, g, b = _rgb(value, vmax, scale)
    dark = 0.299 * r + 0.587 * g + 0.114 * b < 140
    return f"background:rgb({r},{g},{b});color:{'#fff' if dark else '#111'}"


def _signal(ex: Explanation) -> tuple[np.ndarray, str, str]:
    """(values (T,), name, colour scale) of the signal the tokens are coloured by."""
    if ex.surprisal_bits is not None:  # a language model's explanation
        return np.asarray(ex.surprisal_bits, float), "surprisal (bits)", "warm"
    if ex.importance is not None:
        if ex.method == "attention":
            return np.asarray(ex.importance, float), "attention weight", "seq"
        name = {"ig": "integrated gradients", "occlusion": "occlusion"}.get(ex.method or "", ex.method or "")
        return np.asarray(ex.importance, float), f"{name} for class {ex.target!r}", "div"
    return np.zeros(len(ex.tokens)), "none", "seq"


def _vmax(values: np.ndarray) -> float:
    finite = np.abs(values[np.isfinite(values)])
    return float(finite.max()) if finite.size and finite.max() > 0 else 1.0


def _fmt(v: Any) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "–"
    return f"{v:.3f}" if isinstance(v, (float, np.floating)) else str(v)


def tokens_html(ex: Explanation, values: np.ndarray | None = None, scale: str | None = None) -> str:
    """The text as one ``<span class="tok">`` per token, coloured by the signal."""
    if values is None:
        values, _, scale = _signal(ex)
    vmax = _vmax(values)
    parts = []
    for i, tok in enumerate(ex.tokens):
        cls = "tok"
        if ex.unknown and i < len(ex.unknown) and ex.unknown[i]:
            cls += " unk"
        if ex.generated is not None and bool(ex.generated[i]):
            cls += " gen"
        title = f"position {i}: {_fmt(float(values[i]))}"
        if ex.token_prob is not None and np.isfinite(ex.token_prob[i]):
            title += f" · p={ex.token_prob[i]:.4f}"
        parts.append(
            f'<span class="{cls}" title="{html.escape(title)}" style="{_style(values[i], vmax, scale or "seq")}">'
            f"{html.escape(tok)}</span>"
        )
    return " ".join(parts)


def _prediction_html(ex: Explanation) -> str:
    if ex.probabilities is None:
        return ""
    rows = []
    for lab, p in sorted(zip(ex.labels, ex.probabilities, strict=True), key=lambda x: -x[1])[:20]:
        mark = " ◀ predicted" if lab == ex.predicted else ""
        mark += " (explained)" if lab == ex.target else ""
        rows.append(
            f'<tr><td class="l">{html.escape(str(lab))}</td><td>{p:.4f}</td>'
            f'<td class="l"><span class="bar" style="width:{int(200 * p)}px"></span>{mark}</td></tr>'
        )
    return (
        '<h2>Prediction</h2><table><tr><th class="l">class</th><th>probability</th><th></th></tr>'
        + "".join(rows)
        + "</table>"
    )


def _gates_html(ex: Explanation) -> str:
    g = ex.gates
    if g is None:
        return ""
    out = [
        "<h2>Gates × tokens</h2>",
        '<p class="meta">Unit means per token. z near 1 keeps the past, r near 0 lets the candidate ignore it; '
        "|Δh| is how much the state moved; retention is the share of the token's write that survives to the "
        "direction's last step (product of the later update gates).</p>",
    ]
    head = "".join(f'<th class="col">{html.escape(t)}</th>' for t in ex.tokens)
    for layer in range(g.num_layers):
        out.append(
            f"<h3>layer {layer + 1}</h3><div class='scroll'><table class='heat'><tr><th class='l'>gate</th>{head}</tr>"
        )
        for d in range(g.num_directions):
            for key, label, scale in GATE_ROWS:
                vals = g.mean(key)[layer, d]  # (T,)
                if np.isnan(vals).all():
                    continue
                vmax = 1.0 if key in ("z", "r", "n", "retention") else _vmax(vals)
                cells = "".join(
                    f'<td style="{_style(v, vmax, scale)}" title="{_fmt(float(v))}">{_fmt(float(v))[:4]}</td>'
                    for v in vals
                )
                arrow = "→" if d == 0 else "←"
                out.append(
                    f"<tr><th class='l'>{label} {arrow} <span class='meta'>{DIRECTIONS[d]}</span></th>{cells}</tr>"
                )
        out.append("</table></div>")
    return "".join(out)


def _lm_table(ex: Explanation) -> str:
    if ex.surprisal_bits is None:
        return ""
    assert ex.token_prob is not None and ex.surprisal_nats is not None  # set together with surprisal_bits
    rows = []
    for i, tok in enumerate(ex.tokens):
        gen = "generated" if ex.generated is not None and ex.generated[i] else "read"
        rows.append(
            f'<tr><td>{i}</td><td class="l">{html.escape(tok)}</td><td>{_fmt(float(ex.token_prob[i]))}</td>'
            f"<td>{_fmt(float(ex.surprisal_nats[i]))}</td><td>{_fmt(float(ex.surprisal_bits[i]))}</td>"
            f'<td class="l">{gen}</td></tr>'
        )
    return (
        "<h2>Surprisal per token</h2><div class='scroll'><table><tr><th>#</th><th class='l'>token</th>"
        "<th>p(token | before)</th><th>nats</th><th>bits</th><th class='l'></th></tr>"
        + "".join(rows)
        + "</table></div>"
    )


def _legend(scale: str, vmax: float, ex: Explanation) -> str:
    """One line saying what the token colours mean, with swatches."""

    def swatch(v: float) -> str:
        return f'<span style="{_style(v, vmax, scale)}"></span>'

    if scale == "div":
        text = (
            f"{swatch(-vmax)} against {html.escape(repr(ex.target))} · {swatch(0.0)} neutral · "
            f"{swatch(vmax)} for {html.escape(repr(ex.target))} (±{vmax:.3g})"
        )
    else:
        text = f"{swatch(0.0)} 0 → {swatch(vmax)} {vmax:.3g}"
    extra = " · dotted underline: not in the vocabulary" if any(ex.unknown) else ""
    extra += " · dashed outline: generated" if ex.generated is not None and ex.generated.any() else ""
    return f'<p class="legend meta">{text}{extra} · hover a token for its value</p>'


def explanation_body(ex: Explanation, heading: str = "h2") -> str:
    """The HTML fragment of one explanation (notes, prediction, coloured tokens, gate heat maps)."""
    values, name, scale = _signal(ex)
    parts = [f'<div class="note">{html.escape(n)}</div>' for n in ex.notes]
    parts.append(_prediction_html(ex))
    parts.append(f"<h2>Tokens coloured by {html.escape(name)}</h2>")
    if ex.details.get("completeness_gap") is not None:
        d = ex.details
        parts.append(
            f'<p class="meta">integrated gradients, {d["steps"]} steps, zero-embedding baseline: '
            f"attributions sum to {d['attribution_sum']:+.4f}, p(x) − p(baseline) = {d['delta']:+.4f}, "
            f"completeness gap {d['completeness_gap']:+.2e}</p>"
        )
    parts.append(f'<p class="text">{tokens_html(ex, values, scale)}</p>')
    parts.append(_legend(scale, _vmax(values), ex))
    parts.append(_lm_table(ex))
    parts.append(_gates_html(ex))
    return "\n".join(p for p in parts if p)


def page(title: str, body: str) -> str:
    """A complete HTML document with the inline stylesheet."""
    return (
        f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{CSS}</style></head><body>\n{body}\n</body></html>\n"
    )


def render_html(ex: Explanation, path: str | Path | None = None, png: bytes | None = None) -> str:
    """A self-contained HTML page for one explanation.

    Args:
        ex: the explanation.
        path: also write the page here.
        png: optional PNG bytes to embed (as a data URI) below the heat maps.

    Returns:
        The HTML text.
    """
    meta = [f"model: {html.escape(ex.model_path)}" if ex.model_path else "", f"{len(ex.tokens)} tokens"]
    if ex.method:
        meta.append(f"method: {html.escape(ex.method)}")
    body = [f"<h1>grutext explanation</h1><p class='meta'>{' · '.join(m for m in meta if m)}</p>", explanation_body(ex)]
    if png:
        body.append(
            f'<h2>Heat map</h2><img alt="gates heat map" src="data:image/png;base64,{base64.b64encode(png).decode()}">'
        )
    text = page("grutext explanation", "\n".join(body))
    if path is not None:
        write_output(path, text)
    return text


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:  # pragma: no cover - depends on the environment
        from grutext.errors import ConfigError

        raise ConfigError(
            "png: matplotlib is needed for PNG output; install it with `pip install matplotlib` (or grutext[plot])"
        ) from None
    return plt


def _gate_blocks(g: Any, T: int) -> list[tuple[str, list[str], np.ndarray]]:
    """One heat-map block per layer: (title, row labels, matrix (rows, T)) of the first T tokens' gate means."""
    blocks = []
    for layer in range(g.num_layers):
        labels, rows = [], []
        for d in range(g.num_directions):
            arrow = "→" if d == 0 else "←"
            for key, label, _ in GATE_ROWS:
                vals = g.mean(key)[layer, d, :T]
                if key == "n" or np.isnan(vals).all():
                    continue  # n is in the HTML; the PNG keeps the four readable rows
                if key == "dh":
                    vals = vals / _vmax(vals)  # |Δh| scaled to [0, 1] per direction
                    label = "|Δh| (scaled)"
                labels.append(f"{label} {arrow}")
                rows.append(vals)
        blocks.append((f"layer {layer + 1} gates (unit means)", labels, np.vstack(rows)))
    return blocks


def _png_title(ex: Explanation, name: str, T: int) -> str:
    """The PNG's title: the signal's name, with the prediction, and what was cut (`T` tokens shown)."""
    title = name
    if ex.probabilities is not None:  # a classifier's explanation
        p = dict(zip(ex.labels, ex.probabilities, strict=True))
        assert ex.predicted is not None  # set with the probabilities
        title = f"predicted {ex.predicted!r} (p={p[ex.predicted]:.2f}) · {name}"
    if len(ex.tokens) > T:
        title += f" · first {T} of {len(ex.tokens)} tokens"
    if ex.truncated:
        title += " · text truncated"
    return title


def _draw_signal(ax: Any, values: np.ndarray, scale: str, toks: list[str], title: str) -> None:
    """The token signal as bars on `ax`, one per token of `toks` (red/blue by sign for a diverging scale)."""
    T = len(toks)
    x = np.arange(T)
    if scale == "div":
        colors = ["#d9534f" if v >= 0 else "#3b78e7" for v in values]
    elif scale == "warm":
        colors = ["#f08a24"] * T
    else:
        colors = ["#2f6db5"] * T
    ax.bar(x, np.nan_to_num(values), color=colors, width=0.8)
    ax.axhline(0, color="#888", lw=0.6)
    ax.set_xlim(-0.5, T - 0.5)
    ax.set_xticks(x, toks, rotation=60, ha="right", fontsize=8)
    ax.tick_params(axis="y", labelsize=7)
    ax.set_title(title, fontsize=9, loc="left")
    ax.spines[["top", "right"]].set_visible(False)


def _draw_gate_blocks(axes: Any, blocks: list[tuple[str, list[str], np.ndarray]], toks: list[str]) -> None:
    """Each layer's gate block as a rows × tokens heat map on its own axis (0 white → 1 dark blue)."""
    x = np.arange(len(toks))
    for ax, (btitle, labels, mat) in zip(axes, blocks, strict=True):
        ax.imshow(mat, aspect="auto", cmap="Blues", vmin=0.0, vmax=1.0, interpolation="nearest")
        ax.set_yticks(range(len(labels)), labels, fontsize=7)
        ax.set_xticks(x, toks, rotation=60, ha="right", fontsize=8)
        ax.set_title(btitle + "  ·  colour: 0 white → 1 dark blue", fontsize=9, loc="left")


def render_png(ex: Explanation, path: str | Path, max_tokens: int = 80, dpi: int = 100) -> Path:
    """A PNG: the token signal as bars, then each layer's gates as a rows × tokens heat map.

    Args:
        ex: the explanation.
        path: the PNG file to write.
        max_tokens: show at most this many tokens (the first ones; noted in the title).
        dpi: resolution.

    Returns:
        The path.

    Raises:
        ConfigError: matplotlib is not installed.
    """
    plt = _pyplot()
    values, name, scale = _signal(ex)
    T = min(len(ex.tokens), max_tokens)
    toks = [t if len(t) <= 14 else t[:13] + "…" for t in ex.tokens[:T]]
    blocks = _gate_blocks(ex.gates, T) if ex.gates is not None else []
    heights = [1.6] + [0.28 * len(b[1]) + 0.5 for b in blocks]
    width = min(22.0, max(7.0, 0.42 * T + 2.2))
    fig, axes = plt.subplots(
        len(heights), 1, figsize=(width, sum(heights) + 0.9), gridspec_kw={"height_ratios": heights}, squeeze=False
    )
    axes = axes[:, 0]
    _draw_signal(axes[0], values[:T], scale, toks, _png_title(ex, name, T))
    _draw_gate_blocks(axes[1:], blocks, toks)
    fig.tight_layout()
    path = Path(path)
    try:
        with output_path(path) as tmp:
            fig.savefig(tmp, dpi=dpi, format="png")
    finally:
        plt.close(fig)
    return path


__all__ = ["render_html", "render_png", "tokens_html", "explanation_body", "page", "CSS"]
