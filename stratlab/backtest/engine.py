"""The simulation engine: entry/exit signals in, a vectorbt ``Portfolio`` out.

Execution model, the same for one column or a whole parameter grid:

* A signal on bar ``t`` is decided with data up to ``t`` and filled at bar ``t + 1``'s
  OPEN (signals are shifted by one bar and the order price is the open). The last bar's
  signal therefore is never filled: there is no next open to fill it at.
* Long only, all-in: an entry buys as much as the cash allows after fees, an exit sells
  the whole position. Fees and slippage are fractions of the traded value per side. An
  entry and an exit filling on the same bar cancel out (vectorbt's ``Ignore`` conflict).
* Stop loss and take profit are fractions of the entry FILL price and are checked by
  vectorbt against each later bar's open/high/low (a gap through the stop fills at the
  open, and a stop exit pays slippage like any market order; when both could trigger
  within one bar, the stop loss wins). vectorbt executes one order per bar, so stops
  start on the bar after the fill.
* Fill order on a bar where an exit signal fills at the open while a stop could also
  trigger (``fill_order``): ``"conservative"`` (the default) sells at the open, the
  exit's price, as time runs: a take profit or stop loss reached later in that bar is
  never filled first, and a stop the open gaps through fills at that same open.
  ``"optimistic"`` is vectorbt's order: the stop wins. A take profit reached later in the
  bar then beats the exit, flattering it by up to the take-profit distance; a stop loss
  reached later sells below the open instead, so strategies with only a stop loss lose
  from this order. The conservative order is vectorbt's kernel with the stop check on
  those bars seeing only the open (their low is set above every level).
* ``window=(start, end)`` simulates bars ``start..end-1`` only, starting flat with
  ``init_cash``. Signals are shifted before slicing, so a signal on bar ``start - 1``
  (decided on past data) may fill at the window's first open.
* The portfolio's ``freq`` is the median spacing of the frame's bars (one day for daily
  bars, an hour for hourly ones), so vectorbt's own per-period statistics follow the data.

With ``fill_order="optimistic"`` this is vectorbt's ``Portfolio.from_signals`` with
exactly these settings (a unit test holds the two to identical orders), minus its
argument processing: the engine calls the same numba kernel through
``stratlab.backtest._kernels``, which is faster and cached. The conservative order is held
to an independent pure-Python simulator (tests/unit/test_engine_reference.py); without
stops the two orders are the same.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, get_args

import numpy as np
import numpy.typing as npt
import pandas as pd
import vectorbt as vbt
from vectorbt.base.array_wrapper import ArrayWrapper
from vectorbt.portfolio.enums import Direction, StopEntryPrice, StopExitPrice

from stratlab.backtest._kernels import simulate_long_only_nb
from stratlab.backtest.metrics import median_bar_spacing

FREQ = "1D"
"""The portfolio's frequency when the bars' own spacing cannot be measured (under two
bars, or an index without timestamps)."""
PRICE_COLUMNS = ("open", "high", "low", "close")
MIN_ORDER_SIZE = 1e-8
"""vectorbt's default: orders for less than this many units are dropped as dust."""

Signals = npt.ArrayLike
FillOrder = Literal["conservative", "optimistic"]
"""Which fills first on a bar with an exit signal and a stop: see the module docstring."""


@dataclass(frozen=True)
class Costs:
    """Trading costs as fractions of traded value, charged on every side (entry and exit).

    ``fees`` is commission; ``slippage`` worsens the fill price (buys fill higher, sells
    lower). ``Costs.from_bps(5, 5)`` is 0.05% of each.
    """

    fees: float = 0.0
    slippage: float = 0.0

    def __post_init__(self) -> None:
        for name in ("fees", "slippage"):
            value = getattr(self, name)
            if not (math.isfinite(value) and 0.0 <= value < 1.0):
                raise ValueError(f"{name} must be a fraction in [0, 1), got {value!r}")

    @classmethod
    def from_bps(cls, fees_bps: float, slippage_bps: float) -> Costs:
        """Costs from basis points per side (1 bps = 0.0001)."""
        return cls(fees=fees_bps / 10_000.0, slippage=slippage_bps / 10_000.0)


def simulate(
    frame: pd.DataFrame,
    entries: Signals,
    exits: Signals,
    *,
    costs: Costs,
    stop_loss: float | None = None,
    take_profit: float | None = None,
    init_cash: float = 100_000.0,
    window: tuple[int, int] | None = None,
    fill_order: FillOrder = "conservative",
) -> vbt.Portfolio:
    """Simulate one (1-D signals) or many (2-D, one column per combination) strategies.

    ``frame`` is OHLCV with a DatetimeIndex; ``entries``/``exits`` are boolean, aligned
    with ``frame`` row for row (NaN counts as False). The portfolio always has 2-D
    columns ``combo`` 0..k-1 over the window's timestamps, at the frequency of the bars'
    median spacing. ``fill_order`` only matters with a stop loss or take profit.
    """
    if fill_order not in get_args(FillOrder):
        raise ValueError(f"fill_order must be one of {get_args(FillOrder)}, got {fill_order!r}")
    entry_2d, exit_2d = _signals_2d(entries, len(frame)), _signals_2d(exits, len(frame))
    if entry_2d.shape != exit_2d.shape:
        raise ValueError(f"entries {entry_2d.shape} and exits {exit_2d.shape} differ in shape")
    start, end = _window(window, len(frame))
    prices = {name: _price_column(frame, name, start, end) for name in PRICE_COLUMNS}
    cash = np.full(entry_2d.shape[1], float(init_cash))
    order_records, log_records = _orders(
        _fills(entry_2d, start, end),
        _fills(exit_2d, start, end),
        prices,
        cash,
        costs=costs,
        stops=(_stop(stop_loss, "stop_loss"), _stop(take_profit, "take_profit")),
        exit_first=fill_order == "conservative",
    )
    wrapper = ArrayWrapper(
        index=frame.index[start:end],
        columns=pd.RangeIndex(entry_2d.shape[1], name="combo"),
        ndim=2,
        freq=_freq(frame.index),
    )
    return vbt.Portfolio(
        wrapper, prices["close"], order_records, log_records, cash, cash_sharing=False
    )


def _orders(
    entries: np.ndarray,
    exits: np.ndarray,
    prices: dict[str, np.ndarray],
    cash: np.ndarray,
    *,
    costs: Costs,
    stops: tuple[float, float],
    exit_first: bool,
) -> tuple[np.ndarray, np.ndarray]:
    """Order and log records of vectorbt's kernel for fill-bar signals (bars, columns)."""
    shape = entries.shape
    sl_stop, tp_stop = stops
    use_stops = not (math.isnan(sl_stop) and math.isnan(tp_stop))
    low = _stop_check_low(entries, exits, prices) if use_stops and exit_first else prices["low"]
    # Compiled once per process at most: numba caches it on disk (NUMBA_CACHE_DIR is set by
    # the worker entry point to $STRATLAB_HOME/numba-cache), and the argument types never
    # vary (C-contiguous bool signals, C-contiguous 2-D float64 prices whether (bars, 1) or
    # (bars, columns), 0-d arrays), so no call after the first recompiles.
    return simulate_long_only_nb(
        shape,
        np.ones(shape[1], dtype=np.int64),  # one group per column: no shared cash
        cash,
        # With one column per group the default call sequence is all zeros; np.zeros maps
        # untouched zero pages instead of writing bars x combinations integers.
        np.zeros(shape, dtype=np.int64),
        entries,
        exits,
        np.asarray(Direction.LongOnly),
        prices["open"],  # the order price: fills happen at the open
        np.asarray(float(costs.fees)),
        np.asarray(float(costs.slippage)),
        np.asarray(MIN_ORDER_SIZE),
        prices["open"],
        prices["high"],
        low,
        prices["close"],
        np.asarray(sl_stop),
        np.asarray(tp_stop),
        np.asarray(StopEntryPrice.FillPrice),
        # Stop exits pay slippage like any market order, so stops are not free.
        np.asarray(StopExitPrice.StopMarket),
        use_stops,
    )


def _stop_check_low(
    entries: np.ndarray, exits: np.ndarray, prices: dict[str, np.ndarray]
) -> np.ndarray:
    """The low the kernel checks stops against, for the conservative fill order.

    vectorbt fills a stop at the open when the open is already through its level, else at
    the level when the bar's range (low to high) holds it. On a bar where an exit signal
    fills at the open the low is +inf, an empty range: only the open can trigger a stop,
    and a stop the open gaps through fills at that open with the exit's own slippage and
    size, so the order is the exit's. An exit filling together with an entry is no exit
    (vectorbt ignores the pair), and one at a missing open never fills, so stops stay live
    on those bars. Entries need no care: stops start on the bar after the entry's fill.

    One (bars, columns) array at most, and only the low: the (bars, 1) column comes back
    untouched when no exit fills. Either is C-contiguous float64, one type to numba.
    """
    low = prices["low"]
    exit_at_open = exits & ~entries & ~np.isnan(prices["open"])
    if not exit_at_open.any():
        return low
    return np.where(exit_at_open, np.inf, low)


def _signals_2d(signals: Signals, bars: int) -> np.ndarray:
    array = np.asarray(signals)
    if array.ndim == 1:
        array = array[:, None]
    if array.ndim != 2 or array.shape[0] != bars:
        raise ValueError(f"signals must have {bars} rows (one per bar), got {array.shape}")
    if array.dtype != np.bool_:
        # NaN (e.g. from a warm-up) means "no signal", never "True".
        array = np.nan_to_num(array.astype(np.float64), nan=0.0) != 0.0
    return array


def _fills(signals: np.ndarray, start: int, end: int) -> np.ndarray:
    """Signals moved to the bar they fill on (``t + 1``), cut to the window.

    Always C-contiguous, whatever the number of columns, so numba sees one array type.
    """
    filled = np.zeros((end - start, signals.shape[1]), dtype=np.bool_)
    first = max(start - 1, 0)
    filled[first + 1 - start :] = signals[first : end - 1]
    return filled


def _window(window: tuple[int, int] | None, bars: int) -> tuple[int, int]:
    start, end = (0, bars) if window is None else (int(window[0]), int(window[1]))
    if not 0 <= start < end <= bars:
        raise ValueError(f"window {window} must satisfy 0 <= start < end <= {bars}")
    return start, end


def _price_column(frame: pd.DataFrame, name: str, start: int, end: int) -> np.ndarray:
    """One price column as a fresh (bars, 1) float64 array that broadcasts against (bars, k)
    signals. Always a copy: pandas hands out read-only views or writable copies depending
    on the frame, and numba would compile a version of the kernel for each."""
    values = np.array(frame[name].to_numpy()[start:end], dtype=np.float64, copy=True)
    return values.reshape(-1, 1)


def _freq(index: pd.Index) -> pd.Timedelta | str:
    spacing = median_bar_spacing(index) if isinstance(index, pd.DatetimeIndex) else None
    return FREQ if spacing is None else spacing


def _stop(value: float | None, name: str) -> float:
    if value is None:
        return math.nan
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} must be a positive fraction, got {value!r}")
    return float(value)
