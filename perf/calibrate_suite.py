"""Calibration of the benchmark suite: does it tell designer prompts apart?

Runs every task of the suite in-process (no Temporal, no database) for the default
designer prompt and for the default plus each mutable designer directive added as an
instruction line under "## Instructions" (the edit the offline mutator makes, through the
same helper), with the offline provider, plus two control lines that no directive
matches: any edit re-seeds the offline designer, and the controls show how much a
variant differs by that alone. Each run is one research iteration made of the
cycle's own library calls: the designer context of ``stratlab.research.designer``, the
offline provider's answer parsed and validated as ``Designer._accept`` does (one repair
round with the problem, as ``BudgetedLlm.ask`` does), training as
``stratlab.research.training`` does, the training gate, the test-split backtest as
``stratlab.research.backtesting`` does, the backtest gate, then ``evaluate``. Runs are
isolated, as regression runs are: no recent strategies and no skills in the prompt.

A benchmark, not a test: it prints a table and asserts nothing.

    .venv/bin/python perf/calibrate_suite.py                   # every task, every variant
    .venv/bin/python perf/calibrate_suite.py --verbose --variants default,stop_loss \
        --tasks sp500-gfc-crash-capital-preservation,nasdaq-late-boom-risk-adjusted
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import statistics
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stratlab.backtest.gates import backtest_gate, training_gate
from stratlab.backtest.runner import BacktestRun, backtest_rules, backtest_test_split
from stratlab.config import Settings
from stratlab.llm.offline import DIRECTIVES, OfflineProvider
from stratlab.llm.offline.inspect import add_instruction
from stratlab.llm.parsing import MalformedOutputError, parse_structured
from stratlab.llm.prompts import DEFAULT_PROMPTS, DesignerContext, render_prompt
from stratlab.market.datasets import BUNDLED_SYMBOLS, load_bundled
from stratlab.market.indicators import describe_indicators
from stratlab.market.splits import Splits, split_by_time
from stratlab.models.llm import LlmRequest
from stratlab.models.optimization import BenchmarkTask
from stratlab.models.research import BacktestMetrics, GateResult, StrategySpec, TrainingReport
from stratlab.optimization.benchmarks import evaluate, load_suite, window
from stratlab.research.designer import MAX_ATTEMPTS, summarise_train_split
from stratlab.research.llm_calls import _repair
from stratlab.research.training import costs_from
from stratlab.runtime import numba_cache_env
from stratlab.strategies.fitting import fit_rules
from stratlab.strategies.ml import MlTrainer, ml_signals
from stratlab.strategies.validation import StrategyValidationError, validate_spec

DEFAULT = "default"
# Controls: instruction lines no directive matches. Any edit of the prompt re-seeds the
# offline designer, so their pass rates show how much a variant differs by that alone.
CONTROLS = {
    "control_a": "Read the data summary carefully.",
    "control_b": "Think step by step before you answer.",
}


@dataclass(frozen=True)
class Variant:
    name: str
    system: str
    template: str


@dataclass(frozen=True)
class Run:
    passed: bool
    outcome: str
    reasons: list[str]
    metrics: BacktestMetrics | None
    tokens: int
    seconds: float
    spec_name: str = ""


def variants(names: Sequence[str] | None) -> list[Variant]:
    prompt = DEFAULT_PROMPTS["designer"]
    out = [Variant(DEFAULT, prompt.system, prompt.content)]
    for directive in DIRECTIVES:
        if not directive.mutable or "designer" not in directive.roles:
            continue
        phrase = directive.phrases[0]
        line = f"{phrase[0].upper()}{phrase[1:]}."
        out.append(Variant(directive.key, prompt.system, add_instruction(prompt.content, line)))
    for name, line in CONTROLS.items():
        out.append(Variant(name, prompt.system, add_instruction(prompt.content, line)))
    return [v for v in out if names is None or v.name in names]


def run_task(task: BenchmarkTask, variant: Variant, settings: Settings) -> Run:
    started = time.perf_counter()
    splits = split_by_time(
        window(load_bundled(task.symbol), task),
        train=settings.train_fraction,
        validation=settings.validation_fraction,
    )
    spec, tokens, error = _design(task, variant, splits, settings)
    if spec is None:
        return _finish(task, "failed_design", None, tokens, started, error)
    try:
        report, model = _train(task, spec, splits, settings)
    except (ValueError, ArithmeticError) as err:
        return _finish(task, "failed_training", None, tokens, started, str(err), spec.name)
    gate = training_gate(report, settings.training_gate)
    if not gate.passed:
        why = _gate_text(gate)
        return _finish(task, "failed_training_gate", None, tokens, started, why, spec.name)
    try:
        run = _backtest(spec, report, model, splits, settings)
    except (ValueError, ArithmeticError) as err:
        return _finish(task, "failed_backtest", None, tokens, started, str(err), spec.name)
    gate = backtest_gate(run.metrics, settings.backtest_gate)
    outcome = "success" if gate.passed else "failed_backtest_gate"
    return _finish(task, outcome, run.metrics, tokens, started, _gate_text(gate), spec.name)


def _gate_text(gate: GateResult) -> str:
    """The failed checks, worded as the cycle's failure feedback words them."""
    return "; ".join(
        f"{gate.gate} gate: {c.name} was {c.value:.3f}, needs {c.op} {c.threshold:g}"
        for c in gate.failures()
    )


def _design(
    task: BenchmarkTask, variant: Variant, splits: Splits, settings: Settings
) -> tuple[StrategySpec | None, int, str]:
    """Designer.design without the database: same context, same acceptance, one repair."""
    context = DesignerContext(
        symbol=task.symbol,
        kind=task.kind or "any",
        iteration=1,
        max_iterations=1,
        indicator_catalogue=describe_indicators(),
        data_summary=summarise_train_split(splits),
    )
    request = LlmRequest(
        role="designer",
        system=variant.system,
        prompt=render_prompt(variant.template, context),
        schema_name="StrategySpec",
        json_schema=StrategySpec.model_json_schema(),
        max_output_tokens=settings.max_output_tokens,
    )
    provider, tokens, problem = OfflineProvider(settings), 0, ""
    for _ in range(MAX_ATTEMPTS):
        response = asyncio.run(provider.complete(request))
        tokens += response.input_tokens + response.output_tokens
        try:
            return _accept(response.text, task, settings.max_grid_size), tokens, ""
        except (MalformedOutputError, StrategyValidationError) as err:
            problem = str(err)
            request = _repair(request, response.text, problem)
    return None, tokens, problem


def _accept(text: str, task: BenchmarkTask, max_grid_size: int) -> StrategySpec:
    """Designer._accept: the cycle's symbol, the asked kind, a valid spec."""
    spec = parse_structured(text, StrategySpec).model_copy(update={"symbol": task.symbol})
    if task.kind is not None and spec.kind != task.kind:
        raise StrategyValidationError(
            [f"this cycle asks for kind {task.kind!r}, the answer has kind {spec.kind!r}"]
        )
    validate_spec(spec, max_grid_size=max_grid_size, known_symbols=BUNDLED_SYMBOLS)
    return spec


def _train(
    task: BenchmarkTask, spec: StrategySpec, splits: Splits, settings: Settings
) -> tuple[TrainingReport, bytes | None]:
    if spec.kind == "ml":
        # A fixed seed per task, where Trainer derives one from the training run's id.
        seed = int(hashlib.sha256(task.task_id.encode()).hexdigest()[:8], 16)
        trainer = MlTrainer(spec, splits, seed=seed)
        while not trainer.done:
            trainer.train_epoch()
        return trainer.report(), trainer.model_blob()
    if spec.kind != "rules":
        raise ValueError(f"calibration runs rules and ml tasks, not kind {spec.kind!r}")
    costs = costs_from(settings)
    return fit_rules(spec, splits, costs=costs, max_grid_size=settings.max_grid_size), None


def _backtest(
    spec: StrategySpec,
    report: TrainingReport,
    model: bytes | None,
    splits: Splits,
    settings: Settings,
) -> BacktestRun:
    """Backtester._run: the held-out test split, once, with the parameters chosen."""
    costs = costs_from(settings)
    if spec.kind == "ml":
        assert model is not None
        entries, exits = ml_signals(spec, model, splits.through("test"))
        return backtest_test_split(spec, splits, entries, exits, costs=costs)
    return backtest_rules(spec, dict(report.best_params), splits, costs=costs)


def _finish(
    task: BenchmarkTask,
    outcome: str,
    metrics: BacktestMetrics | None,
    tokens: int,
    started: float,
    error: str,
    spec_name: str = "",
) -> Run:
    verdict = evaluate(task, outcome, metrics)
    reasons = verdict.reasons + ([error[:120]] if error else [])
    return Run(
        passed=verdict.passed,
        outcome=outcome,
        reasons=reasons,
        metrics=metrics,
        tokens=tokens,
        seconds=time.perf_counter() - started,
        spec_name=spec_name,
    )


# --- report ------------------------------------------------------------------------------


def print_table(
    tasks: list[BenchmarkTask], names: list[str], runs: dict[tuple[str, str], Run]
) -> None:
    short = [_abbrev(name) for name in names]
    width = max(len(t.task_id) for t in tasks)
    print(f"{'task':<{width}} {'kind':<5} " + " ".join(f"{s:>4}" for s in short) + "   s/run")
    for task in tasks:
        cells = []
        for name in names:
            run = runs[(task.task_id, name)]
            cells.append(f"{'PASS' if run.passed else '.':>4}")
        seconds = statistics.mean(runs[(task.task_id, n)].seconds for n in names)
        print(
            f"{task.task_id:<{width}} {task.kind or 'any':<5} "
            + " ".join(cells)
            + f"   {seconds:5.2f}"
        )
    print()
    default = (
        {t.task_id for t in tasks if runs[(t.task_id, DEFAULT)].passed}
        if DEFAULT in names
        else set()
    )
    print(f"{'variant':<18} {'pass rate':>9} {'passed':>7} {'new vs default':>15} {'tokens':>7}")
    for name in names:
        passed = {t.task_id for t in tasks if runs[(t.task_id, name)].passed}
        tokens = statistics.mean(runs[(t.task_id, name)].tokens for t in tasks)
        new = len(passed - default) if name != DEFAULT else 0
        print(
            f"{name:<18} {len(passed) / len(tasks):>9.0%} {len(passed):>4}/{len(tasks):<2} "
            f"{new:>15} {tokens:>7.0f}"
        )
    if DEFAULT in names:
        print()
        print("tasks some variant passes but the default fails:")
        for task in tasks:
            if task.task_id in default:
                continue
            winners = [n for n in names if runs[(task.task_id, n)].passed]
            if winners:
                print(f"  {task.task_id}: {', '.join(winners)}")
        print()
        print("why the default fails:")
        for task in tasks:
            run = runs[(task.task_id, DEFAULT)]
            if not run.passed:
                print(f"  {task.task_id}: {'; '.join(run.reasons)}")
    all_seconds = [run.seconds for run in runs.values()]
    print()
    print(
        f"{len(all_seconds)} runs, {statistics.mean(all_seconds):.2f} s per task run on average "
        f"(median {statistics.median(all_seconds):.2f}, max {max(all_seconds):.2f})"
    )


def _abbrev(name: str) -> str:
    if name == DEFAULT or name in CONTROLS:
        return name[:4] if name == DEFAULT else f"ct{name[-1]}"
    return "".join(p[:2] for p in name.split("_"))[:4]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--suite", type=Path, help="a suite file (default: the packaged one)")
    parser.add_argument("--tasks", help="comma-separated task ids (default: all)")
    parser.add_argument("--variants", help="comma-separated variant names (default: all)")
    parser.add_argument("--verbose", action="store_true", help="one line per run as it ends")
    args = parser.parse_args()
    numba_cache_env(Settings.from_env())  # the lab's JIT cache: later runs skip the compile
    settings = Settings()
    suite = load_suite(args.suite)
    wanted = set(args.tasks.split(",")) if args.tasks else None
    tasks = [t for t in suite.tasks if wanted is None or t.task_id in wanted]
    chosen = variants(args.variants.split(",") if args.variants else None)
    legend = ", ".join(f"{_abbrev(v.name)}={v.name}" for v in chosen)
    print(f"suite v{suite.version}: {len(tasks)} tasks x {len(chosen)} variants ({legend})\n")
    runs: dict[tuple[str, str], Run] = {}
    for task in tasks:
        for variant in chosen:
            run = run_task(task, variant, settings)
            runs[(task.task_id, variant.name)] = run
            if args.verbose:
                m = run.metrics
                numbers = (
                    f"sharpe {m.sharpe:.2f} ret {m.total_return:+.1%} bh {m.benchmark_return:+.1%} "
                    f"dd {m.max_drawdown:.1%} trades {m.trades} win {m.win_rate:.0%}"
                    if m
                    else ""
                )
                print(
                    f"{task.task_id:<44} {variant.name:<18} {'PASS' if run.passed else 'fail'} "
                    f"{run.outcome:<22} {run.spec_name:<34} {numbers}",
                    flush=True,
                )
    print()
    print_table(tasks, [v.name for v in chosen], runs)


if __name__ == "__main__":
    main()
