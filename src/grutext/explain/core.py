"""One explanation of one text: tokens, prediction, token importance and gate traces.

`explain(loaded, text)` is the entry point for classifiers (`explain_lm` in
:mod:`grutext.explain.lm` for language models); both return an `Explanation`, which the HTML and
PNG renderers take and whose `rows()` is a tidy table.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch

from grutext.errors import ArtifactError, ConfigError, DataError
from grutext.explain.gates import GATE_CELLS, GateTrace, _cell_of, traces_from_gates
from grutext.explain.prepare import Prepared, prepare
from grutext.tasks import CLASSIFICATION, require_task

METHODS = ("ig", "occlusion", "attention")


@dataclass
class Explanation:
    """Everything known about how the model read one text.

    Attributes:
        kind: ``"classifier"`` or ``"language_model"``.
        text, tokens, ids: the input and its T tokens as read (after truncation).
        notes: human-readable remarks (truncation, unknown words, missing gates).
        labels, probabilities, predicted, target: classifier prediction ``(C,)`` (as predict answers it:
            a blended classifier's with its n-gram model) and the class explained.
        method: importance method (``"ig"``, ``"occlusion"``, ``"attention"``; ``"surprisal"`` for LMs).
        importance: ``(T,)`` the chosen signal per token (None when not computed).
        gates: the `GateTrace`, or None for cells without GRU gates.
        details: method details (IG completeness gap, steps, ...).
        surprisal_nats, surprisal_bits, token_prob: ``(T,)`` language-model views (NaN where undefined).
        generated: ``(T,)`` bool, tokens the LM generated rather than read.
    """

    kind: str
    text: str
    tokens: list[str]
    ids: list[int]
    notes: list[str] = field(default_factory=list)
    labels: list[str] = field(default_factory=list)
    probabilities: np.ndarray | None = None
    predicted: str | None = None
    target: str | None = None
    method: str | None = None
    importance: np.ndarray | None = None
    gates: GateTrace | None = None
    details: dict[str, Any] = field(default_factory=dict)
    unknown: list[bool] = field(default_factory=list)
    surprisal_nats: np.ndarray | None = None
    surprisal_bits: np.ndarray | None = None
    token_prob: np.ndarray | None = None
    generated: np.ndarray | None = None
    model_path: str | None = None

    @property
    def truncated(self) -> bool:
        return any(n.startswith("truncated") for n in self.notes)

    def rows(self) -> list[dict[str, Any]]:
        """A tidy table: one dict per (token, layer, direction).

        Keys: token, position, layer, direction, z_mean, r_mean, n_mean, dh, retention,
        importance (and surprisal_bits, token_prob, generated for language models). Without gate
        traces there is one row per token with layer/direction None.
        """
        imp = self.importance
        extra: list[dict[str, Any]] = []
        for t in range(len(self.tokens)):
            e: dict[str, Any] = {"importance": None if imp is None else float(imp[t])}
            if self.surprisal_bits is not None:
                e["surprisal_bits"] = float(self.surprisal_bits[t])
                e["token_prob"] = float(self.token_prob[t]) if self.token_prob is not None else None
                e["generated"] = bool(self.generated[t]) if self.generated is not None else False
            extra.append(e)
        if self.gates is None:
            return [
                {
                    "token": tok,
                    "position": t,
                    "layer": None,
                    "direction": None,
                    "z_mean": None,
                    "r_mean": None,
                    "n_mean": None,
                    "dh": None,
                    "retention": None,
                    **extra[t],
                }
                for t, tok in enumerate(self.tokens)
            ]
        return [{**row, **extra[row["position"]]} for row in self.gates.rows()]

    def summary(self, top: int = 5) -> str:
        """A few plain-text lines: prediction, then the tokens ranked by the signal."""
        lines = []
        if self.kind == "classifier" and self.probabilities is not None:
            probs = "  ".join(
                f"{lab}={p:.3f}"
                for lab, p in sorted(zip(self.labels, self.probabilities, strict=True), key=lambda x: -x[1])[:6]
            )
            lines.append(f"predicted {self.predicted}  ({probs})")
            lines.append(f"importance for {self.target!r} by {self.method}:")
        elif self.surprisal_bits is not None:
            finite = self.surprisal_bits[np.isfinite(self.surprisal_bits)]
            mean = float(finite.mean()) if finite.size else float("nan")
            lines.append(f"mean surprisal {mean:.2f} bits/token (perplexity {2**mean:.1f})")
            lines.append("most surprising tokens:")
        sig = self.importance if self.importance is not None else self.surprisal_bits
        if sig is not None:
            order = [i for i in np.argsort(-np.nan_to_num(sig, nan=-np.inf)) if np.isfinite(sig[i])][:top]
            lines += [f"  {i:>4}  {self.tokens[i]!r:<20} {sig[i]:+.4f}" for i in order]
        if self.details.get("completeness_gap") is not None:
            lines.append(
                f"integrated gradients: {self.details['steps']} steps, completeness gap "
                f"{self.details['completeness_gap']:+.2e} (sum {self.details['attribution_sum']:+.4f} "
                f"vs f(x)-f(0) {self.details['delta']:+.4f})"
            )
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (arrays as lists, gates as unit means ``(L, D, T)``)."""

        def arr(x):
            return None if x is None else np.asarray(x).tolist()

        out = {
            "kind": self.kind,
            "text": self.text,
            "tokens": self.tokens,
            "ids": self.ids,
            "notes": self.notes,
            "labels": self.labels,
            "probabilities": arr(self.probabilities),
            "predicted": self.predicted,
            "target": self.target,
            "method": self.method,
            "importance": arr(self.importance),
            "details": self.details,
            "surprisal_nats": arr(self.surprisal_nats),
            "surprisal_bits": arr(self.surprisal_bits),
            "token_prob": arr(self.token_prob),
            "generated": arr(self.generated),
        }
        if self.gates is not None:
            out["gates"] = {k: self.gates.mean(k).tolist() for k in ("z", "r", "n", "dh", "retention")}
        return out


def resolve_target(labels: list[str], target: str | int | None, predicted: int) -> int:
    """Index of the class to explain: the predicted one, a label name, or an index.

    Raises:
        DataError: an unknown class, listing the valid ones.
    """
    if target is None:
        return predicted
    if isinstance(target, str):
        if target in labels:
            return labels.index(target)
        if target.strip().lstrip("-").isdigit() and 0 <= int(target) < len(labels):
            return int(target)
    elif isinstance(target, (int, np.integer)) and not isinstance(target, bool) and 0 <= int(target) < len(labels):
        return int(target)
    raise DataError(f"target: expected one of the model's classes {', '.join(map(repr, labels))}; got {target!r}")


def check_classifier(loaded: Any) -> None:
    """Raise ArtifactError unless `loaded` is a loaded classifier with labels."""
    require_task(
        loaded,
        CLASSIFICATION,
        f"{getattr(loaded, 'path', 'model')}: expected a classifier, got kind "
        f"{getattr(loaded, 'kind', None)!r} (use explain_lm for language models)",
    )
    if not loaded.labels:
        raise ArtifactError(f"{loaded.path}: labels.json / config labels missing; cannot name the classes")
    from grutext.artifact import require_single_network

    require_single_network(loaded, "explain")


def _encode_with_gates(
    model: Any, ids: torch.Tensor, lengths: torch.Tensor, tokens: list[str], notes: list[str]
) -> tuple[torch.Tensor, GateTrace | None]:
    """The classifier's logits for ids (1, T) and its gate traces (None, and a note, for a cell without gates)."""
    cell = _cell_of(model)
    with torch.no_grad():
        enc = model.encode(ids, lengths, return_gates=cell in GATE_CELLS)
    if cell not in GATE_CELLS:
        notes.append(f"no gate traces: the model's cell is {cell!r}, gates need one of {', '.join(GATE_CELLS)}")
        return enc["logits"], None
    return enc["logits"], traces_from_gates(enc["gates"], lengths, [tokens], cell)[0]


def _importance(
    loaded: Any, inp: Prepared, method: str, c: int, probs: np.ndarray, steps: int
) -> tuple[Any, dict[str, Any]]:
    """Token importance for class c by `method` (`probs`: the model's prediction) and the method's details."""
    from grutext.explain import importance as imp

    model = loaded.model
    ids, lengths = inp.ids_tensor, inp.lengths  # (1, T), (1,)
    if method == "attention":
        return imp.attention_importance(model, ids, lengths), {}
    if method == "occlusion":
        scores = imp.occlusion(model, inp.ids, c, unk_id=loaded.tokenizer.unk_id)
        return scores, {"baseline_probability": float(probs[c])}
    return imp.integrated_gradients(model, ids, lengths, c, steps=steps)


def _as_predicted(loaded: Any, probs: np.ndarray, text: str, notes: list[str]) -> tuple[np.ndarray, dict[str, Any]]:
    """The network's `probs` as predict answers them: blended with the model's n-gram model when it has
    one (noted; the network's own kept as ``details["network_probabilities"]``)."""
    ngrams = getattr(loaded, "ngrams", None)
    if ngrams is None:
        return probs, {}
    notes.append(
        f"probabilities blend the network with its n-gram model (weight {ngrams.weight:.2f}), as predict "
        "answers; the importance and gates are the network's (its own: details network_probabilities)"
    )
    return np.asarray(ngrams.blend(probs[None], [text]), dtype=np.float64)[0], {"network_probabilities": probs.tolist()}


def explain(
    loaded: Any, text: str, method: str = "ig", target: str | int | None = None, steps: int = 48
) -> Explanation:
    """Explain one prediction of a classifier: prediction, token importance and gate traces.

    Args:
        loaded: a `LoadedModel` classifier (`grutext.load_model(dir)`).
        text: the text (tokenized and truncated as in training; truncation is noted).
        method: ``"ig"`` (integrated gradients, zero-embedding baseline), ``"occlusion"`` (drop
            each token) or ``"attention"`` (attention pooling weights).
        target: the class to explain (label name or index); default the predicted class.
        steps: integration steps for ``"ig"``.

    Returns:
        An `Explanation`; `importance` is ``(T,)``, `gates` a `GateTrace` (None for LSTM/RNN).

    Example:
        >>> ex = explain(load_model("runs/sst2"), "a gorgeous , witty film")   # doctest: +SKIP
        >>> ex.predicted, ex.tokens[int(ex.importance.argmax())]              # doctest: +SKIP
        ('1', 'gorgeous')
    """
    check_classifier(loaded)
    if method not in METHODS:
        raise ConfigError(f"method: expected one of {', '.join(METHODS)}; got {method!r}")
    model = loaded.model
    was_training = model.training
    model.eval()
    try:
        inp = prepare(loaded, text)
        notes = list(inp.notes)
        n_unk = sum(inp.unknown)
        if n_unk:
            notes.append(f"{n_unk} of {len(inp.ids)} tokens are not in the vocabulary (read as <unk>)")
        logits, gates = _encode_with_gates(model, inp.ids_tensor, inp.lengths, inp.tokens, notes)
        probs = model.probabilities(logits)[0].double().cpu().numpy()  # (C,) the network's
        shown, blend_details = _as_predicted(loaded, probs, text, notes)  # blended, as predict answers
        pred = int(shown.argmax())
        c = resolve_target(loaded.labels, target, pred)
        scores, details = _importance(loaded, inp, method, c, probs, steps)
    finally:
        model.train(was_training)
    return Explanation(
        kind=CLASSIFICATION.kind,
        text=text,
        tokens=inp.tokens,
        ids=inp.ids,
        notes=notes,
        labels=list(loaded.labels),
        probabilities=shown,
        predicted=loaded.labels[pred],
        target=loaded.labels[c],
        method=method,
        importance=np.asarray(scores, dtype=np.float64),
        gates=gates,
        details={**details, **blend_details},
        unknown=inp.unknown,
        model_path=str(loaded.path) if loaded.path else None,
    )


__all__ = ["Explanation", "Prepared", "prepare", "explain", "resolve_target", "check_classifier", "METHODS"]
