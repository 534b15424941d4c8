"""Test session set-up: a real Postgres and a real Temporal dev server, shared by all tests.

numba's JIT cache goes under the project's ``.stratlab/`` (as for ``make demo``) so only the
first run on a machine pays for compiling vectorbt's kernels.
"""

import os
from pathlib import Path

os.environ.setdefault(
    "NUMBA_CACHE_DIR", str(Path(__file__).resolve().parents[1] / ".stratlab" / "numba-cache")
)

pytest_plugins = ["tests.fixtures.postgres", "tests.fixtures.temporal"]
