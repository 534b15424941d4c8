"""Drawdown has one meaning: the fall below the running peak, a positive fraction."""

from __future__ import annotations

import numpy as np
import pytest

from stratlab.backtest.drawdown import drawdown, max_drawdown


def test_drawdown_is_the_positive_fall_below_the_running_peak() -> None:
    values = [100.0, 120.0, 90.0, 130.0, 65.0]
    assert drawdown(values, 100.0) == pytest.approx([0.0, 0.0, 0.25, 0.0, 0.5])
    assert max_drawdown(values, 100.0) == pytest.approx(0.5)


def test_the_first_peak_is_the_starting_value() -> None:
    # Below the initial capital from the first point on: that is a drawdown too.
    assert drawdown([80.0, 90.0], 100.0) == pytest.approx([0.2, 0.1])
    assert max_drawdown([80.0, 90.0], 100.0) == pytest.approx(0.2)


def test_edges() -> None:
    assert max_drawdown([], 100.0) == 0.0
    assert max_drawdown([100.0, 0.0], 100.0) == 1.0  # everything lost
    rising = np.linspace(100.0, 200.0, 50)
    assert max_drawdown(rising, 100.0) == 0.0
