"""The benchmark suite: research tasks a prompt is measured on, and how a result is judged.

The packaged ``suite.toml`` lists tasks over the bundled real data (instrument x market
period x objective) and a few over bundled synthetic noise. Objectives are declared once
under ``[objectives.<name>]`` with their criteria; a task names one and may override its
criteria. A discovery task passes when its research cycle ends ``success`` and every
criterion holds on the walk-forward out-of-sample metrics of the development period; a
no-discovery task (noise) passes when the lab judged a strategy and did not call it a
discovery. Each result also gets a graded score in [0, 1] (:func:`task_score`), which is
what the optimizer climbs.

``window`` cuts a task's market period out of a frame; the cycle then splits that window
by time (development period and holdout) exactly as it splits any data set.
"""

from __future__ import annotations

import hashlib
import math
import re
import tomllib
from collections.abc import Iterable, Mapping
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

import pandas as pd
from pydantic import ValidationError

from stratlab.models.optimization import BenchmarkSuite, BenchmarkTask, Criterion, TaskVerdict
from stratlab.models.optimizer_slice import OPTIMIZER_SYMBOLS
from stratlab.models.research import BacktestMetrics, GateResult

SUITE_RESOURCE = "suite.toml"
MIN_WINDOW_BARS = 500
EXCESS_RETURN = "excess_return"
REGIMES: tuple[str, ...] = ("bust", "boom", "crash", "recovery", "sideways", "noise", "planted")
KINDS: tuple[str, ...] = ("rules", "ml", "code")
EXPECTATIONS: tuple[str, ...] = ("discovery", "no-discovery")
# Outcomes of a cycle that never had a strategy for the gates to judge: the design was
# invalid or training broke. On noise that is no evidence of anything.
UNJUDGED_OUTCOMES: frozenset[str] = frozenset({"failed_design", "failed_training"})
# benchmark_return, bars, start and end describe the data, not the strategy: no criterion.
CRITERION_METRICS: tuple[str, ...] = (
    "total_return",
    "cagr",
    "sharpe",
    "sortino",
    "max_drawdown",
    "win_rate",
    "trades",
    "profit_factor",
    "exposure",
    EXCESS_RETURN,
)
_TASK_ID = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_TASK_KEYS = frozenset(
    {
        "id",
        "symbol",
        "kind",
        "start",
        "end",
        "regime",
        "objective",
        "description",
        "criteria",
        "expect",
    }
)


class BenchmarkSuiteError(ValueError):
    """A suite file that cannot be used; the message names the file, task and problem."""


class BenchmarkWindowError(ValueError):
    """A task's market period holds too few bars of the given data."""


def load_suite(path: Path | None = None) -> BenchmarkSuite:
    """The suite in ``path``, or the packaged ``suite.toml`` when ``path`` is None."""
    if path is None:
        source = f"stratlab/evolution/{SUITE_RESOURCE}"
        text = resources.files("stratlab.evolution").joinpath(SUITE_RESOURCE).read_text("utf-8")
    else:
        source = str(path)
        try:
            text = path.read_text("utf-8")
        except OSError as err:
            raise BenchmarkSuiteError(f"{source}: cannot read: {err.strerror or err}") from err
    return parse_suite(text, source=source)


def parse_suite(text: str, *, source: str = "suite.toml") -> BenchmarkSuite:
    """Parse suite TOML text; ``source`` only names the file in error messages."""
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as err:
        raise BenchmarkSuiteError(f"{source}: not valid TOML: {err}") from err
    version = data.get("version")
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise BenchmarkSuiteError(f"{source}: 'version' must be a positive integer")
    objectives = _objectives(data.get("objectives", {}), source)
    raw_tasks = data.get("tasks")
    if not isinstance(raw_tasks, list) or not raw_tasks:
        raise BenchmarkSuiteError(f"{source}: no [[tasks]]")
    tasks: list[BenchmarkTask] = []
    seen: dict[str, int] = {}
    for number, raw in enumerate(raw_tasks, start=1):
        task = _task(raw, number, version, objectives, source)
        if task.task_id in seen:
            raise BenchmarkSuiteError(
                f"{source}: duplicate task id {task.task_id!r} (tasks {seen[task.task_id]} "
                f"and {number})"
            )
        seen[task.task_id] = number
        tasks.append(task)
    return BenchmarkSuite(version=version, tasks=tasks)


def _objectives(raw: Any, source: str) -> dict[str, list[Criterion]]:
    if not isinstance(raw, Mapping):
        raise BenchmarkSuiteError(f"{source}: [objectives] must be a table of objectives")
    out = {}
    for name, table in raw.items():
        where = f"{source}: objective {name!r}"
        if not isinstance(table, Mapping) or "criteria" not in table:
            raise BenchmarkSuiteError(f"{where}: needs a 'criteria' list")
        unknown = sorted(set(table) - {"criteria", "description"})
        if unknown:
            raise BenchmarkSuiteError(
                f"{where}: unknown key(s) {', '.join(unknown)}; keys: criteria, description"
            )
        out[name] = _criteria(table["criteria"], where)
    return out


def _task(
    raw: Any,
    number: int,
    version: int,
    objectives: Mapping[str, list[Criterion]],
    source: str,
) -> BenchmarkTask:
    if not isinstance(raw, Mapping):
        raise BenchmarkSuiteError(f"{source}: task {number} is not a table")
    task_id = raw.get("id")
    where = f"{source}: task {number}" + (f" ({task_id})" if isinstance(task_id, str) else "")
    _check_task_keys(raw, where)
    start, end = _date(raw["start"], "start", where), _date(raw["end"], "end", where)
    if end <= start:
        raise BenchmarkSuiteError(f"{where}: end {end} must be after start {start}")
    objective = raw["objective"]
    if "criteria" in raw:
        criteria = _criteria(raw["criteria"], where)
    elif objective in objectives:
        criteria = objectives[objective]
    else:
        known = ", ".join(sorted(objectives)) or "none declared"
        raise BenchmarkSuiteError(
            f"{where}: objective {objective!r} is not declared under [objectives] and the "
            f"task has no criteria of its own; objectives: {known}"
        )
    try:
        return BenchmarkTask(
            task_id=task_id,
            suite_version=version,
            symbol=raw["symbol"],
            kind=raw.get("kind"),
            start=start,
            end=end,
            regime=raw["regime"],
            objective=objective,
            description=raw.get("description", ""),
            criteria=criteria,
            expect=raw.get("expect", "discovery"),
        )
    except ValidationError as err:
        raise BenchmarkSuiteError(f"{where}: {_first_error(err)}") from err


def _check_task_keys(raw: Mapping[str, Any], where: str) -> None:
    """Known keys only, the required ones present, and id, regime and kind well formed."""
    unknown = sorted(set(raw) - _TASK_KEYS)
    if unknown:
        raise BenchmarkSuiteError(
            f"{where}: unknown key(s) {', '.join(unknown)}; keys: {', '.join(sorted(_TASK_KEYS))}"
        )
    required = ("id", "symbol", "start", "end", "regime", "objective")
    missing = [key for key in required if key not in raw]
    if missing:
        raise BenchmarkSuiteError(f"{where}: missing {', '.join(missing)}")
    if not isinstance(raw["id"], str) or not _TASK_ID.match(raw["id"]):
        raise BenchmarkSuiteError(f"{where}: id must be lower-case kebab-case, got {raw['id']!r}")
    if raw["regime"] not in REGIMES:
        raise BenchmarkSuiteError(
            f"{where}: unknown regime {raw['regime']!r}; regimes: {', '.join(REGIMES)}"
        )
    kind = raw.get("kind")
    if kind is not None and kind not in KINDS:
        raise BenchmarkSuiteError(f"{where}: unknown kind {kind!r}; kinds: {', '.join(KINDS)}")
    expect = raw.get("expect", "discovery")
    if expect not in EXPECTATIONS:
        raise BenchmarkSuiteError(
            f"{where}: unknown expect {expect!r}; expectations: {', '.join(EXPECTATIONS)}"
        )
    # Said in the file, not only implied by the regime: a reader sees which tasks invert.
    if (raw["regime"] == "noise") != (expect == "no-discovery"):
        raise BenchmarkSuiteError(
            f"{where}: a task on synthetic noise (regime noise) needs expect = "
            f'"no-discovery", and only such a task may have it'
        )


def _criteria(raw: Any, where: str) -> list[Criterion]:
    if not isinstance(raw, list) or not raw:
        raise BenchmarkSuiteError(f"{where}: criteria must be a non-empty list")
    out = []
    for item in raw:
        if not isinstance(item, Mapping):
            raise BenchmarkSuiteError(f"{where}: a criterion must be a table, got {item!r}")
        metric = item.get("metric")
        if metric not in CRITERION_METRICS:
            raise BenchmarkSuiteError(
                f"{where}: unknown metric {metric!r}; metrics: {', '.join(CRITERION_METRICS)}"
            )
        try:
            out.append(Criterion.model_validate(dict(item)))
        except ValidationError as err:
            raise BenchmarkSuiteError(
                f"{where}: criterion on {metric}: {_first_error(err)}"
            ) from err
    return out


def _date(value: Any, key: str, where: str) -> date:
    # TOML's bare dates arrive as date; quoted ISO strings are accepted too.
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        try:
            return date.fromisoformat(value)
        except ValueError:
            pass
    raise BenchmarkSuiteError(f"{where}: {key} must be a date like 2004-01-01, got {value!r}")


def _first_error(err: ValidationError) -> str:
    first = err.errors()[0]
    location = ".".join(str(part) for part in first["loc"])
    return f"{location}: {first['msg']}" if location else first["msg"]


# --- judging ---------------------------------------------------------------------------


def metric_value(metrics: BacktestMetrics, name: str) -> float:
    """A criterion's metric read from out-of-sample metrics (``excess_return`` is derived)."""
    if name == EXCESS_RETURN:
        return float(metrics.total_return - metrics.benchmark_return)
    if name not in CRITERION_METRICS:
        raise ValueError(f"unknown metric {name!r}; metrics: {', '.join(CRITERION_METRICS)}")
    return float(getattr(metrics, name))


def evaluate(
    task: BenchmarkTask, outcome: str | None, metrics: BacktestMetrics | None
) -> TaskVerdict:
    """Whether the cycle passed the task (``score`` is left to :func:`task_score`).

    A discovery task passes when the cycle ended ``success`` and every criterion holds on
    ``metrics``. A failed outcome is the first reason; the criteria are still checked
    when metrics exist (a backtest-gate failure has them), so the reasons say what was
    missed. A no-discovery task (noise) passes when the lab judged a strategy and did not
    call it a discovery: any outcome but ``success``, except those that had no strategy
    to judge (an invalid design, broken training) and a cycle that broke."""
    if task.expect == "no-discovery":
        return _evaluate_noise(outcome)
    reasons = []
    if outcome != "success":
        reasons.append(f"outcome {outcome or 'missing'}")
    if metrics is None:
        if outcome == "success":
            reasons.append("no out-of-sample metrics")
        return TaskVerdict(passed=False, reasons=reasons)
    reasons += [reason for c in task.criteria if (reason := _unmet(c, metrics)) is not None]
    return TaskVerdict(passed=not reasons, reasons=reasons)


def _judged(outcome: str | None) -> bool:
    """The cycle had a strategy for the gates to judge (it did not break or get skipped)."""
    return outcome is not None and outcome not in UNJUDGED_OUTCOMES | {"skipped_budget"}


def _evaluate_noise(outcome: str | None) -> TaskVerdict:
    if outcome == "success":
        return TaskVerdict(
            passed=False, reasons=["outcome success on noise: a false discovery (expected none)"]
        )
    if not _judged(outcome):
        return TaskVerdict(
            passed=False,
            reasons=[f"outcome {outcome or 'missing'}: no strategy was judged on the noise"],
        )
    return TaskVerdict(passed=True)


def deflated_sharpe(gate: GateResult | None) -> float:
    """The deflated Sharpe probability a statistical gate measured, in [0, 1]; 0 when
    there is no gate or its ``deflated_sharpe`` check did not run."""
    if gate is None:
        return 0.0
    check = next((c for c in gate.checks if c.name == "deflated_sharpe"), None)
    if check is None or check.status == "not_run":
        return 0.0
    return min(1.0, max(0.0, float(check.value)))


def _implausible(gate: GateResult | None) -> bool:
    """The gate flagged the Sharpe as too high to be real (usually a leak)."""
    return gate is not None and any(
        c.name == "sharpe_plausible" and c.status == "failed" for c in gate.checks
    )


def criteria_share(task: BenchmarkTask, metrics: BacktestMetrics | None) -> float:
    """The share of the task's criteria that hold on ``metrics`` (0 without metrics)."""
    if metrics is None or not task.criteria:
        return 0.0
    return sum(_unmet(c, metrics) is None for c in task.criteria) / len(task.criteria)


def task_score(
    task: BenchmarkTask,
    outcome: str | None,
    metrics: BacktestMetrics | None,
    statistical_gate: GateResult | None,
) -> float:
    """The graded score in [0, 1] of one cycle on ``task``: what the optimizer climbs.

    With ``dsr`` the deflated Sharpe probability of the judged iteration (the
    ``deflated_sharpe`` check of ``statistical_gate``; 0 when no iteration reached the
    backtest step or the check could not run)::

        discovery:     score = dsr × (criteria holding on the metrics / criteria)
        no-discovery:  score = 1 − dsr   (0 when no strategy was judged)

    Why this: a pass under honest gates needs dsr ≥ 0.95, so the share of tasks passed is
    near zero for every prompt and selection has nothing to climb; dsr grows smoothly
    with the evidence a strategy has an edge beyond what the lab's trials would produce
    by luck, so prompts that come closer score higher. It is a probability on every task
    whatever its market or criteria, so scores are comparable across tasks and their
    mean is meaningful. It comes from walk-forward out-of-sample returns of the
    development period, like ``metrics``, never from the holdout. On noise there is no
    edge to find, so the less the result looks like one, the better; a design that never
    reached the gates proved nothing either way and earns nothing (else breaking designs
    would be a way to score on noise). A Sharpe flagged as implausible (a likely leak)
    is no evidence for a discovery. The regression run passes the gate of the fit judged
    against its own trials (``experiments.own_trials_gate``), so the score does not
    depend on how many evaluations the optimizer made before this one.
    """
    dsr = deflated_sharpe(statistical_gate)
    if task.expect == "no-discovery":
        return 1.0 - dsr if _judged(outcome) else 0.0
    if _implausible(statistical_gate):
        return 0.0
    return dsr * criteria_share(task, metrics)


def _unmet(criterion: Criterion, metrics: BacktestMetrics) -> str | None:
    """None when the criterion holds (a value AT the threshold holds), else the reason."""
    value = metric_value(metrics, criterion.metric)
    needs = f"needs {criterion.op} {criterion.value:g}"
    if not math.isfinite(value):
        return f"{criterion.metric} {value} ({needs})"
    holds = value >= criterion.value if criterion.op == ">=" else value <= criterion.value
    if holds:
        return None
    sign = "<" if criterion.op == ">=" else ">"
    return (
        f"{criterion.metric} {_shown(value, criterion.value)} {sign} {criterion.value:g} ({needs})"
    )


def _shown(value: float, threshold: float) -> str:
    """The value with enough digits to differ visibly from the threshold it missed."""
    if float(value).is_integer() and abs(value) < 1e9:
        return str(int(value))
    for digits in range(2, 8):
        text = f"{value:.{digits}f}"
        if float(text) != float(f"{threshold:.{digits}f}"):
            return text
    return repr(value)


def task_set_hash(task_ids: Iterable[str]) -> str:
    """Identifies a set of tasks: sha256 of the sorted ids joined by "," (16 hex chars)."""
    return hashlib.sha256(",".join(sorted(task_ids)).encode()).hexdigest()[:16]


def default_tasks(tasks: Iterable[BenchmarkTask]) -> list[BenchmarkTask]:
    """The task set prompt evolution measures by default: the tasks on the optimizer's own
    data (``stratlab.models.optimizer_slice``), which research cycles never choose on."""
    return [t for t in tasks if t.symbol in OPTIMIZER_SYMBOLS]


def window(frame: pd.DataFrame, task: BenchmarkTask) -> pd.DataFrame:
    """The rows of ``frame`` from ``task.start`` to ``task.end`` (both days included)."""
    index = pd.DatetimeIndex(frame.index)
    start = pd.Timestamp(task.start)
    end = pd.Timestamp(task.end) + pd.Timedelta(days=1)  # the whole end day, whatever the time
    part = frame.loc[(index >= start) & (index < end)]
    if len(part) < MIN_WINDOW_BARS:
        raise BenchmarkWindowError(
            f"task {task.task_id}: {len(part)} bars of {task.symbol} between {task.start} and "
            f"{task.end}; a benchmark window needs at least {MIN_WINDOW_BARS}"
        )
    return part
