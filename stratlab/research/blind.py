"""Blind mode: what the designer may not learn about the market it designs for.

A model that remembers market history could trade a known crash or rally by its date,
or recognise the market from its name or its price level. Under ``blind`` the designer
sees ``ASSET`` for the symbol, bar numbers and relative years (``bar 0``, ``year 1``)
for dates, and no absolute price level. The lab itself keeps the real symbol and dates:
only the text shown to the designer changes.

``Blinder`` hides one data set's identity in free text (feedback, skills, rationales,
names); ``blind_train_summary`` is the designer's data summary without dates or levels.
Scrubbing free text is best effort: it knows the bundled markets' common names, dates
in ISO form, four-digit years, a list of named market events, and the window's price and
volume bands (a number inside one, unless its context says it is a count, a lookback or
a year, is a level).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cached_property

import numpy as np
import pandas as pd

from stratlab.market.character import describe_persistence
from stratlab.market.splits import Splits

ANONYMOUS_SYMBOL = "ASSET"
PRICE_PLACEHOLDER = "[price level]"
VOLUME_PLACEHOLDER = "[volume level]"
EVENT_PLACEHOLDER = "[market event]"
MIN_HIDDEN_PRICE = 100.0
"""Numbers below this are never taken for price levels: they collide with lookbacks and
oscillator thresholds (20, 50, 70) and identify little on their own."""
MIN_HIDDEN_VOLUME = 10_000.0

# Common names of the bundled markets, as regexes matched case-insensitively as words.
MARKET_NAMES: dict[str, tuple[str, ...]] = {
    "sp500": (
        r"s\s*&\s*p(?:\s*-?\s*500)?",
        r"sp\s*-?\s*500",
        r"standard\s*(?:&|and)\s*poor'?s(?:\s*500)?",
        r"\^?gspc",
        r"spx",
        r"spy",
    ),
    "nasdaq": (
        r"nasdaq(?:\s*-?\s*(?:composite|100))?",
        r"\^?ixic",
        r"ndx",
        r"qqq",
    ),
}
# Named episodes that date a move as well as a year does.
MARKET_EVENTS = (
    r"(?:global\s+)?financial\s+crisis",
    r"gfc",
    r"credit\s+crunch",
    r"subprime(?:\s+crisis)?",
    r"lehman(?:\s+brothers)?(?:\s+collapse)?",
    r"dot[\s-]?com(?:\s+(?:bubble|crash|bust))?",
    r"tech(?:nology)?\s+bubble",
    r"9/11",
    r"black\s+monday",
    r"flash\s+crash",
    r"taper\s+tantrum",
    r"brexit",
    r"covid(?:-19)?",
    r"(?:corona(?:virus)?\s+)?pandemic",
    r"euro(?:zone)?\s+(?:debt\s+)?crisis",
    r"great\s+recession",
    r"volmageddon",
)
# Parts of an imported symbol that name no market ("btc-daily": hide btc, keep daily).
_GENERIC_PARTS = frozenset(
    "daily weekly hourly minute minutes intraday bars data index close open high low "  # noqa: SIM905
    "volume price prices usd eur test train sample adj adjusted".split()
)
_WORD = r"(?<![A-Za-z0-9]){}(?![A-Za-z0-9])"
_ISO = re.compile(
    r"(?<!\d)((?:19|20)\d\d)-(\d\d)(?:-(\d\d)(?:[T ]\d\d:\d\d(?::\d\d(?:\.\d+)?)?"
    r"(?:Z|[+-]\d\d:?\d\d)?)?)?(?!\d)"
)
_SLASHED = re.compile(
    r"(?<!\d)((?:19|20)\d\d)/(\d\d?)/(\d\d?)(?!\d)|(?<!\d)\d\d?/\d\d?/((?:19|20)\d\d)(?!\d)"
)
_COUNT_UNITS = (
    r"(?:bars?|trades?|combinations?|days?|rows?|epochs?|points?|tokens?|values?|times?)\b"
)
# A number: optional sign, thousands separators, decimals; not part of a word or a date.
_NUMBER = re.compile(
    r"(?<![\w.,/])(-?(?:\d{1,3}(?:,\d{3})+|\d+)(?:\.\d+)?(?:e[-+]?\d+)?)(?![\w%]|[.,/]\d|\s*%)"
    rf"(?!\s*{_COUNT_UNITS})",
    re.IGNORECASE,
)
_LEVEL_CUE = re.compile(
    r"(?:[<>=]=?|above|below|under|over|about|around|near|threshold|level)\s*$",
    re.IGNORECASE,
)
# Numbers that are not levels: bar numbers and years written here, and lookbacks.
_NOT_LEVEL_CUE = re.compile(
    r"(?:bar|year|window|lookback|period|span|horizon|length|epochs?)s?\s*[=:]?\s*$",
    re.IGNORECASE,
)
_COUNT = re.compile(rf"(?<![\w.,/])(\d{{4,}})(?=\s*{_COUNT_UNITS})")
_YEAR = re.compile(rf"(?<![\w.,/])((?:19|20)\d\d)(?![\w]|[.,/]\d)(?!\s*{_COUNT_UNITS})")
_EVENTS = re.compile("|".join(_WORD.format(e) for e in MARKET_EVENTS), re.IGNORECASE)


@dataclass(frozen=True, eq=False)
class Blinder:
    """Hides one data set's symbol, dates and price levels in text shown to the designer.

    ``index`` is the cycle's bars (their first is ``bar 0``, its calendar year ``year
    1``); ``price_low`` and ``price_high`` bound the prices the window ever showed, and
    ``volume_low`` and ``volume_high`` its non-zero volumes (NaN: none to hide).
    """

    symbol: str
    index: pd.DatetimeIndex
    price_low: float
    price_high: float
    volume_low: float = float("nan")
    volume_high: float = float("nan")

    @classmethod
    def for_frame(cls, symbol: str, frame: pd.DataFrame) -> Blinder:
        volume = frame["volume"].to_numpy(dtype=float) if "volume" in frame else np.array([])
        volume = volume[np.isfinite(volume) & (volume > 0)]
        return cls(
            symbol=symbol,
            index=pd.DatetimeIndex(frame.index),
            price_low=float(np.nanmin(frame["low"].to_numpy())),
            price_high=float(np.nanmax(frame["high"].to_numpy())),
            volume_low=float(volume.min()) if len(volume) else float("nan"),
            volume_high=float(volume.max()) if len(volume) else float("nan"),
        )

    @classmethod
    def for_splits(cls, symbol: str, splits: Splits) -> Blinder:
        return cls.for_frame(symbol, splits.frame)

    def text(self, text: str) -> str:
        """Free text with no name, date, year, named event or price level of the market."""
        text = _grouped_counts(self.names(text))
        text = self._dates(text)
        text = self._prices(text)
        return self._years(text)

    def prompt(self, text: str) -> str:
        """A whole rendered prompt: names, dates, years and events, never price levels
        (the template's own numbers, such as grid sizes, would be taken for them)."""
        return self._years(self._dates(_grouped_counts(self.names(text))))

    def names(self, text: str) -> str:
        text = self._name_pattern.sub(ANONYMOUS_SYMBOL, text)
        return _EVENTS.sub(EVENT_PLACEHOLDER, text)

    def name(self, name: str) -> str:
        """A kebab-case strategy name with the market's name and dates hidden."""
        hidden = self._dates(_grouped_counts(self.names(name)))
        hidden = self._years(re.sub(r"[-_]+", " ", hidden))
        slug = re.sub(r"[^a-z0-9]+", "-", hidden.lower()).strip("-")
        return slug or "strategy"

    def bar_of(self, stamp: pd.Timestamp) -> int:
        """The position of the first bar at or after ``stamp``."""
        return int(self.index.searchsorted(stamp, side="left"))

    def year_of(self, year: int) -> int:
        """A calendar year as a year of the data: the first bar's year is year 1."""
        return year - self.index[0].year + 1

    @cached_property
    def _name_pattern(self) -> re.Pattern[str]:
        words = [re.escape(self.symbol)]
        words += [
            re.escape(part)
            for part in re.split(r"[-_.\s/]+", self.symbol)
            if len(part) >= 3 and part.lower() not in _GENERIC_PARTS and part != self.symbol
        ]
        words += list(MARKET_NAMES.get(self.symbol.lower(), ()))
        words.sort(key=len, reverse=True)  # the longest spelling first: "S&P 500" before "S&P"
        return re.compile("|".join(_WORD.format(w) for w in words), re.IGNORECASE)

    def _dates(self, text: str) -> str:
        text = _ISO.sub(self._iso_date, text)
        return _SLASHED.sub(self._slashed_date, text)

    def _iso_date(self, match: re.Match[str]) -> str:
        year, month, day = match.group(1), match.group(2), match.group(3)
        if day is None:  # 2008-10: a month
            return f"year {self.year_of(int(year))}" if 1 <= int(month) <= 12 else match.group(0)
        try:
            stamp = pd.Timestamp(int(year), int(month), int(day))
        except ValueError:
            return match.group(0)
        return self._when(stamp)

    def _slashed_date(self, match: re.Match[str]) -> str:
        year = match.group(1) or match.group(4)
        return f"year {self.year_of(int(year))}"

    def _when(self, stamp: pd.Timestamp) -> str:
        if len(self.index) and self.index[0] <= stamp <= self.index[-1] + pd.Timedelta(days=1):
            return f"bar {self.bar_of(stamp):,}"
        return f"year {self.year_of(stamp.year)}"

    def _prices(self, text: str) -> str:
        low = max(self.price_low * 0.8, MIN_HIDDEN_PRICE)
        high = self.price_high * 1.25
        # volume NaN: the comparisons below are False, nothing is taken for a volume
        volume_low = max(self.volume_low * 0.5, MIN_HIDDEN_VOLUME)
        volume_high = self.volume_high * 2.0

        def hide(match: re.Match[str]) -> str:
            before = text[max(0, match.start() - 12) : match.start()]
            if _NOT_LEVEL_CUE.search(before):
                return match.group(0)
            value = abs(float(match.group(1).replace(",", "")))
            if low <= value <= high:
                if _is_year(match.group(1)) and not _LEVEL_CUE.search(before):
                    return match.group(0)  # a year, not a level: _years makes it relative
                return PRICE_PLACEHOLDER
            if volume_low <= value <= volume_high:
                return VOLUME_PLACEHOLDER
            return match.group(0)

        return _NUMBER.sub(hide, text)

    def _years(self, text: str) -> str:
        return _YEAR.sub(lambda m: f"year {self.year_of(int(m.group(1)))}", text)


def blind_train_summary(splits: Splits) -> str:
    """The designer's data summary under blind: the train split's length and the shape of
    its returns, rounded, with no date or price level, and what blind mode asks of it."""
    train = splits.train
    close = train["close"].to_numpy()
    daily = np.diff(np.log(close))
    years = max(len(train) / 252.0, 1e-9)
    last_year = pd.Timestamp(train.index[-1]).year - pd.Timestamp(train.index[0]).year + 1
    return (
        f"{len(train):,} daily bars, bar 0 to bar {len(train) - 1:,} (year 1 to year "
        f"{last_year}); annualised return about {(close[-1] / close[0]) ** (1 / years) - 1:.0%}, "
        f"annualised volatility about {daily.std() * np.sqrt(252):.0%}, worst day about "
        f"{daily.min():.0%}, best day about {daily.max():.0%}. "
        f"{describe_persistence(close)} "
        "Parameters are chosen on a later validation split; a final test split is held out.\n"
        f"Blind mode: the market's name, its calendar dates and its price level are hidden "
        f"(it is called {ANONYMOUS_SYMBOL}, dates are bar numbers and years of the data). "
        "Base every condition on relative quantities such as returns, ratios of price to its "
        "averages, oscillators and z-scores; never on an absolute price level, a calendar "
        "date or the date index."
    )


def _grouped_counts(text: str) -> str:
    """'2016 bars' as '2,016 bars': a count is never read as a year or a level."""
    return _COUNT.sub(lambda m: f"{int(m.group(1)):,}", text)


def _is_year(number: str) -> bool:
    return bool(re.fullmatch(r"(?:19|20)\d\d", number))
