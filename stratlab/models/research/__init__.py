"""DTOs of the research cycle: strategy specs, training and backtest reports, gates.

These cross Temporal (through the pydantic data converter) and the database, so every
field added later gets a default: old workflow histories must still decode. The data
converter serialises by field, so which submodule holds a class is not part of a payload.

Submodules, by concept: ``windows`` (the bars a cycle uses), ``specs`` (strategies),
``gates`` (thresholds and checks), ``trials`` (the trial ledger), ``reports`` (metrics,
walk-forward, training report, holdout, assessment), ``cycle`` (the workflow's input,
result and status), ``steps`` (its activities' payloads), ``analyst`` (seed 004's
suggestions) and ``evaluation`` (a user's own strategy). Import from this package.
"""

from stratlab.models.research.analyst import AnalyseInput, AnalyseResult, AnalystSuggestion
from stratlab.models.research.cycle import (
    OUTCOMES,
    BudgetScope,
    CycleStatus,
    IterationSummary,
    Outcome,
    Phase,
    ResearchCycleInput,
    ResearchCycleResult,
    TrialSource,
)
from stratlab.models.research.evaluation import (
    EvaluateStrategyInput,
    EvaluateStrategyResult,
    RegisterStrategyInput,
    RegisterStrategyResult,
)
from stratlab.models.research.gates import (
    BacktestGateThresholds,
    CheckStatus,
    GateCheck,
    GateResult,
    StatisticalGateThresholds,
    ThresholdOp,
    TrainingGateThresholds,
)
from stratlab.models.research.reports import (
    Assessment,
    AssessorVerdict,
    BacktestMetrics,
    EpochStats,
    HoldoutResult,
    LookaheadProbe,
    TrainingReport,
    WalkForwardFold,
    WalkForwardReport,
)
from stratlab.models.research.specs import (
    IndicatorRef,
    MlSpec,
    ParamRange,
    StrategyKind,
    StrategySpec,
)
from stratlab.models.research.steps import (
    AssessInput,
    AssessResult,
    BacktestInput,
    BacktestResult,
    DesignInput,
    DesignResult,
    FinishSessionInput,
    HoldoutInput,
    SessionStarted,
    StartSessionInput,
    TrainInput,
    TrainResult,
)
from stratlab.models.research.trials import TrialLedger, TrialStats
from stratlab.models.research.windows import DataSplit, DataWindow

__all__ = [
    "OUTCOMES",
    "AnalyseInput",
    "AnalyseResult",
    "AnalystSuggestion",
    "AssessInput",
    "AssessResult",
    "Assessment",
    "AssessorVerdict",
    "BacktestGateThresholds",
    "BacktestInput",
    "BacktestMetrics",
    "BacktestResult",
    "BudgetScope",
    "CheckStatus",
    "CycleStatus",
    "DataSplit",
    "DataWindow",
    "DesignInput",
    "DesignResult",
    "EpochStats",
    "EvaluateStrategyInput",
    "EvaluateStrategyResult",
    "FinishSessionInput",
    "GateCheck",
    "GateResult",
    "HoldoutInput",
    "HoldoutResult",
    "IndicatorRef",
    "IterationSummary",
    "LookaheadProbe",
    "MlSpec",
    "Outcome",
    "ParamRange",
    "Phase",
    "RegisterStrategyInput",
    "RegisterStrategyResult",
    "ResearchCycleInput",
    "ResearchCycleResult",
    "SessionStarted",
    "StartSessionInput",
    "StatisticalGateThresholds",
    "StrategyKind",
    "StrategySpec",
    "ThresholdOp",
    "TrainInput",
    "TrainResult",
    "TrainingGateThresholds",
    "TrainingReport",
    "TrialLedger",
    "TrialSource",
    "TrialStats",
    "WalkForwardFold",
    "WalkForwardReport",
]
