"""``stratlab session ID``: every row of one session, gathered and rendered."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from rich.panel import Panel
from rich.table import Table
from rich.text import Text

from stratlab.cli._common import (
    console,
    fmt_num,
    fmt_pct,
    fmt_time,
    fmt_usd,
    narrow_table,
    outcome_text,
    print_link,
    to_jsonable,
)
from stratlab.config import Settings
from stratlab.models.records import (
    ActionRecord,
    AssessmentRecord,
    BacktestRecord,
    EquityCurve,
    PhaseRecord,
    SessionRecord,
    StrategyRecord,
    TrainingRunRecord,
)
from stratlab.models.research import (
    AnalystSuggestion,
    GateCheck,
    GateResult,
    HoldoutResult,
    StrategySpec,
    TrainingReport,
)
from stratlab.store.actions import ActionRepo
from stratlab.store.db import Pool
from stratlab.store.research import ResearchRepo
from stratlab.store.sessions import SessionRepo
from stratlab.store.trials import IntegrityRepo

_STATUS = {"passed": "[green]pass[/green]", "failed": "[red]FAIL[/red]", "not_run": "not run"}


@dataclass
class SessionDetail:
    session: SessionRecord
    phases: list[PhaseRecord]
    strategies: list[StrategyRecord]
    training_runs: list[TrainingRunRecord]
    backtests: list[BacktestRecord]
    assessments: list[AssessmentRecord]
    actions: list[ActionRecord]
    equity: dict[str, EquityCurve] = field(default_factory=dict)
    holdouts: list[HoldoutResult] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return to_jsonable(
            {
                "session": self.session,
                "phases": self.phases,
                "strategies": self.strategies,
                "training_runs": self.training_runs,
                "backtests": self.backtests,
                "assessments": self.assessments,
                "holdout": self.holdouts[-1] if self.holdouts else None,
                "llm_calls": self.actions,
            }
        )

    def best_backtest(self) -> BacktestRecord | None:
        best_id = self.session.best_strategy_id
        chosen = [b for b in self.backtests if b.strategy_id == best_id] or self.backtests
        return chosen[-1] if chosen else None


async def load_session(db: Pool, session_id: str) -> SessionDetail | None:
    sessions, research = SessionRepo(db), ResearchRepo(db)
    record = await sessions.get(session_id)
    if record is None:
        return None
    detail = SessionDetail(
        session=record,
        phases=await sessions.phases(session_id),
        strategies=await research.strategies_by_session(session_id),
        training_runs=await research.training_runs_by_session(session_id),
        backtests=await research.backtests_by_session(session_id),
        assessments=await research.assessments_by_session(session_id),
        actions=await ActionRepo(db).by_session(session_id),
        holdouts=await IntegrityRepo(db).holdouts_by_session(session_id),
    )
    best = detail.best_backtest()
    if best is not None:
        curve = await research.load_equity(best.backtest_id)
        if curve is not None:
            detail.equity[best.backtest_id] = curve
    return detail


def _gate_table(gate: GateResult, title: str) -> Table:
    table = Table(title=f"{title}: {'passed' if gate.passed else 'FAILED'}", title_justify="left")
    for col in ("check", "value", "needs", "result"):
        table.add_column(col, no_wrap=True)
    table.add_column("detail", overflow="fold", ratio=1)
    for c in gate.checks:
        table.add_row(
            c.name,
            "—" if c.status == "not_run" else fmt_num(c.value, 3),
            f"{c.op} {c.threshold:g}",
            _STATUS[_status(c)],
            c.detail,
        )
    return table


def _status(check: GateCheck) -> str:
    return check.status or ("passed" if check.passed else "failed")


def _training_line(rep: TrainingReport) -> str:
    """How the design was fitted and what its walk-forward record is."""
    if rep.kind == "ml":
        head = (
            f"training: {len(rep.epochs)} epochs (resumed from {rep.resumed_from_epoch}), "
            f"validation log loss {fmt_num(rep.validation_log_loss, 4)} vs base rate "
            f"{fmt_num(rep.base_rate_log_loss, 4)}, AUC {fmt_num(rep.validation_auc, 3)} "
            f"(p {fmt_num(rep.auc_p_value, 3)}), {rep.duration_ms:.0f} ms"
        )
    else:
        head = (
            f"training: grid of {rep.grid_size}, chosen {rep.best_params}, {rep.duration_ms:.0f} ms"
        )
    lines = [head]
    wf = rep.walk_forward
    if wf is not None:
        lines.append(
            f"walk-forward: {len(wf.folds)} fold(s), {wf.oos_bars:,} out-of-sample bars, "
            f"sharpe {fmt_num(wf.sharpe)}, {wf.trades} trades, exposure {wf.exposure:.0%}"
        )
    if rep.trials is not None:
        pbo = "not run" if rep.pbo is None else f"{rep.pbo:.2f}"
        lines.append(
            f"trials: {rep.trials.n_trials} (effective {rep.trials.n_effective:.1f}), PBO {pbo}"
        )
    probe = rep.lookahead
    if probe is not None:
        verdict = "passed" if probe.passed else f"FAILED: {probe.detail}"
        lines.append(f"look-ahead probe: {probe.cuts} prefixes, {verdict}")
    lines += [f"note: {note}" for note in rep.notes]
    return "\n".join(lines)


def _render_holdout(detail: SessionDetail) -> None:
    if not detail.holdouts:
        return
    h = detail.holdouts[-1]
    m = h.metrics
    span = f"{m.start:%Y-%m-%d} → {m.end:%Y-%m-%d}, " if m.start and m.end else ""
    body = (
        f"{span}{m.bars} bars: return {fmt_pct(m.total_return)} vs buy-and-hold "
        f"{fmt_pct(m.benchmark_return)}, sharpe {fmt_num(m.sharpe)}, "
        f"PSR(>0) {fmt_num(h.psr, 3)}, max DD {fmt_pct(-m.max_drawdown)}, trades {m.trades}\n"
        "evaluated once, for the chosen strategy; reported only: never fed back, never "
        "used to choose or rank"
    )
    body += "".join(f"\nnote: {n}" for n in h.notes)
    console.print(Panel(body, title="final holdout", title_align="left"))


def _phases_table(detail: SessionDetail) -> Table:
    table = narrow_table("Phases (times UTC)")
    table.add_column("it", justify="right", no_wrap=True)
    for col in ("phase", "started", "took", "status"):
        table.add_column(col, no_wrap=True)
    table.add_column("detail", overflow="fold", ratio=1)
    for p in detail.phases:
        took = (p.finished_at - p.started_at).total_seconds() if p.finished_at else None
        detail_text = ", ".join(f"{k}={v}" for k, v in p.detail.items())[:120]
        table.add_row(
            str(p.iteration),
            p.phase,
            p.started_at.strftime("%H:%M:%S"),
            f"{took * 1000:,.0f} ms" if took is not None else "running",
            p.status,
            Text(detail_text),
        )
    return table


def _calls_table(detail: SessionDetail) -> Table:
    simulated = any(a.latency_simulated for a in detail.actions)
    table = narrow_table("LLM calls")
    if simulated:
        table.caption = "* latency simulated by the offline provider"
        table.caption_justify = "left"
    table.add_column("it", justify="right", no_wrap=True)
    table.add_column("role", no_wrap=True)
    table.add_column("model", overflow="fold", ratio=1, min_width=12)
    for col in ("tokens in+out", "cost", "latency"):
        table.add_column(col, justify="right", no_wrap=True)
    table.add_column("outcome", no_wrap=True)
    for a in detail.actions:
        latency = f"{a.latency_ms / 1000:,.1f} s" + ("*" if a.latency_simulated else "")
        table.add_row(
            "—" if a.iteration is None else str(a.iteration),
            a.role,
            Text(a.model),
            f"{a.input_tokens}+{a.output_tokens}",
            fmt_usd(a.cost_usd),
            latency,
            a.outcome if a.outcome == "ok" else f"[red]{a.outcome}[/red]",
        )
    return table


def _spec_table(spec: StrategySpec) -> Table:
    """The spec as a person reads it; ``--json`` has the exact document."""
    table = Table(show_header=False, box=None, padding=(0, 1))
    table.add_column(style="bold")
    table.add_column(overflow="fold")
    indicators = ", ".join(
        f"{i.alias} = {i.kind}({', '.join(f'{k}={v}' for k, v in i.params.items())})"
        for i in spec.indicators
    )
    rows = [("rationale", spec.rationale)]
    if indicators:
        rows.append(("indicators", indicators))
    if spec.kind == "rules":
        rows += [("entry", spec.entry), ("exit", spec.exit)]
    if spec.ml is not None:
        ml = spec.ml
        rows.append(
            (
                "model",
                f"{ml.classifier} on {', '.join(ml.features)}; horizon {ml.label_horizon}, "
                f"enter P(up) >= {ml.threshold}, exit < {ml.exit_threshold}, {ml.epochs} epochs",
            )
        )
    if spec.code:
        rows.append(("code", spec.code.strip()))
    ranges = ", ".join(f"{p.name} {p.low:g}..{p.high:g} step {p.step:g}" for p in spec.parameters)
    rows.append(("parameters", ranges or "none"))
    stops = [f"stop loss {spec.stop_loss:.1%}"] if spec.stop_loss else []
    stops += [f"take profit {spec.take_profit:.1%}"] if spec.take_profit else []
    rows.append(("exits", ", ".join(stops) or "signal only"))
    for name, value in rows:
        table.add_row(name, value)
    return table


def _render_analyst(detail: SessionDetail, iteration: int) -> None:
    """The analyst's data-driven findings for this round, which fed the next design."""
    for phase in detail.phases:
        if phase.phase == "analyse" and phase.iteration == iteration:
            found = [
                AnalystSuggestion.model_validate(s) for s in phase.detail.get("suggestions", [])
            ]
            lines = [
                f"{s.label or s.indicator}: {s.condition} — train data range "
                f"{s.data_min:.4g}..{s.data_max:.4g}; proposed {s.proposed:.4g} "
                f"(its {s.percentile:g}th percentile)"
                for s in found
            ]
            body = "\n".join(lines) or "every condition is reachable on the training data"
            console.print(Panel(body, title="analyst", title_align="left"))


def _render_feedback(detail: SessionDetail, iteration: int) -> None:
    for phase in detail.phases:
        if (
            phase.phase == "design"
            and phase.iteration == iteration
            and phase.detail.get("feedback")
        ):
            text = str(phase.detail["feedback"])
            console.print(Panel(text, title="feedback sent to the designer", title_align="left"))


def _render_iteration(detail: SessionDetail, strategy: StrategyRecord) -> None:
    console.rule(f"iteration {strategy.iteration}: {strategy.name} ({strategy.kind})")
    _render_feedback(detail, strategy.iteration)
    console.print(_spec_table(strategy.spec))
    for run in (r for r in detail.training_runs if r.strategy_id == strategy.strategy_id):
        if run.report is not None:
            console.print(_training_line(run.report))
        if run.gate is not None:
            console.print(_gate_table(run.gate, "training gate"))
    for bt in (b for b in detail.backtests if b.strategy_id == strategy.strategy_id):
        m = bt.metrics
        console.print(
            f"walk-forward out-of-sample ({m.start:%Y-%m-%d} → {m.end:%Y-%m-%d}, {m.bars} "
            "bars of the development period): "
            f"return {fmt_pct(m.total_return)} vs buy-and-hold {fmt_pct(m.benchmark_return)}, "
            f"CAGR {fmt_pct(m.cagr)}, sharpe {fmt_num(m.sharpe)}, sortino {fmt_num(m.sortino)}, "
            f"max DD {fmt_pct(-m.max_drawdown)}, win rate {m.win_rate:.1%}, "
            f"trades {m.trades}, profit factor {fmt_num(m.profit_factor)}, "
            f"exposure {m.exposure:.1%}"
            if m.start and m.end
            else f"backtest: {m.model_dump()}"
        )
        if bt.gate is not None:
            console.print(_gate_table(bt.gate, "backtest gate"))
        if bt.statistical_gate is not None:
            console.print(
                _gate_table(bt.statistical_gate, f"statistical gate (N = {bt.trials or 0:,} fits)")
            )
    _render_analyst(detail, strategy.iteration)
    for a in (x for x in detail.assessments if x.strategy_id == strategy.strategy_id):
        body = a.assessment
        text = f"[bold]{body.verdict}[/bold]: {body.summary}"
        for label, items in (
            ("+", body.strengths),
            ("-", body.weaknesses),
            ("→", body.suggestions),
        ):
            text += "".join(f"\n {label} {item}" for item in items)
        console.print(Panel(text, title="assessment", title_align="left"))


def render_session(detail: SessionDetail, cfg: Settings) -> None:
    s = detail.session
    console.print(
        Panel(
            f"outcome {outcome_text(s.outcome)}   symbol {s.symbol}   trigger {s.trigger}\n"
            f"started {fmt_time(s.started_at)}   finished {fmt_time(s.finished_at)}\n"
            f"tokens {s.tokens:,}   cost {fmt_usd(s.cost_usd)}   calls {s.llm_calls}\n"
            f"workflow {s.workflow_id}",
            title=f"session {s.session_id}",
            title_align="left",
        )
    )
    print_link(cfg.workflow_ui_link(s.workflow_id, s.run_id or None))
    console.print(_phases_table(detail))
    for strategy in detail.strategies:
        _render_iteration(detail, strategy)
    _render_holdout(detail)
    console.print(_calls_table(detail))
