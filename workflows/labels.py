"""What the Temporal UI says a lab workflow is: its static summary and details.

One builder per workflow type, used wherever the lab starts one (the ``stratlab`` CLI,
and parents starting children), as ``start_workflow(..., **research_labels(cycle))``.
The summary is the one line the UI's list and header show; the details are markdown.
Pure functions of the input, so they are safe in a workflow.
"""

from __future__ import annotations

from typing import TypedDict

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from stratlab.models.optimization import OptimizationInput, RegressionRunInput, ReviewInput
    from stratlab.models.paper import PaperTradingInput
    from stratlab.models.research import (
        DataWindow,
        EvaluateStrategyInput,
        ResearchCycleInput,
    )


class StartLabels(TypedDict):
    static_summary: str
    static_details: str


def research_labels(cycle: ResearchCycleInput) -> StartLabels:
    kind = cycle.kind or "rules or ml"
    details = [
        f"- up to {cycle.max_iterations} design rounds, stop refining below "
        f"{cycle.convergence_threshold:g} OOS Sharpe gained",
        f"- data: {_window(cycle.period)}",
        f"- budget: {cycle.budget_scope}"
        + (" · isolated" if cycle.isolated else "")
        + (" · blind" if cycle.blind else "")
        + ("" if cycle.assess else " · no assessment"),
    ]
    custom = [
        name
        for name, gate in (
            ("training", cycle.training_gate),
            ("backtest", cycle.backtest_gate),
            ("statistical", cycle.statistical_gate),
        )
        if gate is not None
    ]
    if custom:
        details.append(f"- custom gates: {', '.join(custom)}")
    return StartLabels(
        static_summary=f"research cycle: {kind} on {cycle.symbol} (trigger {cycle.trigger})",
        static_details="\n".join(details),
    )


def evaluate_labels(inp: EvaluateStrategyInput) -> StartLabels:
    spec = inp.spec
    name = f"{spec.name} ({spec.kind})" if spec else "no spec"
    symbol = inp.symbol or (spec.symbol if spec else "?")
    return StartLabels(
        static_summary=f"evaluate {name} on {symbol}",
        static_details=f"- a user's strategy through the lab's gates\n- data: "
        f"{_window(inp.period)}",
    )


def optimization_labels(inp: OptimizationInput) -> StartLabels:
    generation = "next" if inp.generation is None else str(inp.generation)
    campaign = f", {inp.generations} generations" if inp.generations > 1 else ""
    tasks = (
        f"{len(inp.task_ids)} fixed tasks"
        if inp.task_ids
        else f"{inp.targets} targets, {inp.controls} controls"
    )
    return StartLabels(
        static_summary=f"optimize {inp.role} prompts: generation {generation}{campaign}",
        static_details=f"- population {inp.population}, seed {inp.seed}, "
        f"{inp.meta_mutations} LLM mutations\n- tasks: {tasks} x {inp.rollouts} rollouts",
    )


def regression_labels(inp: RegressionRunInput, campaign_id: str = "") -> StartLabels:
    tasks = f"{len(inp.task_ids)} tasks" if inp.task_ids else "the optimizer's own tasks"
    generation = f"generation {inp.generation} " if inp.generation is not None else ""
    campaign = f" (campaign {campaign_id})" if campaign_id else ""
    return StartLabels(
        static_summary=f"measure {inp.role} prompt {inp.prompt_id} on {tasks} x {inp.rollouts}",
        static_details=f"- {generation}regression run{campaign}\n- at most "
        f"{inp.max_parallel} research cycles at once",
    )


def review_labels(inp: ReviewInput) -> StartLabels:
    generation = f" (generation {inp.generation} candidate)" if inp.generation is not None else ""
    return StartLabels(
        static_summary=f"review {inp.role} prompt {inp.prompt_id}{generation}",
        static_details='Send the signal "decide" with {"approve": true} or '
        '{"approve": false, "reason": "..."}, or run `stratlab prompts approve|reject`.',
    )


def paper_labels(inp: PaperTradingInput) -> StartLabels:
    symbols = ", ".join(inp.symbols)
    if inp.replay_from is not None:
        clock = f"replay {inp.replay_from} to {inp.replay_to or 'the end'}"
        pace = f"{inp.speed_seconds:g} s per bar"
    else:
        clock, pace = "live feed", f"polled every {inp.poll_seconds:g} s"
    return StartLabels(
        static_summary=f"paper {inp.strategy_id or 'strategy'}: {clock} on {symbols}",
        static_details=f"- {pace}\n- capital {inp.initial_capital:,.0f}"
        + (f"\n- stops after {inp.max_cycles} decisions" if inp.max_cycles else ""),
    )


def _window(period: DataWindow | None) -> str:
    return period.describe() if period is not None else "all bars"
