"""Builds the Temporal worker of each pool from one client, one database pool and Settings.

| pool         | runs                                   | tuned for                        |
|--------------|----------------------------------------|----------------------------------|
| orchestrator | every workflow; light store activities | many cached workflows            |
|              | (incl. paper execution, guardrails)    |                                  |
| llm          | design, assess, mutate, sanity, compose| provider limits: concurrency, /s |
| compute      | training, backtests, analysis, bars    | CPU: bounded concurrent work     |
| optimizer    | NSGA-II breeding and selection (DEAP)  | concurrency 1, seeded            |
"""

from __future__ import annotations

import asyncio
import os
import socket
from collections.abc import Awaitable, Callable, Sequence

from pydantic import BaseModel
from temporalio import activity
from temporalio.client import Client
from temporalio.worker import Worker

from activities.compute import ComputeActivities
from activities.evolution import (
    EvolutionLlmActivities,
    EvolutionStoreActivities,
    OptimizerActivities,
)
from activities.llm import LlmActivities
from activities.orchestrator import SessionActivities, StrategyActivities
from activities.paper import PaperComputeActivities, PaperLlmActivities, PaperStoreActivities
from optimizer.breeding import derive_seed
from stratlab.config import Settings
from stratlab.evolution.experiments import ExperimentService
from stratlab.evolution.generations import GenerationService
from stratlab.evolution.langfuse_runs import langfuse_experiments
from stratlab.evolution.mutation import PromptMutator
from stratlab.llm.budgeted import BudgetedLlm
from stratlab.llm.cache import CachedProvider
from stratlab.llm.factory import build_provider
from stratlab.research.analysis import AnalysisStep
from stratlab.research.assessor import Assessor
from stratlab.research.designer import Designer
from stratlab.research.evaluation import Backtester, HoldoutEvaluator
from stratlab.research.sessions import SessionService
from stratlab.research.training import Trainer
from stratlab.sandbox.rundirs import sweep_stale_runs
from stratlab.store.actions import ActionRepo
from stratlab.store.benchmarks import BenchmarkRepo
from stratlab.store.budget import BudgetRepo
from stratlab.store.db import Pool
from stratlab.store.experiments import ExperimentRepo
from stratlab.store.generations import GenerationRepo
from stratlab.store.llm_cache import LlmCacheRepo
from stratlab.store.market import MarketRepo
from stratlab.store.prompts import PromptRepo
from stratlab.store.research import ResearchRepo
from stratlab.store.sessions import SessionRepo
from stratlab.store.skills import SkillRepo
from stratlab.store.trading import PaperRepo
from stratlab.store.trials import IntegrityRepo
from stratlab.telemetry.instruments import Instruments
from stratlab.telemetry.interceptor import TelemetryInterceptor
from stratlab.telemetry.observers import call_observers
from stratlab.trading.bars import PaperBarService
from stratlab.trading.composer import PaperComposerService
from stratlab.trading.execution import PaperExecutionService
from workflows import constants
from workflows.evaluate import EvaluateStrategyWorkflow
from workflows.optimization import OptimizationGenerationWorkflow
from workflows.paper import PaperTradingWorkflow
from workflows.regression import RegressionRunWorkflow
from workflows.research import ResearchCycleWorkflow
from workflows.review import PromptReviewWorkflow

WORKFLOWS: list[type] = [
    ResearchCycleWorkflow,
    EvaluateStrategyWorkflow,
    RegressionRunWorkflow,
    OptimizationGenerationWorkflow,
    PromptReviewWorkflow,
    PaperTradingWorkflow,
]


class PoolInfo(BaseModel):
    pool: str
    host: str
    pid: int


def _pool_info_activity(pool: str) -> Callable[[], Awaitable[PoolInfo]]:
    """Every pool answers ``pool_info``: a health probe that says which host and process
    serve a pool (what `stratlab status` and a deployment's checks can ask)."""

    @activity.defn(name="pool_info")
    async def pool_info() -> PoolInfo:
        return PoolInfo(pool=pool, host=socket.gethostname(), pid=os.getpid())

    return pool_info


def _activities(
    pool: str, db: Pool, settings: Settings, instruments: Instruments
) -> list[Callable]:
    sessions, research, market = SessionRepo(db), ResearchRepo(db), MarketRepo(db)
    prompts, budget, actions = PromptRepo(db), BudgetRepo(db), ActionRepo(db)
    acts: list[Callable] = [_pool_info_activity(pool)]
    if pool == constants.ORCHESTRATOR:
        acts += _orchestrator_activities(db, settings, sessions, research, market)
    elif pool == constants.LLM:
        provider = build_provider(settings)
        if settings.llm_cache:
            provider = CachedProvider(provider, LlmCacheRepo(db), settings)
        observers = call_observers(
            settings, instruments=instruments, budget=budget, prompts=prompts
        )
        llm = BudgetedLlm(provider, budget, actions, settings, observers)
        designer = Designer(llm, prompts, sessions, research, market, settings, SkillRepo(db))
        llm_box = LlmActivities(designer, Assessor(llm, prompts, research, settings), sessions)
        acts += [llm_box.design_strategy, llm_box.assess_strategy]
        evolution = EvolutionLlmActivities(PromptMutator(llm, prompts, settings))
        acts += [evolution.mutate_prompt, evolution.check_offspring]
        paper = PaperComposerService(PaperRepo(db), prompts, SkillRepo(db), settings, llm)
        acts += [PaperLlmActivities(paper).paper_compose]
    elif pool == constants.COMPUTE:
        acts += _compute_activities(db, settings, sessions, research, market)
    elif pool == constants.OPTIMIZER:
        breeder = OptimizerActivities()
        acts += [breeder.propose_offspring, breeder.select_survivors]
    else:
        raise ValueError(f"unknown pool {pool!r}; pools are: {', '.join(constants.POOLS)}")
    return acts


def _orchestrator_activities(
    db: Pool, settings: Settings, sessions: SessionRepo, research: ResearchRepo, market: MarketRepo
) -> list[Callable]:
    """Session start and finish, strategy registration, the evolution store steps and the
    paper set-up, execution and guardrails."""
    prompts, budget, actions, skills = PromptRepo(db), BudgetRepo(db), ActionRepo(db), SkillRepo(db)
    service = SessionService(
        sessions, prompts, budget, actions, build_provider(settings), settings, research, skills
    )
    box = SessionActivities(service)
    acts: list[Callable] = [box.start_session, box.finish_session]
    acts += [StrategyActivities(research, market, sessions, settings).register_strategy]
    experiments = ExperimentRepo(db)
    measured = ExperimentService(
        BenchmarkRepo(db), experiments, prompts, actions, langfuse_experiments(settings)
    )
    bred = GenerationService(
        prompts, experiments, GenerationRepo(db), measured, derive_seed, actions
    )
    store = EvolutionStoreActivities(measured, bred)
    acts += [
        store.begin_experiment,
        store.record_task_result,
        store.finish_experiment,
        store.begin_generation,
        store.select_tasks,
        store.load_parents,
        store.register_offspring,
        store.record_generation,
        store.apply_review,
    ]
    paper = PaperStoreActivities(PaperExecutionService(db, market, prompts, skills))
    return [*acts, paper.paper_open, paper.paper_execute, paper.paper_decide, paper.paper_status]


def _compute_activities(
    db: Pool, settings: Settings, sessions: SessionRepo, research: ResearchRepo, market: MarketRepo
) -> list[Callable]:
    """Training, backtests, analysis and the holdout, and paper trading's bars."""
    integrity = IntegrityRepo(db)
    compute = ComputeActivities(
        Trainer(research, market, settings, integrity),
        Backtester(research, market, settings, integrity),
        AnalysisStep(research, market, settings),
        sessions,
        HoldoutEvaluator(research, market, settings, integrity),
    )
    bars = PaperComputeActivities(PaperBarService(PaperRepo(db), market, SkillRepo(db)))
    return [
        compute.train_strategy,
        compute.run_backtest,
        compute.analyse_strategy,
        compute.evaluate_holdout,
        bars.paper_observe,
    ]


def build_worker(
    pool: str,
    client: Client,
    db: Pool,
    settings: Settings,
    instruments: Instruments | None = None,
) -> Worker:
    """The pool's worker; ``instruments`` are the process's metrics and tracer (off when
    omitted). Tracing of workflows and activities comes from the client's interceptors."""
    instruments = instruments or Instruments()
    options: dict[str, object] = {}
    if pool == constants.LLM:
        options["max_concurrent_activities"] = settings.llm_max_concurrency
        if settings.llm_activities_per_second:
            options["max_task_queue_activities_per_second"] = settings.llm_activities_per_second
    elif pool == constants.COMPUTE:
        options["max_concurrent_activities"] = settings.compute_threads
        # run dirs and cgroups of sandboxed code that a killed worker could not remove
        sweep_stale_runs()
    elif pool == constants.OPTIMIZER:
        options["max_concurrent_activities"] = 1
    return Worker(
        client,
        task_queue=settings.task_queue(pool),
        workflows=WORKFLOWS if pool == constants.ORCHESTRATOR else [],
        activities=_activities(pool, db, settings, instruments),
        interceptors=[TelemetryInterceptor(instruments)],
        graceful_shutdown_timeout=constants.STORE_TIMEOUT,
        **options,  # type: ignore[arg-type]
    )


async def run_workers(
    pools: Sequence[str],
    client: Client,
    db: Pool,
    settings: Settings,
    stop: asyncio.Event,
    instruments: Instruments | None = None,
) -> None:
    """Run the given pools until ``stop`` is set, then shut them down gracefully."""
    workers = [build_worker(pool, client, db, settings, instruments) for pool in pools]
    tasks = [asyncio.create_task(w.run()) for w in workers]
    stopper = asyncio.create_task(stop.wait())
    done, _ = await asyncio.wait([*tasks, stopper], return_when=asyncio.FIRST_COMPLETED)
    await asyncio.gather(*(w.shutdown() for w in workers), return_exceptions=True)
    stopper.cancel()
    for task in done:
        if task is not stopper and task.exception() is not None:
            raise task.exception()  # type: ignore[misc]
