"""Token estimates and prices: what a call costs and what the budget reserves before it.

Prices are USD per million tokens, list prices of the providers' public price pages at
the time of writing. Model names are matched exactly, then by the longest table key
that prefixes them, so dated snapshots (``gpt-4o-2024-08-06``,
``claude-sonnet-4-5-20250929``) find their family. A model that matches nothing is
priced at ``DEFAULT_PRICE``, the most expensive row of the table, so that the budget
never under-reserves for a model it does not know (a local Ollama model is therefore
over-reserved until ``STRATLAB_PRICES`` prices it at zero).

``STRATLAB_PRICES`` names a TOML file whose rows add to or override ``PRICES``::

    [models."llama3.1:8b"]
    input = 0      # USD per million input tokens
    output = 0     # USD per million output tokens

It is read once per path (``load_price_table``); a malformed file or row is a
``PriceTableError`` naming the file and the row.
"""

from __future__ import annotations

import json
import math
import tomllib
from collections.abc import Mapping
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from types import MappingProxyType
from typing import Any

from stratlab.config import Settings
from stratlab.llm.base import OFFLINE_MODEL
from stratlab.models.llm import LlmRequest

CHARS_PER_TOKEN = 4
"""BPE tokenizers of OpenAI and Anthropic average about 4 characters per token on
English prose and JSON; ``estimate_tokens`` rounds up so estimates err high."""


@dataclass(frozen=True)
class ModelPrice:
    """USD per million input and output tokens."""

    input_usd_per_mtok: float
    output_usd_per_mtok: float


PRICES: dict[str, ModelPrice] = {
    "claude-opus-4-5": ModelPrice(5.0, 25.0),
    "claude-opus-4-1": ModelPrice(15.0, 75.0),
    "claude-opus-4": ModelPrice(15.0, 75.0),
    "claude-3-opus": ModelPrice(15.0, 75.0),
    "claude-sonnet-4-5": ModelPrice(3.0, 15.0),
    "claude-sonnet-4": ModelPrice(3.0, 15.0),
    "claude-3-7-sonnet": ModelPrice(3.0, 15.0),
    "claude-3-5-sonnet": ModelPrice(3.0, 15.0),
    "claude-haiku-4-5": ModelPrice(1.0, 5.0),
    "claude-3-5-haiku": ModelPrice(0.8, 4.0),
    "claude-3-haiku": ModelPrice(0.25, 1.25),
    "gpt-4o": ModelPrice(2.5, 10.0),
    "gpt-4o-mini": ModelPrice(0.15, 0.6),
    "gpt-4.1": ModelPrice(2.0, 8.0),
    "gpt-4.1-mini": ModelPrice(0.4, 1.6),
    "gpt-4.1-nano": ModelPrice(0.1, 0.4),
    # Placeholder: the offline shadow price comes from Settings (see ``price_for``).
    OFFLINE_MODEL: ModelPrice(3.0, 15.0),
}
"""Static list prices. The offline row is replaced at lookup time by
``Settings.offline_input_usd_per_mtok`` / ``offline_output_usd_per_mtok``: the offline
provider is priced at a shadow price so that the budget path is exercised for real."""

DEFAULT_PRICE = ModelPrice(15.0, 75.0)
"""Price of a model that is not in ``PRICES``: the most expensive row, on purpose."""


def estimate_tokens(text: str) -> int:
    """Estimate the token count of ``text`` as ceil(characters / 4); 0 for empty text."""
    return math.ceil(len(text) / CHARS_PER_TOKEN)


class PriceTableError(ValueError):
    """``STRATLAB_PRICES`` cannot be read: the message names the file and the row."""


def load_price_table(settings: Settings) -> Mapping[str, ModelPrice]:
    """The built-in ``PRICES`` with ``settings.price_table``'s rows added or overriding."""
    if settings.price_table is None:
        return PRICES
    return _load_table(settings.price_table)


@lru_cache(maxsize=8)
def _load_table(path: Path) -> Mapping[str, ModelPrice]:
    path = path.expanduser()
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except OSError as err:
        raise PriceTableError(f"price table {path} (STRATLAB_PRICES): {err.strerror}") from err
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        raise PriceTableError(f"price table {path}: not valid TOML: {err}") from err
    extra = sorted(set(data) - {"models"})
    if extra:
        raise PriceTableError(f"price table {path}: unknown table {extra[0]!r}; expected [models]")
    rows = data.get("models", {})
    if not isinstance(rows, dict):
        raise PriceTableError(f"price table {path}: 'models' must be a table")
    merged = {**PRICES, **{name: _row(path, name, row) for name, row in rows.items()}}
    return MappingProxyType(merged)


def _row(path: Path, name: str, row: Any) -> ModelPrice:
    where = f"price table {path}: [models.{json.dumps(name)}]"
    if name == OFFLINE_MODEL:
        raise PriceTableError(
            f"{where}: the offline model is priced by STRATLAB_OFFLINE_INPUT_PRICE and "
            "STRATLAB_OFFLINE_OUTPUT_PRICE"
        )
    if not isinstance(row, dict) or set(row) != {"input", "output"}:
        got = ", ".join(sorted(row)) if isinstance(row, dict) else type(row).__name__
        raise PriceTableError(f"{where}: expected exactly 'input' and 'output', got {got}")
    prices = []
    for key in ("input", "output"):
        value = row[key]
        if isinstance(value, bool) or not isinstance(value, int | float):
            raise PriceTableError(f"{where}: {key} must be a number, got {value!r}")
        if not math.isfinite(value) or value < 0:
            raise PriceTableError(f"{where}: {key} must be a finite price >= 0, got {value!r}")
        prices.append(float(value))
    return ModelPrice(prices[0], prices[1])


def price_for(model: str, *, settings: Settings) -> ModelPrice:
    """The price of ``model``: offline shadow price, exact row, longest prefix, or default
    (rows of ``STRATLAB_PRICES`` included)."""
    if model == OFFLINE_MODEL:
        return ModelPrice(settings.offline_input_usd_per_mtok, settings.offline_output_usd_per_mtok)
    table = load_price_table(settings)
    row = matching_row(model, table)
    return DEFAULT_PRICE if row is None else table[row]


def matching_row(model: str, table: Mapping[str, ModelPrice]) -> str | None:
    """The table key that prices ``model``: the exact name, else the longest prefix."""
    if model in table:
        return model
    prefixes = [key for key in table if model.startswith(key)]
    return max(prefixes, key=len) if prefixes else None


def cost_usd(model: str, input_tokens: int, output_tokens: int, *, settings: Settings) -> float:
    """What a call with these token counts costs at ``model``'s price."""
    price = price_for(model, settings=settings)
    return (
        input_tokens * price.input_usd_per_mtok + output_tokens * price.output_usd_per_mtok
    ) / 1_000_000


def output_token_cap(request: LlmRequest, settings: Settings) -> int:
    """The output-token limit a provider sends: the request's, capped by Settings (the
    mutator writes whole templates, so it has a cap of its own)."""
    cap = (
        settings.mutator_max_output_tokens
        if request.role == "mutator"
        else settings.max_output_tokens
    )
    return max(1, min(request.max_output_tokens, cap))


def estimate_input_tokens(request: LlmRequest) -> int:
    """Estimated input tokens of a request, including its JSON schema.

    Providers send the schema with the call (response_format or a tool) and bill it as
    input, so it belongs in the reservation.
    """
    schema = json.dumps(request.json_schema, separators=(",", ":")) if request.json_schema else ""
    prompt_tokens = estimate_tokens(request.system) + estimate_tokens(request.prompt)
    return prompt_tokens + estimate_tokens(schema)


def worst_case_cost(request: LlmRequest, model: str, *, settings: Settings) -> float:
    """What the budget reserves before a call: estimated input plus the full output cap."""
    return cost_usd(
        model,
        estimate_input_tokens(request),
        output_token_cap(request, settings),
        settings=settings,
    )
