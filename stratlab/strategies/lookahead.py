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

Outcome: ``stratlab.sandbox.probe.probe_outcome`` makes the ``LookaheadProbe`` of every
probe, in process or in the sandbox; its module says what the fields mean.

``_runner`` (the script inside the sandbox, which cannot import stratlab) implements the
same policy for code strategies; ``probe_outcome`` turns its answer into the model.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from stratlab.models.research import LookaheadProbe
from stratlab.sandbox.probe import SIGNAL_CUTS, probe_outcome
from stratlab.strategies.rules import rules_signals

if TYPE_CHECKING:
    from stratlab.models.research import StrategySpec

Signals = tuple[np.ndarray, np.ndarray]
_SERIES = ("entries", "exits")


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
    # Imported here: scikit-learn is slow to import, and only ``ml`` specs need it.
    from stratlab.strategies.ml import ml_signals

    return probe_signals(lambda data: ml_signals(spec, model_blob, data), frame, cuts)


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
