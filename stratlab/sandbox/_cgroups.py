"""A cgroup per sandboxed run, where the host lets the worker make one: tasks and memory
capped for real.

``RLIMIT_NPROC`` does not bind a worker running as root (the kernel exempts uid 0, in a
user namespace too), so threads could fill the host's pid table; ``RLIMIT_AS`` counts
address space, not page cache or tmpfs. A ``pids`` cgroup caps every task of the run,
threads included, and a ``memory`` cgroup caps the memory it holds whatever the kind.
Both are children of the worker's own cgroups (v1 hierarchies or the v2 unified one),
made before the run, joined by the child between fork and exec (so bubblewrap and all
it starts are inside), and removed after it, with every process left in them killed.

Where neither can be made (no write access, v2 without delegation), ``create`` returns a
cgroup without controllers, and the executor says which limit is weaker. A worker killed
outright leaves its runs' cgroups behind; ``sweep_stale`` removes them at the next start.
"""

from __future__ import annotations

import contextlib
import os
import signal
import time
from dataclasses import dataclass, field

from stratlab.sandbox.limits import MIB, SandboxLimits

CGROUP_ROOT = "/sys/fs/cgroup"
# Tasks of the run besides the strategy's own: bwrap outside the namespace and its init.
_BWRAP_TASKS = 2


@dataclass
class RunCgroup:
    """The run's cgroup directories, one per controller that could be set up."""

    dirs: dict[str, str] = field(default_factory=dict)  # controller -> directory

    @property
    def caps_tasks(self) -> bool:
        return "pids" in self.dirs

    @property
    def caps_memory(self) -> bool:
        return "memory" in self.dirs

    def procs_files(self) -> list[str]:
        return sorted({os.path.join(d, "cgroup.procs") for d in self.dirs.values()})

    def memory_exceeded(self) -> bool:
        """Did the run hit its memory cap (and so was killed or refused memory)?"""
        directory = self.dirs.get("memory")
        if directory is None:
            return False
        events = _read(os.path.join(directory, "memory.events"))  # v2
        if events is not None:
            counts = dict(line.split() for line in events.splitlines() if " " in line)
            return int(counts.get("max", 0)) > 0 or int(counts.get("oom_kill", 0)) > 0
        failcnt = _read(os.path.join(directory, "memory.failcnt"))  # v1
        return failcnt is not None and int(failcnt.strip() or 0) > 0


def create(run_id: str, limits: SandboxLimits) -> RunCgroup:
    """Make the run's cgroups; any that the host refuses is simply left out."""
    cgroup = RunCgroup()
    settings = {
        "pids": {"pids.max": str(limits.max_processes + _BWRAP_TASKS)},
        # the tmpfs work dir is charged as memory, so it gets room beside the heap
        "memory": {
            "memory.max": str((limits.memory_mb + limits.file_mb) * MIB),  # v2
            "memory.limit_in_bytes": str((limits.memory_mb + limits.file_mb) * MIB),  # v1
            "memory.swap.max": "0",  # v2: no escape into swap
        },
    }
    for controller, files in settings.items():
        parent = _parent_dir(controller)
        if parent is None:
            continue
        directory = os.path.join(parent, run_id)
        try:
            os.mkdir(directory, 0o755)
        except OSError:
            continue
        if _apply(directory, files):
            cgroup.dirs[controller] = directory
        else:
            _remove_dir(directory)
    return cgroup


def join_in_child(procs_files: list[str]) -> None:
    """Move the calling process into the run's cgroups: for ``preexec_fn``, so only
    system calls, and failures are ignored (the run is then merely less capped)."""
    for path in procs_files:
        try:
            fd = os.open(path, os.O_WRONLY)
        except OSError:
            continue
        try:
            os.write(fd, b"0")  # 0: the writing process
        except OSError:
            pass
        finally:
            os.close(fd)


def remove(cgroup: RunCgroup, *, timeout: float = 2.0) -> None:
    """Kill whatever is still in the run's cgroups, then remove them."""
    deadline = time.monotonic() + timeout
    for directory in cgroup.dirs.values():
        while True:
            _kill_members(directory)
            if _remove_dir(directory) or time.monotonic() > deadline:
                break
            time.sleep(0.01)  # killed tasks leave the cgroup when they are reaped


def sweep_stale(prefix: str, max_age_seconds: float) -> list[str]:
    """Remove run cgroups (named ``prefix...``) made more than ``max_age_seconds`` ago
    beside this worker's own, killing what is left in them; returns the directories
    removed. A cgroup directory's mtime is its creation time. Never raises."""
    cutoff = time.time() - max_age_seconds
    parents = {p for c in ("pids", "memory") if (p := _parent_dir(c)) is not None}
    removed: list[str] = []
    for parent in sorted(parents):
        try:
            entries = list(os.scandir(parent))
        except OSError:
            continue
        for entry in entries:
            try:
                if not entry.name.startswith(prefix) or not entry.is_dir(follow_symlinks=False):
                    continue
                if entry.stat(follow_symlinks=False).st_mtime > cutoff:
                    continue  # possibly a run still going, here or on another worker
            except OSError:
                continue  # removed meanwhile
            remove(RunCgroup({"stale": entry.path}))
            if not os.path.exists(entry.path):
                removed.append(entry.path)
    return removed


def _parent_dir(controller: str) -> str | None:
    """The worker's own cgroup directory for ``controller``, if it can hold children."""
    own = _own_cgroups()
    v1 = os.path.join(CGROUP_ROOT, controller)
    if controller in own and os.path.isdir(v1):
        path = v1 + own[controller]
        return path if os.access(path, os.W_OK) else None
    if "" in own:  # v2: the controller must be enabled for our children
        path = CGROUP_ROOT + own[""]
        enabled = _read(os.path.join(path, "cgroup.subtree_control")) or ""
        if controller in enabled.split() and os.access(path, os.W_OK):
            return path
    return None


def _own_cgroups() -> dict[str, str]:
    """controller -> path of this process's cgroup ("" is the v2 unified hierarchy)."""
    found: dict[str, str] = {}
    for line in (_read("/proc/self/cgroup") or "").splitlines():
        parts = line.split(":", 2)
        if len(parts) == 3:
            for controller in parts[1].split(","):
                found.setdefault(controller, parts[2].rstrip("/"))
    return found


def _apply(directory: str, files: dict[str, str]) -> bool:
    """Write the limits that exist in this hierarchy; True if at least one took."""
    applied = False
    for name, value in files.items():
        path = os.path.join(directory, name)
        if os.path.exists(path):
            try:
                with open(path, "w") as handle:
                    handle.write(value)
                applied = True
            except OSError:
                continue
    return applied


def _kill_members(directory: str) -> None:
    for line in (_read(os.path.join(directory, "cgroup.procs")) or "").split():
        with contextlib.suppress(ProcessLookupError, PermissionError, ValueError):
            os.kill(int(line), signal.SIGKILL)


def _remove_dir(directory: str) -> bool:
    try:
        os.rmdir(directory)
    except FileNotFoundError:
        return True
    except OSError:
        return False
    return True


def _read(path: str) -> str | None:
    try:
        with open(path) as handle:
            return handle.read()
    except OSError:
        return None
