"""Run an exported grutext model without torch: onnxruntime, tokenizers, numpy and safetensors only.

``grutext export MODEL_DIR OUT`` writes a folder this module reads::

    >>> from grutext import runtime                       # doctest: +SKIP
    >>> m = runtime.load("runs/demo-bbc-onnx", threads=1)  # doctest: +SKIP
    >>> m.predict(["Shares rally as profits beat forecasts"])[0]["label"]   # doctest: +SKIP
    'business'

`load` returns a `ClassifierModel` (``kind == "classifier"``), a `LanguageModelRuntime`
(``kind == "language_model"``) or a `TaggerModel` (``kind == "tagger"``). All have ``kind``,
``labels`` (class names; the LM and the tagger: empty), ``info`` (the parsed
``grutext-export.json``) and ``path``.

This package must stay importable with no torch installed: it imports only the standard
library, numpy, onnxruntime, tokenizers, `grutext.errors`, `grutext.data.tag_schemes` and
`grutext.data.tag_words` (standard library only) and `grutext.ngrams` (numpy; safetensors when an
export carries an n-gram model); a test runs it in a process where torch cannot be imported.

How it differs from grutext's torch predictors (`grutext.infer`):

- `ClassifierModel.predict` answers ``{"label", "probs"}`` (``Predictor.predict``:
  ``{"text", "label", "probability", "probabilities"}`` rounded to 6 digits); probabilities are
  the same numbers (fp32, within 1e-5; int8 within its quantization error). A blended
  classifier's export carries its n-gram model (``ngrams.json``, ``ngrams.safetensors``): the
  graph's probabilities are blended with it as `Predictor` does (``ClassifierModel.ngrams``,
  ``blend_weight``; None for the network alone).
- `LanguageModelRuntime.generate` samples with numpy's generator: a seed gives repeatable
  output, but not the same text as `Generator` with that seed (greedy decoding is identical).
  There is no repetition penalty, stop list or beam search.
- `LanguageModelRuntime.next_word` is `Suggester.next_words(context)` for word-level models
  (the k most likely next words, specials excluded, model probabilities); for character and
  BPE models it returns the k most likely next *tokens* (the torch `Suggester` searches ahead
  to whole words).
- `TaggerModel.tag` answers, for a raw sentence, what ``grutext predict`` on the tagger answers
  (`predict_texts`: tokens, tags in the training file's scheme, offsets, chunks with character
  spans); for a token list, its tags and chunks (token spans). The CRF's Viterbi is NumPy here and
  in the torch model on CPU (the same recursion), so the tags are the same.

The package's modules: `manifest` (the folder's ``grutext-export.json``), `tokenizer`
(`RuntimeTokenizer`, truncation), `model` (`RuntimeModel`: files, tokenizer, onnxruntime session),
`classifier` (`ClassifierModel`), `language_model` (`LanguageModelRuntime`) and `tagger`
(`TaggerModel`, `viterbi`).
"""

from __future__ import annotations

from pathlib import Path

from grutext.errors import ArtifactError
from grutext.runtime.classifier import ClassifierModel
from grutext.runtime.language_model import LanguageModelRuntime
from grutext.runtime.manifest import FORMAT, FORMAT_VERSION, MANIFEST, read_manifest
from grutext.runtime.manifest import sha256_file as sha256_file
from grutext.runtime.model import RuntimeModel
from grutext.runtime.tagger import TaggerModel
from grutext.runtime.tokenizer import _HTML_BREAK as _HTML_BREAK
from grutext.runtime.tokenizer import BOS as BOS
from grutext.runtime.tokenizer import EOS as EOS
from grutext.runtime.tokenizer import PAD as PAD
from grutext.runtime.tokenizer import TRUNCATIONS as TRUNCATIONS
from grutext.runtime.tokenizer import UNK as UNK
from grutext.runtime.tokenizer import WORD_PIECES as WORD_PIECES
from grutext.runtime.tokenizer import RuntimeTokenizer as RuntimeTokenizer
from grutext.runtime.tokenizer import truncate as truncate

_KINDS: dict[str, type[RuntimeModel]] = {
    "classifier": ClassifierModel,
    "language_model": LanguageModelRuntime,
    "tagger": TaggerModel,
}


def load(path: str | Path, threads: int | None = None, int8: bool = False) -> RuntimeModel:
    """Load an export folder.

    Args:
        path: the OUT folder of ``grutext export``.
        threads: onnxruntime intra-op threads (None: onnxruntime's default, all cores).
        int8: run ``model.int8.onnx`` (exported with ``--int8``) instead of ``model.onnx``.

    Returns:
        A `ClassifierModel`, `LanguageModelRuntime` or `TaggerModel`.

    Raises:
        ArtifactError: not an export folder, a file missing or changed (sha256), an unknown kind.
    """
    folder = Path(path)
    info = read_manifest(folder)
    kind = info.get("kind")
    if kind not in _KINDS:
        raise ArtifactError(f"{folder / MANIFEST}: kind {kind!r} is not one the runtime runs ({', '.join(_KINDS)})")
    return _KINDS[kind](folder, info, threads, bool(int8))


__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "MANIFEST",
    "ClassifierModel",
    "LanguageModelRuntime",
    "RuntimeModel",
    "TaggerModel",
    "load",
    "read_manifest",
]
