"""The doctor's report without a running lab: what counts as broken, and scrubbing."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from stratlab.cli._probes import describe_error, safe_url
from stratlab.cli.doctor import diagnose, scrub, secrets_of
from stratlab.config import Settings


def unconfigured(tmp_path: Path, **fields: Any) -> Settings:
    # No Temporal address or database: both are the embedded ones, reported, never broken.
    return Settings(home=tmp_path, temporal_port=1, **fields)


async def test_nothing_configured_is_nothing_broken(tmp_path: Path) -> None:
    report = await diagnose(unconfigured(tmp_path), timeout=2)
    assert report.ok, report.as_json()
    found = {c.name: c for c in report.checks}
    assert found["temporal"].status.startswith("embedded dev server: not running")
    assert found["postgres"].status == "embedded pgserver: not created yet"


async def test_a_bad_role_list_is_broken_and_named(tmp_path: Path) -> None:
    report = await diagnose(unconfigured(tmp_path, role_models="painter=gpt-4o"), timeout=2)
    assert not report.ok and report.roles == []
    (roles,) = [c for c in report.checks if c.name == "llm roles"]
    assert roles.broken and "painter=gpt-4o" in roles.detail


async def test_a_bad_price_table_is_broken_and_roles_show_no_price(tmp_path: Path) -> None:
    table = tmp_path / "prices.toml"
    table.write_text("[models.x]\ninput = -1\noutput = 0\n")
    report = await diagnose(
        unconfigured(tmp_path, price_table=table, role_models="designer=openai:x",
                     openai_base_url="http://127.0.0.1:1/v1"),
        timeout=2,
    )  # fmt: skip
    (prices,) = [c for c in report.checks if c.name == "price table"]
    assert prices.broken and str(table) in prices.detail and ">= 0" in prices.detail
    designer = next(r for r in report.roles if r.role == "designer")
    assert designer.price is None and designer.broken  # nothing listens on port 1 either
    assert not report.ok


async def test_half_a_langfuse_configuration_is_broken(tmp_path: Path) -> None:
    report = await diagnose(unconfigured(tmp_path, langfuse_public_key="pk-lf-1"), timeout=2)
    (langfuse,) = [c for c in report.checks if c.name == "langfuse"]
    assert langfuse.broken and "LANGFUSE_SECRET_KEY" in langfuse.status
    assert "pk-lf-1" not in str(report.as_json())


def test_scrub_removes_every_secret_including_the_database_password() -> None:
    settings = Settings(
        openai_api_key="sk-aaa-111",
        anthropic_api_key="sk-ant-bbb",
        langfuse_secret_key="sk-lf-ccc",
        database_url="postgresql://lab:pg-pass-ddd@db.internal:5432/stratlab",
    )
    secrets = secrets_of(settings)
    assert {"sk-aaa-111", "sk-ant-bbb", "sk-lf-ccc", "pg-pass-ddd"} <= set(secrets)
    dirty = {"a": ["key sk-aaa-111", {"b": "pw pg-pass-ddd"}], "n": 3, "c": "sk-lf-ccc!"}
    assert scrub(dirty, secrets) == {"a": ["key ***", {"b": "pw ***"}], "n": 3, "c": "***!"}


def test_urls_lose_credentials_and_queries() -> None:
    assert (
        safe_url("https://user:pw@example.com:8443/v1?key=sk-1#x") == "https://example.com:8443/v1"
    )
    assert safe_url("http://127.0.0.1:4318") == "http://127.0.0.1:4318"


def test_errors_are_one_line_and_carry_no_body() -> None:
    class StatusError(Exception):
        status_code = 401

    assert describe_error(StatusError("Incorrect API key provided: sk-aaa-111")) == (
        "HTTP 401 (the key was rejected)"
    )
    try:
        try:
            raise OSError("Connection refused\non two lines")
        except OSError as inner:
            raise RuntimeError("request failed") from inner
    except RuntimeError as outer:
        assert describe_error(outer) == "RuntimeError: Connection refused on two lines"
