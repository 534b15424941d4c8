"""The lab's names in Temporal: pools and their task queues, workflow-id formats,
schedule ids, the paper workflow's signal and query names, and the custom search
attributes.

Plain data, shared by every layer: the workflows, the workers, the runtime that
registers the search attributes and the CLI that starts and steers workflows. It lives
here, below the workflows, so the domain never imports workflow code to name a queue.

The queues of a lab share one prefix: a lab started with
``STRATLAB_TASK_QUEUE_PREFIX=team-a-`` (or a test with a unique prefix) keeps all of its
work on its own queues, and a workflow derives its activities' queues from its own with
``sibling_queue`` without any workflow input saying so.
"""

from __future__ import annotations

from datetime import timedelta

from temporalio.common import SearchAttributeKey

# --- pools and task queues --------------------------------------------------------------

ORCHESTRATOR = "orchestrator"
LLM = "llm"
COMPUTE = "compute"
OPTIMIZER = "optimizer"
POOLS = (ORCHESTRATOR, LLM, COMPUTE, OPTIMIZER)

_QUEUE_BASE = "stratlab-"


def task_queue_for(pool: str, prefix: str = "") -> str:
    if pool not in POOLS:
        raise ValueError(f"unknown pool {pool!r}; pools are: {', '.join(POOLS)}")
    return f"{prefix}{_QUEUE_BASE}{pool}"


def sibling_queue(own_queue: str, pool: str) -> str:
    """The queue of ``pool`` under the same prefix as ``own_queue`` (an orchestrator queue)."""
    suffix = task_queue_for(ORCHESTRATOR)
    prefix = own_queue[: -len(suffix)] if own_queue.endswith(suffix) else ""
    return task_queue_for(pool, prefix)


# --- workflow ids and schedules (ids come from business keys) ----------------------------

RESEARCH_WORKFLOW_ID = "research-{session_id}"
EVALUATE_WORKFLOW_ID = "evaluate-{session_id}"
RESEARCH_SCHEDULE_ID = "stratlab-research-trigger"
RESEARCH_SCHEDULE_INTERVAL = timedelta(minutes=5)
REGRESSION_WORKFLOW_ID = "regression-{experiment_id}"
OPTIMIZE_WORKFLOW_ID = "optimize-{role}-{generation}"
REVIEW_WORKFLOW_ID = "review-{prompt_id}"
NIGHTLY_SCHEDULE_ID = "stratlab-nightly-optimization"
PAPER_WORKFLOW_ID = "paper-{strategy_id}"

# PaperTradingWorkflow's signals and query (names the CLI and the web UI use). Every
# signal takes no payload, null or {"reason": "..."}; stop also takes a bare string.
PAPER_PAUSE = "pause"
PAPER_RESUME = "resume"
PAPER_STOP = "stop"
PAPER_SUMMARY = "summary"

# --- custom search attributes (registered by the dev server and by `stratlab worker`) ---

SA_PHASE = SearchAttributeKey.for_keyword("StratlabPhase")
SA_OUTCOME = SearchAttributeKey.for_keyword("StratlabOutcome")
SA_SYMBOL = SearchAttributeKey.for_keyword("StratlabSymbol")
# Every symbol of a multi-symbol paper strategy, one keyword each: `StratlabSymbols = 'nasdaq'`
# finds a strategy that trades nasdaq among others (StratlabSymbol holds them joined by ",").
SA_SYMBOLS = SearchAttributeKey.for_keyword_list("StratlabSymbols")
SA_ROLE = SearchAttributeKey.for_keyword("StratlabRole")
SA_PROMPT_ID = SearchAttributeKey.for_keyword("StratlabPromptId")
SA_GENERATION = SearchAttributeKey.for_int("StratlabGeneration")
SEARCH_ATTRIBUTES = (
    SA_PHASE,
    SA_OUTCOME,
    SA_SYMBOL,
    SA_ROLE,
    SA_PROMPT_ID,
    SA_GENERATION,
    SA_SYMBOLS,
)
