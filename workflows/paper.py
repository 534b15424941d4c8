"""PaperTradingWorkflow: a strategy trading on paper, one decision per bar (seed 001).

Each cycle is four activities: observe the next bar (compute pool: candles, features),
execute the previous cycle's instructions at this bar's open and mark the book at its
close (orchestrator), compose a plan (llm pool, the registry's composer prompt), and
normalise it with the guardrails into instructions (orchestrator). Then the workflow
sleeps on a durable timer: ``speed_seconds`` on the replayed clock, ``poll_seconds``
while the live feed has no new bar.

Signals ``pause``, ``resume`` and ``stop`` steer it, also from the web UI: each takes no
payload, ``null`` or ``{"reason": "..."}``, and ``stop`` also a bare string. A payload
that is none of these is ignored and shown in the ``summary`` query and the current
details. The ``summary`` query answers the latest figures. Every ``cycles_per_run``
cycles (or when Temporal suggests it) it continues as new with its small state, so a year
of bars or a month of polls never makes one long history. Only ids, timestamps and a few numbers
cross the history; bars, plans and books live in Postgres.
"""

from __future__ import annotations

import contextlib
from datetime import timedelta
from typing import Any

from temporalio import workflow
from temporalio.common import SearchAttributeUpdate
from temporalio.exceptions import ActivityError, ApplicationError

from workflows.boundary import mark_ended, signal_payload, validated_input
from workflows.calls import execute

with workflow.unsafe.imports_passed_through():
    from activities import signatures as act
    from stratlab.models.paper import (
        ComposeStep,
        CycleStepInput,
        DecisionStep,
        ExecutionStep,
        MarketStep,
        MarketStepInput,
        PaperOpenInput,
        PaperRunState,
        PaperSignal,
        PaperSummary,
        PaperTradingInput,
        StatusInput,
    )
    from stratlab.models.trading import StrategyStatus
    from workflows import constants as c


def compose_id_for(strategy_id: str, cycle: int) -> str:
    """The cycle's id: every record and instruction of the cycle hangs off it."""
    return f"{strategy_id}-{cycle:06d}"


@workflow.defn(name="PaperTradingWorkflow")
class PaperTradingWorkflow:
    def __init__(self) -> None:
        self._paused = False
        self._stop_reason: str | None = None
        self._summary = PaperSummary()
        self._symbols = ""

    @workflow.signal(name=c.PAPER_PAUSE)
    def pause(self, *payload: Any) -> None:
        if self._signal(c.PAPER_PAUSE, payload) is not None:
            self._paused = True

    @workflow.signal(name=c.PAPER_RESUME)
    def resume(self, *payload: Any) -> None:
        if self._signal(c.PAPER_RESUME, payload) is not None:
            self._paused = False

    @workflow.signal(name=c.PAPER_STOP)
    def stop(self, *payload: Any) -> None:
        request = self._signal(c.PAPER_STOP, payload, text_field="reason")
        if request is not None and self._stop_reason is None:
            self._stop_reason = request.reason.strip()[:200] or "stopped by request"

    def _signal(
        self, name: str, payload: tuple[Any, ...], *, text_field: str | None = None
    ) -> PaperSignal | None:
        """The signal's payload, or None after recording why it is unusable."""
        request = signal_payload(PaperSignal, payload, text_field=text_field)
        if isinstance(request, PaperSignal):
            return request
        ignored = f"{name}: {request}"
        workflow.logger.warning("signal ignored: %s", ignored)
        self._summary.ignored_signals = [*self._summary.ignored_signals, ignored][-5:]
        self._show()
        return None

    @workflow.query(name=c.PAPER_SUMMARY)
    def summary(self) -> PaperSummary:
        status: StrategyStatus = "paused" if self._paused else self._summary.status
        return self._summary.model_copy(update={"status": status})

    @workflow.run
    @validated_input
    async def run(self, inp: PaperTradingInput) -> PaperSummary:
        info = workflow.info()
        strategy_id = inp.strategy_id or info.workflow_id.removeprefix("paper-")
        state = inp.state or PaperRunState()
        self._paused = state.paused
        ignored = self._summary.ignored_signals  # signals handled before the run began
        self._summary = state.summary or PaperSummary(
            strategy_id=strategy_id, mode=inp.mode, initial_capital=inp.initial_capital
        )
        self._summary.runs = state.runs
        self._summary.ignored_signals = [*self._summary.ignored_signals, *ignored][-5:]
        self._symbols = ", ".join(inp.symbols)
        if inp.state is None:
            await self._open(inp, strategy_id)
        cycles_this_run = 0
        while True:
            if self._paused and self._stop_reason is None:
                await self._set_status(strategy_id, "paused")
                await workflow.wait_condition(
                    lambda: not self._paused or self._stop_reason is not None
                )
            if self._stop_reason is not None:
                self._summary.finished_reason = self._stop_reason
                break
            await self._set_status(strategy_id, "running")
            if inp.max_cycles is not None and state.cycle >= inp.max_cycles:
                self._summary.finished_reason = f"made its {inp.max_cycles} decisions"
                break
            if cycles_this_run >= inp.cycles_per_run or info.is_continue_as_new_suggested():
                await workflow.wait_condition(workflow.all_handlers_finished)
                state.paused = self._paused
                state.runs += 1
                state.summary = self._summary
                workflow.continue_as_new(inp.model_copy(update={"state": state}))
            step = await self._observe(strategy_id, state)
            if step.bar_ts is None:
                if step.finished:
                    self._summary.finished_reason = "replay finished: no bar left"
                    break
                self._summary.waiting = step.waiting
                await self._sleep(inp.poll_seconds)
                continue
            await self._cycle(strategy_id, state, step)
            cycles_this_run += 1
            if inp.speed_seconds > 0:
                await self._sleep(inp.speed_seconds)
        await self._set_status(strategy_id, "stopped")
        mark_ended("stopped" if self._stop_reason is not None else "finished", "paper_stopped")
        return self._summary

    async def _open(self, inp: PaperTradingInput, strategy_id: str) -> None:
        workflow.upsert_search_attributes(
            [
                c.SA_SYMBOL.value_set(",".join(inp.symbols)),
                c.SA_ROLE.value_set("composer"),
            ]
        )
        if workflow.patched("symbols-keyword-list"):
            workflow.upsert_search_attributes([c.SA_SYMBOLS.value_set(inp.symbols)])
        opened = await execute(
            act.PAPER_OPEN,
            PaperOpenInput(
                strategy_id=strategy_id,
                workflow_id=workflow.info().workflow_id,
                run_key=workflow.info().first_execution_run_id,
                settings=inp,
            ),
            summary=f"open {strategy_id}: {inp.mode} on {', '.join(inp.symbols)}",
        )
        self._summary.total_value = opened.initial_capital
        self._summary.cash = opened.initial_capital

    async def _observe(self, strategy_id: str, state: PaperRunState) -> MarketStep:
        cycle = state.cycle + 1
        return await execute(
            act.PAPER_OBSERVE,
            MarketStepInput(
                strategy_id=strategy_id,
                cycle=cycle,
                compose_id=compose_id_for(strategy_id, cycle),
                cursor=state.cursor,
            ),
            summary=f"next bar and features for decision {cycle}",
        )

    async def _cycle(self, strategy_id: str, state: PaperRunState, step: MarketStep) -> None:
        cycle = state.cycle + 1
        inp = CycleStepInput(
            strategy_id=strategy_id,
            cycle=cycle,
            compose_id=compose_id_for(strategy_id, cycle),
            pending_compose_id=state.pending_compose_id,
        )
        executed = await execute(
            act.PAPER_EXECUTE,
            inp,
            summary=f"decision {cycle}: fill the previous orders at the open, mark the book",
        )
        try:
            composed = await execute(
                act.PAPER_COMPOSE, inp, summary=f"decision {cycle}: the composer proposes a plan"
            )
        except ActivityError as err:
            # A provider outage outlasting the retries must not end a strategy that runs
            # for months: this bar is decided by the guardrails' fallback instead.
            cause = err.cause.message if isinstance(err.cause, ApplicationError) else str(err)
            composed = await execute(
                act.PAPER_COMPOSE,
                inp.model_copy(update={"compose_error": cause[:500]}),
                options=c.COMPOSE_FALLBACK,
                summary=f"decision {cycle}: composer failed, the guardrails' fallback decides",
            )
        decided = await execute(
            act.PAPER_DECIDE,
            inp,
            summary=f"decision {cycle}: guardrails turn the plan into orders",
        )
        state.cycle, state.cursor, state.pending_compose_id = cycle, step.bar_ts, inp.compose_id
        self._record(state, executed, composed, decided)

    def _record(
        self,
        state: PaperRunState,
        executed: ExecutionStep,
        composed: ComposeStep,
        decided: DecisionStep,
    ) -> None:
        s = self._summary
        s.cycle, s.last_bar_ts, s.waiting = state.cycle, state.cursor, ""
        s.total_value, s.cash, s.halted = executed.total_value, executed.cash, executed.halted
        capital = s.initial_capital or 0.0
        s.pnl = executed.total_value - capital
        s.pnl_pct = s.pnl / capital if capital else None
        fallback = [f"fallback: {composed.fallback}"] if composed.fallback else []
        s.last_decision = (fallback + decided.summary)[:6] or ["no order"]
        self._show()

    async def _set_status(self, strategy_id: str, wanted: StrategyStatus) -> None:
        """Write the status row and search attribute when it changes (once per change)."""
        if self._summary.status == wanted:
            return
        await execute(
            act.PAPER_STATUS,
            StatusInput(strategy_id=strategy_id, status=wanted),
            summary=f"status {wanted}",
        )
        attributes: list[SearchAttributeUpdate[Any]] = [c.SA_PHASE.value_set(f"paper_{wanted}")]
        workflow.upsert_search_attributes(attributes)
        self._summary.status = wanted
        self._show()

    def _show(self) -> None:
        """The UI's current details: status, book and last decision, ignored signals."""
        s = self._summary
        status = "paused" if self._paused and s.status != "stopped" else s.status
        lines = [f"**{status}** · {s.mode} · {self._symbols} · decision {s.cycle}"]
        if s.total_value is not None:
            pnl = f" ({s.pnl_pct:+.2%})" if s.pnl_pct is not None else ""
            lines.append(f"value {s.total_value:,.2f}{pnl} · cash {s.cash or 0:,.2f}")
        if s.last_decision:
            lines.append("last: " + "; ".join(s.last_decision)[:300])
        if s.waiting:
            lines.append(f"waiting: {s.waiting}")
        if s.finished_reason:
            lines.append(f"finished: {s.finished_reason}")
        lines += [f"ignored signal {text}" for text in s.ignored_signals]
        workflow.set_current_details("\n".join(lines))

    async def _sleep(self, seconds: float) -> None:
        """A durable timer that a stop or pause cuts short."""
        with contextlib.suppress(TimeoutError):
            await workflow.wait_condition(
                lambda: self._stop_reason is not None or self._paused,
                timeout=timedelta(seconds=seconds),
            )
