"""The `grutext` help a newcomer reads: the command table grouped by use, each command's own options
in groups, every option with a one-line help, its choices and what its default does; `--help` and
`--version` without importing torch; an import error in a command's module is an error."""

from __future__ import annotations

import re
import subprocess
import sys
from importlib.metadata import version

import pytest

from grutext.cli import main
from grutext.cli.main import COMMANDS, GROUPS, Command
from grutext.cli.options import field_choices

# flags whose values are enumerated, and where their choices come from
ENUMERATED = {
    "--tokenizer": ("data", "tokenizer"),
    "--truncation": ("data", "truncation"),
    "--cell": ("model", "cell"),
    "--pooling": ("model", "pooling"),
    "--schedule": ("train", "schedule"),
    "--unfreeze": ("train", "unfreeze"),
    "--monitor": ("train", "monitor"),
    "--format": ("data", "format"),
    "--word-split": ("lm", "word_split"),
}
# options that take a value but whose absence plainly means "not done" (no default to describe)
NO_DEFAULT_NEEDED = {"--config", "--file", "--html", "--png"}


def help_of(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as exc:
        main([*argv, "--help"])
    assert exc.value.code == 0
    return capsys.readouterr().out


def option_entries(text: str) -> list[tuple[str, str]]:
    """(flags part, help text) of every option line of an argparse help page."""
    entries: list[tuple[str, str]] = []
    for line in text.splitlines():
        m = re.match(r"^  (-\S.*?)(?:\s{2,}(\S.*))?$", line)
        if m:
            entries.append((m.group(1), m.group(2) or ""))
        elif entries and re.match(r"^\s{6,}\S", line):  # a help text continued (or started) below its flags
            flags, help_text = entries[-1]
            entries[-1] = (flags, (help_text + " " + line.strip()).strip())
    return entries


@pytest.mark.parametrize("command", [c.name for c in COMMANDS])
def test_every_option_has_help_choices_and_default(command, capsys):
    text = help_of(capsys, command)
    assert "default: None" not in text
    entries = option_entries(text)
    assert len(entries) >= 2, text  # -h and at least one option
    for flags, help_text in entries:
        assert help_text, f"{command}: {flags} has no help"
        long = re.findall(r"--[\w-]+", flags)
        if not long:
            continue
        name = long[0]
        takes_value = bool(re.search(r"--[\w-]+ \S", flags)) and "--no-" not in flags
        if takes_value and name not in NO_DEFAULT_NEEDED and "(required)" not in help_text:
            assert "(default: " in help_text, f"{command}: {name} does not say what its default does: {help_text}"
        if name in ENUMERATED:
            choices = field_choices(*ENUMERATED[name])
            assert choices, name
            assert "{" + ",".join(choices) + "}" in flags, f"{command}: {name} does not list its choices: {flags}"
    assert any("--help" in f for f, _ in entries)


def test_enumerated_flags_list_their_choices(capsys):
    text = help_of(capsys, "train")
    for flag in ("--tokenizer", "--cell", "--pooling", "--schedule", "--truncation", "--monitor", "--unfreeze"):
        assert re.search(re.escape(flag) + r" \{[\w+,-]+\}", text), flag
    assert "--task {auto,binary,multiclass,multilabel,lm,tag}" in text
    text = help_of(capsys, "explain")
    assert "--method {ig,occlusion,attention}" in text


def test_train_options_are_grouped(capsys):
    text = help_of(capsys, "train")
    titles = [line for line in text.splitlines() if line and not line.startswith(" ") and line.endswith(":")]
    starts = [t.split()[0].rstrip(":") for t in titles]
    for group in ("data", "model", "training", "output", "language"):
        assert group in starts, titles

    def section(title: str) -> str:
        return text.split("\n" + title, 1)[1].split("\n\n", 1)[0]  # a group title starts its line

    assert "--tokenizer" in section("data (") and "--hidden-size" in section("model (")
    assert "--lr" in section("training (") and "--out" in section("output:") and "--bptt" in section("language model")
    assert "--bptt" not in section("training (")


def test_summary_help_lists_no_training_options(capsys):
    text = help_of(capsys, "summary")
    for flag in ("--epochs", "--lr", "--batch-size", "--tokenizer", "--max-len", "--bptt", "--out", "--patience"):
        assert flag not in text, flag
    assert "--hidden-size" in text and "--vocab-size" in text and "--num-classes" in text
    assert len(option_entries(text)) < 20


def test_generate_sampling_options_each_have_help(capsys):
    entries = dict((re.findall(r"--?[\w-]+", f)[0], h) for f, h in option_entries(help_of(capsys, "generate")))
    for flag in ("--temperature", "--top-k", "--top-p", "--beam", "--repetition-penalty", "--seed", "--stop"):
        assert len(entries.get(flag, "")) > 20, (flag, entries.get(flag))


def test_top_level_help_groups_commands_by_use(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    text = capsys.readouterr().out
    positions = {title: text.index(title + ":\n") for title in GROUPS.values()}
    assert list(positions.values()) == sorted(positions.values())  # groups in table order
    for command in COMMANDS:  # each command listed under its own group's title
        line = re.search(rf"^  {re.escape(command.name)}\s+\S", text, re.M)
        assert line, command.name
        before = [t for t, pos in positions.items() if pos < line.start()]
        assert before[-1] == GROUPS[command.group], command.name
    assert [c.name for c in COMMANDS if c.group == "inspect"] == ["summary", "trace", "explain", "report"]
    assert {c.name for c in COMMANDS if c.group == "predict"} == {"predict", "generate", "next-word", "export", "serve"}


def test_no_command_prints_help_and_fails(capsys):
    assert main([]) == 1
    assert "use a model:" in capsys.readouterr().out


PROBE = (
    "import sys, grutext.cli\n"
    "try:\n    grutext.cli.main([{arg!r}])\nexcept SystemExit:\n    pass\n"
    "print('TORCH' if 'torch' in sys.modules else 'NO-TORCH')\n"
)


@pytest.mark.parametrize("arg", ["--help", "--version"])
def test_help_and_version_do_not_import_torch(arg):
    r = subprocess.run([sys.executable, "-c", PROBE.format(arg=arg)], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stderr
    assert r.stdout.strip().splitlines()[-1] == "NO-TORCH", r.stdout


def test_version_names_grutext_and_torch(capsys):
    import grutext

    with pytest.raises(SystemExit):
        main(["--version"])
    first, second = capsys.readouterr().out.strip().splitlines()
    assert first == f"grutext {grutext.__version__} (torch {version('torch')})"
    assert second.startswith("GRU loop: ")


def test_import_error_in_a_command_module_is_an_error(monkeypatch):
    import importlib

    cli_main = importlib.import_module("grutext.cli.main")  # the module (grutext.cli.main is also the function)

    broken = Command("broken", "inspect", "a command whose module does not import", "grutext.no_such_module", "x", "y")
    monkeypatch.setattr(cli_main, "COMMANDS", (*cli_main.COMMANDS, broken))
    monkeypatch.setattr(cli_main, "BY_NAME", {**cli_main.BY_NAME, "broken": broken})
    with pytest.raises(ModuleNotFoundError, match="grutext.no_such_module"):
        cli_main.main(["broken"])


def test_task_dispatch_by_kind():
    from grutext.cli.dispatch import task_cli, train_kind
    from grutext.errors import ArtifactError

    assert task_cli("classifier").__name__ == "grutext.tasks.classification.cli"
    assert task_cli("language_model").__name__ == "grutext.tasks.language_model.cli"
    assert (
        train_kind("lm") == "language_model" and train_kind("auto") == "classifier" and train_kind(None) == "classifier"
    )
    assert task_cli("tagger").__name__ == "grutext.tasks.tagging.cli" and train_kind("tag") == "tagger"
    with pytest.raises(ArtifactError, match="'parser'"):
        task_cli("parser")
