"""HTML and PNG rendering, the `explain` and `report` commands."""

from __future__ import annotations

import json
from dataclasses import replace
from html.parser import HTMLParser

import pytest
from tests.conftest import write_csv
from tests.explain.zebra_data import zebra_texts

from grutext.cli import main
from grutext.explain import explain, render_html, render_png, training_report


class Page(HTMLParser):
    """Collects token spans, tags and any external references."""

    def __init__(self) -> None:
        super().__init__()
        self.tokens: list[str] = []
        self.tags: list[str] = []
        self.external: list[str] = []
        self.images = 0
        self._in_tok = 0
        self._buf = ""

    def handle_starttag(self, tag, attrs):
        a = dict(attrs)
        self.tags.append(tag)
        for key in ("src", "href"):
            if a.get(key) and not a[key].startswith("data:"):
                self.external.append(a[key])
        if tag == "img" and (a.get("src") or "").startswith("data:image/png;base64,"):
            self.images += 1
        if tag == "span" and "tok" in (a.get("class") or "").split():
            self._in_tok, self._buf = 1, ""

    def handle_endtag(self, tag):
        if tag == "span" and self._in_tok:
            self.tokens.append(self._buf)
            self._in_tok = 0

    def handle_data(self, data):
        if self._in_tok:
            self._buf += data


def _parse(text: str) -> Page:
    p = Page()
    p.feed(text)
    p.close()
    return p


@pytest.mark.parametrize("method", ["ig", "occlusion", "attention"])
def test_html_has_one_token_element_per_token(zebra, method, tmp_path):
    text = "the <b>zebra</b> & the film"  # markup in the text must be escaped, not rendered
    ex = explain(zebra, text, method=method)
    page = render_html(ex, tmp_path / "x.html")
    assert (tmp_path / "x.html").read_text(encoding="utf-8") == page
    parsed = _parse(page)
    assert len(parsed.tokens) == len(ex.tokens)
    assert parsed.tokens == ex.tokens
    assert "script" not in parsed.tags and "b" not in parsed.tags and "link" not in parsed.tags
    assert parsed.external == []
    assert "<style>" in page and "Gates × tokens" in page and "yes" in page
    assert page.count("<h3>layer") == ex.gates.num_layers


def test_html_says_truncated(zebra):
    short = replace(zebra, config=replace(zebra.config, data=replace(zebra.config.data, max_len=4)))
    page = render_html(explain(short, "the zebra movie of a city night house", method="occlusion"))
    assert "truncated: the text has 8 tokens, the model reads at most 4" in page
    assert len(_parse(page).tokens) == 4


def test_png_is_written(zebra, tmp_path):
    pytest.importorskip("matplotlib")
    ex = explain(zebra, "the movie of a zebra city night", method="ig")
    path = render_png(ex, tmp_path / "x.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5000


def test_cli_explain(zebra_model_dir, tmp_path, capsys):
    pytest.importorskip("matplotlib")
    html_path, png_path = tmp_path / "e.html", tmp_path / "e.png"
    rc = main(
        [
            "explain",
            str(zebra_model_dir),
            "a zebra in the city",
            "--html",
            str(html_path),
            "--png",
            str(png_path),
            "--method",
            "occlusion",
            "--target",
            "yes",
        ]
    )
    out = capsys.readouterr().out
    assert rc == 0
    assert "predicted yes" in out and "'zebra'" in out.splitlines()[2]
    assert len(_parse(html_path.read_text(encoding="utf-8")).tokens) == 5
    assert png_path.stat().st_size > 0
    assert main(["explain", str(zebra_model_dir), "a zebra", "--json"]) == 0
    row = json.loads(capsys.readouterr().out)
    assert row["tokens"] == ["a", "zebra"] and row["method"] == "ig" and len(row["gates"]["z"]) == 1


def test_cli_errors_are_one_line(zebra_model_dir, tmp_path, capsys):
    assert main(["explain", str(zebra_model_dir), "a zebra", "--target", "maybe"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "'no', 'yes'" in err
    assert main(["explain", str(zebra_model_dir), "   "]) == 2
    assert "text: expected a non-empty string" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["explain", str(tmp_path / "empty"), "a zebra"]) == 2
    assert "missing config.json" in capsys.readouterr().err
    assert main(["report", str(tmp_path / "nowhere")]) == 2
    assert "model directory not found" in capsys.readouterr().err


def test_report_with_data(zebra_model_dir, tmp_path):
    texts, labels = zebra_texts(60, seed=11)
    labels[0] = "yes" if labels[0] == "no" else "no"  # plant two mistakes the model is sure of
    labels[1] = "yes" if labels[1] == "no" else "no"
    data = write_csv(tmp_path / "valid.csv", texts, labels)
    out = tmp_path / "r.html"
    assert (
        main(
            [
                "report",
                str(zebra_model_dir),
                "--out",
                str(out),
                "--data",
                str(data),
                "--mistakes",
                "2",
                "--method",
                "occlusion",
            ]
        )
        == 0
    )
    page = out.read_text(encoding="utf-8")
    parsed = _parse(page)
    assert parsed.external == [] and "script" not in parsed.tags
    for section in (
        "Epoch trace",
        "Curves",
        "Scores",
        "Most confident validation mistakes",
        "Model",
        "Configuration",
        "Total params",
        "precision",
        "true ＼ predicted",
    ):
        assert section in page, section
    assert parsed.images >= 1  # the curves, embedded
    assert page.count("<h3>true ") == 2
    assert len(parsed.tokens) == len(texts[0].split()) + len(texts[1].split())


def test_report_without_data_says_why(zebra_model_dir, tmp_path):
    path = training_report(zebra_model_dir, out=tmp_path / "r.html")
    page = path.read_text(encoding="utf-8")
    assert "validation data not available" in page and "--data" in page
    assert "Epoch trace" in page
