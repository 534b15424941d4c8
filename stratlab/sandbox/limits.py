"""Resource limits of one sandboxed run (see ``stratlab.sandbox.executor``)."""

from __future__ import annotations

from dataclasses import dataclass

MIB = 1024 * 1024


@dataclass(frozen=True)
class SandboxLimits:
    """Limits of one execution of strategy code, whatever its parameter grid.

    ``cpu_seconds`` is CPU time (RLIMIT_CPU: SIGXCPU, then SIGKILL a second later);
    ``wall_seconds`` is elapsed time from process start, import of numpy and pandas
    (about 0.5 s) included; ``memory_mb`` is address space (RLIMIT_AS), and numpy plus
    pandas alone map about 330 MB; ``file_mb`` caps every file written (RLIMIT_FSIZE),
    the result file included, and the size of the tmpfs work dir; ``output_bytes`` caps
    stdout and stderr together, after which the run is killed.
    """

    cpu_seconds: float = 60.0
    memory_mb: int = 1024
    wall_seconds: float = 120.0
    file_mb: int = 64
    max_processes: int = 64
    open_files: int = 64
    output_bytes: int = MIB

    def __post_init__(self) -> None:
        for name in ("cpu_seconds", "memory_mb", "wall_seconds", "file_mb", "output_bytes"):
            if not getattr(self, name) > 0:
                raise ValueError(
                    f"SandboxLimits.{name} must be positive, got {getattr(self, name)}"
                )
        if self.max_processes < 1 or self.open_files < 16:
            raise ValueError("SandboxLimits needs max_processes >= 1 and open_files >= 16")
