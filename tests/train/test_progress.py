"""Progress when stderr is not a terminal: a plain line every PLAIN_INTERVAL_S seconds inside an
epoch (no carriage returns), nothing when disabled, the live bar on a terminal as before."""

from __future__ import annotations

import io

from grutext.train import trace
from grutext.train.trace import Progress, track


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def run_epoch(p: Progress, clock: FakeClock, steps: int, seconds_per_step: float) -> None:
    for i in range(1, steps + 1):
        clock.now += seconds_per_step
        p.update(i, tokens=i * 1000, loss=1.0 / i)
    p.close()


def test_plain_lines_every_interval_when_not_a_terminal():
    buf, clock = io.StringIO(), FakeClock()
    p = Progress(100, desc="epoch 2/5", stream=buf, interval=30.0, clock=clock)
    run_epoch(p, clock, 100, 1.0)  # a 100-second epoch: lines at 30 s, 60 s, 90 s
    lines = buf.getvalue().splitlines()
    assert "\r" not in buf.getvalue()
    assert len(lines) == 3, lines
    assert lines[0].startswith("epoch 2/5: 30/100 (30%) loss 0.0333 1,000 tok/s, 30s elapsed, eta 70s"), lines[0]
    assert lines[1].startswith("epoch 2/5: 60/100 (60%)") and lines[2].startswith("epoch 2/5: 90/100 (90%)")


def test_default_interval_is_the_module_constant(monkeypatch):
    monkeypatch.setattr(trace, "PLAIN_INTERVAL_S", 0.5)
    buf, clock = io.StringIO(), FakeClock()
    p = Progress(10, desc="epoch 1/1", stream=buf, clock=clock)
    run_epoch(p, clock, 10, 0.25)
    assert len(buf.getvalue().splitlines()) == 4  # at 0.5, 1.0, 1.5, 2.0 s; not at the last step


def test_short_epochs_print_nothing_and_disabled_prints_nothing():
    buf, clock = io.StringIO(), FakeClock()
    run_epoch(Progress(50, stream=buf, clock=clock), clock, 50, 0.5)  # 25 s < 30 s
    assert buf.getvalue() == ""
    run_epoch(Progress(50, stream=buf, enabled=False, interval=1.0, clock=clock), clock, 50, 5.0)
    assert buf.getvalue() == ""


def test_live_bar_when_enabled_is_redrawn_in_place():
    buf, clock = io.StringIO(), FakeClock()
    run_epoch(Progress(10, desc="epoch 1/3", enabled=True, stream=buf, interval=1.0, clock=clock), clock, 10, 5.0)
    text = buf.getvalue()
    assert "\n" not in text and text.count("\r") >= 10 and "10/10 loss 0.1000" in text


def test_track_reports_through_an_iterable(monkeypatch):
    buf = io.StringIO()
    clock = FakeClock()
    items = []
    real = trace.Progress
    # the fake clock and a 1-second interval, through track's own Progress
    monkeypatch.setattr(trace, "Progress", lambda *a, **k: real(*a, **k, interval=1.0, clock=clock))
    for x in track(range(6), desc="validation", stream=buf):
        clock.now += 0.6
        items.append(x)
    assert items == list(range(6))
    lines = buf.getvalue().splitlines()
    assert [line.split()[1] for line in lines] == ["2/6", "4/6"], lines
    assert "loss" not in lines[0] and "tok/s" not in lines[0]
