"""``stratlab pareto`` and ``generations`` say why an offspring is not a candidate, at 80
columns and in ``--json``: a real process against the test's own database."""

from __future__ import annotations

from typing import Any

from stratlab.models.optimization import OffspringVerdict
from stratlab.store.db import Pool
from stratlab.store.generations import GenerationRepo
from tests.fixtures.cli import cli_json
from tests.fixtures.prompt_registry import P1, P3, generation_zero, seed_registry

CONTROL = "sp500-post-gfc-recovery-risk-adjusted"
WHY_P3 = (
    "not on the Pareto front: dominated by offspring 22222222 on score, tokens and latency; "
    f"fails control task {CONTROL} (score 0.020 vs prod 0.800)"
)
VERDICTS = [
    OffspringVerdict(prompt_id=P1, operator="mutate", candidate=True, cause="candidate",
                     reason="on the Pareto front, beats prod on the targets (0.750 vs 0.500) "
                     "and keeps 1 control(s)"),
    OffspringVerdict(prompt_id=P3, operator="crossover", cause="dominated", reason=WHY_P3),
    OffspringVerdict(operator="mutate", cause="failed_checks", reason="failed the checks: unsafe"),
]  # fmt: skip


async def test_pareto_and_generations_say_why_an_offspring_is_not_a_candidate(
    db_pool: Pool, cli: Any
) -> None:
    await seed_registry(db_pool)
    gen = generation_zero().model_copy(update={"verdicts": VERDICTS})
    await GenerationRepo(db_pool).record(gen)

    shown = await cli("pareto", "--generation", "0", columns=80)
    assert shown.returncode == 0, shown.stderr
    lines = shown.stdout.splitlines()
    assert all(len(line) <= 80 for line in lines), shown.stdout
    assert "Why offspring are not candidates" in shown.stdout
    assert any(line.startswith(P3[:8]) and "not on the Pareto front" in line for line in lines)
    assert CONTROL in shown.stdout and "(mutate)" in shown.stdout
    assert "failed the checks: unsafe" in shown.stdout

    body = await cli_json(cli, "pareto", "--generation", "0")
    assert [v["cause"] for v in body["verdicts"]] == ["candidate", "dominated", "failed_checks"]
    by_id = {p["prompt_id"]: p for p in body["individuals"]}
    assert by_id[P3]["verdict"] == WHY_P3 and by_id[P1]["candidate"]

    listed = await cli("generations", columns=80)
    assert listed.returncode == 0, listed.stderr
    assert all(len(line) <= 80 for line in listed.stdout.splitlines()), listed.stdout
    assert "designer 0 offspring: 3: 1 candidate, 1 dominated, 1 failed the checks" in listed.stdout
    [gen] = await cli_json(cli, "generations")
    assert [v["reason"] for v in gen["verdicts"]][1] == WHY_P3
