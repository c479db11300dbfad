"""Explaining a tagger on one sentence: the gates of its BiGRU per token, and the best tag path
against the second best.

- Gates: the update gate z and reset gate r of every layer and direction, unit means per token,
  read from the same forward pass that produced the emissions (`Tagger.emissions_and_gates`);
  see `grutext.explain.gates` for what each signal means.
- Paths: with a CRF, the two best allowed paths by 2-best Viterbi (`grutext.nn.crf.CRF.kbest`), their
  scores ``s(y)`` and probabilities ``exp(s(y) - log Z)`` (``Z`` over every path, as in training), and
  each token's posterior marginal of its best tag. With the softmax decoder the tokens are
  independent, so the exact second-best path is the best one with the single token of smallest
  log-probability gap switched to its runner-up.

Tags are shown in the training file's scheme (the paths are decoded in the training scheme, BIOES
for chunk tags, and converted).
"""

from __future__ import annotations

import html
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from grutext.errors import ConfigError, DataError
from grutext.explain.gates import DIRECTIONS, GateTrace, check_gate_cell, traces_from_gates
from grutext.tasks.tagging.config import NO_SCHEME
from grutext.tasks.tagging.data import Encoder, TagVocab, collate, split_text, split_tokens, word_ids
from grutext.tasks.tagging.predict import check_tagger, chunks_of


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


@dataclass
class TagPath:
    """One tag path: tags in the file's scheme, its score s(y), probability and chunks."""

    tags: list[str]
    score: float
    probability: float
    chunks: list[dict[str, Any]] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "tags": self.tags,
            "score": _finite(self.score),
            "probability": _finite(self.probability),
            "chunks": self.chunks,
        }


@dataclass
class TagExplanation:
    """How a tagger read one sentence.

    Attributes:
        text, tokens, offsets: the sentence and its T tokens with character spans.
        unknown: per token, not in the word vocabulary (read as <unk>).
        decoder: ``"crf"`` or ``"softmax"``.
        best, second: the two best paths (second None when the sentence has a single allowed path).
        marginal: ``(T,)`` posterior probability of each token's best tag.
        gates: the BiGRU stack's `GateTrace` (arrays ``(L, 2, T, H)``).
        notes: remarks (unknown words, a single path).
    """

    text: str
    tokens: list[str]
    offsets: list[tuple[int, int]]
    unknown: list[bool]
    decoder: str
    scheme: str
    best: TagPath
    second: TagPath | None
    marginal: np.ndarray
    gates: GateTrace
    notes: list[str] = field(default_factory=list)
    model_path: str | None = None
    kind: str = "tagger"

    @property
    def differs(self) -> list[int]:
        """Positions where the second-best path's tag differs from the best one's."""
        if self.second is None:
            return []
        return [i for i, (a, b) in enumerate(zip(self.best.tags, self.second.tags, strict=True)) if a != b]

    def gate_means(self) -> dict[str, np.ndarray]:
        """Unit means of z and r, ``(L, 2, T)`` each."""
        return {"z": self.gates.mean("z"), "r": self.gates.mean("r")}

    # ---- text ----------------------------------------------------------------------------------

    def summary(self) -> str:
        from grutext.tasks.tagging.predict import brackets

        def line(name: str, p: TagPath) -> str:
            row = {"tokens": self.tokens, "tags": p.tags, "chunks": p.chunks}
            return f"{name} (score {p.score:.3f}, p={p.probability:.4f}): {brackets(row)}"

        lines = [line("best path", self.best)]
        if self.second is not None:
            lines.append(line("second best", self.second))
            lines.append(
                f"margin {self.best.score - self.second.score:.3f} in score; they differ at "
                + ", ".join(f"{i} {self.tokens[i]!r} {self.best.tags[i]}→{self.second.tags[i]}" for i in self.differs)
            )
        means = self.gate_means()
        top = self.gates.num_layers - 1
        lines.append(
            f"per token (gates: unit means of layer {top + 1} of {self.gates.num_layers}; → forward, ← reverse):"
        )
        width = max(8, *(len(t) for t in self.tokens))
        lines.append(
            f"  {'#':>3}  {'token':<{width}}  {'best':<8} {'second':<8} {'p(best)':>7}  "
            f"{'z→':>5} {'z←':>5} {'r→':>5} {'r←':>5}"
        )
        diff = set(self.differs)
        for i, tok in enumerate(self.tokens):
            second = self.second.tags[i] if self.second is not None else "-"
            mark = "*" if i in diff else " "
            z, r = means["z"][top, :, i], means["r"][top, :, i]
            lines.append(
                f"  {i:>3}  {tok:<{width}}  {self.best.tags[i]:<8} {second:<8}{mark}{self.marginal[i]:>7.4f}  "
                f"{z[0]:5.3f} {z[1]:5.3f} {r[0]:5.3f} {r[1]:5.3f}"
            )
        lines += [f"note: {n}" for n in self.notes]
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (no NaN/Infinity: a missing figure is null)."""
        means = self.gate_means()

        def clean(a: np.ndarray) -> Any:
            return [clean(x) for x in a] if a.ndim else _finite(float(a))

        return {
            "kind": self.kind,
            "text": self.text,
            "tokens": self.tokens,
            "offsets": [list(o) for o in self.offsets],
            "unknown": self.unknown,
            "decoder": self.decoder,
            "scheme": self.scheme,
            "best": self.best.to_dict(),
            "second": None if self.second is None else self.second.to_dict(),
            "differs": self.differs,
            "marginal": clean(self.marginal),
            "gates": {k: clean(v) for k, v in means.items()},  # (L, 2, T): layer, direction, token
            "notes": self.notes,
        }

    # ---- HTML ----------------------------------------------------------------------------------

    def html_body(self) -> str:
        from grutext.explain.render import _gates_html, _style

        head = "".join(
            f'<th class="col"{" style=text-decoration:underline dotted" if unk else ""}>{html.escape(t)}</th>'
            for t, unk in zip(self.tokens, self.unknown, strict=True)
        )
        diff = set(self.differs)

        def tag_row(name: str, p: TagPath | None) -> str:
            if p is None:
                return ""
            cells = "".join(
                f"<td{' style=background:#fde68a' if i in diff else ''}>{html.escape(t)}</td>"
                for i, t in enumerate(p.tags)
            )
            return (
                f"<tr><th class='l'>{name} <span class='meta'>s={p.score:.3f} · p={p.probability:.4f}</span></th>"
                f"{cells}</tr>"
            )

        marg = "".join(
            f'<td style="{_style(float(v), 1.0, "seq")}" title="{float(v):.4f}">{float(v):.2f}</td>'
            for v in self.marginal
        )
        parts = [f'<div class="note">{html.escape(n)}</div>' for n in self.notes]
        what = (
            "two best allowed paths of the CRF (2-best Viterbi); p = exp(s − log Z) over all paths"
            if self.decoder == "crf"
            else "softmax decoder: tokens independent; the second path switches the least certain token"
        )
        parts.append(f"<h2>Best vs second-best path</h2><p class='meta'>{html.escape(what)}; differences shaded</p>")
        parts.append(
            "<div class='scroll'><table class='heat'><tr><th class='l'>token</th>"
            + head
            + "</tr>"
            + tag_row("best", self.best)
            + tag_row("second", self.second)
            + f"<tr><th class='l'>p(best tag)</th>{marg}</tr></table></div>"
        )
        parts.append(_gates_html(self))  # type: ignore[arg-type]  # reads .gates and .tokens only
        return "\n".join(p for p in parts if p)

    def write_html(self, path: str | Path) -> str:
        from grutext.explain.render import page

        meta = [f"model: {html.escape(self.model_path)}" if self.model_path else "", f"{len(self.tokens)} tokens"]
        body = f"<h1>grutext explanation: tagger</h1><p class='meta'>{' · '.join(m for m in meta if m)}</p>"
        text = page("grutext explanation", body + "\n" + self.html_body())
        Path(path).write_text(text, encoding="utf-8")
        return text


def _softmax_two_best(log_probs: torch.Tensor) -> tuple[list[int], float, list[int] | None, float]:
    """Best and exact second-best paths of independent tokens from (T, K) log-probabilities."""
    top2 = log_probs.topk(min(2, log_probs.shape[1]), dim=1)  # values, indices (T, 2)
    best = top2.indices[:, 0].tolist()
    best_lp = float(top2.values[:, 0].sum())
    if log_probs.shape[1] < 2:
        return best, best_lp, None, -math.inf
    gap = top2.values[:, 0] - top2.values[:, 1]  # (T,)
    i = int(gap.argmin())
    second = list(best)
    second[i] = int(top2.indices[i, 1])
    return best, best_lp, second, best_lp - float(gap[i])


@dataclass
class _TwoBest:
    """The decoder's two best paths as (tag ids, score s(y), probability), and each token's marginal of its best tag."""

    decoder: str
    best: tuple[list[int], float, float]
    second: tuple[list[int], float, float]  # score -inf: no second path
    marginal: np.ndarray  # (T,)


def _two_best(model: Any, em: torch.Tensor, lengths: torch.Tensor, n_tokens: int) -> _TwoBest:
    """The two best paths of one sentence's emissions em (1, T, K): 2-best Viterbi with a CRF, else softmax."""
    crf = getattr(model, "crf", None)
    if crf is not None:
        paths, scores = crf.kbest(em, 2, lengths=lengths)  # best first; -inf: no such path
        log_z = float(crf.log_partition(em, lengths=lengths)[0])
        marg = crf.marginals(em, lengths=lengths)[0]  # (T, K)
        best_ids, best_s = paths[0][0], float(scores[0, 0])
        second_ids, second_s = paths[0][1], float(scores[0, 1])
        p_best, p_second = math.exp(best_s - log_z), math.exp(second_s - log_z)
    else:
        log_probs = torch.log_softmax(em[0], dim=-1)  # (T, K)
        marg = log_probs.exp()
        b_ids, best_s, s_ids, second_s = _softmax_two_best(log_probs)
        best_ids, second_ids = b_ids, s_ids or []
        p_best, p_second = math.exp(best_s), math.exp(second_s)
    marginal = marg[torch.arange(n_tokens), torch.tensor(best_ids)].cpu().numpy()  # (T,)
    return _TwoBest(
        decoder="crf" if crf is not None else "softmax",
        best=(best_ids, best_s, p_best),
        second=(second_ids, second_s, p_second),
        marginal=marginal,
    )


def _tagger_notes(unknown: list[bool], single_path: bool, scheme: str) -> list[str]:
    """Remarks on a tagger's explanation: unknown words, a single allowed path, plain labels."""
    notes = []
    if any(unknown):
        notes.append(f"{sum(unknown)} of {len(unknown)} tokens are not in the vocabulary (read as <unk>)")
    if single_path:
        notes.append("the sentence has a single allowed tag path: no second best")
    if scheme == NO_SCHEME:
        notes.append("plain labels (no chunks)")
    return notes


@torch.no_grad()
def explain_tagger(loaded: Any, text: str, *, tokenized: bool = False) -> TagExplanation:
    """Explain how a saved tagger tags one sentence.

    Args:
        loaded: a tagger (`grutext.artifact.load_model`).
        text: the sentence; split by the model's tokenizer, or on whitespace when `tokenized`.

    Returns:
        A `TagExplanation`.

    Raises:
        ArtifactError: not a tagger. DataError: a sentence without tokens. ConfigError: a tagger whose
            recurrent cell has no GRU gates (lstm, rnn).
    """
    check_tagger(loaded)
    cell = getattr(loaded.model, "cell", "gru")
    check_gate_cell(cell)
    vocab = TagVocab.from_meta(loaded.meta)
    tokens, offsets = split_tokens(text) if tokenized else split_text(loaded.tokenizer, text)
    if not tokens:
        raise DataError("explain: the text has no tokens; expected a sentence")
    model = loaded.model
    was_training = model.training
    model.eval()
    try:
        batch = collate([Encoder(loaded.tokenizer, vocab).encode(tokens, where="explain")])
        em, gates = model.emissions_and_gates(batch)  # (1, T, K), per layer (1, T, 2, H)
        lengths = batch["lengths"]
        two = _two_best(model, em.double(), lengths, len(tokens))
    finally:
        model.train(was_training)
    scheme = vocab.file_scheme

    def path(ids: list[int], s: float, p: float) -> TagPath:
        tags = vocab.to_file([vocab.tags[i] for i in ids])
        return TagPath(tags, s, p, chunks_of(tokens, tags, offsets, text, scheme))

    unknown = [i == loaded.tokenizer.unk_id for i in word_ids(loaded.tokenizer, tokens)]
    second = path(*two.second) if math.isfinite(two.second[1]) else None
    return TagExplanation(
        text=text,
        tokens=tokens,
        offsets=offsets,
        unknown=unknown,
        decoder=two.decoder,
        scheme=scheme,
        best=path(*two.best),
        second=second,
        marginal=two.marginal,
        gates=traces_from_gates(gates, lengths, [tokens], cell)[0],
        notes=_tagger_notes(unknown, second is None, scheme),
        model_path=str(loaded.path) if getattr(loaded, "path", None) else None,
    )


def check_explain_options(args: Any) -> None:
    """ConfigError for explain options that do not apply to a tagger (classifier / LM options, --png)."""
    defaults = {"method": "ig", "target": None, "steps": 48, "generate": 0, "temperature": 0.0, "seed": 0}
    for name, default in defaults.items():
        if getattr(args, name, default) != default:
            raise ConfigError(f"--{name}: a classifier or language-model option; a tagger's explanation has none")
    if getattr(args, "png", None):
        raise ConfigError("--png: not drawn for taggers; use --html (gates and both paths) or --json")
    if getattr(args, "member", None) not in (None, 0):
        raise ConfigError(f"--member {args.member}: a tagger is one network")


__all__ = ["DIRECTIONS", "TagExplanation", "TagPath", "check_explain_options", "explain_tagger"]
