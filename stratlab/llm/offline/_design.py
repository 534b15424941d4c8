"""The offline designer: a StrategySpec from what the prompt says, deterministically.

Fresh designs pick a family (weighted by kind, directives, the data summary's reading of
the series, feedback and recent failures) and build it: the prompt's style directives
decide first; without them a series the summary calls persistent gets a trend or breakout
family and a reverting one a mean-reversion family, as a researcher reading the variance
ratio would choose. With a previous spec in the prompt the designer revises that spec
instead, keeping its family, unless the feedback reports a low win rate on a
non-mean-reversion design on data that does not persist, which switches to a
mean-reversion family. Feedback signals (how they are read:
``stratlab.llm.offline._feedback``) and what they do:

    drawdown       add a stop loss, or tighten the existing one (x0.7)
    few_trades     windows x0.6 and looser entry thresholds
    many_trades    windows x1.5
    low_win_rate   mean-reversion family (unless the data persists)
    no_edge        a fresh design from another family (rules and code)
    relax          the analyst's "relax <param> to about <value>": that range moves so
                   its permissive end is the value (grid size unchanged)

Kind ``code`` (families in ``stratlab.llm.offline._code``) follows the same paths, plus
a repair: when the feedback reports an error (``code_error_kind``), the previous code is
replaced by its family's clean code, keeping the name with an ``-rN`` suffix.
"""

from __future__ import annotations

import math
import random
import re

from stratlab.llm.offline._code import (
    CODE_FAMILIES,
    code_family_of,
    has_trend_filter,
    with_bug,
)
from stratlab.llm.offline._edits import (
    add_trend_filter,
    loosen,
    replace_range,
    scale_windows,
    spec_has_trend_filter,
    three_values,
    tighter_stop,
)
from stratlab.llm.offline._families import (
    BREAKOUT,
    FAMILIES,
    MEAN_REVERSION,
    TREND,
    Draft,
    Knobs,
    family_from_name,
    family_of,
    style_of,
)
from stratlab.llm.offline._feedback import FeedbackSignals, code_error_kind, read_feedback
from stratlab.llm.offline._prompt import DesignerView
from stratlab.models.research import StrategySpec

_CHARACTER = re.compile(r"variance ratio[^:\n]*:\s*(persistent|reverting)\b", re.IGNORECASE)


def design(view: DesignerView, rng: random.Random) -> StrategySpec:
    """The offline designer's answer to a designer prompt."""
    signals = read_feedback(view.feedback)
    previous = view.previous_spec
    if previous is None:
        spec = _fresh(view, signals, rng, notes=[])
        if spec.kind == "code" and "code_bug" in view.directives and view.iteration == 1:
            spec = spec.model_copy(update={"code": with_bug(spec.code or "")})
        return spec
    if view.kind in ("rules", "ml", "code") and previous.kind != view.kind:
        return _fresh(view, signals, rng, notes=[])  # the cycle asks for the other kind
    error = code_error_kind(view.feedback) if previous.kind == "code" else None
    if error is not None:
        return _repair_code(previous, view, rng, error)
    family = code_family_of(previous) if previous.kind == "code" else family_of(previous)
    if signals.no_edge and previous.kind in ("rules", "code"):
        note = f"Switched from {previous.name} to another family: it showed no edge."
        return _fresh(view, signals, rng, notes=[note], avoid=family)
    trending = TREND in data_styles(view.data)
    if (
        signals.low_win_rate
        and not trending
        and previous.kind == "rules"
        and style_of(family) != MEAN_REVERSION
    ):
        note = f"Switched from {previous.name} to mean reversion because its win rate was low."
        return _fresh(view, signals, rng, notes=[note])
    return _revise(previous, view, signals, rng)


def _knobs(view: DesignerView, signals: FeedbackSignals) -> Knobs:
    scale = 1.0
    if "longer_lookbacks" in view.directives:
        scale *= 2.0
    if "shorter_lookbacks" in view.directives:
        scale *= 0.5
    if signals.few_trades:
        scale *= 0.6
    if signals.many_trades:
        scale *= 1.5
    return Knobs(window_scale=min(4.0, max(0.25, scale)), loose=signals.few_trades)


def _choose_family(
    view: DesignerView, signals: FeedbackSignals, rng: random.Random, avoid: str | None = None
) -> str:
    directives = view.directives
    rules = [name for name in FAMILIES if name != "ml"]
    if view.kind == "ml":
        return "ml"
    if view.kind == "code":
        allowed = list(CODE_FAMILIES)
    elif view.kind == "rules" or "rules_only" in directives:
        allowed = rules
    elif "machine_learning" in directives:
        return "ml"
    else:
        allowed = [*rules, "ml"]
    styles = {s for s in ("mean_reversion", "trend_following", "breakout") if s in directives}
    wanted = {style.replace("trend_following", "trend") for style in styles}
    # The prompt's instructions first; else what the data summary says the series is.
    wanted = wanted or data_styles(view.data)
    if signals.low_win_rate and TREND not in wanted:
        wanted.add(MEAN_REVERSION)
    preferred = [name for name in allowed if _style(name, view) in wanted]
    candidates = [name for name in preferred or allowed if name != avoid] or preferred or allowed
    # Families that failed recently on this symbol are tried less often, not banned.
    failed = {family_from_name(r.name) for r in view.recent if r.outcome and r.outcome != "success"}
    weights = [0.3 if name in failed else 1.0 for name in candidates]
    return rng.choices(candidates, weights=weights)[0]


def data_styles(data: str) -> set[str]:
    """The families' styles that fit the data summary's variance-ratio reading
    (``stratlab.market.character``): trend and breakout when returns persist, mean
    reversion when they revert, none when the series looks like a random walk."""
    match = _CHARACTER.search(data)
    if match is None:
        return set()
    return {TREND, BREAKOUT} if match.group(1).lower() == "persistent" else {MEAN_REVERSION}


def _style(family: str, view: DesignerView) -> str | None:
    return CODE_FAMILIES[family][0] if view.kind == "code" else style_of(family)


def _fresh(
    view: DesignerView,
    signals: FeedbackSignals,
    rng: random.Random,
    notes: list[str],
    avoid: str | None = None,
) -> StrategySpec:
    knobs = _knobs(view, signals)
    family = _choose_family(view, signals, rng, avoid)
    table = CODE_FAMILIES if view.kind == "code" else FAMILIES
    draft: Draft = table[family][1](rng, knobs)
    kind = "code" if draft.code else "ml" if family == "ml" else "rules"
    prefix = "code-" if kind == "code" else ""
    spec = StrategySpec(
        name=f"{_slug(view.symbol)}-{prefix}{family.replace('_', '-')}-{rng.getrandbits(16):04x}",
        kind=kind,
        code=draft.code,
        symbol=view.symbol,
        indicators=draft.indicators,
        entry=draft.entry,
        exit=draft.exit,
        parameters=draft.parameters,
        ml=draft.ml,
    )
    if _style(family, view) in data_styles(view.data):
        notes.append(f"The data summary's variance ratio suggests a {_style(family, view)} design.")
    if signals.drawdown:
        notes.append("A stop loss caps the drawdown the feedback complained about.")
    if signals.few_trades:
        notes.append("Shorter windows and looser thresholds should trade more often.")
    spec = _apply_directives(spec, view, rng, notes, knobs, drawdown=signals.drawdown)
    return spec.model_copy(update={"rationale": _rationale(draft.idea, notes, view)})


def _revise(
    previous: StrategySpec, view: DesignerView, signals: FeedbackSignals, rng: random.Random
) -> StrategySpec:
    spec = previous.model_copy(deep=True, update={"symbol": view.symbol})
    notes: list[str] = []
    if signals.drawdown:
        spec.stop_loss = tighter_stop(spec.stop_loss, rng)
        notes.append(f"Stop loss now {spec.stop_loss:.1%} because drawdown was too deep.")
    if signals.few_trades:
        spec = loosen(scale_windows(spec, 0.6))
        notes.append("Shortened windows and loosened entry thresholds to trade more often.")
    if signals.many_trades:
        spec = scale_windows(spec, 1.5)
        notes.append("Lengthened windows to trade less often.")
    if signals.relax:
        spec, relaxed = _relax(spec, dict(signals.relax))
        notes += [
            f"Moved {name} to reach {value:g}, a level the data does reach."
            for name, value in relaxed
        ]
    if not notes:
        spec, note = _nudge(spec, rng)
        notes.append(note)
    knobs = Knobs()
    spec = _apply_directives(spec, view, rng, notes, knobs, drawdown=False)
    base = re.sub(r"-r\d+$", "", previous.name)
    idea = f"Revision of {previous.name}, same family."
    return spec.model_copy(
        update={"name": f"{base}-r{view.iteration}", "rationale": _rationale(idea, notes, view)}
    )


def _repair_code(
    previous: StrategySpec, view: DesignerView, rng: random.Random, error: str
) -> StrategySpec:
    """The previous code's family, rewritten from its clean template: the error was in
    the code, so the code is replaced; the searched ranges stay when they still fit."""
    family = code_family_of(previous) or _choose_family(view, FeedbackSignals(), rng)
    # Seeded by the name, so repairing the same strategy twice gives the same code.
    draft = CODE_FAMILIES[family][1](random.Random(previous.name), Knobs())
    names = {p.name for p in draft.parameters}
    keep = error in ("runtime", "syntax") and {p.name for p in previous.parameters} == names
    spec = previous.model_copy(
        deep=True,
        update={
            "symbol": view.symbol,
            "code": draft.code,
            "parameters": previous.parameters if keep else draft.parameters,
            "indicators": [],
            "entry": "",
            "exit": "",
            "ml": None,
        },
    )
    if has_trend_filter(previous.code):
        spec = add_trend_filter(spec, Knobs())
    notes = [f"Fixed the {error} error by rewriting the {family.replace('_', ' ')} code cleanly."]
    spec = _apply_directives(spec, view, rng, notes, Knobs(), drawdown=False)
    base = re.sub(r"-r\d+$", "", previous.name)
    idea = f"Repair of {previous.name}, same family."
    return spec.model_copy(
        update={"name": f"{base}-r{view.iteration}", "rationale": _rationale(idea, notes, view)}
    )


def _relax(
    spec: StrategySpec, targets: dict[str, float]
) -> tuple[StrategySpec, list[tuple[str, float]]]:
    """Shift each named range so its nearer end is the target (same step and size)."""
    parameters, relaxed = [], []
    for param in spec.parameters:
        target = targets.get(param.name)
        if target is None or param.low <= target <= param.high:
            parameters.append(param)
            continue
        shift = target - (param.high if target > param.high else param.low)
        if float(param.step).is_integer() and float(param.low).is_integer():
            shift = float(math.ceil(shift) if shift > 0 else math.floor(shift))
        low, high = round(param.low + shift, 6), round(param.high + shift, 6)
        parameters.append(replace_range(param, low=low, high=high))
        relaxed.append((param.name, target))
    return spec.model_copy(update={"parameters": parameters}), relaxed


def _nudge(spec: StrategySpec, rng: random.Random) -> tuple[StrategySpec, str]:
    """A small change when the feedback names nothing the designer knows how to fix."""
    if spec.kind in ("rules", "code") and not spec_has_trend_filter(spec) and rng.random() < 0.4:
        return add_trend_filter(spec, Knobs()), "Added a 200-day trend filter to the entry."
    factor = rng.choice([0.8, 1.25])
    verb = "Shortened" if factor < 1 else "Lengthened"
    return scale_windows(spec, factor), f"{verb} the lookback windows by {abs(1 - factor):.0%}."


def _apply_directives(
    spec: StrategySpec,
    view: DesignerView,
    rng: random.Random,
    notes: list[str],
    knobs: Knobs,
    *,
    drawdown: bool,
) -> StrategySpec:
    directives = view.directives
    update: dict[str, object] = {}
    if ("stop_loss" in directives or drawdown) and spec.stop_loss is None:
        update["stop_loss"] = round(rng.uniform(0.05, 0.08), 3)
        if not drawdown:
            notes.append(f"A {update['stop_loss']:.1%} stop loss limits each losing trade.")
    if "take_profit" in directives and spec.take_profit is None:
        update["take_profit"] = round(rng.uniform(0.10, 0.20), 3)
        notes.append("A take-profit level locks in gains.")
    spec = spec.model_copy(update=update)
    if "trend_filter" in directives and spec.kind != "ml" and not spec_has_trend_filter(spec):
        spec = add_trend_filter(spec, knobs)
        notes.append("Entries only when the close is above its long-term average.")
    if "small_grid" in directives:
        spec = spec.model_copy(update={"parameters": [three_values(p) for p in spec.parameters]})
    if "long_training" in directives and spec.ml is not None:
        spec = spec.model_copy(update={"ml": spec.ml.model_copy(update={"epochs": 300})})
        notes.append("Trained for 300 epochs.")
    return spec


def _rationale(idea: str, notes: list[str], view: DesignerView) -> str:
    if "concise" in view.directives:
        return " ".join([idea.split(": ", 1)[-1], *notes[:1]])
    parts = [idea, *notes]
    parts.append(
        f"Parameters are searched on the {view.symbol} training split and checked on "
        "validation; the grid stays small to limit overfitting."
    )
    if "detailed" in view.directives:
        parts.append(_DETAIL)
    return " ".join(parts)


_DETAIL = (
    "In more detail: daily index data alternates between trending regimes and choppy, "
    "range-bound stretches, so every rule here is a bet on one regime, and the exit is "
    "chosen so that a wrong bet is closed quickly rather than held. The search space is "
    "deliberately coarse: neighbouring parameter values should give similar results, and "
    "if only a narrow island of values works on the training split the validation split "
    "will usually expose it. Costs of five basis points per side plus slippage are "
    "charged on every trade, which penalises designs that trade on noise; a design that "
    "trades too rarely, on the other hand, leaves too few trades to judge it at all."
)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-") or "symbol"
