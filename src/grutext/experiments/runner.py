"""The experiment runner that `compare` and `sweep` share: one training per (point, seed), each in its own
model folder `OUT/runs/<point>-seed<k>/`, started as its own process (`--jobs N` at once, torch threads
split between them), finished runs skipped on a re-run, then single-prediction latency timed round-robin.

Runs are started seed by seed, every point within a seed (gru-seed1, lstm-seed1, ..., gru-seed2, ...),
so a slow spell of the machine falls on every point alike rather than on one.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from grutext.errors import ConfigError, GrutextError
from grutext.experiments.plan import Experiment, Point, run_name
from grutext.experiments.worker import RUN_FILE, measure_latency, train_run, write_json_atomic

MANIFEST = "experiment.json"
LATENCY_FILE = "latency.json"
LATENCY_REPEATS = 30


class RunFailed(GrutextError):
    """A run of an experiment ended with an error (its log names it)."""


@dataclass(frozen=True)
class Job:
    point: Point
    seed: int  # 1-based

    @property
    def name(self) -> str:
        return run_name(self.point, self.seed)


def prepare_folder(exp: Experiment) -> None:
    """Check `exp.out` and write its manifest: a new or empty folder, or this same experiment's folder
    (then its finished runs are kept and `--seeds` may grow).

    Raises:
        ConfigError: a file, a non-empty folder that is not an experiment, or another experiment's folder.
    """
    out = exp.out
    manifest = out / MANIFEST
    if out.exists() and not out.is_dir():
        raise ConfigError(f"--out {out}: is an existing file, expected a folder for the experiment")
    if manifest.is_file():
        try:
            old = json.loads(manifest.read_text(encoding="utf-8"))
        except ValueError as exc:
            raise ConfigError(f"--out {out}: {MANIFEST} is not valid JSON ({exc}); choose a new folder") from None
        mine = json.loads(json.dumps(exp.identity()))
        differ = sorted(k for k in mine if old.get("identity", {}).get(k) != mine[k])
        if differ:
            detail = _first_difference(old.get("identity", {}), mine)
            raise ConfigError(
                f"--out {out}: holds another {old.get('identity', {}).get('mode', 'experiment')} "
                f"(different {detail}); a re-run resumes only the same settings: choose a new --out"
            )
    elif out.is_dir() and any(out.iterdir()):
        shown = ", ".join(sorted(p.name for p in out.iterdir())[:5])
        raise ConfigError(
            f"--out {out}: an existing folder that is not a grutext experiment (it holds {shown}); "
            "choose a new or empty folder"
        )
    (out / "runs").mkdir(parents=True, exist_ok=True)
    write_json_atomic(manifest, {"identity": exp.identity(), "seeds": exp.seeds, "matching": exp.matching})


def _first_difference(old: dict[str, Any], new: dict[str, Any], prefix: str = "") -> str:
    for key in sorted(set(old) | set(new)):
        a, b = old.get(key), new.get(key)
        if a == b:
            continue
        path = f"{prefix}{key}"
        if isinstance(a, dict) and isinstance(b, dict):
            return _first_difference(a, b, path + ".")
        return f"{path}: {a!r} there, {b!r} now"
    return "settings"


def jobs_of(exp: Experiment) -> list[Job]:
    """Every run, seed-major (round-robin over the points)."""
    return [Job(p, k) for k in range(1, exp.seeds + 1) for p in exp.points]


def run_folder(exp: Experiment, job: Job) -> Path:
    return exp.out / "runs" / job.name


def finished(exp: Experiment, job: Job) -> bool:
    return (run_folder(exp, job) / RUN_FILE).is_file()


def spec_of(exp: Experiment, job: Job, threads: int) -> dict[str, Any]:
    cfg, extra = exp.run_config(job.point, job.seed)
    cfg["train"]["threads"] = threads  # start_run sets torch's threads from it
    return {
        "kind": exp.kind,
        "config": cfg,
        "extra": extra,
        "threads": threads,
        "split_seed": exp.base_seed,
        "point": job.point.name,
        "label": job.point.label,
        "values": job.point.values,
        "seed": job.seed,
    }


def threads_per_job(total: int | None, jobs: int) -> int:
    """Torch threads of each of `jobs` concurrent trainings: the total (default: the CPU count) split evenly."""
    total = total or os.cpu_count() or 1
    return max(1, total // max(jobs, 1))


def _log_tail(path: Path) -> str:
    try:
        lines = [ln for ln in path.read_text(encoding="utf-8", errors="replace").splitlines() if ln.strip()]
    except OSError:
        return "no log"
    errors = [ln for ln in lines if ln.startswith("error:") or "Error" in ln]
    return (errors or lines or ["no output"])[-1].strip()


def run_all(
    exp: Experiment,
    *,
    jobs: int = 1,
    threads: int | None = None,
    processes: bool = True,
    log: Callable[..., None] = print,
) -> list[dict[str, Any]]:
    """Train every unfinished run of `exp` and return every run's record (finished ones read back).

    Args:
        jobs: trainings at once (separate processes).
        threads: torch threads in all (None: the CPU count), split between the jobs.
        processes: False trains in this process, one run after another (tests; the figures of memory
            are then this process's).

    Raises:
        RunFailed: a run ended with an error; the runs already finished are kept for a re-run.
    """
    all_jobs = jobs_of(exp)
    todo = [j for j in all_jobs if not finished(exp, j)]
    done = len(all_jobs) - len(todo)
    if done:
        log(f"resuming: {done} of {len(all_jobs)} runs already finished in {exp.out}/runs (skipped)")
    per_job = threads_per_job(threads, jobs if processes else 1)
    if processes:
        _run_processes(exp, todo, jobs, per_job, log)
    else:
        for i, job in enumerate(todo, 1):
            log(f"[{i}/{len(todo)}] {job.name}")
            train_run(spec_of(exp, job, per_job))
    return [read_run(exp, j) for j in all_jobs]


def _terminated(signum: int, frame: Any) -> None:
    raise SystemExit(128 + signum)


def _run_processes(exp: Experiment, todo: list[Job], jobs: int, threads: int, log: Callable[..., None]) -> None:
    """Run `todo` in worker processes, `jobs` at once; on an error, an interrupt or SIGTERM the running workers
    are stopped too (their checkpoints stay, so a re-run continues them)."""
    running: list[tuple[Job, subprocess.Popen[bytes], float, Any]] = []
    try:
        previous = signal.signal(signal.SIGTERM, _terminated)
    except ValueError:  # not the main thread: no handler, the default applies
        previous = None
    try:
        _loop(exp, todo, jobs, threads, log, running)
    finally:
        for _, proc, _, logfile in running:
            if proc.poll() is None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()
            logfile.close()
        if previous is not None:
            signal.signal(signal.SIGTERM, previous)


def _loop(
    exp: Experiment,
    todo: list[Job],
    jobs: int,
    threads: int,
    log: Callable[..., None],
    running: list[tuple[Job, subprocess.Popen[bytes], float, Any]],
) -> None:
    queue = list(todo)
    failure: str | None = None
    n = len(todo)
    started = 0
    while queue or running:
        while queue and len(running) < max(jobs, 1) and failure is None:
            job = queue.pop(0)
            started += 1
            logfile = open(exp.out / "runs" / f"{job.name}.log", "ab")  # noqa: SIM115  (closed when the run ends)
            proc = subprocess.Popen(
                [sys.executable, "-m", "grutext.experiments.worker"],
                stdin=subprocess.PIPE,
                stdout=logfile,
                stderr=subprocess.STDOUT,
                env={**os.environ, "PYTHONUNBUFFERED": "1"},
            )
            assert proc.stdin is not None
            proc.stdin.write(json.dumps(spec_of(exp, job, threads)).encode())
            proc.stdin.close()
            running.append((job, proc, time.perf_counter(), logfile))
            log(f"[{started}/{n}] {job.name}: started ({threads} thread{'s' if threads > 1 else ''})")
        if failure is not None and not running:
            break
        time.sleep(0.2)
        for item in list(running):
            job, proc, t0, logfile = item
            rc = proc.poll()
            if rc is None:
                continue
            running.remove(item)
            logfile.close()
            if rc == 0 and finished(exp, job):
                rec = read_run(exp, job)
                value = rec["valid"]
                shown = "n/a" if value is None else f"{value:.4g}"
                log(f"  {job.name}: done in {time.perf_counter() - t0:.0f}s, valid {rec['metric']} {shown}")
            elif failure is None:
                failure = (
                    f"run {job.name} failed (exit {rc}): {_log_tail(exp.out / 'runs' / f'{job.name}.log')} "
                    f"(log: {exp.out}/runs/{job.name}.log; finished runs are kept, re-run the command to resume)"
                )
                queue.clear()
    if failure is not None:
        raise RunFailed(failure)


def read_run(exp: Experiment, job: Job) -> dict[str, Any]:
    path = run_folder(exp, job) / RUN_FILE
    try:
        rec: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise RunFailed(f"{path}: cannot read the run's figures ({exc}); delete that run's folder to redo it") from None
    rec["name"] = job.name
    return rec


def latency_pass(
    exp: Experiment, records: list[dict[str, Any]], *, repeats: int = LATENCY_REPEATS, processes: bool = True
) -> dict[str, float]:
    """Median single-prediction milliseconds of every run, timed round-robin in one process at 1 thread;
    written to OUT/latency.json and put into each record as `latency_ms`."""
    folders = [str(exp.out / "runs" / r["name"]) for r in records]
    if processes:
        proc = subprocess.run(
            [sys.executable, "-m", "grutext.experiments.worker", "--latency"],
            input=json.dumps({"folders": folders, "repeats": repeats}).encode(),
            capture_output=True,
            check=False,
        )
        if proc.returncode != 0:
            tail = proc.stderr.decode(errors="replace").strip().splitlines()
            raise RunFailed(f"latency pass failed (exit {proc.returncode}): {tail[-1] if tail else 'no output'}")
        by_folder: dict[str, float] = json.loads(proc.stdout.decode())
    else:
        by_folder = measure_latency(folders, repeats)
    latency = {Path(f).name: ms for f, ms in by_folder.items()}
    write_json_atomic(exp.out / LATENCY_FILE, {"repeats": repeats, "tokens": 50, "threads": 1, "median_ms": latency})
    for r in records:
        r["latency_ms"] = latency.get(r["name"])
    return latency


__all__ = [
    "LATENCY_FILE",
    "MANIFEST",
    "Job",
    "RunFailed",
    "finished",
    "jobs_of",
    "latency_pass",
    "prepare_folder",
    "read_run",
    "run_all",
    "threads_per_job",
]
