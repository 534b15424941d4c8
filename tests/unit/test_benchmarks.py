"""The benchmark suite: the packaged tasks are real (or declared noise), honest and loadable;
results are judged by their criteria and scored on a graded scale; a malformed suite file
gets an error that says what is wrong."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stratlab.evolution.benchmarks import (
    CRITERION_METRICS,
    BenchmarkWindowError,
    criteria_share,
    deflated_sharpe,
    evaluate,
    task_score,
    window,
)
from stratlab.evolution.suite import (
    REGIMES,
    BenchmarkSuiteError,
    default_tasks,
    load_suite,
    parse_suite,
    task_set_hash,
)
from stratlab.market.datasets import (
    BUNDLED_SYMBOLS,
    REAL_SYMBOLS,
    load_bundled,
    noise_ohlcv,
)
from stratlab.market.planted import causal_sharpe, oracle_sharpe, planted_edge_ohlcv
from stratlab.market.splits import split_by_time
from stratlab.models.optimization import BenchmarkTask, Criterion
from stratlab.models.optimizer_slice import NOISE_SEEDS, PLANTED_SETS
from stratlab.models.research import BacktestMetrics, GateCheck, GateResult

SUITE = load_suite()


def _max_drawdown(close: pd.Series) -> float:
    values = close.to_numpy(dtype=float)
    peaks = np.maximum.accumulate(values)
    return float(((peaks - values) / peaks).max())


def _ret(close: pd.Series) -> float:
    return float(close.iloc[-1] / close.iloc[0] - 1)


def test_packaged_suite_covers_symbols_regimes_and_objectives() -> None:
    tasks = SUITE.tasks
    assert SUITE.version == 1
    assert len(tasks) >= 25
    assert len({t.task_id for t in tasks}) == len(tasks)
    assert {t.symbol for t in tasks} >= {"sp500", "nasdaq"}
    assert {t.regime for t in tasks} == set(REGIMES)
    assert len({t.objective for t in tasks}) >= 3
    assert {t.kind for t in tasks} >= {"rules", "ml"}
    assert all(t.criteria and t.suite_version == SUITE.version for t in tasks)
    assert all(c.metric in CRITERION_METRICS for t in tasks for c in t.criteria)
    # A few tasks on noise, where the right result is no discovery; some on planted edges,
    # where it is a discovery; the rest on real data.
    noise = [t for t in tasks if t.expect == "no-discovery"]
    assert 2 <= len(noise) <= 3 and {t.regime for t in noise} == {"noise"}
    assert {t.symbol for t in noise} == set(NOISE_SEEDS)
    planted = [t for t in tasks if t.regime == "planted"]
    assert len(planted) >= 4 and {t.symbol for t in planted} == set(PLANTED_SETS)
    assert all(t.expect == "discovery" for t in planted)
    assert all(t.symbol in REAL_SYMBOLS for t in tasks if t.regime not in ("noise", "planted"))
    # The default task set is the optimizer's own data, and all of it.
    defaults = sorted(t.task_id for t in default_tasks(tasks))
    assert defaults == sorted(t.task_id for t in noise + planted)
    assert not {t.symbol for t in default_tasks(tasks)} & set(REAL_SYMBOLS)


@pytest.mark.parametrize("task", SUITE.tasks, ids=lambda t: t.task_id)
def test_each_window_is_real_data_long_enough_to_split(task: BenchmarkTask) -> None:
    assert task.symbol in BUNDLED_SYMBOLS
    part = window(load_bundled(task.symbol), task)
    assert len(part) >= 1_200
    # The window is what the task says: its first and last bars are inside the dates.
    assert part.index[0].date() >= task.start and part.index[-1].date() <= task.end
    assert (part.index[0].date() - task.start).days <= 5
    assert (task.end - part.index[-1].date()).days <= 5
    splits = split_by_time(part, train=0.6, validation=0.2)
    assert min(len(splits.validation), len(splits.test)) >= 240  # about a year each


@pytest.mark.parametrize("task", SUITE.tasks, ids=lambda t: t.task_id)
def test_regime_labels_agree_with_the_prices(task: BenchmarkTask) -> None:
    """The rules in suite.toml's header: a label is a claim about the real prices."""
    full = load_bundled(task.symbol)["close"]
    close = window(full.to_frame(), task)["close"]
    test = split_by_time(close.to_frame(), train=0.6, validation=0.2).test["close"]
    if task.regime == "bust":
        assert _ret(close) <= -0.05 and _max_drawdown(close) >= 0.40
    elif task.regime == "crash":
        assert _max_drawdown(test) >= 0.30
    elif task.regime == "boom":
        assert _ret(close) >= 0.50 and _ret(test) >= 0.10 and _max_drawdown(test) <= 0.15
    elif task.regime == "recovery":
        low_at = close.idxmin()
        prior_peak = full.loc[:low_at].max()
        assert close.min() <= 0.70 * prior_peak
        assert close.iloc[-1] >= 1.30 * close.min() and _ret(test) > 0
    elif task.regime == "sideways":
        assert abs(_ret(test)) <= 0.08 and _max_drawdown(test) <= 0.20
    elif task.regime == "planted":
        # A planted edge is synthetic, says so, and a causal trader can take it here.
        assert task.symbol in PLANTED_SETS and "not market data" in BUNDLED_SYMBOLS[task.symbol]
        named = PLANTED_SETS[task.symbol]
        frame, info = planted_edge_ohlcv(
            bars=5_000, seed=named.seed, sharpe=named.sharpe, start="1999-01-04", edge="causal"
        )
        assert np.allclose(full.to_numpy(), frame["close"].to_numpy())
        inside = np.flatnonzero(frame.index.isin(close.index))
        taken = causal_sharpe(frame, info, bars=slice(inside[0], inside[-1] + 1))
        # About ten years: the realised value is within about 0.6 (two standard errors).
        assert abs(taken - named.sharpe) < 0.6
        assert oracle_sharpe(frame, info, bars=slice(inside[0], inside[-1] + 1)) > taken
    else:
        # Noise is the bundled driftless random walk, not market data, and says so.
        assert task.regime == "noise" and task.expect == "no-discovery"
        assert task.symbol in NOISE_SEEDS and "not market data" in BUNDLED_SYMBOLS[task.symbol]
        walk = noise_ohlcv(NOISE_SEEDS[task.symbol])["close"]
        assert np.allclose(full.to_numpy(), walk.to_numpy())
        log_returns = np.diff(np.log(walk.to_numpy()))
        # Driftless: the mean daily log return is within 3 standard errors of -sigma^2/2.
        se = log_returns.std() / np.sqrt(len(log_returns))
        assert abs(log_returns.mean() + log_returns.var() / 2) < 3 * se


# --- evaluate --------------------------------------------------------------------------


def _task(*criteria: Criterion) -> BenchmarkTask:
    return BenchmarkTask(
        task_id="t",
        symbol="sp500",
        start=date(2004, 1, 1),
        end=date(2009, 6, 30),
        regime="crash",
        objective="test",
        criteria=list(criteria),
    )


RISK = _task(
    Criterion(metric="sharpe", op=">=", value=0.5), Criterion(metric="trades", op=">=", value=3)
)


def _metrics(**values: float) -> BacktestMetrics:
    return BacktestMetrics.model_validate(values)


def test_success_meeting_every_criterion_passes() -> None:
    verdict = evaluate(RISK, "success", _metrics(sharpe=0.8, trades=5))
    assert verdict.passed and verdict.reasons == []


def test_a_value_exactly_at_its_threshold_passes() -> None:
    assert evaluate(RISK, "success", _metrics(sharpe=0.5, trades=3)).passed


def test_each_missed_criterion_is_a_readable_reason() -> None:
    verdict = evaluate(RISK, "success", _metrics(sharpe=0.21, trades=2))
    assert not verdict.passed
    assert verdict.reasons == ["sharpe 0.21 < 0.5 (needs >= 0.5)", "trades 2 < 3 (needs >= 3)"]


def test_a_failed_outcome_fails_even_with_good_numbers_and_says_so_first() -> None:
    verdict = evaluate(RISK, "failed_backtest_gate", _metrics(sharpe=0.9, trades=9))
    assert not verdict.passed and verdict.reasons == ["outcome failed_backtest_gate"]
    verdict = evaluate(RISK, "failed_backtest_gate", _metrics(sharpe=0.1, trades=9))
    assert verdict.reasons == ["outcome failed_backtest_gate", "sharpe 0.10 < 0.5 (needs >= 0.5)"]


def test_missing_outcome_or_metrics_fail() -> None:
    assert evaluate(RISK, None, None).reasons == ["outcome missing"]
    assert evaluate(RISK, "failed_design", None).reasons == ["outcome failed_design"]
    assert evaluate(RISK, "success", None).reasons == ["no out-of-sample metrics"]


def test_excess_return_and_upper_bounds() -> None:
    task = _task(
        Criterion(metric="excess_return", op=">=", value=0.0),
        Criterion(metric="max_drawdown", op="<=", value=0.12),
    )
    good = _metrics(total_return=-0.05, benchmark_return=-0.30, max_drawdown=0.10)
    assert evaluate(task, "success", good).passed
    bad = _metrics(total_return=0.10, benchmark_return=0.25, max_drawdown=0.1201)
    assert evaluate(task, "success", bad).reasons == [
        "excess_return -0.15 < 0 (needs >= 0)",
        "max_drawdown 0.1201 > 0.12 (needs <= 0.12)",
    ]


def test_non_finite_metric_fails_its_criterion() -> None:
    verdict = evaluate(RISK, "success", _metrics(sharpe=float("nan"), trades=4))
    assert not verdict.passed and verdict.reasons == ["sharpe nan (needs >= 0.5)"]


# --- noise tasks and the graded score ------------------------------------------------------

NOISE = BenchmarkTask(
    task_id="n",
    symbol="noise-a",
    start=date(2004, 1, 1),
    end=date(2009, 6, 30),
    regime="noise",
    objective="risk-adjusted",
    criteria=RISK.criteria,
)


def _gate(dsr: float, *, status: str = "failed", sharpe: float = 0.8) -> GateResult:
    """A statistical gate whose deflated Sharpe check measured ``dsr``."""
    return GateResult(
        gate="statistical",
        passed=dsr >= 0.95,
        checks=[
            GateCheck(name="min_trades", value=12, threshold=10, op=">=", passed=True),
            GateCheck(name="deflated_sharpe", value=dsr, threshold=0.95, op=">=",
                      passed=status == "passed", status=status),  # type: ignore[arg-type]
            GateCheck(name="sharpe_plausible", value=sharpe, threshold=4.0, op="<=",
                      passed=sharpe <= 4.0),
        ],
    )  # fmt: skip


def test_a_noise_task_expects_no_discovery_from_its_regime_alone() -> None:
    assert NOISE.expect == "no-discovery" and RISK.expect == "discovery"
    # A stored row has no expect column: the task reads back the same from its regime.
    stored = NOISE.model_dump(exclude={"expect"})
    assert BenchmarkTask.model_validate(stored) == NOISE
    with pytest.raises(ValueError, match="does not fit regime 'crash'"):
        BenchmarkTask.model_validate(RISK.model_dump() | {"expect": "no-discovery"})
    with pytest.raises(ValueError, match="does not fit regime 'noise'"):
        BenchmarkTask.model_validate(NOISE.model_dump() | {"expect": "discovery"})


def test_a_noise_task_passes_when_the_lab_judged_a_strategy_and_found_nothing() -> None:
    for outcome in ("failed_backtest_gate", "failed_training_gate", "failed_assessment"):
        assert evaluate(NOISE, outcome, _metrics(sharpe=0.9, trades=9)).passed
    found = evaluate(NOISE, "success", _metrics(sharpe=0.9, trades=9))
    assert not found.passed and found.reasons == [
        "outcome success on noise: a false discovery (expected none)"
    ]
    # Nothing judged is no verdict on the noise: an invalid design, broken training or cycle.
    for unjudged in ("failed_design", "failed_training", None):
        verdict = evaluate(NOISE, unjudged, None)
        assert not verdict.passed and "no strategy was judged" in verdict.reasons[0]


def test_a_noise_task_scores_one_minus_the_deflated_sharpe() -> None:
    assert task_score(NOISE, "failed_backtest_gate", _metrics(), _gate(0.3)) == pytest.approx(0.7)
    assert task_score(NOISE, "success", _metrics(), _gate(0.97, status="passed")) == (
        pytest.approx(0.03)
    )
    # Rejected before the backtest (the training gate): nothing looked like an edge.
    assert task_score(NOISE, "failed_training_gate", None, None) == 1.0
    # No strategy judged at all earns nothing, so breaking designs is no way to score.
    assert task_score(NOISE, "failed_design", None, None) == 0.0


def test_a_discovery_task_scores_the_deflated_sharpe_times_the_criteria_met() -> None:
    both = _metrics(sharpe=0.8, trades=5)
    half = _metrics(sharpe=0.8, trades=2)
    assert criteria_share(RISK, both) == 1.0 and criteria_share(RISK, half) == 0.5
    assert task_score(RISK, "failed_backtest_gate", both, _gate(0.6)) == pytest.approx(0.6)
    assert task_score(RISK, "failed_backtest_gate", half, _gate(0.6)) == pytest.approx(0.3)
    assert task_score(RISK, "success", both, _gate(0.99, status="passed")) == pytest.approx(0.99)
    # No iteration reached the backtest, or the check could not run: no evidence.
    assert task_score(RISK, "failed_training_gate", None, None) == 0.0
    assert task_score(RISK, "failed_backtest_gate", both, _gate(0.0, status="not_run")) == 0.0
    # An implausible Sharpe (a likely leak) is no evidence of a discovery.
    assert task_score(RISK, "failed_backtest_gate", both, _gate(1.0, sharpe=6.5)) == 0.0


def test_deflated_sharpe_reads_the_check_and_stays_in_the_unit_interval() -> None:
    assert deflated_sharpe(None) == 0.0
    assert deflated_sharpe(_gate(0.42)) == pytest.approx(0.42)
    assert deflated_sharpe(_gate(0.42, status="not_run")) == 0.0
    assert deflated_sharpe(GateResult(gate="statistical", passed=False)) == 0.0


def test_task_set_hash_ignores_order_and_is_16_hex() -> None:
    digest = task_set_hash(["b", "a", "c"])
    assert digest == task_set_hash(["c", "b", "a"]) and len(digest) == 16
    assert int(digest, 16) >= 0
    assert digest != task_set_hash(["a", "b"])


def test_window_is_inclusive_and_rejects_short_periods() -> None:
    frame = load_bundled("sp500")
    task = _task().model_copy(update={"start": date(2004, 1, 2), "end": date(2006, 12, 29)})
    part = window(frame, task)
    assert part.index[0] == pd.Timestamp("2004-01-02")
    assert part.index[-1] == pd.Timestamp("2006-12-29")
    short = task.model_copy(update={"end": date(2005, 6, 30)})
    with pytest.raises(BenchmarkWindowError, match=r"\d+ bars .* at least 500"):
        window(frame, short)


# --- malformed suite files -------------------------------------------------------------

HEAD = """
version = 1
[objectives.risk-adjusted]
criteria = [{ metric = "sharpe", op = ">=", value = 0.5 }]
"""
TASK = """
[[tasks]]
id = "{id}"
symbol = "sp500"
start = {start}
end = {end}
regime = "{regime}"
objective = "risk-adjusted"
"""


def _suite(*tasks: dict[str, str], head: str = HEAD) -> str:
    defaults = {"id": "a", "start": "2004-01-01", "end": "2009-06-30", "regime": "crash"}
    return head + "".join(TASK.format(**(defaults | t)) for t in tasks)


def test_a_valid_file_loads_from_a_path(tmp_path: Path) -> None:
    path = tmp_path / "suite.toml"
    path.write_text(_suite({"id": "a"}, {"id": "b", "regime": "recovery"}))
    suite = load_suite(path)
    assert [t.task_id for t in suite.tasks] == ["a", "b"]
    assert suite.tasks[0].criteria == [Criterion(metric="sharpe", op=">=", value=0.5)]


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_suite({"id": "a"}, {"id": "a"}), "duplicate task id 'a' (tasks 1 and 2)"),
        (_suite({"end": "2003-01-01"}), "task 1 (a): end 2003-01-01 must be after start"),
        (_suite({"end": "2004-01-01"}), "must be after start 2004-01-01"),
        (_suite({"regime": "bubble"}), "unknown regime 'bubble'; regimes: bust, boom"),
        (
            _suite({}, head=HEAD.replace("sharpe", "sharp")),
            "objective 'risk-adjusted': unknown metric 'sharp'; metrics: total_return",
        ),
        (_suite({}, head=HEAD.replace('">="', '">"')), "criterion on sharpe"),
        (_suite({}, head="version = 1\n"), "objective 'risk-adjusted' is not declared"),
        (_suite({"start": '"January"'}), "start must be a date like 2004-01-01"),
        (_suite({"id": "Bad Id"}), "id must be lower-case kebab-case"),
        (_suite({}).replace("version = 1", "version = 0"), "'version' must be a positive"),
        (HEAD, "no [[tasks]]"),
        ("version = 1\n[[tasks]\n", "not valid TOML"),
        (_suite({}) + 'colour = "red"\n', "task 1 (a): unknown key(s) colour"),
        (_suite({}).replace('regime = "crash"\n', ""), "task 1 (a): missing regime"),
        (_suite({}) + 'expect = "nothing"\n', "unknown expect 'nothing'"),
        (_suite({}) + 'expect = "no-discovery"\n', 'needs expect = "no-discovery"'),
        (_suite({"regime": "noise"}), "a task on synthetic noise (regime noise) needs"),
    ],
)
def test_malformed_files_get_a_clear_error(text: str, message: str) -> None:
    with pytest.raises(BenchmarkSuiteError) as caught:
        parse_suite(text, source="bad.toml")
    assert message in str(caught.value)
    assert str(caught.value).startswith("bad.toml: ")


def test_a_task_may_override_its_objectives_criteria() -> None:
    text = _suite({}) + 'criteria = [{ metric = "trades", op = ">=", value = 8 }]\n'
    (task,) = parse_suite(text).tasks
    assert task.criteria == [Criterion(metric="trades", op=">=", value=8)]
    bad = _suite({}) + 'criteria = [{ metric = "alpha", op = ">=", value = 1 }]\n'
    with pytest.raises(BenchmarkSuiteError, match="task 1 \\(a\\): unknown metric 'alpha'"):
        parse_suite(bad)


def test_a_missing_file_is_a_suite_error(tmp_path: Path) -> None:
    with pytest.raises(BenchmarkSuiteError, match="cannot read"):
        load_suite(tmp_path / "nope.toml")
