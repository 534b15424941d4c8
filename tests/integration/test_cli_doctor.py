"""``stratlab doctor`` as a user runs it: a real process against the test's Temporal and
Postgres, and LLM endpoints that answer (the fake server) or do not (a closed port).
No secret may appear in anything it prints."""

from __future__ import annotations

import json
import socket
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from temporalio.client import Client

from tests.fixtures.cli import run_cli
from tests.fixtures.fake_llm_server import FakeLlmServer, FakeReply
from tests.fixtures.temporal import lab_settings

OPENAI_KEY = "sk-doctor-openai-4f9c2e7b1d"
ANTHROPIC_KEY = "sk-ant-doctor-8a3e6c0f5b"
LANGFUSE_SECRET = "sk-lf-doctor-2b7d9e1a4c"


@pytest.fixture
def lab(database_url: str, tmp_path: Path) -> Any:
    """What ``run_cli`` reads: the settings of a lab, without running its workers."""
    return SimpleNamespace(settings=lab_settings(database_url, tmp_path))


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def checks(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["checks"]}


async def test_default_offline_lab_is_healthy(lab: Any, temporal_client: Client) -> None:
    done = await run_cli(lab, temporal_client, "doctor", "--json")
    assert done.returncode == 0, (done.stdout, done.stderr)
    report = json.loads(done.stdout)
    assert report["ok"] is True
    assert {(r["provider"], r["model"], r["key_set"]) for r in report["roles"]} == {
        ("offline", "offline-deterministic-v1", None)
    }
    assert {r["answers"] for r in report["roles"]} == {"built in, deterministic stand-in"}
    assert {r["role"] for r in report["roles"]} >= {"designer", "assessor", "mutator", "sanity"}
    assert report["roles"][0]["price"] == {
        "input_usd_per_mtok": 3.0,
        "output_usd_per_mtok": 15.0,
        "source": "offline shadow price",
    }
    found = checks(report)
    assert found["temporal"]["status"].startswith("ok (") and not found["temporal"]["broken"]
    assert found["postgres"]["status"].startswith("ok (")
    assert found["response cache"]["status"] == "off"
    assert found["langfuse"]["status"] == "off" and found["otlp traces"]["status"] == "off"

    table = await run_cli(lab, temporal_client, "doctor")
    assert table.returncode == 0, table.stderr
    assert "offline-deterministic-v1" in table.stdout and "doctor: ok" in table.stdout


async def test_a_dead_endpoint_fails_and_no_secret_is_printed(
    lab: Any, temporal_client: Client, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    dead = closed_port()
    prices = tmp_path / "prices.toml"
    prices.write_text('[models."gpt-4o-mini"]\ninput = 0.1\noutput = 0.4\n')
    monkeypatch.setenv("STRATLAB_PRICES", str(prices))
    with FakeLlmServer() as fake:
        monkeypatch.setenv("STRATLAB_LLM_PROVIDER", "openai")
        monkeypatch.setenv("OPENAI_BASE_URL", fake.base_url)
        monkeypatch.setenv("OPENAI_API_KEY", OPENAI_KEY)
        monkeypatch.setenv("ANTHROPIC_API_KEY", ANTHROPIC_KEY)
        monkeypatch.setenv("ANTHROPIC_BASE_URL", f"http://127.0.0.1:{dead}")
        monkeypatch.setenv("STRATLAB_ROLE_MODELS", "designer=anthropic:claude-sonnet-4-5")
        monkeypatch.setenv("LANGFUSE_PUBLIC_KEY", "pk-lf-doctor")
        monkeypatch.setenv("LANGFUSE_SECRET_KEY", LANGFUSE_SECRET)
        monkeypatch.setenv("LANGFUSE_BASE_URL", f"http://127.0.0.1:{dead}")
        monkeypatch.setenv("STRATLAB_LLM_CACHE", "1")

        done = await run_cli(lab, temporal_client, "doctor", "--json", "--timeout", "3")
        # The models endpoint turns hostile: a 401 whose body echoes the key back.
        echo = {"error": {"message": f"Incorrect API key provided: {OPENAI_KEY}"}}
        fake.script(FakeReply(status=401, body=echo), role="models")
        table = await run_cli(lab, temporal_client, "doctor", "--timeout", "3")
        listings = [r for r in fake.requests if r.method == "GET"]

    for output in (done, table):
        assert output.returncode == 1, (output.stdout, output.stderr)
        printed = output.stdout + output.stderr
        for secret in (OPENAI_KEY, ANTHROPIC_KEY, LANGFUSE_SECRET, "pk-lf-doctor"):
            assert secret not in printed
            assert secret[-8:] not in printed  # not even the tail some APIs echo
    # The probe really used the key: it reached the endpoint authenticated.
    assert [r.headers.get("authorization") for r in listings] == [f"Bearer {OPENAI_KEY}"] * 2

    report = json.loads(done.stdout)
    roles = {r["role"]: r for r in report["roles"]}
    designer, assessor = roles["designer"], roles["assessor"]
    assert (designer["provider"], designer["key_set"], designer["broken"]) == (
        "anthropic",
        True,
        True,
    )
    assert "onnect" in designer["answers"]  # a connection error, in one line
    assert designer["endpoint"] == f"http://127.0.0.1:{dead}"
    assert (assessor["provider"], assessor["model"], assessor["broken"]) == (
        "openai",
        "gpt-4o-mini",
        False,
    )
    assert assessor["answers"].startswith("ok (") and "2 models" in assessor["answers"]
    assert assessor["price"] == {
        "input_usd_per_mtok": 0.1,
        "output_usd_per_mtok": 0.4,
        "source": "STRATLAB_PRICES",
    }
    found = checks(report)
    assert found["langfuse"]["broken"] and found["response cache"]["status"] == "on"
    assert not found["temporal"]["broken"] and not found["postgres"]["broken"]
    assert "HTTP 401" in table.stdout and "something configured is broken" in table.stdout
