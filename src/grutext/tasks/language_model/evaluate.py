"""Language-model loss and metrics: the `fit` adapter (state carried across windows), scoring an id
stream, and evaluating a saved language model on a text."""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import torch

from grutext.errors import DataError
from grutext.tasks.language_model.config import LN2, perplexity
from grutext.tasks.language_model.data import LMBatches, encode_stream, read_corpus
from grutext.tasks.language_model.model import detach_state
from grutext.tasks.language_model.predict import check_language_model, lm_settings
from grutext.train.loop import StepOut
from grutext.train.trace import track

if TYPE_CHECKING:
    from grutext.artifact import LoadedModel


class LanguageModelTask:
    """`fit` adapter for language models: carries the hidden state across windows (detached).

    Args:
        char_level: report bits per character instead of perplexity.
    """

    def __init__(self, char_level: bool = False) -> None:
        self.char_level = char_level
        self.state: Any = None

    def step(self, model: torch.nn.Module, batch: dict[str, Any]) -> StepOut:
        if batch.get("reset") or self.state is None or _state_batch(self.state) != batch["ids"].shape[0]:
            self.state = None
        _, loss, state = model(batch["ids"], batch["targets"], self.state)
        self.state = detach_state(state)  # truncated BPTT: the next window starts here, no gradient back
        n = batch["ids"].numel()
        return StepOut(loss=loss, tokens=n, items=n)

    def epoch_metrics(self, mean_loss: float, correct: float | None, items: int) -> dict[str, float | None]:
        return dict(_metrics(mean_loss, self.char_level))

    def evaluate(self, model: torch.nn.Module, batches: Iterable[dict[str, Any]]) -> dict[str, float]:
        loss, _ = stream_loss(model, batches)
        return {f"val_{k}": v for k, v in _metrics(loss, self.char_level).items()}


def _state_batch(state: Any) -> int:
    return int((state[0] if isinstance(state, tuple) else state).shape[1])


def _metrics(nats: float, char_level: bool) -> dict[str, float]:
    if char_level:
        return {"loss": nats, "bpc": nats / LN2}
    return {"loss": nats, "perplexity": perplexity(nats)}


@torch.no_grad()
def stream_loss(model: torch.nn.Module, batches: Iterable[dict[str, Any]]) -> tuple[float, int]:
    """Mean nats per target token over windows with the state carried; returns (loss, targets)."""
    was = model.training
    model.eval()
    device = next(model.parameters()).device
    state = None
    total, count = 0.0, 0
    for batch in batches:
        if batch.get("reset"):
            state = None
        ids, targets = batch["ids"].to(device), batch["targets"].to(device)
        _, loss, state = model(ids, targets, state)
        total += float(loss) * targets.numel()
        count += targets.numel()
    model.train(was)
    return total / max(count, 1), count


def score_stream(
    model: torch.nn.Module,
    ids: torch.Tensor,
    char_level: bool,
    *,
    batch_size: int = 1,
    bptt: int = 70,
    characters: int | None = None,
    progress: bool | None = None,
    desc: str = "scoring",
) -> dict[str, float]:
    """Score an id stream with the state carried: loss (nats/token), perplexity or bpc, tokens.

    With ``batch_size=1`` every token but the first is a target (the documented figure). With B
    parallel streams the text is cut into B pieces, each starting from a zero state, so the first
    tokens of each piece have less context and the loss runs slightly higher; B times faster to
    compute. `characters` (if given) adds ``bits_per_character`` and ``nats_per_character`` of the
    whole text. `progress`: as `grutext.train.trace.Progress` (None: a bar on a terminal, a plain
    line every 30 s elsewhere; False: silent), labelled `desc`.
    """
    batch_size = max(1, min(batch_size, ids.numel() // 2))
    bptt = max(1, min(bptt, ids.numel() // batch_size - 1))
    batches = LMBatches(ids, batch_size, bptt, source="evaluation stream")
    loss, count = stream_loss(model, track(batches, desc=desc, enabled=progress))
    out: dict[str, float] = {"loss": loss, "tokens": float(count)}
    if char_level:
        out.update(bpc=loss / LN2, nats_per_character=loss, bits_per_character=loss / LN2)
    else:
        out["perplexity"] = perplexity(loss)
    if characters:
        total = loss * count
        out["nats_per_character"] = total / characters
        out["bits_per_character"] = total / characters / LN2
    return out


def format_scores(s: dict[str, float]) -> str:
    parts = [f"loss {s['loss']:.4f} nats/token"]
    if "perplexity" in s:
        parts.append(f"perplexity {s['perplexity']:.2f}")
    if "bits_per_character" in s:
        parts.append(f"{s['bits_per_character']:.4f} bits/char ({s['nats_per_character']:.4f} nats/char)")
    parts.append(f"({int(s['tokens']):,} tokens)")
    return "  ".join(parts)


def evaluate_language_model(
    loaded: LoadedModel,
    data: str | os.PathLike[str] | list[str],
    *,
    fmt: str | None = None,
    text_col: str | None = None,
    batch_size: int = 1,
    progress: bool | None = None,
) -> dict[str, float]:
    """Perplexity (word/BPE) or bits and nats per character of a saved language model on a text.

    Args:
        loaded: `grutext.artifact.load_model(...)` of a language model.
        data: file(s) (as for training) or a list of lines.
        fmt, text_col: for table files.
        batch_size: parallel streams (1 scores every token after the first; more is faster and
            a little pessimistic, see `score_stream`).
        progress: progress through the text (None: a bar on a terminal, plain lines elsewhere).

    Returns:
        ``{"loss", "tokens", "perplexity" | "bpc", "bits_per_character", "nats_per_character"}``.

    Raises:
        ArtifactError: not a language model. DataError: empty text.
    """
    check_language_model(loaded)
    lm = lm_settings(loaded)
    lines = data if isinstance(data, list) else read_corpus(data, fmt=fmt, text_col=text_col)
    ids = encode_stream(loaded.tokenizer, lines, lm.add_eos, source=str(data if not isinstance(data, list) else "text"))
    if ids.numel() < 2:
        raise DataError(f"{data}: too short to score, need at least 2 tokens, got {ids.numel()}")
    chars = sum(len(line) + 1 for line in lines if loaded.tokenizer.kind == "char" or line.strip())
    return score_stream(
        loaded.model,
        ids,
        loaded.tokenizer.kind == "char",
        batch_size=batch_size,
        bptt=lm.bptt,
        characters=chars,
        progress=progress,
        desc="evaluation",
    )


__all__ = ["LanguageModelTask", "evaluate_language_model", "format_scores", "score_stream", "stream_loss"]
