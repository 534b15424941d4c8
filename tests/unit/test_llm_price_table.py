"""STRATLAB_PRICES: a TOML price table that adds to or overrides the built-in prices."""

from __future__ import annotations

from pathlib import Path

import pytest

from stratlab.config import Settings
from stratlab.llm.factory import build_provider
from stratlab.llm.pricing import (
    DEFAULT_PRICE,
    PRICES,
    ModelPrice,
    PriceTableError,
    cost_usd,
    load_price_table,
    price_for,
)

TABLE = """
# local models cost nothing; a negotiated rate for gpt-4o
[models."llama3.1:8b"]
input = 0
output = 0

[models.gpt-4o]
input = 1.25
output = 5.5
"""


def table_at(tmp_path: Path, text: str) -> Settings:
    path = tmp_path / "prices.toml"
    path.write_text(text)
    return Settings(price_table=path)


def test_rows_add_to_and_override_the_built_in_prices(tmp_path: Path) -> None:
    settings = table_at(tmp_path, TABLE)
    assert price_for("llama3.1:8b", settings=settings) == ModelPrice(0.0, 0.0)
    assert price_for("llama3.1:8b-instruct-q4", settings=settings) == ModelPrice(0.0, 0.0)
    assert price_for("gpt-4o", settings=settings) == ModelPrice(1.25, 5.5)
    assert price_for("gpt-4o-2024-08-06", settings=settings) == ModelPrice(1.25, 5.5)
    # Rows it does not name keep the built-in price, unknown models the default.
    assert price_for("gpt-4o-mini", settings=settings) == PRICES["gpt-4o-mini"]
    assert price_for("mistral:7b", settings=settings) == DEFAULT_PRICE
    assert cost_usd("llama3.1:8b", 10_000, 5_000, settings=settings) == 0.0
    # Without the table the built-in price applies.
    assert price_for("gpt-4o", settings=Settings()) == PRICES["gpt-4o"]
    assert price_for("llama3.1:8b", settings=Settings()) == DEFAULT_PRICE


def test_the_file_is_read_once_per_path(tmp_path: Path) -> None:
    settings = table_at(tmp_path, TABLE)
    assert price_for("llama3.1:8b", settings=settings).input_usd_per_mtok == 0.0
    assert settings.price_table is not None
    settings.price_table.unlink()
    assert price_for("llama3.1:8b", settings=settings).input_usd_per_mtok == 0.0
    assert load_price_table(settings) is load_price_table(settings)


@pytest.mark.parametrize(
    ("text", "where", "why"),
    [
        ('[models."llama3.1:8b"\ninput = 0', "not valid TOML", "line 1"),
        ('[models."llama3.1:8b"]\ninput = -1\noutput = 0', '[models."llama3.1:8b"]', ">= 0"),
        ("[models.gpt-4o]\ninput = 1", '[models."gpt-4o"]', "got input"),
        ('[models.gpt-4o]\ninput = "cheap"\noutput = 1', '[models."gpt-4o"]', "a number"),
        ("[models.gpt-4o]\ninput = 1\noutput = 2\nextra = 3", "[models.", "got extra"),
        ("[model.gpt-4o]\ninput = 1\noutput = 2", "unknown table 'model'", "[models]"),
        (
            '[models."offline-deterministic-v1"]\ninput = 0\noutput = 0',
            "[models.",
            "STRATLAB_OFFLINE_INPUT_PRICE",
        ),
    ],
)
def test_a_bad_table_names_the_file_and_row(
    tmp_path: Path, text: str, where: str, why: str
) -> None:
    settings = table_at(tmp_path, text)
    with pytest.raises(PriceTableError) as err:
        price_for("gpt-4o", settings=settings)
    message = str(err.value)
    assert str(tmp_path / "prices.toml") in message
    assert where in message and why in message
    assert "\n" not in message


def test_a_missing_or_bad_table_stops_the_provider_from_being_built(tmp_path: Path) -> None:
    with pytest.raises(PriceTableError, match=r"nope\.toml"):
        build_provider(Settings(price_table=tmp_path / "nope.toml"))
    with pytest.raises(PriceTableError, match=">= 0"):
        build_provider(table_at(tmp_path, "[models.x]\ninput = 1\noutput = -0.5"))
