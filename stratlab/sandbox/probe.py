"""The look-ahead probe's outcome: the ``LookaheadProbe`` model and its sentence.

The probe itself (cut points, prefix runs, comparison) is described in
``stratlab.strategies.lookahead``; ``_runner`` implements the same policy inside the
sandbox for code strategies. Both end here, so a probe reads the same whichever way it
ran.

Outcome (``LookaheadProbe``): ``passed`` only when every compared prefix matched and no
caller cut failed. A look-ahead sets ``first_bar`` (the earliest over all cuts),
``series`` and ``cut``. A caller cut that failed sets ``cut`` and says why in ``detail``
with ``first_bar`` None: the check could not be made, which never counts as passed; so
is a probe without cut points (``cuts == 0``).
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from stratlab.models.research import LookaheadProbe

SIGNAL_CUTS = 10  # cuts added per series at bars where the full run signals
_FIX = (
    "compute each bar's signal from that bar and earlier bars only (no shift(-n), centred "
    "windows, bfill, or statistics of the whole series such as mean(), max(), rank() or "
    "iloc[-1])"
)


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
