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


def _lm_samples(path: Path) -> list[str]:
    """One generated sample, the next-word latency and two suggestions per LM run."""
    import json

    if not path.is_file():
        return []
    out: list[str] = []
    for name, r in json.loads(path.read_text()).items():
        if name.startswith("_"):
            continue
        s = r["samples"][0]
        lat = r["next_word_latency_ms"]
        out += [
            f"`{name}` sample ({s['options']}), from the prompt {s['prompt']!r}:",
            "",
            "```",
            s["prompt"] + s["text"],
            "```",
            "",
        ]
        sug = list(r["suggest_examples"].items())
        out += [
            f"Next-word suggestions, median {lat['cold_median']:.1f} ms a call (p90 {lat['cold_p90']:.1f} ms; "
            f"{lat['typing_median']:.1f} ms while typing a word): "
            + "; ".join(
                f"{ctx!r} -> " + ", ".join(f"{w} ({p:.2f})" for w, p in rows[:3]) for ctx, rows in (sug[0], sug[-2])
            ),
            "",
        ]
    return out


def section() -> str:
    parts = [
        "## Benchmarks (measured, 2-core CPU)",
        "",
        "Every figure here was measured on this project's 2-core CPU machine; `make bench` reruns them all "
        "(about 2 hours) and rewrites this section. Targets that were missed are marked ✗.",
        "",
    ]
    cls = RESULTS / "classify.md"
    if cls.is_file():
        parts += [
            "### Text classification",
            "",
            "Test accuracy with the documented recipes in "
            "`benchmarks/classify.py` (chosen on validation accuracy only), next to TF-IDF (1-2 grams) + "
            "logistic regression on the same split. SST-2, SST-5 and TREC-6 start from a model trained in "
            "the same run on IMDB's 25,000 labelled training reviews (`--init-from`: its tokenizer, "
            "GloVe-initialised embedding and BiGRU), so they use data beyond their own training split: see "
            '"starts from". SST-2 and SST-5 start from `imdb-sentences`, the same reviews cut into '
            "sentences, each labelled with its review's sentiment (`--sentences`; SST-2 keeps its head too, as "
            "the labels are the same). TREC-6 starts from the IMDB review model, then first trains on the "
            "50 fine question types (`trec50`) of its own training questions (validation questions and test "
            "set left out), then on the 6 coarse classes; it is an ensemble of such networks "
            "(`--ensemble N`: seeds 0..N-1, probabilities averaged; N times the training and inference "
            "work), and the note under the table gives each network's own test score.",
            "",
            cls.read_text().strip(),
            "",
        ]
    lm = RESULTS / "lm.md"
    if lm.is_file():
        parts += ["### Language models", "", _lm_head(lm.read_text()), ""]
        parts += _lm_samples(RESULTS / "lm.json")
        parts += [
            "More samples, beam search and next-word examples: [benchmarks/results/lm.md](benchmarks/results/lm.md).",
            "",
        ]
    tagging = RESULTS / "tagging.md"
    if tagging.is_file():
        text = re.sub(r"^# .*\n\n", "", tagging.read_text()).strip()
        parts += [
            "### Sequence tagging (CoNLL-2000 chunking)",
            "",
            "Targets: test F1 ≥ 94.7 without external vectors, ≥ 95.3 with GloVe 50d, mean of 5 seeds; "
            "one 20-token sentence tagged in under 2 ms. Command: `python benchmarks/tagging.py --seeds 5` "
            "(each recipe's runs are merged into [benchmarks/results/tagging.json](benchmarks/results/tagging.json)).",
            "",
            text,
            "",
        ]
    speed = RESULTS / "recurrent_speed.md"
    if speed.is_file():
        text = re.sub(r"^# .*\n\n", "", speed.read_text()).strip()
        parts += ["### Recurrent layer speed", "", text, ""]
        older = RESULTS / "recurrent_speed_avx512.md"
        if older.is_file():
            parts += [
                "An earlier full run on a host with AVX-512 (bf16 GEMMs in hardware, so it also times the GRU's "
                "bf16 path; the LSTM and RNN then still ran explicit step loops): "
                "[benchmarks/results/recurrent_speed_avx512.md](benchmarks/results/recurrent_speed_avx512.md).",
                "",
            ]
        profile = RESULTS / "recurrent_profile.md"
        if profile.is_file():
            text = re.sub(r"^# .*\n\n", "", profile.read_text()).strip()
            parts += ["#### One training step, phase by phase (fused GRU vs torch.nn.LSTM)", "", text, ""]
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
