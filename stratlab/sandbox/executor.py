"""The security boundary for strategy code: one isolated process per execution.

``run_signals`` evaluates ``signals(data, params)`` for a whole list of parameter sets in
ONE process, because starting Python with numpy and pandas is the expensive part (about
0.5 s). In the default ``bwrap`` mode the process runs under bubblewrap with the mounts,
namespaces and seccomp filter described in ``stratlab.sandbox._isolation``, plus rlimits
(CPU, address space, file size, processes, open files), a wall-clock timeout and a cap
on stdout + stderr; the process group is killed on any breach. Data goes in as files
(``.npz`` without pickles, JSON, the code as text); the answer comes back as one JSON
file, refused unread when it is larger than a valid answer for the grid can be, and
otherwise validated here against a schema (off the event loop), with signals packed as
bits. A failure of the sandbox itself comes back on a separate control pipe that the
runner closes before the strategy code runs, so code cannot fake one. Where the host
lets the worker make cgroups, a pids and a memory cgroup per run cap threads and every
kind of memory (``_cgroups``); a root worker without them says so in the run's notes.
The run dir is removed on every exit path, cancellation included. Asked for,
the same process then runs the look-ahead probe (``stratlab.strategies.lookahead``) on
prefixes of the data, and its answer is validated as strictly.

``rlimits`` mode (``STRATLAB_SANDBOX=rlimits``) is an explicit, weaker fallback for hosts
without bubblewrap: the same runner in a plain child process with the same rlimits and a
scrubbed environment, but no namespaces and no seccomp, so the code could read the
worker's files and open network connections. Every run in that mode says so in its
``notes``.

Always call this from async code on the event loop's own thread: bubblewrap's
``--die-with-parent`` ties the sandbox to the thread that started it.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
import re
import shutil
import signal
import time
import uuid
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd

from stratlab.models.research import LookaheadProbe
from stratlab.sandbox import _cgroups, _inputs, _isolation, _result
from stratlab.sandbox._seccomp import seccomp_program
from stratlab.sandbox.limits import SandboxLimits
from stratlab.sandbox.rundirs import RUN_DIR_PREFIX, make_run_dir
from stratlab.sandbox.validator import CodeValidationError, validate_code
from stratlab.strategies.lookahead import SIGNAL_CUTS, probe_outcome

__all__ = [
    "ErrorKind",
    "SandboxLimits",
    "SandboxRun",
    "SandboxUnavailableError",
    "run_signals",
]

SandboxMode = Literal["bwrap", "rlimits"]
ErrorKind = _result.ErrorKind
WEAKER_ISOLATION_NOTE = (
    "WEAKER ISOLATION: rlimits only (STRATLAB_SANDBOX=rlimits): no namespaces and no "
    "seccomp filter, so strategy code can read the worker's files and use the network"
)
WEAKER_TASKS_NOTE = (
    "WEAKER ISOLATION: no pids cgroup could be made and the worker runs as root, whom "
    "RLIMIT_NPROC does not bind: threads of strategy code are limited only by memory and "
    "time (run the worker as an unprivileged user, or give it a writable pids cgroup)"
)
_INPUT_WRITER = ThreadPoolExecutor(max_workers=4, thread_name_prefix="sandbox-inputs")
"""Writes each run's input files off the event loop (see ``run_signals``)."""
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_MAX_ERROR = 1500
_MAX_CONTROL = 16 * 1024


class SandboxUnavailableError(RuntimeError):
    """The sandbox cannot run here; the message says how to fix that."""


@dataclass(frozen=True)
class SandboxRun:
    """The outcome of one execution.

    When ``ok``, ``entries`` and ``exits`` are bool arrays of shape (bars, parameter
    sets). ``error_kind`` ``no_signals`` means the code ran and returned valid signals
    (kept in ``entries``/``exits``) but no parameter set ever enters. ``error`` is short
    and fit to go back to the designer: exception type, message and the line of the
    strategy code, never the worker's paths or environment.

    ``probe`` is the look-ahead probe when one was asked for (``probe_cuts``) and the
    code returned valid signals; see ``stratlab.strategies.lookahead`` for its meaning.
    It comes from the same process as the signals, so code written to deceive could
    forge it: it catches accidental look-ahead, which is what LLM-written code has.
    """

    ok: bool
    isolation: SandboxMode
    duration_ms: float
    run_id: str
    entries: np.ndarray | None = None
    exits: np.ndarray | None = None
    error_kind: ErrorKind | None = None
    error: str | None = None
    notes: tuple[str, ...] = ()
    probe: LookaheadProbe | None = None


async def run_signals(
    source: str,
    frame: pd.DataFrame,
    param_sets: list[dict[str, float]],
    *,
    limits: SandboxLimits,
    mode: str = "bwrap",
    validate: bool = True,
    probe_cuts: Sequence[int] = (),
    probe_param_index: int | None = None,
    probe_signal_cuts: int = SIGNAL_CUTS,
) -> SandboxRun:
    """Evaluate ``signals(data, params)`` of ``source`` on ``frame`` for every parameter set.

    With ``probe_cuts`` (bar positions, e.g. ``lookahead.cut_points(len(frame))``), the
    same process then probes for look-ahead: the parameter set at ``probe_param_index``
    (default the middle one) runs again on each prefix ``frame[: cut + 1]``, plus up to
    ``probe_signal_cuts`` prefixes per series ending where the full run signals, and
    ``SandboxRun.probe`` reports the first bar that changed. The prefix runs share the
    run's CPU and wall-clock limits.

    ``validate=False`` skips the AST pre-filter; it exists so the tests can attack the
    sandbox itself. Raises ``SandboxUnavailableError`` when bubblewrap is missing or
    broken in ``bwrap`` mode, ``ValueError`` for an unknown mode or bad input.
    """
    started = time.perf_counter()
    run_id = f"{RUN_DIR_PREFIX}{uuid.uuid4().hex[:16]}"
    if mode not in ("bwrap", "rlimits"):
        raise ValueError(f"unknown sandbox mode {mode!r}; use 'bwrap' or 'rlimits'")
    isolation: SandboxMode = "bwrap" if mode == "bwrap" else "rlimits"
    bwrap = await _require_bwrap() if isolation == "bwrap" else None
    notes = _notes(isolation)
    if not param_sets:
        raise ValueError("run_signals needs at least one parameter set")
    plan, param_index = _probe_plan(
        probe_cuts, probe_param_index, probe_signal_cuts, len(frame), len(param_sets)
    )
    if validate:
        try:
            validate_code(source)
        except CodeValidationError as exc:
            syntax = any(v.rule == "syntax" for v in exc.violations)
            return SandboxRun(
                ok=False,
                isolation=isolation,
                duration_ms=_ms(started),
                run_id=run_id,
                error_kind="syntax" if syntax else "validation",
                error=str(exc),
                notes=notes,
            )
    probe_request = None if plan is None else _probe_request(plan, param_index)
    # Made here, on the loop, so that the try below owns it from its first moment: made in
    # a thread, a cancellation while the thread ran would lose the path and leak the dir.
    run_dir = make_run_dir()
    # A future of our own, not asyncio.to_thread: if the run is cancelled while the inputs
    # are being written, the finally below waits for the writer, which would otherwise
    # write into (and re-create) the dir after it was removed.
    writing = _INPUT_WRITER.submit(
        _inputs.write_inputs, run_dir, source, frame, param_sets, probe_request
    )
    try:
        await asyncio.wrap_future(writing)
        outcome = await _execute(run_dir, run_id, bwrap, limits)
        # Off the loop, so heartbeats go on; the result's size was bounded before parsing.
        parsed = await asyncio.to_thread(
            _result.interpret, outcome, run_dir, len(frame), len(param_sets), limits, plan
        )
    finally:
        # Synchronous on purpose: it also runs on cancellation (a heartbeat timeout), where
        # an await could be cancelled again. The dir holds the inputs and one result file
        # capped by RLIMIT_FSIZE (the code's own files live in the sandbox's tmpfs), so
        # this is quick; in rlimits mode the code can leave more in work/, and that mode
        # is the weaker one anyway.
        with contextlib.suppress(BaseException):
            writing.result()  # milliseconds: the inputs are a few small files
        shutil.rmtree(run_dir, ignore_errors=True)
    if parsed.internal_error is not None:
        raise SandboxUnavailableError(
            "the sandbox could not start Python with numpy and pandas: "
            f"{_clean(parsed.internal_error, run_dir)}"
        )
    return SandboxRun(
        ok=parsed.error_kind is None,
        isolation=isolation,
        duration_ms=_ms(started),
        run_id=run_id,
        entries=parsed.entries,
        exits=parsed.exits,
        error_kind=parsed.error_kind,
        error=_clean(parsed.error, run_dir),
        notes=(*notes, *outcome.notes),
        probe=_probe(parsed.probe, frame.index, run_dir),
    )


def _probe_plan(
    cuts: Sequence[int], param_index: int | None, signal_cuts: int, n_bars: int, n_sets: int
) -> tuple[_result.ProbePlan | None, int]:
    """The checked probe request; ValueError for cuts or an index that cannot be probed."""
    index = n_sets // 2 if param_index is None else param_index
    if isinstance(index, bool) or not isinstance(index, int) or not 0 <= index < n_sets:
        raise ValueError(f"probe_param_index must be in [0, {n_sets}), got {param_index!r}")
    if isinstance(signal_cuts, bool) or not isinstance(signal_cuts, int) or signal_cuts < 0:
        raise ValueError(f"probe_signal_cuts must be a whole number >= 0, got {signal_cuts!r}")
    if not cuts:
        return None, index
    for cut in cuts:
        if isinstance(cut, bool) or not isinstance(cut, int | np.integer):
            raise ValueError(f"probe cut points must be whole bar positions, got {cut!r}")
        # a prefix ending at the last bar is the full run, so it proves nothing
        if not 0 <= cut <= n_bars - 2:
            raise ValueError(f"probe cut {cut} is outside [0, {n_bars - 2}] for {n_bars} bars")
    return _result.ProbePlan(tuple(sorted({int(c) for c in cuts})), signal_cuts), index


def _probe_request(plan: _result.ProbePlan, param_index: int) -> dict[str, object]:
    return {"cuts": list(plan.cuts), "signal_cuts": plan.signal_cuts, "param_index": param_index}


def _probe(
    answer: _result.ProbeAnswer | None, index: pd.Index, run_dir: Path
) -> LookaheadProbe | None:
    if answer is None:
        return None
    return probe_outcome(
        index,
        cuts=answer.cuts,
        first_bar=answer.first_bar,
        series=answer.series,
        cut=answer.cut,
        error=_clean(answer.error, run_dir),
    )


def _ms(started: float) -> float:
    return (time.perf_counter() - started) * 1000.0


def _notes(isolation: SandboxMode) -> tuple[str, ...]:
    if isolation == "rlimits":
        return (WEAKER_ISOLATION_NOTE,)
    if seccomp_program() is None:
        return ("no seccomp filter for this CPU architecture: forks are limited by rlimits only",)
    return ()


def _clean(error: str | None, run_dir: Path) -> str | None:
    """Errors go to an LLM: no host paths, no control characters, bounded length."""
    if error is None:
        return None
    # The interpreter and site-packages are bound at their host paths, so code that
    # trips over them would otherwise show where the worker's Python lives.
    replacements = {str(run_dir): "<work>", _isolation.interpreter()[1]: "<python>"}
    for host, _ in _isolation.package_mounts():
        replacements[str(Path(host).parent)] = "<site-packages>"
    for path, label in sorted(replacements.items(), key=lambda item: -len(item[0])):
        error = error.replace(path, label)
    # one line: newlines and tabs become spaces, other control characters "?"
    text = _CONTROL.sub("?", " ".join(error.split()))
    return text if len(text) <= _MAX_ERROR else text[: _MAX_ERROR - 3] + "..."


# --- bubblewrap availability ------------------------------------------------------------

_bwrap_ok: str | None = None


async def _require_bwrap() -> str:
    """The bwrap binary, after one successful probe per process (failures are retried)."""
    global _bwrap_ok
    bwrap = _isolation.find_bwrap()
    if bwrap is None:
        raise SandboxUnavailableError(
            "bubblewrap (bwrap) is not installed, and code strategies only run inside it. "
            "Install it (Debian/Ubuntu: `apt-get install bubblewrap`), or set "
            "STRATLAB_SANDBOX=rlimits to accept a weaker fallback without namespaces."
        )
    if _bwrap_ok == bwrap:
        return bwrap
    proc = await asyncio.create_subprocess_exec(
        *_isolation.probe_command(bwrap),
        stdin=asyncio.subprocess.DEVNULL,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    _, stderr = await proc.communicate()
    if proc.returncode != 0:
        detail = stderr.decode(errors="replace").strip()[:300]
        raise SandboxUnavailableError(
            f"bubblewrap is installed but cannot create a sandbox here ({detail}). It needs "
            "user namespaces (in a container: allow unshare/CLONE_NEWUSER); or set "
            "STRATLAB_SANDBOX=rlimits to accept a weaker fallback without namespaces."
        )
    _bwrap_ok = bwrap
    return bwrap


# --- the process ------------------------------------------------------------------------


async def _execute(
    run_dir: Path, run_id: str, bwrap: str | None, limits: SandboxLimits
) -> _result.Outcome:
    cgroup = _cgroups.create(run_id, limits)
    try:
        outcome = await _execute_in(cgroup, run_dir, run_id, bwrap, limits)
        capped = outcome.returncode != 0 and cgroup.memory_exceeded()
    finally:
        # in a thread: killed tasks take a moment to leave the cgroup; started before any
        # await, so it completes even when this run is being cancelled
        await asyncio.to_thread(_cgroups.remove, cgroup)
    return dataclasses.replace(outcome, memory_capped=capped, notes=_cgroup_notes(cgroup, bwrap))


def _cgroup_notes(cgroup: _cgroups.RunCgroup, bwrap: str | None) -> tuple[str, ...]:
    """What is weaker about this run's limits than the sandbox promises."""
    if bwrap is None or cgroup.caps_tasks or os.geteuid() != 0:
        return ()  # rlimits mode says so already; RLIMIT_NPROC binds any other uid
    return (WEAKER_TASKS_NOTE,)


async def _execute_in(
    cgroup: _cgroups.RunCgroup, run_dir: Path, run_id: str, bwrap: str | None,
    limits: SandboxLimits,
) -> _result.Outcome:  # fmt: skip
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
