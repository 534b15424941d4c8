"""``stratlab skills``: the skill library, strategies that passed every gate (read only)."""

from __future__ import annotations

from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from stratlab.cli._common import (
    CliError,
    JsonOpt,
    console,
    fmt_num,
    fmt_pct,
    fmt_time,
    narrow_table,
    print_json,
    run,
    settings,
    short_ids,
    store,
)
from stratlab.cli.ids import resolve_skill
from stratlab.config import Settings
from stratlab.models.records import SkillRecord
from stratlab.store.skills import SkillRepo

KINDS = ("rules", "ml", "code")

skills_app = typer.Typer(
    help="The skill library: strategies that passed every gate.", no_args_is_help=True
)


@skills_app.command("list")
def list_skills(
    symbol: Annotated[str | None, typer.Option(help="only skills of this data set")] = None,
    kind: Annotated[str | None, typer.Option(help="rules | ml | code")] = None,
    limit: Annotated[int, typer.Option(min=1, max=1000)] = 50,
    as_json: JsonOpt = False,
) -> None:
    """Skills, best out-of-sample Sharpe first."""
    if kind is not None and kind not in KINDS:
        raise CliError(f"unknown kind {kind!r}; kinds are: {', '.join(KINDS)}")
    run(_list(settings(), symbol=symbol, kind=kind, limit=limit, as_json=as_json))


@skills_app.command("show")
def show_skill(
    skill_id: Annotated[
        str,
        typer.Argument(help="skill id, the strategy id it came from, or a unique prefix"),
    ],
    as_json: JsonOpt = False,
) -> None:
    """One skill: metrics, chosen parameters, the spec and its code."""
    run(_show(settings(), skill_id, as_json=as_json))


async def _list(
    cfg: Settings, *, symbol: str | None, kind: str | None, limit: int, as_json: bool
) -> None:
    async with store(cfg) as pool:
        skills = await SkillRepo(pool).list(symbol=symbol, kind=kind, limit=limit)
    if as_json:
        print_json(skills)
        return
    if not skills:
        console.print("no skills yet: a session that passes every gate adds one")
        return
    console.print(skills_table(skills))


def skills_table(skills: list[SkillRecord]) -> Table:
    """Skills for 80 columns: short ids (any unique prefix works in `skills show`), the
    name wraps; tags and the rest are in `skills show` and --json."""
    table = narrow_table(f"Skills ({len(skills)}), best out-of-sample Sharpe first")
    table.add_column("skill", no_wrap=True)
    table.add_column("name", ratio=1, overflow="fold")
    for col in ("kind", "symbol"):
        table.add_column(col, no_wrap=True)
    for col in ("sharpe", "return", "max dd", "trades"):
        table.add_column(col, justify="right", no_wrap=True)
    short = short_ids([s.skill_id for s in skills])
    for s in skills:
        m = s.metrics
        table.add_row(
            short[s.skill_id],
            Text(s.name),
            s.kind,
            s.symbol,
            fmt_num(s.score),
            fmt_pct(m.total_return),
            fmt_pct(-m.max_drawdown),
            str(m.trades),
        )
    return table


async def _show(cfg: Settings, skill_id: str, *, as_json: bool) -> None:
    async with store(cfg) as pool:
        skill = await SkillRepo(pool).get(await resolve_skill(pool, skill_id))
    if skill is None:  # removed between the two reads
        raise CliError(f"no skill {skill_id!r}; `stratlab skills list` shows them")
    if as_json:
        print_json(skill)
        return
    _render(skill)


def _render(skill: SkillRecord) -> None:
    m, spec = skill.metrics, skill.spec
    console.print(f"[bold]{skill.name}[/bold]  ({skill.kind}, {skill.symbol})", markup=True)
    console.print(
        f"skill {skill.skill_id} · strategy {skill.strategy_id} · session "
        f"{skill.session_id or '—'} · {fmt_time(skill.created_at)}",
        highlight=False,
        markup=False,
    )
    console.print(f"tags: {', '.join(skill.tags)}", markup=False)
    console.print(
        f"out-of-sample: sharpe {fmt_num(m.sharpe)}, return {fmt_pct(m.total_return)}, "
        f"max drawdown {fmt_pct(-m.max_drawdown)}, win rate {m.win_rate:.1%}, "
        f"trades {m.trades}, buy-and-hold {fmt_pct(m.benchmark_return)}",
        markup=False,
    )
    if skill.params:
        chosen = ", ".join(f"{k}={v}" for k, v in skill.params.items())
        console.print(f"parameters chosen: {chosen}", markup=False)
    if spec.stop_loss or spec.take_profit:
        console.print(f"stop loss {spec.stop_loss}, take profit {spec.take_profit}", markup=False)
    if spec.kind == "rules":
        console.print(f"entry: {spec.entry}\nexit:  {spec.exit}", markup=False)
    elif spec.ml is not None:
        console.print(f"ml: {spec.ml.model_dump_json()}", markup=False)
    if skill.code:
        console.print("code:", markup=False)
        console.print(skill.code.rstrip(), markup=False, highlight=False)
    if spec.rationale:
        console.print(f"rationale: {spec.rationale}", markup=False)
