"""The llm_cache table through its repository: round trip, first write wins."""

from __future__ import annotations

from stratlab.models.llm import LlmResponse
from stratlab.store.db import Pool
from stratlab.store.llm_cache import LlmCacheRepo

ANSWER = LlmResponse(
    text='{"name": "sma cross"}',
    provider="openai",
    model="gpt-4o-mini",
    input_tokens=120,
    output_tokens=40,
    latency_ms=812.5,
    tokens_estimated=False,
)


async def test_an_answer_round_trips_and_the_first_write_wins(db_pool: Pool) -> None:
    repo = LlmCacheRepo(db_pool)
    assert await repo.get("k1") is None
    await repo.put("k1", "designer", ANSWER)
    await repo.put("k1", "designer", ANSWER.model_copy(update={"text": "later"}))
    assert await repo.get("k1") == ANSWER
    async with db_pool.connection() as conn:
        rows = await (await conn.execute("SELECT * FROM llm_cache")).fetchall()
    assert [(r["cache_key"], r["provider"], r["model"], r["role"]) for r in rows] == [
        ("k1", "openai", "gpt-4o-mini", "designer")
    ]
