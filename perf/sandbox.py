"""Sandbox overhead per execution vs running the same ``signals`` function in-process.

    .venv/bin/python perf/sandbox.py              # 50 runs per figure
    .venv/bin/python perf/sandbox.py --runs 100

A benchmark, not a test: it prints medians (and p90) and asserts nothing. Data: the
bundled S&P 500 daily bars (1999-2018, ~5,000 bars). Strategy: a two-SMA crossover in
code. Rows, each the median of ``--runs`` sequential runs:

* bare bwrap: bubblewrap's namespaces plus ``python -I -S -c pass`` (no numpy/pandas);
* sandbox, tiny frame: the whole ``run_signals`` path on 10 bars, i.e. process start,
  numpy + pandas import, the seccomp filter, input files and result parsing;
* sandbox, full frame, 1 / 64 parameter sets: the same on all bars;
* in-process: the same function called directly, on a copy of the frame as the sandbox
  does, for 1 and 64 parameter sets;
* rlimits mode: the weaker fallback, same runner without bubblewrap;
* the limits of issue 15 on their own: making and removing a run's pids and memory
  cgroups (when the host allows them), and the full-frame run again without cgroups.
  The seccomp rules, the control pipe and the result-size check cost microseconds.

Overhead = sandbox - in-process for the same work.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

CODE = """\
import pandas as pd


def signals(data, params):
    close = data["close"]
    fast = close.rolling(int(params["fast"])).mean()
    slow = close.rolling(int(params["slow"])).mean()
    above = fast > slow
    return above & ~above.shift(1, fill_value=False), fast < slow
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50, help="runs per figure (default 50)")
    args = parser.parse_args()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    asyncio.run(_run(max(args.runs, 1)))


async def _run(runs: int) -> None:
    from stratlab.market.datasets import load_bundled
    from stratlab.sandbox import _isolation
    from stratlab.sandbox.executor import SandboxLimits, run_signals

    frame = load_bundled("sp500")
    grid = [{"fast": f, "slow": s} for f in (5, 10, 15, 20) for s in range(30, 190, 10)]
    limits = SandboxLimits()
    bwrap = _isolation.find_bwrap()
    python = sys.version.split()[0]
    print(f"sandbox overhead: {runs} runs per row, {len(frame)} bars, Python {python}")

    def sandboxed(data: Any, sets: list[dict[str, float]], mode: str) -> Awaitable[None]:
        async def once() -> None:
            run = await run_signals(CODE, data, sets, limits=limits, mode=mode)
            # 10 bars are too few for an entry: no_signals is that run's expected answer
            assert run.ok or run.error_kind == "no_signals", run.error

        return once()

    rows: list[tuple[str, list[float]]] = []
    if bwrap is None:
        print("bwrap is not installed: only the in-process and rlimits rows are measured")
    else:
        probe = _isolation.probe_command(bwrap)
        rows.append(("bare bwrap + python -c pass", _time_sync(runs, lambda: _call(probe))))
        tiny = frame.iloc[:10]
        for name, data, sets in (
            ("sandbox, 10 bars, 1 set", tiny, grid[:1]),
            ("sandbox, full frame, 1 set", frame, grid[:1]),
            ("sandbox, full frame, 64 sets", frame, grid),
        ):
            rows.append((name, await _time(runs, lambda d=data, g=sets: sandboxed(d, g, "bwrap"))))
    if bwrap is not None:
        rows += await _cgroup_rows(runs, lambda: sandboxed(frame, grid[:1], "bwrap"), limits)
    rlimits = await _time(runs, lambda: sandboxed(frame, grid[:1], "rlimits"))
    rows.append(("rlimits mode, full frame, 1 set", rlimits))
    namespace: dict[str, Any] = {}
    exec(CODE, namespace)
    for name, sets in (
        ("in-process, full frame, 1 set", grid[:1]),
        ("in-process, full frame, 64 sets", grid),
    ):
        rows.append((name, _time_sync(runs, lambda g=sets: _calls(namespace["signals"], frame, g))))
    _report(rows)


async def _cgroup_rows(
    runs: int, full_run: Callable[[], Awaitable[None]], limits: Any
) -> list[tuple[str, list[float]]]:
    from stratlab.sandbox import _cgroups

    def make_and_remove() -> None:
        _cgroups.remove(_cgroups.create("stratlab-sandbox-perf", limits))

    made = _cgroups.create("stratlab-sandbox-perf", limits)
    _cgroups.remove(made)
    if not made.dirs:
        print("no cgroup can be made here: the cgroup rows are not measured")
        return []
    rows = [
        (
            f"cgroups ({', '.join(sorted(made.dirs))}) make + remove",
            _time_sync(runs, make_and_remove),
        )
    ]
    create = _cgroups.create
    _cgroups.create = lambda run_id, limits: _cgroups.RunCgroup()  # type: ignore[assignment]
    try:
        rows.append(("sandbox, full frame, 1 set, no cgroups", await _time(runs, full_run)))
    finally:
        _cgroups.create = create  # type: ignore[assignment]
    return rows


def _call(argv: list[str]) -> None:
    subprocess.run(argv, check=True, stdin=subprocess.DEVNULL)


def _calls(signals: Callable[..., Any], frame: Any, sets: list[dict[str, float]]) -> None:
    for params in sets:
        signals(frame.copy(), dict(params))


def _time_sync(runs: int, work: Callable[[], None]) -> list[float]:
    work()  # warm-up: first-call costs are not per-execution overhead
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        work()
        samples.append((time.perf_counter() - started) * 1000.0)
    return samples


async def _time(runs: int, work: Callable[[], Awaitable[None]]) -> list[float]:
    await work()
    samples = []
    for _ in range(runs):
        started = time.perf_counter()
        await work()
        samples.append((time.perf_counter() - started) * 1000.0)
    return samples


def _report(rows: list[tuple[str, list[float]]]) -> None:
    medians = {name: statistics.median(samples) for name, samples in rows}
    print(f"{'':36s} {'median ms':>10s} {'p90 ms':>8s}")
    for name, samples in rows:
        p90 = statistics.quantiles(samples, n=10)[-1] if len(samples) > 1 else samples[0]
        print(f"{name:36s} {medians[name]:10.1f} {p90:8.1f}")
    for sets in ("1 set", "64 sets"):
        inside = medians.get(f"sandbox, full frame, {sets}")
        outside = medians[f"in-process, full frame, {sets}"]
        if inside is not None:
            print(f"overhead per execution ({sets}): {inside - outside:.1f} ms "
                  f"({inside / outside:.0f}x the in-process time)")  # fmt: skip


if __name__ == "__main__":
    main()
