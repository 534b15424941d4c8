"""The LLM response cache (``llm_cache``): complete answers by the hash of their request.

The key is made by ``stratlab.llm.cache.cache_key``; the first answer stored under a key
wins, so two identical calls racing each other leave one row.
"""

from __future__ import annotations

from stratlab.models.llm import LlmResponse
from stratlab.store._util import jsonb
from stratlab.store.db import ConnectionSource

_GET = "SELECT response FROM llm_cache WHERE cache_key = %(cache_key)s"
_PUT = """
INSERT INTO llm_cache (cache_key, provider, model, role, response)
VALUES (%(cache_key)s, %(provider)s, %(model)s, %(role)s, %(response)s)
ON CONFLICT (cache_key) DO NOTHING
"""


class LlmCacheRepo:
    """Reads and writes cached answers; satisfies ``stratlab.llm.cache.ResponseStore``."""

    def __init__(self, pool: ConnectionSource) -> None:
        self._pool = pool

    async def get(self, cache_key: str) -> LlmResponse | None:
        async with self._pool.connection() as conn:
            row = await (await conn.execute(_GET, {"cache_key": cache_key})).fetchone()
        return None if row is None else LlmResponse.model_validate(row["response"])

    async def put(self, cache_key: str, role: str, response: LlmResponse) -> None:
        params = {
            "cache_key": cache_key,
            "provider": response.provider,
            "model": response.model,
            "role": role,
            "response": jsonb(response),
        }
        async with self._pool.connection() as conn:
            await conn.execute(_PUT, params)
