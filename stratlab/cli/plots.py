"""Pictures a person would rather look at than read: equity vs buy-and-hold, drawdown, and
a generation's prompts on the score / tokens / latency trade-off."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stratlab.cli.generations_view import ParetoPoint
    from stratlab.cli.session_view import SessionDetail


def plot_session(detail: SessionDetail, path: Path) -> Path | None:
    """Equity of the session's best backtest against buy-and-hold, and its drawdown."""
    best = detail.best_backtest()
    if best is None or best.backtest_id not in detail.equity:
        return None
    curve = detail.equity[best.backtest_id]
    strategy = next((s for s in detail.strategies if s.strategy_id == best.strategy_id), None)
    m = best.metrics
    return plot_equity_and_drawdown(
        path,
        curve.ts,
        curve.equity,
        label=strategy.name if strategy else best.strategy_id,
        benchmark=(curve.ts, curve.benchmark),
        title=f"{detail.session.symbol}: walk-forward out-of-sample — sharpe {m.sharpe:.2f}, "
        f"return {m.total_return:+.1%} (buy-and-hold {m.benchmark_return:+.1%})",
    )


def plot_equity_and_drawdown(
    path: Path,
    ts: Sequence[Any],
    values: Sequence[float],
    *,
    label: str,
    title: str,
    benchmark: tuple[Sequence[Any], Sequence[float]] | None = None,
    initial: float | None = None,
) -> Path:
    """Portfolio value against buy-and-hold (top) and its drawdown below the running peak
    (bottom, ``stratlab.backtest.drawdown``): the one equity chart of sessions and paper
    strategies. ``initial`` draws the starting capital and is the drawdown's first peak."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers
    import matplotlib.pyplot as plt
    import numpy as np

    from stratlab.backtest.drawdown import drawdown

    equity = np.asarray(values, dtype=float)
    depth = drawdown(equity, initial if initial is not None else float(equity[0]))
    fig, (top, bottom) = plt.subplots(
        2, 1, figsize=(11, 6.5), sharex=True, gridspec_kw={"height_ratios": [3, 1]}
    )
    top.plot(ts, equity, label=label.replace("$", r"\$"), color="#1f77b4", linewidth=1.4)
    if benchmark is not None and len(benchmark[0]):
        top.plot(*benchmark, label="buy and hold", color="#7f7f7f", linewidth=1.0)
    if initial is not None:
        top.axhline(initial, color="#bbbbbb", linewidth=0.8, linestyle="--")
    top.set_title(title)
    top.set_ylabel("portfolio value")
    top.legend(loc="upper left")
    top.grid(alpha=0.3)
    bottom.fill_between(ts, -depth * 100, 0, color="#d62728", alpha=0.4)
    bottom.set_ylabel("drawdown %")
    bottom.grid(alpha=0.3)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def plot_pareto(points: Sequence[ParetoPoint], path: Path, *, title: str) -> Path | None:
    """Measured prompts of a generation: mean tokens per task (x) against score (y: the
    mean graded task score NSGA-II climbs), coloured by mean latency; front 0 joined up,
    prod starred, candidates labelled with their success rate.
    ``None`` when no point has a fitness to plot."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers
    import matplotlib.pyplot as plt
    from matplotlib.colors import Normalize

    measured = [(p, p.fitness) for p in points if p.fitness is not None]
    if not measured:
        return None
    xs = [f.mean_tokens for _, f in measured]
    ys = [f.score for _, f in measured]
    lat = [f.mean_latency_ms for _, f in measured]
    # One norm for every marker kind, so a colour means the same latency everywhere;
    # widened when all latencies are equal (a zero-width norm has no colours).
    norm = Normalize(vmin=min(lat), vmax=max(lat) if max(lat) > min(lat) else min(lat) + 1)

    fig, ax = plt.subplots(figsize=(9.5, 6))
    front = sorted((f.mean_tokens, f.score) for p, f in measured if p.rank == 0)
    if front:
        ax.plot(
            *zip(*front, strict=True),
            color="#d62728",
            linewidth=1.2,
            zorder=1,
            label="front 0 (non-dominated)",
        )
    others = [i for i, (p, _) in enumerate(measured) if not p.prod]
    dots = ax.scatter(
        [xs[i] for i in others],
        [ys[i] for i in others],
        c=[lat[i] for i in others],
        cmap="viridis",
        norm=norm,
        s=[110 if measured[i][0].rank == 0 else 45 for i in others],
        # A thin grey edge keeps pale (slow) points visible on white.
        edgecolors=["#d62728" if measured[i][0].rank == 0 else "#666666" for i in others],
        linewidths=[1.6 if measured[i][0].rank == 0 else 0.6 for i in others],
        zorder=2,
    )
    for i, (p, f) in enumerate(measured):
        if p.prod:
            ax.scatter(
                [xs[i]],
                [ys[i]],
                c=[lat[i]],
                cmap="viridis",
                norm=norm,
                marker="*",
                s=420,
                edgecolors="black",
                linewidths=1.2,
                zorder=3,
                label="prod",
            )
            ax.annotate(
                f"prod {p.prompt_id[:8]} ({f.success_rate:.0%} passed)",
                (xs[i], ys[i]),
                xytext=(10, -16),
                textcoords="offset points",
                fontsize=9,
                weight="bold",
            )
        if p.candidate:
            ax.annotate(
                f"candidate {p.prompt_id[:8]} ({f.success_rate:.0%} passed)",
                (xs[i], ys[i]),
                xytext=(12, 12),
                textcoords="offset points",
                fontsize=9,
                color="#1f5fa8",
                arrowprops={"arrowstyle": "->", "color": "#1f5fa8"},
            )
    fig.colorbar(dots, ax=ax, label="mean LLM latency per task (ms)")
    ax.set_xlabel("mean tokens per task (lower is better)")
    ax.set_ylabel("score: deflated Sharpe × criteria met (higher is better)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.margins(x=0.1, y=0.15)  # room for the labels of points at the edges
    ax.legend(loc="best")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
