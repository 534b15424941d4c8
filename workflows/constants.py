"""Timeouts, retry presets and the options each activity is called with; the lab's
Temporal names re-exported.

Task queues, workflow-id formats, signal names and search attributes are plain data
that the domain, the CLI and the workers share, so they live in
``stratlab.temporal_names`` and are re-exported here for the workflows. What stays here
is how a workflow calls an activity: every pool has one ``ActivityOptions`` preset (how
long an attempt may take, how often it must heartbeat, how it is retried), a few
activities override their pool's, and ``workflows.calls.execute`` applies them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from temporalio.common import RetryPolicy

from activities import names
from stratlab.temporal_names import (
    COMPUTE,
    EVALUATE_WORKFLOW_ID,
    LLM,
    NIGHTLY_SCHEDULE_ID,
    OPTIMIZE_WORKFLOW_ID,
    OPTIMIZER,
    ORCHESTRATOR,
    PAPER_PAUSE,
    PAPER_RESUME,
    PAPER_STOP,
    PAPER_SUMMARY,
    PAPER_WORKFLOW_ID,
    POOLS,
    REGRESSION_WORKFLOW_ID,
    RESEARCH_SCHEDULE_ID,
    RESEARCH_SCHEDULE_INTERVAL,
    RESEARCH_WORKFLOW_ID,
    REVIEW_WORKFLOW_ID,
    SA_GENERATION,
    SA_OUTCOME,
    SA_PHASE,
    SA_PROMPT_ID,
    SA_ROLE,
    SA_SYMBOL,
    SA_SYMBOLS,
    SEARCH_ATTRIBUTES,
    sibling_queue,
    task_queue_for,
)

__all__ = [
    "ACTIVITY_OPTIONS",
    "BACKTEST_HEARTBEAT",
    "BACKTEST_TIMEOUT",
    "COMPOSE_FALLBACK",
    "COMPUTE",
    "COMPUTE_RETRY",
    "EVALUATE_WORKFLOW_ID",
    "LLM",
    "LLM_RETRY",
    "LLM_TIMEOUT",
    "NIGHTLY_SCHEDULE_ID",
    "NON_RETRYABLE_ERRORS",
    "OPTIMIZER",
    "OPTIMIZER_TIMEOUT",
    "OPTIMIZE_WORKFLOW_ID",
    "ORCHESTRATOR",
    "PAPER_MARKET_TIMEOUT",
    "PAPER_PAUSE",
    "PAPER_RESUME",
    "PAPER_STEP_TIMEOUT",
    "PAPER_STOP",
    "PAPER_SUMMARY",
    "PAPER_WORKFLOW_ID",
    "POOLS",
    "POOL_OPTIONS",
    "REGRESSION_WORKFLOW_ID",
    "RESEARCH_SCHEDULE_ID",
    "RESEARCH_SCHEDULE_INTERVAL",
    "RESEARCH_WORKFLOW_ID",
    "REVIEW_WORKFLOW_ID",
    "SA_GENERATION",
    "SA_OUTCOME",
    "SA_PHASE",
    "SA_PROMPT_ID",
    "SA_ROLE",
    "SA_SYMBOL",
    "SA_SYMBOLS",
    "SEARCH_ATTRIBUTES",
    "STORE_RETRY",
    "STORE_TIMEOUT",
    "TRAIN_HEARTBEAT",
    "TRAIN_TIMEOUT",
    "ActivityOptions",
    "options_for",
    "sibling_queue",
    "task_queue_for",
]

# --- timeouts -------------------------------------------------------------------------

STORE_TIMEOUT = timedelta(seconds=30)
LLM_TIMEOUT = timedelta(minutes=3)
TRAIN_TIMEOUT = timedelta(minutes=20)
TRAIN_HEARTBEAT = timedelta(seconds=5)
BACKTEST_TIMEOUT = timedelta(minutes=10)
BACKTEST_HEARTBEAT = timedelta(seconds=30)
OPTIMIZER_TIMEOUT = timedelta(minutes=5)
PAPER_MARKET_TIMEOUT = timedelta(minutes=2)
# Execution and guardrails are one short transaction each; a dead worker's attempt is
# retried after this, not after STORE_TIMEOUT.
PAPER_STEP_TIMEOUT = timedelta(seconds=10)

# --- retry presets ----------------------------------------------------------------------

# The business failures of the llm, compute and optimizer activities, by the
# ApplicationError type they raise them under (activities/_errors.py, llm.py, compute.py,
# paper.py). The activities mark them non-retryable themselves; the list keeps the policy
# saying so too. tests/unit/test_activity_signatures.py checks every entry is raised.
NON_RETRYABLE_ERRORS = [
    "StrategyDesignError",
    "TrainingError",
    "BacktestError",
    "AssessmentError",
    "BudgetExhaustedError",
    "LlmRequestError",
    "LlmOutputError",
    "PaperSetupError",
]
STORE_RETRY = RetryPolicy(
    initial_interval=timedelta(milliseconds=200),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=10),
    maximum_attempts=20,
)
LLM_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=2),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=60),
    maximum_attempts=5,
    non_retryable_error_types=NON_RETRYABLE_ERRORS,
)
COMPUTE_RETRY = RetryPolicy(
    initial_interval=timedelta(seconds=1),
    backoff_coefficient=2.0,
    maximum_interval=timedelta(seconds=30),
    maximum_attempts=10,
    non_retryable_error_types=NON_RETRYABLE_ERRORS,
)

# --- activity options -------------------------------------------------------------------


@dataclass(frozen=True)
class ActivityOptions:
    """How one activity is called: how long an attempt may take, how often it must
    heartbeat (None: it need not), and how it is retried."""

    start_to_close: timedelta
    retry: RetryPolicy
    heartbeat: timedelta | None = None


POOL_OPTIONS: dict[str, ActivityOptions] = {
    ORCHESTRATOR: ActivityOptions(STORE_TIMEOUT, STORE_RETRY),
    LLM: ActivityOptions(LLM_TIMEOUT, LLM_RETRY),
    COMPUTE: ActivityOptions(BACKTEST_TIMEOUT, COMPUTE_RETRY, heartbeat=BACKTEST_HEARTBEAT),
    OPTIMIZER: ActivityOptions(OPTIMIZER_TIMEOUT, COMPUTE_RETRY),
}
"""Each pool's preset: the store's short transactions, an LLM call, a backtest-sized
compute step that heartbeats, one NSGA-II step."""

ACTIVITY_OPTIONS: dict[str, ActivityOptions] = {
    # A walk-forward fit is the longest step; it heartbeats every fold.
    names.TRAIN_STRATEGY: ActivityOptions(TRAIN_TIMEOUT, COMPUTE_RETRY, heartbeat=TRAIN_HEARTBEAT),
    # The analyst and the next bar do not heartbeat.
    names.ANALYSE_STRATEGY: ActivityOptions(BACKTEST_TIMEOUT, COMPUTE_RETRY),
    names.PAPER_OBSERVE: ActivityOptions(PAPER_MARKET_TIMEOUT, COMPUTE_RETRY),
    names.PAPER_EXECUTE: ActivityOptions(PAPER_STEP_TIMEOUT, STORE_RETRY),
    names.PAPER_DECIDE: ActivityOptions(PAPER_STEP_TIMEOUT, STORE_RETRY),
}
"""Activities whose attempt is longer or shorter than their pool's preset."""

COMPOSE_FALLBACK = ActivityOptions(PAPER_STEP_TIMEOUT, STORE_RETRY)
"""The composer asked for the guardrails' fallback after the provider failed: no LLM call,
one short transaction, retried like the store."""


def options_for(name: str, pool: str) -> ActivityOptions:
    """How activity ``name`` on ``pool`` is called unless the caller says otherwise."""
    return ACTIVITY_OPTIONS.get(name) or POOL_OPTIONS[pool]
