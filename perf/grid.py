"""Grid-search throughput: fit_rules's batched simulation vs a loop of single backtests.

    .venv/bin/python perf/grid.py            # warm numba cache (what a worker sees)
    .venv/bin/python perf/grid.py --cold     # fresh cache: measures the real JIT compile

A benchmark, not a test: it prints figures and asserts nothing. Data: the bundled S&P 500
daily bars (1999-2018). Strategy: a two-SMA crossover over a 1,000-combination grid,
fitted with the default 60/20/20 split (train 3,019 bars, validation 1,006), 5 bps fees
and 5 bps slippage per side. A "backtest" is one combination simulated over one window;
fit_rules runs two per combination (train and validation). The process is pinned to one
core so the figures compare across machines.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

TARGET = 2_000  # backtests per second on one core, for the batched path
LOOP_SUBSET = 50
REPEATS = 5


def main() -> None:
    args = _parse()
    pinned = _pin_to_one_core()
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
    if not args.cold:
        # The lab's own JIT cache under $STRATLAB_HOME, as workers and `make demo` use it.
        from stratlab.config import Settings
        from stratlab.runtime import numba_cache_env

        numba_cache_env(Settings.from_env())
        _run(pinned, cold=False)
        return
    with tempfile.TemporaryDirectory(prefix="stratlab-numba-") as cache:
        # Set before numba is first imported, so nothing is read from an older cache.
        os.environ["NUMBA_CACHE_DIR"] = cache
        _run(pinned, cold=True)


def _parse() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cold", action="store_true", help="compile into a fresh numba cache")
    return parser.parse_args()


def _pin_to_one_core() -> str:
    if not hasattr(os, "sched_setaffinity"):
        return "not pinned (os.sched_setaffinity is unavailable on this platform)"
    os.sched_setaffinity(0, {0})
    return "pinned to core 0 with os.sched_setaffinity(0, {0})"


def _run(pinned: str, *, cold: bool) -> None:
    import numpy as np
    import vectorbt as vbt

    from stratlab.backtest.engine import Costs, simulate
    from stratlab.backtest.metrics import closed_trades, score_columns
    from stratlab.market.datasets import load_bundled
    from stratlab.market.splits import split_by_time
    from stratlab.strategies.classic import sma_crossover
    from stratlab.strategies.fitting import fit_rules
    from stratlab.strategies.rules import parameter_grid, rules_signals

    spec = sma_crossover(fast=(5, 54, 1), slow=(60, 250, 10))
    costs = Costs.from_bps(5, 5)
    splits = split_by_time(load_bundled("sp500"))
    history = splits.through("validation")
    windows = [splits.bounds("train"), splits.bounds("validation")]
    grid = parameter_grid(spec)

    print(
        f"data: sp500, {len(splits.frame)} daily bars; train {windows[0]}, validation {windows[1]}"
    )
    print(f"grid: {len(grid)} combinations x 2 windows; {pinned}")
    print(
        f"numba cache: {os.environ.get('NUMBA_CACHE_DIR', '(numba default)')}"
        f"{' (fresh: cold start)' if cold else ''}"
    )

    first = _seconds(lambda: fit_rules(spec, splits, costs=costs))
    print(f"first fit_rules call (JIT compile or cache load, plus one run): {first:.2f} s")

    # Batched: fit_rules end to end (signals once, one simulation per window, scoring).
    fit = min(_seconds(lambda: fit_rules(spec, splits, costs=costs)) for _ in range(REPEATS))
    entries, exits = rules_signals(spec, history, grid)
    signals = min(_seconds(lambda: rules_signals(spec, history, grid)) for _ in range(REPEATS))

    def batched_windows() -> None:
        for window in windows:
            pf = simulate(history, entries, exits, costs=costs, window=window)
            score_columns(pf)
            closed_trades(pf)

    sim = min(_seconds(batched_windows) for _ in range(REPEATS))
    batched_rate = 2 * len(grid) / fit

    # Loop: one single-column backtest per combination and window, signals precomputed
    # (which favours the loop), over a subset, extrapolated per backtest.
    subset = np.linspace(0, len(grid) - 1, LOOP_SUBSET).astype(int)
    frame_cols = {name: history[name].to_numpy() for name in ("open", "high", "low", "close")}

    def vbt_loop() -> None:
        for column in subset:
            for start, end in windows:
                fill_e = np.zeros(end - start, bool)
                fill_x = np.zeros(end - start, bool)
                first_bar = max(start - 1, 0)
                fill_e[first_bar + 1 - start :] = entries[first_bar : end - 1, column]
                fill_x[first_bar + 1 - start :] = exits[first_bar : end - 1, column]
                pf = vbt.Portfolio.from_signals(
                    frame_cols["close"][start:end],
                    fill_e,
                    fill_x,
                    price=frame_cols["open"][start:end],
                    open=frame_cols["open"][start:end],
                    high=frame_cols["high"][start:end],
                    low=frame_cols["low"][start:end],
                    fees=costs.fees,
                    slippage=costs.slippage,
                    direction="longonly",
                    stop_entry_price="fillprice",
                    stop_exit_price="stopmarket",
                    init_cash=100_000.0,
                    freq="1D",
                )
                pf.sharpe_ratio()
                pf.trades.closed.count()

    def engine_loop() -> None:
        for column in subset:
            for window in windows:
                pf = simulate(
                    history, entries[:, column], exits[:, column], costs=costs, window=window
                )
                score_columns(pf)
                closed_trades(pf)

    vbt_loop()
    engine_loop()  # warm-up of both loops
    vbt_rate = 2 * LOOP_SUBSET / min(_seconds(vbt_loop) for _ in range(3))
    engine_rate = 2 * LOOP_SUBSET / min(_seconds(engine_loop) for _ in range(3))

    print(f"  first call minus a warm run: {first - fit:.2f} s of compile / cache load")
    print()
    print(
        f"batched fit_rules, end to end: {fit * 1000:.0f} ms for {len(grid)} combinations "
        f"(best of {REPEATS})"
    )
    print(
        f"  of which signals for the whole grid: {signals * 1000:.0f} ms; "
        f"2 batched simulations + scoring: {sim * 1000:.0f} ms"
    )
    print(
        f"  batched throughput:   {batched_rate:8,.0f} backtests/s "
        f"({len(grid) / fit:,.0f} combinations/s)"
    )
    print(f"  simulation + scoring only: {2 * len(grid) / sim:8,.0f} backtests/s")
    print(
        f"loop of single-column vbt.Portfolio.from_signals + sharpe_ratio(), "
        f"{LOOP_SUBSET} combinations x 2 windows, extrapolated:"
    )
    print(f"  loop throughput:      {vbt_rate:8,.0f} backtests/s")
    print("loop of single-column stratlab simulate() + score_columns():")
    print(f"  loop throughput:      {engine_rate:8,.0f} backtests/s")
    print(
        f"ratio batched / vbt loop: {batched_rate / vbt_rate:.1f}x; "
        f"batched / simulate() loop: {batched_rate / engine_rate:.1f}x"
    )
    verdict = "meets" if batched_rate >= TARGET else "MISSES"
    print(f"target >= {TARGET:,} backtests/s on one core: {verdict}")


def _seconds(fn: Callable[[], object]) -> float:
    started = time.perf_counter()
    fn()
    return time.perf_counter() - started


if __name__ == "__main__":
    main()
