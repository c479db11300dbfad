"""Language models: the gates along a prompt (and tokens the model generates after it), and how
surprised the model was by each token as it read it.

Surprisal of token t is ``−log p(x_t | x_<t)`` in nats (and bits = nats / ln 2), read off the
model's own next-token distribution at step t − 1. Like `grutext generate`, a line-based model
(word/BPE, trained with ``<eos>`` ending each line) reads an ``<eos>`` before the prompt, so the
prompt's first token gets a surprisal too; the ``<eos>`` itself has none (NaN), nor has the
first character for a character model.

Works with any module with the `LanguageModel` interface: ``forward(ids (B, T), targets=None,
state=None) -> (logits (B, T, V), loss, state)``, ``embedding``, and ``encoder`` either a
`StackedEncoder` (``encoder.layers[k]`` one-layer GRUs, each run with ``return_gates=True``) or an
encoder with ``encoder(x (B, T, E), lengths, return_gates=True) -> (output, h_n, gates)``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from grutext.errors import ArtifactError, ConfigError
from grutext.explain.core import Explanation
from grutext.explain.gates import GATE_CELLS, GateTrace, _cell_of, traces_from_gates
from grutext.explain.prepare import prepare
from grutext.tasks import LANGUAGE_MODEL
from grutext.tasks.language_model.config import resolve_add_eos
from grutext.tasks.language_model.predict import lm_settings


def _check_lm(loaded: Any) -> None:
    model = getattr(loaded, "model", None)
    if getattr(loaded, "kind", None) != LANGUAGE_MODEL.kind or not all(
        hasattr(model, a) for a in ("embedding", "encoder")
    ):
        raise ArtifactError(
            f"{getattr(loaded, 'path', 'model')}: expected a language model (kind 'language_model' "
            f"with embedding and encoder), got kind {getattr(loaded, 'kind', None)!r}"
        )


def _generate(
    model: torch.nn.Module, ids: list[int], steps: int, temperature: float, seed: int, banned: list[int]
) -> list[int]:
    """`steps` tokens after `ids`, greedy (temperature 0) or sampled, carrying the recurrent state."""
    gen = torch.Generator().manual_seed(seed)
    out: list[int] = []
    with torch.no_grad():
        logits, _, state = model(torch.tensor([ids], dtype=torch.long))  # (1, T, V)
        for _ in range(steps):
            last = logits[0, -1].double().clone()  # (V,)
            last[banned] = -math.inf
            if temperature <= 0:
                nxt = int(last.argmax())
            else:
                probs = torch.softmax(last / temperature, dim=-1)
                nxt = int(torch.multinomial(probs, 1, generator=gen))
            out.append(nxt)
            logits, _, state = model(torch.tensor([[nxt]], dtype=torch.long), state=state)  # (1, 1, V)
    return out


def _lm_gates(model: torch.nn.Module, x: torch.Tensor) -> list[dict[str, torch.Tensor]]:
    """The encoder's gates for embedded ids x (1, T, E), one dict per layer, (1, T, 1, H) each."""
    enc: Any = model.encoder  # a StackedEncoder or one of nn.cells' encoders
    if hasattr(enc, "layers"):  # StackedEncoder: one-layer encoders, locked dropout (off in eval) between
        gates: list[dict[str, torch.Tensor]] = []
        for layer in enc.layers:
            x, _, g = layer(x, None, None, return_gates=True)  # (1, T, H), h_n, [one dict]
            gates.extend(g)
        return gates
    return enc(x, torch.tensor([x.shape[1]]), return_gates=True)[2]


def _starts_after_eos(loaded: Any) -> bool:
    try:
        add_eos = lm_settings(loaded).add_eos
    except (ValueError, OSError, TypeError):  # an unreadable config.json: the tokenizer's default
        add_eos = None
    return resolve_add_eos(loaded.tokenizer.kind, add_eos)


def _surprisal(model: Any, x: torch.Tensor) -> torch.Tensor:
    """−log p(x_t | x_<t) in nats for t >= 1 of x (1, T), from the model's own forward pass; NaN at t = 0."""
    T = x.shape[1]
    logits = model(x)[0]  # (1, T, V)
    logp = torch.log_softmax(logits[0].double(), dim=-1)  # (T, V)
    nats = torch.full((T,), float("nan"), dtype=torch.float64)
    if T > 1:
        nats[1:] = -logp[:-1].gather(1, x[0, 1:, None]).squeeze(1)
    return nats


@dataclass
class _Read:
    """The tokens the model read: the prompt as prepared, then any it generated after it."""

    ids: list[int]
    tokens: list[str]
    unknown: list[bool]
    generated: np.ndarray  # (T,) bool
    notes: list[str]
    new: int  # how many tokens were generated


def _read_prompt(loaded: Any, text: str, generate: int, temperature: float, seed: int, add_eos: bool | None) -> _Read:
    """The prompt's tokens (after ``<eos>`` for a line-based model) and `generate` tokens after them."""
    model, tok = loaded.model, loaded.tokenizer
    if add_eos is None:
        add_eos = _starts_after_eos(loaded)
    inp = prepare(loaded, text, truncate_to=None, prefix=(tok.eos_id, "<eos>") if add_eos else None)
    banned = [tok.pad_id, tok.bos_id] + ([] if add_eos else [tok.eos_id])
    new = _generate(model, list(inp.ids), generate, temperature, seed, banned) if generate else []
    return _Read(
        ids=list(inp.ids) + new,
        tokens=list(inp.tokens) + [tok.id_to_token(i) for i in new],
        unknown=list(inp.unknown) + [False] * len(new),
        generated=np.array([False] * len(inp.ids) + [True] * len(new)),
        notes=list(inp.notes),
        new=len(new),
    )


def _gates_or_note(model: Any, x: torch.Tensor, tokens: list[str], notes: list[str]) -> GateTrace | None:
    """The gate traces of the model reading ids x (1, T); None (and a note) for a cell without gates."""
    cell = _cell_of(model)
    if cell in GATE_CELLS:
        return traces_from_gates(_lm_gates(model, model.embedding(x)), [x.shape[1]], [tokens], cell)[0]
    notes.append(f"no gate traces: the model's cell is {cell!r}, gates need one of {', '.join(GATE_CELLS)}")
    return None


def explain_lm(
    loaded: Any, text: str, *, generate: int = 0, temperature: float = 0.0, seed: int = 0, add_eos: bool | None = None
) -> Explanation:
    """Surprisal and gate traces of a language model reading `text` (and what it writes next).

    Args:
        loaded: a `LoadedModel` of kind ``"language_model"``.
        text: the prompt.
        generate: also generate this many tokens after the prompt and trace them.
        temperature: 0 = greedy; > 0 samples (seeded by `seed`).
        seed: sampling seed.
        add_eos: read ``<eos>`` before the prompt, as the model saw at each line start (None:
            the model's saved setting; word/BPE yes, char no).

    Returns:
        An `Explanation` with ``kind="language_model"``, `surprisal_nats`/`surprisal_bits` and
        `token_prob` ``(T,)`` (NaN at the first position), `generated` ``(T,)`` and `gates`.

    Example:
        >>> ex = explain_lm(load_model("runs/ptb"), "the stock market fell", generate=5)   # doctest: +SKIP
        >>> ex.surprisal_bits.round(1)                                                   # doctest: +SKIP
    """
    _check_lm(loaded)
    if not isinstance(generate, int) or generate < 0:
        raise ConfigError(f"generate: expected an integer >= 0, got {generate!r}")
    model = loaded.model
    was_training = model.training
    model.eval()
    try:
        read = _read_prompt(loaded, text, generate, temperature, seed, add_eos)
        x = torch.tensor([read.ids], dtype=torch.long)  # (1, T)
        with torch.no_grad():
            nats = _surprisal(model, x).numpy()  # (T,)
            gates = _gates_or_note(model, x, read.tokens, read.notes)
    finally:
        model.train(was_training)
    if read.new:
        read.notes.append(
            f"{read.new} tokens generated after the prompt "
            f"({'greedy' if temperature <= 0 else f'temperature {temperature}, seed {seed}'})"
        )
    return Explanation(
        kind=LANGUAGE_MODEL.kind,
        text=text,
        tokens=read.tokens,
        ids=read.ids,
        notes=read.notes,
        method="surprisal",
        gates=gates,
        unknown=read.unknown,
        surprisal_nats=nats,
        surprisal_bits=nats / math.log(2),
        token_prob=np.exp(-nats),
        generated=read.generated,
        model_path=str(loaded.path) if getattr(loaded, "path", None) else None,
    )


__all__ = ["explain_lm"]
