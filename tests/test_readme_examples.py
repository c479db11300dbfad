"""The README's (and docs/*.md's) examples run as written: every command parses, every file it reads exists (or an
earlier example makes it), every dataset name is a named dataset, and no example writes into a
tracked file of the checkout (model directories, HTML and PNG go under ``runs/``).

Fast: the commands are parsed with grutext's own parser, never run (no training).
"""

from __future__ import annotations

import re
import shlex
import subprocess
import tomllib
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from grutext.cli.main import BY_NAME, build_parser
from grutext.config import TrainConfig
from grutext.data import named

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
DOCS = [README, *sorted((ROOT / "docs").glob("*.md"))]  # every page with runnable examples
DATA_ROOT = "../shared/data/"  # the corpora beside the checkout (tests that need them skip without it)
OUTPUT_FLAGS = {"--out", "--html", "--png"}
OUTPUT_POSITIONALS = {("export", "out"), ("prepare", "out")}  # (command, argument) written, not read
GRUTEXT = {"grutext", ".venv/bin/grutext"}
# what `make` targets leave behind for later examples
MAKE_PRODUCES = {"demo": "runs/demo-bbc"}
PATH_SUFFIXES = (".csv", ".tsv", ".jsonl", ".json", ".gz", ".txt", ".toml", ".parquet", ".html", ".png")


def _blocks(text: str, lang: str) -> list[str]:
    """The bodies of the fenced ```lang blocks of `text` (the benchmark section included: its
    commands are `python benchmarks/...`, not grutext, and are skipped)."""
    return re.findall(rf"^```{lang}\n(.*?)^```", text, flags=re.S | re.M)


def _commands(block: str) -> list[list[str]]:
    """Each shell command of a bash block as words (continuations joined, comments dropped,
    pipelines split at `|`)."""
    out: list[list[str]] = []
    for line in block.replace("\\\n", " ").splitlines():
        words = shlex.split(line, comments=True)
        current: list[str] = []
        for w in [*words, "|"]:
            if w == "|":
                if current:
                    out.append(current)
                current = []
            else:
                current.append(w)
    return out


def _looks_like_path(value: str) -> bool:
    return " " not in value and ("/" in value or value.endswith(PATH_SUFFIXES)) and "://" not in value


@dataclass
class Walk:
    """What the examples have made so far, and what went wrong."""

    tracked: set[str] | None
    produced: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)

    def exists(self, path: str) -> bool:
        norm = path.rstrip("/")
        if any(norm == p or norm.startswith(p + "/") or norm.startswith(p + ".ckpt") for p in self.produced):
            return True
        if path.startswith(DATA_ROOT):  # the shared corpora: checked where they are present
            return not (ROOT / DATA_ROOT).is_dir() or (ROOT / path).exists()
        return (ROOT / path).exists()

    def reads(self, where: str, path: str) -> None:
        if not self.exists(path):
            self.problems.append(f"{where}: reads {path!r}, which is neither in the repository nor made earlier")

    def writes(self, where: str, path: str) -> None:
        norm = str(Path(path))
        if not norm.startswith("runs/"):
            self.problems.append(f"{where}: writes {path!r}, outside runs/ (the ignored output folder)")
        if self.tracked is not None and any(t == norm or t.startswith(norm + "/") for t in self.tracked):
            self.problems.append(f"{where}: writes {path!r}, a file tracked by git")
        self.produced.append(norm)


def _tracked() -> set[str] | None:
    try:
        out = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None  # not a git checkout (an sdist): the runs/ rule still holds
    return set(out.splitlines())


def _grutext_command(walk: Walk, words: list[str], doc: str = "README.md") -> None:
    where = f"{doc}: " + " ".join(words)
    argv = words[1:]
    name = argv[0] if argv else ""
    if name not in BY_NAME:
        walk.problems.append(f"{where}: unknown command {name!r}")
        return
    parser = build_parser([name])
    sub = next(a for a in parser._actions if a.dest == "command").choices[name]  # type: ignore[union-attr]
    try:
        args, extra = parser.parse_known_args(argv)
    except SystemExit:
        walk.problems.append(f"{where}: does not parse")
        return
    if extra and name != "predict":
        walk.problems.append(f"{where}: unrecognized arguments {extra}")
    for action in sub._actions:
        value = getattr(args, action.dest, None)
        values = value if isinstance(value, list) else [value]
        for v in values:
            if not isinstance(v, str):
                continue
            if set(action.option_strings) & OUTPUT_FLAGS or (name, action.dest) in OUTPUT_POSITIONALS:
                walk.writes(where, v)
            elif _looks_like_path(v):
                walk.reads(where, v)
            elif action.dest == "data" and not named.is_named(v):
                walk.problems.append(f"{where}: {v!r} is neither a file nor a named dataset")
    if name == "train" and getattr(args, "out", None) is None:  # the output comes from --config or the default
        out = TrainConfig().out or "runs/<task>-<timestamp>"  # None: a new timestamped folder under runs/
        config = getattr(args, "config", None)
        if config and (ROOT / config).is_file():
            out = tomllib.loads((ROOT / config).read_text()).get("train", {}).get("out", out)
        walk.writes(where, out)


def _walk(doc: Path) -> Walk:
    walk = Walk(_tracked())
    for block in _blocks(doc.read_text(encoding="utf-8"), "bash"):
        for words in _commands(block):
            for redirect in (i for i, w in enumerate(words) if w in (">", ">>")):
                walk.writes(f"{doc.name}: " + " ".join(words), words[redirect + 1])
            if words[0] in GRUTEXT:
                _grutext_command(walk, words, doc.name)
            elif words[0] == "make" and len(words) > 1 and words[1] in MAKE_PRODUCES:
                walk.produced.append(MAKE_PRODUCES[words[1]])
    return walk


def test_readme_has_grutext_examples() -> None:
    commands = [w for b in _blocks(README.read_text(encoding="utf-8"), "bash") for w in _commands(b)]
    assert sum(w[0] in GRUTEXT for w in commands) >= 20


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: p.name)
def test_examples_read_existing_files_and_write_only_under_runs(doc: Path) -> None:
    problems = _walk(doc).problems
    assert not problems, "\n".join(problems)


def test_make_demo_writes_where_the_readme_says() -> None:
    assert MAKE_PRODUCES["demo"] in (ROOT / "src/grutext/cli/demo.py").read_text(encoding="utf-8")


@pytest.mark.parametrize("lang", ["python", "toml"])
def test_readme_code_names_existing_files(lang: str) -> None:
    """Quoted relative paths in the Python and TOML examples exist (outputs under runs/ excepted)."""
    missing = [
        path
        for block in _blocks(README.read_text(encoding="utf-8"), lang)
        for path in re.findall(r"\"([^\"\s]+)\"", block)
        if _looks_like_path(path) and not path.startswith("runs/") and not (ROOT / path).exists()
    ]
    assert not missing, f"README {lang} examples name missing files: {missing}"


def test_walk_catches_a_bad_example() -> None:
    """The checker itself: a missing file, an unknown dataset and a tracked output are all reported."""
    walk = Walk(tracked={"docs/img/explain_sst2.png"})
    _grutext_command(walk, shlex.split("grutext train data/train.csv --out runs/x"))
    _grutext_command(walk, shlex.split("grutext train nosuchset --out runs/y"))
    _grutext_command(walk, shlex.split('grutext explain runs/x "a text" --png docs/img/explain_sst2.png'))
    _grutext_command(walk, shlex.split("grutext evaluate runs/never examples/test.csv"))
    text = "\n".join(walk.problems)
    assert "'data/train.csv'" in text
    assert "'nosuchset'" in text
    assert "tracked by git" in text and "outside runs/" in text
    assert "'runs/never'" in text
    assert "'runs/x'" not in text  # made by the first command


def test_the_generated_benchmark_block_holds_only_the_benchmarks() -> None:
    """`benchmarks/update_readme.py` (run by `make bench`) rewrites everything between the markers: a
    hand-written section placed inside them would be deleted."""
    text = README.read_text(encoding="utf-8")
    block = text.split("<!-- BENCHMARKS -->", 1)[1].split("<!-- /BENCHMARKS -->", 1)[0]
    assert re.findall(r"^## .*$", block, flags=re.M) == ["## Benchmarks (measured, 2-core CPU)"]
