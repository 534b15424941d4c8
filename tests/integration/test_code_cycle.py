"""Code strategies end to end: LLM-written code, validated, run in the sandbox, refined from
its errors, and the winners kept as skills that later designs see."""

from __future__ import annotations

import shutil
from typing import Any

import pytest

from stratlab.store.prompts import PromptRepo
from tests.integration.test_research_cycle import (
    OPEN_BACKTEST_GATE,
    OPEN_TRAINING_GATE,
    rows,
    save_history,
)

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
