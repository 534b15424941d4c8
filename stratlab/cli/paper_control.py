"""Bodies of ``stratlab paper start`` and the signals: build and check a
``PaperTradingInput``, start the ``PaperTradingWorkflow`` by its type name (so the CLI needs
no workflow import), and send ``pause``, ``resume`` or ``stop`` to a running one."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date
from pathlib import Path
from typing import Any

import pydantic
from rich.text import Text
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.exceptions import WorkflowAlreadyStartedError
from temporalio.service import RPCError, RPCStatusCode

from stratlab.cli._common import CliError, console, print_json, print_link, store, temporal
from stratlab.cli.paper_view import clean, paper_id, summary_text, workflow_id
from stratlab.config import Settings
from stratlab.models.paper import (
    PaperCostsInput,
    PaperSummary,
    PaperTradingInput,
    check_strategy_id,
)
from stratlab.models.trading import GuardrailConfig
from stratlab.runtime import StackError
from stratlab.store.trading import PaperRepo
from stratlab.temporal_names import PAPER_PAUSE, PAPER_RESUME, PAPER_STOP
from workflows.labels import paper_labels

WORKFLOW_TYPE = "PaperTradingWorkflow"
_DURATION = re.compile(r"^(\d+(?:\.\d*)?|\.\d+)(ms|s|m|h)?$")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


def parse_duration(text: str, *, option: str) -> float:
    """Seconds of ``1s``, ``250ms``, ``2m``, ``1h`` or a bare number of seconds (``0``)."""
    found = _DURATION.match(text.strip().lower())
    if found is None:
        raise CliError(f"{option} {text!r} is not a duration like 1s, 250ms, 2m or 0")
    return float(found.group(1)) * _UNIT_SECONDS[found.group(2)]


def parse_day(text: str | None, *, option: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        raise CliError(f"{option} {text!r} is not a date like 2015-01-02") from None


def default_strategy_id(name: str, symbols: Sequence[str], replay_from: date | None) -> str:
    """A slug of the name, or ``<symbols>-<replay start or 'live'>``."""
    base = name or "-".join([*symbols, replay_from.isoformat() if replay_from else "live"])
    return re.sub(r"[^a-z0-9_.-]+", "-", base.lower()).strip("-._")[:64].rstrip("-._")


def parse_feeds(entries: Sequence[str], symbols: Sequence[str]) -> dict[str, str]:
    """``SYMBOL=PATH`` options as symbol -> absolute path (the worker's cwd differs)."""
    feeds: dict[str, str] = {}
    for entry in entries:
        symbol, sep, path = (part.strip() for part in entry.partition("="))
        if not sep or not symbol or not path:
            raise CliError(f"--feed {entry!r} must be SYMBOL=PATH")
        if symbol not in symbols:
            raise CliError(f"--feed {symbol!r} is not one of --symbols")
        if not Path(path).is_file():
            raise CliError(f"--feed {symbol}: no such file: {path}")
        feeds[symbol] = str(Path(path).resolve())
    return feeds


def build_input(
    *,
    symbols: str,
    strategy_id: str | None,
    name: str,
    prompt_id: str | None,
    skill_id: str | None,
    interval: str,
    replay_from: str | None,
    replay_to: str | None,
    speed: str,
    poll: str,
    feed: Sequence[str],
    initial_capital: float,
    allow_short: bool,
    max_position: float,
    fees_bps: float,
    slippage_bps: float,
    max_cycles: int | None,
) -> PaperTradingInput:
    """The workflow input from the command's options; ``CliError`` for a bad one."""
    if prompt_id and skill_id:
        raise CliError("--prompt-id and --skill are mutually exclusive: pass one")
    symbol_list = [s.strip() for s in symbols.split(",") if s.strip()]
    start, end = (
        parse_day(replay_from, option="--replay-from"),
        parse_day(replay_to, option="--replay-to"),
    )
    if end is not None and start is None:
        raise CliError("--replay-to needs --replay-from")
    if start is not None and end is not None and end < start:
        raise CliError(f"--replay-to {end} is before --replay-from {start}")
    feeds = parse_feeds(feed, symbol_list)
    sid = strategy_id or default_strategy_id(name, symbol_list, start)
    try:
        check_strategy_id(sid)
        return PaperTradingInput(
            strategy_id=sid,
            name=name or sid,
            symbols=symbol_list,
            prompt_id=prompt_id,
            skill_id=skill_id,
            interval=interval,
            replay_from=start,
            replay_to=end,
            speed_seconds=parse_duration(speed, option="--speed"),
            poll_seconds=parse_duration(poll, option="--poll"),
            feed=feeds,
            initial_capital=initial_capital,
            max_cycles=max_cycles,
            guardrails=GuardrailConfig(allow_short=allow_short, max_position_notional=max_position),
            costs=PaperCostsInput(fees_bps=fees_bps, slippage_bps=slippage_bps),
        )
    except pydantic.ValidationError as err:
        first = err.errors()[0]
        where = ".".join(str(p) for p in first["loc"]) or "input"
        raise CliError(f"invalid {where}: {first['msg']}") from None
    except ValueError as err:
        raise CliError(str(err)) from None


def root_cause(err: BaseException) -> str:
    """The innermost cause's message: the activity's error, not "Activity task failed"."""
    while err.__cause__ is not None or getattr(err, "cause", None) is not None:
        err = getattr(err, "cause", None) or err.__cause__  # type: ignore[assignment]
    return clean(getattr(err, "message", None) or str(err) or type(err).__name__)


async def _client(cfg: Settings) -> Client:
    try:
        return await temporal(cfg)
    except StackError as err:
        raise CliError(f"{err}. Start the lab with `stratlab dev` first") from err


async def _check_references(cfg: Settings, inp: PaperTradingInput) -> PaperTradingInput:
    """Known symbols, a composer prompt (a unique prefix is expanded) and an existing skill."""
    from stratlab.cli.ids import resolve_skill
    from stratlab.cli.prompts_view import resolve_prompt
    from stratlab.research.data import known_symbols
    from stratlab.store.market import MarketRepo
    from stratlab.store.prompts import PromptRepo
    from stratlab.store.skills import SkillRepo

    async with store(cfg) as db:
        known = await known_symbols(MarketRepo(db))
        unknown = [s for s in inp.symbols if s not in known and s not in inp.feed]
        if unknown:
            raise CliError(f"unknown symbol {unknown[0]!r}; known: {', '.join(known)}")
        if inp.prompt_id:
            prompt = await resolve_prompt(PromptRepo(db), inp.prompt_id)
            if prompt.role != "composer":
                raise CliError(f"prompt {prompt.id} is a {prompt.role} prompt, not a composer one")
            inp = inp.model_copy(update={"prompt_id": prompt.id})
        if inp.skill_id:
            skill = await SkillRepo(db).get(await resolve_skill(db, inp.skill_id))
            if skill is None:
                raise CliError(f"no skill {inp.skill_id!r}; `stratlab skills list` shows them")
            inp = inp.model_copy(update={"skill_id": skill.skill_id})
            if skill.spec.kind != "rules":
                raise CliError(f"skill {skill.skill_id} is a {skill.spec.kind} strategy: paper "
                               "trading follows rules skills")  # fmt: skip
        # The workflow refuses an existing id too, but only after it has started.
        existing = await PaperRepo(db).get_strategy(inp.strategy_id)
        if existing is not None and existing.status in ("running", "paused"):
            raise CliError(
                f"paper strategy {inp.strategy_id} is already running ({existing.status})"
            )
        if existing is not None:
            raise CliError(f"paper strategy {inp.strategy_id} already exists ({existing.status}); "
                           "choose another --id")  # fmt: skip
    return inp


async def start(cfg: Settings, inp: PaperTradingInput, *, wait: bool, as_json: bool) -> None:
    inp = await _check_references(cfg, inp)
    client = await _client(cfg)
    wid = workflow_id(inp.strategy_id)
    try:
        handle = await client.start_workflow(
            WORKFLOW_TYPE,
            inp,
            id=wid,
            task_queue=cfg.task_queue("orchestrator"),
            result_type=PaperSummary,
            **paper_labels(inp),
        )
    except WorkflowAlreadyStartedError:
        raise CliError(f"paper strategy {inp.strategy_id} is already running ({wid})") from None
    info: dict[str, Any] = {
        "strategy_id": inp.strategy_id,
        "workflow_id": wid,
        "ui": cfg.workflow_ui_link(wid),
        "input": inp,
    }
    if not as_json:
        when = f"from {inp.replay_from} to {inp.replay_to or 'the end of the data'}"
        how = f"replay {when}" if inp.mode == "replay" else "live feed"
        console.print(f"started {wid}: {', '.join(inp.symbols)}, {how}", highlight=False)
        print_link(info["ui"])
        console.print(f"  follow it: stratlab paper status {inp.strategy_id}", highlight=False)
    if wait:
        try:
            with console.status(f"waiting for {wid}…"):
                result: PaperSummary = await handle.result()
        except WorkflowFailureError as err:
            raise CliError(f"{wid} failed: {root_cause(err)}") from err
        info["result"] = result
    if as_json:
        print_json(info)
    elif wait:
        console.print(summary_text(info["result"]))


async def signal(
    cfg: Settings, strategy_id: str, name: str, *, reason: str | None, as_json: bool
) -> None:
    """Send ``pause``, ``resume`` or ``stop`` (with its reason) to a running strategy."""
    assert name in (PAPER_PAUSE, PAPER_RESUME, PAPER_STOP)
    strategy_id = await paper_id(cfg, strategy_id)
    client = await _client(cfg)
    wid = workflow_id(strategy_id)
    handle = client.get_workflow_handle(wid)
    not_running = f"paper strategy {strategy_id} is not running ({wid} has finished): "
    not_running += "a finished strategy takes no signals"
    try:
        described = await handle.describe()
        if described.status != WorkflowExecutionStatus.RUNNING:
            raise CliError(not_running)
        if name == PAPER_STOP:
            await handle.signal(name, reason or "stopped from the CLI")
        else:
            await handle.signal(name)
    except RPCError as err:
        if err.status != RPCStatusCode.NOT_FOUND:
            raise
        if "completed" in str(err).lower() or "finished" in str(err).lower():
            raise CliError(not_running) from err
        raise CliError(f"no paper strategy {strategy_id!r} (no workflow {wid})") from err
    sent = {"workflow_id": wid, "signal": name, "reason": reason if name == PAPER_STOP else None}
    if as_json:
        print_json(sent)
        return
    because = f" (reason: {clean(reason)})" if name == PAPER_STOP and reason else ""
    console.print(Text(f"sent {name} to {wid}{because}"))
