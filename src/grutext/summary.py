"""Keras-style model summary (layer, output shape, parameters), a classifier's blend line and the
pipeline trace."""

from __future__ import annotations

import re
from typing import Any, cast

import numpy as np
import torch
from torch import nn

from grutext.nn.pooling import Pooling


def _count(module: nn.Module | None, trainable_only: bool = False) -> int:
    if module is None:
        return 0
    return sum(p.numel() for p in module.parameters() if p.requires_grad or not trainable_only)


def _encoder_rows(encoder: nn.Module, cell: str, T: str) -> list[tuple[str, str, int]]:
    """One row per recurrent layer, counting parameters named like torch's `*_l{k}[_reverse]`."""
    per_layer: dict[int, int] = {}
    other = 0
    for name, p in encoder.named_parameters():
        m = re.search(r"_l(\d+)", name) or re.search(r"(?:layers|cells)\.(\d+)\.", name)
        if m:
            per_layer[int(m.group(1))] = per_layer.get(int(m.group(1)), 0) + p.numel()
        else:
            other += p.numel()
    D = getattr(encoder, "num_directions", 1)
    H = getattr(encoder, "hidden_size", 0)
    kind = cell.upper() if cell != "mingru" else "minGRU"
    if cell == "lngru":
        kind = "LayerNormGRU"
    label = f"Bidirectional({kind})" if D == 2 else kind
    if not per_layer:
        return [(f"encoder ({label} x{getattr(encoder, 'num_layers', 1)})", f"(None, {T}, {D * H})", _count(encoder))]
    rows = [(f"{cell}_{k + 1} ({label})", f"(None, {T}, {D * H})", n) for k, n in sorted(per_layer.items())]
    if other:
        rows.append(("encoder extras", "", other))
    return rows


def model_summary(model: nn.Module, seq_len: int | None = None) -> str:
    """A Keras-style table of a `TextClassifier` or `LanguageModel`: layer, output shape, parameters.

    Parameter counts equal Keras's for the same layers (a GRU counts both bias vectors, as Keras
    `GRU(reset_after=True)` does): `GRU(32)` on 64 features is 9,408; `Dense(1)` on 32 is 33.

    Args:
        model: the model.
        seq_len: shown as T in the output shapes (None = variable).
    """
    members = getattr(model, "members", None)
    if members is not None:  # an ensemble: one member's table, then the whole
        total = _count(model)
        return (
            model_summary(members[0], seq_len) + f"\nEnsemble of {len(members)} networks of this shape "
            f"(probabilities averaged): {total:,} parameters in all"
        )
    T = "None" if seq_len is None else str(seq_len)
    rows: list[tuple[str, str, int]] = []
    emb: nn.Embedding = model.embedding  # type: ignore[assignment]
    rows.append(("embedding (Embedding)", f"(None, {T}, {emb.embedding_dim})", emb.weight.numel()))
    cell = getattr(model, "cell", "gru")
    rows.extend(_encoder_rows(model.encoder, cell, T))  # type: ignore[arg-type]
    if hasattr(model, "pooling"):
        size = model.encoder.output_size  # type: ignore[union-attr]
        pooling = cast(Pooling, model.pooling)
        rows.append((f"pooling ({pooling.kind})", f"(None, {size})", _count(pooling)))
    for name in ("proj", "projection"):
        sub = getattr(model, name, None)
        if isinstance(sub, nn.Module) and _count(sub):
            rows.append((f"{name} (Dense)", f"(None, {T}, {getattr(sub, 'out_features', '?')})", _count(sub)))
    head = getattr(model, "head", None) or getattr(model, "decoder", None)
    if head is not None:
        shape = f"(None, {head.out_features})" if hasattr(model, "pooling") else f"(None, {T}, {head.out_features})"
        tied = getattr(model, "tied", False)
        n = head.bias.numel() if (tied and head.bias is not None) else _count(head)
        rows.append((f"head (Dense{', tied' if tied else ''})", shape, n))
    total = _count(model)
    trainable = _count(model, trainable_only=True)
    w1 = max(28, max(len(r[0]) for r in rows) + 2)
    w2 = max(18, max(len(r[1]) for r in rows) + 2)
    line = "─" * (w1 + w2 + 14)
    out = [line, f"{'Layer (type)':<{w1}}{'Output Shape':<{w2}}{'Param #':>14}", "═" * len(line)]
    out += [f"{a:<{w1}}{b:<{w2}}{c:>14,}" for a, b, c in rows]
    out += [
        line,
        f"Total params: {total:,}",
        f"Trainable params: {trainable:,}",
        f"Non-trainable params: {total - trainable:,}",
        line,
    ]
    return "\n".join(out)


def blend_line(loaded: Any) -> str:
    """A classifier's n-gram blend in one line: ``blend: n-gram model weight W (network valid X%,
    blended Y%)`` from metrics.json (the scores left out when it lacks them), or ``blend: off``."""
    ngrams = getattr(loaded, "ngrams", None)
    if ngrams is None:
        return "blend: off"
    metrics = getattr(loaded, "metrics", None) or {}
    network = ((metrics.get("blend") or {}).get("network_valid") or {}).get("accuracy")
    blended = (metrics.get("valid") or {}).get("accuracy")
    line = f"blend: n-gram model weight {ngrams.weight:.2f}"
    if isinstance(network, (int, float)) and isinstance(blended, (int, float)):
        line += f" (network valid {network:.1%}, blended {blended:.1%})"
    return line


def _peek(t: torch.Tensor | np.ndarray, k: int = 4) -> str:
    arr = t.detach().cpu().numpy() if isinstance(t, torch.Tensor) else np.asarray(t)
    flat = arr.reshape(-1)
    vals = ", ".join(f"{v:.4f}" if isinstance(v, (float, np.floating)) else str(v) for v in flat[:k])
    return f"[{vals}{', ...' if flat.size > k else ''}]"


def _trace_inputs(tok: Any, cfg: Any, text: str, pad_to: int | None, row: Any) -> tuple[list[int], Any, Any]:
    """The input side of the trace: tokens, ids (truncated as at training), the padded batch of one; rows via `row`."""
    from grutext.data.batching import pad_batch, truncate
    from grutext.errors import DataError

    tokens = tok.tokens(text)
    ids = tok.encode(text)
    if not ids:
        raise DataError(f"text {text!r:.60}: tokenizes to nothing")
    row("input text", repr(text))
    row(f"tokens ({len(tokens)})", f"{tokens[:16]}{' ...' if len(tokens) > 16 else ''}")
    kept = truncate(ids, cfg.data.max_len, cfg.data.truncation)
    if len(kept) < len(ids):
        row("truncated", f"{len(ids)} -> {len(kept)} tokens ({cfg.data.truncation}, max_len {cfg.data.max_len})")
    unk = sum(1 for i in kept if i == tok.unk_id)
    row(f"ids ({len(kept)})", f"{kept[:16]}{' ...' if len(kept) > 16 else ''}   <unk>: {unk}")
    pad_len = pad_to or len(kept) + 3
    padded, lengths = pad_batch([kept], tok.pad_id)  # (1, T), (1,)
    if padded.shape[1] < pad_len:
        padded = torch.nn.functional.pad(padded, (0, pad_len - padded.shape[1]), value=tok.pad_id)  # (1, T')
    row(
        "padded ids",
        f"shape {tuple(padded.shape)}  {padded[0, -8:].tolist()} (last 8; 0 = <pad>)  length {int(lengths[0])}",
    )
    return kept, padded, lengths


def pipeline_trace(loaded: Any, text: str, pad_to: int | None = None) -> str:
    """Each stage of the pipeline for one text: tokens, ids, padded ids, embeddings, recurrent
    output, pooled vector, logits, probabilities, with shapes and a few values.

    Args:
        loaded: a `LoadedModel` classifier.
        text: the input.
        pad_to: pad the ids to this length to show padding (default: length + 3).
    """
    from grutext.artifact import require_single_network
    from grutext.tasks import CLASSIFICATION, TASKS, require_task

    kind = getattr(loaded, "kind", None)
    what = TASKS[kind].title if kind in TASKS else f"{kind!r} model"
    require_task(
        loaded,
        CLASSIFICATION,
        f"trace: {getattr(loaded, 'path', None) or 'the model'} is a {what}; trace follows a classifier's pipeline "
        "(for a language model: grutext explain MODEL TEXT)",
    )
    require_single_network(loaded, "trace")
    tok = loaded.tokenizer
    cfg = loaded.config
    model = loaded.model
    lines: list[str] = []

    def row(label: str, content: str) -> None:
        lines.append(f"{label:<22}{content}")

    kept, padded, lengths = _trace_inputs(tok, cfg, text, pad_to, row)
    with torch.no_grad():
        inter = model.encode(padded, lengths, return_gates=True)
    emb, out = inter["embedded"], inter["output"]  # (1, T', E), (1, T', D*H)
    row("embeddings", f"shape {tuple(emb.shape)}  first token {_peek(emb[0, 0])}")
    row(
        "recurrent output",
        f"shape {tuple(out.shape)}  last real step {_peek(out[0, len(kept) - 1])}  padding {_peek(out[0, -1], 2)}",
    )
    from grutext.explain.gates import GATE_CELLS, summarize_gates

    if inter.get("gates") and getattr(model, "cell", "gru") in GATE_CELLS:
        for g in summarize_gates(inter["gates"], len(kept), [tok.id_to_token(i) for i in kept], model.cell):
            row(
                f"  layer {g['layer']} {g['direction']}",
                f"update z {g['z_mean']:.3f}  reset r {g['r_mean']:.3f}  |Δh| {g['dh_mean']:.3f}  "
                f"most retained {g['most_retained']!r} ({g['retention']:.2f})",
            )
    row(f"pooled ({model.pooling.kind})", f"shape {tuple(inter['pooled'].shape)}  {_peek(inter['pooled'][0])}")
    logits = inter["logits"]
    row("logits", f"shape {tuple(logits.shape)}  {_peek(logits)}")
    probs = model.probabilities(logits)[0]
    ngrams = getattr(loaded, "ngrams", None)
    row("probabilities" if ngrams is None else "network probabilities", _pairs(loaded.labels, probs.tolist()))
    if ngrams is not None:  # what predict answers: the network blended with the n-gram model
        blended = loaded.blend(probs.numpy()[None], [text])[0]
        row(f"blend (n-grams {ngrams.weight:.2f})", _pairs(loaded.labels, blended.tolist()))
    return "\n".join(lines)


def _pairs(labels: list[str], probs: list[float]) -> str:
    """The 8 most likely classes as ``label: p``."""
    pairs = sorted(zip(labels, probs, strict=True), key=lambda x: -x[1])
    return "  ".join(f"{lab}: {p:.4f}" for lab, p in pairs[:8])
