"""What a sandboxed run produced: its exit, its result file, checked against a schema.

Nothing the sandboxed process writes is trusted. The result file must match the schema
below exactly (no pickles, no extra fields, bounded strings), the packed signals must
decode to exactly (bars, parameter sets) bits, and a process killed by a limit is
classified by how it ended, not by anything it wrote.
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import os
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from stratlab.sandbox.limits import SandboxLimits

ErrorKind = Literal[
    "syntax",
    "validation",
    "runtime",
    "timeout",
    "memory",
    "output_limit",
    "bad_result",
    "no_signals",
]
_MAX_TEXT = 10_000


@dataclass(frozen=True)
class Outcome:
    """How the process ended: its exit status, and whether the supervisor killed it."""

    returncode: int
    killed: Literal["timeout", "output_limit"] | None
    elapsed: float
    bwrap: bool
    # what the runner reported on its control pipe before the strategy code ran
    internal_error: str | None = None
    # the run's memory cgroup hit its cap (so a SIGKILL was the OOM killer's)
    memory_capped: bool = False
    notes: tuple[str, ...] = ()


@dataclass(frozen=True)
class ProbePlan:
    """The look-ahead probe asked of the runner: its caller cuts (sorted, each at most
    ``n_bars - 2``) and how many cuts per series it may add where the full run signals."""

    cuts: tuple[int, ...]
    signal_cuts: int


@dataclass(frozen=True)
class ProbeAnswer:
    """The runner's probe, checked against its plan (see ``stratlab.strategies.lookahead``)."""

    cuts: int
    first_bar: int | None
    series: Literal["", "entries", "exits"]
    cut: int | None
    error: str | None


@dataclass(frozen=True)
class Parsed:
    entries: np.ndarray | None = None
    exits: np.ndarray | None = None
    error_kind: ErrorKind | None = None
    error: str | None = None
    internal_error: str | None = None
    probe: ProbeAnswer | None = None


class _Probe(BaseModel):
    # strict: a count that arrives as "3", 3.0 or true is as malformed as a missing one
    model_config = ConfigDict(extra="forbid", strict=True)

    cuts: int = Field(ge=0)
    first_bar: int | None = Field(ge=0)
    series: Literal["", "entries", "exits"]
    cut: int | None = Field(ge=0)
    error: str | None = Field(max_length=_MAX_TEXT)


class _Ok(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["ok"]
    n_bars: int = Field(ge=0)
    n_sets: int = Field(ge=1)
    entries: str
    exits: str
    probe: _Probe | None = None


class _Failed(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["error"]
    error_kind: Literal["syntax", "runtime", "memory", "bad_result"]
    error: str = Field(max_length=_MAX_TEXT)


class _Internal(BaseModel):
    model_config = ConfigDict(extra="forbid")

    status: Literal["internal"]
    error: str = Field(max_length=_MAX_TEXT)


_RESULT = TypeAdapter(Annotated[_Ok | _Failed | _Internal, Field(discriminator="status")])
_OUT_OF_MEMORY = (
    "the strategy held more than {} MB of memory and was stopped; work on fewer or "
    "smaller arrays at a time"
)
_FORGED = (
    "the strategy code wrote the sandbox's own status into the result file and was "
    "rejected; return (entries, exits) from signals() and do not write files"
)
# Room for everything in a valid document besides the packed signals: keys, counts, and
# the two bounded texts (an error and the probe's error) at 12 bytes per character, the
# most JSON's \u escapes take (a surrogate pair).
_RESULT_SLACK = 4096 + 2 * 12 * _MAX_TEXT


# A valid document is two long strings and a dozen keys: its brackets, commas and colons
# are a few dozen plus what the two texts may contain. A document within the size bound
# but made of millions of tiny arrays or keys would hold the GIL while it is parsed.
_MAX_STRUCTURE = 64 + 2 * _MAX_TEXT


def _structure_count(raw: bytes) -> int:
    return sum(raw.count(byte) for byte in (b"[", b"{", b",", b":"))


def max_result_bytes(n_bars: int, n_sets: int) -> int:
    """The largest a valid result document for this grid can be, with the runner's own
    formatting: two base64 bit strings of ``n_bars * n_sets`` bits plus bounded text."""
    packed = (n_bars * n_sets + 7) // 8
    return 2 * (4 * ((packed + 2) // 3)) + _RESULT_SLACK


def interpret(
    outcome: Outcome,
    run_dir: Path,
    n_bars: int,
    n_sets: int,
    limits: SandboxLimits,
    probe: ProbePlan | None = None,
) -> Parsed:
    """Classify one finished run; see ``SandboxRun`` for the meaning of each kind."""
    ended = _ended_without_result(outcome, limits)
    if ended is not None:
        return ended
    bound = max_result_bytes(n_bars, n_sets)
    size, raw = _read_bounded(run_dir / "result.json", bound)
    if size > bound or len(raw) > bound:
        # Refused unread: parsing megabytes of crafted JSON holds the GIL for seconds.
        return Parsed(
            error_kind="bad_result",
            error=f"the strategy wrote a result file of {max(size, len(raw))} bytes, more "
            f"than any valid answer for {n_bars} bars x {n_sets} parameter sets can be "
            f"({bound}); return (entries, exits) from signals() and do not write files",
        )
    if not raw.strip():
        return Parsed(
            error_kind="runtime",
            error=f"the strategy process ended (exit status {outcome.returncode}) without "
            "returning signals",
        )
    try:
        if _structure_count(raw) > _MAX_STRUCTURE:
            raise ValueError("more JSON structure than a valid result has")
        document = _RESULT.validate_json(raw)
    except (ValidationError, ValueError, RecursionError, MemoryError):
        return Parsed(error_kind="bad_result", error="the sandbox returned a malformed result")
    if isinstance(document, _Internal):
        # The runner reports its own failures on the control pipe only, so this status
        # was written by the strategy code: a rejected strategy, not a broken sandbox.
        return Parsed(error_kind="bad_result", error=_FORGED)
    if isinstance(document, _Failed):
        return Parsed(error_kind=document.error_kind, error=document.error)
    answer = _probe_answer(document.probe, probe, n_bars)
    if isinstance(answer, str):
        return Parsed(error_kind="bad_result", error=answer)
    parsed = _signals(document, n_bars, n_sets)
    return dataclasses.replace(parsed, probe=answer) if parsed.entries is not None else parsed


def _ended_without_result(outcome: Outcome, limits: SandboxLimits) -> Parsed | None:
    """The verdict on a run from how it ended alone, its result file unread: stopped by
    the supervisor, failed before the strategy code ran, or killed by a signal. None for
    a run that exited by itself."""
    if outcome.killed == "timeout":
        return Parsed(
            error_kind="timeout",
            error=f"the strategy did not finish within {limits.wall_seconds:g} s of wall-clock "
            "time; look for an endless loop or too much work per parameter set",
        )
    if outcome.killed == "output_limit":
        return Parsed(
            error_kind="output_limit",
            error=f"the strategy printed more than {limits.output_bytes // 1024} KiB and was "
            "stopped; do not print from signals()",
        )
    if outcome.internal_error is not None:
        return Parsed(internal_error=outcome.internal_error)
    died_of = _signal_of(outcome)
    if died_of is not None and outcome.memory_capped:
        return Parsed(error_kind="memory", error=_OUT_OF_MEMORY.format(limits.memory_mb))
    if died_of is not None:
        return _killed_by(died_of, limits)
    return None


def _read_bounded(path: Path, bound: int) -> tuple[int, bytes]:
    """The file's size and its bytes, at most ``bound + 1`` of them, and none when the
    size is over ``bound``; ``(0, b"")`` when it cannot be opened."""
    try:
        with path.open("rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            raw = b"" if size > bound else handle.read(bound + 1)
    except OSError:
        size, raw = 0, b""
    return size, raw


def _signal_of(outcome: Outcome) -> int | None:
    code = outcome.returncode
    if code < 0:
        return -code
    # bwrap reports a child killed by signal N as exit status 128 + N
    if outcome.bwrap and 128 < code < 128 + 65:
        return code - 128
    return None


def _killed_by(number: int, limits: SandboxLimits) -> Parsed:
    if number in (signal.SIGXCPU, signal.SIGKILL):
        return Parsed(
            error_kind="timeout",
            error=f"the strategy used more than {limits.cpu_seconds:g} s of CPU time and was "
            "stopped; look for an endless loop or too much work per parameter set",
        )
    try:
        name = signal.Signals(number).name
    except ValueError:
        name = f"signal {number}"
    return Parsed(
        error_kind="runtime",
        error=f"the strategy process crashed ({name}); native code failing on a bad input "
        f"or running out of memory ({limits.memory_mb} MB) can cause this",
    )


def _signals(document: _Ok, n_bars: int, n_sets: int) -> Parsed:
    if (document.n_bars, document.n_sets) != (n_bars, n_sets):
        return Parsed(
            error_kind="bad_result",
            error=f"the sandbox returned signals for {document.n_bars} bars x "
            f"{document.n_sets} parameter sets; expected {n_bars} x {n_sets}",
        )
    entries = _unpack(document.entries, n_bars, n_sets)
    exits = _unpack(document.exits, n_bars, n_sets)
    if entries is None or exits is None:
        return Parsed(error_kind="bad_result", error="the sandbox returned malformed signals")
    if not entries.any():
        return Parsed(
            entries=entries,
            exits=exits,
            error_kind="no_signals",
            error="the code ran, but entries is False on every bar for every parameter "
            "set, so the strategy never trades; loosen the entry condition",
        )
    return Parsed(entries=entries, exits=exits)


def _probe_answer(
    found: _Probe | None, plan: ProbePlan | None, n_bars: int
) -> ProbeAnswer | str | None:
    """The probe when it is consistent with its plan; otherwise why it is malformed."""
    if plan is None or found is None:
        if plan is None and found is None:
            return None
        return "the sandbox returned a malformed result (look-ahead probe missing or unasked)"
    added = 2 * plan.signal_cuts  # the runner adds at most this many cuts of its own
    last = n_bars - 2
    if found.first_bar is not None:
        consistent = (
            found.series != ""
            and found.error is None
            and found.cut is not None
            and found.first_bar <= found.cut <= last
        )
    elif found.error is not None:
        consistent = (
            found.series == "" and found.cut is not None and min(plan.cuts) <= found.cut <= last
        )
    else:
        consistent = found.series == "" and found.cut is None and found.cuts >= len(plan.cuts)
    if not consistent or found.cuts > len(plan.cuts) + added:
        return "the sandbox returned a malformed look-ahead probe"
    return ProbeAnswer(
        cuts=found.cuts,
        first_bar=found.first_bar,
        series=found.series,
        cut=found.cut,
        error=found.error,
    )


def _unpack(text: str, n_bars: int, n_sets: int) -> np.ndarray | None:
    try:
        raw = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        return None
    count = n_bars * n_sets
    if len(raw) != (count + 7) // 8:
        return None
    bits = np.unpackbits(np.frombuffer(raw, dtype=np.uint8), count=count)
    return bits.reshape(n_bars, n_sets).astype(bool)
