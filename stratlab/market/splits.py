"""Time splits of a bar frame: train (fit), validation (select), test (held out).

Splits are contiguous, ordered and non-overlapping. Indicators need warm-up history, so
:meth:`Splits.through` gives everything from the first bar up to the end of a split:
compute on that, then keep the split's own rows, and no later bar is ever seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pandas as pd

from stratlab.models.research import DataSplit

SplitName = Literal["train", "validation", "test"]
SPLIT_NAMES: tuple[SplitName, ...] = ("train", "validation", "test")
MIN_SPLIT_BARS = 20


# eq=False: comparing or hashing a DataFrame field is ambiguous; identity is enough here.
@dataclass(frozen=True, eq=False)
class Splits:
    """A frame and the positions where validation and test begin."""

    frame: pd.DataFrame = field(repr=False)
    validation_start: int
    test_start: int

    def bounds(self, name: SplitName) -> tuple[int, int]:
        """``(start, end)`` positions of split ``name``, end exclusive."""
        edges = {
            "train": (0, self.validation_start),
            "validation": (self.validation_start, self.test_start),
            "test": (self.test_start, len(self.frame)),
        }
        if name not in edges:
            raise ValueError(f"unknown split {name!r}; splits: {', '.join(SPLIT_NAMES)}")
        return edges[name]

    def split(self, name: SplitName) -> pd.DataFrame:
        start, end = self.bounds(name)
        return self.frame.iloc[start:end]

    @property
    def train(self) -> pd.DataFrame:
        return self.split("train")

    @property
    def validation(self) -> pd.DataFrame:
        return self.split("validation")

    @property
    def test(self) -> pd.DataFrame:
        return self.split("test")

    def through(self, name: SplitName) -> pd.DataFrame:
        """History from the first bar up to and including the last bar of ``name``."""
        return self.frame.iloc[: self.bounds(name)[1]]

    def describe(self) -> list[DataSplit]:
        """The three splits as DTOs (first and last timestamp, bar count)."""
        out = []
        for name in SPLIT_NAMES:
            part = self.split(name)
            out.append(
                DataSplit(
                    name=name,
                    start=pd.Timestamp(part.index[0]).to_pydatetime(),
                    end=pd.Timestamp(part.index[-1]).to_pydatetime(),
                    bars=len(part),
                )
            )
        return out


def split_by_time(frame: pd.DataFrame, *, train: float = 0.6, validation: float = 0.2) -> Splits:
    """Split ``frame`` (sorted by time) by fractions; the test split gets the rest."""
    if not 0 < train < 1:
        raise ValueError(f"train fraction must be between 0 and 1, got {train}")
    if not 0 <= validation < 1:
        raise ValueError(f"validation fraction must be between 0 and 1, got {validation}")
    if train + validation >= 1:
        raise ValueError(
            f"train + validation = {train + validation:g} leaves nothing for the test split"
        )
    if not frame.index.is_monotonic_increasing:
        raise ValueError("frame must be sorted by time before splitting")
    n = len(frame)
    validation_start = round(n * train)
    test_start = round(n * (train + validation))
    sizes = {
        "train": validation_start,
        "validation": test_start - validation_start,
        "test": n - test_start,
    }
    for name, size in sizes.items():
        if size < MIN_SPLIT_BARS:
            raise ValueError(
                f"the {name} split would have {size} bars (of {n}); "
                f"each split needs at least {MIN_SPLIT_BARS}"
            )
    return Splits(frame=frame, validation_start=validation_start, test_start=test_start)
