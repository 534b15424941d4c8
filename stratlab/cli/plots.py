"""Pictures a person would rather look at than read: equity vs buy-and-hold, drawdown."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from stratlab.cli.session_view import SessionDetail


def plot_session(detail: SessionDetail, path: Path) -> Path | None:
    """Equity of the session's best backtest against buy-and-hold, and its drawdown."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers
    import matplotlib.pyplot as plt
    import numpy as np

    best = detail.best_backtest()
    if best is None or best.backtest_id not in detail.equity:
        return None
    curve = detail.equity[best.backtest_id]
    equity = np.asarray(curve.equity, dtype=float)
    drawdown = equity / np.maximum.accumulate(equity) - 1.0
    strategy = next((s for s in detail.strategies if s.strategy_id == best.strategy_id), None)
    name = strategy.name if strategy else best.strategy_id

    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(11, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    top.plot(curve.ts, equity, label=f"{name}", color="#1f77b4", linewidth=1.4)
    top.plot(curve.ts, curve.benchmark, label="buy and hold", color="#7f7f7f", linewidth=1.0)
    m = best.metrics
    top.set_title(
        f"{detail.session.symbol}: out-of-sample test split — sharpe {m.sharpe:.2f}, "
        f"return {m.total_return:+.1%} (buy-and-hold {m.benchmark_return:+.1%})"
    )
    top.set_ylabel("portfolio value")
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    bottom.fill_between(curve.ts, drawdown * 100, 0, color="#d62728", alpha=0.4)
    bottom.set_ylabel("drawdown %")
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
