"""Helpers of the fault-injection suite: run a command in-process, check it failed in one line,
and snapshot a folder to prove nothing outside grutext's own output changed."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass
from pathlib import Path

from grutext.cli import main


@dataclass
class Result:
    code: int
    out: str
    err: str

    @property
    def err_lines(self) -> list[str]:
        return [line for line in self.err.splitlines() if line.strip()]


def run(capsys, *argv: str) -> Result:
    """`grutext ARGV` in this process; exit code, stdout, stderr."""
    capsys.readouterr()
    code = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return Result(code, cap.out, cap.err)


def fails(capsys, argv: list, *needles: str, code: int | tuple[int, ...] = (1, 2)) -> Result:
    """Run, and assert: the exit code, exactly one error line (no traceback) holding every needle."""
    r = run(capsys, *argv)
    codes = (code,) if isinstance(code, int) else code
    assert r.code in codes, (r.code, r.out, r.err)
    assert "Traceback" not in r.err and "Traceback" not in r.out, r.err
    errors = [line for line in r.err_lines if "error:" in line]
    assert len(errors) == 1, r.err
    for needle in needles:
        assert needle in errors[0], (needle, errors[0])
    return r


def snapshot(root: Path, skip: tuple[Path, ...] = ()) -> dict[str, tuple[str, str]]:
    """Every entry under `root` (links not followed) as relative path -> (kind, digest or target)."""
    skipped = [s.resolve() for s in skip]
    state: dict[str, tuple[str, str]] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        here = Path(dirpath)
        if any(here.resolve() == s or s in here.resolve().parents for s in skipped):
            dirnames[:] = []
            continue
        for name in dirnames + filenames:
            p = here / name
            rel = str(p.relative_to(root))
            if any(p.resolve() == s for s in skipped) and not p.is_symlink():
                continue
            if p.is_symlink():
                state[rel] = ("link", os.readlink(p))
            elif p.is_dir():
                state[rel] = ("dir", "")
            else:
                state[rel] = ("file", hashlib.sha256(p.read_bytes()).hexdigest())
    return state


def copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst, symlinks=True)
    return dst


def write_csv_rows(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text(header + "\n" + "\n".join(rows) + "\n", encoding="utf-8")
    return path
