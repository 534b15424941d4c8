"""``stratlab warm-cache`` leaves a numba cache from which a new worker compiles nothing.

Two fresh processes share one empty NUMBA_CACHE_DIR: the first is the real command, the
second runs a research cycle's compute steps the way the compute activities do
(``Trainer.train``, ``Backtester.backtest`` and the holdout for a rules, an ml, a never-trading and
a code strategy, with in-memory stand-ins for Postgres). The second differs from the
warm-up on purpose (other symbol, indicators, grid size, stops, classifier, features,
the code kind through its sandbox): numba keys its cache on argument types only, so it
must load every kernel and compile nothing. Evidence, from inside it and from the disk:
no ``numba:compile`` event at all, the lab's kernels count cache hits and no misses, and
no cache file was added or rewritten.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
STRATLAB = Path(sys.executable).parent / "stratlab"
WARMED = re.compile(r"numba cache warmed: (\d+) files in (.+) \((\d+\.\d) s\)")

# The second process. It listens for numba compiles before anything imports vectorbt.
COMPUTE_CYCLE = '''
import asyncio
import json
from types import SimpleNamespace

from numba.core.event import install_recorder

with install_recorder("numba:compile") as compiles:
    from stratlab.backtest import _kernels
    from stratlab.config import Settings
    from stratlab.models.research import (
        BacktestInput, HoldoutInput, IndicatorRef, MlSpec, ParamRange, StrategySpec,
        TrainInput, TrialLedger,
    )
    from stratlab.research.evaluation import Backtester, HoldoutEvaluator
    from stratlab.research.training import Trainer

    CODE = """
import pandas as pd


def signals(data, params):
    close = data["close"]
    mean = close.rolling(params["window"]).mean()
    return close > mean * (1 + params["band"]), close < mean
"""
    SPECS = {
        "rules": StrategySpec(
            name="rsi band", symbol="nasdaq",
            indicators=[IndicatorRef(alias="rsi", kind="rsi", params={"window": "n"})],
            entry="rsi < floor", exit="rsi > 70",
            parameters=[ParamRange(name="n", low=7, high=21, step=7),
                        ParamRange(name="floor", low=25, high=40, step=5)],
        ),
        "ml": StrategySpec(
            name="macd mlp", kind="ml", symbol="nasdaq",
            indicators=[IndicatorRef(alias="macd", kind="macd"),
                        IndicatorRef(alias="vol", kind="volatility")],
            ml=MlSpec(features=["macd", "macd.signal", "vol", "volume"], classifier="mlp",
                      epochs=1),
        ),
        # Never enters: zero orders and trades, which vectorbt's record columns see
        # as contiguous arrays (another compiled version).
        "quiet": StrategySpec(
            name="never", symbol="nasdaq",
            indicators=[IndicatorRef(alias="ema", kind="ema", params={"window": 20})],
            entry="close > ema * 10", exit="close < ema",
        ),
        "code": StrategySpec(
            name="mean band", kind="code", symbol="nasdaq", code=CODE, take_profit=0.2,
            parameters=[ParamRange(name="window", low=10, high=30, step=10),
                        ParamRange(name="band", low=0.0, high=0.02, step=0.01)],
        ),
    }

    class Store:
        """ResearchRepo and MarketRepo, as far as training and backtests use them."""

        def __init__(self):
            self.runs = {}

        async def list_datasets(self):
            return []

        async def get_strategy(self, strategy_id):
            return SimpleNamespace(spec=SPECS[strategy_id])

        async def get_training_run(self, training_run_id):
            return self.runs.get(training_run_id)

        async def upsert_training_run(self, training_run_id, **fields):
            self.runs[training_run_id] = SimpleNamespace(**fields)

        async def latest_checkpoint(self, training_run_id):
            return None

        async def save_checkpoint(self, *args):
            pass

        async def load_model(self, training_run_id):
            return self.runs[training_run_id].model

        async def get_backtest(self, backtest_id):
            return None

        async def insert_backtest(self, backtest_id, **fields):
            return SimpleNamespace(**fields)

        # IntegrityRepo
        async def record_trials(self, trial_id, **fields):
            pass

        async def save_series(self, training_run_id, series):
            pass

        async def load_series(self, training_run_id):
            return None

        async def ledger(self, universe, symbol, session_id=None):
            return TrialLedger(universe=universe, symbol=symbol)

        async def get_holdout(self, holdout_id):
            return None

        async def insert_holdout(self, result, **fields):
            return result

    async def cycle():
        store, settings = Store(), Settings.from_env()
        trainer = Trainer(store, store, settings, store)
        backtester = Backtester(store, store, settings, store)
        holdout = HoldoutEvaluator(store, store, settings, store)
        trades = {}
        for kind in SPECS:
            ids = dict(session_id="s", iteration=1, strategy_id=kind, training_run_id=kind)
            await trainer.train(TrainInput(**ids), heartbeat=lambda details: None)
            await backtester.backtest(BacktestInput(**ids, backtest_id=kind))
            done = await holdout.evaluate(HoldoutInput(
                session_id="s", strategy_id=kind, training_run_id=kind, holdout_id=kind
            ))
            trades[kind] = done.metrics.trades
        return trades

    trades = asyncio.run(cycle())

kernels = {
    name: {
        "hits": sum(getattr(_kernels, name).stats.cache_hits.values()),
        "misses": sum(getattr(_kernels, name).stats.cache_misses.values()),
    }
    for name in ("simulate_long_only_nb",)
}
compiled = sorted(
    {event.data["dispatcher"].py_func.__qualname__ for _, event in compiles.buffer}
)
print(json.dumps({"trades": trades, "kernels": kernels, "compiled": compiled}))
'''


def cache_files(cache_dir: Path) -> dict[str, tuple[int, int]]:
    return {
        str(p.relative_to(cache_dir)): (p.stat().st_mtime_ns, p.stat().st_size)
        for p in cache_dir.rglob("*")
        if p.is_file()
    }


def test_a_warmed_cache_leaves_nothing_to_compile(tmp_path: Path) -> None:
    cache_dir = tmp_path / "numba-cache"
    env = {
        **os.environ,
        "NUMBA_CACHE_DIR": str(cache_dir),
        "STRATLAB_HOME": str(tmp_path / "home"),
        "STRATLAB_SANDBOX": "rlimits",  # the sandbox runs no numba; bwrap is not the point
        "COLUMNS": "80",  # a long cache path must still print as one line
    }

    warmed = subprocess.run(
        [str(STRATLAB), "warm-cache"], cwd=ROOT, env=env, capture_output=True, text=True
    )
    assert warmed.returncode == 0, warmed.stderr
    match = WARMED.fullmatch(warmed.stdout.strip())
    assert match, warmed.stdout
    files = cache_files(cache_dir)
    assert Path(match[2]) == cache_dir
    assert int(match[1]) == len(files) > 0
    assert {Path(f).suffix for f in files} == {".nbi", ".nbc"}
    kernel_indexes = {Path(f).name.split("-")[0] for f in files if f.endswith(".nbi")}
    assert "_kernels.simulate_long_only_nb" in kernel_indexes

    cycle = subprocess.run(
        [sys.executable, "-c", COMPUTE_CYCLE],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
    )
    assert cycle.returncode == 0, cycle.stderr
    seen = json.loads(cycle.stdout.strip().splitlines()[-1])
    assert set(seen["trades"]) == {"rules", "ml", "quiet", "code"}
    assert seen["trades"]["quiet"] == 0
    assert seen["compiled"] == [], f"compiled after warm-cache: {seen['compiled']}"
    for name, stats in seen["kernels"].items():
        assert stats["misses"] == 0 and stats["hits"] >= 1, (name, stats)
    assert cache_files(cache_dir) == files
