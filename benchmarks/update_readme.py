"""Copy the measured benchmark tables from benchmarks/results/*.md into README.md, between the
<!-- BENCHMARKS --> and <!-- /BENCHMARKS --> markers. Run after any benchmark:

    python benchmarks/update_readme.py
"""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results"
START, END = "<!-- BENCHMARKS -->", "<!-- /BENCHMARKS -->"


def _lm_head(md: str) -> str:
    """The LM page up to its per-run sections (the table and the commands)."""
    body = md.split("\n## ", 1)[0]
    return re.sub(r"^# .*\n\n", "", body).strip()


def section() -> str:
    parts = ["## Benchmarks (measured, 2-core CPU)", ""]
    cls = RESULTS / "classify.md"
    if cls.is_file():
        parts += ["### Text classification", "", "Test accuracy with the documented recipes in "
                  "`benchmarks/classify.py` (chosen on validation accuracy only), next to TF-IDF (1-2 grams) + "
                  "logistic regression on the same split.", "", cls.read_text().strip(), ""]
    lm = RESULTS / "lm.md"
    if lm.is_file():
        parts += ["### Language models", "", _lm_head(lm.read_text()), "",
                  "Samples, beam search and next-word examples: [benchmarks/results/lm.md](benchmarks/results/lm.md).",
                  ""]
    speed = RESULTS / "recurrent_speed.md"
    if speed.is_file():
        text = re.sub(r"^# .*\n\n", "", speed.read_text()).strip()
        parts += ["### Recurrent layer speed", "", text, ""]
    return "\n".join(parts)


def main() -> None:
    readme = ROOT / "README.md"
    text = readme.read_text()
    if START not in text:
        raise SystemExit(f"README.md has no {START} marker")
    before, rest = text.split(START, 1)
    after = rest.split(END, 1)[1] if END in rest else rest
    readme.write_text(before + START + "\n" + section() + "\n" + END + after)
    print("README.md benchmark section updated")


if __name__ == "__main__":
    main()
