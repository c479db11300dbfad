"""Explanations: gate traces, token importance, HTML/PNG rendering and the training report.

>>> from grutext import load_model
>>> from grutext.explain import explain, render_html
>>> ex = explain(load_model("runs/sst2"), "a gorgeous , witty film", method="ig")   # doctest: +SKIP
>>> ex.importance, ex.gates.z.shape, ex.rows()[0]                                # doctest: +SKIP
>>> render_html(ex, "out.html")                                                  # doctest: +SKIP
"""

from __future__ import annotations

import sys
import types
from typing import Any

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


class _CallablePackage(types.ModuleType):
    """`grutext.explain` is both this package and the README's function ``grutext.explain(loaded, text)``:
    importing the package makes Python bind the attribute ``grutext.explain`` to the package, so the
    package itself calls `explain` (its submodules and names stay importable as usual)."""

    def __call__(self, *args: Any, **kwargs: Any) -> Explanation:
        return explain(*args, **kwargs)


sys.modules[__name__].__class__ = _CallablePackage
