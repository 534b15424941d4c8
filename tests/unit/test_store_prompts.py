"""The prompt registry: idempotent inserts, lineage, append-only tags, one prod per role."""

from __future__ import annotations

import asyncio

import pytest

from stratlab.store.db import Pool, prompt_content_hash
from stratlab.store.prompts import PromptRepo


async def test_insert_is_idempotent_on_role_and_text(db_pool: Pool) -> None:
    repo = PromptRepo(db_pool)
    first = await repo.insert(
        prompt_id="p1", role="coder", content="Mutate {{ prompt }}", system="sys",
        generation=0, metadata={"operator": "seed"}, tag="draft", actor="optimizer",
    )  # fmt: skip
    # The same text under a new id (a rediscovered mutation, or a retry) is the same prompt.
    again = await repo.insert(prompt_id="p2", role="coder", content="Mutate {{ prompt }}",
                              system="sys", tag="candidate")  # fmt: skip
    assert again.id == first.id == "p1"
    assert again.tag == "draft"  # the second insert created nothing, so tagged nothing
    assert first.content_hash == prompt_content_hash("sys", "Mutate {{ prompt }}")
    assert first.created_at is not None and first.generation == 0
    # Another role may hold the same text.
    other = await repo.insert(prompt_id="p3", role="composer", content="Mutate {{ prompt }}",
                              system="sys")  # fmt: skip
    assert other.id == "p3" and other.tag is None
    assert await repo.get("p2") is None


async def test_lineage_and_listing(db_pool: Pool) -> None:
    repo = PromptRepo(db_pool)
    await repo.insert(prompt_id="a", role="coder", content="A", tag="experimental", actor="o")
    await repo.insert(prompt_id="b", role="coder", content="B", tag="experimental", actor="o")
    child = await repo.insert(
        prompt_id="c", role="coder", content="A and B", parent_ids=["a", "b"], generation=1,
        tag="draft", actor="optimizer",
    )  # fmt: skip
    assert child.parent_ids == ["a", "b"] and child.generation == 1
    assert {p.id for p in await repo.list(role="coder", tag="experimental")} == {"a", "b"}
    assert [p.id for p in await repo.list(role="coder", tag="draft")] == ["c"]
    assert {p.id for p in await repo.list(role="coder")} == {"a", "b", "c"}


async def test_tags_append_events_and_keep_one_prod(db_pool: Pool) -> None:
    repo = PromptRepo(db_pool)
    old = await repo.insert(prompt_id="old", role="coder", content="v1")
    new = await repo.insert(prompt_id="new", role="coder", content="v2")
    await repo.tag(old.id, "prod", actor="seed")
    assert (await repo.current_prod("coder")).id == "old"

    await repo.tag(new.id, "candidate", actor="optimizer", reason="pareto-optimal, gen 3")
    event = await repo.tag(new.id, "prod", actor="alice", reason="approved in review")
    again = await repo.tag(new.id, "prod", actor="alice", reason="retried approval")
    assert again.event_id == event.event_id  # a retry appends nothing

    current = await repo.current_prod("coder")
    assert (current.id, current.content, current.tag) == ("new", "v2", "prod")
    assert [(e.tag, e.actor) for e in await repo.tags("new")] == [
        ("candidate", "optimizer"),
        ("prod", "alice"),
    ]
    [*_, archived] = await repo.tags("old")
    assert (archived.tag, archived.reason) == ("archived", "replaced as prod by new")
    assert [p.id for p in await repo.list(role="coder", tag="prod")] == ["new"]


async def test_concurrent_promotions_leave_one_prod(db_pool: Pool) -> None:
    repo = PromptRepo(db_pool)
    ids = [f"p{i}" for i in range(6)]
    for i, prompt_id in enumerate(ids):
        await repo.insert(prompt_id=prompt_id, role="coder", content=f"text {i}")
    await asyncio.gather(*(repo.tag(p, "prod", actor="race") for p in ids))
    assert len(await repo.list(role="coder", tag="prod")) == 1


async def test_unknown_prompts_and_roles(db_pool: Pool) -> None:
    repo = PromptRepo(db_pool)
    with pytest.raises(LookupError, match="no prompt 'ghost'"):
        await repo.tag("ghost", "prod", actor="alice")
    with pytest.raises(LookupError, match="no prod prompt for role 'coder'"):
        await repo.current_prod("coder")
    assert await repo.get("ghost") is None
    assert await repo.tags("ghost") == []
