"""What the paper cycle's services share: their errors and the reads their steps build on.

The steps run in three pools (``bars``: compute, ``composer``: llm, ``execution``:
orchestrator) and only meet in Postgres: a step reads the records the earlier steps of its
cycle wrote, and the strategy row for every limit (never a record).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from stratlab.models.paper import PaperTradingInput
from stratlab.models.records import SkillRecord
from stratlab.models.trading import FeatureVector, PortfolioView, TradeDigest
from stratlab.store.skills import SkillRepo
from stratlab.store.trading import PaperRepo, PaperStrategyRecord
from stratlab.trading.digest import build_digest
from stratlab.trading.history import FeaturesPayload
from stratlab.trading.paper import PaperBook


class PaperSetupError(ValueError):
    """The strategy cannot start: unknown symbol or prompt, no data, a taken id."""


class PaperStateError(RuntimeError):
    """A step ran before the one it depends on recorded its result (a bug, or a lost row)."""


@dataclass(frozen=True)
class DecisionInputs:
    """What the composer and the guardrails decide on: the decision bar's ts and closes,
    the book marked at them, the feature vectors and the digest of the trades exited by
    then."""

    bar_ts: datetime
    closes: dict[str, float]
    view: PortfolioView
    features: list[FeatureVector]
    digest: TradeDigest


async def strategy(
    repo: PaperRepo, strategy_id: str
) -> tuple[PaperStrategyRecord, PaperTradingInput]:
    """The strategy's row and the run options stored with it."""
    row = await repo.get_strategy(strategy_id)
    if row is None:
        raise PaperStateError(f"no paper strategy {strategy_id!r}")
    return row, PaperTradingInput.model_validate(row.config)


async def rules_skill(skills: SkillRepo, skill_id: str) -> SkillRecord:
    """The skill a strategy follows; only rules skills give a signal bar by bar."""
    skill = await skills.get(skill_id)
    if skill is None:
        raise PaperSetupError(f"no skill {skill_id!r}")
    if skill.spec.kind != "rules":
        raise PaperSetupError(
            f"skill {skill_id} is a {skill.spec.kind} strategy: paper trading follows "
            "rules skills, whose signal it can compute bar by bar"
        )
    return skill


async def book(repo: PaperRepo, strategy_id: str) -> tuple[int, PaperBook]:
    """The last stored cycle and the book as of it."""
    stored = await repo.load_book(strategy_id)
    if stored is None:
        raise PaperStateError(f"paper strategy {strategy_id} has no book")
    cycle, state = stored
    return cycle, PaperBook.from_state(state)


async def features(
    repo: PaperRepo, strategy_id: str, compose_id: str
) -> tuple[datetime, FeaturesPayload]:
    """The decision bar's ts and the ``features`` record of the cycle ``compose_id``."""
    found = await repo.record(strategy_id, "features", compose_id)
    if found is None:
        raise PaperStateError(f"{compose_id}: the features record is missing")
    return found.ts, FeaturesPayload.model_validate(found.payload)


async def decision_inputs(repo: PaperRepo, strategy_id: str, compose_id: str) -> DecisionInputs:
    bar_ts, recorded = await features(repo, strategy_id, compose_id)
    _, marked = await book(repo, strategy_id)
    closes = recorded.closes()
    executions = await repo.history(strategy_id, kinds=["execution"])
    return DecisionInputs(
        bar_ts=bar_ts,
        closes=closes,
        view=marked.mark(closes, ts=bar_ts),
        features=recorded.features,
        digest=build_digest(executions, bar_ts),
    )
