"""One sandboxed process: started with its pipes, supervised, and killed as a group.

``run_process`` starts the runner (under bubblewrap with a fresh seccomp filter, or in
``rlimits`` mode as a plain child) with rlimits applied in the child, its stdout and
stderr on one pipe whose output is counted and discarded under the cap, and a control
pipe that only the runner writes to before the strategy code runs. It waits within the
wall clock, kills the process group on any breach, and reports how the process ended
(``_result.Outcome``), with whatever came through the control pipe. The run's cgroup is
made and removed by the caller (``executor``).
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import signal
import time
from pathlib import Path
from typing import Literal

from stratlab.sandbox import _cgroups, _isolation, _result
from stratlab.sandbox._seccomp import seccomp_program
from stratlab.sandbox.limits import SandboxLimits

_MAX_CONTROL = 16 * 1024


async def run_process(
    cgroup: _cgroups.RunCgroup, run_dir: Path, run_id: str, bwrap: str | None,
    limits: SandboxLimits,
) -> _result.Outcome:  # fmt: skip
    """Run the runner in ``run_dir`` (under ``bwrap`` when given, else in ``rlimits`` mode),
    its processes in ``cgroup``, and report how it ended and any control-pipe report."""
    seccomp_fd = _seccomp_fd() if bwrap else None
    # One pipe for stdout and stderr: one shared cap, and asyncio's wait() does not wait
    # for it (it would for PIPE, and a process holding it open would hang the wait).
    read_fd, write_fd = os.pipe()
    # The runner's control pipe: only the runner writes to it, before the strategy code
    # runs (see ``_runner``), so what comes through it is a real sandbox failure.
    control_read, control_write = os.pipe()
    try:
        if bwrap is None:
            command = _isolation.rlimits_command(run_dir, run_id, control_write)
        else:
            command = _isolation.bwrap_command(
                bwrap, run_dir, run_id, limits, seccomp_fd, control_write
            )
        passed = (control_write,) if seccomp_fd is None else (seccomp_fd, control_write)
        proc = await asyncio.create_subprocess_exec(
            *command.argv,
            stdin=asyncio.subprocess.DEVNULL,
            stdout=write_fd,
            stderr=write_fd,
            cwd=command.cwd,
            env=command.env,
            pass_fds=passed,
            start_new_session=True,  # its own process group, killed as a whole
            preexec_fn=_isolation.rlimits_preexec(limits, cgroup.procs_files()),
        )
    except BaseException:
        os.close(read_fd)
        os.close(control_read)
        raise
    finally:
        os.close(write_fd)
        os.close(control_write)
        if seccomp_fd is not None:
            os.close(seccomp_fd)
    try:
        outcome = await _supervise(proc, read_fd, limits, kill_leftovers=bwrap is None)
        # Every process of the run is dead by now, so the pipe holds all it ever will.
        report = _read_available(control_read, _MAX_CONTROL)
    finally:
        os.close(control_read)
    if not report:
        return outcome
    return dataclasses.replace(outcome, internal_error=report.decode("utf-8", "replace"))


def _read_available(fd: int, limit: int) -> bytes:
    """What is buffered in pipe ``fd``, at most ``limit`` bytes, without blocking."""
    os.set_blocking(fd, False)
    chunks: list[bytes] = []
    size = 0
    while size < limit:
        try:
            chunk = os.read(fd, limit - size)
        except BlockingIOError:
            break
        if not chunk:
            break
        chunks.append(chunk)
        size += len(chunk)
    return b"".join(chunks)


def _seccomp_fd() -> int | None:
    """The filter in a fresh memfd: bwrap reads its fd to the end, so one per run."""
    program = seccomp_program()
    if program is None:
        return None
    fd = os.memfd_create("stratlab-seccomp")  # not inheritable unless passed
    os.write(fd, program)
    os.lseek(fd, 0, os.SEEK_SET)
    return fd


class _OutputCounter(asyncio.Protocol):
    """Counts and discards the run's output; flags it once past the cap."""

    def __init__(self, limit: int) -> None:
        self.remaining = limit
        self.over = asyncio.Event()
        self.closed = asyncio.Event()

    def data_received(self, data: bytes) -> None:
        self.remaining -= len(data)
        if self.remaining < 0:
            self.over.set()

    def connection_lost(self, exc: Exception | None) -> None:
        self.closed.set()


async def _supervise(
    proc: asyncio.subprocess.Process, read_fd: int, limits: SandboxLimits, *, kill_leftovers: bool
) -> _result.Outcome:
    """Wait for the process within the wall clock while draining its output under the cap."""
    started = time.monotonic()
    counter = _OutputCounter(limits.output_bytes)
    transport: asyncio.BaseTransport | None = None
    exited = asyncio.create_task(proc.wait())
    overflowed = asyncio.create_task(counter.over.wait())
    try:
        transport, _ = await asyncio.get_running_loop().connect_read_pipe(
            lambda: counter, os.fdopen(read_fd, "rb", 0)
        )
        done, _ = await asyncio.wait(
            {exited, overflowed}, timeout=limits.wall_seconds, return_when=asyncio.FIRST_COMPLETED
        )
        killed: Literal["timeout", "output_limit"] | None = None
        if counter.over.is_set():
            killed = "output_limit"
        elif exited not in done:
            killed = "timeout"
        if killed or kill_leftovers:
            # In bwrap mode the pid namespace dies with its init; in rlimits mode children
            # of a finished run are killed here too (a setsid() escapee is the known gap).
            _kill_group(proc.pid)
        returncode = await proc.wait()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(counter.closed.wait(), timeout=1.0)
    finally:
        if proc.returncode is None:  # cancelled or failed: leave nothing behind
            _kill_group(proc.pid)
        overflowed.cancel()
        if transport is not None:
            transport.close()
    return _result.Outcome(
        returncode=returncode,
        killed=killed,
        elapsed=time.monotonic() - started,
        bwrap=not kill_leftovers,
    )


def _kill_group(pgid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):  # already gone
        os.killpg(pgid, signal.SIGKILL)
