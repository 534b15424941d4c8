"""The prompt optimizer's own data: synthetic sets research cycles refuse, whose right
answers are known."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from pydantic import ValidationError

from stratlab.market.datasets import BUNDLED_SYMBOLS, load_bundled
from stratlab.models.optimizer_slice import (
    NOISE_SEEDS,
    OPTIMIZER_SYMBOLS,
    OPTIMIZER_TRIGGER,
    PLANTED_SETS,
    research_refusal,
)
from stratlab.models.research import EvaluateStrategyInput, ResearchCycleInput, StrategySpec


def test_the_slice_is_the_synthetic_sets_and_none_of_the_real_ones() -> None:
    assert set(NOISE_SEEDS) | set(PLANTED_SETS) == OPTIMIZER_SYMBOLS
    assert {"sp500", "nasdaq"}.isdisjoint(OPTIMIZER_SYMBOLS)
    for symbol in OPTIMIZER_SYMBOLS:
        assert "not market data" in BUNDLED_SYMBOLS[symbol]
        frame = load_bundled(symbol)
        assert len(frame) == 5_000 and frame.index[0].year == 1999


@pytest.mark.parametrize("trigger", ["manual", "schedule", "cli", "demo", "user"])
@pytest.mark.parametrize("symbol", sorted(OPTIMIZER_SYMBOLS))
def test_research_cycles_refuse_the_optimizers_data(symbol: str, trigger: str) -> None:
    refusal = research_refusal(symbol, trigger)
    assert refusal and symbol in refusal and "prompt optimizer's own data" in refusal
    with pytest.raises(ValidationError, match="research cycles never choose on it"):
        ResearchCycleInput(symbol=symbol, trigger=trigger)


def test_regression_runs_and_other_symbols_are_let_through() -> None:
    for symbol in OPTIMIZER_SYMBOLS:
        assert ResearchCycleInput(symbol=symbol, trigger=OPTIMIZER_TRIGGER).symbol == symbol
    for symbol in ("sp500", "nasdaq", "my-import"):
        assert research_refusal(symbol, "manual") is None
        assert ResearchCycleInput(symbol=symbol).symbol == symbol


def test_a_user_evaluation_refuses_the_optimizers_data() -> None:
    spec = StrategySpec(name="s", symbol="sp500", entry="close > 0", exit="close < 0")
    assert EvaluateStrategyInput(spec=spec).spec == spec
    with pytest.raises(ValidationError, match="trend-a is the prompt optimizer's own data"):
        EvaluateStrategyInput(spec=spec, symbol="trend-a")
    own = spec.model_copy(update={"symbol": "noise-b"})
    with pytest.raises(ValidationError, match="noise-b is the prompt optimizer's own data"):
        EvaluateStrategyInput(spec=own)


@pytest.mark.parametrize(
    "argv",
    [["trigger", "--symbol", "trend-b"], ["evaluate", "{spec}", "--symbol", "noise-a"]],
    ids=["trigger", "evaluate"],
)
def test_the_cli_refuses_before_reaching_any_service(argv: list[str], tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(
        '{"name": "s", "symbol": "sp500", "kind": "rules", "entry": "close > 0", '
        '"exit": "close < 0"}'
    )
    # Nothing listens on these: a refusal that reached for them would fail differently.
    env = {
        **os.environ,
        "TEMPORAL_ADDRESS": "127.0.0.1:9",
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/none",
    }
    done = subprocess.run(
        [sys.executable, "-m", "stratlab.cli.main", *[a.format(spec=spec) for a in argv]],
        capture_output=True,
        text=True,
        env=env,
        timeout=60,
    )
    assert done.returncode == 1
    assert done.stderr.strip().splitlines() == [f"error: {research_refusal(argv[-1], 'cli')}"], (
        done.stderr
    )
