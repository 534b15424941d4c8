"""A new worker's first compute step: empty numba cache vs one made by `stratlab warm-cache`.

    .venv/bin/python perf/warmup.py               # 3 fresh processes of each
    .venv/bin/python perf/warmup.py --repeats 5

A benchmark, not a test: it prints figures and asserts nothing. Every figure comes from a
fresh process, like a worker container that has just started. The step is a research
cycle's compute through the functions the compute activities call, on the bundled S&P
500 daily bars (60/20/20 split, 5 bps fees and slippage): ``fit_rules`` over a
200-combination two-SMA grid and ``backtest_rules`` on the test split, then an ml
logistic model (20 epochs, as ``MlTrainer`` runs them) and its test backtest. Rules run
first, so they pay for the kernels both kinds share. Times are measured inside the
process after its imports; "whole process" adds interpreter start and imports. Each
process then runs the step once more, for the time left when nothing is compiled or
loaded.

"empty" starts from an empty NUMBA_CACHE_DIR; "warmed" from one that `stratlab
warm-cache` filled just before, in its own process (timed too, wall clock).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
STRATLAB = Path(sys.executable).parent / "stratlab"
WARMED = re.compile(r"numba cache warmed: (\d+) files in (.+) \((\d+\.\d) s\)")
PARTS = ("rules", "ml", "total", "process", "again")
LABELS = {
    "rules": "rules fit + test backtest",
    "ml": "ml fit + test backtest",
    "total": "first compute step",
    "process": "whole process",
    "again": "the same step again, same process",
}


def main() -> None:
    args = _parse()
    if args.step:
        _step()
        return
    print(__doc__.splitlines()[0])
    cold: list[dict[str, float]] = []
    warm: list[dict[str, float]] = []
    warm_cache: list[tuple[float, float, int]] = []
    for _ in range(args.repeats):
        with tempfile.TemporaryDirectory(prefix="stratlab-numba-") as cache:
            cold.append(_run_step(cache))
        with tempfile.TemporaryDirectory(prefix="stratlab-numba-") as cache:
            warm_cache.append(_run_warm_cache(cache))
            warm.append(_run_step(cache))
    _report(cold, warm, warm_cache)


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3, help="fresh processes of each kind")
    parser.add_argument("--step", action="store_true", help=argparse.SUPPRESS)
    return parser.parse_args()


def _env(cache: str) -> dict[str, str]:
    return {**os.environ, "NUMBA_CACHE_DIR": cache}


def _run_step(cache: str) -> dict[str, float]:
    started = time.perf_counter()
    done = subprocess.run(
        [sys.executable, __file__, "--step"],
        cwd=ROOT,
        env=_env(cache),
        capture_output=True,
        text=True,
        check=True,
    )
    timings: dict[str, float] = json.loads(done.stdout.strip().splitlines()[-1])
    return {**timings, "process": time.perf_counter() - started}


def _run_warm_cache(cache: str) -> tuple[float, float, int]:
    """(wall seconds, the command's own seconds, cache files) of one `stratlab warm-cache`."""
    started = time.perf_counter()
    done = subprocess.run(
        [str(STRATLAB), "warm-cache"],
        cwd=ROOT,
        env=_env(cache),
        capture_output=True,
        text=True,
        check=True,
    )
    wall = time.perf_counter() - started
    match = WARMED.fullmatch(done.stdout.strip())
    if match is None:
        raise SystemExit(f"unexpected warm-cache output: {done.stdout!r}")
    return wall, float(match[3]), int(match[1])


def _step() -> None:
    """In a fresh process: the first compute step, timed per kind, as one JSON line."""
    sys.path.insert(0, str(ROOT))
    from stratlab.backtest.engine import Costs
    from stratlab.backtest.runner import backtest_test_split
    from stratlab.market.datasets import load_bundled
    from stratlab.market.splits import split_by_time
    from stratlab.models.research import IndicatorRef, MlSpec, StrategySpec
    from stratlab.strategies.classic import sma_crossover
    from stratlab.strategies.fitting import backtest_rules, fit_rules
    from stratlab.strategies.ml import MlTrainer, ml_signals

    rules = sma_crossover(fast=(5, 50, 5), slow=(60, 250, 10), stop_loss=0.08)
    ml = StrategySpec(
        name="logistic",
        kind="ml",
        indicators=[
            IndicatorRef(alias="rsi", kind="rsi", params={"window": 14}),
            IndicatorRef(alias="macd", kind="macd"),
        ],
        ml=MlSpec(features=["rsi", "macd", "macd.signal", "volume"], epochs=20),
    )
    costs = Costs.from_bps(5, 5)
    splits = split_by_time(load_bundled("sp500"))

    def compute_rules() -> None:
        report = fit_rules(rules, splits, costs=costs)
        backtest_rules(rules, report.best_params, splits, costs=costs)

    def compute_ml() -> None:
        trainer = MlTrainer(ml, splits, seed=0)
        while not trainer.done:
            trainer.train_epoch()
            trainer.checkpoint()
        entries, exits = ml_signals(ml, trainer.model_blob(), splits.through("test"))
        backtest_test_split(ml, splits, entries, exits, costs=costs)

    rules_seconds = _seconds(compute_rules)
    ml_seconds = _seconds(compute_ml)
    # The same step once more: everything compiled is in memory now.
    again = _seconds(compute_rules) + _seconds(compute_ml)
    timings = {
        "rules": rules_seconds,
        "ml": ml_seconds,
        "total": rules_seconds + ml_seconds,
        "again": again,
    }
    print(json.dumps(timings))


def _seconds(fn: Callable[[], None]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


def _report(
    cold: list[dict[str, float]],
    warm: list[dict[str, float]],
    warm_cache: list[tuple[float, float, int]],
) -> None:
    print(f"{len(cold)} fresh processes of each; medians, (min-max) in brackets")
    print(f"{'':36}{'empty cache':>22}{'warmed cache':>22}{'empty / warmed':>16}")
    for part in PARTS:
        empty = [run[part] for run in cold]
        warmed = [run[part] for run in warm]
        ratio = statistics.median(empty) / statistics.median(warmed)
        print(f"{LABELS[part]:36}{_cell(empty):>22}{_cell(warmed):>22}{ratio:>15.1f}x")
    walls = [wall for wall, _, _ in warm_cache]
    own = [seconds for _, seconds, _ in warm_cache]
    files = sorted({count for _, _, count in warm_cache})
    print(
        f"stratlab warm-cache: {_cell(walls)} wall clock per run "
        f"(its own figure {_cell(own)}), {'/'.join(map(str, files))} cache files"
    )


def _cell(values: list[float]) -> str:
    return f"{statistics.median(values):.2f} s ({min(values):.2f}-{max(values):.2f})"


if __name__ == "__main__":
    main()
