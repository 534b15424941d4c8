"""The paper-trading agent (seed 001): its pure domain core and the services of its steps.

Pure, no database, Temporal or LLM code:

- ``guardrails``: an LLM plan normalised into ``TradeInstruction``s under risk limits;
- ``paper``: the paper gateway, a ``PaperBook`` filling at the next bar's open;
- ``digest``: round trips from fills and the per-instrument ``TradeDigest``;
- ``features``: the composer's feature vectors from the indicator registry;
- ``history``: the typed payload of each history record kind.

The steps of a decision cycle, one service per worker pool (``service`` tells the cycle):
``bars`` (compute), ``composer`` (llm) and ``execution`` (orchestrator), with ``feed``
(the bars a strategy trades) and ``reads`` (what they share) below them.
"""
