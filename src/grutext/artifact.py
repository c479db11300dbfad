"""The model directory: everything needed to rebuild a trained model, and nothing executable.

```
MODEL_DIR/
  config.json        format + versions, kind, the run's Config, labels
  tokenizer.json     the tokenizer (HF `tokenizers` format plus grutext's settings)
  model.safetensors  the weights
  labels.json        class names, index order (classifiers)
  metrics.json       epoch trace, validation and test metrics (when known)
  *.png              curves / confusion matrix (optional)
  manifest.json      SHA-256 of every file above, grutext version, config hash (`grutext.manifest`)
```

`save_model` writes every file (the task's own config sections, metrics and plots included) into a
temporary sibling folder, flushes it and renames it into place once, so a model directory is
complete and self-consistent or absent. The kind in config.json names the task in
`grutext.tasks.TASKS`, which rebuilds the module (`Task.build`). `load_model` rebuilds the model from the directory
alone, checks the format version, the manifest (every file's SHA-256, the config fields the
weights depend on), every tensor name and shape, and that every weight is finite; it loads no pickle.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from grutext.config import Config
from grutext.errors import ArtifactError, ConfigError, GrutextError
from grutext.manifest import depends_of, verify_manifest, write_manifest
from grutext.nn.gru import GRU
from grutext.safeio import check_finite, dumps, follow_umask, remove_stale_temporaries, temp_prefix
from grutext.tasks import CLASSIFICATION, TASKS, task_for
from grutext.version import __version__

FORMAT = "grutext-model"
FORMAT_VERSION = 1
REQUIRED = ("config.json", "tokenizer.json", "model.safetensors")


@dataclass
class LoadedModel:
    """A model directory, loaded: the module (eval mode), its tokenizer, config and labels."""

    model: torch.nn.Module
    tokenizer: Any
    config: Config
    kind: str
    labels: list[str] = field(default_factory=list)
    metrics: dict[str, Any] = field(default_factory=dict)
    path: Path | None = None
    meta: dict[str, Any] = field(default_factory=dict)  # config.json as read (the task's own sections too)
    ngrams: Any = None  # a classifier's blended n-gram model (grutext.ngrams.NgramModel), None when it has none

    def blend(self, probs: Any, texts: Any) -> Any:
        """The network's `probs` of `texts` blended with the n-gram model's (as they are when there is none)."""
        return probs if self.ngrams is None else self.ngrams.blend(probs, texts)


def require_single_network(loaded: LoadedModel, what: str) -> None:
    """Raise ArtifactError when `loaded` is an ensemble: `what` reads one network's internals."""
    n = task_for(loaded.kind, loaded.path).members(loaded.config)
    if n > 1:
        raise ArtifactError(
            f"{loaded.path}: an ensemble of {n} networks; {what} reads one network's internals: "
            f"pass --member K (0..{n - 1}), or load_model(path, member=K)"
        )


def _follow_umask(path: Path, *, directory: bool) -> None:
    follow_umask(path, directory=directory)


def _version() -> str:
    return __version__


def save_model(
    directory: str | Path,
    model: torch.nn.Module,
    tokenizer: Any,
    config: Config,
    *,
    kind: str = CLASSIFICATION.kind,
    labels: list[str] | None = None,
    metrics: dict[str, Any] | None = None,
    extra: dict[str, Callable[[Path], Any]] | None = None,
    meta: dict[str, Any] | None = None,
) -> Path:
    """Write a model directory atomically: every file into a temporary sibling, renamed into place once.

    Args:
        directory: target folder (replaced if it exists).
        model: the trained module.
        tokenizer: a `grutext.data.tokenizers.Tokenizer`.
        config: the run's `Config` (model fields filled in).
        kind: the task's artifact kind, a key of `grutext.tasks.TASKS`.
        labels: class names in index order.
        metrics: JSON-ready metrics (history, test scores).
        extra: `{filename: writer(path)}` for extra files such as PNGs.
        meta: extra top-level sections of config.json that the task reads back (the language
            model's ``{"lm": {...}}``).

    Returns:
        The directory path.
    """
    task_for(kind, directory)  # an unknown kind is refused before anything is written
    directory = Path(directory)
    directory.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_temporaries(directory.parent, directory.name)  # a save killed before (kill -9, power cut)
    if directory.is_dir():  # the model this save replaces is whole: older set-aside copies are not needed
        remove_stale_temporaries(directory.parent, directory.name, "old")
    tmp = Path(tempfile.mkdtemp(prefix=temp_prefix(directory.name), dir=directory.parent))
    _follow_umask(tmp, directory=True)  # mkdtemp makes 0700: a model is readable as any folder the user makes
    try:
        header = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "grutext_version": _version(),
            "torch_version": torch.__version__,
            "kind": kind,
            "config": config.to_dict(),
            "labels": list(labels or []),
        }
        clash = sorted(set(meta or {}) & set(header))
        if clash:
            raise ValueError(f"save_model: meta may not replace config.json's own fields {clash}")
        header.update(meta or {})
        _write_files(tmp, header, model, tokenizer, labels, metrics, extra)
        _swap_in(tmp, directory)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def _write_files(
    tmp: Path,
    header: dict[str, Any],
    model: torch.nn.Module,
    tokenizer: Any,
    labels: list[str] | None,
    metrics: dict[str, Any] | None,
    extra: dict[str, Callable[[Path], Any]] | None,
) -> None:
    """Every file of the model directory, into `tmp`, flushed to disk."""
    from safetensors.torch import save_file

    (tmp / "config.json").write_text(dumps(header, what="config.json", indent=2))
    tokenizer.save(tmp / "tokenizer.json")
    state = {k: v.detach().cpu().contiguous() for k, v in model.state_dict().items()}
    check_finite(state, "save_model: refusing to save")
    _untie(state)
    save_file(state, str(tmp / "model.safetensors"), metadata={"format": FORMAT, "kind": header["kind"]})
    if labels is not None:
        (tmp / "labels.json").write_text(json.dumps(list(labels), indent=1))
    if metrics is not None:
        (tmp / "metrics.json").write_text(dumps(metrics, what="metrics.json", indent=1))
    for name, writer in (extra or {}).items():
        writer(tmp / name)
    write_manifest(tmp, config=header["config"], depends=depends_of(header))
    _sync(tmp)


def _swap_in(tmp: Path, directory: Path) -> None:
    """Rename `tmp` to `directory`; an existing one is renamed aside first, put back if that fails,
    and removed once the new one is in place."""
    old = None
    if directory.exists():
        old = directory.with_name(f".{directory.name}.old-{os.getpid()}")
        os.replace(directory, old)
    try:
        os.replace(tmp, directory)
    except BaseException:
        if old is not None:
            os.replace(old, directory)
        raise
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)


def _sync(folder: Path) -> None:
    """Flush every file of `folder` to disk before the rename makes it the model directory; each file
    gets the umask's permissions (safetensors writes 0600)."""
    for path in folder.iterdir():
        if path.is_file():
            _follow_umask(path, directory=False)
            with open(path, "rb") as fh:
                os.fsync(fh.fileno())


def _untie(state: dict[str, torch.Tensor]) -> None:
    """safetensors refuses shared storage (tied weights): keep separate copies on disk."""
    seen: dict[int, str] = {}
    for k, v in state.items():
        ptr = v.data_ptr()
        if ptr in seen and v.numel():
            state[k] = v.clone()
        seen[ptr] = k


def _jsonable(x: Any) -> Any:
    if hasattr(x, "tolist"):
        return x.tolist()
    return str(x)


def read_meta(directory: str | Path) -> dict[str, Any]:
    """Read and check `config.json` of a model directory."""
    directory = Path(directory)
    if not directory.is_dir():
        aside = sorted(directory.parent.glob(f".{directory.name}.old-*")) if directory.parent.is_dir() else []
        if aside:
            raise ArtifactError(
                f"{directory}: model directory not found; a save replacing it was interrupted and the previous "
                f"model is at {aside[0]}: rename it back to {directory.name}"
            )
        raise ArtifactError(f"{directory}: model directory not found")
    missing = [n for n in REQUIRED if not (directory / n).is_file()]
    if missing:
        raise ArtifactError(f"{directory}: incomplete model directory, missing {', '.join(missing)}")
    try:
        meta = json.loads((directory / "config.json").read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        raise ArtifactError(f"{directory / 'config.json'}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT:
        raise ArtifactError(f"{directory / 'config.json'}: not a grutext model (expected format {FORMAT!r})")
    version = meta.get("format_version")
    if not isinstance(version, int) or version > FORMAT_VERSION:
        raise ArtifactError(
            f"{directory / 'config.json'}: format_version {version!r} is newer than this "
            f"grutext ({_version()}) reads (<= {FORMAT_VERSION}); upgrade grutext"
        )
    if meta.get("kind") not in TASKS:
        raise ArtifactError(
            f"{directory / 'config.json'}: unknown model kind {meta.get('kind')!r}; "
            f"expected one of {', '.join(sorted(TASKS))}"
        )
    return meta


def load_model(directory: str | Path, device: str | torch.device = "cpu", member: int | None = None) -> LoadedModel:
    """Rebuild a trained model from its directory alone.

    Args:
        directory: a folder written by `save_model`.
        device: where to put the model.
        member: for an ensemble (``model.ensemble > 1``), hand back only its member k (0-based) as a
            plain classifier (its config says ``ensemble = 1``): explanations and traces read one
            network. None: the whole model.

    Returns:
        LoadedModel with the module in eval mode, its GRUs' ``inference_cache`` on (see
        `grutext.nn.gru.GRU`: edit their weights through torch, not through ``.data``).

    Raises:
        ArtifactError: missing/corrupt files, newer format, or files that do not agree with each other
            (tokenizer vs vocabulary size, labels.json vs config.json, weights vs the config), naming
            what is missing or mismatched.
    """
    directory = Path(directory)
    meta = read_meta(directory)
    verify_manifest(directory, config=meta.get("config"), depends=depends_of(meta))
    task = task_for(meta["kind"], directory / "config.json")
    try:
        cfg = Config.from_dict(meta.get("config", {}), source=str(directory / "config.json"))
    except ConfigError as exc:
        raise ArtifactError(str(exc)) from None
    tokenizer = _load_tokenizer(directory, cfg)
    labels = _check_labels(directory, meta, cfg, task.has_labels)
    model = task.build(cfg, meta)
    _load_weights(directory, model)
    if member is not None:
        n = task.members(cfg)
        if n < 2:
            raise ArtifactError(f"{directory}: --member {member}: this model is not an ensemble")
        if isinstance(member, bool) or not isinstance(member, int) or not 0 <= member < n:
            raise ArtifactError(f"{directory}: --member must be 0..{n - 1} (an ensemble of {n}); got {member!r}")
        model, cfg = task.member(model, cfg, member)
    model.to(device).eval()
    for module in model.modules():  # loaded to predict: keep the GRUs' weights prepared between no-grad calls
        if isinstance(module, GRU):
            module.inference_cache = True
    ngrams = _load_ngrams(directory) if member is None else None  # one member: the network alone
    metrics = {}
    if (directory / "metrics.json").is_file():
        try:
            metrics = json.loads((directory / "metrics.json").read_text())
        except ValueError:
            metrics = {}
    return LoadedModel(model, tokenizer, cfg, meta["kind"], labels, metrics, directory, meta, ngrams)


def _load_ngrams(directory: Path) -> Any:
    """The blended n-gram model of `directory` (None without ``ngrams.json``)."""
    from grutext.ngrams import NgramModel

    try:
        return NgramModel.load(directory)
    except ValueError as exc:
        raise ArtifactError(str(exc)) from None


def _load_tokenizer(directory: Path, cfg: Config) -> Any:
    from grutext.data.tokenizers import Tokenizer

    try:
        tokenizer = Tokenizer.load(directory / "tokenizer.json")
    except GrutextError as exc:
        raise ArtifactError(f"{directory / 'tokenizer.json'}: {exc}") from None
    except Exception as exc:  # the Rust library raises its own exception types
        raise ArtifactError(f"{directory / 'tokenizer.json'}: unreadable tokenizer ({exc})") from None
    if tokenizer.vocab_size != cfg.model.vocab_size:
        raise ArtifactError(
            f"{directory}: tokenizer has {tokenizer.vocab_size} tokens but the model "
            f"expects vocab_size {cfg.model.vocab_size}"
        )
    return tokenizer


def _check_labels(directory: Path, meta: dict[str, Any], cfg: Config, has_labels: bool) -> list[str]:
    """The class names; labels.json (when present) must agree with config.json, and their number with the model."""
    labels = list(meta.get("labels", []))
    path = directory / "labels.json"
    if path.is_file():
        try:
            on_disk = json.loads(path.read_text(encoding="utf-8"))
        except (ValueError, UnicodeDecodeError) as exc:
            raise ArtifactError(f"{path}: not valid JSON ({exc})") from None
        if on_disk != labels:
            raise ArtifactError(
                f"{directory}: labels.json {on_disk[:6]!r} does not match config.json's labels {labels[:6]!r}"
            )
    if has_labels and labels and len(labels) != cfg.model.num_classes:
        raise ArtifactError(
            f"{directory}: config.json names {len(labels)} labels but the model has num_classes {cfg.model.num_classes}"
        )
    return labels


def _load_weights(directory: Path, model: torch.nn.Module) -> None:
    """Load model.safetensors into `model`, naming any missing, unexpected or misshapen tensor."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    try:
        state = load_file(str(directory / "model.safetensors"))
    except (SafetensorError, OSError, ValueError) as exc:
        raise ArtifactError(f"{directory / 'model.safetensors'}: corrupt or truncated ({exc})") from None
    expected = model.state_dict()
    missing = sorted(set(expected) - set(state))
    unexpected = sorted(set(state) - set(expected))
    if missing or unexpected:
        raise ArtifactError(
            f"{directory / 'model.safetensors'}: weights do not match the config "
            f"(missing {missing[:3]}, unexpected {unexpected[:3]})"
        )
    for name, tensor in state.items():
        if tuple(tensor.shape) != tuple(expected[name].shape):
            raise ArtifactError(
                f"{directory / 'model.safetensors'}: {name} has shape {tuple(tensor.shape)}, "
                f"config says {tuple(expected[name].shape)}"
            )
    check_finite(state, str(directory / "model.safetensors"))
    model.load_state_dict(state)
