"""Text generation from a `LanguageModel`: greedy, temperature, top-k, top-p (nucleus), repetition
penalty, stop tokens, seeded sampling and beam search; streamed token by token with the recurrent
state carried (constant memory: each step feeds one token).

Example:
    >>> gen = Generator.load("runs/ptb")
    >>> for piece in gen.stream("the company said", max_tokens=20, top_p=0.9, seed=0):
    ...     print(piece, end="")
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from grutext.errors import ConfigError, DataError
from grutext.tasks.language_model.config import resolve_add_eos

NEG_INF = float("-inf")


def check_sampling(
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    repetition_penalty: float = 1.0,
    max_tokens: int = 1,
    beam: int | None = None,
) -> None:
    """Raise ConfigError on the first invalid sampling value (one line naming it)."""

    def bad(name: str, expected: str, got: Any) -> None:
        raise ConfigError(f"{name}: expected {expected}, got {got!r}")

    if (
        isinstance(temperature, bool)
        or not isinstance(temperature, (int, float))
        or not temperature > 0
        or math.isinf(temperature)
    ):
        bad("temperature", "a number > 0", temperature)
    if top_k is not None and (isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1):
        bad("top_k", "an integer >= 1", top_k)
    if top_p is not None and (isinstance(top_p, bool) or not isinstance(top_p, (int, float)) or not 0 < top_p <= 1):
        bad("top_p", "a number in (0, 1]", top_p)
    if (
        isinstance(repetition_penalty, bool)
        or not isinstance(repetition_penalty, (int, float))
        or not repetition_penalty > 0
    ):
        bad("repetition_penalty", "a number > 0 (1 = off)", repetition_penalty)
    if isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or max_tokens < 1:
        bad("max_tokens", "an integer >= 1", max_tokens)
    if beam is not None and (isinstance(beam, bool) or not isinstance(beam, int) or beam < 1):
        bad("beam", "an integer >= 1", beam)


def next_token_probs(
    logits: Tensor,
    *,
    temperature: float = 1.0,
    top_k: int | None = None,
    top_p: float | None = None,
    greedy: bool = False,
    repetition_penalty: float = 1.0,
    history: Sequence[int] = (),
    banned: Sequence[int] = (),
) -> Tensor:
    """The distribution the next token is drawn from.

    Order: banned ids removed; repetition penalty (CTRL, Keskar et al. 2019: a seen token's
    logit is divided by the penalty if positive, multiplied if negative); temperature; top-k
    (keep the k largest); top-p (keep the smallest set of most likely tokens whose mass reaches
    p); greedy puts all mass on the argmax.

    Args:
        logits: (V,) next-token logits.
        temperature, top_k, top_p, greedy, repetition_penalty: as described.
        history: ids generated or prompted so far (for the penalty).
        banned: ids never produced.

    Returns:
        probs (V,) summing to 1.
    """
    z = logits.detach().float().clone()  # (V,)
    if banned:
        z[list(banned)] = NEG_INF
    if repetition_penalty != 1.0 and len(history):
        seen = torch.tensor(sorted(set(int(i) for i in history)), dtype=torch.long)
        vals = z[seen]
        z[seen] = torch.where(vals > 0, vals / repetition_penalty, vals * repetition_penalty)
    if greedy:
        probs = torch.zeros_like(z)
        probs[int(torch.argmax(z))] = 1.0
        return probs
    z = z / temperature
    if top_k is not None and top_k < z.numel():
        kth = torch.topk(z, top_k).values[-1]
        z = torch.where(z < kth, torch.full_like(z, NEG_INF), z)
    probs = torch.softmax(z, dim=-1)  # (V,)
    if top_p is not None and top_p < 1.0:
        sorted_p, order = torch.sort(probs, descending=True)  # (V,), (V,)
        before = torch.cumsum(sorted_p, 0) - sorted_p  # mass of the more likely tokens
        keep_sorted = before < top_p  # the first token is always kept
        keep = torch.zeros_like(keep_sorted)
        keep[order] = keep_sorted
        probs = torch.where(keep, probs, torch.zeros_like(probs))
        probs = probs / probs.sum()
    return probs


def _best_extensions(
    cand: Tensor, beam: int, stop_ids: set[int], seqs: list[list[int]], finished: list[tuple[list[int], float]]
) -> tuple[list[int], list[int], list[float]]:
    """The `beam` best one-token extensions of K hypotheses scored cand (K, V): their rows, tokens and scores.

    A stop token among the 2 * beam best candidates finishes its hypothesis instead (appended to
    `finished`, the stop token not included); impossible (-inf) candidates are never kept.
    """
    V = cand.shape[1]
    top = torch.topk(cand.reshape(-1), min(2 * beam, cand.numel()))  # over (K*V,)
    keep_rows: list[int] = []
    keep_tok: list[int] = []
    keep_score: list[float] = []
    for s, flat in zip(top.values.tolist(), top.indices.tolist(), strict=True):
        if s == NEG_INF:
            break
        row, tok = divmod(flat, V)
        if tok in stop_ids:
            finished.append((seqs[row], s))
            continue
        keep_rows.append(row)
        keep_tok.append(tok)
        keep_score.append(s)
        if len(keep_rows) == beam:
            break
    return keep_rows, keep_tok, keep_score


def _settled(finished: list[tuple[list[int], float]], best_active: float, n_best: int) -> bool:
    """n_best hypotheses have finished and the best active score is below the n-th finished one."""
    return len(finished) >= n_best and best_active < sorted((f[1] for f in finished), reverse=True)[n_best - 1]


def _beam_rank(item: tuple[list[int], float], length_penalty: float) -> float:
    """A hypothesis's rank: its score, divided by ``len**length_penalty`` when there is a penalty."""
    return item[1] / (max(len(item[0]), 1) ** length_penalty) if length_penalty else item[1]


class Generator:
    """Generate from a language model and its tokenizer.

    Args:
        model: a `LanguageModel` (put in eval mode here).
        tokenizer: its `Tokenizer`.
        add_eos: the model was trained with ``<eos>`` ending each line (None: word/BPE yes,
            char no); then prompts start after an ``<eos>`` and ``<eos>`` prints as a newline.
        ban_unk: never sample ``<unk>``.
    """

    def __init__(
        self, model: torch.nn.Module, tokenizer: Any, *, add_eos: bool | None = None, ban_unk: bool = False
    ) -> None:
        self.model = model.eval()
        self.tokenizer = tokenizer
        self.add_eos = resolve_add_eos(tokenizer.kind, add_eos)
        self.banned = [tokenizer.pad_id, tokenizer.bos_id] + ([tokenizer.unk_id] if ban_unk else [])
        if not self.add_eos:
            self.banned.append(tokenizer.eos_id)

    @classmethod
    def load(cls, directory: str | Path, **kwargs: Any) -> Generator:
        """Load a model directory; raises ArtifactError for anything but a language model."""
        from grutext.artifact import load_model
        from grutext.tasks.language_model.predict import check_language_model, lm_settings

        loaded = load_model(directory)
        check_language_model(loaded, "generate")
        kwargs.setdefault("add_eos", lm_settings(loaded).add_eos)
        return cls(loaded.model, loaded.tokenizer, **kwargs)

    # ---- prompt and state -------------------------------------------------------------------------

    def prompt_ids(self, prompt: str) -> list[int]:
        """Ids fed before generating (``<eos>`` first for line-based models).

        Raises:
            DataError: empty prompt, or one made only of unknown tokens.
        """
        if not isinstance(prompt, str) or not prompt.strip():
            raise DataError(f"prompt: expected some text to continue, got {prompt!r}")
        ids = self.tokenizer.encode(prompt)
        if not ids:
            raise DataError(f"prompt {prompt!r}: no tokens after tokenization")
        if all(i == self.tokenizer.unk_id for i in ids):
            raise DataError(
                f"prompt {prompt!r}: every token is unknown to the model's vocabulary; "
                f"expected at least one known token"
            )
        return ([self.tokenizer.eos_id] if self.add_eos else []) + ids

    @torch.no_grad()
    def feed(self, ids: Sequence[int], state: Any = None) -> tuple[Tensor, Any]:
        """Run `ids` (one stream) through the model: last logits (V,) and the state after them."""
        x = torch.tensor([list(ids)], dtype=torch.long)  # (1, T)
        logits, _, state = self.model(x, None, state)  # (1, T, V)
        return logits[0, -1], state

    # ---- rendering --------------------------------------------------------------------------------

    def render(self, ids: Sequence[int]) -> str:
        """Text of generated ids as it continues a prompt (``<eos>`` -> newline)."""
        tok = self.tokenizer
        parts: list[str] = []
        seg: list[int] = []
        for i in list(ids) + [None]:
            if i is None or i == tok.eos_id:
                if seg:
                    text = tok.decode(seg)
                    if tok.kind == "word":
                        text = (" " if parts == [] or not parts[-1].endswith("\n") else "") + text
                    parts.append(text)
                seg = []
                if i is not None:
                    parts.append("\n")
            else:
                seg.append(i)
        out = "".join(parts)
        if tok.kind == "word":
            out = out.replace(" \n", "\n").replace("\n ", "\n")
        return out

    def _stop_ids(self, stop: Sequence[str] | None) -> tuple[set[int], list[str]]:
        ids: set[int] = set()
        texts: list[str] = []
        for s in stop or []:
            if s in ("\n", "<eos>"):
                ids.add(self.tokenizer.eos_id)
                if self.tokenizer.kind == "char":
                    nl = self.tokenizer.token_to_id("\n")
                    if nl is not None:
                        ids.add(nl)
                continue
            tid = self.tokenizer.token_to_id(s)
            if tid is not None:
                ids.add(tid)
            texts.append(s)
        return ids, texts

    # ---- sampling ---------------------------------------------------------------------------------

    def stream_ids(
        self,
        prompt: str,
        *,
        max_tokens: int = 50,
        temperature: float = 1.0,
        top_k: int | None = None,
        top_p: float | None = None,
        greedy: bool = False,
        repetition_penalty: float = 1.0,
        stop: Sequence[str] | None = None,
        seed: int | None = None,
    ) -> Iterator[int]:
        """Generated ids, one at a time; each step feeds one token and keeps only the state.

        Args:
            prompt: text to continue.
            max_tokens: most tokens generated.
            temperature, top_k, top_p, greedy, repetition_penalty: see `next_token_probs`.
            stop: tokens or texts that end generation (the completing token is not yielded);
                ``"\\n"`` or ``"<eos>"`` stop at the end of a line.
            seed: seed of the sampler (same seed, same output).

        Raises:
            ConfigError: invalid sampling values. DataError: bad prompt.
        """
        check_sampling(
            temperature=temperature,
            top_k=top_k,
            top_p=top_p,
            repetition_penalty=repetition_penalty,
            max_tokens=max_tokens,
        )
        history = self.prompt_ids(prompt)
        stop_ids, stop_texts = self._stop_ids(stop)
        rng = torch.Generator()
        rng.manual_seed(int(seed) if seed is not None else int(torch.randint(0, 2**62, (1,))))
        logits, state = self.feed(history)
        produced: list[int] = []
        for _ in range(max_tokens):
            probs = next_token_probs(
                logits,
                temperature=temperature,
                top_k=top_k,
                top_p=top_p,
                greedy=greedy,
                repetition_penalty=repetition_penalty,
                history=history,
                banned=self.banned,
            )
            nxt = int(torch.multinomial(probs, 1, generator=rng)) if not greedy else int(torch.argmax(probs))
            if nxt in stop_ids:
                return
            produced.append(nxt)
            if stop_texts and any(self.render(produced).endswith(s) for s in stop_texts):
                return
            history.append(nxt)
            yield nxt
            logits, state = self.feed([nxt], state)

    def stream(self, prompt: str, **options: Any) -> Iterator[str]:
        """Generated text in pieces as tokens arrive (same options as `stream_ids`)."""
        produced: list[int] = []
        shown = ""
        for i in self.stream_ids(prompt, **options):
            produced.append(i)
            text = self.render(produced)
            if text.endswith("\ufffd"):  # an unfinished UTF-8 character (byte-level BPE): wait
                continue
            piece, shown = text[len(shown) :], text
            if piece:
                yield piece
        text = self.render(produced)
        if len(text) > len(shown):
            yield text[len(shown) :]

    def generate(self, prompt: str, **options: Any) -> str:
        """The whole continuation of `prompt` as one string (options as `stream_ids`)."""
        return self.render(list(self.stream_ids(prompt, **options)))

    # ---- beam search --------------------------------------------------------------------------------

    @torch.no_grad()
    def beam_search_ids(
        self,
        prompt: str,
        *,
        beam: int = 4,
        max_tokens: int = 20,
        n_best: int | None = None,
        stop: Sequence[str] | None = None,
        length_penalty: float = 0.0,
    ) -> list[tuple[list[int], float]]:
        """The n best continuations by total log-probability (nats), beams run as one batch.

        A hypothesis ends at a stop token (not included) or after `max_tokens`. With
        ``length_penalty=a`` hypotheses are ranked by ``score / len**a``.

        Returns:
            ``[(ids, log_prob), ...]`` best first.
        """
        check_sampling(max_tokens=max_tokens, beam=beam)
        n_best = beam if n_best is None else n_best
        if isinstance(n_best, bool) or not isinstance(n_best, int) or not n_best >= 1:
            raise ConfigError(f"n_best: expected an integer >= 1, got {n_best!r}")
        stop_ids, _ = self._stop_ids(stop)
        logits, state = self.feed(self.prompt_ids(prompt))
        logp = torch.log_softmax(logits.float(), -1).unsqueeze(0)  # (1, V)
        seqs: list[list[int]] = [[]]
        scores = torch.zeros(1)  # (K,)
        finished: list[tuple[list[int], float]] = []
        for _ in range(max_tokens):
            logp[:, self.banned] = NEG_INF
            rows, toks, kept = _best_extensions(scores.unsqueeze(1) + logp, beam, stop_ids, seqs, finished)
            if not rows:
                break
            seqs = [seqs[r] + [t] for r, t in zip(rows, toks, strict=True)]
            scores = torch.tensor(kept)
            if not length_penalty and _settled(finished, max(kept), n_best):
                break  # log-probs only fall: no active beam can overtake the n-th finished one
            logp, state = self._feed_beams(state, rows, toks)
        finished.extend((s, float(v)) for s, v in zip(seqs, scores.tolist(), strict=True))
        finished.sort(key=lambda item: _beam_rank(item, length_penalty), reverse=True)
        return [(ids, float(score)) for ids, score in finished[:n_best]]

    def _feed_beams(self, state: Any, rows: list[int], toks: list[int]) -> tuple[Tensor, Any]:
        """Feed token toks[k] to the hypothesis rows[k]: next-token log-probs (K, V) and the new state."""
        from grutext.tasks.language_model.model import select_state

        state = select_state(state, torch.tensor(rows))  # (L, K, H)
        x = torch.tensor(toks).unsqueeze(1)  # (K, 1)
        out, _, state = self.model(x, None, state)  # (K, 1, V)
        return torch.log_softmax(out[:, -1].float(), -1), state  # (K, V)

    def beam_search(self, prompt: str, **options: Any) -> list[tuple[str, float]]:
        """`beam_search_ids` with the continuations rendered as text."""
        return [(self.render(ids), score) for ids, score in self.beam_search_ids(prompt, **options)]


def generate(model_dir: str | Path, prompt: str, **options: Any) -> str:
    """One-shot helper: load a language model directory and continue `prompt` (options of `Generator.stream_ids`)."""
    return Generator.load(model_dir).generate(prompt, **options)


__all__ = ["Generator", "generate", "next_token_probs", "check_sampling"]
