"""Small conversions shared by the repositories."""

from __future__ import annotations

from collections.abc import Mapping
from decimal import Decimal
from typing import TYPE_CHECKING, Any, TypeVar

from psycopg.types.json import Jsonb
from pydantic import BaseModel

if TYPE_CHECKING:
    from stratlab.store.db import ConnectionSource

M = TypeVar("M", bound=BaseModel)


def to_decimal(amount: float | Decimal | int) -> Decimal:
    """Money as an exact decimal. A float goes through its shortest repr, so ``0.03``
    becomes ``Decimal("0.03")``, not ``0.0299999999999999988897769753748...``."""
    if isinstance(amount, Decimal):
        return amount
    return Decimal(repr(amount)) if isinstance(amount, float) else Decimal(amount)


def jsonb(value: BaseModel | Mapping[str, Any] | None) -> Jsonb | None:
    """A model or mapping as a jsonb parameter (models in their JSON form: datetimes as
    ISO strings), ``None`` as SQL NULL."""
    if value is None:
        return None
    if isinstance(value, BaseModel):
        return Jsonb(value.model_dump(mode="json"))
    return Jsonb(dict(value))


async def fetch_one(
    pool: ConnectionSource, sql: str, params: Mapping[str, Any], model: type[M]
) -> M | None:
    """The first row of a query as ``model``, or ``None``."""
    async with pool.connection() as conn:
        row = await (await conn.execute(sql, params)).fetchone()
    return None if row is None else model.model_validate(row)


async def fetch_all(
    pool: ConnectionSource, sql: str, params: Mapping[str, Any], model: type[M]
) -> list[M]:
    """Every row of a query as ``model``."""
    async with pool.connection() as conn:
        rows = await (await conn.execute(sql, params)).fetchall()
    return [model.model_validate(r) for r in rows]
