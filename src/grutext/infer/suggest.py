"""Next-word suggestions for a keyboard: the k most likely next words after a prompt, and
completions of a partly typed word.

- Word models: one forward pass over the context, softmax over the vocabulary (specials
  excluded); with a typed prefix, only entries starting with it, renormalised.
- Char and BPE models: a small beam search over continuations until a word boundary (a space,
  punctuation or end of line); a word's probability is that of its pieces times the probability
  that a boundary follows; the found words are renormalised.

The state after the context is cached, so typing letter by letter costs no new context pass.

Example:
    >>> sug = Suggester.load("runs/ptb")
    >>> sug.suggest("the stock ")        # next words
    >>> sug.suggest("the stock mar")     # completions of "mar"
"""

from __future__ import annotations

import string
from pathlib import Path
from typing import Any

import torch

from grutext.errors import ConfigError, DataError
from grutext.tasks.language_model.config import resolve_add_eos
from grutext.tasks.language_model.model import select_state

BOUNDARY = set(string.whitespace) | set(string.punctuation)


def split_prompt(text: str) -> tuple[str, str]:
    """(context, partial word): the trailing run of non-space characters is the partial word."""
    if not text or text[-1].isspace():
        return text, ""
    i = len(text)
    while i > 0 and not text[i - 1].isspace():
        i -= 1
    return text[:i], text[i:]


class Suggester:
    """Next-word suggestions from a language model.

    Args:
        model: a `LanguageModel`.
        tokenizer: its tokenizer.
        add_eos: the model saw ``<eos>`` at each line start (None: word/BPE yes, char no).
        beam: search width for char/BPE models.
        max_pieces: longest word (in tokens) the char/BPE search builds.
    """

    def __init__(
        self,
        model: torch.nn.Module,
        tokenizer: Any,
        *,
        add_eos: bool | None = None,
        beam: int = 12,
        max_pieces: int = 16,
    ) -> None:
        self.model = model.eval()
        self.tok = tokenizer
        self.add_eos = resolve_add_eos(tokenizer.kind, add_eos)
        self.beam = beam
        self.max_pieces = max_pieces
        V = tokenizer.vocab_size
        specials = {tokenizer.pad_id, tokenizer.unk_id, tokenizer.bos_id, tokenizer.eos_id}
        self._words = [tokenizer.id_to_token(i) for i in range(V)]
        self._special = torch.zeros(V, dtype=torch.bool)
        self._special[list(specials)] = True
        self._cache: tuple[str, torch.Tensor, Any] | None = None
        if tokenizer.kind != "word":
            # what each token adds to the text, and which tokens start a new word
            self._pieces = ["" if i in specials else tokenizer.decode([i]) for i in range(V)]
            starts = [bool(p) and (p[0] in BOUNDARY) for p in self._pieces]
            self._inword = torch.tensor([bool(p) and not any(c in BOUNDARY for c in p) for p in self._pieces])
            self._masks: dict[tuple[str, bool, str], torch.Tensor] = {}
            self._starts_boundary = torch.tensor(starts) | torch.tensor(
                [i == tokenizer.eos_id for i in range(V)]
            )  # (V,)

    @classmethod
    def load(cls, directory: str | Path, **kwargs: Any) -> Suggester:
        """Load a language model directory (ArtifactError for other kinds)."""
        from grutext.artifact import load_model
        from grutext.tasks.language_model.predict import check_language_model, lm_settings

        loaded = load_model(directory)
        check_language_model(loaded, "next-word")
        kwargs.setdefault("add_eos", lm_settings(loaded).add_eos)
        return cls(loaded.model, loaded.tokenizer, **kwargs)

    @torch.no_grad()
    def _context(self, context: str) -> tuple[torch.Tensor, Any]:
        """log-probabilities (V,) of the next token after `context`, and the state (cached)."""
        if self._cache is not None and self._cache[0] == context:
            return self._cache[1], self._cache[2]
        ids = ([self.tok.eos_id] if self.add_eos else []) + (self.tok.encode(context) if context else [])
        if not ids:
            raise DataError("prompt: empty, expected some text before the next word")
        x = torch.tensor([ids], dtype=torch.long)  # (1, T)
        logits, _, state = self.model(x, None, None)  # (1, T, V)
        logp = torch.log_softmax(logits[0, -1].float(), -1)  # (V,)
        self._cache = (context, logp, state)
        return logp, state

    def suggest(self, text: str, k: int = 5) -> list[tuple[str, float]]:
        """Suggestions for what the user typed: next words if `text` ends with a space (or is a
        whole word context), completions of the last word otherwise.

        Args:
            text: the text typed so far.
            k: number of suggestions.

        Returns:
            ``[(word, probability), ...]`` most likely first.

        Raises:
            DataError: empty text or one made only of unknown words. ConfigError: k < 1.
        """
        if not isinstance(text, str) or not text.strip():
            raise DataError(f"prompt: expected some text, got {text!r}")
        context, partial = split_prompt(text)
        if not context.strip():  # a single partial word: complete it from the line start
            return self.next_words("", k, prefix=partial, _allow_empty=True)
        return self.next_words(context, k, prefix=partial)

    def next_words(
        self, context: str, k: int = 5, prefix: str = "", *, _allow_empty: bool = False
    ) -> list[tuple[str, float]]:
        """The k most likely words after `context`, restricted to those starting with `prefix`.

        Args:
            context: the text before the word.
            k: number of words.
            prefix: the typed start of the word ("" for any).

        Returns:
            ``[(word, probability), ...]``: model probabilities when `prefix` is empty (word
            models), else renormalised over the candidates.
        """
        if isinstance(k, bool) or not isinstance(k, int) or k < 1:
            raise ConfigError(f"k: expected an integer >= 1, got {k!r}")
        if not _allow_empty and not context.strip():
            raise DataError(f"prompt: expected some text before the next word, got {context!r}")
        if self.tok.kind == "word" and context.strip():
            ids = self.tok.encode(context)
            if ids and all(i == self.tok.unk_id for i in ids):
                raise DataError(f"prompt {context!r}: every token is unknown to the model's vocabulary")
        if self.tok.kind == "word":
            return self._word_model(context, k, prefix)
        return self._search(context, k, prefix)

    def _word_model(self, context: str, k: int, prefix: str) -> list[tuple[str, float]]:
        logp, _ = self._context(context)
        probs = logp.exp().clone()  # (V,)
        probs[self._special] = 0.0
        if prefix:
            norm = self.tok.normalize(prefix)
            mask = torch.tensor([w.startswith(norm) for w in self._words])  # (V,)
            probs = torch.where(mask, probs, torch.zeros_like(probs))
            total = float(probs.sum())
            if total <= 0:
                return []
            probs = probs / total
        top = torch.topk(probs, min(k, int((probs > 0).sum())))
        return [(self._words[i], float(p)) for p, i in zip(top.values.tolist(), top.indices.tolist(), strict=True)]

    def _allowed(self, text: str, need: str, lead: str) -> torch.Tensor:
        """(V,) bool: pieces that may follow `text` inside the word that must start with `need`."""
        if len(text) >= len(need) and text:
            return self._inword
        rem = need[len(text) :]
        key = (rem, bool(text), lead)
        mask = self._masks.get(key)
        if mask is None:
            ok = []
            for p in self._pieces:
                if not p or not (p.startswith(rem) or rem.startswith(p)):
                    ok.append(False)
                    continue
                body = p[len(lead) :] if not text and lead else p
                ok.append(
                    bool(body) and not any(c in BOUNDARY for c in body) and bool(text or not lead or p.startswith(lead))
                )
            mask = torch.tensor(ok)
            if len(self._masks) > 256:
                self._masks.clear()
            self._masks[key] = mask
        return mask

    @torch.no_grad()
    def _search(self, context: str, k: int, prefix: str) -> list[tuple[str, float]]:
        """Beam search over char/BPE pieces until a word boundary."""
        bpe = self.tok.kind == "bpe"
        lead = ""
        if bpe and context.endswith(" "):  # BPE pieces carry the space before a word
            context, lead = context[:-1], " "
        need = lead + prefix  # the text the word must start with
        logp, state = self._context(context) if (context or self.add_eos) else (None, None)
        if logp is None:
            raise DataError("prompt: expected some text before the word")
        found: dict[str, float] = {}
        hyps: list[tuple[str, float]] = [("", 0.0)]
        rows = logp.unsqueeze(0)  # (K, V)
        V = rows.shape[1]
        for _step in range(self.max_pieces):
            cands: list[tuple[float, int, int, str]] = []  # (score, row, token, text)
            for r, (text, score) in enumerate(hyps):
                lp = rows[r]
                if len(text) >= len(need) and text[len(lead) :]:  # a whole word if a boundary follows
                    end = float(torch.logsumexp(lp[self._starts_boundary], 0))
                    word = text[len(lead) :]
                    found[word] = max(found.get(word, float("-inf")), score + end)
                allowed = self._allowed(text, need, lead)  # (V,) pieces that keep the word consistent
                masked = torch.where(allowed, lp, torch.full_like(lp, float("-inf")))
                top = torch.topk(masked, min(V, self.beam))
                for v, t in zip(top.values.tolist(), top.indices.tolist(), strict=True):
                    if v == float("-inf"):
                        break
                    cands.append((score + v, r, t, text + self._pieces[t]))
            if not cands:
                break
            cands.sort(key=lambda c: -c[0])
            cands = cands[: self.beam]
            if len(found) >= k and cands[0][0] < sorted(found.values(), reverse=True)[k - 1]:
                break  # no live hypothesis can beat the k-th word found
            hyps = [(c[3], c[0]) for c in cands]
            index = torch.tensor([c[1] for c in cands])
            x = torch.tensor([[c[2]] for c in cands])  # (K, 1)
            out, _, state = self.model(x, None, select_state(state, index))  # (K, 1, V)
            rows = torch.log_softmax(out[:, -1].float(), -1)  # (K, V)
        for r, (text, score) in enumerate(hyps):  # words still open at the length limit
            if len(text) >= len(need) and text[len(lead) :]:
                end = float(torch.logsumexp(rows[r][self._starts_boundary], 0))
                found[text[len(lead) :]] = max(found.get(text[len(lead) :], float("-inf")), score + end)
        if not found:
            return []
        words = sorted(found.items(), key=lambda kv: -kv[1])[:k]
        total = torch.logsumexp(torch.tensor([s for s in found.values()]), 0)
        return [(w, float(torch.exp(torch.tensor(s) - total))) for w, s in words]


def next_words(model_dir: str | Path, text: str, k: int = 5) -> list[tuple[str, float]]:
    """One-shot helper: load a language model and suggest for `text` (see `Suggester.suggest`)."""
    return Suggester.load(model_dir).suggest(text, k)


__all__ = ["Suggester", "next_words", "split_prompt"]
