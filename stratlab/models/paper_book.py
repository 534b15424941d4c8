"""The state of a paper strategy's book, as the store keeps it (one jsonb row per strategy).

Data only: ``stratlab.trading.paper.PaperBook`` is this state plus the accounting that
changes it, so the store can save and load a book without depending on trading. Fields
added later get defaults, so stored books keep loading.
"""

from __future__ import annotations

from pydantic import BaseModel, Field

from stratlab.models.trading import Fill, UtcDatetime


class BookPosition(BaseModel):
    quantity: float = 0.0
    avg_price: float = 0.0
    entry_ts: UtcDatetime | None = None


class PaperBookState(BaseModel):
    """Cash, positions and fills of one paper strategy."""

    strategy_id: str | None = None
    initial_cash: float = 100_000.0
    cash: float = 100_000.0
    positions: dict[str, BookPosition] = Field(default_factory=dict)
    realized_pnl: float = Field(0.0, description="net of all fees")
    fees_paid: float = 0.0
    slippage_paid: float = 0.0
    fills: dict[str, Fill] = Field(default_factory=dict, description="by instruction_id")
    last_prices: dict[str, float] = Field(default_factory=dict)
    peak_value: float | None = Field(None, description="high-water mark of total value")
    halted: bool = False
    benchmark_base: dict[str, float] = Field(
        default_factory=dict, description="closes at the first bar: the buy-and-hold base"
    )

    def position(self, symbol: str) -> float:
        """The signed quantity held of ``symbol``; 0 when flat."""
        pos = self.positions.get(symbol)
        return pos.quantity if pos else 0.0
