"""Test session set-up: a real Postgres and a real Temporal dev server, shared by all tests.

numba's JIT cache goes under the project's ``.stratlab/`` (as for ``make demo``) so only the
first run on a machine pays for compiling vectorbt's kernels.
"""

import os
from pathlib import Path

import pytest

# Helpers shared by test modules live in tests/fixtures/; their asserts explain a failure
# as a test module's do.
pytest.register_assert_rewrite("tests.fixtures")

os.environ.setdefault(
    "NUMBA_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".stratlab" / "numba-cache")
)

# The suite never talks to a real provider or observability backend: a key in the
# developer's shell must not turn a test into a billed, outbound call.
for _var in (
    "ANTHROPIC_API_KEY",
    "ANTHROPIC_BASE_URL",
    "OPENAI_API_KEY",
    "OPENAI_BASE_URL",
    "STRATLAB_LLM_PROVIDER",
    "STRATLAB_ROLE_MODELS",
    "LANGFUSE_PUBLIC_KEY",
    "LANGFUSE_SECRET_KEY",
    "LANGFUSE_BASE_URL",
    "OTEL_EXPORTER_OTLP_ENDPOINT",
):
    os.environ.pop(_var, None)

# Only loopback from here on (see tests/fixtures/loopback_only.py).
from tests.fixtures import loopback_only  # noqa: E402

loopback_only.install()

pytest_plugins = [
    "tests.fixtures.postgres",
    "tests.fixtures.temporal",
    "tests.fixtures.cli",
    "tests.fixtures.fake_llm_server",
]
