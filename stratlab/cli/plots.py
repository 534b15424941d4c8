"""Pictures a person would rather look at than read: equity vs buy-and-hold, drawdown, and
a generation's prompts on the score / tokens / latency trade-off."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.collections import PathCollection
    from matplotlib.colors import Normalize
    from matplotlib.figure import Figure

    from stratlab.cli.generations_view import ParetoPoint
    from stratlab.cli.session_view import SessionDetail
    from stratlab.models.optimization import Fitness

    Measured = Sequence[tuple[ParetoPoint, Fitness]]
    """Points of a generation with the fitness they were measured at."""


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
    return _save_figure(fig, path)


def plot_pareto(points: Sequence[ParetoPoint], path: Path, *, title: str) -> Path | None:
    """Measured prompts of a generation: mean tokens per task (x) against score (y: the
    mean graded task score NSGA-II climbs), coloured by mean latency; front 0 joined up,
    prod starred, candidates labelled with their success rate.
    ``None`` when no point has a fitness to plot."""
    import matplotlib

    matplotlib.use("Agg")  # files only: no display on servers
    import matplotlib.pyplot as plt

    measured = [(p, p.fitness) for p in points if p.fitness is not None]
    if not measured:
        return None
    norm = _latency_norm([f.mean_latency_ms for _, f in measured])
    fig, ax = plt.subplots(figsize=(9.5, 6))
    _draw_front(ax, measured)
    dots = _scatter_points(ax, [(p, f) for p, f in measured if not p.prod], norm)
    for p, f in measured:
        if p.prod:
            _star_prod(ax, p, f, norm)
        if p.candidate:
            _label_candidate(ax, p, f)
    fig.colorbar(dots, ax=ax, label="mean LLM latency per task (ms)")
    ax.set_xlabel("mean tokens per task (lower is better)")
    ax.set_ylabel("score: deflated Sharpe × criteria met (higher is better)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.margins(x=0.1, y=0.15)  # room for the labels of points at the edges
    ax.legend(loc="best")
    return _save_figure(fig, path)


def _latency_norm(latencies: Sequence[float]) -> Normalize:
    """One norm for every marker kind, so a colour means the same latency everywhere;
    widened when all latencies are equal (a zero-width norm has no colours)."""
    from matplotlib.colors import Normalize

    low, high = min(latencies), max(latencies)
    return Normalize(vmin=low, vmax=high if high > low else low + 1)


def _draw_front(ax: Axes, measured: Measured) -> None:
    """Front 0 (the non-dominated points) joined up in order of tokens."""
    front = sorted((f.mean_tokens, f.score) for p, f in measured if p.rank == 0)
    if front:
        ax.plot(
            *zip(*front, strict=True),
            color="#d62728",
            linewidth=1.2,
            zorder=1,
            label="front 0 (non-dominated)",
        )


def _scatter_points(ax: Axes, measured: Measured, norm: Normalize) -> PathCollection:
    """The points other than prod, coloured by latency; front 0 larger and edged red."""
    on_front = [p.rank == 0 for p, _ in measured]
    return ax.scatter(
        [f.mean_tokens for _, f in measured],
        [f.score for _, f in measured],
        c=[f.mean_latency_ms for _, f in measured],
        cmap="viridis",
        norm=norm,
        s=[110 if front else 45 for front in on_front],
        # A thin grey edge keeps pale (slow) points visible on white.
        edgecolors=["#d62728" if front else "#666666" for front in on_front],
        linewidths=[1.6 if front else 0.6 for front in on_front],
        zorder=2,
    )


def _star_prod(ax: Axes, point: ParetoPoint, fitness: Fitness, norm: Normalize) -> None:
    """Prod as a large star in its latency colour, labelled with its success rate."""
    where = (fitness.mean_tokens, fitness.score)
    ax.scatter(
        [where[0]],
        [where[1]],
        c=[fitness.mean_latency_ms],
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
        f"prod {point.prompt_id[:8]} ({fitness.success_rate:.0%} passed)",
        where,
        xytext=(10, -16),
        textcoords="offset points",
        fontsize=9,
        weight="bold",
    )


def _label_candidate(ax: Axes, point: ParetoPoint, fitness: Fitness) -> None:
    """An arrow to a candidate, with its success rate."""
    ax.annotate(
        f"candidate {point.prompt_id[:8]} ({fitness.success_rate:.0%} passed)",
        (fitness.mean_tokens, fitness.score),
        xytext=(12, 12),
        textcoords="offset points",
        fontsize=9,
        color="#1f5fa8",
        arrowprops={"arrowstyle": "->", "color": "#1f5fa8"},
    )


def _save_figure(fig: Figure, path: Path) -> Path:
    """Lay out, write (creating the directory) and close a figure; its path."""
    import matplotlib.pyplot as plt

    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
