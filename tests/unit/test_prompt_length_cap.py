"""An offspring prompt longer than STRATLAB_PROMPT_MAX_CHARS is rejected before anything
is spent on it: no sanity call, no regression run."""

from __future__ import annotations

from typing import Any, cast

from stratlab.config import Settings
from stratlab.evolution.mutation import PromptMutator
from stratlab.llm.budgeted import BudgetedLlm
from stratlab.llm.prompts import DEFAULT_PROMPTS
from stratlab.models.optimization import CheckInput, ParentSpec, ProposedChild
from stratlab.store.db import Pool
from stratlab.store.prompts import PromptRepo


class NoCalls:
    """An LLM the check must not reach: the cap decides first."""

    async def ask(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the sanity role was asked about a prompt over the cap")


def test_the_default_cap_leaves_room_for_every_default_prompt() -> None:
    cap = Settings().prompt_max_chars
    longest = max(len(p.system) + len(p.content) for p in DEFAULT_PROMPTS.values())
    assert longest < cap / 1.5  # room to grow by half before the cap bites


async def test_a_prompt_over_the_cap_is_rejected_without_an_llm_call(db_pool: Pool) -> None:
    prompt = DEFAULT_PROMPTS["designer"]
    parent = ParentSpec(prompt_id="p", system=prompt.system, content=prompt.content)
    long = prompt.content.replace(
        "## Answer", "## Instructions\n" + "- Be careful.\n" * 300 + "\n## Answer"
    )
    child = ProposedChild(
        system=prompt.system, content=long, parent_ids=["p"], operator="llm_mutation"
    )
    cap = len(prompt.system) + len(prompt.content) + 1_000
    mutator = PromptMutator(
        cast(BudgetedLlm, NoCalls()), PromptRepo(db_pool), Settings(prompt_max_chars=cap)
    )
    inp = CheckInput(
        role="designer", generation=0, children=[child], parents=[parent], action_id="gen0"
    )
    [checked] = await mutator.check(inp)
    length = len(prompt.system) + len(long)
    assert not checked.accepted
    assert checked.reason == (
        f"too long: {length:,} characters; the cap is {cap:,} (STRATLAB_PROMPT_MAX_CHARS)"
    )
