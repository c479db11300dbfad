"""The tagger's sections of the training report (`grutext report`): chunk precision / recall / F1 per
type (conlleval's figures) and the confusion matrix of chunk types, for validation and test."""

from __future__ import annotations

import html
from typing import Any

from grutext.explain.report import _num, confusion_html


def per_type_html(rep: dict[str, Any]) -> str:
    """conlleval's table: overall and each chunk type's precision, recall, F1, gold and found counts."""
    rows = [("overall", rep)] + sorted((rep.get("per_type") or {}).items())
    body = "".join(
        f"<tr><td class='l'>{html.escape(str(name))}</td><td>{_num(100 * m['precision'])}</td>"
        f"<td>{_num(100 * m['recall'])}</td><td>{_num(100 * m['f1'])}</td><td>{_num(m['gold'])}</td>"
        f"<td>{_num(m['predicted'])}</td><td>{_num(m['correct'])}</td></tr>"
        for name, m in rows
        if all(k in m for k in ("precision", "recall", "f1", "gold", "predicted", "correct"))
    )
    if not body:
        return ""
    return (
        "<table><tr><th class='l'>chunk type</th><th>precision %</th><th>recall %</th><th>F1 %</th>"
        "<th>gold</th><th>found</th><th>correct</th></tr>" + body + "</table>"
    )


def tagger_sections(metrics: dict[str, Any]) -> str:
    """Per-type scores and the chunk-type confusion of the validation and test sets (chunk tags only)."""
    parts: list[str] = []
    for name in ("valid", "test"):
        rep = metrics.get(name)
        if not rep or "per_type" not in rep:
            continue
        title = "validation" if name == "valid" else "test"
        parts.append(
            f"<h3>{title}: chunks per type</h3><p class='meta'>chunk F1 <b>{_num(100 * rep['f1'])}</b> · "
            f"token accuracy {_num(100 * rep['accuracy'])} ({html.escape(str(rep.get('mode', 'conlleval')))})</p>"
        )
        parts.append(per_type_html(rep))
        conf = rep.get("chunk_confusion")
        if conf and conf.get("labels"):
            parts.append(
                f"<h3>{title}: confusion of chunk types</h3><p class='meta'>a gold and a predicted chunk with the "
                "same span count under their types; (none): no chunk of that span on the other side "
                "(missed, spurious, or boundaries wrong)</p>"
            )
            parts.append(confusion_html(conf["matrix"], conf["labels"]))
    if not parts:
        return ""
    return "<h2>Chunks (conlleval)</h2>" + "\n".join(parts)


__all__ = ["per_type_html", "tagger_sections"]
