"""Which bars a cycle works on: the window a task names and the splits it is cut into."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict


class DataWindow(BaseModel):
    """Restricts a cycle to the bars between ``start`` and ``end`` (inclusive) before the
    train/validation/test split: how a benchmark task names its market period."""

    model_config = ConfigDict(frozen=True)

    start: date | None = None
    end: date | None = None

    def describe(self) -> str:
        return f"{self.start or 'first bar'} to {self.end or 'last bar'}"


class DataSplit(BaseModel):
    name: Literal["train", "validation", "test"]
    start: datetime
    end: datetime
    bars: int
