"""A user's own strategy through the lab's pipeline (``EvaluateStrategyWorkflow`` and
``stratlab evaluate``), on the real Temporal server, real Postgres and real market data.

The assertions read what a user would: the result's checks, the session row, the trial
ledger, the holdout; and the CLI's one-line errors and its JSON.
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import shutil
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console
from temporalio import activity
from temporalio.client import Client, WorkflowExecutionStatus, WorkflowFailureError
from temporalio.worker import Worker

from activities import names
from stratlab.cli.evaluate import (
    load_spec,
    parse_period,
    render_result,
    result_json,
    start_evaluation,
)
from stratlab.models.research import (
    OUTCOMES,
    BacktestMetrics,
    CycleStatus,
    EvaluateStrategyInput,
    EvaluateStrategyResult,
    GateCheck,
    GateResult,
    HoldoutResult,
    RegisterStrategyInput,
    RegisterStrategyResult,
    StrategySpec,
)
from tests.fixtures.cli import assert_one_line_error, run_cli
from tests.fixtures.gates import OPEN_BACKTEST_GATE, OPEN_STATISTICAL_GATE, OPEN_TRAINING_GATE
from tests.fixtures.scripted_activities import Script, business_error, scripted_activities
from tests.fixtures.specs import sma_crossover
from tests.fixtures.temporal import rows, save_history
from workflows.constants import SA_OUTCOME, task_queue_for
from workflows.evaluate import EvaluateStrategyWorkflow

ROOT = Path(__file__).resolve().parents[2]
# A user's spec file (the workflow's symbol overrides its symbol).
SMA_CROSSOVER: dict[str, Any] = sma_crossover(
    fast=(5, 20, 5),
    slow=(40, 100, 20),
    window_params=("fast_window", "slow_window"),
    symbol="nasdaq",
    rationale="a user's classic",
).model_dump(mode="json", exclude_none=True)
GRID = 16
TOMORROWS_CLOSE: dict[str, Any] = {
    "name": "tomorrow's close",
    "kind": "code",
    "code": (
        "def signals(data, params):\n"
        '    c = data["close"]\n'
        "    return c.shift(-1) > c, c.shift(-1) < c\n"
    ),
}
STATUSES = {"passed", "failed", "not_run"}


async def evaluate(lab: Any, **fields: Any) -> tuple[Any, EvaluateStrategyResult]:
    handle = await start_evaluation(lab.client, lab.settings, EvaluateStrategyInput(**fields))
    return handle, await asyncio.wait_for(handle.result(), timeout=240)


async def test_a_users_rules_spec_runs_through_the_whole_pipeline(lab: Any) -> None:
    handle, result = await evaluate(lab, spec=SMA_CROSSOVER, symbol="sp500")
    await save_history(handle, "evaluate_user_rules")
    assert handle.id == f"evaluate-{result.session_id}"
    assert result.outcome in OUTCOMES and result.outcome != "failed_design", result
    # the training gate passes with the seed's defaults, so every gate judged it
    assert [g.gate for g in result.gates] == ["training", "backtest", "statistical"]
    assert result.checks == [c for g in result.gates for c in g.checks]
    by_name = {c.name: c for c in result.checks}
    assert {"lookahead", "deflated_sharpe", "min_trades", "pbo"} <= set(by_name)
    assert all(c.status in STATUSES for c in result.checks)
    assert by_name["lookahead"].status == "passed"  # a moving average never looks ahead
    assert result.metrics is not None and result.metrics.bars > 500
    assert result.trials == 1  # judged against the ledger's fits of sp500: this one
    passed = all(g.passed for g in result.gates)
    assert (result.outcome == "success") == passed == (result.holdout is not None)

    (session,) = await rows(
        lab, "SELECT * FROM agent_sessions WHERE session_id = %(s)s", s=result.session_id
    )
    assert session["trigger"] == "user" and session["outcome"] == result.outcome
    assert session["workflow_id"] == handle.id and session["kind"] == "rules"
    assert len(session["result"]["iterations"]) == 1  # `stratlab session` reads it as a cycle
    (strategy,) = await rows(
        lab, "SELECT * FROM strategies WHERE session_id = %(s)s", s=result.session_id
    )
    assert strategy["strategy_id"] == result.strategy_id and strategy["symbol"] == "sp500"
    assert strategy["spec"]["entry"] == SMA_CROSSOVER["entry"] and strategy["iteration"] == 1
    (trial,) = await rows(lab, "SELECT * FROM trials WHERE session_id = %(s)s", s=result.session_id)
    assert trial["source"] == "user" and trial["n_trials"] == GRID
    assert trial["strategy_id"] == result.strategy_id
    assert await rows(lab, "SELECT 1 FROM agent_actions") == []  # no LLM call
    phases = {
        r["phase"]
        for r in await rows(
            lab, "SELECT phase FROM session_phases WHERE session_id = %(s)s", s=result.session_id
        )
    }
    assert {"design", "train", "backtest"} <= phases and "assess" not in phases

    status = await handle.query("status", result_type=CycleStatus)
    assert status.phase == "done" and status.outcome == result.outcome
    described = await handle.describe()
    assert described.typed_search_attributes.get(SA_OUTCOME) == result.outcome


@pytest.mark.skipif(shutil.which("bwrap") is None, reason="bubblewrap is not installed")
async def test_code_that_reads_tomorrows_close_is_rejected_by_the_probe(lab: Any) -> None:
    handle, result = await evaluate(lab, spec=TOMORROWS_CLOSE, symbol="sp500")
    await save_history(handle, "evaluate_user_lookahead")
    assert result.outcome == "failed_training_gate", result
    lookahead = next(c for c in result.checks if c.name == "lookahead")
    assert lookahead.status == "failed"
    assert re.search(r"\bbar \d+", lookahead.detail), lookahead.detail
    assert [g.gate for g in result.gates] == ["training"] and result.holdout is None
    assert (
        await rows(lab, "SELECT 1 FROM backtests WHERE session_id = %(s)s", s=result.session_id)
        == []
    )
    # the fit was a look at the data all the same: the ledger counts it
    (trial,) = await rows(
        lab, "SELECT source FROM trials WHERE session_id = %(s)s", s=result.session_id
    )
    assert trial["source"] == "user"


async def test_open_gates_reach_the_holdout(
    lab: Any,
) -> None:
    _, result = await evaluate(
        lab,
        spec=SMA_CROSSOVER,
        symbol="sp500",
        training_gate=OPEN_TRAINING_GATE,
        backtest_gate=OPEN_BACKTEST_GATE,
        statistical_gate=OPEN_STATISTICAL_GATE,
    )
    assert result.outcome == "success", result
    assert [g.gate for g in result.gates] == ["training", "backtest", "statistical"]
    assert result.holdout is not None and result.holdout.strategy_id == result.strategy_id
    assert result.holdout.metrics.bars > 0
    (holdout,) = await rows(
        lab,
        "SELECT strategy_id FROM holdout_evaluations WHERE session_id = %(s)s",
        s=result.session_id,
    )
    assert holdout["strategy_id"] == result.strategy_id
    (session,) = await rows(
        lab,
        "SELECT best_strategy_id FROM agent_sessions WHERE session_id = %(s)s",
        s=result.session_id,
    )
    assert session["best_strategy_id"] == result.strategy_id
    assert await rows(lab, "SELECT 1 FROM skills") == []  # a user's strategy is not a skill


async def test_an_invalid_spec_or_symbol_ends_failed_design_with_the_reason(lab: Any) -> None:
    broken = {**SMA_CROSSOVER, "entry": "crosses_above(fats, slow)"}
    _, result = await evaluate(lab, spec=broken)
    assert result.outcome == "failed_design" and result.strategy_id is None
    assert result.error is not None and "'fats'" in result.error and "fast" in result.error
    assert result.checks == [] and result.holdout is None
    (session,) = await rows(
        lab,
        "SELECT outcome, trigger FROM agent_sessions WHERE session_id = %(s)s",
        s=result.session_id,
    )
    assert session == {"outcome": "failed_design", "trigger": "user"}
    assert await rows(lab, "SELECT 1 FROM strategies") == []

    _, unknown = await evaluate(lab, spec=SMA_CROSSOVER, symbol="dogecoin")
    assert unknown.outcome == "failed_design"
    assert unknown.error is not None and "dogecoin" in unknown.error


@pytest.mark.parametrize(
    ("payload", "words"),
    [
        ({"spec": {"kind": "nonsense"}}, ["kind"]),
        ({"symbol": "sp500"}, ["needs a spec"]),
        ({"spec": {**SMA_CROSSOVER, "parameters": "many"}}, ["parameters"]),
    ],
    ids=["bad kind", "no spec", "bad parameters"],
)
async def test_invalid_input_fails_the_run_at_once(
    temporal_client: Client, payload: dict[str, Any], words: list[str]
) -> None:
    """A raw JSON input, as `temporal workflow start --input` sends it: the run fails with
    the reason instead of retrying its workflow task forever (no activity is needed)."""
    queue = task_queue_for("orchestrator", f"eval{uuid.uuid4().hex[:8]}-")
    async with Worker(temporal_client, task_queue=queue, workflows=[EvaluateStrategyWorkflow]):
        handle = await temporal_client.start_workflow(
            "EvaluateStrategyWorkflow", payload, id=f"evaluate-{uuid.uuid4()}", task_queue=queue
        )
        started = time.monotonic()
        with pytest.raises(WorkflowFailureError) as failed:
            await asyncio.wait_for(handle.result(), timeout=30)
        assert time.monotonic() - started < 15
    message = str(failed.value.cause)
    for word in words:
        assert word in message, message
    assert (await handle.describe()).status == WorkflowExecutionStatus.FAILED


@pytest.mark.parametrize(
    ("step", "kind", "outcome"),
    [
        ("train", "TrainingError", "failed_training"),
        ("backtest", "BacktestError", "failed_backtest"),
    ],
)
async def test_a_failing_step_has_the_research_cycles_outcome(
    temporal_client: Client, step: str, kind: str, outcome: str
) -> None:
    """Scripted activities (the research cycle's logic test's, plus registration): an
    activity error ends the evaluation as it ends a cycle's round."""
    script = Script(fail={step: lambda _i: business_error(kind)})
    acts = scripted_activities(script)

    @activity.defn(name=names.REGISTER_STRATEGY)
    async def register(inp: RegisterStrategyInput) -> RegisterStrategyResult:
        return RegisterStrategyResult(strategy_id=inp.strategy_id, spec=inp.spec)

    prefix = f"evallogic{uuid.uuid4().hex[:8]}-"
    workers = [
        Worker(
            temporal_client,
            task_queue=task_queue_for(pool, prefix),
            workflows=[EvaluateStrategyWorkflow] if pool == "orchestrator" else [],
            activities=[*acts[pool], register] if pool == "orchestrator" else acts[pool],
        )
        for pool in ("orchestrator", "compute")
    ]
    async with workers[0], workers[1]:
        result = await temporal_client.execute_workflow(
            EvaluateStrategyWorkflow.run,
            EvaluateStrategyInput(spec=StrategySpec.model_validate(SMA_CROSSOVER)),
            id=f"evaluate-logic-{uuid.uuid4()}",
            task_queue=task_queue_for("orchestrator", prefix),
        )
    assert result.outcome == outcome and result.error and "scripted" in result.error
    assert result.holdout is None and script.holdouts == []


# --- the CLI ---------------------------------------------------------------------------


def offline_cli(*args: str) -> subprocess.CompletedProcess[str]:
    """The CLI with Temporal and Postgres pointing nowhere: what it rejects, it rejects
    before it touches either."""
    env = {
        **os.environ,
        "DATABASE_URL": "postgresql://nobody@127.0.0.1:9/nowhere",
        "TEMPORAL_ADDRESS": "127.0.0.1:9",
    }
    return subprocess.run(
        [sys.executable, "-m", "stratlab.cli.main", "evaluate", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_cli_rejects_a_bad_file_in_one_line_before_starting_anything(tmp_path: Path) -> None:
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{"name": "x", "kind": ')
    not_a_spec = tmp_path / "not_a_spec.json"
    not_a_spec.write_text(json.dumps({"name": "x", "kind": "nonsense"}))
    invalid = tmp_path / "invalid.json"
    invalid.write_text(json.dumps({**SMA_CROSSOVER, "exit": "crosses_below(fast, slwo)"}))
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    assert_one_line_error(offline_cli(str(tmp_path / "nope.json")), "nope.json")
    assert_one_line_error(offline_cli(str(bad_json)), "not valid JSON")
    assert_one_line_error(offline_cli(str(not_a_spec)), "kind")
    assert_one_line_error(offline_cli(str(invalid)), "slwo")
    assert_one_line_error(offline_cli(str(listed)), "JSON object")
    assert_one_line_error(offline_cli(str(invalid), "--period-start", "2001-13-01"), "date")


def test_load_spec_applies_the_symbol_and_validates(tmp_path: Path) -> None:
    path = tmp_path / "sma.json"
    path.write_text(json.dumps(SMA_CROSSOVER))
    assert load_spec(path).symbol == "nasdaq"
    assert load_spec(path, symbol="sp500").symbol == "sp500"
    window = parse_period("2005-01-01", None)
    assert window is not None and str(window.start) == "2005-01-01" and window.end is None
    assert parse_period(None, None) is None


async def test_cli_json_prints_one_object(
    lab: Any, temporal_client: Client, tmp_path: Path
) -> None:
    spec = tmp_path / "sma.json"
    spec.write_text(json.dumps(SMA_CROSSOVER))
    done = await run_cli(lab, temporal_client, "evaluate", str(spec), "--symbol", "sp500", "--json")
    assert done.returncode == 0, done.stderr
    body = json.loads(done.stdout)  # one object, nothing else on stdout
    assert {"session_id", "outcome", "checks", "trials", "holdout"} <= set(body)
    assert body["symbol"] == "sp500" and body["trials"] >= 1
    names = {c["name"] for c in body["checks"]}
    assert {"lookahead", "deflated_sharpe", "min_trades"} <= names
    for check in body["checks"]:
        assert {"name", "status", "value", "threshold", "detail"} <= set(check)
        assert check["status"] in STATUSES
        assert (check["value"] is None) == (check["status"] == "not_run")
    assert (body["holdout"] is not None) == (body["outcome"] == "success")
    (session,) = await rows(
        lab,
        "SELECT trigger, outcome FROM agent_sessions WHERE session_id = %(s)s",
        s=body["session_id"],
    )
    assert session == {"trigger": "user", "outcome": body["outcome"]}

    unknown = await run_cli(lab, temporal_client, "evaluate", str(spec), "--symbol", "dogecoin")
    assert_one_line_error(unknown, "dogecoin")


def fabricated_result() -> EvaluateStrategyResult:
    detail = (
        "Sharpe 0.41/yr against an exposure-matched buy-and-hold; the best of 37.2 effective "
        "trials (412 in the ledger) would reach 0.88/yr by luck"
    )
    gates = [
        GateResult(
            gate="training",
            passed=True,
            checks=[
                GateCheck(name="validation_trades", value=14, threshold=3, op=">=", passed=True),
                GateCheck(
                    name="lookahead",
                    value=0,
                    threshold=0,
                    op="<=",
                    passed=True,
                    detail="no look-ahead: signals on 8 prefixes of the data equal the full run's",
                ),
            ],
        ),
        GateResult(
            gate="statistical",
            passed=False,
            checks=[
                GateCheck(name="min_trades", value=57, threshold=10, op=">=", passed=True),
                GateCheck(
                    name="deflated_sharpe",
                    value=0.4123,
                    threshold=0.95,
                    op=">=",
                    passed=False,
                    detail=detail,
                ),
                GateCheck(
                    name="pbo",
                    value=0,
                    threshold=0.5,
                    op="<=",
                    passed=False,
                    status="not_run",
                    detail="the grid has 4 combination(s); CSCV needs at least 8",
                ),
            ],
        ),
    ]
    return EvaluateStrategyResult(
        session_id="s-1",
        outcome="failed_backtest_gate",
        strategy_id="st-1",
        checks=[c for g in gates for c in g.checks],
        gates=gates,
        trials=412,
        metrics=BacktestMetrics(sharpe=0.41, total_return=0.23, max_drawdown=0.18, trades=57),
    )


def test_the_table_fits_80_columns_and_says_what_failed() -> None:
    out = Console(width=120, record=True, color_system=None)
    spec = StrategySpec.model_validate({**SMA_CROSSOVER, "symbol": "sp500"})
    render_result(fabricated_result(), spec=spec, out=out)
    text = out.export_text()
    table = text.split("walk-forward OOS")[0]
    assert max(len(line) for line in table.splitlines()) <= 80, table
    for word in ("deflated_sharpe", "FAIL", "pass", "not run", ">= 0.95", "FAILED"):
        assert word in table, word
    assert "by luck" in table  # the detail is folded, not cut
    assert "trials: N = 412" in text
    assert "holdout: not evaluated" in text
    assert "failed_backtest_gate" in text

    passed = fabricated_result().model_copy(
        update={
            "outcome": "success",
            "holdout": HoldoutResult(
                holdout_id="h", strategy_id="st-1", metrics=BacktestMetrics(sharpe=0.3), psr=0.7
            ),
        }
    )
    body = result_json(passed, spec=spec, workflow_id="evaluate-s-1")
    assert body["holdout"]["sharpe"] == 0.3 and body["holdout_psr"] == 0.7
    assert [c["gate"] for c in body["checks"]].count("statistical") == 3
    assert next(c for c in body["checks"] if c["name"] == "pbo")["value"] is None
