"""Host-side run directories of the sandbox: made per run, removed on every exit path.

``run_signals`` removes its run dir (and its run's cgroups) in a ``finally`` that also
runs on cancellation. A worker killed outright (SIGKILL, OOM, power loss) cannot, so a
compute worker sweeps both when it starts (``sweep_stale_runs``): only directories in the
temp dir that carry the sandbox's own prefix, belong to this user and were last changed
longer ago than any run can last, and cgroups of that prefix beside the worker's own that
were made as long ago.
"""

from __future__ import annotations

import os
import shutil
import stat
import tempfile
import time
from pathlib import Path

from stratlab.sandbox import _cgroups

RUN_DIR_PREFIX = "stratlab-sandbox-"
# Far above any run's wall clock (SandboxLimits.wall_seconds defaults to 120 s), so a
# sweep never removes the dir of a run that is still going on another worker.
STALE_AFTER_SECONDS = 3600.0


def make_run_dir() -> Path:
    """A fresh private (0700) run dir in the temp dir."""
    return Path(tempfile.mkdtemp(prefix=RUN_DIR_PREFIX))


def sweep_stale_runs(max_age_seconds: float = STALE_AFTER_SECONDS) -> list[str]:
    """Run dirs and run cgroups that a killed worker left; returns the paths removed."""
    return [
        *sweep_stale_run_dirs(max_age_seconds),
        *_cgroups.sweep_stale(RUN_DIR_PREFIX, max_age_seconds),
    ]


def sweep_stale_run_dirs(
    max_age_seconds: float = STALE_AFTER_SECONDS, *, root: str | None = None
) -> list[str]:
    """Remove run dirs older than ``max_age_seconds`` from ``root`` (default: the temp
    dir); returns the paths removed. Never follows a symlink, never raises."""
    top = root or tempfile.gettempdir()
    cutoff = time.time() - max_age_seconds
    removed: list[str] = []
    try:
        entries = list(os.scandir(top))
    except OSError:
        return removed
    for entry in entries:
        if not entry.name.startswith(RUN_DIR_PREFIX):
            continue
        try:
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue  # removed meanwhile
        if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.geteuid():
            continue
        if info.st_mtime > cutoff:
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        if not os.path.lexists(entry.path):
            removed.append(entry.path)
    return removed
