"""A worker process as deployed, watched from outside: /metrics, OTLP traces, JSON logs.

One ``python -m workers <all pools> --metrics-port N`` process runs three research cycles
(success, failed backtest gate, failed design) with ``OTEL_EXPORTER_OTLP_ENDPOINT`` pointed
at a local OTLP/HTTP collector and a fake API key in its environment. Then:

- ``/metrics`` says what the database says the cycles did (calls, tokens and cost per
  role, outcomes, gate results, phases, budget) and has Temporal's runtime metrics;
- after SIGTERM the collector holds the spans (the batch delay is an hour, so only the
  shutdown flush can have sent them): each workflow one trace, with LLM and gate spans;
- every log line is JSON, LLM lines carry workflow, run, activity, session and prompt
  ids, the workflow's own warning carries its ids as keys, and the key is in no line
  although the failed design's symbol contains it (so it did reach a log call).
"""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import subprocess
import sys
import urllib.request
from collections import Counter, defaultdict
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from prometheus_client.parser import text_string_to_metric_families
from temporalio.client import Client

from stratlab.telemetry.tracing import run_trace_context
from tests.fixtures.dashboard import SERIES, dashboard_queries
from tests.fixtures.gates import OPEN_BACKTEST_GATE, OPEN_STATISTICAL_GATE, OPEN_TRAINING_GATE
from tests.fixtures.otlp_collector import OtlpCollector
from tests.fixtures.temporal import rows
from workers.health import check as health_check
from workflows.constants import POOLS

ROOT = Path(__file__).resolve().parents[2]
FAKE_KEY = "sk-ant-api03-fake-" + "7f3a9c" * 6
ALL_POOLS = "+".join(POOLS)

pytestmark = pytest.mark.slow


@pytest.fixture
def lab_pools() -> tuple[str, ...]:
    return ()  # the worker process under test runs every pool


# --- the worker process ----------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def otlp() -> Iterator[OtlpCollector]:
    with OtlpCollector() as collector:
        yield collector


def start_worker(lab: Any, client: Client, port: int, otlp_url: str, log: Path) -> subprocess.Popen:
    env = {
        **os.environ,
        "DATABASE_URL": lab.settings.database_url,
        "TEMPORAL_ADDRESS": client.service_client.config.target_host,
        "STRATLAB_TASK_QUEUE_PREFIX": lab.settings.task_queue_prefix,
        "STRATLAB_HOME": str(lab.settings.home),
        "STRATLAB_LOG_FORMAT": "json",
        "STRATLAB_LOG_LEVEL": "INFO",
        "STRATLAB_LLM_PROVIDER": "offline",
        "ANTHROPIC_API_KEY": FAKE_KEY,
        "OTEL_EXPORTER_OTLP_ENDPOINT": otlp_url,
        "OTEL_BSP_SCHEDULE_DELAY": "3600000",  # spans leave only when the worker flushes
    }
    with log.open("ab") as out:
        return subprocess.Popen(
            [sys.executable, "-m", "workers", *POOLS, "--metrics-port", str(port)],
            cwd=ROOT,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )


def scrape(port: int) -> dict[str, list[tuple[dict[str, str], float]]]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        text = response.read().decode()
    samples: dict[str, list[tuple[dict[str, str], float]]] = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            samples[sample.name].append((dict(sample.labels), float(sample.value)))
    return samples


async def wait_for_metrics(port: int, worker: subprocess.Popen, timeout: float = 90) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        assert worker.poll() is None, "the worker exited at start-up"
        try:
            await asyncio.to_thread(scrape, port)
            return
        except OSError:
            if asyncio.get_running_loop().time() > deadline:
                raise
            await asyncio.sleep(0.3)


async def wait_until_healthy(port: int, worker: subprocess.Popen, timeout: float = 60) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while (problem := await asyncio.to_thread(health_check, port)) is not None:
        assert worker.poll() is None, "the worker exited at start-up"
        assert asyncio.get_running_loop().time() < deadline, problem
        await asyncio.sleep(0.3)


async def settled_scrape(port: int, timeout: float = 10) -> dict[str, Any]:
    """A scrape taken once the worker has counted the three completed workflows.

    The client sees a workflow's result when the server has it; the worker counts the
    completion just after sending it, so one scrape at that moment can miss the last one
    (CI saw 2 of 3 once). Whatever the counter says at the deadline is what is judged."""
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        samples = await asyncio.to_thread(scrape, port)
        counted = total(samples, "temporal_workflow_completed_total")
        if counted >= 3 or asyncio.get_running_loop().time() > deadline:
            return samples
        await asyncio.sleep(0.2)


def total(samples: dict[str, list[tuple[dict[str, str], float]]], name: str, **by: str) -> float:
    return sum(
        v for labels, v in samples.get(name, []) if all(labels[k] == x for k, x in by.items())
    )


# --- the test --------------------------------------------------------------------------


async def test_a_worker_process_exposes_metrics_traces_and_clean_logs(
    lab: Any, temporal_client: Client, otlp: OtlpCollector
) -> None:
    port, log = free_port(), lab.settings.home / "worker.log"
    worker = start_worker(lab, temporal_client, port, otlp.url, log)
    try:
        await wait_for_metrics(port, worker)
        await wait_until_healthy(port, worker)  # the image's HEALTHCHECK, before any work
        cycles = [
            {
                "training_gate": OPEN_TRAINING_GATE,
                "backtest_gate": OPEN_BACKTEST_GATE,
                "statistical_gate": OPEN_STATISTICAL_GATE,
            },
            {
                "training_gate": OPEN_TRAINING_GATE,
                "backtest_gate": {**OPEN_BACKTEST_GATE, "min_sharpe": 50.0},
            },
            {"symbol": f"leak-{FAKE_KEY}"},  # unknown: the design fails, naming the symbol
        ]
        handles = [
            await lab.start_cycle(**{"symbol": "sp500", "kind": "rules", "max_iterations": 1, **c})
            for c in cycles
        ]
        results = await asyncio.wait_for(
            asyncio.gather(*(h.result() for h in handles)), timeout=240
        )
        assert [r.outcome for r in results] == ["success", "failed_backtest_gate", "failed_design"]
        samples = await settled_scrape(port)
    finally:
        worker.send_signal(signal.SIGTERM)
        try:
            code = worker.wait(timeout=60)
        except subprocess.TimeoutExpired:
            worker.kill()
            raise
    assert code == 0, log.read_text()[-3000:]

    await _metrics_match_the_database(lab, samples)
    sessions = await rows(lab, "SELECT session_id, workflow_id, run_id FROM agent_sessions")
    actions = await rows(lab, "SELECT * FROM agent_actions")
    _spans_were_flushed_on_shutdown(otlp, sessions, actions)
    _logs_carry_ids_and_no_secret(log, sessions, actions)


async def _metrics_match_the_database(lab: Any, samples: dict[str, Any]) -> None:
    await _llm_metrics(lab, samples)
    await _cycle_and_gate_metrics(lab, samples)
    await _phase_and_budget_metrics(lab, samples)
    # Temporal's own runtime metrics share the port, and every series names the pools.
    assert total(samples, "temporal_workflow_completed_total") >= 3
    assert total(samples, "temporal_activity_execution_latency_count") >= 10
    assert "temporal_request_total" in samples
    pools = {labels.get("pool") for series in samples.values() for labels, _ in series}
    assert pools == {ALL_POOLS}
    _dashboard_queries_find_their_series(samples)


async def _llm_metrics(lab: Any, samples: dict[str, Any]) -> None:
    """LLM calls, tokens and cost by role, as agent_actions has them."""
    by_role = await rows(
        lab,
        "SELECT role, provider, model, count(*) AS calls, sum(input_tokens) AS input,"
        " sum(output_tokens) AS output, sum(cost_usd) AS cost FROM agent_actions"
        " GROUP BY role, provider, model",
    )
    assert {r["role"] for r in by_role} == {"designer", "assessor"}
    for row in by_role:
        key = {"role": row["role"], "provider": row["provider"], "model": row["model"]}
        assert total(samples, "stratlab_llm_calls_total", **key, outcome="ok") == row["calls"]
        assert total(samples, "stratlab_llm_tokens_total", **key, direction="input") == row["input"]
        assert (
            total(samples, "stratlab_llm_tokens_total", **key, direction="output") == row["output"]
        )
        assert total(samples, "stratlab_llm_cost_usd_sum", **key) == pytest.approx(
            float(row["cost"]), rel=1e-9
        )
        assert total(samples, "stratlab_llm_latency_seconds_count", **key) == row["calls"]
    calls = sum(r["calls"] for r in by_role)
    assert total(samples, "stratlab_llm_calls_total") == calls


async def _cycle_and_gate_metrics(lab: Any, samples: dict[str, Any]) -> None:
    """Cycle outcomes as agent_sessions has them; gate results and failed checks as
    stored with the training runs and backtests."""
    outcomes = await rows(lab, "SELECT outcome, count(*) AS n FROM agent_sessions GROUP BY 1")
    assert {r["outcome"]: r["n"] for r in outcomes} == {
        "success": 1,
        "failed_backtest_gate": 1,
        "failed_design": 1,
    }
    for row in outcomes:
        assert total(samples, "stratlab_cycles_total", outcome=row["outcome"]) == row["n"]

    stored = [r["gate"] for r in await rows(lab, "SELECT gate FROM training_runs")]
    stored += [r["gate"] for r in await rows(lab, "SELECT gate FROM backtests")]
    results = Counter((g["gate"], "passed" if g["passed"] else "failed") for g in stored)
    assert results[("backtest", "failed")] == 1
    for (gate, result), n in results.items():
        assert total(samples, "stratlab_gate_results_total", gate=gate, result=result) == n
    assert total(samples, "stratlab_gate_results_total") == len(stored)
    failures = Counter(
        (g["gate"], c["name"]) for g in stored for c in g["checks"] if not c["passed"]
    )
    assert failures[("backtest", "sharpe")] == 1
    for (gate, check), n in failures.items():
        assert total(samples, "stratlab_gate_check_failures_total", gate=gate, check=check) == n


async def _phase_and_budget_metrics(lab: Any, samples: dict[str, Any]) -> None:
    """One phase duration per phase row the activities wrote, nothing running now, and
    the budget gauges as today's research row after the last call."""
    phases = await rows(
        lab,
        "SELECT phase, status, count(*) AS n FROM session_phases"
        " WHERE phase <> 'budget' GROUP BY 1, 2",
    )
    assert {(r["phase"], r["status"]) for r in phases} >= {("design", "failed"), ("assess", "ok")}
    for row in phases:
        count = total(
            samples,
            "stratlab_phase_duration_seconds_count",
            phase=row["phase"],
            status=row["status"],
        )
        assert count == row["n"], row
    assert all(v == 0 for _, v in samples["stratlab_cycle_phase_active"])

    (budget,) = await rows(
        lab,
        "SELECT cap_usd, spent_usd, reserved_usd FROM agent_budget"
        " WHERE scope = 'research' AND day = %(d)s",
        d=datetime.now(UTC).date(),
    )
    remaining = float(budget["cap_usd"] - budget["spent_usd"] - budget["reserved_usd"])
    assert float(budget["spent_usd"]) > 0
    assert total(samples, "stratlab_budget_remaining_usd", scope="research") == pytest.approx(
        remaining
    )
    assert total(samples, "stratlab_budget_spent_usd", scope="research") == pytest.approx(
        float(budget["spent_usd"])
    )


def _dashboard_queries_find_their_series(samples: dict[str, Any]) -> None:
    """The Temporal series the Grafana dashboard queries exist, with the labels it groups by."""
    for query in dashboard_queries():
        for name in SERIES.findall(query):
            if not name.startswith("temporal_"):
                continue  # lab series: checked against their definitions (unit test)
            assert name in samples, (name, query)
            labels = set().union(*(set(found) for found, _ in samples[name]))
            for group in re.findall(r"by \(([^)]*)\)", query):
                wanted = {g.strip() for g in group.split(",")} - {"le"}
                assert wanted <= labels, (name, wanted - labels)


def _spans_were_flushed_on_shutdown(
    otlp: OtlpCollector, sessions: list[dict[str, Any]], actions: list[dict[str, Any]]
) -> None:
    spans = otlp.spans()
    assert spans, "no span reached the OTLP collector"
    assert {s["resource"]["service.name"] for s in spans} == {"stratlab"}
    assert {s["resource"]["stratlab.pool"] for s in spans} == {ALL_POOLS}
    for session in sessions:
        (run,) = [
            s
            for s in spans
            if s["name"] == "RunWorkflow:ResearchCycleWorkflow"
            and s["attrs"]["temporalWorkflowID"] == session["workflow_id"]
        ]
        # Started by an untraced client, the run's trace comes from its ids (replay-safe).
        traceparent = run_trace_context(session["workflow_id"], session["run_id"])["traceparent"]
        assert traceparent == f"00-{run['trace_id']}-{run['parent']}-01"
        in_trace = [s for s in spans if s["trace_id"] == run["trace_id"]]
        activities = {s["name"] for s in in_trace if s["name"].startswith("RunActivity:")}
        assert {"RunActivity:start_session", "RunActivity:design_strategy"} <= activities
        assert "RunActivity:finish_session" in activities
    llm = [s for s in spans if s["name"].startswith("chat ")]
    assert sorted(s["attrs"]["stratlab.action_id"] for s in llm) == sorted(
        a["action_id"] for a in actions
    )
    for span in llm:
        (action,) = [a for a in actions if a["action_id"] == span["attrs"]["stratlab.action_id"]]
        assert span["attrs"]["gen_ai.usage.output_tokens"] == action["output_tokens"]
        assert span["attrs"]["stratlab.prompt_id"] == action["prompt_id"]
    gates = [s["attrs"] for s in spans if s["name"] == "gate backtest"]
    assert sorted(g["stratlab.gate.passed"] for g in gates) == [False, True]
    assert ["sharpe"] in [g["stratlab.gate.failed_checks"] for g in gates]


def _logs_carry_ids_and_no_secret(
    log: Path, sessions: list[dict[str, Any]], actions: list[dict[str, Any]]
) -> None:
    text = log.read_text()
    assert FAKE_KEY not in text
    lines = [json.loads(line) for line in text.splitlines() if line.strip()]
    runs = {s["workflow_id"]: s["run_id"] for s in sessions}

    calls = [line for line in lines if line["event"] == "llm call"]
    assert len(calls) == len(actions)
    for line in calls:
        (action,) = [a for a in actions if a["action_id"] == line["action_id"]]
        assert line["workflow_id"] == f"research-{action['session_id']}"
        assert line["run_id"] == runs[line["workflow_id"]]
        assert (
            line["activity"]
            == {"designer": "design_strategy", "assessor": "assess_strategy"}[action["role"]]
        )
        assert line["session_id"] == action["session_id"]
        assert line["prompt_id"] == action["prompt_id"]
        assert line["input_tokens"] == action["input_tokens"]
        assert len(line["trace_id"]) == 32

    # The workflow's warning about the failed design: its ids are keys, the key is gone.
    (warning,) = [
        line
        for line in lines
        if line.get("workflow_type") == "ResearchCycleWorkflow"
        and "ended failed_design" in line["event"]
    ]
    assert warning["run_id"] == runs[warning["workflow_id"]]
    assert "[redacted]" in warning["event"] and "({'attempt'" not in warning["event"]
    # Temporal's own report of the failed activity (with its traceback) was scrubbed too.
    failed = [line for line in lines if "leak-" in json.dumps(line)]
    assert len(failed) >= 2 and all("[redacted]" in json.dumps(line) for line in failed)
