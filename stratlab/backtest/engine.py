"""The simulation engine: entry/exit signals in, a vectorbt ``Portfolio`` out.

Execution model, the same for one column or a whole parameter grid:

* A signal on bar ``t`` is decided with data up to ``t`` and filled at bar ``t + 1``'s
  OPEN (signals are shifted by one bar and the order price is the open). The last bar's
  signal therefore is never filled: there is no next open to fill it at.
* Long only, all-in: an entry buys as much as the cash allows after fees, an exit sells
  the whole position. Fees and slippage are fractions of the traded value per side.
* Stop loss and take profit are fractions of the entry FILL price and are checked by
  vectorbt against each later bar's open/high/low (a gap through the stop fills at the
  open). vectorbt executes one order per bar, so stops start on the bar after the fill.
* ``window=(start, end)`` simulates bars ``start..end-1`` only, starting flat with
  ``init_cash``. Signals are shifted before slicing, so a signal on bar ``start - 1``
  (decided on past data) may fill at the window's first open.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import pandas as pd
import vectorbt as vbt
from vectorbt.portfolio import nb as _portfolio_nb

# vectorbt's signal simulator is the one kernel on our path it does not cache on disk, so
# every fresh worker would spend seconds compiling it. Caching it makes a worker's first
# backtest cheap; the cache lives in NUMBA_CACHE_DIR, which the worker entry point sets to
# $STRATLAB_HOME/numba-cache (numba falls back to __pycache__ when it is unset). Within a
# process, simulate() always hands vectorbt the same array types (2-D C-contiguous
# float64 prices, 2-D bool signals, float stops), so later calls never recompile.
_portfolio_nb.simulate_from_signals_nb.enable_caching()

Signals = npt.ArrayLike


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
) -> vbt.Portfolio:
    """Simulate one (1-D signals) or many (2-D, one column per combination) strategies.

    ``frame`` is OHLCV with a DatetimeIndex; ``entries``/``exits`` are boolean, aligned
    with ``frame`` row for row. The result always has 2-D columns (``combo`` 0..k-1)
    indexed by the window's timestamps, daily frequency. See the module docstring for the
    execution model.
    """
    entry_2d, exit_2d = _signals_2d(entries, len(frame)), _signals_2d(exits, len(frame))
    if entry_2d.shape != exit_2d.shape:
        raise ValueError(f"entries {entry_2d.shape} and exits {exit_2d.shape} differ in shape")
    start, end = _window(window, len(frame))
    index = frame.index[start:end]
    columns = pd.RangeIndex(entry_2d.shape[1], name="combo")
    prices = {name: _price_column(frame, name, start, end) for name in ("open", "high", "low")}
    close = pd.DataFrame(_price_column(frame, "close", start, end), index=index)
    return vbt.Portfolio.from_signals(
        close,
        entries=pd.DataFrame(_next_bar(entry_2d)[start:end], index=index, columns=columns),
        exits=pd.DataFrame(_next_bar(exit_2d)[start:end], index=index, columns=columns),
        price=prices["open"],
        open=prices["open"],
        high=prices["high"],
        low=prices["low"],
        fees=float(costs.fees),
        slippage=float(costs.slippage),
        sl_stop=_stop(stop_loss, "stop_loss"),
        tp_stop=_stop(take_profit, "take_profit"),
        stop_entry_price="fillprice",
        # Stop exits pay slippage like any market order, so stops are not free.
        stop_exit_price="stopmarket",
        direction="longonly",
        size=np.inf,
        size_type="amount",
        accumulate=False,
        upon_long_conflict="ignore",
        init_cash=float(init_cash),
        freq="1D",
    )


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


def _next_bar(signals: np.ndarray) -> np.ndarray:
    """Move each signal to the bar it is filled on; the last bar's signal falls off."""
    shifted = np.zeros_like(signals, dtype=np.bool_)
    shifted[1:] = signals[:-1]
    return shifted


def _window(window: tuple[int, int] | None, bars: int) -> tuple[int, int]:
    start, end = (0, bars) if window is None else (int(window[0]), int(window[1]))
    if not 0 <= start < end <= bars:
        raise ValueError(f"window {window} must satisfy 0 <= start < end <= {bars}")
    return start, end


def _price_column(frame: pd.DataFrame, name: str, start: int, end: int) -> np.ndarray:
    """One price column as a C-contiguous (bars, 1) float64 array: broadcasts against
    (bars, k) signals and always gives numba the same array type."""
    values = np.asarray(frame[name].to_numpy()[start:end], dtype=np.float64)
    return np.ascontiguousarray(values.reshape(-1, 1))


def _stop(value: float | None, name: str) -> float:
    if value is None:
        return math.nan
    if not (math.isfinite(value) and value > 0.0):
        raise ValueError(f"{name} must be a positive fraction, got {value!r}")
    return float(value)
