"""Code strategies end to end: LLM-written code, validated, run in the sandbox, refined from
its errors, and the winners kept as skills that later designs see."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from stratlab.llm.budgeted import BudgetedLlm
from stratlab.llm.factory import build_provider
from stratlab.models.research import DesignInput
from stratlab.research.designer import Designer
from stratlab.store.actions import ActionRepo
from stratlab.store.budget import BudgetRepo
from stratlab.store.market import MarketRepo
from stratlab.store.prompts import PromptRepo
from stratlab.store.research import ResearchRepo
from stratlab.store.sessions import SessionRepo
from stratlab.store.skills import SkillRepo
from tests.fixtures.gates import OPEN_BACKTEST_GATE, OPEN_STATISTICAL_GATE, OPEN_TRAINING_GATE
from tests.fixtures.temporal import rows, save_history

pytestmark = pytest.mark.skipif(
    shutil.which("bwrap") is None, reason="bubblewrap is not installed (apt-get install bubblewrap)"
)


async def use_designer_directive(lab: Any, directive: str) -> None:
    repo = PromptRepo(lab.db)
    prod = await repo.current_prod("designer")
    created = await repo.insert(
        prompt_id=f"00000000-0000-4000-8000-{abs(hash(directive)) % 10**12:012d}",
        role="designer",
        version="1.0.1-test",
        system=prod.system,
        content=f"{prod.content}\nDirective: {directive}.\n",
        parent_ids=[prod.id],
    )
    await repo.tag(created.id, "prod", actor="test", reason=directive)


async def test_code_strategy_runs_in_the_sandbox(lab: Any) -> None:
    handle = await lab.start_cycle(
        symbol="sp500",
        kind="code",
        max_iterations=1,
        training_gate=OPEN_TRAINING_GATE,
        backtest_gate=OPEN_BACKTEST_GATE,
        statistical_gate=OPEN_STATISTICAL_GATE,
    )
    result = await handle.result()
    await save_history(handle, "research_success_code")
    assert result.outcome == "success", result
    (strategy,) = await rows(
        lab, "SELECT spec FROM strategies WHERE session_id = %(s)s", s=result.session_id
    )
    assert strategy["spec"]["kind"] == "code" and "def signals" in strategy["spec"]["code"]
    skills = await rows(lab, "SELECT * FROM skills WHERE session_id = %(s)s", s=result.session_id)
    assert len(skills) == 1 and skills[0]["kind"] == "code"


async def test_broken_code_is_repaired_from_its_error(lab: Any) -> None:
    await use_designer_directive(lab, "write code with a bug")
    handle = await lab.start_cycle(
        symbol="nasdaq",
        kind="code",
        max_iterations=3,
        training_gate=OPEN_TRAINING_GATE,
        backtest_gate=OPEN_BACKTEST_GATE,
        statistical_gate=OPEN_STATISTICAL_GATE,
    )
    result = await handle.result()
    await save_history(handle, "research_code_repaired")
    first, second = result.iterations[0], result.iterations[1]
    assert first.outcome == "failed_training"
    assert first.error is not None and "NameError" in first.error
    assert second.outcome == "success", second
    assert result.outcome == "success"
    analysed = await rows(
        lab,
        "SELECT detail FROM session_phases WHERE session_id = %(s)s AND phase = 'analyse'",
        s=result.session_id,
    )
    assert analysed  # the analyst ran before the repair and its findings are recorded
    (design2,) = await rows(
        lab,
        "SELECT detail FROM session_phases WHERE session_id = %(s)s AND phase = 'design' "
        "AND iteration = 2",
        s=result.session_id,
    )
    assert "NameError" in design2["detail"]["feedback"]  # the error was the feedback


async def test_a_later_design_sees_the_skill(lab: Any) -> None:
    result = await lab.run_cycle(
        symbol="sp500",
        kind="code",
        max_iterations=1,
        training_gate=OPEN_TRAINING_GATE,
        backtest_gate=OPEN_BACKTEST_GATE,
        statistical_gate=OPEN_STATISTICAL_GATE,
    )
    assert result.outcome == "success"
    (skill,) = await rows(
        lab, "SELECT name FROM skills WHERE session_id = %(s)s", s=result.session_id
    )
    db, settings = lab.db, lab.settings
    designer = Designer(
        BudgetedLlm(build_provider(settings), BudgetRepo(db), ActionRepo(db), settings),
        PromptRepo(db),
        SessionRepo(db),
        ResearchRepo(db),
        MarketRepo(db),
        settings,
        SkillRepo(db),
    )
    context = await designer._context(  # the context the next design's prompt is built from
        DesignInput(
            session_id="next",
            iteration=1,
            symbol="sp500",
            kind="code",
            prompt_id="unused",
            strategy_id="unused",
        )
    )
    assert skill["name"] in context.skills
