"""Regression runs: one prompt measured on benchmark tasks (an experiment), its per-task
results, racing against prod, and the run workflow's payloads."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from stratlab.models.llm import Role
from stratlab.models.optimization.benchmarks import BenchmarkTask
from stratlab.models.optimization.fitness import Fitness, OptimizableRole, Significance
from stratlab.models.research import AssessorVerdict, BacktestMetrics, GateResult, Outcome

ExperimentStatus = Literal["running", "completed", "stopped_budget", "raced_out", "failed"]


class TaskResult(BaseModel):
    """One task × rollout of an experiment: a row of ``experiment_results``."""

    experiment_id: str
    task_id: str
    rollout: int = 1
    prompt_id: str
    session_id: str | None = None
    passed: bool
    score: float = Field(0.0, description="graded task score in [0, 1]")
    outcome: Outcome | None = None
    reasons: list[str] = Field(default_factory=list)
    metrics: BacktestMetrics | None = Field(
        None, description="walk-forward out-of-sample metrics of the judged iteration"
    )
    tokens: int = 0
    latency_ms: float = 0.0
    cost_usd: float = 0.0
    created_at: datetime | None = None


class ExperimentRecord(BaseModel):
    """A row of ``experiments``: one prompt measured on one task set."""

    experiment_id: str
    prompt_id: str
    role: Role = "designer"
    generation: int | None = None
    task_ids: list[str] = Field(default_factory=list)
    task_set_hash: str = ""
    rollouts: int = 1
    status: ExperimentStatus = "running"
    fitness: Fitness | None = None
    stopped_reason: str | None = None
    workflow_id: str | None = None
    started_at: datetime | None = None
    finished_at: datetime | None = None


class RaceAgainst(BaseModel):
    """What a run races against (prod on the same task set): once the prompt is dominated
    with confidence, its run stops starting cycles (``stratlab.evolution.racing``)."""

    prompt_id: str
    scores: dict[str, float] = Field(description="mean graded score per task")
    mean_tokens: float
    mean_latency_ms: float
    min_tasks: int = Field(5, ge=1, description="tasks measured before it may stop")
    significance: Significance = 0.05


class RegressionRunInput(BaseModel):
    """Input of ``RegressionRunWorkflow``: measure one prompt on benchmark tasks."""

    prompt_id: str = Field(min_length=1, description="the prompt to measure (required)")
    role: OptimizableRole = "designer"
    task_ids: list[str] = Field(
        default_factory=list, description="empty: the suite's tasks on the optimizer's own data"
    )
    rollouts: int = Field(1, ge=1, le=10, description="cycles per task")
    experiment_id: str = Field("", description="empty: made by the workflow")
    generation: int | None = None
    max_parallel: int = Field(8, ge=1, le=64, description="research cycles at once")
    reuse: bool = Field(True, description="reuse a completed run of this prompt on these tasks")
    race: RaceAgainst | None = Field(
        None, description="stop early once dominated by this with confidence (racing)"
    )


class ExperimentPlan(BaseModel):
    """What ``begin_experiment`` found: a finished run to reuse, or the tasks to run."""

    experiment: ExperimentRecord
    reused: bool = False
    tasks: list[BenchmarkTask] = Field(default_factory=list)


class RecordTaskInput(BaseModel):
    experiment_id: str
    task_id: str
    rollout: int
    prompt_id: str
    role: OptimizableRole = "designer"
    session_id: str | None = None
    cycle_outcome: Outcome | None = None
    metrics: BacktestMetrics | None = None
    verdict: AssessorVerdict | None = None
    error: str | None = Field(None, description="why the cycle itself failed, if it did")
    gates: list[GateResult] = Field(
        default_factory=list, description="the seed gates (training, backtest) it reached"
    )
    statistical_gate: GateResult | None = Field(
        None, description="the judged iteration's statistical gate (its deflated Sharpe)"
    )
    training_run_id: str | None = Field(
        None, description="the judged iteration's fit, whose own trials deflate the score"
    )


class FinishExperimentInput(BaseModel):
    experiment_id: str
    stopped_reason: str | None = None
    raced_out: str | None = Field(None, description="why racing stopped the run early")
    saved: int = Field(0, ge=0, description="planned cycles racing did not start")


class RegressionRunResult(BaseModel):
    experiment_id: str
    prompt_id: str
    status: ExperimentStatus
    fitness: Fitness | None = None
    reused: bool = False
    stopped_reason: str | None = None
    raced_out: str | None = None
    saved: int = Field(0, description="planned cycles racing did not start")


class RegressionProgress(BaseModel):
    """Answer of the regression run's ``progress`` query."""

    done: int = Field(0, description="research cycles finished, failed ones included")
    planned: int = Field(
        0, description="tasks x rollouts; 0 until planned, and for a run that reused a measurement"
    )
    stopped: str | None = Field(None, description="why it stopped starting cycles early, if it did")
