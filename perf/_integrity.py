"""Pure helpers of perf/integrity.py: Wilson intervals, design families, summaries, plot.

Nothing here touches Temporal or Postgres: records in, figures out.
"""

from __future__ import annotations

import math
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stratlab.llm.offline.inspect import (
    BREAKOUT,
    CODE_FAMILIES,
    TREND,
    code_family_of,
    family_of,
    style_of,
)
from stratlab.models.research import StrategySpec
from stratlab.strategies.classic import sma_crossover

CAPTURING_STYLES = frozenset({TREND, BREAKOUT})
"""Design styles that can capture a trend-regime edge: they are long while the price has
been rising. Mean reversion buys weakness, which on this model is the down regime."""

FALSE_TARGET = 0.05
POWER_TARGET = 0.80
POWER_TARGET_SHARPE = 1.5
MODES = ("lab", "evaluate")
"""``lab``: whole research cycles with the offline designer. ``evaluate``: one fixed SMA
crossover spec through ``EvaluateStrategyWorkflow`` (the gates alone, no designer luck)."""


def sma_cross_spec(symbol: str) -> StrategySpec:
    """The fixed trend follower of the evaluate mode: long from a fast SMA crossing above
    a slow one until it crosses back below; both windows fitted walk-forward on a 6 x 7
    grid (fast 5..30 step 5, slow 40..160 step 20); no stop-loss, no take-profit."""
    return sma_crossover(
        fast=(5, 30, 5),
        slow=(40, 160, 20),
        name="benchmark SMA crossover",
        symbol=symbol,
        rationale="integrity benchmark: a trend follower that can capture a planted "
        "trend-regime edge",
    )


@dataclass
class CycleRecord:
    """One research cycle of the benchmark, as the report needs it."""

    section: str  # "false" (random walk) or "power" (planted edge)
    kind: str
    symbol: str
    path_seed: int
    true_sharpe: float | None = None
    mode: str = "lab"  # "lab" (research cycle) or "evaluate" (the fixed SMA crossover)
    outcome: str = "error"
    error: str | None = None
    session_id: str = ""
    iterations: int = 0
    families: list[str | None] = field(default_factory=list)
    styles: list[str | None] = field(default_factory=list)
    chosen_family: str | None = None
    chosen_style: str | None = None
    verdict: str | None = None
    oos_sharpe: float | None = None
    """Walk-forward out-of-sample Sharpe (annualised) of the chosen / evaluated strategy."""
    oos_win_rate: float | None = None
    oos_trades: int | None = None
    dsr: float | None = None
    """The statistical gate's deflated Sharpe probability (None: the check did not run)."""
    dsr_status: str | None = None
    trials: int | None = None
    """The ledger's N the statistical gate judged against."""
    failed_checks: list[str] = field(default_factory=list)
    holdout_sharpe: float | None = None
    oracle_dev_sharpe: float | None = None
    causal_dev_sharpe: float | None = None
    reference_dev_sharpe: float | None = None
    wall_s: float = 0.0

    @property
    def passed(self) -> bool:
        return self.outcome == "success"

    @property
    def capturing(self) -> bool | None:
        """Did any round design a family that can capture a trend edge (None: unknown)."""
        known = [s for s in self.styles if s is not None]
        if not known:
            return None
        return any(s in CAPTURING_STYLES for s in known)


def design_family(spec: StrategySpec) -> tuple[str | None, str | None]:
    """(family, style) of a designed spec, as the offline designer names them."""
    if spec.kind == "code":
        family = code_family_of(spec)
        return family, CODE_FAMILIES[family][0] if family in CODE_FAMILIES else None
    family = family_of(spec)
    return family, style_of(family)


def wilson(successes: int, n: int, z: float = 1.959964) -> tuple[float, float]:
    """95 % Wilson score interval of a binomial proportion ((0, 1) when n is 0)."""
    if n == 0:
        return 0.0, 1.0
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, centre - half), min(1.0, centre + half)


def rate(records: list[CycleRecord]) -> dict[str, Any]:
    """Share of completed ``records`` ending success, with its interval. A cycle that
    errored (workflow failure, timeout) decided nothing, so it is counted apart."""
    done = [r for r in records if r.outcome != "error"]
    n, k = len(done), sum(r.passed for r in done)
    low, high = wilson(k, n)
    return {
        "n": n,
        "success": k,
        "rate": k / n if n else None,
        "ci95": [low, high],
        "errors": len(records) - n,
    }


def failed_checks(records: list[CycleRecord]) -> dict[str, int]:
    """How often each gate check failed in the rounds of ``records`` (gate.check)."""
    return dict(Counter(c for r in records for c in r.failed_checks).most_common())


def _by_style(records: list[CycleRecord]) -> dict[str, int]:
    """Successes by the style of the strategy each cycle chose."""
    return dict(Counter(str(r.chosen_style) for r in records if r.passed).most_common())


def summarise_false(records: list[CycleRecord], kinds: list[str]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind in kinds:
        mine = [r for r in records if r.kind == kind]
        out[kind] = {
            **rate(mine),
            **verdict_figures(mine),
            "outcomes": dict(Counter(r.outcome for r in mine).most_common()),
            "error_messages": [r.error for r in mine if r.outcome == "error"],
            "successes_by_style": _by_style(mine),
            "failed_checks": failed_checks(mine),
            "verdicts_of_successes": dict(Counter(str(r.verdict) for r in mine if r.passed)),
            "target": FALSE_TARGET,
        }
    return out


def summarise_false_evaluate(records: list[CycleRecord]) -> dict[str, Any]:
    """The fixed SMA crossover on fresh random walks: the gates' own false-positive rate."""
    return {
        **rate(records),
        **verdict_figures(records),
        "outcomes": dict(Counter(r.outcome for r in records).most_common()),
        "error_messages": [r.error for r in records if r.outcome == "error"],
        "failed_checks": failed_checks(records),
        "target": FALSE_TARGET,
    }


def verdict_figures(records: list[CycleRecord]) -> dict[str, Any]:
    """Medians of what the gates judged: the walk-forward Sharpe, the deflated Sharpe
    probability and the ledger's N, over the completed records that reported each."""
    done = [r for r in records if r.outcome != "error"]
    sharpes = [r.oos_sharpe for r in done if r.oos_sharpe is not None]
    dsrs = [r.dsr for r in done if r.dsr is not None]
    trials = [r.trials for r in done if r.trials]
    return {
        "wf_sharpe_median": _median(sharpes),
        "wf_sharpe_q25_q75": _quartiles(sharpes),
        "wf_sharpe_n": len(sharpes),
        "dsr_median": _median(dsrs),
        "dsr_q25_q75": _quartiles(dsrs),
        "dsr_n": len(dsrs),
        "dsr_not_run": sum(r.dsr_status == "not_run" for r in done),
        "trials_median": _median([float(t) for t in trials]),
    }


def summarise_power(records: list[CycleRecord], levels: list[float]) -> list[dict[str, Any]]:
    """One row per level: the pass rate with its interval, what the gates saw (median
    walk-forward Sharpe and deflated Sharpe probability), and the captured share: the
    median walk-forward Sharpe over the true Sharpe. For lab cycles also split by whether
    the cycle tried a design family that can capture the edge."""
    rows = []
    for level in levels:
        mine = [r for r in records if r.true_sharpe == level]
        capturing = [r for r in mine if r.capturing is True]
        other = [r for r in mine if r.capturing is False]
        oracle = [r.oracle_dev_sharpe for r in mine if r.oracle_dev_sharpe is not None]
        causal = [r.causal_dev_sharpe for r in mine if r.causal_dev_sharpe is not None]
        reference = [r.reference_dev_sharpe for r in mine if r.reference_dev_sharpe is not None]
        figures = verdict_figures(mine)
        median_wf, mean_oracle = figures["wf_sharpe_median"], _mean(oracle)
        rows.append(
            {
                "true_sharpe": level,
                **rate(mine),
                **figures,
                "captured_share": median_wf / level
                if median_wf is not None and level > 0
                else None,
                "captured_share_of_realised_oracle": median_wf / mean_oracle
                if median_wf is not None and mean_oracle is not None and level > 0
                else None,
                "capturing_designs": rate(capturing),
                "other_designs": rate(other),
                "by_kind": {k: rate([r for r in mine if r.kind == k]) for k in _kinds(mine)},
                "outcomes": dict(Counter(r.outcome for r in mine).most_common()),
                "error_messages": [r.error for r in mine if r.outcome == "error"],
                "successes_by_style": _by_style(mine),
                "failed_checks": failed_checks(mine),
                "failed_checks_of_capturing_designs": failed_checks(capturing),
                "oracle_dev_sharpe_mean": mean_oracle,
                "oracle_dev_sharpe_sd": _sd(oracle),
                "causal_dev_sharpe_mean": _mean(causal),
                "causal_dev_sharpe_sd": _sd(causal),
                "reference_trend_dev_sharpe_mean": _mean(reference),
            }
        )
    return rows


def cycle_times(records: list[CycleRecord], wall: float) -> dict[str, Any]:
    walls = sorted(r.wall_s for r in records)
    if not walls:
        return {}
    return {
        "cycles": len(walls),
        "latency_p50_s": walls[len(walls) // 2],
        "latency_p95_s": walls[min(len(walls) - 1, round(0.95 * (len(walls) - 1)))],
        "latency_mean_s": sum(walls) / len(walls),
        "throughput_s_per_cycle": wall / len(walls),
    }


def records_json(records: list[CycleRecord]) -> list[dict[str, Any]]:
    return [{**asdict(r), "capturing": r.capturing} for r in records]


def reference_trend_sharpe(
    frame: pd.DataFrame, end: int, *, fast: int = 10, slow: int = 50, cost_bps: float = 10.0
) -> float:
    """Annualised Sharpe on bars ``[0, end)`` of one fixed trend rule: long while the fast
    SMA is above the slow one, decided at a close and held from the next bar, ``cost_bps``
    per side. A yardstick of what a plain trend follower can take from a planted edge."""
    close = frame["close"].iloc[:end]
    held = (close.rolling(fast).mean() > close.rolling(slow).mean()).shift(1, fill_value=False)
    position = held.to_numpy(dtype=np.float64)
    returns = close.pct_change().fillna(0.0).to_numpy() * position
    turns = np.abs(np.diff(position, prepend=0.0))
    returns = returns - turns * cost_bps / 10_000
    std = returns.std(ddof=1)
    return float(returns.mean() / std * math.sqrt(252)) if std > 1e-12 else 0.0


MODE_STYLE = {
    "lab": ("lab: research cycles, offline designer", "C0", "o"),
    "evaluate": ("evaluate: fixed SMA crossover (EvaluateStrategyWorkflow)", "C1", "s"),
}


EDGE_MEANING = {
    "causal": "the best causal trader's (a Bayes filter that knows the drift, volatility "
    "and regime length; no costs)",
    "oracle": "hindsight's (long exactly in the up regimes)",
}
"""What a planted level's Sharpe names, per ``--edge``."""


def plot_power(
    power: dict[str, list[dict[str, Any]]],
    false: dict[str, Any],
    false_evaluate: dict[str, Any] | None,
    path: Path,
    title: str = "",
    *,
    edge: str = "causal",
) -> None:
    """Pass rate against the planted edge's true Sharpe per mode, with Wilson intervals;
    on a second axis the median walk-forward Sharpe each mode's chosen strategy reached
    (what the gates judged), against the line where it equals the true Sharpe."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(10, 7.2), dpi=120, layout="constrained")
    right = ax.twinx()
    offsets = {"lab": -0.025, "evaluate": 0.025}
    sharpes: list[float] = [0.0, 1.0]
    for mode, rows in power.items():
        label, colour, marker = MODE_STYLE[mode]
        points = [row for row in rows if row["n"]]
        if not points:
            continue
        xs = [row["true_sharpe"] + offsets[mode] for row in points]
        ys = [row["rate"] for row in points]
        ax.errorbar(
            xs,
            ys,
            yerr=[
                [row["rate"] - row["ci95"][0] for row in points],
                [row["ci95"][1] - row["rate"] for row in points],
            ],
            label=f"{label}: pass rate (n={_n_label(points)} per level)",
            color=colour,
            marker=marker,
            capsize=3,
            linewidth=1.8,
            zorder=3,
        )
        captured = [row for row in points if row["wf_sharpe_median"] is not None]
        if captured:
            wf = [row["wf_sharpe_median"] for row in captured]
            sharpes += wf
            right.plot(
                [row["true_sharpe"] for row in captured],
                wf,
                color=colour,
                linestyle=":",
                marker=marker,
                markersize=3,
                linewidth=1.0,
                alpha=0.8,
                label=f"{mode}: median walk-forward OOS Sharpe (right axis; "
                "labels: captured share = WF / true Sharpe)",
            )
            for row in captured:
                if row["captured_share"] is not None:
                    right.annotate(
                        f"{row['captured_share']:.0%}",
                        xy=(row["true_sharpe"], row["wf_sharpe_median"]),
                        xytext=(5, -3 if mode == "lab" else 3),
                        textcoords="offset points",
                        fontsize=6,
                        color=colour,
                    )
    levels = sorted({row["true_sharpe"] for rows in power.values() for row in rows})
    if levels:
        sharpes += levels
        right.plot(
            [levels[0], levels[-1]],
            [levels[0], levels[-1]],
            color="grey",
            linestyle=(0, (1, 3)),
            linewidth=0.8,
            label="walk-forward Sharpe = true Sharpe (right axis; all of the edge captured)",
        )
    low, high = min(sharpes), max(sharpes)
    pad = 0.04 * (high - low)
    right.set_ylim(low - pad, high + pad)
    right.set_ylabel("median walk-forward OOS Sharpe (annualised)", fontsize=8, color="0.35")
    right.tick_params(labelsize=8, colors="0.35")
    ax.axhline(POWER_TARGET, color="grey", linestyle="--", linewidth=0.9)
    ax.axvline(POWER_TARGET_SHARPE, color="grey", linestyle="--", linewidth=0.9)
    ax.annotate(
        f"target: {POWER_TARGET:.0%} pass at true Sharpe {POWER_TARGET_SHARPE:g}",
        xy=(0.0, POWER_TARGET), xycoords=ax.get_yaxis_transform(), xytext=(4, 3),
        textcoords="offset points", fontsize=7, color="grey",
    )  # fmt: skip
    ax.set_xlabel(f"true annualised Sharpe of the planted edge:\n{EDGE_MEANING[edge]}")
    ax.set_ylabel("share of runs ending success")
    ax.set_ylim(-0.02, 1.02)
    ax.set_zorder(right.get_zorder() + 1)
    ax.patch.set_visible(False)
    lines = [
        f"lab cycles, {kind}: {row['success']}/{row['n']} = {_pct(row['rate'])} {_ci(row['ci95'])}"
        for kind, row in false.items()
        if row["n"]
    ]
    if false_evaluate and false_evaluate["n"]:
        row = false_evaluate
        lines.append(
            f"evaluate, SMA crossover: {row['success']}/{row['n']} = "
            f"{_pct(row['rate'])} {_ci(row['ci95'])}"
        )
    handles, labels = ax.get_legend_handles_labels()
    more_handles, more_labels = right.get_legend_handles_labels()
    fig.legend(
        handles + more_handles,
        labels + more_labels,
        fontsize=7,
        loc="outside lower left",
        ncol=1,
        frameon=False,
    )
    if lines:
        fig.text(
            0.99, 0.01, "random walks, share ending success (target <= 5 %):\n" + "\n".join(lines),
            fontsize=7, va="bottom", ha="right", family="monospace",
        )  # fmt: skip
    ax.set_title(title or "stratlab power curve, 95 % Wilson intervals", fontsize=9)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path)
    plt.close(fig)


def power_by_mode(data: dict[str, Any]) -> dict[str, list[dict[str, Any]]]:
    """The power rows of the modes that ran: ``power`` (lab), ``power_evaluate``."""
    found = {"lab": data.get("power") or [], "evaluate": data.get("power_evaluate") or []}
    return {mode: rows for mode, rows in found.items() if rows}


def _n_label(rows: list[dict[str, Any]]) -> str:
    counts = sorted({row["n"] for row in rows})
    return str(counts[0]) if len(counts) == 1 else f"{counts[0]}-{counts[-1]}"


def print_summary(data: dict[str, Any]) -> None:
    from rich.console import Console
    from rich.table import Table

    console = Console()
    if not console.is_terminal:
        console.width = 160
    table = Table(title="False discoveries: driftless random walks (target <= 5 % success)")
    for col in ("what", "runs", "success", "95 % CI", "errors", "med WF SR", "med DSR", "outcomes"):
        table.add_column(col)
    false_rows: list[tuple[str, dict[str, Any]]] = [
        (f"lab cycles, {kind}", row) for kind, row in data["false_discoveries"].items()
    ]
    if data.get("false_discoveries_evaluate"):
        false_rows.append(("evaluate, SMA crossover", data["false_discoveries_evaluate"]))
    for label, row in false_rows:
        outcomes = ", ".join(f"{k} {v}" for k, v in row["outcomes"].items())
        table.add_row(
            label,
            str(row["n"]),
            f"{row['success']} {_pct(row['rate'])}",
            _ci(row["ci95"]),
            str(row["errors"]),
            _num(row.get("wf_sharpe_median")),
            _num(row.get("dsr_median")),
            outcomes,
        )
    console.print(table)
    power = power_by_mode(data)
    if power:
        table = Table(
            title="Power: planted trend edge (target >= 80 % success at true Sharpe 1.5)",
            caption="pass = success/n [95 % Wilson CI]; WF SR = median walk-forward OOS "
            "Sharpe of the chosen (lab) or evaluated strategy; DSR = median deflated Sharpe "
            "probability; capt. = WF SR / true SR",
        )
        table.add_column("true SR")
        table.add_column("oracle SR dev")
        table.add_column("causal SR dev")
        for mode in power:
            table.add_column(f"{mode}: pass")
            for col in ("WF SR", "DSR", "capt."):
                table.add_column(col)
        if "lab" in power:
            table.add_column("lab, trend/breakout tried")
        first_rows = next(iter(power.values()))
        for i, first in enumerate(first_rows):
            cells = [
                f"{first['true_sharpe']:g}",
                _num(first["oracle_dev_sharpe_mean"]),
                _num(first.get("causal_dev_sharpe_mean")),
            ]
            for rows in power.values():
                row = rows[i]
                errors = f" +{row['errors']} err" if row["errors"] else ""
                share = f"{row['success']}/{row['n']} {_pct(row['rate'])}"
                cells += [
                    f"{share} {_ci_short(row['ci95'])}{errors}",
                    _num(row["wf_sharpe_median"]),
                    _num(row["dsr_median"]),
                    _pct(row["captured_share"]),
                ]
            if "lab" in power:
                cells.append(_cell(power["lab"][i]["capturing_designs"]))
            table.add_row(*cells)
        console.print(table)
    for kind, row in data["false_discoveries"].items():
        console.print(f"random walks, {kind}: failed checks {_top(row['failed_checks'])}")
    if data.get("false_discoveries_evaluate"):
        row = data["false_discoveries_evaluate"]
        console.print(f"random walks, SMA crossover: failed checks {_top(row['failed_checks'])}")
    for mode, rows in power.items():
        strong = [r for r in rows if r["true_sharpe"] >= POWER_TARGET_SHARPE]
        if not strong:
            continue
        merged: Counter[str] = Counter()
        for row in strong:
            merged.update(
                row["failed_checks_of_capturing_designs" if mode == "lab" else "failed_checks"]
            )
        who = "cycles that tried a trend/breakout design" if mode == "lab" else "SMA crossover"
        console.print(
            f"planted edge, Sharpe >= {POWER_TARGET_SHARPE:g}, {mode} ({who}): failed checks "
            f"{_top(dict(merged))}"
        )
    failed_runs = [c for c in data["cycles"] if c["outcome"] == "error"]
    console.print(f"errors: {len(failed_runs)} of {len(data['cycles'])} runs")
    for c in failed_runs[:5]:
        console.print(f"[red]error[/red] {c['symbol']}: {c['error']}")
    t = data["timing"]
    if t.get("cycles"):
        console.print(
            f"wall time {t['setup_s'] + t['cycles_wall_s']:.0f} s (setup {t['setup_s']:.0f} s, "
            f"{t['cycles']} runs in {t['cycles_wall_s']:.0f} s: "
            f"{t['throughput_s_per_cycle']:.1f} s per run at "
            f"{data['config']['concurrency']} in flight; latency p50 "
            f"{t['latency_p50_s']:.1f} s, p95 {t['latency_p95_s']:.1f} s)"
        )
        for mode, figures in t.get("by_mode", {}).items():
            if figures:
                console.print(
                    f"  {mode}: {figures['cycles']} runs, latency p50 "
                    f"{figures['latency_p50_s']:.1f} s, p95 {figures['latency_p95_s']:.1f} s"
                )
    if data["config"]["reused_symbols"]:
        console.print(
            f"[yellow]{len(data['config']['reused_symbols'])} symbols existed before this "
            "run: the lab's trial ledger may count earlier runs; use a new --seed[/yellow]"
        )


def _pct(value: float | None) -> str:
    return "-" if value is None else f"{value:.1%}"


def _ci(ci: list[float]) -> str:
    return f"[{ci[0]:.1%}, {ci[1]:.1%}]"


def _ci_short(ci: list[float]) -> str:
    return f"[{ci[0] * 100:.0f}-{ci[1] * 100:.0f}]"


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.2f}"


def _cell(row: dict[str, Any]) -> str:
    return f"{row['success']}/{row['n']} {_pct(row['rate'])}" if row["n"] else "-"


def _top(counts: dict[str, int], k: int = 4) -> str:
    ranked = sorted(counts.items(), key=lambda kv: -kv[1])[:k]
    return ", ".join(f"{name} {n}" for name, n in ranked) or "none"


def _kinds(records: list[CycleRecord]) -> list[str]:
    return sorted({r.kind for r in records})


def _mean(values: list[float]) -> float | None:
    return float(np.mean(values)) if values else None


def _sd(values: list[float]) -> float | None:
    return float(np.std(values, ddof=1)) if len(values) > 1 else None


def _median(values: list[float]) -> float | None:
    return float(np.median(values)) if values else None


def _quartiles(values: list[float]) -> list[float] | None:
    return [float(q) for q in np.quantile(values, [0.25, 0.75])] if values else None
