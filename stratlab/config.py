"""One frozen Settings object, read from the environment once and passed explicitly.

Every knob has a default so a fresh machine needs no configuration at all. Nothing here
is a mutable global: code that needs settings receives a ``Settings`` instance.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import quote

from pydantic import BaseModel, ConfigDict, Field

from stratlab.models.research import (
    BacktestGateThresholds,
    StatisticalGateThresholds,
    TrainingGateThresholds,
)

if TYPE_CHECKING:
    from stratlab.sandbox.limits import SandboxLimits


class Settings(BaseModel):
    """Everything the lab can be configured with. Field docs name the environment variable."""

    model_config = ConfigDict(frozen=True)

    home: Path = Field(Path(".stratlab"), description="STRATLAB_HOME: local state directory")
    database_url: str | None = Field(
        None, description="DATABASE_URL: Postgres; unset = embedded pgserver under home"
    )
    temporal_address: str | None = Field(
        None, description="TEMPORAL_ADDRESS: host:port; unset = embedded dev server"
    )
    temporal_namespace: str = Field("default", description="TEMPORAL_NAMESPACE")
    temporal_api_key: str | None = Field(
        None, description="TEMPORAL_API_KEY: API key (Temporal Cloud); turns TLS on", repr=False
    )
    temporal_tls: bool | None = Field(
        None, description="TEMPORAL_TLS: TLS to the frontend (unset: on with an API key or cert)"
    )
    temporal_tls_cert: Path | None = Field(
        None, description="TEMPORAL_TLS_CLIENT_CERT_PATH: client certificate (PEM) for mTLS"
    )
    temporal_tls_key: Path | None = Field(
        None, description="TEMPORAL_TLS_CLIENT_KEY_PATH: its private key (PEM)"
    )
    temporal_ui_url: str | None = Field(
        None,
        description="STRATLAB_TEMPORAL_UI_URL: base URL of a cluster's web UI; unset = the "
        "embedded UI, http://localhost:<STRATLAB_TEMPORAL_UI_PORT>",
    )
    temporal_port: int = Field(7233, description="STRATLAB_TEMPORAL_PORT: embedded server port")
    temporal_ui_port: int = Field(
        8233, description="STRATLAB_TEMPORAL_UI_PORT: the embedded web UI's port"
    )
    task_queue_prefix: str = Field(
        "", description="STRATLAB_TASK_QUEUE_PREFIX: lets several labs share one Temporal"
    )
    app_db_password: str | None = Field(
        None,
        description="STRATLAB_APP_DB_PASSWORD: password `stratlab setup --app-role` gives "
        "the application role it creates",
        repr=False,
    )

    # LLM layer
    llm_provider: str = Field(
        "auto",
        description="STRATLAB_LLM_PROVIDER: auto | offline | openai | anthropic (auto: "
        "anthropic when ANTHROPIC_API_KEY is set, else openai when OPENAI_API_KEY or "
        "OPENAI_BASE_URL is set, else offline)",
    )
    llm_model: str | None = Field(None, description="STRATLAB_LLM_MODEL: model name override")
    role_models: str | None = Field(
        None,
        description="STRATLAB_ROLE_MODELS: per-role provider and model, e.g. "
        "'designer=anthropic:claude-sonnet-4-5,sanity=openai:gpt-4o-mini'",
    )
    price_table: Path | None = Field(
        None,
        description="STRATLAB_PRICES: TOML file of model prices (USD per million tokens) "
        "that adds to or overrides the built-in table",
    )
    llm_cache: bool = Field(
        False, description="STRATLAB_LLM_CACHE: reuse the stored answer of an identical call"
    )
    openai_base_url: str | None = Field(None, description="OPENAI_BASE_URL")
    openai_api_key: str | None = Field(None, description="OPENAI_API_KEY", repr=False)
    openai_api: Literal["chat", "responses"] = Field(
        "chat", description="STRATLAB_OPENAI_API: chat (chat completions) | responses"
    )
    anthropic_api_key: str | None = Field(None, description="ANTHROPIC_API_KEY", repr=False)
    anthropic_base_url: str | None = Field(None, description="ANTHROPIC_BASE_URL")
    llm_timeout_seconds: float = Field(60.0, description="STRATLAB_LLM_TIMEOUT")
    max_output_tokens: int = Field(2048, description="STRATLAB_MAX_OUTPUT_TOKENS")
    mutator_max_output_tokens: int = Field(
        12000, description="STRATLAB_MUTATOR_MAX_TOKENS: the optimizer's mutator writes templates"
    )
    prompt_max_chars: int = Field(
        12000,
        gt=0,
        description="STRATLAB_PROMPT_MAX_CHARS: an offspring prompt (system + template) "
        "longer than this is rejected before it is measured",
    )
    # The offline provider is priced at a shadow price so the budget path is real.
    offline_input_usd_per_mtok: float = Field(3.0, description="STRATLAB_OFFLINE_INPUT_PRICE")
    offline_output_usd_per_mtok: float = Field(15.0, description="STRATLAB_OFFLINE_OUTPUT_PRICE")
    offline_ms_per_output_token: float = Field(
        20.0, description="STRATLAB_OFFLINE_MS_PER_TOKEN: simulated latency (recorded, not slept)"
    )

    # Budget
    research_daily_budget_usd: float = Field(5.0, description="STRATLAB_RESEARCH_BUDGET")
    optimizer_daily_budget_usd: float = Field(50.0, description="STRATLAB_OPTIMIZER_BUDGET")
    paper_daily_budget_usd: float = Field(
        10.0, description="STRATLAB_PAPER_BUDGET: the paper-trading composer's daily budget"
    )
    budget_buffer_usd: float = Field(0.10, description="STRATLAB_BUDGET_BUFFER")

    # Backtests
    fees_bps: float = Field(5.0, description="STRATLAB_FEES_BPS: per side")
    slippage_bps: float = Field(5.0, description="STRATLAB_SLIPPAGE_BPS: per side")
    train_fraction: float = Field(0.6, description="STRATLAB_TRAIN_FRACTION")
    validation_fraction: float = Field(0.2, description="STRATLAB_VALIDATION_FRACTION")
    max_grid_size: int = Field(4096, description="STRATLAB_MAX_GRID: rules parameter grid cap")
    training_gate: TrainingGateThresholds = TrainingGateThresholds()
    backtest_gate: BacktestGateThresholds = BacktestGateThresholds()

    # Research integrity (see the README's "Honest verdicts")
    statistical_gate: StatisticalGateThresholds = StatisticalGateThresholds()
    min_deflated_sharpe: float | None = Field(
        None,
        description="STRATLAB_MIN_DSR: deflated Sharpe probability a discovery needs (0.95)",
    )
    statistical_gate_enabled: bool = Field(
        True, description="STRATLAB_STATISTICAL_GATE: false turns the statistical gate off"
    )
    fill_order: Literal["conservative", "optimistic"] = Field(
        "conservative",
        description="STRATLAB_FILL_ORDER: conservative (an exit at the open wins over a "
        "later intrabar stop or take-profit) | optimistic (vectorbt's order)",
    )
    walk_forward_folds: int = Field(
        5,
        ge=1,
        le=20,
        description="STRATLAB_WF_FOLDS: walk-forward folds on the development period",
    )
    walk_forward_first_test: float = Field(
        0.4,
        gt=0.0,
        lt=1.0,
        description="STRATLAB_WF_FIRST_TEST: share of the development period before the "
        "first walk-forward test block",
    )

    # Code strategies: the sandbox (see stratlab.sandbox.executor)
    sandbox_mode: Literal["bwrap", "rlimits"] = Field(
        "bwrap",
        description="STRATLAB_SANDBOX: bwrap (bubblewrap, required by default) | rlimits "
        "(weaker fallback: rlimits only, no namespaces)",
    )
    sandbox_cpu_seconds: float = Field(
        60.0, description="STRATLAB_SANDBOX_CPU_SECONDS: CPU time of one sandboxed run"
    )
    sandbox_memory_mb: int = Field(
        1024, description="STRATLAB_SANDBOX_MEMORY_MB: address space of one sandboxed run"
    )
    sandbox_wall_seconds: float = Field(
        120.0, description="STRATLAB_SANDBOX_WALL_SECONDS: wall-clock limit of one run"
    )

    # Workers
    compute_threads: int = Field(2, description="STRATLAB_COMPUTE_THREADS")
    llm_max_concurrency: int = Field(8, description="STRATLAB_LLM_CONCURRENCY")
    llm_activities_per_second: float | None = Field(None, description="STRATLAB_LLM_RATE")
    provider_limits: str | None = Field(
        None,
        description="STRATLAB_PROVIDER_LIMITS: per provider in one llm worker, "
        "name=concurrency[/per_second], e.g. 'anthropic=4/2,openai=8/5'",
    )
    log_format: str = Field("auto", description="STRATLAB_LOG_FORMAT: auto | json | console")
    log_level: str = Field("INFO", description="STRATLAB_LOG_LEVEL")

    # Observability (all off unless configured)
    metrics_port: int | None = Field(
        None, description="STRATLAB_METRICS_PORT: serve Prometheus /metrics on this port"
    )
    otel_endpoint: str | None = Field(
        None, description="OTEL_EXPORTER_OTLP_ENDPOINT: OTLP/HTTP collector for traces"
    )
    otel_service_name: str = Field("stratlab", description="OTEL_SERVICE_NAME")
    langfuse_public_key: str | None = Field(None, description="LANGFUSE_PUBLIC_KEY")
    langfuse_secret_key: str | None = Field(None, description="LANGFUSE_SECRET_KEY", repr=False)
    langfuse_base_url: str = Field("https://cloud.langfuse.com", description="LANGFUSE_BASE_URL")

    @property
    def langfuse_enabled(self) -> bool:
        return bool(self.langfuse_public_key and self.langfuse_secret_key)

    def secrets(self) -> list[str]:
        """Every secret value set, so logs and diagnostics can scrub them."""
        values = (
            self.openai_api_key,
            self.anthropic_api_key,
            self.langfuse_secret_key,
            self.temporal_api_key,
            self.app_db_password,
        )
        return [v for v in values if v]

    @property
    def pgdata_dir(self) -> Path:
        return self.home / "pgdata"

    @property
    def temporal_db_file(self) -> Path:
        return self.home / "temporal.db"

    @property
    def numba_cache_dir(self) -> Path:
        return self.home / "numba-cache"

    def statistical_thresholds(self) -> StatisticalGateThresholds:
        """The statistical gate's thresholds with the environment's overrides applied."""
        overrides: dict[str, Any] = {"enabled": self.statistical_gate_enabled}
        if self.min_deflated_sharpe is not None:
            overrides["min_deflated_sharpe"] = self.min_deflated_sharpe
        return self.statistical_gate.model_copy(update=overrides)

    def sandbox_limits(self) -> SandboxLimits:
        """Limits of one sandboxed execution of strategy code (one whole parameter grid)."""
        from stratlab.sandbox.limits import SandboxLimits

        return SandboxLimits(
            cpu_seconds=self.sandbox_cpu_seconds,
            memory_mb=self.sandbox_memory_mb,
            wall_seconds=self.sandbox_wall_seconds,
        )

    def task_queue(self, pool: str) -> str:
        """The task queue of a pool, under this lab's prefix."""
        from stratlab.temporal_names import task_queue_for

        return task_queue_for(pool, self.task_queue_prefix)

    def budget_cap(self, scope: str) -> float:
        caps = {
            "research": self.research_daily_budget_usd,
            "optimizer": self.optimizer_daily_budget_usd,
            "paper": self.paper_daily_budget_usd,
        }
        if scope not in caps:
            raise ValueError(f"unknown budget scope {scope!r}; known: {', '.join(caps)}")
        return caps[scope]

    @property
    def temporal_ui(self) -> str:
        """The web UI's base URL: ``STRATLAB_TEMPORAL_UI_URL``, else the embedded UI on
        ``STRATLAB_TEMPORAL_UI_PORT``. Every printed link starts with it."""
        if self.temporal_ui_url:
            return self.temporal_ui_url.rstrip("/")
        return f"http://localhost:{self.temporal_ui_port}"

    def ui_link(self, kind: Literal["workflows", "schedules"] = "workflows", ident: str = "",
                run_id: str | None = None) -> str:  # fmt: skip
        """The web UI's page of a workflow (its history when ``run_id`` is given) or a
        schedule; the namespace's list of them when ``ident`` is empty."""
        link = f"{self.temporal_ui}/namespaces/{quote(self.temporal_namespace, safe='')}/{kind}"
        if ident:
            link += f"/{quote(ident, safe='')}"
        return f"{link}/{quote(run_id, safe='')}/history" if ident and run_id else link

    def workflow_ui_link(self, workflow_id: str, run_id: str | None = None) -> str:
        return self.ui_link("workflows", workflow_id, run_id)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Build settings from environment variables; keyword overrides win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, field in cls.model_fields.items():
            var = _env_name(field.description)
            if var and env.get(var) not in (None, ""):
                values[name] = env[var]
        # The old name of STRATLAB_TEMPORAL_UI_URL, still read (older compose files set it).
        if "temporal_ui_url" not in values and env.get("STRATLAB_TEMPORAL_UI"):
            values["temporal_ui_url"] = env["STRATLAB_TEMPORAL_UI"]
        values.update(overrides)
        return cls.model_validate(values)


def _env_name(description: str | None) -> str | None:
    """Field descriptions start with their environment variable, e.g. ``DATABASE_URL: ...``."""
    if not description:
        return None
    head = description.split(":", 1)[0].strip()
    return head if head.isupper() and " " not in head else None
