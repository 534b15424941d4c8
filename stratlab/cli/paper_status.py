"""Body of ``stratlab paper status``: a strategy's row, its workflow's state and summary,
its book marked at the last bar and its last decisions, each with the plan, what the
guardrails changed and the fills.

Plans, rationales and guardrail details come from LLM output: they are printed as plain
``Text`` with control characters removed, never as rich markup.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from rich.table import Table
from rich.text import Text

from stratlab.cli._common import CliError, console, fmt_pct, print_json, store, temporal
from stratlab.cli.ids import resolve_paper
from stratlab.cli.paper_view import (
    ENDED_EARLY,
    clean,
    day,
    failure_reason,
    live_summary,
    money,
    qty,
    run_mode,
    stored_book,
    summary_text,
    workflow_id,
)
from stratlab.config import Settings
from stratlab.models.trading import HistoryRecord, PortfolioView
from stratlab.store.trading import PaperRepo, PaperStrategyRecord

DECISIONS_SHOWN = 5
RATIONALE_CHARS = 80


def decisions(records: Sequence[HistoryRecord]) -> list[dict[str, Any]]:
    """History records grouped per cycle (compose id) by decision bar, oldest first. A
    cycle's execution record carries the later fill bar's ts, so a cycle seen only
    through it (cut off by the query's limit) is left out."""
    cycles: dict[str, dict[str, Any]] = {}
    for record in records:
        cycle = cycles.setdefault(record.reference_id, {"compose_id": record.reference_id})
        cycle[record.kind] = record.payload
        if record.kind != "execution":
            cycle.setdefault("ts", record.ts)
    return sorted((c for c in cycles.values() if "ts" in c), key=lambda c: c["ts"])


def _plan_lines(compose: dict[str, Any]) -> list[str]:
    plan = compose.get("plan") or {}
    lines = []
    for item in plan.get("items") or []:
        symbol = (item.get("instrument") or {}).get("symbol")
        conf = item.get("confidence")
        why = clean(item.get("rationale"), RATIONALE_CHARS)
        lines.append(
            f"{clean(symbol, 20)} {clean(item.get('action'), 8)} → {qty(item.get('target_qty'))}"
            f" ({'—' if conf is None else f'{conf:.2f}'}) {why}"
        )
    if compose.get("error"):
        lines.append(f"error: {clean(compose['error'], RATIONALE_CHARS)}")
    return lines or ["no plan"]


def _decision_cells(cycle: dict[str, Any]) -> tuple[Text, ...]:
    bars = (cycle.get("features") or {}).get("bar") or {}
    ts = next((b.get("ts") for b in bars.values() if isinstance(b, dict)), None) or cycle["ts"]
    closes = [f"{clean(s, 20)} {money(b.get('close'))}" for s, b in bars.items()]
    decided = cycle.get("instructions") or {}
    rails = [
        f"{clean(g.get('rule'))} {clean(g.get('outcome'))} {clean(g.get('symbol'), 20)}: "
        f"{qty(g.get('requested'))} → {qty(g.get('result'))} {clean(g.get('detail'), 60)}"
        for g in decided.get("guardrails") or []
    ]
    if decided.get("fallback"):
        rails.append("fallback decided")
    fills = [
        f"{clean(f.get('side'))} {qty(f.get('quantity'))} {clean(f.get('symbol'), 20)} "
        f"@ {money(f.get('price'))}"
        for f in (cycle.get("execution") or {}).get("fills") or []
    ]
    return (
        Text("\n".join([day(ts), *closes])),
        Text("\n".join(_plan_lines(cycle.get("compose") or {}))),
        Text("\n".join(rails) or "—"),
        Text("\n".join(fills) or ("—" if "execution" in cycle else "pending: next bar's open")),
    )


def _portfolio(view: PortfolioView) -> list[Table | Text | str]:
    table = Table(title="Portfolio", title_justify="left")
    for col in ("symbol", "qty", "avg price", "mark", "unrealised P&L", "P&L %"):
        table.add_column(col, justify="left" if col == "symbol" else "right")
    for symbol, p in view.positions.items():
        table.add_row(Text(symbol), qty(p.quantity), money(p.avg_price), money(p.mark_price),
                      money(p.unrealized_pnl), fmt_pct(p.pnl_pct))  # fmt: skip
    totals = Text(
        f"cash {money(view.cash)} · total value {money(view.total_value)} · realised P&L "
        f"{money(view.realized_pnl)} · fees {money(view.fees_paid)}"
    )
    if view.halted:
        totals.append(" · HALTED by the drawdown limit: only reducing orders pass", "red")
    return [table if view.positions else "no open positions", totals]


def _decisions_table(cycles: Sequence[dict[str, Any]]) -> Table:
    title = f"Last {len(cycles)} decisions" if len(cycles) > 1 else "Last decision"
    table = Table(title=title, title_justify="left")
    for col in ("bar", "plan (symbol action → target (confidence) rationale)", "guardrails",
                "fills"):  # fmt: skip
        table.add_column(col)
    for cycle in cycles:
        table.add_row(*_decision_cells(cycle))
    return table


def _header(strategy_id: str, record: PaperStrategyRecord | None, wf_status: str | None,
            mode: str) -> Text:  # fmt: skip
    head = Text.assemble(("paper strategy ", "bold"), (strategy_id, "bold cyan"))
    if record is not None:
        prompt = record.prompt_id or (f"skill {record.skill_id}" if record.skill_id else "prod")
        head.append(f"  {clean(record.name, 60)}\nstatus {record.status} · mode {mode} · ")
        head.append(f"symbols {', '.join(record.symbols)} · prompt {prompt} · ")
        head.append(f"capital {money(record.initial_capital)}")
    head.append(f"\nworkflow {workflow_id(strategy_id)}: {wf_status or 'Temporal not reachable'}")
    return head


async def status(cfg: Settings, ref: str, *, as_json: bool) -> None:
    async with store(cfg) as db:
        strategy_id = await resolve_paper(db, ref) or ref
        repo = PaperRepo(db)
        record = await repo.get_strategy(strategy_id)
        loaded = await stored_book(repo, strategy_id)
        history = await repo.history(strategy_id, limit=(DECISIONS_SHOWN + 1) * 4)
        equity = await repo.equity(strategy_id)
    wf_status, summary = await live_summary(cfg, strategy_id)
    reason = None
    if wf_status in ENDED_EARLY:
        reason = await failure_reason(await temporal(cfg), workflow_id(strategy_id))
    if record is None and wf_status in (None, "not found"):
        raise CliError(f"no paper strategy {strategy_id!r}; `stratlab paper list` shows them")
    cycles = decisions(history)[-DECISIONS_SHOWN:]
    ts = equity[-1].ts if equity else datetime.now(UTC)
    view = loaded[1].mark(loaded[1].last_prices, ts=ts) if loaded else None
    if as_json:
        print_json({"strategy": record,
                    "workflow": {"status": wf_status, "summary": summary, "reason": reason},
                    "cycle": loaded[0] if loaded else None, "portfolio": view,
                    "decisions": cycles})  # fmt: skip
        return
    mode = summary.mode if summary else run_mode(record)
    console.print(_header(strategy_id, record, wf_status, mode))
    if reason is not None:
        console.print(Text(f"{wf_status}: {clean(reason, 300)}"), style="red")
    if summary is not None:
        console.print(summary_text(summary))
    if view is None:
        console.print("no book yet: the first cycle has not been applied")
    else:
        console.print(*_portfolio(view), sep="\n")
    if cycles:
        console.print(_decisions_table(cycles))
