"""The paper-trading agent's pure domain core (seed 001), called from activities.

- ``guardrails``: an LLM plan normalised into ``TradeInstruction``s under risk limits;
- ``paper``: the paper gateway, a ``PaperBook`` filling at the next bar's open;
- ``digest``: round trips from fills and the per-instrument ``TradeDigest``;
- ``features``: the composer's feature vectors from the indicator registry.

No database, Temporal or LLM code lives here.
"""
