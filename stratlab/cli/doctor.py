"""``stratlab doctor``: which provider and model each role will use and whether it answers,
the price table and response cache, the observability sinks, Temporal and Postgres.

Nothing secret is ever shown: keys are reported as set or not, URLs lose their user,
password and query, and every text is scrubbed of every configured secret before it is
printed. The exit code is 1 when something configured is broken; what is simply not
configured (no Langfuse, the embedded Postgres) is not a failure.
"""

from __future__ import annotations

import asyncio
from dataclasses import asdict, dataclass, field
from typing import Any
from urllib.parse import urlsplit

from psycopg.conninfo import conninfo_to_dict
from rich.markup import escape
from rich.table import Table

from stratlab.cli._common import console, print_json
from stratlab.cli._probes import (
    Probe,
    probe_http_get,
    probe_postgres,
    probe_provider,
    probe_tcp,
    probe_temporal,
    safe_url,
)
from stratlab.config import Settings
from stratlab.llm.base import OFFLINE_MODEL
from stratlab.llm.pricing import PRICES, load_price_table, matching_row, price_for
from stratlab.llm.roles import RoleRoute, role_plan


@dataclass
class RoleRow:
    role: str
    provider: str
    model: str
    from_role_models: bool
    key_set: bool | None
    endpoint: str | None
    answers: str
    price: dict[str, Any] | None
    broken: bool
    note: str | None = None


@dataclass
class Check:
    name: str
    status: str
    detail: str = ""
    broken: bool = False


@dataclass
class Report:
    roles: list[RoleRow] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not any(r.broken for r in self.roles) and not any(c.broken for c in self.checks)

    def as_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "roles": [asdict(r) for r in self.roles],
            "checks": [asdict(c) for c in self.checks],
        }


async def diagnose(settings: Settings, *, timeout: float) -> Report:
    """Every check, the slow ones concurrently; never raises for a broken service."""
    report = Report()
    try:
        plan = role_plan(settings)
    except ValueError as err:
        plan = []
        report.checks.append(Check("llm roles", "invalid", str(err), broken=True))
    providers = sorted({r.provider for r in plan})
    answered, (langfuse, otlp, temporal, postgres) = await asyncio.gather(
        asyncio.gather(*(probe_provider(name, settings, timeout) for name in providers)),
        asyncio.gather(
            _langfuse(settings, timeout),
            _otlp(settings, timeout),
            _temporal(settings, timeout),
            _postgres(settings, timeout),
        ),
    )
    answers = dict(zip(providers, answered, strict=True))
    report.roles = [_role_row(r, answers[r.provider], settings) for r in plan]
    report.checks += [
        _price_table(settings),
        _cache(settings),
        langfuse,
        otlp,
        _metrics(settings),
        temporal,
        postgres,
    ]
    return report


def _role_row(route: RoleRoute, answer: Probe, settings: Settings) -> RoleRow:
    try:
        price = price_for(route.model, settings=settings)
        priced: dict[str, Any] | None = {
            "input_usd_per_mtok": price.input_usd_per_mtok,
            "output_usd_per_mtok": price.output_usd_per_mtok,
            "source": _price_source(route.model, settings),
        }
    except ValueError:  # a broken price table is reported as its own check
        priced = None
    return RoleRow(
        role=route.role,
        provider=route.provider,
        model=route.model,
        from_role_models=route.from_role_models,
        key_set=route.key_set,
        endpoint=safe_url(route.endpoint) if route.endpoint else None,
        answers=answer.text if route.problem is None else route.problem,
        price=priced,
        broken=not (route.configured and answer.ok),
        note=route.note,
    )


def _price_source(model: str, settings: Settings) -> str:
    """Where a model's price comes from, so an over-priced local model is explained."""
    if model == OFFLINE_MODEL:
        return "offline shadow price"
    table = load_price_table(settings)
    row = matching_row(model, table)
    if row is None:
        return "unknown model: the most expensive row"
    return "built in" if PRICES.get(row) == table[row] else "STRATLAB_PRICES"


def _price_table(settings: Settings) -> Check:
    if settings.price_table is None:
        return Check("price table", "built in", f"{len(PRICES)} models")
    try:
        table = load_price_table(settings)
    except ValueError as err:
        return Check("price table", "invalid", str(err), broken=True)
    return Check("price table", "loaded", f"{settings.price_table}: {len(table)} models priced")


def _cache(settings: Settings) -> Check:
    if settings.llm_cache:
        return Check("response cache", "on", "identical calls answered from Postgres, at $0")
    return Check("response cache", "off", "STRATLAB_LLM_CACHE=1 turns it on")


def _metrics(settings: Settings) -> Check:
    if settings.metrics_port is None:
        return Check("prometheus", "off", "STRATLAB_METRICS_PORT or --metrics-port")
    return Check("prometheus", "on", f"each worker serves /metrics on :{settings.metrics_port}")


async def _langfuse(settings: Settings, timeout: float) -> Check:
    public, secret = bool(settings.langfuse_public_key), bool(settings.langfuse_secret_key)
    if not public and not secret:
        return Check("langfuse", "off", "LANGFUSE_PUBLIC_KEY / LANGFUSE_SECRET_KEY")
    base = settings.langfuse_base_url.rstrip("/")
    if not (public and secret):
        missing = "LANGFUSE_SECRET_KEY" if public else "LANGFUSE_PUBLIC_KEY"
        return Check("langfuse", f"{missing} not set", safe_url(base), broken=True)
    probe = await probe_http_get(f"{base}/api/public/health", timeout)
    return Check("langfuse", probe.text, safe_url(base), broken=not probe.ok)


async def _otlp(settings: Settings, timeout: float) -> Check:
    if not settings.otel_endpoint:
        return Check("otlp traces", "off", "OTEL_EXPORTER_OTLP_ENDPOINT")
    shown = safe_url(settings.otel_endpoint)
    try:
        parts = urlsplit(settings.otel_endpoint)
        host, port = parts.hostname, parts.port or (443 if parts.scheme == "https" else 4318)
    except ValueError as err:
        return Check("otlp traces", f"invalid endpoint: {err}", shown, broken=True)
    if not host:
        return Check("otlp traces", "invalid endpoint: no host", shown, broken=True)
    probe = await probe_tcp(host, port, timeout)
    status = probe.text.replace("ok", "reachable", 1) if probe.ok else probe.text
    return Check("otlp traces", status, shown, broken=not probe.ok)


async def _temporal(settings: Settings, timeout: float) -> Check:
    if settings.temporal_address is None:
        local = f"127.0.0.1:{settings.temporal_port}"
        probe = await probe_tcp("127.0.0.1", settings.temporal_port, timeout)
        state = "running" if probe.ok else "not running (`stratlab dev` starts it)"
        return Check("temporal", f"embedded dev server: {state}", local)
    address = settings.temporal_address
    probe = await probe_temporal(address, settings.temporal_namespace, timeout)
    detail = f"{address}, namespace {settings.temporal_namespace}"
    return Check("temporal", probe.text, detail, broken=not probe.ok)


async def _postgres(settings: Settings, timeout: float) -> Check:
    if settings.database_url is None:
        pgdata = settings.pgdata_dir
        state = "initialised" if (pgdata / "PG_VERSION").exists() else "not created yet"
        return Check("postgres", f"embedded pgserver: {state}", str(pgdata))
    try:
        info = conninfo_to_dict(settings.database_url)
    except Exception:  # a malformed URL: say so without echoing it (it may hold a password)
        return Check("postgres", "invalid DATABASE_URL", "", broken=True)
    host, port = info.get("host") or "localhost", info.get("port") or "5432"
    where = f"{host}:{port}/{info.get('dbname') or info.get('user') or ''}"
    probe = await probe_postgres(settings.database_url, timeout)
    return Check("postgres", probe.text, where, broken=not probe.ok)


def secrets_of(settings: Settings) -> list[str]:
    """Every value that must never be printed, the database password included."""
    values = [*settings.secrets()]
    if settings.langfuse_public_key:
        values.append(settings.langfuse_public_key)
    if settings.database_url:
        try:
            password = conninfo_to_dict(settings.database_url).get("password")
        except Exception:
            password = None
        if password:
            values.append(str(password))
    return sorted(values, key=len, reverse=True)


def scrub(value: Any, secrets: list[str]) -> Any:
    """``value`` (JSON-like) with every secret replaced by ``***``."""
    if isinstance(value, str):
        for secret in secrets:
            value = value.replace(secret, "***")
        return value
    if isinstance(value, dict):
        return {k: scrub(v, secrets) for k, v in value.items()}
    if isinstance(value, list):
        return [scrub(v, secrets) for v in value]
    return value


def render(report: dict[str, Any]) -> None:
    if report["roles"]:
        console.print(_roles_table(report["roles"]))
        console.print(_providers_table(report["roles"]))
    checks = Table(title="Lab", title_justify="left")
    checks.add_column("check", no_wrap=True)
    checks.add_column("status", overflow="fold")
    checks.add_column("detail", overflow="fold")
    for check in report["checks"]:
        status = _marked(check["status"], broken=check["broken"])
        checks.add_row(escape(check["name"]), status, escape(check["detail"]))
    console.print(checks)
    verdict = "[green]ok[/green]" if report["ok"] else "[red]something configured is broken[/red]"
    console.print(f"doctor: {verdict}")


def _roles_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="LLM roles", title_justify="left")
    table.add_column("role", no_wrap=True)
    table.add_column("provider", no_wrap=True)
    table.add_column("model", overflow="fold")
    table.add_column("$/Mtok in / out", no_wrap=True)
    for row in rows:
        model = escape(row["model"])
        if row["note"]:
            model += f"\n[dim]{escape(row['note'])}[/dim]"
        origin = "STRATLAB_ROLE_MODELS" if row["from_role_models"] else "default"
        price = row["price"]
        table.add_row(
            escape(row["role"]),
            f"{escape(row['provider'])} [dim]({origin})[/dim]",
            model,
            "—" if price is None else _price_text(price),
        )
    return table


def _providers_table(rows: list[dict[str, Any]]) -> Table:
    table = Table(title="LLM providers", title_justify="left")
    table.add_column("provider", no_wrap=True)
    table.add_column("key", no_wrap=True)
    table.add_column("endpoint", overflow="fold")
    table.add_column("answers", overflow="fold")
    seen: set[str] = set()
    for row in rows:
        if row["provider"] in seen:
            continue
        seen.add(row["provider"])
        key = {True: "set", False: "not set", None: "not needed"}[row["key_set"]]
        table.add_row(
            escape(row["provider"]),
            key,
            escape(row["endpoint"] or "—"),
            _marked(row["answers"], broken=row["broken"]),
        )
    return table


def _marked(text: str, *, broken: bool) -> str:
    return f"[red]{escape(text)}[/red]" if broken else escape(text)


def _price_text(price: dict[str, Any]) -> str:
    text = f"{price['input_usd_per_mtok']:g} / {price['output_usd_per_mtok']:g}"
    return f"{text} [dim]({escape(price['source'])})[/dim]"


async def doctor(settings: Settings, *, as_json: bool, timeout: float) -> bool:
    """Print the report; ``True`` when nothing configured is broken."""
    report = await diagnose(settings, timeout=timeout)
    body = scrub(report.as_json(), secrets_of(settings))
    if as_json:
        print_json(body)
    else:
        render(body)
    return bool(body["ok"])
