"""Log lines: secrets redacted on every path, Temporal ids as keys, trace ids when traced."""

from __future__ import annotations

import ast
import dataclasses
import io
import json
import logging
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog
from opentelemetry.sdk.trace import TracerProvider
from temporalio import activity, workflow
from temporalio.testing import ActivityEnvironment

from stratlab.config import Settings
from stratlab.telemetry import configure_logging, get_logger
from stratlab.telemetry.log_processors import REDACTED, Redactor

ANTHROPIC = "sk-ant-api03-unit-" + "a1b2c3" * 5
OPENAI = "sk-proj-unit-" + "d4e5f6" * 5
LANGFUSE = "sk-lf-unit-" + "0a9b8c" * 4


@pytest.fixture(autouse=True)
def restore_logging() -> Iterator[None]:
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    on_message = workflow.logger.workflow_info_on_message, activity.logger.activity_info_on_message
    yield
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.reset_defaults()
    workflow.logger.workflow_info_on_message, activity.logger.activity_info_on_message = on_message


def secret_settings(fmt: str = "json") -> Settings:
    return Settings(
        log_format=fmt,
        anthropic_api_key=ANTHROPIC,
        openai_api_key=OPENAI,
        langfuse_public_key="pk-lf-public",
        langfuse_secret_key=LANGFUSE,
    )


def leak_everywhere(cfg: Settings) -> None:
    """Every way a key could reach a line: message, values, nesting, key names,
    tracebacks (structlog and stdlib), stdlib %-args, a dump of the settings."""
    log = get_logger("stratlab.test")
    log.info(f"calling with {ANTHROPIC}", header=f"Bearer {OPENAI}", input_tokens=12)
    log.info("nested", payload={"deep": [LANGFUSE, {"x": ANTHROPIC}], "tuple": (OPENAI,)})
    log.info("named", api_key="not-even-a-real-one", Authorization="Basic Zm9vOmJhcg==")
    log.info("settings", settings=cfg.model_dump(mode="json"))
    try:
        raise RuntimeError(f"provider rejected key {ANTHROPIC}")
    except RuntimeError:
        log.exception("structlog traceback")
        logging.getLogger("stratlab.other").error("stdlib traceback", exc_info=True)
    logging.getLogger("openai").warning("headers %s", {"x-api-key": OPENAI, "n": 1})


@pytest.mark.parametrize("fmt", ["json", "console"])
def test_no_secret_reaches_a_line_whatever_path_it_takes(fmt: str) -> None:
    out = io.StringIO()
    cfg = secret_settings(fmt)
    configure_logging(cfg, stream=out)
    leak_everywhere(cfg)
    text = out.getvalue()
    for secret in (ANTHROPIC, OPENAI, LANGFUSE, "Zm9vOmJhcg==", "not-even-a-real-one"):
        assert secret not in text
    assert text.count(REDACTED) >= 10
    assert "pk-lf-public" in text  # a public key is not a secret
    assert "provider rejected key" in text and "Traceback" in text
    if fmt == "json":
        lines = [json.loads(line) for line in text.splitlines()]
        assert lines[0]["input_tokens"] == 12  # token counts are not credentials
        assert lines[2]["api_key"] == REDACTED and lines[2]["Authorization"] == REDACTED
        assert lines[3]["settings"]["anthropic_api_key"] == REDACTED


def test_the_redactor_replaces_a_longer_secret_whole_and_ignores_empty_ones() -> None:
    redact = Redactor(["abcd", "abcdefgh", "", "xy"])
    event = redact(None, "info", {"event": "abcdefgh abcd xy", "n": 3, "none": None})
    assert event == {"event": f"{REDACTED} {REDACTED} xy", "n": 3, "none": None}


async def test_activity_logger_lines_carry_the_activity_ids_as_keys() -> None:
    out = io.StringIO()
    configure_logging(Settings(log_format="json"), stream=out)

    @activity.defn(name="say_hello")
    async def say_hello() -> None:
        activity.logger.info("hello from %s", "an activity")

    env = ActivityEnvironment()
    env.info = dataclasses.replace(
        env.info,
        activity_type="say_hello",
        activity_id="7",
        workflow_id="research-s1",
        workflow_run_id="run-1",
        attempt=2,
    )
    await env.run(say_hello)
    (line,) = [json.loads(x) for x in out.getvalue().splitlines()]
    assert line["event"] == "hello from an activity"  # no info dict appended
    assert (line["workflow_id"], line["run_id"]) == ("research-s1", "run-1")
    assert (line["activity"], line["activity_id"], line["attempt"]) == ("say_hello", "7", 2)


def test_a_line_written_inside_a_span_carries_its_trace_and_span_ids() -> None:
    out = io.StringIO()
    configure_logging(Settings(log_format="json"), stream=out)
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        get_logger("stratlab.test").info("inside")
    get_logger("stratlab.test").info("outside")
    inside, outside = (json.loads(x) for x in out.getvalue().splitlines())
    context = span.get_span_context()
    assert inside["trace_id"] == format(context.trace_id, "032x")
    assert inside["span_id"] == format(context.span_id, "016x")
    assert "trace_id" not in outside


def test_workflow_modules_import_no_telemetry_library() -> None:
    """Workflows log with ``workflow.logger`` and are traced by Temporal's interceptor."""
    workflows = Path(__file__).resolve().parents[2] / "workflows"
    banned = ("opentelemetry", "structlog", "prometheus_client", "stratlab.telemetry")
    for module in workflows.glob("*.py"):
        for node in ast.walk(ast.parse(module.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            assert not [n for n in names if n.startswith(banned)], (module.name, names)
