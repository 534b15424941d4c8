"""The optimizer's LLM activities under provider faults, in Temporal's ActivityEnvironment
with the real Anthropic SDK against the local fake: a transient fault is retried after the
provider's retry-after, a rejected request is final, and an answer that stopped early
costs the generation its LLM children (or the child its sanity check), not the run."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from temporalio.exceptions import ApplicationError
from temporalio.testing import ActivityEnvironment

from activities.evolution import EvolutionLlmActivities
from stratlab.config import Settings
from stratlab.evolution.mutation import PromptMutator
from stratlab.llm.anthropic_provider import AnthropicProvider
from stratlab.llm.budgeted import BudgetedLlm
from stratlab.models.optimization import CheckInput, MutateInput, ParentSpec, ProposedChild
from stratlab.store.actions import ActionRepo
from stratlab.store.budget import BudgetRepo
from stratlab.store.db import Pool
from stratlab.store.prompts import PromptRepo
from tests.fixtures.fake_llm_server import FakeLlmServer, FakeReply, offline_responder


@pytest.fixture
def server() -> Iterator[FakeLlmServer]:
    with FakeLlmServer(responder=offline_responder()) as fake:
        yield fake


@pytest.fixture
def activities(server: FakeLlmServer, db_pool: Pool) -> EvolutionLlmActivities:
    settings = Settings(
        llm_provider="anthropic",
        anthropic_api_key="sk-ant-test",
        anthropic_base_url=server.anthropic_base_url,
        llm_timeout_seconds=5,
    )
    llm = BudgetedLlm(
        AnthropicProvider(settings), BudgetRepo(db_pool), ActionRepo(db_pool), settings
    )
    return EvolutionLlmActivities(PromptMutator(llm, PromptRepo(db_pool), settings))


async def _parent(db_pool: Pool) -> ParentSpec:
    prompt = await PromptRepo(db_pool).current_prod("designer")
    return ParentSpec(prompt_id=prompt.id, system=prompt.system, content=prompt.content)


async def _mutate(activities: EvolutionLlmActivities, db_pool: Pool) -> list[ProposedChild]:
    inp = MutateInput(
        role="designer",
        generation=0,
        parent=await _parent(db_pool),
        failure_summary="3 of 10 benchmark tasks failed: max_drawdown too high",
        count=2,
        action_id="gen0",
    )
    return await ActivityEnvironment().run(activities.mutate_prompt, inp)


async def test_a_rate_limited_mutation_is_retried_after_the_servers_hint(
    activities: EvolutionLlmActivities, server: FakeLlmServer, db_pool: Pool
) -> None:
    server.script(FakeReply(status=429, headers={"retry-after": "4"}), role="mutator")
    with pytest.raises(ApplicationError) as caught:
        await _mutate(activities, db_pool)
    assert (caught.value.type, caught.value.non_retryable) == ("LlmTransientError", False)
    assert caught.value.next_retry_delay == timedelta(seconds=4)
    assert len(server.calls("mutator")) == 1


async def test_a_rejected_mutation_request_is_final(
    activities: EvolutionLlmActivities, server: FakeLlmServer, db_pool: Pool
) -> None:
    server.script(FakeReply(status=401), role="mutator")
    with pytest.raises(ApplicationError) as caught:
        await _mutate(activities, db_pool)
    assert (caught.value.type, caught.value.non_retryable) == ("LlmRequestError", True)
    assert "401" in caught.value.message


async def test_a_truncated_mutation_breeds_no_llm_children(
    activities: EvolutionLlmActivities, server: FakeLlmServer, db_pool: Pool
) -> None:
    assert await _mutate(activities, db_pool)  # the responder's answer breeds children
    server.script(FakeReply(content="{", stop_reason="max_tokens"), role="mutator")
    assert await _mutate(activities, db_pool) == []
    assert len(server.calls("mutator")) == 2  # one each: a truncated answer is not repaired


async def test_a_refused_sanity_check_rejects_the_child(
    activities: EvolutionLlmActivities, server: FakeLlmServer, db_pool: Pool
) -> None:
    parent = await _parent(db_pool)
    child = ProposedChild(
        system=parent.system,
        content=parent.content.replace("## Answer", "## Instructions\n- Be concise.\n\n## Answer"),
        parent_ids=[parent.prompt_id],
        operator="llm_mutation",
    )
    server.script(FakeReply(refusal="No."), role="sanity")
    inp = CheckInput(
        role="designer", generation=0, children=[child], parents=[parent], action_id="gen0"
    )
    [checked] = await ActivityEnvironment().run(activities.check_offspring, inp)
    assert not checked.accepted
    assert checked.reason == "sanity check gave no usable answer: sanity refused to answer: No."
    assert len(server.calls("sanity")) == 1
