"""Run cgroups that a killed worker left behind are swept when a compute worker starts.

These need a host that lets this process make cgroups (a root worker on cgroup v1, or a
delegated v2 subtree); elsewhere there is nothing to leave behind and they skip.
"""

from __future__ import annotations

import os
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from stratlab.sandbox import _cgroups
from stratlab.sandbox.limits import SandboxLimits
from stratlab.sandbox.rundirs import RUN_DIR_PREFIX, sweep_stale_runs


@pytest.fixture
def leftover() -> Iterator[tuple[_cgroups.RunCgroup, subprocess.Popen[bytes]]]:
    """What a worker killed mid-run leaves: the run's cgroups, a process still in them."""
    cgroup = _cgroups.create(f"{RUN_DIR_PREFIX}{uuid.uuid4().hex[:16]}", SandboxLimits())
    if not cgroup.dirs:
        pytest.skip("this host does not let the worker make cgroups")
    sleeper = subprocess.Popen(
        ["sleep", "300"], preexec_fn=lambda: _cgroups.join_in_child(cgroup.procs_files())
    )
    try:
        yield cgroup, sleeper
    finally:
        sleeper.kill()
        sleeper.wait()
        _cgroups.remove(cgroup)


def test_a_stale_run_cgroup_is_removed_and_its_processes_killed(
    leftover: tuple[_cgroups.RunCgroup, subprocess.Popen[bytes]],
) -> None:
    cgroup, sleeper = leftover
    for directory in cgroup.dirs.values():
        members = Path(directory, "cgroup.procs").read_text().split()
        assert str(sleeper.pid) in members
    time.sleep(0.05)
    # Its own name as the prefix: a sweep at age 0 must not touch runs of other processes
    # (a benchmark may be running sandboxes on this host); the worker's sweep is below.
    removed = _cgroups.sweep_stale(os.path.basename(next(iter(cgroup.dirs.values()))), 0.0)
    assert set(cgroup.dirs.values()) <= set(removed), removed
    assert not any(os.path.exists(d) for d in cgroup.dirs.values())
    assert sleeper.wait(timeout=5) == -9  # SIGKILL


def test_a_recent_run_cgroup_is_left_alone(
    leftover: tuple[_cgroups.RunCgroup, subprocess.Popen[bytes]],
) -> None:
    """It may belong to a run going on right now, on this host's other worker."""
    cgroup, sleeper = leftover
    removed = sweep_stale_runs()  # the default: an hour, far above any run's wall clock
    assert not set(cgroup.dirs.values()) & set(removed)
    assert all(os.path.isdir(d) for d in cgroup.dirs.values())
    assert sleeper.poll() is None


def test_cgroups_of_other_names_are_never_swept() -> None:
    name = f"{RUN_DIR_PREFIX}{uuid.uuid4().hex[:16]}"
    other = _cgroups.create(f"keep-{name}", SandboxLimits())  # the name, not its prefix
    if not other.dirs:
        pytest.skip("this host does not let the worker make cgroups")
    try:
        time.sleep(0.05)
        removed = _cgroups.sweep_stale(name, 0.0)
        assert not set(other.dirs.values()) & set(removed)
        assert all(os.path.isdir(d) for d in other.dirs.values())
    finally:
        _cgroups.remove(other)
