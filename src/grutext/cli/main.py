"""The `grutext` command: one table of every command, grouped by what users do.

`grutext --help` lists the table's groups; `grutext COMMAND --help` shows that command's own
options. Only the selected command's module is imported (and with it torch, where the command
needs it), so `grutext --help` and `grutext --version` answer at once. An import error in a
command's module is an error, never a missing command.
"""

from __future__ import annotations

import argparse
import importlib
import inspect
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from grutext.errors import GrutextError


@dataclass(frozen=True)
class Command:
    """One subcommand: its name, group, one-line summary, and the module functions that add its
    arguments and run it (imported only when the command is used)."""

    name: str
    group: str
    summary: str
    module: str
    run: str
    arguments: str

    def load(self) -> tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int]]:
        module = importlib.import_module(self.module)
        return getattr(module, self.arguments), getattr(module, self.run)


GROUPS: dict[str, str] = {
    "train": "train a model",
    "evaluate": "score a model",
    "predict": "use a model",
    "inspect": "look inside a model",
    "demo": "try it",
}

_LM = "grutext.tasks.language_model.cli"
COMMANDS: tuple[Command, ...] = (
    Command(
        "train",
        "train",
        "train a classifier (--task lm: a language model, --task tag: a tagger) and save its model directory",
        "grutext.cli.train",
        "cmd_train",
        "add_train_arguments",
    ),
    Command(
        "tune",
        "train",
        "search a classifier's settings within a time budget (Optuna), resumable; saves the best config and model",
        "grutext.cli.tune",
        "cmd_tune",
        "add_tune_arguments",
    ),
    Command(
        "prepare",
        "train",
        "tokenize a corpus (text, or a labelled table) once into memory-mapped files: training data larger than memory",
        "grutext.cli.prepare",
        "cmd_prepare",
        "add_prepare_arguments",
    ),
    Command(
        "compare",
        "train",
        "train several cells (gru, lstm, ...) under the same conditions and seeds; table, intervals, plots",
        "grutext.experiments.cli",
        "cmd_compare",
        "add_compare_arguments",
    ),
    Command(
        "sweep",
        "train",
        "train a grid of settings (--set hidden_size=32,64,128) with seeds; table, curves, plots",
        "grutext.experiments.cli",
        "cmd_sweep",
        "add_sweep_arguments",
    ),
    Command(
        "evaluate",
        "evaluate",
        "score a saved model on labelled data (accuracy, F1; chunk F1 for taggers) or a text (perplexity)",
        "grutext.cli.evaluate",
        "cmd_evaluate",
        "add_evaluate_arguments",
    ),
    Command(
        "predict",
        "predict",
        "classify or tag texts given as arguments, in a file or on stdin",
        "grutext.cli.predict",
        "cmd_predict",
        "add_predict_arguments",
    ),
    Command(
        "generate", "predict", "continue a prompt with a language model", _LM, "cmd_generate", "add_generate_arguments"
    ),
    Command(
        "next-word", "predict", "suggest the next words after a prompt", _LM, "cmd_next_word", "add_next_word_arguments"
    ),
    Command(
        "serve",
        "predict",
        "serve a model or an export over HTTP: JSON API, web page, metrics",
        "grutext.serve.cli",
        "cmd_serve",
        "add_serve_arguments",
    ),
    Command(
        "summary",
        "inspect",
        "layers, output shapes and parameter counts of a model",
        "grutext.cli.inspection",
        "cmd_summary",
        "add_summary_arguments",
    ),
    Command(
        "trace",
        "inspect",
        "follow one text through every stage of a model",
        "grutext.cli.inspection",
        "cmd_trace",
        "add_trace_arguments",
    ),
    Command(
        "explain",
        "inspect",
        "explain one prediction: token importance and gates (HTML, PNG)",
        "grutext.cli.inspection",
        "cmd_explain",
        "add_explain_arguments",
    ),
    Command(
        "report",
        "inspect",
        "write one HTML page about a trained model",
        "grutext.cli.inspection",
        "cmd_report",
        "add_report_arguments",
    ),
    Command(
        "export",
        "predict",
        "export a model to ONNX (optionally int8) for the torch-free runtime",
        "grutext.export.cli",
        "cmd_export",
        "add_export_arguments",
    ),
    Command(
        "demo",
        "demo",
        "train a BiGRU on BBC News and classify a few headlines",
        "grutext.cli.demo",
        "cmd_demo",
        "add_demo_arguments",
    ),
)
BY_NAME: dict[str, Command] = {c.name: c for c in COMMANDS}


def version_text() -> str:
    """`grutext X (torch Y)` and the GRU loop line, read from the installed metadata and the build cache
    (torch is not imported)."""
    from importlib.metadata import PackageNotFoundError, version

    from grutext.version import __version__

    try:
        torch_part = f"torch {version('torch')}"
    except PackageNotFoundError:
        torch_part = "torch not installed"
    return f"grutext {__version__} ({torch_part})\n{gru_loop_line()}"


def gru_loop_line() -> str:
    """Which GRU recurrence runs: the fused C++ loop (built, or built at first use) or the pure-torch
    fallback; read from the build cache and the environment, torch not imported (`extcache.loop_status`)."""
    from pathlib import Path

    from grutext.extcache import loop_status

    source = Path(__file__).resolve().parents[1] / "nn" / "csrc" / "gru_loop.cpp"
    try:
        return loop_status("grutext_gru_loop", source, "GRU loop")
    except OSError as exc:
        return f"GRU loop: unknown ({exc})"


def command_listing() -> str:
    """The commands by group, as `grutext --help` shows them."""
    width = max(len(c.name) for c in COMMANDS) + 2
    lines: list[str] = []
    for group, title in GROUPS.items():
        lines.append(f"{title}:")
        lines += [f"  {c.name:<{width}}{c.summary}" for c in COMMANDS if c.group == group]
        lines.append("")
    lines.append("run `grutext COMMAND --help` for a command's options")
    return "\n".join(lines)


def _usage(p: argparse.ArgumentParser) -> str:
    """`grutext NAME [options] --required X MODEL [DATA]`: the arguments one must give, not every option."""
    words = [f"grutext {p.prog.split()[-1]} [options]"]
    for action in p._actions:
        if action.option_strings:
            if action.required:
                words.append(f"{action.option_strings[-1]} {action.metavar or action.dest.upper()}")
            continue
        name = str(action.metavar or action.dest).upper()
        words.append({"?": f"[{name}]", "*": f"[{name} ...]"}.get(str(action.nargs), name))
    return " ".join(words)


def _populate(p: argparse.ArgumentParser, command: Command) -> None:
    add_arguments, run = command.load()
    p.description = inspect.cleandoc(run.__doc__ or command.summary)
    add_arguments(p)
    p.usage = _usage(p)
    p.set_defaults(func=run)


# the optional packages a command may need, and the extra that installs each (pyproject.toml)
EXTRA_OF = {
    "torch": "train",
    "sklearn": "train",
    "onnx": "export",
    "onnxruntime": "runtime",
    "fastapi": "serve",
    "uvicorn": "serve",
    "prometheus_client": "serve",
    "optuna": "tune",
    "matplotlib": "plot",
}
TORCH_HINT = " (with a GPU: first the torch build for your CUDA version, see pytorch.org)"


def build_parser(populate: Iterable[str] = ()) -> argparse.ArgumentParser:
    """The `grutext` parser with every command; the ones named in `populate` get their options."""
    parser = argparse.ArgumentParser(
        prog="grutext",
        description="Raw text to a trained, explained GRU model.",
        epilog=command_listing(),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        usage="grutext [-h] [--version] [--debug] COMMAND ...",
    )
    parser.add_argument("--version", action="version", version=version_text(), help="print the versions and exit")
    parser.add_argument(
        "--debug", action="store_true", help="on an error, show the full traceback instead of one line (any position)"
    )
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", help=argparse.SUPPRESS)
    wanted = set(populate)
    for command in COMMANDS:
        p = sub.add_parser(
            command.name,
            prog=f"grutext {command.name}",
            help=command.summary,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        if command.name in wanted:
            _populate(p, command)
    return parser


def _command_in(argv: list[str]) -> str | None:
    """The command named in `argv`: the first word that is not an option (the top level has no
    option that takes a value)."""
    for word in argv:
        if not word.startswith("-"):
            return word if word in BY_NAME else None
    return None


def main(argv: list[str] | None = None) -> int:
    """Run `grutext` with `argv` (default: the command line); returns the exit status."""
    argv = sys.argv[1:] if argv is None else list(argv)
    given = list(argv)  # as typed: `train --nproc N` starts N copies of it
    debug = "--debug" in argv  # any command: show the traceback instead of the one-line error
    argv = [a for a in argv if a != "--debug"]
    name = _command_in(argv)
    parser = build_parser([name] if name else [])
    args, extra = parser.parse_known_args(argv)
    if extra:  # texts after options (`predict MODEL --json "text"`) belong to the positional list
        if getattr(args, "command", None) == "predict" and not any(e.startswith("-") for e in extra):
            args.texts = list(args.texts or []) + extra
        else:
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
    if not getattr(args, "func", None):
        parser.print_help()
        return 1
    args.argv_given = given
    try:
        return int(args.func(args))
    except GrutextError as exc:
        if debug:
            raise
        print(f"grutext {args.command}{_rank_note()}: error: {exc}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as exc:  # an optional package; a missing module of our own is a bug: re-raised
        package_extra = EXTRA_OF.get((exc.name or "").split(".")[0])
        if debug or package_extra is None:
            raise
        print(
            f"grutext {args.command}: error: this command needs {exc.name}, which is not installed: "
            f"pip install 'grutext[{package_extra}]'" + (TORCH_HINT if package_extra == "train" else ""),
            file=sys.stderr,
        )
        return 2
    except OSError as exc:  # read-only or full file system, permissions: one line, not a traceback
        if debug:
            raise
        print(f"grutext {args.command}: error: {_os_error(exc)} (--debug shows the traceback)", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130


def _rank_note() -> str:
    """`` (rank R of N)`` in a distributed run's processes other than rank 0, else nothing."""
    import os

    rank, world = os.environ.get("RANK", "0"), os.environ.get("WORLD_SIZE", "1")
    return f" (rank {rank} of {world})" if rank != "0" and world not in ("", "1") else ""


def _os_error(exc: OSError) -> str:
    """`path: what went wrong` for an OSError from any file operation."""
    where = exc.filename if exc.filename is not None else ""
    what = exc.strerror or str(exc)
    return f"{where}: {what}" if where else what


__all__ = ["COMMANDS", "EXTRA_OF", "GROUPS", "Command", "build_parser", "main", "version_text"]
