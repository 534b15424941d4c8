"""Regression runs as Langfuse experiment runs (seed 003: each mutation is an experiment
run in Langfuse, scored from its results and its traces' cost and latency).

When a regression run finishes, ``ExperimentService`` hands it to ``LangfuseExperiments``.
The benchmark tasks are a Langfuse dataset (``stratlab-benchmarks``, one item per task:
input the task definition, expected output its criteria), so every run of every prompt is
an experiment on the same items and Langfuse compares them side by side. The run itself
goes through the SDK's ``run_experiment`` with a task function that returns the result
the lab already measured: the cycles ran in Temporal, not here. Each item is scored with
success (0/1), tokens, cost and latency; the run with the fitness the lab stored.
Publishing runs on the Langfuse sink's thread, so a slow or absent Langfuse never delays
or fails the run: it costs a warning in the log.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import structlog

from stratlab.config import Settings
from stratlab.models.optimization import BenchmarkTask, ExperimentRecord, Fitness, TaskResult
from stratlab.models.prompts import PromptRecord
from stratlab.telemetry.langfuse import LangfuseSink, langfuse_sink

if TYPE_CHECKING:
    from langfuse import Evaluation
    from langfuse.api import DatasetItem
    from langfuse.experiment import ExperimentItem, ExperimentItemResult, RunEvaluatorFunction

log = structlog.get_logger(__name__)

DATASET = "stratlab-benchmarks"


def langfuse_experiments(settings: Settings) -> LangfuseExperiments | None:
    """The publisher for an orchestrator worker, None when Langfuse is off."""
    sink = langfuse_sink(settings)
    return LangfuseExperiments(sink) if sink else None


class LangfuseExperiments:
    """Publishes finished regression runs as Langfuse experiment runs (an
    ``ExperimentPublisher``): one item per task and rollout on the benchmark dataset."""

    def __init__(self, sink: LangfuseSink) -> None:
        self._sink = sink
        self._published: set[str] = set()
        self._items: dict[str, DatasetItem] = {}  # task id -> upserted dataset item
        self._dataset_ready = False

    async def publish(
        self,
        experiment: ExperimentRecord,
        tasks: Sequence[BenchmarkTask],
        results: Sequence[TaskResult],
        prompt: PromptRecord | None,
    ) -> None:
        """Queue the run's publication and return: it happens on the sink's thread. A
        retried finish of a run already published by this process is not sent twice."""
        if experiment.experiment_id in self._published or not results:
            return
        self._published.add(experiment.experiment_id)
        run = _Run(experiment, list(tasks), list(results), prompt)
        self._sink.in_background(
            lambda: self._publish(run), what=f"experiment {experiment.experiment_id}"
        )

    def _publish(self, run: _Run) -> None:
        items = self._dataset_items(run.tasks)
        queues: dict[str, deque[TaskResult]] = {}
        for result in sorted(run.results, key=lambda r: (r.task_id, r.rollout)):
            queues.setdefault(items[result.task_id].id, deque()).append(result)

        def task(*, item: ExperimentItem, **_: dict[str, Any]) -> dict[str, Any]:
            # The cycle already ran in Temporal and was judged by the store; this only
            # hands its measured result to the SDK for the item's trace and scores.
            result = queues[getattr(item, "id", "")].popleft()
            if result.session_id:
                _tag_trace_session(result.session_id)
            return _measured(result)

        experiment, fitness = run.experiment, run.experiment.fitness
        data: list[DatasetItem] = [items[r.task_id] for r in run.results]
        self._sink.client.run_experiment(
            name=f"stratlab {experiment.role} regression",
            run_name=run.name,
            description=run.description,
            data=data,
            task=task,
            evaluators=[_item_scores],
            run_evaluators=[_fitness_scores(fitness)] if fitness else [],
            max_concurrency=8,
            metadata=run.metadata,
            experiment_id=experiment.experiment_id,
        )
        log.info(
            "langfuse_experiment_published",
            experiment_id=experiment.experiment_id,
            items=len(run.results),
        )

    def _dataset_items(self, tasks: Sequence[BenchmarkTask]) -> dict[str, DatasetItem]:
        """Upsert the benchmark dataset and its tasks once per process (tasks are
        immutable, so an item's id is its task's)."""
        client = self._sink.client
        if not self._dataset_ready:
            client.create_dataset(
                name=DATASET,
                description="stratlab's benchmark suite: design a strategy for a market "
                "period; it passes when the cycle succeeds and every criterion holds on "
                "the walk-forward out-of-sample results (on synthetic noise: when the cycle "
                "finds nothing).",
                metadata={"source": "stratlab"},
            )
            self._dataset_ready = True
        for task in tasks:
            if task.task_id not in self._items:
                self._items[task.task_id] = client.create_dataset_item(
                    dataset_name=DATASET,
                    id=f"stratlab-{task.task_id}",
                    input=_task_input(task),
                    expected_output={"criteria": [c.model_dump() for c in task.criteria]},
                    metadata={"task_id": task.task_id, "suite_version": task.suite_version},
                )
        return self._items


class _Run:
    """One regression run's publication: names and metadata Langfuse shows."""

    def __init__(
        self,
        experiment: ExperimentRecord,
        tasks: list[BenchmarkTask],
        results: list[TaskResult],
        prompt: PromptRecord | None,
    ) -> None:
        self.experiment, self.tasks, self.results = experiment, tasks, results
        version = prompt.version if prompt else "?"
        generation = experiment.generation
        self.name = (
            f"{experiment.role} {version} ({experiment.prompt_id[:8]})"
            + (f" gen {generation}" if generation is not None else "")
            + f" · {experiment.experiment_id[:8]}"
        )
        self.description = (
            f"Regression run {experiment.experiment_id} of {experiment.role} prompt "
            f"{experiment.prompt_id} (version {version}) on {len(experiment.task_ids)} "
            f"tasks × {experiment.rollouts} rollouts: {experiment.status}"
            + (f" ({experiment.stopped_reason})" if experiment.stopped_reason else "")
        )
        values = {
            "experiment_id": experiment.experiment_id,
            "prompt_id": experiment.prompt_id,
            "prompt_version": prompt.version if prompt else None,
            "role": experiment.role,
            "generation": None if generation is None else str(generation),
            "status": experiment.status,
            "rollouts": str(experiment.rollouts),
            "workflow_id": experiment.workflow_id,
        }
        self.metadata = {k: v for k, v in values.items() if v is not None}


def _task_input(task: BenchmarkTask) -> dict[str, Any]:
    return {
        "task_id": task.task_id,
        "symbol": task.symbol,
        "kind": task.kind,
        "period": {"start": task.start.isoformat(), "end": task.end.isoformat()},
        "regime": task.regime,
        "objective": task.objective,
        "description": task.description,
        "criteria": [c.describe() for c in task.criteria],
    }


def _measured(result: TaskResult) -> dict[str, Any]:
    return {
        "outcome": result.outcome,
        "passed": result.passed,
        "reasons": result.reasons,
        "metrics": result.metrics.model_dump(mode="json") if result.metrics else None,
        "tokens": result.tokens,
        "cost_usd": result.cost_usd,
        "latency_ms": result.latency_ms,
        "rollout": result.rollout,
        "session_id": result.session_id,
    }


def _item_scores(
    *,
    input: Any,
    output: Any,
    expected_output: Any,
    metadata: dict[str, Any] | None,
    **_: dict[str, Any],
) -> list[Evaluation]:
    """An item's scores; a task skipped for budget measured nothing and gets none
    (the run's fitness leaves it out the same way)."""
    from langfuse import Evaluation

    if output.get("outcome") == "skipped_budget":
        return []
    values = {
        "success": 1.0 if output["passed"] else 0.0,
        "tokens": float(output["tokens"]),
        "cost_usd": float(output["cost_usd"]),
        "latency_ms": float(output["latency_ms"]),
    }
    return [Evaluation(name=k, value=v, data_type="NUMERIC") for k, v in values.items()]


def _fitness_scores(fitness: Fitness) -> RunEvaluatorFunction:
    """Run-level scores: the fitness the lab stored, so Langfuse and Postgres agree."""
    from langfuse import Evaluation

    def scores(*, item_results: list[ExperimentItemResult], **_: dict[str, Any]) -> Any:
        values = {
            "success_rate": fitness.success_rate,
            "mean_tokens": fitness.mean_tokens,
            "mean_latency_ms": fitness.mean_latency_ms,
            "cost_usd": fitness.cost_usd,
        }
        return [Evaluation(name=k, value=v, data_type="NUMERIC") for k, v in values.items()]

    return scores


def _tag_trace_session(session_id: str) -> None:
    """Put the item's trace in the cycle's Langfuse session, beside its generations
    (``propagate_attributes`` sets it on the current span: the item's task span)."""
    from langfuse import propagate_attributes

    with propagate_attributes(session_id=session_id):
        pass
