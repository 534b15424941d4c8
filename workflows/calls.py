"""The one way a workflow calls an activity.

``execute(signatures.RUN_BACKTEST, inp, summary=...)`` runs the activity on its pool's
queue (under the workflow's own queue prefix) with its options from
``workflows.constants`` and returns its result as the reference's result type. Only the
reference, the input and the one-line summary the web UI shows differ from call to call.
"""

from __future__ import annotations

from typing import TypeVar, cast

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from activities.signatures import ActivityRef
    from workflows import constants as c

InputT = TypeVar("InputT")
ResultT = TypeVar("ResultT")


async def execute(
    activity: ActivityRef[InputT, ResultT],
    arg: InputT,
    *,
    summary: str,
    options: c.ActivityOptions | None = None,
) -> ResultT:
    """Run ``activity`` with ``arg`` and wait for its result; ``options`` overrides the
    activity's own (``constants.options_for``) for this one call."""
    opts = options or c.options_for(activity.name, activity.pool)
    result = await workflow.execute_activity(
        activity.name,
        arg,
        result_type=activity.result_type,
        task_queue=c.sibling_queue(workflow.info().task_queue, activity.pool),
        start_to_close_timeout=opts.start_to_close,
        heartbeat_timeout=opts.heartbeat,
        retry_policy=opts.retry,
        summary=summary,
    )
    return cast(ResultT, result)
