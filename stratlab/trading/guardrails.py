"""The composer's guardrails: an LLM plan in, executable paper instructions out.

``normalise_plan`` is pure and never raises; every change it makes is a
``GuardrailReport``. Each item is validated (a symbol of ``prices`` with a valid price,
first item of its symbol, confidence in 0..1, finite ``target_qty`` under
``max_abs_target_qty``, an action that agrees with the move), then checked against the
confidence threshold (missing counts as 0). Its target is then clamped by each risk rule
(no shorts unless allowed; reduce-only while halted or cooling down; down-weighting;
per-instrument and net-exposure caps, the latter counting the orders already emitted for
earlier items). Every clamp keeps the current position reachable, so none turns a buy
into a sell. ``order = target - current`` (a flip is a close ``compose_id:SYM`` and an
open ``compose_id:SYM:1``) is rounded down to the step size, and orders under the minimum
quantity or notional are dropped, never rounded up. With no valid item, ``fallback``
applies (``noop``: nothing; ``flat``: close every position). LLM text is only carried,
truncated; it never reaches a limit.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from stratlab.models.trading import (
    GuardrailConfig,
    GuardrailOutcome,
    GuardrailReport,
    GuardrailRule,
    InstrumentRef,
    LlmDecisionItem,
    LlmPlanProposal,
    PortfolioView,
    Side,
    TradeDigest,
    TradeInstruction,
    instruction_id,
    to_utc,
)

_INVALID_RULES = frozenset(
    {"unknown_symbol", "invalid_field", "absurd_quantity", "duplicate_symbol", "action_mismatch"}
)
_SYMBOL_CHARS = 64
_ROUND_TOL = 1e-9  # relative: 9.9999999999 units are 10 steps, not 9


def clean_text(text: str | None, limit: int) -> str:
    """``text`` cut to ``limit`` characters, without NUL (which jsonb rejects)."""
    return (text or "").replace("\x00", "")[:limit]


@dataclass
class _Book:
    """The projected portfolio of one call: positions plus the orders emitted so far."""

    positions: dict[str, float]
    prices: dict[str, float]  # the tradeable universe
    value_prices: dict[str, float]  # also values positions outside the universe
    equity: float
    drawdown: float
    halted: bool

    def net_other(self, symbol: str) -> float:
        return sum(
            q * self.value_prices.get(s, 0.0) for s, q in self.positions.items() if s != symbol
        )


@dataclass(frozen=True)
class _Target:
    index: int | None
    symbol: str
    target: float
    action: str
    confidence: float | None
    rationale: str
    source: str  # "llm" or "fallback"


def _as_price(value: object) -> float | None:
    """A finite positive price, or None."""
    try:
        price = float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return None
    return price if math.isfinite(price) and price > 0 else None


def _book(portfolio: PortfolioView, prices: Mapping[str, float], cfg: GuardrailConfig) -> _Book:
    tradeable = {s: p for s, p in ((str(s), _as_price(p)) for s, p in prices.items()) if p}
    positions: dict[str, float] = {}
    value_prices = dict(tradeable)
    for symbol, snap in portfolio.positions.items():
        if not math.isfinite(snap.quantity):
            tradeable.pop(symbol, None)  # an unknown position cannot be traded safely
            continue
        positions[symbol] = snap.quantity
        if symbol not in value_prices:
            value_prices[symbol] = _as_price(snap.mark_price) or _as_price(snap.avg_price) or 0.0
    equity = portfolio.cash + sum(q * value_prices[s] for s, q in positions.items())
    if len(positions) < len(portfolio.positions):
        equity = math.nan  # a position of unknown size: equity unknown, so halted
    peak = portfolio.peak_total_value
    drawdown = 1.0 - equity / peak if peak and math.isfinite(peak) and peak > 0 else 0.0
    halted = (
        portfolio.halted
        or not math.isfinite(equity)
        or equity <= 0
        or drawdown >= cfg.max_drawdown_halt
    )
    return _Book(positions, tradeable, value_prices, equity, drawdown, halted)


def is_halted(
    portfolio: PortfolioView, prices: Mapping[str, float], config: GuardrailConfig
) -> bool:
    """Whether only position-reducing orders may pass: the view is already halted, its
    equity is not positive, or it is ``max_drawdown_halt`` below its high-water mark."""
    return _book(portfolio, prices, config).halted


def normalise_plan(
    plan: LlmPlanProposal | None,
    portfolio: PortfolioView,
    prices: Mapping[str, float],
    digest: TradeDigest,
    config: GuardrailConfig,
    *,
    compose_id: str,
    now: datetime,
    bar_index: int | None = None,
    bar_interval: timedelta = timedelta(days=1),
) -> tuple[list[TradeInstruction], list[GuardrailReport]]:
    """Instructions for ``plan`` against ``portfolio`` at ``prices`` (the signal bar's
    closes), and what the guardrails changed. ``now`` is the signal bar's ts (copied to
    ``signal_ts``); the cool-down counts bars since the last exit by ``bar_index`` when the
    digest has ``last_exit_bar``, else by ``(now - last_exit_ts) // bar_interval``."""
    try:
        book = _book(portfolio, prices, config)
        reports: list[GuardrailReport] = []
        if book.halted:
            detail = f"drawdown {book.drawdown:.2%}, equity {book.equity:.2f}: reducing only"
            reports.append(
                GuardrailReport(rule="max_drawdown_halt", outcome="applied", detail=detail)
            )
        clock = (to_utc(now), bar_index, bar_interval)
        instructions: list[TradeInstruction] = []
        for target in _targets(plan, book, config, reports):
            final = _limit(target, book, digest, config, clock, reports)
            instructions += _orders(target, final, book, config, compose_id, clock[0], reports)
        return instructions, reports
    except Exception as exc:  # the contract is "never raises": a bug drops the plan instead
        detail = f"{type(exc).__name__}: no instruction emitted"
        return [], [GuardrailReport(rule="internal_error", outcome="dropped", detail=detail)]


def _targets(
    plan: LlmPlanProposal | None, book: _Book, cfg: GuardrailConfig, reports: list[GuardrailReport]
) -> list[_Target]:
    """The valid items' targets, or the fallback's when there is no valid item."""
    items = list(plan.items) if plan is not None else []
    if len(items) > cfg.max_items:
        detail = f"{len(items) - cfg.max_items} items beyond {cfg.max_items} ignored"
        reports.append(GuardrailReport(rule="too_many_items", outcome="dropped", detail=detail))
        items = items[: cfg.max_items]
    targets: list[_Target] = []
    seen: set[str] = set()
    invalid = 0
    for index, item in enumerate(items):
        outcome = _validate(index, item, seen, book, cfg)
        if isinstance(outcome, GuardrailReport):
            reports.append(outcome)
            invalid += outcome.rule in _INVALID_RULES
        elif outcome is not None:
            targets.append(outcome)
    if items and invalid < len(items):
        return targets
    why = "no plan" if plan is None else "an empty plan" if not items else "no valid item"
    detail = f"{why}: fallback {cfg.fallback}"
    reports.append(GuardrailReport(rule="fallback", outcome="applied", detail=detail))
    if cfg.fallback == "noop":
        return []
    return [
        _Target(None, symbol, 0.0, "flat", None, "", "fallback")
        for symbol, qty in sorted(book.positions.items())
        if qty != 0 and symbol in book.prices
    ]


def _report(
    rule: GuardrailRule,
    outcome: GuardrailOutcome,
    symbol: str,
    index: int | None,
    detail: str,
    requested: float | None = None,
    result: float | None = None,
) -> GuardrailReport:
    requested, result = GuardrailReport.number(requested), GuardrailReport.number(result)
    symbol = clean_text(symbol, _SYMBOL_CHARS)
    return GuardrailReport(
        rule=rule,
        outcome=outcome,
        symbol=symbol,
        item_index=index,
        requested=requested,
        result=result,
        detail=detail,
    )


def _validate(
    index: int, item: LlmDecisionItem, seen: set[str], book: _Book, cfg: GuardrailConfig
) -> _Target | GuardrailReport | None:
    symbol, action, conf = item.instrument.symbol, item.action, item.confidence
    if symbol not in book.prices:
        return _report("unknown_symbol", "dropped", symbol, index, "not a tradeable instrument")
    if symbol in seen:
        return _report("duplicate_symbol", "dropped", symbol, index, "first item wins")
    seen.add(symbol)
    if conf is not None and not (math.isfinite(conf) and 0.0 <= conf <= 1.0):
        return _report("invalid_field", "dropped", symbol, index, "confidence not in 0..1")
    if action == "noop":
        return None
    current = book.positions.get(symbol, 0.0)
    target = 0.0 if action == "flat" else item.target_qty
    if target is None or not math.isfinite(target):
        return _report("invalid_field", "dropped", symbol, index, "target_qty not a finite number")
    if abs(target) > cfg.max_abs_target_qty:
        detail = f"|target_qty| above {cfg.max_abs_target_qty:g}"
        return _report("absurd_quantity", "dropped", symbol, index, detail, target)
    if (action == "buy" and target < current) or (action == "sell" and target > current):
        detail = f"{action} with a target on the other side of the current {current:g}"
        return _report("action_mismatch", "dropped", symbol, index, detail, target)
    if (conf or 0.0) < cfg.min_confidence:
        detail = f"confidence {conf or 0.0:g} below {cfg.min_confidence:g}"
        return _report("low_confidence", "dropped", symbol, index, detail, target)
    rationale = clean_text(item.rationale, cfg.max_text_chars)
    return _Target(index, symbol, target, action, conf, rationale, "llm")


def _bars_since_exit(
    book_symbol: str, digest: TradeDigest, clock: tuple[datetime, int | None, timedelta]
) -> float | None:
    entry = digest.by_instrument.get(book_symbol)
    if entry is None:
        return None
    now, bar_index, bar_interval = clock
    if bar_index is not None and entry.last_exit_bar is not None:
        return float(bar_index - entry.last_exit_bar)
    if entry.last_exit_ts is None or bar_interval <= timedelta(0):
        return None
    return float(math.floor((now - entry.last_exit_ts) / bar_interval))


def _limit(
    t: _Target,
    book: _Book,
    digest: TradeDigest,
    cfg: GuardrailConfig,
    clock: tuple[datetime, int | None, timedelta],
    reports: list[GuardrailReport],
) -> float:
    """The target position after the risk rules, each a clamp that keeps ``current``."""
    current, price, target = book.positions.get(t.symbol, 0.0), book.prices[t.symbol], t.target

    def clamp(rule: GuardrailRule, lo: float, hi: float, detail: str) -> None:
        nonlocal target
        new = min(max(target, min(lo, current)), max(hi, current))
        if new != target:
            outcome: GuardrailOutcome = "dropped" if new == current else "clipped"
            reports.append(_report(rule, outcome, t.symbol, t.index, detail, target, new))
            target = new

    reduce_only = (min(0.0, current), max(0.0, current))
    if not cfg.allow_short:
        clamp("short_not_allowed", 0.0, math.inf, "shorting is not allowed")
    if book.halted:
        clamp("max_drawdown_halt", *reduce_only, "halted: only position-reducing orders")
    bars = _bars_since_exit(t.symbol, digest, clock)
    if bars is not None and bars < cfg.cooldown_bars:
        clamp("cooldown", *reduce_only, f"{bars:g} bars since the last exit")
    entry = digest.by_instrument.get(t.symbol)
    score = entry.recent_performance_score if entry else None
    if score is not None and math.isfinite(score) and score < cfg.downweight_below:
        base = current if current * target > 0 else 0.0  # the part that adds risk
        if abs(target) > abs(base):
            new = base + cfg.downweight_factor * (target - base)
            detail = f"recent performance {score:g} below {cfg.downweight_below:g}"
            reports.append(_report("downweight", "clipped", t.symbol, t.index, detail, target, new))
            target = new
    cap = cfg.limits_for(t.symbol).max_position_notional or 0.0
    clamp("position_cap", -cap / price, cap / price, f"|position| * price <= {cap:g}")
    budget = cfg.max_net_exposure * book.equity if book.equity > 0 else 0.0
    other = book.net_other(t.symbol)
    detail = f"|net exposure| <= {budget:.2f} incl. pending orders"
    bounds = ((-budget - other) / price, (budget - other) / price)
    # NaN bounds would silently let anything through, so unknown exposure is reduce-only.
    clamp("net_exposure_cap", *(bounds if all(map(math.isfinite, bounds)) else reduce_only), detail)
    return target


def _orders(
    t: _Target,
    target: float,
    book: _Book,
    cfg: GuardrailConfig,
    compose_id: str,
    signal_ts: datetime,
    reports: list[GuardrailReport],
) -> list[TradeInstruction]:
    current = book.positions.get(t.symbol, 0.0)
    # A flip is a close and an open, so each instruction only reduces or only adds risk.
    legs = [-current, target] if current * target < 0 else [target - current]
    meta = {
        "source": t.source,
        "action": t.action,
        "requested_target_qty": t.target,
        "target_qty": target,
        "confidence": t.confidence,
        "rationale": t.rationale,
    }
    out: list[TradeInstruction] = []
    for delta in legs:
        qty = _quantity(t, abs(delta), book.prices[t.symbol], cfg, reports)
        if qty > 0:
            side: Side = "buy" if delta > 0 else "sell"
            out.append(
                TradeInstruction(
                    instruction_id=instruction_id(compose_id, t.symbol, len(out)),
                    compose_id=compose_id,
                    instrument=InstrumentRef(symbol=t.symbol),
                    side=side,
                    quantity=qty,
                    max_slippage_bps=cfg.max_slippage_bps,
                    meta=meta,
                    signal_ts=signal_ts,
                )
            )
            book.positions[t.symbol] = book.positions.get(t.symbol, 0.0) + math.copysign(qty, delta)
    return out


def _quantity(
    t: _Target, wanted: float, price: float, cfg: GuardrailConfig, reports: list[GuardrailReport]
) -> float:
    """``wanted`` rounded down to the step, or 0 when it is dropped."""
    limits = cfg.limits_for(t.symbol)
    step = limits.step_size or 1.0
    steps = wanted / step
    if wanted == 0.0:
        return 0.0
    if not math.isfinite(steps) or steps >= 2.0**53:
        reports.append(_report("absurd_quantity", "dropped", t.symbol, t.index, "", wanted))
        return 0.0
    qty = math.floor(steps + _ROUND_TOL) * step
    if qty < wanted * (1 - _ROUND_TOL):
        outcome: GuardrailOutcome = "clipped" if qty > 0 else "dropped"
        detail = f"rounded down to a multiple of {step:g}"
        reports.append(_report("step_size", outcome, t.symbol, t.index, detail, wanted, qty))
    if qty <= 0:
        return 0.0
    if qty < (limits.min_qty or 0.0):
        detail = f"{qty:g} below the minimum quantity {limits.min_qty:g}"
        reports.append(_report("min_qty", "dropped", t.symbol, t.index, detail, qty))
        return 0.0
    if qty * price < (limits.min_notional or 0.0):
        detail = f"notional {qty * price:.2f} below {limits.min_notional:g}"
        reports.append(_report("min_notional", "dropped", t.symbol, t.index, detail, qty))
        return 0.0
    return qty
