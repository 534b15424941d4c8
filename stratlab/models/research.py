"""DTOs of the research cycle: strategy specs, training and backtest reports, gates.

These cross Temporal (through the pydantic data converter) and the database, so every
field added later gets a default: old workflow histories must still decode.
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from stratlab.models.optimizer_slice import research_refusal

StrategyKind = Literal["rules", "ml", "code"]
Outcome = Literal[
    "success",
    "failed_design",
    "failed_training",
    "failed_training_gate",
    "failed_backtest",
    "failed_backtest_gate",
    "failed_assessment",
    "skipped_budget",
]
OUTCOMES: tuple[str, ...] = Outcome.__args__  # type: ignore[attr-defined]
Phase = Literal[
    "starting",
    "budget",
    "design",
    "train",
    "backtest",
    "assess",
    "analyse",
    "holdout",
    "recording",
    "done",
]


class IndicatorRef(BaseModel):
    """One indicator instance of a strategy, e.g. ``{"alias": "fast", "kind": "sma",
    "params": {"window": "fast_window"}}``. A param value that is a string names a
    strategy parameter (searched over its range); a number is a fixed value."""

    alias: str = Field(description="name used in expressions and ML features")
    kind: str = Field(description="indicator registry name: sma, ema, rsi, macd, bbands, atr...")
    params: dict[str, float | int | str] = Field(default_factory=dict)


class ParamRange(BaseModel):
    """An inclusive grid ``low, low+step, ..., high`` searched during training."""

    name: str
    low: float
    high: float
    step: float = 1.0


class MlSpec(BaseModel):
    """The ``ml`` kind: classify whether the close ``label_horizon`` bars ahead is higher."""

    features: list[str] = Field(description="indicator aliases or alias.output, or price columns")
    label_horizon: int = 5
    classifier: Literal["logistic", "mlp"] = "logistic"
    threshold: float = Field(0.55, description="enter when P(up) >= threshold")
    exit_threshold: float = Field(0.5, description="exit when P(up) < exit_threshold")
    epochs: int = 20


class StrategySpec(BaseModel):
    """What the designer proposes. ``rules`` uses entry/exit expressions over indicators;
    ``ml`` uses ``ml``; both are validated by ``stratlab.strategies.validation``."""

    name: str
    kind: StrategyKind = "rules"
    symbol: str = "sp500"
    rationale: str = ""
    indicators: list[IndicatorRef] = Field(default_factory=list)
    entry: str = ""
    exit: str = ""
    parameters: list[ParamRange] = Field(default_factory=list)
    stop_loss: float | None = Field(None, description="fraction below entry, e.g. 0.05")
    take_profit: float | None = Field(None, description="fraction above entry")
    ml: MlSpec | None = None
    code: str | None = Field(
        None,
        description="kind code: Python source defining signals(data, params) -> "
        "(entries, exits); data is an OHLCV DataFrame, params a dict of the parameters",
    )


class TrainingGateThresholds(BaseModel):
    """Seed 002's training gate (ml) plus the rules-kind equivalents.

    For ``ml`` the default judges skill against the base rate on validation
    (``ml_skill="base_rate"``: validation log loss below the base-rate log loss and AUC
    above 0.5 at ``max_auc_p_value``); ``"loss_decrease"`` is seed 002's original check.
    """

    model_config = ConfigDict(frozen=True)

    min_accuracy: float = 0.45
    max_final_loss: float = 0.8
    min_loss_decrease: float = 0.20
    min_validation_trades: int = 3
    min_validation_score: float = -1.0
    ml_skill: Literal["base_rate", "loss_decrease"] = "base_rate"
    max_auc_p_value: float = 0.05


class BacktestGateThresholds(BaseModel):
    """Seed 002's backtest gate, with the win-rate floor lowered from the seed's 0.45.

    Win rate measures a strategy's payoff shape, not its edge: measured on the integrity
    benchmark, trend followers on a real Sharpe-1.5 edge win 26-45 % of their trades while
    buy-the-dip designs on pure noise win 60 % (``perf/integrity.py``). At 0.45 the check
    rejected most genuine trend edges and none of the noise; 0.25 keeps it as a floor
    against strategies that lose almost every trade. ``{"min_win_rate": 0.45}`` restores
    the seed's value.
    """

    model_config = ConfigDict(frozen=True)

    min_win_rate: float = 0.25
    max_drawdown: float = 0.40
    min_sharpe: float = -0.5


class StatisticalGateThresholds(BaseModel):
    """The statistical gate on top of the seed gates (on by default).

    ``min_deflated_sharpe`` is the deflated Sharpe probability (Bailey & López de Prado
    2014) the walk-forward out-of-sample returns must reach, judged against the trial
    ledger's N; ``benchmark`` is what long-only returns are measured against;
    ``max_pbo`` the probability of backtest overfitting (CSCV) the grid may show when it
    has at least ``min_pbo_candidates`` combinations; a Sharpe above
    ``implausible_sharpe`` (annualised) is flagged for a human.
    """

    model_config = ConfigDict(frozen=True)

    enabled: bool = True
    min_deflated_sharpe: float = 0.95
    min_trades: int = 5
    max_pbo: float = 0.5
    min_pbo_candidates: int = 8
    benchmark: Literal["exposure_matched", "zero"] = "exposure_matched"
    implausible_sharpe: float = 4.0
    trials: Literal["fits", "grid"] = Field(
        "fits",
        description="what N counts: walk-forward records of the universe (fits), or every "
        "grid combination of every fit (effective; far more conservative)",
    )


CheckStatus = Literal["passed", "failed", "not_run"]


class GateCheck(BaseModel):
    """One check of a gate. ``status`` is ``not_run`` when the check could not be made
    (too few trades, too few candidates): such a check never counts as passed."""

    name: str
    value: float
    threshold: float
    op: Literal[">=", "<="]
    passed: bool
    status: CheckStatus | None = None
    detail: str = ""

    @model_validator(mode="after")
    def _fill_status(self) -> GateCheck:
        # Rows and histories from before ``status`` existed: derive it from ``passed``.
        if self.status is None:
            self.status = "passed" if self.passed else "failed"
        elif self.status == "not_run":
            self.passed = False
        return self


class GateResult(BaseModel):
    gate: Literal["training", "backtest", "statistical"]
    passed: bool
    checks: list[GateCheck] = Field(default_factory=list)

    def failures(self) -> list[GateCheck]:
        return [c for c in self.checks if c.status == "failed"]

    def not_run(self) -> list[GateCheck]:
        return [c for c in self.checks if c.status == "not_run"]


class DataSplit(BaseModel):
    name: Literal["train", "validation", "test"]
    start: datetime
    end: datetime
    bars: int


class BacktestMetrics(BaseModel):
    """Stable, documented metric names (fractions, not percent)."""

    total_return: float = 0.0
    cagr: float = 0.0
    sharpe: float = 0.0
    sortino: float = 0.0
    max_drawdown: float = Field(0.0, description="positive fraction, 0.25 = -25% peak to trough")
    win_rate: float = 0.0
    trades: int = 0
    profit_factor: float = 0.0
    exposure: float = Field(0.0, description="fraction of bars in the market")
    benchmark_return: float = Field(0.0, description="buy-and-hold total return, same period")
    start: datetime | None = None
    end: datetime | None = None
    bars: int = 0


class EpochStats(BaseModel):
    epoch: int
    loss: float
    validation_accuracy: float


class LookaheadProbe(BaseModel):
    """Signals computed on prefixes ``data[: t + 1]`` compared with the full run at bars
    ``<= t``, for ``cuts`` cut points. ``first_bar`` is the first bar (position in the
    frame the probe ran on) whose signal changed when later bars were added."""

    cuts: int = 0
    passed: bool = True
    first_bar: int | None = None
    first_ts: datetime | None = None
    series: str = Field("", description="entries or exits: the series that changed")
    cut: int | None = Field(None, description="the prefix end at which it changed")
    detail: str = ""


class TrialStats(BaseModel):
    """The trials one fit adds to the ledger: its grid combinations, their Sharpe ratios
    (per bar, over the development period) and how correlated they are."""

    n_trials: int = 0
    n_effective: float = 0.0
    sharpe_mean: float = 0.0
    sharpe_var: float = 0.0
    sharpe_sum: float = 0.0
    sharpe_sq_sum: float = 0.0
    avg_correlation: float = 0.0
    bars: int = 0


class WalkForwardFold(BaseModel):
    """One fold: parameters chosen on ``[0, fit_end)`` (less the purge), judged on
    ``[test_start, test_end)`` (positions in the development period)."""

    fit_end: int
    test_start: int
    test_end: int
    params: dict[str, float] = Field(default_factory=dict)
    sharpe: float = 0.0


class WalkForwardReport(BaseModel):
    """Walk-forward out-of-sample evaluation on the development period."""

    scheme: Literal["anchored", "rolling"] = "anchored"
    folds: list[WalkForwardFold] = Field(default_factory=list)
    purge_bars: int = 0
    embargo_bars: int = 0
    oos_bars: int = 0
    sharpe: float = Field(0.0, description="annualised, of the stitched OOS returns")
    sharpe_per_bar: float = 0.0
    excess_sharpe_per_bar: float = Field(
        0.0, description="per bar, against the exposure-matched buy-and-hold benchmark"
    )
    skew: float = 0.0
    kurtosis: float = Field(3.0, description="non-excess kurtosis of the OOS returns")
    exposure: float = 0.0
    trades: int = 0
    periods_per_year: float = 252.0


class TrainingReport(BaseModel):
    kind: StrategyKind
    splits: list[DataSplit] = Field(default_factory=list)
    # rules
    grid_size: int = 0
    best_params: dict[str, float] = Field(default_factory=dict)
    train_metrics: BacktestMetrics | None = None
    validation_metrics: BacktestMetrics | None = None
    # ml
    epochs: list[EpochStats] = Field(default_factory=list)
    accuracy: float | None = None
    final_loss: float | None = None
    loss_decrease: float | None = None
    resumed_from_epoch: int = 0
    validation_log_loss: float | None = None
    base_rate_log_loss: float | None = None
    validation_auc: float | None = None
    auc_p_value: float | None = None
    # research integrity (validation_metrics are the walk-forward OOS metrics when
    # walk_forward is set)
    walk_forward: WalkForwardReport | None = None
    trials: TrialStats | None = None
    pbo: float | None = Field(None, description="probability of backtest overfitting (CSCV)")
    pbo_splits: int = 0
    lookahead: LookaheadProbe | None = None
    notes: list[str] = Field(default_factory=list)
    duration_ms: float = 0.0


class Assessment(BaseModel):
    """The assessor's verdict on an out-of-sample result."""

    verdict: Literal["accept", "refine", "reject"]
    summary: str
    strengths: list[str] = Field(default_factory=list)
    weaknesses: list[str] = Field(default_factory=list)
    suggestions: list[str] = Field(default_factory=list)


# --- workflow and activity payloads ----------------------------------------------------


class DataWindow(BaseModel):
    """Restricts a cycle to the bars between ``start`` and ``end`` (inclusive) before the
    train/validation/test split: how a benchmark task names its market period."""

    model_config = ConfigDict(frozen=True)

    start: date | None = None
    end: date | None = None

    def describe(self) -> str:
        return f"{self.start or 'first bar'} to {self.end or 'last bar'}"


BudgetScope = Literal["research", "optimizer"]
TrialSource = Literal["cycle", "optimizer", "user"]


class ResearchCycleInput(BaseModel):
    """Input of ``ResearchCycleWorkflow``; ``{}`` is a valid input."""

    symbol: str = Field("sp500", description="data set: sp500, nasdaq or an imported symbol")
    kind: StrategyKind | None = Field(
        None, description="rules | ml | code; null lets the designer pick rules or ml"
    )
    max_iterations: int = Field(3, ge=1, le=10, description="design rounds incl. refinements")
    convergence_threshold: float = Field(
        0.05, description="stop refining when OOS Sharpe improves by less than this"
    )
    session_id: str = Field("", description="empty: made by the workflow")
    trigger: str = Field("manual", description="what started it: manual, schedule, cli, demo")
    training_gate: TrainingGateThresholds | None = None
    backtest_gate: BacktestGateThresholds | None = None
    # Set by regression runs (prompt evolution); a user may set them too.
    period: DataWindow | None = Field(None, description="only the bars in this window")
    designer_prompt_id: str = Field("", description="empty: the designer's prod prompt")
    assessor_prompt_id: str = Field("", description="empty: the assessor's prod prompt")
    assess: bool = Field(True, description="false: stop after the backtest gate")
    isolated: bool = Field(
        False,
        description="design from the prompt and data alone: no recent strategies or skills "
        "in the prompt, and a winner does not join the skill library",
    )
    budget_scope: BudgetScope = Field("research", description="research | optimizer")
    statistical_gate: StatisticalGateThresholds | None = None
    blind: bool = Field(
        False,
        description="the designer sees an anonymised symbol and relative dates, so a "
        "model that remembers the market cannot trade a known crash or rally by date",
    )
    objective: str = Field(
        "",
        max_length=1_000,
        description="what the strategy is asked to achieve, in words; the designer reads it "
        "(a regression run passes its task's objective)",
    )

    @model_validator(mode="after")
    def _not_on_the_optimizers_data(self) -> ResearchCycleInput:
        refusal = research_refusal(self.symbol, self.trigger)
        if refusal:
            raise ValueError(refusal)
        return self


class IterationSummary(BaseModel):
    iteration: int
    strategy_id: str | None = None
    strategy_name: str | None = None
    kind: StrategyKind | None = None
    outcome: Outcome
    training_run_id: str | None = None
    training_gate: GateResult | None = None
    backtest_gate: GateResult | None = None
    metrics: BacktestMetrics | None = None
    statistical_gate: GateResult | None = None
    trials: int = Field(0, description="the ledger's N the statistical gate judged against")
    assessment: Assessment | None = None
    error: str | None = None


class HoldoutResult(BaseModel):
    """The final holdout, evaluated once per cycle for the strategy the cycle chose:
    reported, never fed back to an LLM, never used to choose or rank."""

    holdout_id: str
    strategy_id: str
    metrics: BacktestMetrics
    sharpe_per_bar: float = 0.0
    psr: float | None = Field(None, description="probabilistic Sharpe ratio against 0")
    lookahead: LookaheadProbe | None = None
    notes: list[str] = Field(default_factory=list)


class ResearchCycleResult(BaseModel):
    session_id: str
    outcome: Outcome
    iterations: list[IterationSummary] = Field(default_factory=list)
    best_strategy_id: str | None = None
    tokens: int = 0
    cost_usd: float = 0.0
    converged: bool = False
    holdout: HoldoutResult | None = None


class CycleStatus(BaseModel):
    """Answer of the workflow's ``status`` query: costs no tokens."""

    session_id: str
    phase: Phase
    iteration: int
    symbol: str
    started_at: datetime
    outcome: Outcome | None = None
    last_sharpe: float | None = None
    last_error: str | None = None


class StartSessionInput(BaseModel):
    session_id: str
    workflow_id: str
    run_id: str
    symbol: str
    kind: StrategyKind | None = None
    trigger: str = "manual"
    started_at: datetime
    cycle_input: ResearchCycleInput = ResearchCycleInput()


class SessionStarted(BaseModel):
    session_id: str
    designer_prompt_id: str
    assessor_prompt_id: str
    budget_remaining_usd: float
    budget_ok: bool


class DesignInput(BaseModel):
    session_id: str
    iteration: int
    symbol: str
    kind: StrategyKind | None = None
    prompt_id: str
    strategy_id: str = Field(description="made by the workflow so a retry reuses it")
    feedback: str = ""
    previous_strategy_id: str | None = None
    max_iterations: int = 3
    period: DataWindow | None = None
    isolated: bool = False
    budget_scope: BudgetScope = "research"
    blind: bool = False
    objective: str = ""


class DesignResult(BaseModel):
    strategy_id: str
    spec: StrategySpec
    tokens: int = 0
    cost_usd: float = 0.0


class TrainInput(BaseModel):
    session_id: str
    iteration: int
    strategy_id: str
    training_run_id: str
    gate: TrainingGateThresholds | None = None
    period: DataWindow | None = None
    trial_source: TrialSource = Field("cycle", description="what the ledger counts it as")


class TrainResult(BaseModel):
    training_run_id: str
    report: TrainingReport
    gate: GateResult


class BacktestInput(BaseModel):
    session_id: str
    iteration: int
    strategy_id: str
    training_run_id: str
    backtest_id: str
    gate: BacktestGateThresholds | None = None
    period: DataWindow | None = None
    statistical_gate: StatisticalGateThresholds | None = None
    trial_source: TrialSource = "cycle"


class BacktestResult(BaseModel):
    backtest_id: str
    metrics: BacktestMetrics
    gate: GateResult
    statistical_gate: GateResult | None = None
    trials: int = 0


class HoldoutInput(BaseModel):
    session_id: str
    strategy_id: str
    training_run_id: str
    holdout_id: str
    period: DataWindow | None = None


class AssessInput(BaseModel):
    session_id: str
    iteration: int
    strategy_id: str
    backtest_id: str
    prompt_id: str
    assessment_id: str
    max_iterations: int = 3
    budget_scope: BudgetScope = "research"


class AssessResult(BaseModel):
    assessment: Assessment
    tokens: int = 0
    cost_usd: float = 0.0


class FinishSessionInput(BaseModel):
    session_id: str
    outcome: Outcome
    best_strategy_id: str | None = None
    finished_at: datetime
    result: ResearchCycleResult
    keep_skill: bool = True


# --- data-driven analyst (seed 004) ----------------------------------------------------


class AnalystSuggestion(BaseModel):
    """A condition the train split (almost) never satisfies, and a value it does reach.

    Made by ``stratlab.research.analyst.analyse_conditions``: ``indicator`` is what the
    condition compares (an alias, ``alias.output``, a price column, or for code specs the
    indicator the heuristic recomputed), ``threshold`` the fixed number or ``parameter``
    the parameter whose range ``parameter_low..parameter_high`` it searched; ``data_*``
    describe that indicator on the train split and ``proposed`` is its ``percentile``-th
    percentile, rounded towards the permissive side.
    """

    condition: str = ""
    indicator: str = ""
    label: str = Field("", description="human name of the series, e.g. RSI(14)")
    op: Literal["<", "<=", ">", ">="] = "<"
    threshold: float | None = None
    parameter: str | None = None
    parameter_low: float | None = None
    parameter_high: float | None = None
    hits: int = Field(0, description="train bars meeting the loosest version of the condition")
    bars: int = Field(0, description="train bars where the series is defined")
    data_min: float = 0.0
    data_max: float = 0.0
    data_p5: float = 0.0
    data_p50: float = 0.0
    data_p95: float = 0.0
    percentile: float = 5.0
    proposed: float = 0.0
    source: Literal["rules", "code"] = "rules"


class AnalyseInput(BaseModel):
    session_id: str
    iteration: int
    strategy_id: str
    period: DataWindow | None = None


class AnalyseResult(BaseModel):
    suggestions: list[AnalystSuggestion] = Field(default_factory=list)
    text: str = Field("", description="the suggestions as feedback for the next design")


# --- the trial ledger -----------------------------------------------------------------


class TrialLedger(BaseModel):
    """A research universe's trials so far: what a verdict on it is judged against.

    ``universe`` is the symbol and the development period's first and last bar; ``fits``
    counts the walk-forward records made on it; ``n`` counts every trial (grid
    combinations of every fit), ``n_effective`` discounts the correlated ones per fit;
    ``sharpe_var`` is the variance of the trials' per-bar Sharpe ratios and
    ``oos_sharpe_var`` that of the fits' walk-forward Sharpe ratios.
    """

    universe: str
    symbol: str
    fits: int = 0
    n: int = 0
    n_effective: float = 0.0
    sharpe_mean: float = 0.0
    sharpe_var: float = 0.0
    oos_sharpe_var: float = Field(
        0.0, description="variance of the fits' walk-forward out-of-sample per-bar Sharpe"
    )
    by_source: dict[str, int] = Field(default_factory=dict)
    first_at: datetime | None = None
    last_at: datetime | None = None


# --- a user's own strategy through the lab's pipeline ----------------------------------


class RegisterStrategyInput(BaseModel):
    """A strategy the user wrote, to be validated and stored like a designed one."""

    session_id: str = ""
    strategy_id: str = Field("", description="made by the workflow so a retry reuses it")
    iteration: int = 1
    spec: StrategySpec | None = None


class RegisterStrategyResult(BaseModel):
    strategy_id: str = ""
    spec: StrategySpec | None = Field(None, description="the spec as stored")


class EvaluateStrategyInput(BaseModel):
    """Input of ``EvaluateStrategyWorkflow``: a user's rules, ml or code spec (the JSON the
    designer produces) through fit, walk-forward, look-ahead probe, the seed gates, the
    statistical gate and the holdout. ``spec`` is required; the workflow fails at once
    without one."""

    spec: StrategySpec | None = Field(None, description="the strategy to evaluate (required)")
    symbol: str = Field("", description="empty: the spec's own symbol; else overrides it")
    session_id: str = Field("", description="empty: made by the workflow")
    period: DataWindow | None = Field(None, description="only the bars in this window")
    training_gate: TrainingGateThresholds | None = None
    backtest_gate: BacktestGateThresholds | None = None
    statistical_gate: StatisticalGateThresholds | None = None

    @model_validator(mode="after")
    def _not_on_the_optimizers_data(self) -> EvaluateStrategyInput:
        symbol = self.symbol or (self.spec.symbol if self.spec else "")
        refusal = research_refusal(symbol, "user")
        if refusal:
            raise ValueError(refusal)
        return self


class EvaluateStrategyResult(BaseModel):
    """What the evaluation found. ``checks`` are the training gate's, then the backtest
    gate's, then the statistical gate's, in order (``gates`` holds them by gate, with each
    gate's verdict); ``trials`` is the ledger's N the statistical gate judged against;
    ``metrics`` are the walk-forward out-of-sample metrics; ``holdout`` is evaluated only
    for a strategy that passed every gate."""

    session_id: str = ""
    outcome: Outcome = "failed_design"
    strategy_id: str | None = None
    checks: list[GateCheck] = Field(default_factory=list)
    gates: list[GateResult] = Field(default_factory=list)
    trials: int = 0
    holdout: HoldoutResult | None = None
    metrics: BacktestMetrics | None = None
    error: str | None = None
