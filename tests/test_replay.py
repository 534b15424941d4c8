"""Replays the kept histories of representative cycles against today's workflow code.

A change that makes the workflow decide differently on replay (a new activity, a timer,
reordered steps) fails here, before it can break running cycles in production.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from temporalio import workflow
from temporalio.client import WorkflowHistory
from temporalio.contrib.pydantic import pydantic_data_converter
from temporalio.worker import Replayer

from stratlab.models.research import ResearchCycleInput, ResearchCycleResult, SessionStarted
from workflows.evaluate import EvaluateStrategyWorkflow
from workflows.optimization import OptimizationGenerationWorkflow
from workflows.paper import PaperTradingWorkflow
from workflows.regression import RegressionRunWorkflow
from workflows.research import ResearchCycleWorkflow
from workflows.review import PromptReviewWorkflow

WORKFLOWS = [
    ResearchCycleWorkflow,
    EvaluateStrategyWorkflow,
    RegressionRunWorkflow,
    OptimizationGenerationWorkflow,
    PromptReviewWorkflow,
    PaperTradingWorkflow,
]
HISTORIES = sorted((Path(__file__).parent / "histories").glob("*.json"))


def load(path: Path) -> WorkflowHistory:
    return WorkflowHistory.from_json(path.stem, json.loads(path.read_text()))


def test_representative_histories_are_kept() -> None:
    names = {p.stem for p in HISTORIES}
    assert {
        "research_success_rules",
        "research_failed_training_gate",
        "research_skipped_budget",
        "research_code_repaired",
        "regression_run",
        "optimization_generation",
        "prompt_review",
        "paper_trading_replay",
        "paper_trading_live",
        # before the holdout step existed (replayed through its patch) and after it
        "research_success_rules_pre_holdout",
        "research_success_code_pre_holdout",
        "evaluate_user_rules",
        "evaluate_user_lookahead",
    } <= names


@pytest.mark.parametrize("path", HISTORIES, ids=[p.stem for p in HISTORIES])
async def test_history_replays(path: Path) -> None:
    replayer = Replayer(workflows=WORKFLOWS, data_converter=pydantic_data_converter)
    await replayer.replay_workflow(load(path))


@workflow.defn(name="ResearchCycleWorkflow")
class DriftedResearchCycle(ResearchCycleWorkflow):
    """A deliberately non-deterministic edit: a timer before the first activity."""

    @workflow.run
    async def run(self, cycle: ResearchCycleInput) -> ResearchCycleResult:
        return await super().run(cycle)

    async def _start_session(self, cycle: ResearchCycleInput, session_id: str) -> SessionStarted:
        await workflow.sleep(1)
        return await super()._start_session(cycle, session_id)


async def test_a_nondeterministic_change_is_caught() -> None:
    path = next(p for p in HISTORIES if p.stem == "research_success_rules")
    replayer = Replayer(workflows=[DriftedResearchCycle], data_converter=pydantic_data_converter)
    with pytest.raises(workflow.NondeterminismError):
        await replayer.replay_workflow(load(path))
