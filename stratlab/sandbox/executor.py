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
``_process`` starts and supervises the process itself.
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
from stratlab.sandbox import _cgroups, _inputs, _isolation, _process, _result
from stratlab.sandbox._seccomp import seccomp_program
from stratlab.sandbox.limits import SandboxLimits
from stratlab.sandbox.probe import SIGNAL_CUTS, probe_outcome
from stratlab.sandbox.rundirs import RUN_DIR_PREFIX, make_run_dir
from stratlab.sandbox.validator import CodeValidationError, validate_code

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
    code returned valid signals; see ``stratlab.sandbox.probe`` for its meaning.
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
    rejected = _rejection(source) if validate else None
    if rejected is not None:
        return SandboxRun(
            ok=False,
            isolation=isolation,
            duration_ms=_ms(started),
            run_id=run_id,
            error_kind=rejected[0],
            error=rejected[1],
            notes=notes,
        )
    probe_request = None if plan is None else _probe_request(plan, param_index)
    outcome, parsed, run_dir = await _run_in_fresh_dir(
        source, frame, param_sets, probe_request, run_id, bwrap, limits, plan
    )
    return _finished(outcome, parsed, run_dir, frame.index, isolation, started, run_id, notes)


def _finished(
    outcome: _result.Outcome,
    parsed: _result.Parsed,
    run_dir: Path,
    index: pd.Index,
    isolation: SandboxMode,
    started: float,
    run_id: str,
    notes: tuple[str, ...],
) -> SandboxRun:
    """The ``SandboxRun`` of a run that went through the sandbox, its errors cleaned;
    ``SandboxUnavailableError`` when the sandbox itself could not start."""
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
        probe=_probe(parsed.probe, index, run_dir),
    )


def _rejection(source: str) -> tuple[ErrorKind, str] | None:
    """The error kind and text when the AST pre-filter rejects ``source``; None when clean."""
    try:
        validate_code(source)
    except CodeValidationError as exc:
        syntax = any(v.rule == "syntax" for v in exc.violations)
        return ("syntax" if syntax else "validation"), str(exc)
    return None


async def _run_in_fresh_dir(
    source: str,
    frame: pd.DataFrame,
    param_sets: list[dict[str, float]],
    probe_request: dict[str, object] | None,
    run_id: str,
    bwrap: str | None,
    limits: SandboxLimits,
    plan: _result.ProbePlan | None,
) -> tuple[_result.Outcome, _result.Parsed, Path]:
    """Write the inputs to a new run dir, run the code there and interpret its answer.

    Returns how the process ended, what it produced and the run dir's path (for cleaning
    errors); the dir itself is removed on every exit path, cancellation included.
    """
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
    return outcome, parsed, run_dir


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


# --- the run's cgroup and process --------------------------------------------------------


async def _execute(
    run_dir: Path, run_id: str, bwrap: str | None, limits: SandboxLimits
) -> _result.Outcome:
    cgroup = _cgroups.create(run_id, limits)
    try:
        outcome = await _process.run_process(cgroup, run_dir, run_id, bwrap, limits)
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
