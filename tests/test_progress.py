"""Tests of lib.progress: modes, log lines (counts, ETA, postfix), rate limiting, summary."""

from __future__ import annotations

import logging

import pytest

from lib import progress


class Clock:
    """A hand-driven clock: `tick(s)` advances it."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def tick(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def log_mode(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(progress.MODE_ENV, "log")
    monkeypatch.delenv(progress.INTERVAL_ENV, raising=False)
    monkeypatch.delenv("RANK", raising=False)


def _lines(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "lib.progress"]


def test_format_duration() -> None:
    assert progress.format_duration(4.24) == "4.2s"
    assert progress.format_duration(42.4) == "42s"
    assert progress.format_duration(72) == "1m12s"
    assert progress.format_duration(3725) == "1h02m"
    assert progress.format_duration(float("nan")) == "?"


def test_log_lines_are_rate_limited_and_state_eta(
    log_mode: None, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    caplog.set_level(logging.INFO, logger="lib.progress")
    bar = progress.ProgressBar(135, "fine-tune target", every=10, clock=clock)
    clock.tick(5)
    bar.update(20)  # 5 s since start: below the interval, no line
    assert _lines(caplog) == []
    clock.tick(67)
    bar.update(20)  # 72 s, 40 of 135 done: 72/40 s per step, 95 steps left = 171 s
    bar.set_postfix(loss=1.23449)
    clock.tick(3)
    bar.update()  # 3 s after the last line: none
    assert _lines(caplog) == [
        "fine-tune target: 40/135 steps (30%) · 1m12s elapsed · ETA 2m51s",
    ]
    clock.tick(20)
    bar.set_postfix(loss=1.23449, lr=2e-5)
    bar.update(94)
    bar.close()
    bar.close()  # idempotent
    assert _lines(caplog)[1:] == [
        "fine-tune target: 135/135 steps (100%) · 1m35s elapsed · loss 1.234 · lr 2.000e-05",
        "fine-tune target: 135/135 steps (100%) · done in 1m35s · loss 1.234 · lr 2.000e-05",
    ]


def test_stopped_bar_and_unknown_total(log_mode: None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lib.progress")
    clock = Clock()
    with pytest.raises(RuntimeError), progress.ProgressBar(10, "sweep", "run", clock=clock) as b:
        b.update(3)
        clock.tick(12)
        raise RuntimeError("diverged")
    unknown = progress.ProgressBar(None, "stream", "batch", every=1e9, clock=clock)
    unknown.update()
    unknown.close()
    assert _lines(caplog) == [
        "sweep: 3/10 runs (30%) · stopped after 12s",
        "stream: 1 batch · done in 0.0s",
    ]


def test_iterate_counts_items(log_mode: None, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="lib.progress")
    assert list(progress.iterate(range(4), "evaluate", unit="batch", every=1e9)) == [0, 1, 2, 3]
    assert _lines(caplog)[-1].startswith("evaluate: 4/4 batches (100%) · done in")


def test_modes_and_validation(monkeypatch: pytest.MonkeyPatch, capsys) -> None:
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setenv(progress.MODE_ENV, "off")
    with progress.bar(3, "silent") as bar:
        bar.update(3)
    progress.summary("not shown")
    assert progress.mode() == "off"
    monkeypatch.setenv(progress.MODE_ENV, "loud")
    with pytest.raises(ValueError, match="'bar', 'log', 'off', 'auto'"):
        progress.mode()
    monkeypatch.setenv(progress.MODE_ENV, "auto")
    assert progress.mode() == "log"  # pytest captures stderr: not a terminal, not a kernel
    monkeypatch.setenv("RANK", "1")
    assert progress.mode() == "off"  # only rank 0 of a multi-process run reports
    monkeypatch.setenv(progress.INTERVAL_ENV, "-3")
    with pytest.raises(ValueError, match="seconds"):
        progress.interval()
    with pytest.raises(ValueError, match="total"):
        progress.bar(-1, "negative")


def test_bar_mode_uses_tqdm_and_summary_is_written(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture, capsys
) -> None:
    monkeypatch.delenv("RANK", raising=False)
    monkeypatch.setenv(progress.MODE_ENV, "bar")
    caplog.set_level(logging.INFO, logger="lib.progress")
    with progress.bar(2, "tqdm shown") as bar:
        assert bar._tqdm is not None
        bar.update(2)
        bar.set_postfix(loss=0.5)
    progress.summary("ga seed 0: done")
    captured = capsys.readouterr()
    assert "tqdm shown" in captured.err and "2/2" in captured.err
    assert "ga seed 0: done" in captured.out
    assert _lines(caplog) == ["ga seed 0: done"]  # bars are not logged, summaries are


def test_unit_plurals() -> None:
    from lib.progress import _plural

    assert [_plural(u) for u in ("step", "batch", "canary", "day", "run")] == [
        "steps",
        "batches",
        "canaries",
        "days",
        "runs",
    ]
