"""GRUTagger: the BiGRU-CRF sequence tagger as a scikit-learn-style estimator.

The same contract as `grutext.estimator.GRUTextClassifier`: `__init__` only stores its arguments,
`fit` returns self, learned attributes end in ``_``, `predict` before `fit` raises
`NotFittedError`, `get_params`/`set_params`/`clone` work (scikit-learn's `BaseEstimator` is a base
when it is importable). Every default is the field default of `ModelConfig`, `TrainConfig`,
`DataConfig` or `TagConfig`, so the estimator trains what ``grutext train FILE --task tag`` trains.

``X`` is a list of sentences, each a list of token strings, and ``y`` a list of tag lists; or ``X``
is the path of a CoNLL or JSONL file (``y`` None), read with `tag_col`/`token_col`/`feature_col`.
Tags come back in the training data's scheme; `score` is conlleval's chunk F1 (token accuracy for
plain labels such as part-of-speech tags).

Example:
    >>> tagger = GRUTagger(epochs=5).fit("data/conll2000/train.txt")       # doctest: +SKIP
    >>> tagger.predict([["He", "reckons", "the", "deficit", "will", "narrow"]])  # doctest: +SKIP
    >>> tagger.score("data/conll2000/test.txt")                              # doctest: +SKIP
    >>> tagger.save("runs/chunker"); GRUTagger.load("runs/chunker")         # doctest: +SKIP
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

from grutext.config import Config, DataConfig, ModelConfig, TrainConfig
from grutext.errors import ArtifactError, ConfigError, DataError, NotFittedError
from grutext.estimator import _ParamsMixin
from grutext.tasks.tagging.config import KIND, SECTION, TagConfig

try:  # optional: clone / GridSearchCV integration when scikit-learn is there
    from sklearn.base import BaseEstimator as _Base

    _BASES: tuple[type, ...] = (_Base,)
except ImportError:  # pragma: no cover - exercised when sklearn is absent
    _BASES = ()

_D, _M, _T, _G = DataConfig(), ModelConfig(), TrainConfig(), TagConfig()  # the CLI's defaults, written once


def _is_path(X: Any) -> bool:
    return isinstance(X, (str, os.PathLike))


class GRUTagger(*_BASES, _ParamsMixin):  # type: ignore[misc]
    """Sequence tagger: words (+ case, characters) -> BiGRU -> CRF or softmax, sklearn-style.

    Args:
        embed_dim, hidden_size, num_layers, dropout: the network (see `ModelConfig`).
        cell: the word-level bidirectional stack's cell (``"gru"``; ``"lstm"``, ``"rnn"``, ``"mingru"``,
            ``"lngru"`` to compare).
        decoder, char_encoder, char_dim, char_hidden, case_dim, scheme: the tagger (see `TagConfig`).
        tag_col, token_col, feature_col: the columns when ``X`` is a file path (a feature column
            such as POS needs a file: in-memory sentences carry no features).
        lowercase, min_freq, max_vocab: the word vocabulary.
        epochs, batch_size, lr, weight_decay, patience, max_minutes: training (see `TrainConfig`).
        valid_fraction: share of the sentences held out to pick the best epoch.
        pretrained, freeze_embeddings: word vectors (``"glove-6b-50d"`` or a file; ``embed_dim``
            must match them).
        random_state: the seed. verbose: print what ``grutext train`` prints; False: silent.

    Learned attributes: `tags_` (tag names, file scheme order as learnt), `scheme_`, `model_`,
    `tokenizer_`, `config_`, `tag_config_`, `history_`.
    """

    def __init__(
        self,
        *,
        embed_dim: int = _M.embed_dim,
        hidden_size: int = _M.hidden_size,
        num_layers: int = _M.num_layers,
        dropout: float = _M.dropout,
        cell: str = _M.cell,
        decoder: str = _G.decoder,
        char_encoder: str = _G.char_encoder,
        char_dim: int = _G.char_dim,
        char_hidden: int = _G.char_hidden,
        case_dim: int = _G.case_dim,
        scheme: str = _G.scheme,
        tag_col: int | str = _G.tag_col,
        token_col: int | str = _G.token_col,
        feature_col: int | str | None = _G.feature_col,
        lowercase: bool = _D.lowercase,
        min_freq: int = _D.min_freq,
        max_vocab: int | None = _D.max_vocab,
        epochs: int = _T.epochs,
        batch_size: int = _T.batch_size,
        lr: float = _T.lr,
        weight_decay: float = _T.weight_decay,
        patience: int = _T.patience,
        max_minutes: float | None = _T.max_minutes,
        valid_fraction: float = _D.valid_fraction,
        pretrained: str | None = _M.pretrained,
        freeze_embeddings: bool = _M.freeze_embeddings,
        random_state: int = _T.seed,
        verbose: bool = True,
    ) -> None:
        self.embed_dim = embed_dim
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.dropout = dropout
        self.cell = cell
        self.decoder = decoder
        self.char_encoder = char_encoder
        self.char_dim = char_dim
        self.char_hidden = char_hidden
        self.case_dim = case_dim
        self.scheme = scheme
        self.tag_col = tag_col
        self.token_col = token_col
        self.feature_col = feature_col
        self.lowercase = lowercase
        self.min_freq = min_freq
        self.max_vocab = max_vocab
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.max_minutes = max_minutes
        self.valid_fraction = valid_fraction
        self.pretrained = pretrained
        self.freeze_embeddings = freeze_embeddings
        self.random_state = random_state
        self.verbose = verbose

    # ---- configuration -------------------------------------------------------------------------

    def _configs(self) -> tuple[Config, TagConfig]:
        p = self.get_params()

        def pick(klass: type) -> dict[str, Any]:
            names = {f.name for f in fields(klass)}
            return {k: v for k, v in p.items() if k in names}

        data = DataConfig(**pick(DataConfig))
        model = ModelConfig(**pick(ModelConfig))
        train = TrainConfig(**pick(TrainConfig), seed=self.random_state)
        cfg = Config(data, model, train).validate("GRUTagger")
        return cfg, TagConfig(**pick(TagConfig)).check()

    def _corpus(self, X: Any, y: Any, tag_cfg: TagConfig, name: str = "y", scheme: str | None = None) -> Any:
        """A `TaggedCorpus` from a file path (y None) or from token lists and tag lists."""
        from grutext.data.conll import corpus_from_lists
        from grutext.tasks.tagging.data import read_tagged

        if _is_path(X):
            if not os.path.isfile(X):
                raise DataError(
                    f"X: {os.fspath(X)!r} is not a file; expected a CoNLL/JSONL file path or a list of sentences "
                    "(lists of token strings)"
                )
            if y is not None:
                raise DataError(f"y: X is a file ({os.fspath(X)}), which holds the tags; pass y=None")
            return read_tagged(os.fspath(X), tag_cfg, scheme=scheme)
        if y is None:
            raise DataError("y: expected one tag list per sentence of X (or X a CoNLL/JSONL file path)")
        if tag_cfg.feature_col is not None:
            raise ConfigError(
                f"feature_col={tag_cfg.feature_col!r}: a feature column is read from a file; "
                "in-memory sentences carry none (pass a file path, or feature_col=None)"
            )
        X, y = (v.tolist() if hasattr(v, "tolist") else v for v in (X, y))
        return corpus_from_lists(X, y, name=name, scheme=scheme or tag_cfg.scheme)

    # ---- fit / predict / score -------------------------------------------------------------------

    def fit(self, X: Any, y: Sequence[Sequence[str]] | None = None) -> GRUTagger:
        """Train on sentences `X` (token lists) with tags `y`, or on the CoNLL/JSONL file `X`; returns self."""
        from grutext.tasks.tagging.data import carve
        from grutext.tasks.tagging.train import train_tagger

        cfg, tag_cfg = self._configs()
        corpus = self._corpus(X, y, tag_cfg)
        train, valid = carve(corpus, self.valid_fraction, self.random_state + 1)
        progress = None if self.verbose else False  # None: the CLI's choice (a live line on a terminal)
        run = train_tagger(
            cfg, tag_cfg, save=False, verbose=self.verbose, progress=progress, corpora=(train, valid, None)
        )
        self._set_fitted(run.model, run.tokenizer, run.config, run.tag_config, run.vocab.to_dict(), run.fit.history)
        return self

    def _set_fitted(
        self, model: Any, tokenizer: Any, config: Config, tag_cfg: TagConfig, vocab: dict[str, Any], history: Any
    ) -> None:
        self.model_ = model.eval()
        self.tokenizer_ = tokenizer
        self.config_ = config
        self.tag_config_ = tag_cfg
        self.meta_ = {SECTION: {**tag_cfg.to_dict(), **vocab}}
        self.scheme_ = vocab["file_scheme"]
        self.tags_ = list(vocab["tags"])
        self.history_ = history

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(X, y) first")

    def _loaded(self) -> Any:
        from grutext.artifact import LoadedModel

        return LoadedModel(self.model_, self.tokenizer_, self.config_, KIND, [], meta=self.meta_)

    def predict(self, X: Any) -> list[list[str]]:
        """Tags of each sentence (token lists, or the sentences of a CoNLL/JSONL file), in the training
        data's scheme."""
        self._check_fitted()
        from grutext.tasks.tagging.predict import tag_tokens

        if _is_path(X):
            corpus = self._corpus(X, None, self.tag_config_, scheme="none")
            feats = [list(s.features or ()) for s in corpus] if self.tag_config_.feature_col is not None else None
            return tag_tokens(self._loaded(), corpus.tokens, feats)
        if isinstance(X, (str, bytes)):
            raise DataError("X: expected a list of sentences (lists of tokens), got one string")
        sentences = list(X.tolist() if hasattr(X, "tolist") else X)
        for i, s in enumerate(sentences):
            if isinstance(s, (str, bytes)) or not all(isinstance(t, str) for t in s):
                raise DataError(f"X[{i}]: expected a list of token strings, got {type(s).__name__} {s!r:.60}")
            if not s:
                raise DataError(f"X[{i}]: an empty sentence; expected at least one token")
        return tag_tokens(self._loaded(), [list(s) for s in sentences])

    def score_report(self, X: Any, y: Sequence[Sequence[str]] | None = None, *, strict: bool = False) -> dict[str, Any]:
        """conlleval's figures on (X, y) or a file: ``f1``, ``precision``, ``recall``, ``accuracy``,
        ``per_type`` (chunk tags); ``accuracy`` (plain labels). `strict`: seqeval's strict mode."""
        self._check_fitted()
        from grutext.tasks.tagging.evaluate import score

        corpus = self._corpus(X, y, self.tag_config_, scheme=self.scheme_)
        pred = self.predict([list(s.tokens) for s in corpus]) if not _is_path(X) else self.predict(X)
        rep = score(corpus.tags, pred, self.scheme_, "strict" if strict else "conlleval")
        rep.pop("scores", None)
        return rep

    def score(self, X: Any, y: Sequence[Sequence[str]] | None = None, sample_weight: Any = None) -> float:
        """Chunk F1 (conlleval, 0..1) on (X, y) or a file; token accuracy for plain labels."""
        if sample_weight is not None:
            raise ConfigError("sample_weight: chunk F1 has no per-sentence weights; pass None")
        rep = self.score_report(X, y)
        return float(rep["f1"] if "f1" in rep else rep["accuracy"])

    # ---- persistence -----------------------------------------------------------------------------

    def save(self, directory: str | os.PathLike[str]) -> None:
        """Write a model directory that `grutext predict/evaluate/explain` and `GRUTagger.load` read."""
        self._check_fitted()
        from grutext.artifact import save_model

        save_model(
            os.fspath(directory),
            self.model_,
            self.tokenizer_,
            self.config_,
            kind=KIND,
            metrics={"history": self.history_},
            meta=self.meta_,
        )

    @classmethod
    def load(cls, directory: str | os.PathLike[str], verbose: bool = True) -> GRUTagger:
        """A fitted tagger from a model directory (written by `save` or ``grutext train --task tag``).

        Raises:
            ArtifactError: the directory is missing, incomplete or holds another kind of model.
        """
        from grutext.artifact import load_model
        from grutext.tasks.tagging.data import TagVocab

        loaded = load_model(os.fspath(directory))
        if loaded.kind != KIND:
            raise ArtifactError(f"{os.fspath(directory)}: a {loaded.kind} model, expected a tagger")
        cfg = loaded.config
        tag_cfg = TagConfig.from_meta(loaded.meta)
        sections = {**vars(cfg.data), **vars(cfg.model), **vars(cfg.train), **tag_cfg.to_dict()}
        params = {k: sections[k] for k in cls._get_param_names() if k in sections}
        est = cls(**{**params, "random_state": cfg.train.seed, "verbose": verbose})
        vocab = TagVocab.from_meta(loaded.meta).to_dict()
        est._set_fitted(loaded.model, loaded.tokenizer, cfg, tag_cfg, vocab, loaded.metrics.get("history", []))
        return est


__all__ = ["GRUTagger"]
