"""The ``code`` kind: LLM-written ``signals(data, params)``, fitted and backtested like rules.

The only difference from ``rules`` is where signals come from. ``fit_code`` runs the
code in the sandbox ONCE for the whole parameter grid on the history through the
validation split (the test split is never handed to it), then scores and selects with
the same batched simulation as ``fit_rules`` (``fitting.fit_grid``). ``backtest_code``
runs the chosen parameters on the history through the test split, so rolling windows
warm up on past bars, and simulates the test window only, like ``backtest_rules``.

When the code fails (syntax, validation, runtime error, timeout, memory, output flood,
malformed result, or never an entry), ``CodeStrategyError`` carries the sandbox's
``kind`` and ``error``; the cycle turns them into feedback for the next design.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from stratlab.backtest.engine import Costs, FillOrder
from stratlab.backtest.runner import DEFAULT_INIT_CASH, BacktestRun, backtest_test_split
from stratlab.market.splits import Splits
from stratlab.models.research import StrategySpec, TrainingReport
from stratlab.sandbox.executor import SandboxRun, run_signals
from stratlab.sandbox.limits import SandboxLimits
from stratlab.sandbox.validator import CodeValidationError, validate_code
from stratlab.strategies.fitting import GridFit, WalkForwardSettings, fit_grid, with_probe
from stratlab.strategies.lookahead import cut_points
from stratlab.strategies.rules import parameter_grid, range_is_integral
from stratlab.strategies.validation import validate_spec


class CodeStrategyError(ValueError):
    """Strategy code that did not produce usable signals.

    ``kind`` is the sandbox's error kind (syntax, validation, runtime, timeout, memory,
    output_limit, bad_result, no_signals) and ``error`` its text, written for the designer.
    """

    def __init__(self, kind: str, error: str) -> None:
        self.kind = kind
        self.error = error
        super().__init__(kind, error)  # args match __init__, so pickling round-trips

    def __str__(self) -> str:
        return f"strategy code failed ({self.kind}): {self.error}"


async def fit_code(
    spec: StrategySpec,
    splits: Splits,
    *,
    costs: Costs,
    limits: SandboxLimits,
    mode: str = "bwrap",
    max_grid_size: int = 4096,
) -> TrainingReport:
    """Fit a ``code`` spec on the development period and report the pick (kind ``code``).

    Raises ``CodeStrategyError`` when the code is rejected or fails in the sandbox,
    ``StrategyValidationError`` for other problems of the spec (parameter ranges, grid
    size), and ``SandboxUnavailableError`` when the sandbox cannot run on this host.
    """
    fitted = await fit_code_grid(
        spec, splits, costs=costs, limits=limits, mode=mode, max_grid_size=max_grid_size
    )
    return fitted.report


async def fit_code_grid(
    spec: StrategySpec,
    splits: Splits,
    *,
    costs: Costs,
    limits: SandboxLimits,
    mode: str = "bwrap",
    max_grid_size: int = 4096,
    walk: WalkForwardSettings = WalkForwardSettings(),
) -> GridFit:
    """``fit_code`` with the out-of-sample series the report summarises."""
    started = time.perf_counter()
    _check_code(spec, max_grid_size)
    grid = parameter_grid(spec)
    history = splits.through("validation")
    # The look-ahead probe runs in the same sandboxed process as the grid.
    run = await run_signals(
        spec.code or "",
        history,
        grid,
        limits=limits,
        mode=mode,
        probe_cuts=cut_points(len(history)),
    )
    entries, exits = _signals_of(run, allow_no_entries=False)
    fitted = await asyncio.to_thread(
        fit_grid, spec, splits, grid, entries, exits, costs=costs, started=started, walk=walk
    )
    return with_probe(fitted, run.probe)


async def backtest_code(
    spec: StrategySpec,
    params: Mapping[str, float],
    splits: Splits,
    *,
    costs: Costs,
    limits: SandboxLimits,
    mode: str = "bwrap",
    init_cash: float = DEFAULT_INIT_CASH,
    fill_order: FillOrder = "conservative",
    probe_cuts: Sequence[int] = (),
) -> BacktestRun:
    """Backtest a ``code`` spec with fixed ``params`` on the test split; with
    ``probe_cuts``, the same sandboxed process probes for look-ahead there
    (``BacktestRun.lookahead``).

    Code that never enters on this history is not an error here: it makes a backtest
    without trades, which the backtest gate judges like any other.
    """
    if spec.kind != "code" or not spec.code:
        raise ValueError(f"backtest_code needs a code strategy with code, got kind {spec.kind!r}")
    history = splits.through("test")
    run = await run_signals(
        spec.code,
        history,
        [typed_params(spec, params)],
        limits=limits,
        mode=mode,
        probe_cuts=probe_cuts,
    )
    entries, exits = _signals_of(run, allow_no_entries=True)
    backtest = await asyncio.to_thread(
        backtest_test_split,
        spec,
        splits,
        entries,
        exits,
        costs=costs,
        init_cash=init_cash,
        fill_order=fill_order,
    )
    return replace(backtest, lookahead=run.probe)


def typed_params(spec: StrategySpec, params: Mapping[str, float]) -> dict[str, float]:
    """``params`` as the fit passed them: whole numbers for ranges of whole numbers.

    A training report stores every value as a float, but code does
    ``rolling(params["window"])``, which needs the ``int`` the grid gave it.
    """
    integral = {p.name for p in spec.parameters if range_is_integral(p)}
    return {
        name: int(value) if name in integral and float(value).is_integer() else value
        for name, value in params.items()
    }


def _check_code(spec: StrategySpec, max_grid_size: int) -> None:
    if spec.kind != "code":
        raise ValueError(f"fit_code fits code strategies, got kind {spec.kind!r}")
    if spec.code and spec.code.strip():
        # Code problems first, as a CodeStrategyError: they are feedback on the code.
        try:
            validate_code(spec.code)
        except CodeValidationError as exc:
            syntax = any(v.rule == "syntax" for v in exc.violations)
            raise CodeStrategyError("syntax" if syntax else "validation", str(exc)) from exc
    validate_spec(spec, max_grid_size=max_grid_size)


def _signals_of(run: SandboxRun, *, allow_no_entries: bool) -> tuple[np.ndarray, np.ndarray]:
    usable = run.ok or (allow_no_entries and run.error_kind == "no_signals")
    if not usable or run.entries is None or run.exits is None:
        raise CodeStrategyError(run.error_kind or "runtime", run.error or "no signals")
    return run.entries, run.exits
