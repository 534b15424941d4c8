"""``stratlab prompts`` / ``generations`` / ``pareto`` as a user runs them: a real process
against the test's own database, filled through the repositories. User errors are one
line on stderr and exit code 1."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stratlab.store.db import Pool
from stratlab.store.generations import GenerationRepo
from tests.fixtures.cli import assert_one_line_error, cli_json
from tests.fixtures.prompt_registry import P0, P1, P2, P3, generation_zero, seed_registry


async def test_prompt_commands(db_pool: Pool, cli: Any) -> None:
    await seed_registry(db_pool)

    listed = await cli_json(cli, "prompts", "list", "--role", "designer")
    by_id = {p["id"]: p for p in listed}
    assert {P0, P1, P2, P3} <= set(by_id)
    assert by_id[P1]["fitness"]["success_rate"] == 0.75 and by_id[P1]["tag"] == "candidate"
    assert by_id[P1]["experiment_id"] == "exp-1"
    assert [p["id"] for p in await cli_json(cli, "prompts", "list", "--tag", "candidate")] == [P1]
    table = await cli("prompts", "list", "--role", "designer")
    assert table.returncode == 0 and P1[:8] in table.stdout and "75%" in table.stdout

    shown = await cli_json(cli, "prompts", "show", P3[:8])  # a unique prefix
    assert shown["prompt"]["id"] == P3 and shown["prompt"]["parent_ids"] == [P1, P2]
    assert [e["tag"] for e in shown["tags"]] == ["draft"]
    assert [e["experiment_id"] for e in shown["experiments"]] == ["exp-3"]
    detail = await cli_json(cli, "prompts", "show", P1)
    assert detail["metadata"] == {"operator": "mutate"}
    text = await cli("prompts", "show", P1)
    assert text.returncode == 0, text.stderr
    assert "Check the drawdown first." in text.stdout and "candidate" in text.stdout

    diff = await cli_json(cli, "prompts", "diff", P0, P1)
    assert "+Check the drawdown first." in diff["content"]
    assert diff["system"] == []  # same system text
    coloured = await cli("prompts", "diff", P0, P3)
    assert "-You design." in coloured.stdout and "+You design briefly." in coloured.stdout

    tree = await cli_json(cli, "prompts", "lineage", P3)
    assert [a["id"] for a in tree["ancestors"]] == [P1, P2, P0]
    assert tree["ancestors"][2]["tag"] == "prod"
    assert tree["ancestors"][0]["fitness"]["mean_tokens"] == 1200
    drawn = await cli("prompts", "lineage", P3)
    assert drawn.returncode == 0 and "(shown above)" in drawn.stdout  # P0, reached twice


async def test_prompt_errors_are_one_line(db_pool: Pool, cli: Any) -> None:
    await seed_registry(db_pool)
    # Longer than a narrow terminal, and still one line.
    narrow = await cli("prompts", "show", "222222", columns=60)
    assert_one_line_error(narrow, "ambiguous", P1, P2)
    assert_one_line_error(await cli("prompts", "show", "ffffffff-0000"), "ffffffff-0000")
    assert_one_line_error(await cli("prompts", "lineage", "abc"), "6+ characters")
    assert_one_line_error(await cli("prompts", "diff", P0, "nope-nope"), "nope-nope")
    assert_one_line_error(await cli("prompts", "list", "--role", "wizard"), "wizard")
    assert_one_line_error(await cli("prompts", "list", "--tag", "gold"), "gold")
    assert_one_line_error(await cli("generations", "--limit", "0"))


async def test_generations_and_pareto(db_pool: Pool, cli: Any, tmp_path: Path) -> None:
    assert_one_line_error(
        await cli("pareto"), "no generations recorded for role designer yet: run stratlab optimize"
    )
    assert await cli_json(cli, "generations") == []
    await seed_registry(db_pool)
    await GenerationRepo(db_pool).record(generation_zero())

    [gen] = await cli_json(cli, "generations", "--role", "designer")
    assert (gen["generation"], gen["seed"], gen["front"]) == (0, 1234, [P1, P2])
    listed = await cli("generations")
    assert listed.returncode == 0 and "0.3100" in listed.stdout and P1[:8] in listed.stdout

    front = await cli_json(cli, "pareto")
    rows = [(p["prompt_id"], p["rank"], p["prod"], p["candidate"]) for p in front["individuals"]]
    # P1 and P2 trade score for tokens (front 0); P2 dominates P0; P0 dominates P3,
    # whose fitness comes from its experiment since the record carries none for it.
    assert rows == [(P1, 0, False, True), (P2, 0, False, False), (P0, 1, True, False),
                    (P3, 2, False, False)]  # fmt: skip
    assert front["individuals"][3]["fitness"]["success_rate"] == 0.25
    assert front["individuals"][3]["experiment_id"] == "exp-3"

    plot = tmp_path / "front.png"
    drawn = await cli("pareto", "--generation", "0", "--plot", str(plot))
    assert drawn.returncode == 0, drawn.stderr
    assert f"plot written to {plot}" in drawn.stdout.replace("\n", "")
    assert plot.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and plot.stat().st_size > 10_000

    assert_one_line_error(await cli("pareto", "--generation", "5"), "no generation 5")
    assert_one_line_error(await cli("pareto", "--role", "assessor"), "role assessor yet")
    assert_one_line_error(await cli("pareto", "--role", "wizard"), "wizard")
