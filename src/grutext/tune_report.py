"""`grutext tune`'s pictures and page: the search plot (best-so-far curve, parameter importances) and the
HTML report. `grutext.tune` re-exports both."""

from __future__ import annotations

import html
import json
import math
from pathlib import Path
from typing import Any


def _describe(params: dict[str, Any]) -> str:
    short = []
    for key, v in sorted(params.items()):
        name = key.split(".", 1)[1]
        short.append(f"{name}={v:.3g}" if isinstance(v, float) else f"{name}={v}")
    return " ".join(short)


def plot_search(study: Any, path: Path) -> dict[str, float]:
    """`path`: the validation accuracy of every finished trial, the best-so-far curve, and the
    parameter importances (optuna's default evaluator; empty when fewer than two trials finished).
    Returns the importances."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import optuna
    from optuna.trial import TrialState

    done = sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=lambda t: t.number)
    importances: dict[str, float] = {}
    if len(done) >= 2:
        import warnings

        try:
            with warnings.catch_warnings():  # "importances will be equal" when every trial scored the same
                warnings.simplefilter("ignore")
                importances = optuna.importance.get_param_importances(study)
        except (RuntimeError, ValueError):  # nothing to attribute
            importances = {}
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    xs, ys = [t.number for t in done], [t.value for t in done]
    best, run = [], -math.inf
    for y in ys:
        run = max(run, y)
        best.append(run)
    axes[0].scatter(xs, ys, s=14, color="#999", label="trial")
    axes[0].step(xs, best, where="post", color="#c0392b", label="best so far")
    axes[0].set_xlabel("trial")
    axes[0].set_ylabel("validation accuracy")
    axes[0].set_title("search")
    axes[0].legend(loc="lower right")
    names = list(importances)[::-1]
    axes[1].barh(names, [importances[n] for n in names], color="#2c7fb8")
    axes[1].set_title("parameter importance" if names else "parameter importance (needs 2+ finished trials)")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return importances


def report_html(study: Any, png: Path, importances: dict[str, float], final: dict[str, Any]) -> str:
    """The tune page: the plot, the leaderboard, the best settings and the final model's scores."""
    import base64

    from optuna.trial import TrialState

    done = sorted(study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)), key=lambda t: -t.value)
    rows = "".join(
        f"<tr><td>{t.number}</td><td>{t.value:.4f}</td><td>{t.user_attrs.get('epochs', '')}</td>"
        f"<td>{t.user_attrs.get('seconds', 0):.0f}</td><td>{html.escape(_describe(t.params))}</td></tr>"
        for t in done[:20]
    )
    imp = "".join(f"<tr><td>{html.escape(k)}</td><td>{v:.3f}</td></tr>" for k, v in importances.items())
    img = base64.b64encode(png.read_bytes()).decode()
    scores = html.escape(json.dumps(final, indent=1))
    return (
        "<!doctype html><meta charset='utf-8'><title>grutext tune</title>"
        "<style>body{font-family:sans-serif;max-width:1100px;margin:2em auto}td,th{padding:2px 8px;"
        "text-align:left}img{max-width:100%}</style>"
        f"<h1>grutext tune</h1><p>{len(study.trials)} trials; the test split was used only by the final model.</p>"
        f"<img alt='search' src='data:image/png;base64,{img}'>"
        "<h2>Best trials (validation accuracy)</h2><table><tr><th>trial</th><th>valid acc</th><th>epochs</th>"
        f"<th>seconds</th><th>settings</th></tr>{rows}</table>"
        f"<h2>Parameter importance</h2><table>{imp or '<tr><td>fewer than two finished trials</td></tr>'}</table>"
        f"<h2>Final model (best settings, trained again on train, scored on valid and test)</h2><pre>{scores}</pre>"
    )
