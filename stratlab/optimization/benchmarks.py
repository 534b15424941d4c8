"""The benchmark suite: research tasks a prompt is measured on, and how a result is judged.

The packaged ``suite.toml`` lists tasks over the bundled real data (instrument x market
period x objective). Objectives are declared once under ``[objectives.<name>]`` with
their criteria; a task names one and may override its criteria. A task passes when its
research cycle ends ``success`` and every criterion holds on the test split's metrics.

``window`` cuts a task's market period out of a frame; the cycle then splits that window
by time (train / validation / test) exactly as it splits any data set.
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
from stratlab.models.research import BacktestMetrics

SUITE_RESOURCE = "suite.toml"
MIN_WINDOW_BARS = 500
EXCESS_RETURN = "excess_return"
REGIMES: tuple[str, ...] = ("bust", "boom", "crash", "recovery", "sideways")
KINDS: tuple[str, ...] = ("rules", "ml", "code")
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
    {"id", "symbol", "kind", "start", "end", "regime", "objective", "description", "criteria"}
)


class BenchmarkSuiteError(ValueError):
    """A suite file that cannot be used; the message names the file, task and problem."""


class BenchmarkWindowError(ValueError):
    """A task's market period holds too few bars of the given data."""


def load_suite(path: Path | None = None) -> BenchmarkSuite:
    """The suite in ``path``, or the packaged ``suite.toml`` when ``path`` is None."""
    if path is None:
        source = f"stratlab/optimization/{SUITE_RESOURCE}"
        text = resources.files("stratlab.optimization").joinpath(SUITE_RESOURCE).read_text("utf-8")
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
    """A criterion's metric read from test-split metrics (``excess_return`` is derived)."""
    if name == EXCESS_RETURN:
        return float(metrics.total_return - metrics.benchmark_return)
    if name not in CRITERION_METRICS:
        raise ValueError(f"unknown metric {name!r}; metrics: {', '.join(CRITERION_METRICS)}")
    return float(getattr(metrics, name))


def evaluate(
    task: BenchmarkTask, outcome: str | None, metrics: BacktestMetrics | None
) -> TaskVerdict:
    """Pass when the cycle ended ``success`` and every criterion holds on ``metrics``.

    A failed outcome is the first reason; the criteria are still checked when metrics
    exist (a backtest-gate failure has them), so the reasons say what was missed."""
    reasons = []
    if outcome != "success":
        reasons.append(f"outcome {outcome or 'missing'}")
    if metrics is None:
        if outcome == "success":
            reasons.append("no test metrics")
        return TaskVerdict(passed=False, reasons=reasons)
    reasons += [reason for c in task.criteria if (reason := _unmet(c, metrics)) is not None]
    return TaskVerdict(passed=not reasons, reasons=reasons)


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
