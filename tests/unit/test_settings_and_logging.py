"""Settings come from the environment and are all documented; logs are one JSON format."""

from __future__ import annotations

import io
import json
import logging
import re
from pathlib import Path

import pydantic
import pytest

from stratlab.config import Settings, _env_name
from stratlab.market.splits import split_by_time
from stratlab.market.synthetic import synthetic_ohlcv
from stratlab.research.designer import summarise_train_split
from stratlab.telemetry import configure_logging, get_logger

README = (Path(__file__).resolve().parents[2] / "README.md").read_text()


def env_vars() -> list[str]:
    names = [_env_name(f.description) for f in Settings.model_fields.values()]
    return [n for n in names if n]


def test_every_environment_variable_is_in_the_readme() -> None:
    missing = [name for name in env_vars() if f"`{name}`" not in README]
    assert missing == []


def test_environment_overrides_defaults_and_bad_values_are_named() -> None:
    cfg = Settings.from_env({"STRATLAB_RESEARCH_BUDGET": "2.5", "DATABASE_URL": "postgresql://x"})
    assert cfg.research_daily_budget_usd == 2.5 and cfg.database_url == "postgresql://x"
    assert Settings.from_env({}).research_daily_budget_usd == 5.0
    with pytest.raises(pydantic.ValidationError, match="research_daily_budget_usd"):
        Settings.from_env({"STRATLAB_RESEARCH_BUDGET": "lots"})


def test_task_queues_share_the_lab_prefix() -> None:
    cfg = Settings(task_queue_prefix="team-a-")
    assert cfg.task_queue("llm") == "team-a-stratlab-llm"
    with pytest.raises(ValueError, match="unknown pool"):
        cfg.task_queue("gpu")


def test_library_loggers_and_structlog_write_the_same_json() -> None:
    out = io.StringIO()
    configure_logging(Settings(log_format="json"), stream=out)
    logging.getLogger("temporalio.worker").warning("worker says %s", "hi")
    get_logger("stratlab.test").info("lab says", session_id="s1")
    lines = [json.loads(line) for line in out.getvalue().splitlines()]
    assert [line["event"] for line in lines] == ["worker says hi", "lab says"]
    assert lines[0]["logger"] == "temporalio.worker" and lines[1]["session_id"] == "s1"
    assert all("timestamp" in line and "level" in line for line in lines)


def test_the_designer_never_sees_the_test_split() -> None:
    frame = synthetic_ohlcv(bars=1000, seed=4)
    before = summarise_train_split(split_by_time(frame))
    poisoned = frame.copy()
    poisoned.iloc[800:] = poisoned.iloc[800:] * 7.0  # only validation/test bars change
    assert summarise_train_split(split_by_time(poisoned)) == before
    assert re.search(r"\d+ daily bars from \d{4}-\d\d-\d\d", before)
