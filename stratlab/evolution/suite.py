"""The benchmark suite file: which research tasks exist, and which set evolution measures.

The packaged ``suite.toml`` lists tasks over the bundled real data (instrument x market
period x objective) and a few over bundled synthetic noise. Objectives are declared once
under ``[objectives.<name>]`` with their criteria; a task names one and may override its
criteria. A suite that cannot be used fails here, before any cycle runs, with a message
that names the file, the task and the problem. How a task's result is judged and scored
lives in ``benchmarks``.
"""

from __future__ import annotations

import hashlib
import re
import tomllib
from collections.abc import Iterable, Mapping
from datetime import date
from importlib import resources
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from stratlab.evolution.benchmarks import CRITERION_METRICS
from stratlab.models.optimization import BenchmarkSuite, BenchmarkTask, Criterion
from stratlab.models.optimizer_slice import OPTIMIZER_SYMBOLS

SUITE_RESOURCE = "suite.toml"
REGIMES: tuple[str, ...] = ("bust", "boom", "crash", "recovery", "sideways", "noise", "planted")
KINDS: tuple[str, ...] = ("rules", "ml", "code")
EXPECTATIONS: tuple[str, ...] = ("discovery", "no-discovery")
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


def task_set_hash(task_ids: Iterable[str]) -> str:
    """Identifies a set of tasks: sha256 of the sorted ids joined by "," (16 hex chars)."""
    return hashlib.sha256(",".join(sorted(task_ids)).encode()).hexdigest()[:16]


def default_tasks(tasks: Iterable[BenchmarkTask]) -> list[BenchmarkTask]:
    """The task set prompt evolution measures by default: the tasks on the optimizer's own
    data (``stratlab.models.optimizer_slice``), which research cycles never choose on."""
    return [t for t in tasks if t.symbol in OPTIMIZER_SYMBOLS]
