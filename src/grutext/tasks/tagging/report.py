"""The tagger's sections of the training report (`grutext report`): chunk precision / recall / F1 per
type (conlleval's figures) and the confusion matrix of chunk types, for validation and test.

Plain data, rendered by `grutext.explain.report` (this module imports nothing from it, so the task
package stays below the report in the import graph)."""

from __future__ import annotations

from typing import Any

HEADING = "Chunks (conlleval)"
COLUMNS = ["chunk type", "precision %", "recall %", "F1 %", "gold", "found", "correct"]
_KEYS = ("precision", "recall", "f1", "gold", "predicted", "correct")


def per_type_rows(rep: dict[str, Any]) -> list[list[Any]]:
    """conlleval's table: overall, then each chunk type: precision, recall, F1 (%), gold, found, correct."""
    rows = [("overall", rep)] + sorted((rep.get("per_type") or {}).items())
    return [
        [name, 100 * m["precision"], 100 * m["recall"], 100 * m["f1"], m["gold"], m["predicted"], m["correct"]]
        for name, m in rows
        if all(k in m for k in _KEYS)
    ]


def report_sections(metrics: dict[str, Any]) -> tuple[str, list[dict[str, Any]]]:
    """The report's heading and sections: per-type scores and the chunk-type confusion of the
    validation and test sets (chunk tags only; none for plain labels). Each section is a dict with
    ``title``, ``note`` and either ``columns``/``rows`` or ``confusion`` (``labels``, ``matrix``)."""
    sections: list[dict[str, Any]] = []
    for name in ("valid", "test"):
        rep = metrics.get(name)
        if not rep or "per_type" not in rep:
            continue
        title = "validation" if name == "valid" else "test"
        sections.append(
            {
                "title": f"{title}: chunks per type",
                "note": f"chunk F1 {100 * rep['f1']:.2f} · token accuracy {100 * rep['accuracy']:.2f} "
                f"({rep.get('mode', 'conlleval')})",
                "columns": COLUMNS,
                "rows": per_type_rows(rep),
            }
        )
        conf = rep.get("chunk_confusion")
        if conf and conf.get("labels"):
            sections.append(
                {
                    "title": f"{title}: confusion of chunk types",
                    "note": "a gold and a predicted chunk with the same span count under their types; (none): no "
                    "chunk of that span on the other side (missed, spurious, or boundaries wrong)",
                    "confusion": conf,
                }
            )
    return HEADING, sections


__all__ = ["COLUMNS", "HEADING", "per_type_rows", "report_sections"]
