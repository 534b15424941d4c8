"""The truncation probe: signals must not change when later bars are added.

A strategy whose signal at bar ``t`` reads bars after ``t`` (``shift(-1)``, a centred
window, ``bfill``, the mean, maximum or rank of the whole series, ``iloc[-1]``) earns an
impossible Sharpe and passes every gate. The probe catches it: signals computed on a
prefix ``data[: cut + 1]`` must equal the full run's at every bar ``<= cut``. The first
bar that changed names the problem for the designer.

Cut points:

* ``cut_points`` spreads the caller's cuts over ``[warm-up, last bar - 1]`` (a prefix
  ending at the last bar is the full run). A prefix run that fails at one of them is a
  probe error: honest code runs on any history longer than its warm-up, and code that
  cannot be run on a shorter history cannot be checked.
* The probe adds cuts of its own at bars where the full run signals (the first one and
  up to ``signal_cuts`` spread over the rest, per series): a look-ahead by a few bars
  only shows when a prefix ends on a bar whose signal depended on the next bars, and
  sparse entries are rarely hit by evenly spread cuts. The first signal is often in the
  warm-up, which is where ``bfill`` copies values back from the future.
* Such added cuts before the first caller cut are lenient: a prefix shorter than the
  warm-up may fail (``np.polyfit`` on three bars); that cut is skipped, not an error.

Outcome (``LookaheadProbe``): ``passed`` only when every compared prefix matched and no
caller cut failed. A look-ahead sets ``first_bar`` (the earliest over all cuts),
``series`` and ``cut``. A caller cut that failed sets ``cut`` and says why in ``detail``
with ``first_bar`` None: the check could not be made, which never counts as passed; so
is a probe without cut points (``cuts == 0``).

``_runner`` (the script inside the sandbox, which cannot import stratlab) implements the
same policy for code strategies; ``probe_outcome`` turns its answer into the model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stratlab.models.research import LookaheadProbe
from stratlab.strategies.rules import rules_signals

if TYPE_CHECKING:
    from stratlab.models.research import StrategySpec

Signals = tuple[np.ndarray, np.ndarray]
SIGNAL_CUTS = 10  # cuts added per series at bars where the full run signals
_SERIES = ("entries", "exits")
_FIX = (
    "compute each bar's signal from that bar and earlier bars only (no shift(-n), centred "
    "windows, bfill, or statistics of the whole series such as mean(), max(), rank() or "
    "iloc[-1])"
)


def cut_points(n_bars: int, *, count: int = 20, first: int = 0, warmup: int = 50) -> list[int]:
    """Up to ``count`` bar positions spread evenly over ``[max(first, warmup), n_bars - 2]``,
    sorted and without repeats; empty when that range is empty."""
    low, high = max(first, warmup, 0), n_bars - 2
    if count < 1 or high < low:
        return []
    if count == 1:
        return [high]
    return sorted({int(p) for p in np.linspace(low, high, count).round()})


def signal_cut_points(full: np.ndarray, *, count: int = SIGNAL_CUTS) -> list[int]:
    """Up to ``count`` bars where ``full`` is True, the first one included, spread evenly
    over the True bars before the last bar."""
    bars = np.flatnonzero(_as_flags(full)[:-1])
    if count < 1 or len(bars) == 0:
        return []
    picks = np.linspace(0, len(bars) - 1, count).round().astype(int)
    return sorted({int(bars[i]) for i in picks})


def compare_prefix(
    full_entries: Any, full_exits: Any, prefix_entries: Any, prefix_exits: Any, cut: int
) -> tuple[int, str] | None:
    """The first bar ``<= cut`` where the prefix run differs from the full run, and which
    series ("entries" is checked before "exits" at the same bar); None when they agree.
    NaN and None count as False, as in the backtest engine."""
    first: tuple[int, str] | None = None
    pairs = ((full_entries, prefix_entries), (full_exits, prefix_exits))
    for name, (full, prefix) in zip(_SERIES, pairs, strict=True):
        full_flags, prefix_flags = _as_flags(full), _as_flags(prefix)
        if len(prefix_flags) != cut + 1 or len(full_flags) < cut + 1:
            raise ValueError(
                f"{name}: a prefix ending at bar {cut} needs {cut + 1} values, got "
                f"{len(prefix_flags)} (prefix) and {len(full_flags)} (full run)"
            )
        changed = np.flatnonzero(full_flags[: cut + 1] != prefix_flags[: cut + 1])
        if len(changed) and (first is None or int(changed[0]) < first[0]):
            first = (int(changed[0]), name)
    return first


def probe_signals(
    signals_of: Callable[[pd.DataFrame], Signals],
    frame: pd.DataFrame,
    cuts: Sequence[int],
    *,
    full: Signals | None = None,
    signal_cuts: int = SIGNAL_CUTS,
) -> LookaheadProbe:
    """Probe an in-process signal function (1-D entries and exits over ``frame``)."""
    if not cuts:
        return probe_outcome(frame.index, cuts=0)
    entries, exits = full if full is not None else signals_of(frame)
    strict_from = min(cuts)
    plan = sorted(
        {int(c) for c in cuts}
        | set(signal_cut_points(entries, count=signal_cuts))
        | set(signal_cut_points(exits, count=signal_cuts))
    )
    compared, found, failure = 0, None, None
    for cut in plan:
        try:
            prefix = signals_of(frame.iloc[: cut + 1].copy())
            change = compare_prefix(entries, exits, prefix[0], prefix[1], cut)
        except Exception as exc:  # reported (or skipped below the warm-up), never raised
            if cut >= strict_from and failure is None:
                failure = (cut, f"{type(exc).__name__}: {exc}")
            continue
        compared += 1
        if change is not None and (found is None or change[0] < found[0]):
            found = (*change, cut)
    if found is not None:
        return probe_outcome(
            frame.index, cuts=compared, first_bar=found[0], series=found[1], cut=found[2]
        )
    if failure is not None:
        return probe_outcome(frame.index, cuts=compared, cut=failure[0], error=failure[1])
    return probe_outcome(frame.index, cuts=compared)


def probe_rules(
    spec: StrategySpec, params: Mapping[str, float], frame: pd.DataFrame, cuts: Sequence[int]
) -> LookaheadProbe:
    """Probe a ``rules`` spec for one parameter combination."""
    grid = [dict(params)]

    def signals_of(data: pd.DataFrame) -> Signals:
        entries, exits = rules_signals(spec, data, grid)
        return entries[:, 0], exits[:, 0]

    return probe_signals(signals_of, frame, cuts)


def probe_ml(
    spec: StrategySpec, model_blob: bytes, frame: pd.DataFrame, cuts: Sequence[int]
) -> LookaheadProbe:
    """Probe an ``ml`` spec with its trained model."""
    # Imported here: scikit-learn is slow to import and the sandbox host needs this
    # module for ``probe_outcome`` only.
    from stratlab.strategies.ml import ml_signals

    return probe_signals(lambda data: ml_signals(spec, model_blob, data), frame, cuts)


def probe_outcome(
    index: pd.Index,
    *,
    cuts: int,
    first_bar: int | None = None,
    series: str = "",
    cut: int | None = None,
    error: str | None = None,
) -> LookaheadProbe:
    """The model of one probe, with a ``detail`` sentence written for the designer.

    ``index`` is the index of the frame the probe ran on (for ``first_ts`` and dates);
    pass ``first_bar`` for a look-ahead, ``cut`` and ``error`` for a caller cut whose
    prefix run failed, neither for a clean probe.
    """
    if first_bar is not None:
        detail = (
            f"signals look ahead: the {series} signal at bar {first_bar}{_date(index, first_bar)} "
            f"changed when bars after it were added (prefix ending at bar {cut}"
            f"{_date(index, cut)}); {_FIX}"
        )
        return LookaheadProbe(
            cuts=cuts,
            passed=False,
            first_bar=first_bar,
            first_ts=_timestamp(index, first_bar),
            series=series,
            cut=cut,
            detail=detail,
        )
    if error is not None and cut is not None:
        detail = (
            "the look-ahead probe could not check the code: it failed on a shorter history "
            f"(the first {cut + 1} bars, ending at bar {cut}{_date(index, cut)}): {error}; "
            "signals(data, params) must run on any prefix of the data longer than its "
            "warm-up, so that each bar's signal can be checked against the full run"
        )
        return LookaheadProbe(cuts=cuts, passed=False, cut=cut, detail=detail)
    if cuts == 0:
        detail = "not run: the data has no bars after the warm-up to cut at"
        return LookaheadProbe(cuts=0, passed=False, detail=detail)
    detail = f"no look-ahead: signals on {cuts} prefixes of the data equal the full run's"
    return LookaheadProbe(cuts=cuts, passed=True, detail=detail)


def _as_flags(values: Any) -> np.ndarray:
    """1-D bools with NaN/None as False, as the backtest engine reads signals."""
    if isinstance(values, pd.DataFrame) and values.shape[1] == 1:
        values = values.iloc[:, 0]
    array = np.asarray(values)
    if array.ndim == 2 and array.shape[1] == 1:
        array = array[:, 0]
    if array.ndim != 1:
        raise ValueError(f"signals must be one value per bar (1-D), got shape {array.shape}")
    if array.dtype == bool:
        return array
    return np.where(pd.isna(array), False, array).astype(bool)


def _timestamp(index: pd.Index, bar: int) -> Any:
    if isinstance(index, pd.DatetimeIndex) and 0 <= bar < len(index):
        return index[bar].to_pydatetime()
    return None


def _date(index: pd.Index, bar: int | None) -> str:
    if bar is None or not isinstance(index, pd.DatetimeIndex) or not 0 <= bar < len(index):
        return ""
    stamp = index[bar]
    text = stamp.date().isoformat() if stamp == stamp.normalize() else stamp.isoformat()
    return f" ({text})"
