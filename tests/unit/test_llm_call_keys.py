"""The LLM call's idempotency key has one home and a frozen format: keys already stored in
``agent_actions`` must come out the same after an upgrade, or a retried call pays twice."""

from __future__ import annotations

from stratlab.llm.budgeted import action_id


def test_the_stored_formats_are_kept() -> None:
    assert action_id("s1", 2, "designer", 1, answer=3) == "s1:2:designer:1:3"
    assert action_id("s1", 2, "assessor", 2, answer=1) == "s1:2:assessor:2:1"
    assert action_id("paper", "c-9", "composer", 1, answer=2) == "paper:c-9:composer:1:2"
    assert action_id("gen-4:mutate:7", answer=1) == "gen-4:mutate:7:1"
