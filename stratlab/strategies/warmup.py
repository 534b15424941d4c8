"""Pre-compiling numba's on-disk cache, so a new compute worker's first backtest skips the JIT.

``warm_numba_cache`` runs, in this process and without Postgres or Temporal, every step of
a research cycle that numba compiles for, through the public functions the compute
activities call: a rules fit over a small grid (``fit_rules``), its out-of-sample backtest
(``backtest_rules``), an ml fit (``MlTrainer``) and its backtest (``ml_signals`` then
``backtest_test_split``), on the bundled S&P 500 bars. The ``code`` kind ends in the same
``fit_grid`` and ``backtest_test_split`` as rules; its sandboxed subprocess never
imports numba (bubblewrap does not mount it), so it has nothing to warm.

numba compiles one version per argument TYPE, never per size or value, and the engine
normalises what it hands its own kernels (C-contiguous bool signals, fresh float64 prices,
0-d cost arrays), so a four-combination grid and two epochs compile the versions a full
cycle loads. One exception is in vectorbt: a column of order or trade records is a
strided view, which numpy flags contiguous when it holds at most one record, and numba
compiles another version for that. So the warm-up also backtests a strategy that never
trades. tests/integration/test_numba_warmup.py holds all this to a second process that
compiles nothing.

A cache made while building an image is only read by the workers that run it when:

* NUMBA_CACHE_DIR is the same path and writable by the worker's user: numba silently
  skips a read-only cache directory and compiles into ``__pycache__`` instead;
* stratlab and vectorbt are installed at the same paths (cache entries are filed by
  their source directory) with the same source;
* the CPU matches: entries are keyed on the host CPU's name and features, so an image
  built on one machine and run on others needs ``NUMBA_CPU_NAME=generic`` at build time
  AND at run time.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numba.core import config as numba_config

from stratlab.backtest.engine import Costs
from stratlab.backtest.runner import backtest_test_split
from stratlab.market.datasets import load_bundled
from stratlab.market.splits import Splits, split_by_time
from stratlab.models.research import IndicatorRef, MlSpec, StrategySpec
from stratlab.strategies.classic import sma_crossover
from stratlab.strategies.fitting import backtest_rules, fit_rules
from stratlab.strategies.ml import MlTrainer, ml_signals

WARMUP_SYMBOL = "sp500"
"""The bundled data set the warm-up runs on (its size does not change what compiles)."""

RULES_SPEC = sma_crossover(
    fast=(5, 10, 5),
    slow=(30, 60, 30),
    name="numba warm-up: sma crossover",
    symbol=WARMUP_SYMBOL,
    stop_loss=0.05,
    take_profit=0.10,
)
"""A 2 x 2 grid with stops: the rules fit and backtest of the warm-up."""

ML_SPEC = StrategySpec(
    name="numba warm-up: logistic",
    kind="ml",
    symbol=WARMUP_SYMBOL,
    indicators=[IndicatorRef(alias="rsi", kind="rsi", params={"window": 14})],
    ml=MlSpec(features=["rsi", "close"], epochs=2),
)
"""A two-epoch logistic model: the ml fit and backtest of the warm-up."""

_COSTS = Costs.from_bps(5, 5)  # non-zero like the lab's defaults; values never change types


@dataclass(frozen=True)
class WarmupReport:
    """What a warm-up left behind: ``cache_files`` numba index and data files (``.nbi``,
    ``.nbc``) in ``cache_dir`` after ``seconds`` of compiling and running."""

    seconds: float
    cache_files: int
    cache_dir: Path


def warm_numba_cache() -> WarmupReport:
    """Compile (or load) every numba function a compute worker runs into NUMBA_CACHE_DIR.

    NUMBA_CACHE_DIR must be set before numba is first imported (``stratlab warm-cache``
    does that); without it numba would cache beside the installed sources instead.
    """
    cache_dir = _numba_cache_dir()
    if not cache_dir:
        raise RuntimeError(
            "NUMBA_CACHE_DIR was not set when numba was imported: set it first, or run "
            "`stratlab warm-cache`"
        )
    started = time.perf_counter()
    splits = split_by_time(load_bundled(WARMUP_SYMBOL))
    _warm_rules(splits)
    _warm_ml(splits)
    _warm_no_trades(splits)
    return WarmupReport(
        seconds=time.perf_counter() - started,
        cache_files=count_cache_files(Path(cache_dir)),
        cache_dir=Path(cache_dir),
    )


def count_cache_files(cache_dir: Path) -> int:
    """numba's index (``.nbi``) and compiled-code (``.nbc``) files under ``cache_dir``."""
    return sum(1 for path in cache_dir.rglob("*.nb[ic]") if path.is_file())


def _numba_cache_dir() -> str:
    # What numba read from NUMBA_CACHE_DIR when it was first imported ("" when unset);
    # numba's config sets its attributes at run time, hence getattr.
    return str(getattr(numba_config, "CACHE_DIR", ""))


def _warm_rules(splits: Splits) -> None:
    """The training activity's ``fit_rules``, then the backtest activity's
    ``backtest_rules`` with the parameters it picked."""
    report = fit_rules(RULES_SPEC, splits, costs=_COSTS)
    backtest_rules(RULES_SPEC, report.best_params, splits, costs=_COSTS)


def _warm_ml(splits: Splits) -> None:
    """The training activity's epoch loop, then the backtest activity's ml branch."""
    trainer = MlTrainer(ML_SPEC, splits, seed=0)
    while not trainer.done:
        trainer.train_epoch()
    entries, exits = ml_signals(ML_SPEC, trainer.model_blob(), splits.through("test"))
    backtest_test_split(ML_SPEC, splits, entries, exits, costs=_COSTS)


def _warm_no_trades(splits: Splits) -> None:
    """A test-split backtest without a single order (an ml or code strategy that never
    enters): vectorbt's record functions then see contiguous columns (see above)."""
    never = np.zeros(len(splits.through("test")), dtype=np.bool_)
    backtest_test_split(RULES_SPEC, splits, never, never, costs=_COSTS)
