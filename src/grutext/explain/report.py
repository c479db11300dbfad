"""The training report: one self-contained HTML page for a model directory.

Sections: the epoch trace, loss/accuracy (or perplexity) curves, validation/test scores, per-class
metrics, confusion matrix, the most confident validation mistakes with their explanations, the
model summary and the run's configuration. Images are embedded as base64 data URIs; no scripts.
"""

from __future__ import annotations

import base64
import html
import json
import math
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from grutext.errors import ConfigError, DataError, GrutextError
from grutext.explain.render import _style, page, tokens_html
from grutext.safeio import inside, refuse_symlink, write_output
from grutext.tasks import task_for

HISTORY_COLUMNS = (
    "epoch",
    "loss",
    "accuracy",
    "perplexity",
    "bpc",
    "val_loss",
    "val_accuracy",
    "val_macro_f1",
    "val_perplexity",
    "val_bpc",
    "lr",
    "time",
    "tokens_per_s",
)


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode()
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _num(v: Any) -> str:
    if isinstance(v, bool) or v is None:
        return "–" if v is None else str(v)
    if isinstance(v, int):
        return f"{v:,}"
    if isinstance(v, float):
        if not math.isfinite(v):
            return "–"
        if abs(v) >= 1000:
            return f"{v:,.0f}"
        return f"{v:.2e}" if 0 < abs(v) < 1e-3 else f"{v:.4f}"
    return html.escape(str(v))


def history_html(
    history: list[dict[str, Any]], best_epoch: int | None = None, member_best: list[int] | None = None
) -> str:
    """The epoch trace as an HTML table (the best epoch in bold).

    An ensemble's rows carry their ``member``; `member_best` gives each member's best epoch.
    """
    if not history:
        return "<p class='meta'>no epoch history in metrics.json</p>"
    members = any("member" in h for h in history)
    cols = ["member"] if members else []
    cols += [c for c in HISTORY_COLUMNS if any(h.get(c) is not None for h in history)]
    cols += [c for c in history[0] if c not in cols and isinstance(history[0][c], (int, float))]
    head = "".join(f"<th>{html.escape(c)}</th>" for c in cols)
    rows = []
    for h in history:
        best = best_epoch
        if members and member_best is not None and h.get("member", 0) < len(member_best):
            best = member_best[h.get("member", 0)]
        style = ' style="font-weight:bold"' if best is not None and h.get("epoch") == best else ""
        rows.append(f"<tr{style}>" + "".join(f"<td>{_num(h.get(c))}</td>" for c in cols) + "</tr>")
    if members and member_best is not None:
        note = f"<p class='meta'>each member's best epoch (bold): {', '.join(map(str, member_best))}</p>"
    else:
        note = f"<p class='meta'>best epoch (bold): {best_epoch}</p>" if best_epoch is not None else ""
    return f"<div class='scroll'><table><tr>{head}</tr>{''.join(rows)}</table></div>{note}"


def confusion_html(cm: list[list[int]], labels: list[str]) -> str:
    """The confusion matrix (rows true, columns predicted) as a coloured HTML table."""
    arr = np.asarray(cm)
    vmax = float(arr.max()) if arr.size else 1.0
    head = "".join(f"<th>{html.escape(str(lab))}</th>" for lab in labels)
    rows = []
    for i, lab in enumerate(labels):
        cells = "".join(f'<td style="{_style(float(v), vmax, "seq")}">{int(v):,}</td>' for v in arr[i])
        rows.append(f"<tr><th class='l'>{html.escape(str(lab))}</th>{cells}</tr>")
    return f"<table><tr><th class='l'>true ＼ predicted</th>{head}</tr>{''.join(rows)}</table>"


def per_class_html(report: dict[str, Any]) -> str:
    """Precision, recall, F1 and support per class."""
    rows = []
    for lab, m in (report.get("per_class") or {}).items():
        rows.append(
            f"<tr><td class='l'>{html.escape(str(lab))}</td><td>{_num(m.get('precision'))}</td>"
            f"<td>{_num(m.get('recall'))}</td><td>{_num(m.get('f1'))}</td><td>{_num(m.get('support'))}</td></tr>"
        )
    if not rows:
        return ""
    return (
        "<table><tr><th class='l'>class</th><th>precision</th><th>recall</th><th>F1</th><th>support</th></tr>"
        + "".join(rows)
        + "</table>"
    )


def _scores_html(name: str, rep: dict[str, Any] | None, labels: list[str]) -> str:
    if not rep:
        return ""
    keys = [k for k in ("accuracy", "macro_f1", "loss", "perplexity", "bpc", "n") if rep.get(k) is not None]
    line = " · ".join(f"{k} <b>{_num(rep[k])}</b>" for k in keys)
    parts = [f"<h3>{name}</h3><p>{line}</p>", per_class_html(rep)]
    if rep.get("confusion_matrix"):
        parts.append(confusion_html(rep["confusion_matrix"], rep.get("labels") or labels))
    return "\n".join(parts)


def baseline_html(baseline: dict[str, Any] | None, metrics: dict[str, Any]) -> str:
    """The baseline table: the linear model's and this model's headline scores per split, and the delta."""
    if not baseline:
        return ""
    rows = []
    for split, label in (("valid", "validation"), ("test", "test")):
        base, mine = baseline.get(split), metrics.get(split)
        if not base:
            continue
        for key in ("accuracy", "macro_f1", "micro_f1"):
            if base.get(key) is None:
                continue
            m = (mine or {}).get(key)
            delta = f"{100 * (m - base[key]):+.1f}" if m is not None else ""
            rows.append(
                f"<tr><th class='l'>{label}</th><td>{key}</td><td>{_num(base[key])}</td>"
                f"<td>{_num(m) if m is not None else ''}</td><td>{delta}</td></tr>"
            )
    settings = ", ".join(f"{k}={v}" for k, v in (baseline.get("settings") or {}).items())
    return (
        f"<h2>Baseline</h2><p class='meta'>{html.escape(str(baseline.get('name')))} fitted on the same training "
        f"split in {_num(baseline.get('seconds'))} s ({html.escape(settings)})</p>"
        "<table><tr><th class='l'>split</th><th>metric</th><th>baseline</th><th>this model</th>"
        "<th>delta (points)</th></tr>" + "".join(rows) + "</table>"
    )


def task_sections_html(heading: str, sections: list[dict[str, Any]]) -> str:
    """A task's own report sections (`report_sections`): each a titled table (``columns``, ``rows``) or
    a confusion matrix (``confusion``: ``labels``, ``matrix``); nothing when there are none."""
    parts = []
    for sec in sections:
        parts.append(f"<h3>{html.escape(sec['title'])}</h3>")
        if sec.get("note"):
            parts.append(f"<p class='meta'>{html.escape(sec['note'])}</p>")
        if "confusion" in sec:
            parts.append(confusion_html(sec["confusion"]["matrix"], sec["confusion"]["labels"]))
        elif sec.get("rows"):
            head = "".join(
                f"<th{' class=l' if i == 0 else ''}>{html.escape(str(c))}</th>" for i, c in enumerate(sec["columns"])
            )
            rows = "".join(
                "<tr>" + "".join(f"<td{' class=l' if i == 0 else ''}>{_num(v)}</td>" for i, v in enumerate(r)) + "</tr>"
                for r in sec["rows"]
            )
            parts.append(f"<table><tr>{head}</tr>{rows}</table>")
    return f"<h2>{html.escape(heading)}</h2>" + "\n".join(parts) if parts else ""


def validation_data(loaded: Any, data: str | None = None) -> Any:
    """The validation set of the run (re-read from its config, same seed) or the file `data`."""
    from grutext.data.readers import read_dataset

    cfg = loaded.config
    if data:
        return read_dataset(data, fmt=cfg.data.format, text_col=cfg.data.text_col, label_col=cfg.data.label_col)
    from grutext.tasks.classification.data import load_splits

    return load_splits(stored_data_config(loaded), seed=cfg.train.seed).valid


def stored_data_config(loaded: Any) -> Any:
    """The run's data config with every stored path checked: a model folder is untrusted input, so a
    path it names is followed only when it resolves inside the folder (relative paths are taken from
    the folder); a named dataset is read from its usual place only.

    Raises:
        DataError: a stored path outside the folder, named, with the flag that reads another file.
    """
    from dataclasses import replace

    from grutext.data.named import is_named

    d = loaded.config.data
    folder = Path(loaded.path) if loaded.path is not None else None
    changes: dict[str, Any] = {}
    for name in ("train", "valid", "test", "data_root"):
        value = getattr(d, name)
        if value is None or (name != "data_root" and d.data_root is None and is_named(value)):
            continue
        if folder is None or not inside(value, folder):
            raise DataError(
                f"config.json names data.{name} = {value!r}, outside the model folder; grutext does not follow "
                "paths stored in a model folder: pass --data FILE"
            )
        changes[name] = str(folder / value) if not Path(value).is_absolute() else value
    return replace(d, **changes)


def confident_mistakes(
    loaded: Any, ds: Any, k: int = 5, method: str = "ig", explain_with: Any = None
) -> tuple[list[dict[str, Any]], list[str]]:
    """The `k` validation mistakes the model was surest of, each with an explanation.

    `explain_with`: the loaded network whose internals explain each mistake (an ensemble's
    member, see `load_model(path, member=k)`); default `loaded` itself.

    Returns:
        ``(mistakes, notes)``: dicts with text, true, predicted, probability, explanation.
    """
    from grutext.explain.core import explain
    from grutext.infer.predict import Predictor

    notes: list[str] = []
    if ds.labels is None:
        raise DataError(f"{ds.source}: the report's mistakes need labelled data, found no labels")
    if loaded.config.model.task == "multilabel":
        return [], ["mistakes: not shown for multi-label models"]
    labels = loaded.labels
    keep = [i for i, lab in enumerate(ds.labels) if str(lab) in labels and ds.texts[i].strip()]
    if len(keep) < len(ds.labels):
        notes.append(
            f"mistakes: {len(ds.labels) - len(keep):,} examples skipped (empty text or a label the model does not know)"
        )
    texts = [ds.texts[i] for i in keep]
    truth = np.array([labels.index(str(ds.labels[i])) for i in keep])
    if not texts:
        return [], notes + ["mistakes: no usable validation examples"]
    probs = Predictor(loaded).predict_proba(texts)  # (N, C)
    pred = probs.argmax(1)
    wrong = np.flatnonzero(pred != truth)
    order = wrong[np.argsort(-probs[wrong, pred[wrong]], kind="stable")][:k]
    out = []
    for i in order:
        ex = explain(explain_with or loaded, texts[i], method=method)
        out.append(
            {
                "text": texts[i],
                "true": labels[truth[i]],
                "predicted": labels[pred[i]],
                "probability": float(probs[i, pred[i]]),
                "explanation": ex,
            }
        )
    notes.append(f"validation: {len(wrong):,} mistakes out of {len(texts):,}")
    return out, notes


def _mistakes_html(mistakes: list[dict[str, Any]], method: str) -> str:
    if not mistakes:
        return "<p class='meta'>no mistakes to show</p>"
    name = {"ig": "integrated gradients", "occlusion": "occlusion", "attention": "attention"}.get(method, method)
    parts = [
        f"<p class='meta'>tokens coloured by {name} for the (wrong) predicted class: red pushed towards it, "
        f"blue away from it.</p>"
    ]
    for m in mistakes:
        ex = m["explanation"]
        notes = "".join(f"<div class='note'>{html.escape(n)}</div>" for n in ex.notes if n.startswith("truncated"))
        parts.append(
            f"<h3>true {html.escape(m['true'])} · predicted {html.escape(m['predicted'])} "
            f"(p={m['probability']:.3f})</h3>{notes}<p class='text'>{tokens_html(ex)}</p>"
        )
    return "\n".join(parts)


def _settings_html(settings: dict[str, Any]) -> str:
    rows = "".join(f"<tr><th>{html.escape(k)}</th><td>{html.escape(str(v))}</td></tr>" for k, v in settings.items())
    return f"<table>{rows}</table>"


def _mistakes_section(
    loaded: Any, task: Any, model_dir: Path, data: str | None, mistakes: int, method: str, member: int
) -> list[str]:
    """The report's "most confident validation mistakes", each explained (models that name classes)."""
    from grutext.artifact import load_model

    body: list[str] = []
    body.append("<h2>Most confident validation mistakes</h2>")
    explainer = None
    n_members = task.members(loaded.config)
    if n_members > 1:  # a bad --member is the caller's error, not missing data
        explainer = load_model(model_dir, member=member)
        body.append(
            f"<p class='meta'>an ensemble of {n_members} networks: the mistakes are the "
            f"ensemble's, each explanation reads member {member}</p>"
        )
    try:
        ds = validation_data(loaded, data)
        found, notes = confident_mistakes(loaded, ds, k=mistakes, method=method, explain_with=explainer)
        body += [f"<p class='meta'>{html.escape(n)}</p>" for n in notes]
        body.append(_mistakes_html(found, method))
    except (GrutextError, OSError) as exc:
        if data:
            raise DataError(f"--data {data}: {exc}") from None
        body.append(
            f"<div class='note'>validation data not available ({html.escape(str(exc))}); "
            f"pass --data FILE to show mistakes</div>"
        )
    return body


def _trace_sections(model_dir: Path, metrics: dict[str, Any]) -> list[str]:
    """The epoch trace and the curves (the run's curves.png, else drawn from the history)."""
    from grutext.train.trace import plot_curves

    body = []
    if not (model_dir / "metrics.json").is_file():
        body.append("<div class='note'>metrics.json is missing: no epoch trace or scores</div>")
    history = metrics.get("history") or []
    member_best = [m.get("best_epoch") for m in metrics["members"]] if metrics.get("members") else None
    body.append("<h2>Epoch trace</h2>" + history_html(history, metrics.get("best_epoch"), member_best))
    curves = model_dir / "curves.png"
    if curves.is_symlink() and not inside(curves, model_dir):  # a link out of the folder is not followed
        curves = model_dir / ".no-curves"
    with tempfile.TemporaryDirectory() as tmp:
        if not curves.is_file() and history:
            curves = plot_curves(history, Path(tmp) / "curves.png") or curves
        if curves.is_file():
            body.append("<h2>Curves</h2>" + _img(curves, "training curves"))
    return body


def _scores_sections(metrics: dict[str, Any], labels: list[str]) -> list[str]:
    """Validation and test scores, and the baseline comparison."""
    return [
        "<h2>Scores</h2>",
        _scores_html("validation", metrics.get("valid"), labels) or "<p class='meta'>no validation scores</p>",
        _scores_html("test", metrics.get("test"), labels),
        baseline_html(metrics.get("baseline"), metrics),
    ]


def _model_sections(loaded: Any) -> list[str]:
    """The model summary (a note instead when it cannot be made) and the run's configuration."""
    from grutext.summary import model_summary

    try:
        summary = model_summary(loaded.model)
    except Exception as exc:  # the summary is a nicety; never lose the report over it
        summary = f"(no summary: {exc})"
    return [
        f"<h2>Model</h2><pre>{html.escape(summary)}</pre>",
        f"<h2>Configuration</h2><pre>{html.escape(json.dumps(loaded.config.to_dict(), indent=2))}</pre>",
    ]


def training_report(
    model_dir: str | Path,
    out: str | Path | None = None,
    data: str | None = None,
    mistakes: int = 5,
    method: str = "ig",
    member: int = 0,
) -> Path:
    """Write the HTML training report of a model directory.

    Args:
        model_dir: a directory written by `grutext train`.
        out: the HTML file (default ``MODEL_DIR/report.html``).
        member: for an ensemble, the member whose internals explain the mistakes.
        data: a labelled file to find mistakes in (default: the run's validation split, re-read
            from its config with its seed).
        mistakes: how many confident mistakes to show and explain.
        method: importance method for the mistakes (``"ig"``, ``"occlusion"``, ``"attention"``).

    Returns:
        The path of the report.

    Raises:
        ArtifactError: the directory is not a loadable model.
        DataError: `data` is given but unreadable.
    """
    from grutext.artifact import load_model

    model_dir = Path(model_dir)
    loaded = load_model(model_dir)
    out_given = out is not None
    out = Path(out) if out else model_dir / "report.html"
    refuse_symlink(out, "--out" if out_given else None)  # before the work, not after
    metrics = loaded.metrics or {}
    labels = loaded.labels
    body = [
        f"<h1>grutext training report</h1><p class='meta'>{html.escape(str(model_dir))} · {loaded.kind} · "
        f"{html.escape(loaded.config.model.cell)} · {len(labels) or ''} {'classes' if labels else ''}</p>"
    ]
    body += _trace_sections(model_dir, metrics)
    body += _scores_sections(metrics, labels)
    task = task_for(loaded.kind, model_dir)
    if loaded.kind == "tagger" and (data or mistakes != 5 or method != "ig"):  # no mistakes section for taggers
        raise ConfigError("--data/--mistakes/--method: the report explains a classifier's mistakes; a tagger has none")
    task_sections = getattr(task, "report_sections", None)  # a task's own sections (taggers: chunks per type)
    if task_sections is not None:
        body.append(task_sections_html(*task_sections(metrics)))
    body.append("<h2>Settings</h2>" + _settings_html(task.settings(loaded.config, loaded.meta)))
    if task.has_labels:  # a model that names classes has mistakes to show
        body += _mistakes_section(loaded, task, model_dir, data, mistakes, method, member)
    body += _model_sections(loaded)
    write_output(out, page(f"grutext report: {model_dir.name}", "\n".join(body)), "--out" if out_given else None)
    return out


__all__ = [
    "training_report",
    "history_html",
    "confusion_html",
    "per_class_html",
    "baseline_html",
    "confident_mistakes",
    "validation_data",
]
