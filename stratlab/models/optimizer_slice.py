"""The prompt optimizer's own data: bundled synthetic sets that research cycles never
choose on.

Prompt evolution selects prompts by how the lab does with them. If it selected on the
bars research cycles also choose strategies on, a prompt tuned to those bars would steer
designs that are then chosen on them again: a second look at the same data that no trial
ledger counts. So the optimizer's default task set runs on data of its own, where the
right answer is also known:

* ``noise-a``, ``noise-b``: driftless random walks; the right result is no discovery.
* ``trend-a``, ``trend-b``, ``trend-c``: trend regimes with a planted edge of known size
  (``stratlab.market.planted``, named by the Sharpe of the best causal trader); the right
  result is a discovery.

Research cycles refuse these symbols unless the optimizer's regression runs start them
(trigger ``regression``); ``stratlab evaluate`` refuses them too. This module holds only
names and numbers, so the models (its home) check a cycle's input without importing
pandas.
"""

from __future__ import annotations

from typing import NamedTuple

NOISE_SEEDS: dict[str, int] = {"noise-a": 20_240_101, "noise-b": 20_240_102}
"""Synthetic noise: a driftless geometric random walk per symbol (its generator seed)."""


class PlantedSet(NamedTuple):
    """A bundled planted-edge set: its generator seed and the causal Sharpe it plants."""

    seed: int
    sharpe: float


PLANTED_SETS: dict[str, PlantedSet] = {
    "trend-a": PlantedSet(seed=20_261_205, sharpe=2.5),
    "trend-b": PlantedSet(seed=20_261_206, sharpe=1.5),
    "trend-c": PlantedSet(seed=20_261_207, sharpe=0.8),
}
"""Trend regimes of 60-250 bars with a planted edge; ``sharpe`` is the annualised Sharpe
a causal Bayes filter that knows the model takes from it (an oracle would show more)."""

OPTIMIZER_SYMBOLS: frozenset[str] = frozenset(NOISE_SEEDS) | frozenset(PLANTED_SETS)
OPTIMIZER_TRIGGER = "regression"
"""The trigger of the research cycles a regression run starts: the only ones allowed here."""


def research_refusal(symbol: str, trigger: str) -> str | None:
    """Why a research cycle started by ``trigger`` may not run on ``symbol`` (None: it may)."""
    if symbol not in OPTIMIZER_SYMBOLS or trigger == OPTIMIZER_TRIGGER:
        return None
    return (
        f"{symbol} is the prompt optimizer's own data: research cycles never choose on it, "
        "so prompt evolution is judged on bars no discovery was chosen on "
        "(use sp500, nasdaq or an imported symbol)"
    )
