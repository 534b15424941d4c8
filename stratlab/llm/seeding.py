"""The lab's database made ready: ``schema.sql`` applied and the default prompts seeded.

Every entry point that opens the database (``stratlab setup``, ``db init``, ``dev``,
``demo``, a worker, the CLI's read commands, the perf scripts and the test fixtures) calls
``prepare_database``: the store applies the schema and seeds the prompts it is handed,
and this is where the LLM layer's defaults are handed to it.
"""

from __future__ import annotations

from stratlab.llm.prompts import DEFAULT_PROMPTS
from stratlab.store.db import Conn, ConnectionSource, apply_schema


async def prepare_database(target: ConnectionSource | Conn) -> None:
    """Apply ``schema.sql`` (a no-op when the database records its digest) and seed each
    role's ``DEFAULT_PROMPTS`` entry, tagged ``prod`` when the role has no prod prompt yet."""
    await apply_schema(target, prompts=DEFAULT_PROMPTS.values())
