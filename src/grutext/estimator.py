"""GRUTextClassifier: the pipeline as a scikit-learn estimator.

It follows scikit-learn's contract (`__init__` only stores its arguments, `fit` returns self,
learned attributes end in `_`, `predict` before `fit` raises `NotFittedError`), and works in a
`Pipeline` or `GridSearchCV` when scikit-learn is installed, without requiring it: when it is
importable the class also inherits its `ClassifierMixin`/`BaseEstimator` so that tags, `clone`
and `score` behave exactly as for a native estimator.
"""

from __future__ import annotations

import inspect
from collections.abc import Sequence
from dataclasses import fields
from typing import Any

import numpy as np

from grutext.config import Config, DataConfig, ModelConfig, TrainConfig
from grutext.errors import DataError, NotFittedError

try:  # optional: richer integration when scikit-learn is there
    from sklearn.base import BaseEstimator as _Base
    from sklearn.base import ClassifierMixin as _Mixin

    _BASES: tuple[type, ...] = (_Mixin, _Base)
except ImportError:  # pragma: no cover - exercised when sklearn is absent
    _BASES = ()


class _ParamsMixin:
    """get_params / set_params from the `__init__` signature, as scikit-learn does it."""

    @classmethod
    def _get_param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return sorted(p.name for p in sig.parameters.values() if p.name != "self" and p.kind != p.VAR_KEYWORD)

    def get_params(self, deep: bool = True) -> dict[str, Any]:
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: Any) -> _ParamsMixin:
        valid = self._get_param_names()
        for key, value in params.items():
            if key not in valid:
                raise ValueError(f"invalid parameter {key!r} for {type(self).__name__}; valid: {', '.join(valid)}")
            setattr(self, key, value)
        return self


_D, _M, _T = DataConfig(), ModelConfig(), TrainConfig()  # the defaults: the CLI's, written once in config.py


class GRUTextClassifier(*_BASES, _ParamsMixin):  # type: ignore[misc]
    """Text classifier: word tokenizer + embedding + (bi)GRU + pooling + softmax, sklearn-style.

    Every default is the field default of `DataConfig`, `ModelConfig` or `TrainConfig`, so that
    the estimator, ``grutext train`` and ``train_classifier(Config())`` train the same model
    (`grutext.config.FIELD_HELP` says what each does).

    Args:
        embed_dim, hidden_size, num_layers, bidirectional, dropout, embed_dropout, pooling, cell:
            the model (see `ModelConfig`).
        tokenizer, lowercase, min_freq, max_vocab, max_len, truncation: the text side.
        epochs, batch_size, lr, weight_decay, patience, valid_fraction: training.
        pretrained: word vectors ("glove-6b-50d" or a file path), or None.
        init_from: a grutext model directory (language model or classifier) whose tokenizer,
            embedding and encoder the model starts from (transfer learning), or None.
        ensemble: train this many networks (seeds random_state, random_state + 1, ...) and average
            their probabilities (see `grutext.models.ensemble`).
        blend: average the network's probabilities with a TF-IDF n-gram logistic regression's:
            "auto" (weight picked on the validation split), "off", or the n-gram model's weight
            0..1 (see `grutext.tasks.classification.blend`); the fitted model is `ngrams_`.
        ema: decay of an exponential moving average of the weights (0 = off; see `TrainConfig`).
        baseline: also fit TF-IDF (1-2 grams) + logistic regression on the same training split;
            its scores are `baseline_` (None when off).
        random_state: the seed (``train.seed``).
        verbose: print what ``grutext train`` prints (data summary, epoch table, and the live
            progress line on a terminal); False: silent.

    Learned attributes: `classes_`, `tokenizer_`, `model_`, `config_`, `history_`, `ngrams_` (the
    blended n-gram model, None when off), `blend_` (its weight and how it was chosen), `baseline_`
    (the baseline's name, settings, validation scores and seconds; None with ``baseline=False``).

    Example:
        >>> clf = GRUTextClassifier(epochs=2).fit(texts, labels)     # doctest: +SKIP
        >>> clf.predict(["what a great film"])                          # doctest: +SKIP
        >>> clf.save("runs/clf"); GRUTextClassifier.load("runs/clf")  # doctest: +SKIP
    """

    _estimator_type = "classifier"

    def __init__(
        self,
        *,
        embed_dim: int = _M.embed_dim,
        hidden_size: int = _M.hidden_size,
        num_layers: int = _M.num_layers,
        bidirectional: bool = _M.bidirectional,
        dropout: float = _M.dropout,
        embed_dropout: float = _M.embed_dropout,
        pooling: str = _M.pooling,
        cell: str = _M.cell,
        tokenizer: str = _D.tokenizer,
        lowercase: bool = _D.lowercase,
        min_freq: int = _D.min_freq,
        max_vocab: int | None = _D.max_vocab,
        max_len: int = _D.max_len,
        truncation: str = _D.truncation,
        epochs: int = _T.epochs,
        batch_size: int = _T.batch_size,
        lr: float = _T.lr,
        weight_decay: float = _T.weight_decay,
        patience: int = _T.patience,
        valid_fraction: float = _D.valid_fraction,
        pretrained: str | None = _M.pretrained,
        init_from: str | None = _M.init_from,
        ensemble: int = _M.ensemble,
        blend: str | float = _M.blend,
        ema: float = _T.ema,
        baseline: bool = _T.baseline,
        random_state: int = _T.seed,
        verbose: bool = True,
    ) -> None:
        self.embed_dim = embed_dim
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.bidirectional = bidirectional
        self.dropout = dropout
        self.embed_dropout = embed_dropout
        self.pooling = pooling
        self.cell = cell
        self.tokenizer = tokenizer
        self.lowercase = lowercase
        self.min_freq = min_freq
        self.max_vocab = max_vocab
        self.max_len = max_len
        self.truncation = truncation
        self.epochs = epochs
        self.batch_size = batch_size
        self.lr = lr
        self.weight_decay = weight_decay
        self.patience = patience
        self.valid_fraction = valid_fraction
        self.pretrained = pretrained
        self.init_from = init_from
        self.ensemble = ensemble
        self.blend = blend
        self.ema = ema
        self.baseline = baseline
        self.random_state = random_state
        self.verbose = verbose

    # scikit-learn >= 1.6 reads tags from here; inherit when sklearn is present
    if _BASES:

        def __sklearn_tags__(self):
            tags = super().__sklearn_tags__()
            tags.input_tags.string = True
            tags.input_tags.two_d_array = False
            return tags

    def _config(self) -> Config:
        p = self.get_params()

        def pick(klass):
            names = {f.name for f in fields(klass)}
            return {k: v for k, v in p.items() if k in names}

        data = DataConfig(**pick(DataConfig))
        model = ModelConfig(**pick(ModelConfig))
        train = TrainConfig(**pick(TrainConfig), seed=self.random_state)
        return Config(data, model, train).validate("GRUTextClassifier")

    @staticmethod
    def _texts(X: Any, name: str = "X") -> list[str]:
        if isinstance(X, (str, bytes)):  # list("a text") would be its characters
            raise DataError(
                f"{name}: expected a list of texts, got one {type(X).__name__} ({X[:40]!r}); pass [text] for one text"
            )
        if hasattr(X, "tolist"):
            X = X.tolist()
        texts = list(X)
        for i, t in enumerate(texts):
            if isinstance(t, (list, tuple)) and len(t) == 1:
                texts[i] = t = t[0]
            if not isinstance(t, str):
                raise DataError(f"{name}[{i}]: expected a string, got {type(t).__name__}")
            if not t.strip():
                raise DataError(f"{name}[{i}]: empty or whitespace-only text")
        return texts

    def fit(self, X: Sequence[str], y: Sequence[Any]) -> GRUTextClassifier:
        """Train on texts `X` with labels `y`; returns self."""
        from grutext.data.readers import TextDataset, train_test_split
        from grutext.tasks.classification.data import Splits
        from grutext.tasks.classification.train import train_classifier

        texts = self._texts(X)
        y_list = list(y.tolist() if hasattr(y, "tolist") else y)
        if len(y_list) != len(texts):
            raise DataError(f"y: expected {len(texts)} labels (one per text), got {len(y_list)}")
        for i, lab in enumerate(y_list):
            if lab is None or (isinstance(lab, float) and np.isnan(lab)):
                raise DataError(f"y[{i}]: missing label ({lab!r})")
        self._label_values = {str(v): v for v in y_list}
        ds = TextDataset(texts, [str(v) for v in y_list], "X")
        cfg = self._config()
        train, valid = train_test_split(ds, self.valid_fraction, seed=self.random_state + 1)
        progress = None if self.verbose else False  # None: the CLI's choice (a live line on a terminal)
        run = train_classifier(
            cfg, splits=Splits(train, valid, None), save=False, verbose=self.verbose, progress=progress
        )
        self._set_fitted(run.model, run.tokenizer, run.config, run.labels, run.fit.history)
        self.ngrams_, self.blend_ = run.ngrams, run.blend
        self.baseline_ = run.baseline
        self.classes_ = np.array([self._label_values[lab] for lab in run.labels])
        return self

    def _set_fitted(self, model: Any, tokenizer: Any, config: Config, labels: list[str], history: Any) -> None:
        self.model_ = model.eval()
        self.tokenizer_ = tokenizer
        self.config_ = config
        self.history_ = history
        self.labels_ = list(labels)
        self.classes_ = np.array(self.labels_)
        self.n_features_in_ = 1

    def _check_fitted(self) -> None:
        if not hasattr(self, "model_"):
            raise NotFittedError(f"this {type(self).__name__} is not fitted yet; call fit(X, y) first")

    def predict_proba(self, X: Sequence[str]) -> np.ndarray:
        """`(N, C)` probabilities, columns in `classes_` order."""
        self._check_fitted()
        from grutext.artifact import LoadedModel
        from grutext.infer.predict import Predictor
        from grutext.tasks import CLASSIFICATION

        loaded = LoadedModel(
            self.model_, self.tokenizer_, self.config_, CLASSIFICATION.kind, list(self.labels_),
            ngrams=getattr(self, "ngrams_", None),
        )  # fmt: skip
        return Predictor(loaded).predict_proba(self._texts(X))

    def predict(self, X: Sequence[str]) -> np.ndarray:
        """`(N,)` predicted labels."""
        self._check_fitted()
        return self.classes_[self.predict_proba(X).argmax(1)]

    def score(self, X: Sequence[str], y: Sequence[Any], sample_weight: Any = None) -> float:
        """Accuracy on `(X, y)`."""
        pred = self.predict(X)
        if isinstance(y, (str, bytes)):
            raise DataError(f"y: expected a list of labels, got one {type(y).__name__} ({y[:40]!r}); pass [label]")
        y_arr = np.asarray(list(y))
        w = None if sample_weight is None else np.asarray(sample_weight, dtype=float)
        return float(np.average(pred == y_arr, weights=w))

    def save(self, directory: str) -> None:
        """Write a model directory that `grutext predict`, `Predictor.load` and `GRUTextClassifier.load` read."""
        self._check_fitted()
        from grutext.artifact import save_model
        from grutext.ngrams import JSON_FILE, WEIGHTS_FILE

        ngrams = getattr(self, "ngrams_", None)
        extra = {JSON_FILE: ngrams.save_json, WEIGHTS_FILE: ngrams.save_weights} if ngrams is not None else None
        blend = getattr(self, "blend_", None)
        classes = self.classes_.tolist()  # the labels as fit saw them (ints stay ints), when JSON can hold them
        as_given = classes if all(isinstance(c, (str, int, float, bool)) for c in classes) else None
        save_model(
            directory,
            self.model_,
            self.tokenizer_,
            self.config_,
            labels=list(self.labels_),
            metrics={"history": self.history_, "estimator_classes": as_given}
            | ({"baseline": self.baseline_} if getattr(self, "baseline_", None) else {})
            | ({"blend": blend} if blend else {}),
            extra=extra,
        )

    @classmethod
    def load(cls, directory: str, verbose: bool = True) -> GRUTextClassifier:
        """A fitted estimator from a classifier's model directory (written by `save` or ``grutext train``).

        Its parameters are the saved config's, so `get_params` and `clone` describe that model;
        `predict` gives what it gave before saving.

        Raises:
            ArtifactError: the directory is missing, incomplete or holds a language model.
        """
        from grutext.artifact import load_model
        from grutext.errors import ArtifactError

        loaded = load_model(directory)
        if loaded.kind != "classifier":
            raise ArtifactError(f"{directory}: a {loaded.kind} model, expected a classifier")
        cfg = loaded.config
        sections = {**vars(cfg.data), **vars(cfg.model), **vars(cfg.train)}
        params = {k: sections[k] for k in cls._get_param_names() if k in sections}
        est = cls(**params, random_state=cfg.train.seed, verbose=verbose)
        est._set_fitted(loaded.model, loaded.tokenizer, cfg, loaded.labels, loaded.metrics.get("history", []))
        est.baseline_ = loaded.metrics.get("baseline")
        est.ngrams_, est.blend_ = loaded.ngrams, loaded.metrics.get("blend")
        given = loaded.metrics.get("estimator_classes")
        if isinstance(given, list) and len(given) == len(loaded.labels):
            est.classes_ = np.array(given)
            est._label_values = {str(v): v for v in given}
        return est
