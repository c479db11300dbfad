"""Explanations: gate traces, token importance, HTML/PNG rendering and the training report.

>>> from grutext import load_model
>>> from grutext.explain import explain, render_html
>>> ex = explain(load_model("runs/sst2"), "a gorgeous , witty film", method="ig")   # doctest: +SKIP
>>> ex.importance, ex.gates.z.shape, ex.rows()[0]                                # doctest: +SKIP
>>> render_html(ex, "out.html")                                                  # doctest: +SKIP
"""

from __future__ import annotations

from grutext.explain.core import METHODS, Explanation, explain, prepare, resolve_target
from grutext.explain.gates import (
    GateTrace,
    gate_summary,
    retention_from_z,
    summarize_gates,
    trace_batch,
    traces_from_gates,
)
from grutext.explain.importance import attention_importance, integrated_gradients, occlusion
from grutext.explain.lm import explain_lm
from grutext.explain.render import render_html, render_png
from grutext.explain.report import training_report

__all__ = [
    "METHODS",
    "Explanation",
    "GateTrace",
    "attention_importance",
    "explain",
    "explain_lm",
    "gate_summary",
    "integrated_gradients",
    "occlusion",
    "prepare",
    "render_html",
    "render_png",
    "resolve_target",
    "retention_from_z",
    "summarize_gates",
    "trace_batch",
    "traces_from_gates",
    "training_report",
]
