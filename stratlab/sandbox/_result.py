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
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError

from stratlab.sandbox.limits import MIB, SandboxLimits

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


def interpret(
    outcome: Outcome,
    run_dir: Path,
    n_bars: int,
    n_sets: int,
    limits: SandboxLimits,
    probe: ProbePlan | None = None,
) -> Parsed:
    """Classify one finished run; see ``SandboxRun`` for the meaning of each kind."""
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
    died_of = _signal_of(outcome)
    if died_of is not None:
        return _killed_by(died_of, limits)
    try:
        with (run_dir / "result.json").open("rb") as handle:
            raw = handle.read(limits.file_mb * MIB + 1)
    except OSError:
        raw = b""
    if not raw.strip():
        return Parsed(
            error_kind="runtime",
            error=f"the strategy process ended (exit status {outcome.returncode}) without "
            "returning signals",
        )
    try:
        document = _RESULT.validate_json(raw)
    except ValidationError:
        return Parsed(error_kind="bad_result", error="the sandbox returned a malformed result")
    if isinstance(document, _Internal):
        return Parsed(internal_error=document.error)
    if isinstance(document, _Failed):
        return Parsed(error_kind=document.error_kind, error=document.error)
    answer = _probe_answer(document.probe, probe, n_bars)
    if isinstance(answer, str):
        return Parsed(error_kind="bad_result", error=answer)
    parsed = _signals(document, n_bars, n_sets)
    return dataclasses.replace(parsed, probe=answer) if parsed.entries is not None else parsed


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
