"""fit_code / backtest_code, and what the executor reports for code that misbehaves.

The fit must equal ``fit_grid`` over the same code run in-process, must never read the
test split (poisoned here), and every failure of the code must come back as a kind and
a message the designer can act on.
"""

from __future__ import annotations

import pickle
import time
from typing import Any

import numpy as np
import pandas as pd
import pytest

from stratlab.backtest.engine import Costs
from stratlab.backtest.runner import backtest_signals
from stratlab.config import Settings
from stratlab.market.splits import Splits, split_by_time
from stratlab.market.synthetic import synthetic_ohlcv
from stratlab.models.research import ParamRange, StrategySpec, TrainingReport
from stratlab.sandbox import _isolation
from stratlab.sandbox.executor import SandboxLimits, SandboxUnavailableError, run_signals
from stratlab.strategies.code import CodeStrategyError, backtest_code, fit_code, typed_params
from stratlab.strategies.fitting import fit_grid
from stratlab.strategies.rules import parameter_grid
from stratlab.strategies.validation import StrategyValidationError

pytestmark = pytest.mark.skipif(
    _isolation.find_bwrap() is None,
    reason="bubblewrap (bwrap) is not installed: apt-get install bubblewrap",
)

COSTS = Costs.from_bps(5, 5)
LIMITS = SandboxLimits(cpu_seconds=20, wall_seconds=30)
CODE = """\
import pandas as pd


def signals(data, params):
    close = data["close"]
    fast = close.rolling(params["fast"]).mean()
    slow = close.rolling(params["slow"]).mean()
    above = fast > slow
    return above & ~above.shift(1, fill_value=False), fast < slow
"""
SPEC = StrategySpec(
    name="sma cross in code",
    kind="code",
    code=CODE,
    parameters=[
        ParamRange(name="fast", low=5, high=15, step=5),
        ParamRange(name="slow", low=20, high=60, step=20),
    ],
    stop_loss=0.1,
)


def in_process(code: str, frame: pd.DataFrame, grid: list[dict[str, Any]]) -> tuple:
    namespace: dict[str, Any] = {}
    exec(code, namespace)
    pairs = [namespace["signals"](frame.copy(), dict(p)) for p in grid]
    return (
        np.column_stack([np.asarray(e, dtype=bool) for e, _ in pairs]),
        np.column_stack([np.asarray(x, dtype=bool) for _, x in pairs]),
    )


def comparable(report: TrainingReport) -> dict[str, Any]:
    return report.model_dump(exclude={"duration_ms"})


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return synthetic_ohlcv(bars=1200, seed=5)


@pytest.fixture(scope="module")
def splits(frame: pd.DataFrame) -> Splits:
    return split_by_time(frame)


@pytest.fixture(scope="module")
async def report(splits: Splits) -> TrainingReport:
    return await fit_code(SPEC, splits, costs=COSTS, limits=LIMITS)


async def test_fit_code_is_fit_grid_over_the_sandboxed_code(
    splits: Splits, report: TrainingReport
) -> None:
    grid = parameter_grid(SPEC)
    entries, exits = in_process(CODE, splits.through("validation"), grid)
    expected = fit_grid(SPEC, splits, grid, entries, exits, costs=COSTS).report
    assert report.kind == "code" and report.grid_size == 9
    # the same fit, plus the look-ahead probe made in the same sandboxed process
    assert report.lookahead is not None and report.lookahead.passed
    assert report.lookahead.cuts >= 20
    assert comparable(report.model_copy(update={"lookahead": None})) == comparable(expected)
    assert report.validation_metrics is not None and report.validation_metrics.trades > 0


@pytest.mark.parametrize("garbage", [np.nan, 1e9])
async def test_fit_code_never_reads_the_test_split(
    frame: pd.DataFrame, report: TrainingReport, garbage: float
) -> None:
    spoiled = frame.copy()
    spoiled.iloc[split_by_time(frame).bounds("test")[0] :] = garbage
    refit = await fit_code(SPEC, split_by_time(spoiled), costs=COSTS, limits=LIMITS)
    assert comparable(refit) == comparable(report)


async def test_backtest_code_runs_the_test_window_like_the_rules_backtest(
    splits: Splits, report: TrainingReport
) -> None:
    # best_params come back as floats; rolling() needs the ints the grid gave the fit
    assert all(isinstance(v, float) for v in report.best_params.values())
    run = await backtest_code(SPEC, report.best_params, splits, costs=COSTS, limits=LIMITS)
    history = splits.through("test")
    entries, exits = in_process(CODE, history, [typed_params(SPEC, report.best_params)])
    expected = backtest_signals(
        history, entries, exits, window=splits.bounds("test"), costs=COSTS, stop_loss=0.1
    )
    assert run.metrics == expected.metrics
    assert run.metrics.bars == splits.bounds("test")[1] - splits.bounds("test")[0]


async def test_backtest_without_entries_is_a_backtest_without_trades(splits: Splits) -> None:
    never = SPEC.model_copy(
        update={"code": CODE.replace("return above &", "return above & False &")}
    )
    run = await backtest_code(never, {"fast": 5, "slow": 20}, splits, costs=COSTS, limits=LIMITS)
    assert run.metrics.trades == 0


@pytest.mark.parametrize(
    ("change", "kind", "text"),
    [
        (("above &", "abuve &"), "runtime", "NameError: name 'abuve' is not defined, line 9"),
        (("import pandas as pd", "import os"), "validation", "line 1 [import-not-allowed]"),
        (("def signals(data, params):", "def signals(data, params)"), "syntax", "[syntax]"),
        (("return above &", "return above & False &"), "no_signals", "never trades"),
        (("fast < slow", "(fast < slow)[1:]"), "bad_result", "exits has 959 values but data has"),
    ],
)  # fmt: skip
async def test_failures_become_code_strategy_errors(
    splits: Splits, change: tuple[str, str], kind: str, text: str
) -> None:
    broken = SPEC.model_copy(update={"code": CODE.replace(*change)})
    with pytest.raises(CodeStrategyError) as caught:
        await fit_code(broken, splits, costs=COSTS, limits=LIMITS)
    assert caught.value.kind == kind
    assert text in caught.value.error, caught.value.error
    assert str(caught.value).startswith(f"strategy code failed ({kind}): ")
    copy = pickle.loads(pickle.dumps(caught.value))
    assert (copy.kind, copy.error) == (kind, caught.value.error)


async def test_spec_problems_and_wrong_kinds(splits: Splits) -> None:
    unused = SPEC.model_copy(
        update={"parameters": [*SPEC.parameters, ParamRange(name="x", low=1, high=2)]}
    )
    with pytest.raises(StrategyValidationError, match="'x' is never used"):
        await fit_code(unused, splits, costs=COSTS, limits=LIMITS)
    with pytest.raises(ValueError, match="fits code strategies"):
        await fit_code(
            SPEC.model_copy(update={"kind": "rules"}), splits, costs=COSTS, limits=LIMITS
        )
    with pytest.raises(ValueError, match="needs a code strategy"):
        no_code = SPEC.model_copy(update={"code": None})
        await backtest_code(no_code, {}, splits, costs=COSTS, limits=LIMITS)


# --- the executor -----------------------------------------------------------------------


async def test_missing_bubblewrap_refuses_with_instructions(
    frame: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(_isolation, "find_bwrap", lambda: None)
    with pytest.raises(SandboxUnavailableError) as caught:
        await run_signals(CODE, frame, [{"fast": 5, "slow": 20}], limits=LIMITS)
    assert "apt-get install bubblewrap" in str(caught.value)
    assert "STRATLAB_SANDBOX=rlimits" in str(caught.value)


async def test_rlimits_mode_works_and_says_it_is_weaker(frame: pd.DataFrame) -> None:
    run = await run_signals(CODE, frame, [{"fast": 5, "slow": 20}], limits=LIMITS, mode="rlimits")
    assert run.ok and run.isolation == "rlimits"
    assert any(note.startswith("WEAKER ISOLATION") for note in run.notes)
    entries, exits = in_process(CODE, frame, [{"fast": 5, "slow": 20}])
    assert np.array_equal(run.entries, entries) and np.array_equal(run.exits, exits)
    with pytest.raises(ValueError, match="unknown sandbox mode"):
        await run_signals(CODE, frame, [{}], limits=LIMITS, mode="docker")


async def test_cpu_limit_stops_a_spin_before_the_wall_clock(frame: pd.DataFrame) -> None:
    started = time.monotonic()
    run = await run_signals(
        "def signals(data, params):\n    while True:\n        pass\n",
        frame,
        [{}],
        limits=SandboxLimits(cpu_seconds=1, wall_seconds=20),
    )
    assert run.error_kind == "timeout" and "1 s of CPU time" in (run.error or "")
    assert time.monotonic() - started < 5


@pytest.mark.parametrize(
    ("returns", "text"),
    [
        ("c", "signals must return a tuple (entries, exits)"),
        ("c > 0, c", "exits must be booleans"),
        ("c > 0, (c > 0).shift(1)", "exits contains NaN/None (first at bar 0)"),
        ("c > 0, data[['close', 'open']] > 0", "exits must be one value per bar"),
        ("(c > 0).astype(int), c < 0", None),
    ],
)  # fmt: skip
async def test_returned_signals_are_checked(
    frame: pd.DataFrame, returns: str, text: str | None
) -> None:
    code = f"def signals(data, params):\n    c = data['close']\n    return {returns}\n"
    run = await run_signals(code, frame.iloc[:100], [{"a": 1}], limits=LIMITS)
    if text is None:  # 0/1 integers are accepted as booleans
        assert run.ok and run.entries is not None and run.entries.all()
        return
    assert run.error_kind == "bad_result" and text in (run.error or ""), run.error
    assert "(with params {'a': 1})" in (run.error or "")


async def test_the_frame_arrives_as_sent(frame: pd.DataFrame) -> None:
    sent = frame.iloc[:50].tz_localize("America/New_York")
    code = (
        "def signals(data, params):\n"
        "    assert str(data.index.tz) == 'America/New_York', data.index.tz\n"
        "    assert data.index.name == 'ts' and data.index.freqstr == 'B'\n"
        "    assert list(data.columns) == ['open', 'high', 'low', 'close', 'volume']\n"
        "    assert data.index[0].hour == 0 and data['close'].dtype == 'float64'\n"
        "    data['scratch'] = 1.0  # must not leak into the next parameter set\n"
        "    return data['close'] > params['x'], data['close'] < 0\n"
    )
    run = await run_signals(code, sent, [{"x": 0.0}, {"x": 1e9}], limits=LIMITS)
    assert run.ok, run.error
    assert run.entries is not None and run.entries[:, 0].all() and not run.entries[:, 1].any()


def test_settings_give_the_limits() -> None:
    settings = Settings.from_env(
        {"STRATLAB_SANDBOX": "rlimits", "STRATLAB_SANDBOX_CPU_SECONDS": "7"}
    )
    assert settings.sandbox_mode == "rlimits"
    assert settings.sandbox_limits().cpu_seconds == 7.0
    assert Settings.from_env({}).sandbox_mode == "bwrap"
