"""What an experiment is: the task, the base settings, the points (cells of `compare`, grid points of
`sweep`) and the seeds; one run per (point, seed), each in its own model folder.

This module imports no torch: the CLI's argument checks read it.
"""

from __future__ import annotations

import difflib
import itertools
import json
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any

from grutext import config as _config
from grutext.config import Config, DataConfig, ModelConfig, TrainConfig
from grutext.errors import ConfigError


@dataclass(frozen=True)
class TaskRun:
    """How the runner trains and scores one task through its public training function."""

    kind: str
    module: str  # the task's train module
    function: str  # its public training function
    model_class: str  # the name the train module builds its network with (`X.from_config`)
    extra: str | None  # the task's own config table ("lm", "tag") passed as the function's second settings
    extra_class: str | None  # module:Class of that table's dataclass
    extra_from_args: str | None = None  # the task cli's function reading that table from the flags
    extra_arg: str | None = None  # the training function's keyword for that table's settings


TASK_RUNS: dict[str, TaskRun] = {
    "classifier": TaskRun(
        "classifier", "grutext.tasks.classification.train", "train_classifier", "TextClassifier", None, None
    ),
    "language_model": TaskRun(
        "language_model",
        "grutext.tasks.language_model.train",
        "train_language_model",
        "LanguageModel",
        "lm",
        "grutext.tasks.language_model.config:LMConfig",
        "lm_config_from_args",
        "lm",
    ),
    "tagger": TaskRun(
        "tagger",
        "grutext.tasks.tagging.train",
        "train_tagger",
        "Tagger",
        "tag",
        "grutext.tasks.tagging.config:TagConfig",
        "tag_config_from_args",
        "tag_cfg",
    ),
}

SECTIONS: dict[str, Any] = {"data": DataConfig, "model": ModelConfig, "train": TrainConfig}
# fields the runner sets itself for every run, so neither --set nor a flag may name them
RUNNER_FIELDS = frozenset(
    {
        "data.train",
        "model.vocab_size",
        "model.num_classes",
        "train.seed",
        "train.out",
        "train.overwrite",
        "train.keep_checkpoint",
        "train.threads",
    }
)


def extra_settings(kind: str, extra: dict[str, Any]) -> dict[str, Any]:
    """The keyword arguments carrying task `kind`'s own settings to its training function (none for a classifier)."""
    klass, arg = extra_class(kind), TASK_RUNS[kind].extra_arg
    return {} if klass is None or arg is None else {arg: klass(**extra)}


def extra_class(kind: str) -> Any:
    """The dataclass of `kind`'s own config table (LMConfig, TagConfig), or None."""
    import importlib

    spec = TASK_RUNS[kind].extra_class
    if spec is None:
        return None
    module, _, name = spec.partition(":")
    return getattr(importlib.import_module(module), name)


@dataclass(frozen=True)
class Point:
    """One cell of `compare` or grid point of `sweep`: a folder-safe name, a label and its settings."""

    name: str
    label: str
    values: dict[str, Any]  # "model.cell" -> "lstm", "model.hidden_size" -> 97, "lm.bptt" -> 35

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "label": self.label, "values": dict(self.values)}


def run_name(point: Point, seed: int) -> str:
    """The folder name of one run: `<point>-seed<k>`."""
    return f"{point.name}-seed{seed}"


@dataclass
class Experiment:
    """One `compare` or `sweep`: every run it holds is (point, seed) for seed in 1..seeds."""

    mode: str  # "compare" | "sweep"
    kind: str  # the task's artifact kind
    config: dict[str, Any]  # the base Config (as a dict), the data argument in data.train
    extra: dict[str, Any]  # the task's own table as a dict ({} for a classifier)
    points: list[Point]
    seeds: int
    out: Path
    swept: list[str] = field(default_factory=list)  # sweep: the fields set, in order
    match: str | None = None  # compare: "params" | "hidden"
    matching: dict[str, Any] = field(default_factory=dict)  # compare --match params: sizes and counts

    @property
    def base_seed(self) -> int:
        return int(self.config["train"]["seed"])

    def train_seed(self, k: int) -> int:
        """The training seed of run k (1-based): the config's seed for k = 1, then the next ones."""
        return self.base_seed + k - 1

    def identity(self) -> dict[str, Any]:
        """What must be equal for two invocations to be the same experiment (the seed count may grow)."""
        return {
            "mode": self.mode,
            "kind": self.kind,
            "config": self.config,
            "extra": self.extra,
            "points": [p.to_dict() for p in self.points],
            "match": self.match,
        }

    def run_config(self, point: Point, k: int) -> tuple[dict[str, Any], dict[str, Any]]:
        """The Config dict and the task table of run (point, k): the base, the point's values, the seed, the folder."""
        cfg = json.loads(json.dumps(self.config))
        extra = dict(self.extra)
        for key, value in point.values.items():
            table, _, name = key.partition(".")
            if table in SECTIONS:
                cfg[table][name] = value
            else:
                extra[name] = value
        cfg["train"].update(
            seed=self.train_seed(k),
            out=str(self.out / "runs" / run_name(point, k)),
            overwrite=True,  # only ever a folder of this experiment's own (resume checks it first)
            keep_checkpoint=False,
        )
        return cfg, extra


# ---- the command line's points ----------------------------------------------------------------------


def parse_cells(text: str) -> list[str]:
    """`gru,lstm,rnn` -> the cells, checked against `grutext.config.CELLS`.

    Raises:
        ConfigError: an unknown or repeated cell, or fewer than one.
    """
    cells = [c.strip() for c in text.split(",") if c.strip()]
    if not cells:
        raise ConfigError(f"--cells: expected a comma-separated list of {', '.join(_config.CELLS)}; got {text!r}")
    for c in cells:
        if c not in _config.CELLS:
            raise ConfigError(f"--cells: unknown cell {c!r}; expected some of {', '.join(_config.CELLS)}")
    repeated = sorted({c for c in cells if cells.count(c) > 1})
    if repeated:
        raise ConfigError(f"--cells: {', '.join(repeated)} given twice; each cell once")
    return cells


def sweepable_fields(kind: str) -> dict[str, Any]:
    """Every config field `--set` may name for task `kind`, `table.field` -> its dataclass field."""
    out: dict[str, Any] = {}
    tables: dict[str, Any] = dict(SECTIONS)
    extra = TASK_RUNS[kind].extra
    if extra is not None:
        tables[extra] = extra_class(kind)
    for table, klass in tables.items():
        for f in fields(klass):
            key = f"{table}.{f.name}"
            if key not in RUNNER_FIELDS:
                out[key] = f
    return out


def resolve_field(name: str, kind: str) -> str:
    """`hidden_size` or `model.hidden_size` -> `model.hidden_size`.

    Raises:
        ConfigError: no such field (the valid ones listed, the closest first) or a name in two tables.
    """
    valid = sweepable_fields(kind)
    if name in valid:
        return name
    matches = [k for k in valid if k.split(".", 1)[1] == name]
    if len(matches) == 1:
        return matches[0]
    if len(matches) > 1:
        raise ConfigError(f"--set {name}: a field of several tables; write one of {', '.join(matches)}")
    if name in RUNNER_FIELDS or any(k.split(".", 1)[1] == name for k in RUNNER_FIELDS):
        raise ConfigError(f"--set {name}: set by the runner for every run (seeds: --seeds; folder: --out)")
    close = difflib.get_close_matches(name, [k.split(".", 1)[1] for k in valid] + list(valid), n=1)
    hint = f" (did you mean {close[0]}?)" if close else ""
    raise ConfigError(f"--set {name}: no such config field{hint}; valid fields: {', '.join(sorted(valid))}")


def _parse_value(key: str, f: Any, text: str) -> Any:
    ann = str(f.type)
    word = text.strip()
    if word.lower() in ("none", "null") and "None" in ann:
        return None
    try:
        if ann.startswith("bool"):
            if word.lower() in ("true", "on", "yes", "1"):
                return True
            if word.lower() in ("false", "off", "no", "0"):
                return False
            raise ValueError(word)
        if ann.startswith("int"):
            return int(word)
        if ann.startswith("float"):
            return float(word)
    except ValueError:
        kind = "true or false" if ann.startswith("bool") else ann.split(" ")[0].replace("|", "or")
        raise ConfigError(f"--set {key}: expected {kind} values; got {text!r}") from None
    return word


def parse_sets(items: list[str], kind: str) -> list[tuple[str, list[Any]]]:
    """`["hidden_size=32,64", "num_layers=1,2"]` -> `[("model.hidden_size", [32, 64]), ("model.num_layers", [1, 2])]`.

    Raises:
        ConfigError: a malformed item, an unknown field, a value of the wrong type, a field set twice.
    """
    if not items:
        raise ConfigError("--set: expected at least one FIELD=V1,V2,... (for example --set hidden_size=32,64,128)")
    valid = sweepable_fields(kind)
    out: list[tuple[str, list[Any]]] = []
    for item in items:
        name, sep, values = item.partition("=")
        if not sep or not name.strip() or not values.strip():
            raise ConfigError(f"--set {item!r}: expected FIELD=V1,V2,... (for example hidden_size=32,64,128)")
        key = resolve_field(name.strip(), kind)
        if any(k == key for k, _ in out):
            raise ConfigError(f"--set {key}: given twice; give all its values in one --set")
        parsed = [_parse_value(key, valid[key], v) for v in values.split(",") if v.strip()]
        if len(set(map(repr, parsed))) != len(parsed):
            raise ConfigError(f"--set {key}: a value repeated in {values!r}")
        out.append((key, parsed))
    return out


def _safe(value: Any) -> str:
    text = str(value)
    return "".join(ch if ch.isalnum() or ch in "._" else "_" for ch in text)


def grid_points(sets: list[tuple[str, list[Any]]]) -> list[Point]:
    """Every combination of the swept values, the first field varying slowest."""
    points = []
    for combo in itertools.product(*(values for _, values in sets)):
        values = {key: v for (key, _), v in zip(sets, combo, strict=True)}
        name = "_".join(f"{key.split('.', 1)[1]}-{_safe(v)}" for key, v in values.items())
        label = ", ".join(f"{key.split('.', 1)[1]}={v}" for key, v in values.items())
        points.append(Point(name, label, values))
    return points


def check_runs_config(exp: Experiment) -> None:
    """Every run's settings valid, before any training (one ConfigError listing the problems)."""
    klass = extra_class(exp.kind)
    for point in exp.points:
        cfg, extra = exp.run_config(point, 1)
        Config.from_dict(cfg, source=f"{exp.mode} {point.label}")
        if klass is not None:
            try:
                klass(**extra).check()
            except TypeError as exc:
                raise ConfigError(f"{exp.mode} {point.label}: {exc}") from None


__all__ = [
    "Experiment",
    "Point",
    "RUNNER_FIELDS",
    "TASK_RUNS",
    "TaskRun",
    "check_runs_config",
    "extra_class",
    "extra_settings",
    "grid_points",
    "parse_cells",
    "parse_sets",
    "resolve_field",
    "run_name",
    "sweepable_fields",
]
