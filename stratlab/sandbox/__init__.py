"""Strategy code written by an LLM: an AST pre-filter and the isolated executor.

``validate_code`` rejects obviously unsafe or malformed code with messages the designer
can act on; ``run_signals`` is the security boundary that runs whatever is left in a
separate, namespaced, resource-limited process.
"""

from stratlab.sandbox.executor import (
    SandboxLimits,
    SandboxRun,
    SandboxUnavailableError,
    run_signals,
)
from stratlab.sandbox.rundirs import sweep_stale_run_dirs, sweep_stale_runs
from stratlab.sandbox.validator import CodeValidationError, Violation, validate_code

__all__ = [
    "CodeValidationError",
    "SandboxLimits",
    "SandboxRun",
    "SandboxUnavailableError",
    "Violation",
    "run_signals",
    "sweep_stale_run_dirs",
    "sweep_stale_runs",
    "validate_code",
]
