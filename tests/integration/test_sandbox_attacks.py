"""The production (bwrap) sandbox against the attack corpus in ``sandbox_attacks``.

The corpus runs once, concurrently, with the validator bypassed; the tests below then
check what must hold for every attack: nothing written outside the sandbox's work dir,
no canary (from the worker's environment or from a file outside the work dir) in
anything that comes back, no connection to a loopback listener of the test, no process
left alive, a worker whose event loop kept running, and every denial-of-service attack
ended within its limit + 1 s.
"""

from __future__ import annotations

import asyncio
import os
import socket
import sys
import tempfile
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stratlab.market.synthetic import synthetic_ohlcv
from stratlab.sandbox._isolation import find_bwrap, interpreter, package_mounts
from stratlab.sandbox.executor import (
    SandboxLimits,
    SandboxRun,
    SandboxUnavailableError,
    run_signals,
)
from tests.integration.sandbox_attacks import CORPUS, ISSUE_15, PRELUDE, Attack

pytestmark = [
    pytest.mark.skipif(
        find_bwrap() is None,
        reason="bubblewrap (bwrap) is not installed: apt-get install bubblewrap",
    ),
    pytest.mark.slow,
]

LIMITS = SandboxLimits(cpu_seconds=2, wall_seconds=3, memory_mb=768, file_mb=8)
DOS_SLACK_SECONDS = 3.0
"""How far past the wall-clock limit a denial-of-service attack may end (a loaded machine)."""
# An attack that is not a denial of service must fail on its own merits, not on the clock:
# on a loaded machine the sandbox's numpy/pandas import alone can take seconds.
ROOMY = SandboxLimits(cpu_seconds=2, wall_seconds=20, memory_mb=768, file_mb=8)
CONCURRENCY = 3
MARKER = f"stratlab-attack-{uuid.uuid4().hex[:12]}"
CANARY_VAR = f"STRATLAB_TEST_CANARY_{uuid.uuid4().hex[:8].upper()}"
CANARY = f"canary-secret-{uuid.uuid4().hex}"
HONEST = "def signals(data, params):\n    c = data['close']\n    return c > c.mean(), c < 0\n"


@dataclass(frozen=True)
class Record:
    attack: Attack
    run: SandboxRun
    seconds: float
    alive_after: list[str]


@dataclass(frozen=True)
class Corpus:
    records: dict[str, Record]
    host_dirs: list[str]
    runs_root: Path
    connections: int
    max_loop_stall: float
    honest_after: SandboxRun


async def survivors(token: str, grace: float = 2.0) -> list[str]:
    """Processes of a finished run still alive after ``grace`` seconds. A killed process
    group can take a moment to be reaped on a loaded machine; an escapee stays."""
    deadline = time.monotonic() + grace
    while (found := processes_with(token)) and time.monotonic() < deadline:
        await asyncio.sleep(0.1)
    return found


def processes_with(token: str) -> list[str]:
    """Command lines of live processes that mention ``token`` (the sandbox's run id or
    the attack marker, which every fork inherits and every exec'd attack carries)."""
    found = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            cmdline = Path(entry.path, "cmdline").read_bytes().replace(b"\0", b" ").decode()
        except OSError:
            continue
        if token in cmdline:
            found.append(f"{entry.name}: {cmdline[:200]}")
    return found


def source_of(attack: Attack, port: int, canary_file: Path, host_dirs: list[str]) -> str:
    prelude = (
        PRELUDE.replace("@MARKER@", MARKER)
        .replace("@CANARY_VAR@", CANARY_VAR)
        .replace("@CANARY_FILE@", str(canary_file))
        .replace("@PORT@", str(port))
        .replace("@HOST_DIRS@", repr(host_dirs))
    )
    return prelude + "\n\n" + attack.body


def leaked(run: SandboxRun) -> bool:
    """Is the canary anywhere in what came back: the error, the notes, the signal bits?"""
    texts = [run.error or "", *run.notes]
    for signals in (run.entries, run.exits):
        if signals is not None:
            texts += [np.packbits(column).tobytes().decode("latin-1") for column in signals.T]
    return any(CANARY in text for text in texts)


@pytest.fixture(scope="module")
def canary_env() -> Iterator[None]:
    os.environ[CANARY_VAR] = CANARY
    yield
    os.environ.pop(CANARY_VAR, None)


@pytest.fixture(scope="module")
async def corpus(
    canary_env: None, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Corpus]:
    try:
        await run_signals(
            "def signals(d, p):\n    return d.close > 0, d.close < 0\n",
            synthetic_ohlcv(bars=50, seed=1),
            [{}],
            limits=LIMITS,
        )
    except SandboxUnavailableError as exc:
        pytest.skip(f"the bwrap sandbox cannot run on this host: {exc}")
    secrets_dir = tmp_path_factory.mktemp("outside-the-work-dir")
    canary_file = secrets_dir / "canary.txt"
    canary_file.write_text(CANARY)
    runs_root = tmp_path_factory.mktemp("sandbox-runs")
    host_dirs = sorted(
        {
            "/tmp", "/var/tmp", "/dev/shm", "/root", "/home", "/", "/usr/lib", "/work",
            "/sandbox/in", "/sandbox/site", interpreter()[1], str(Path.cwd()),
            str(secrets_dir), str(runs_root), str(Path(package_mounts()[0][0]).parent),
        }
    )  # fmt: skip
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    frame = synthetic_ohlcv(bars=200, seed=3)
    semaphore = asyncio.Semaphore(CONCURRENCY)
    stalls = [0.0]

    async def ticker() -> None:
        last = time.monotonic()
        while True:
            await asyncio.sleep(0.05)
            now = time.monotonic()
            stalls[0] = max(stalls[0], now - last - 0.05)
            last = now

    async def one(attack: Attack) -> Record:
        source = source_of(attack, port, canary_file, host_dirs)
        async with semaphore:
            started = time.monotonic()
            run = await run_signals(
                source,
                frame,
                [{}],
                limits=LIMITS if attack.dos else ROOMY,
                mode="bwrap",
                validate=False,
            )
            seconds = time.monotonic() - started
        return Record(attack, run, seconds, await survivors(run.run_id))

    tempfile.tempdir, saved = str(runs_root), tempfile.tempdir  # run dirs land in runs_root
    tick = asyncio.create_task(ticker())
    try:
        records = await asyncio.gather(*(one(a) for a in CORPUS))
        honest = await run_signals(HONEST, frame, [{}], limits=LIMITS)
    finally:
        tick.cancel()
        tempfile.tempdir = saved
    listener.setblocking(False)
    connections = 0
    while True:
        try:
            listener.accept()[0].close()
            connections += 1
        except BlockingIOError:
            break
    listener.close()
    yield Corpus(
        records={r.attack.name: r for r in records},
        host_dirs=host_dirs,
        runs_root=runs_root,
        connections=connections,
        max_loop_stall=stalls[0],
        honest_after=honest,
    )


def test_the_worker_runs_as_the_uid_asked_for() -> None:
    """``test_sandbox_attacks_unprivileged`` runs this module as ``nobody`` and says so."""
    expected = os.environ.get("STRATLAB_TEST_EXPECT_UID")
    if expected is not None:
        assert os.geteuid() == os.getuid() == int(expected)
        assert os.getgroups() in ([], [int(expected)])


def test_the_corpus_is_large_enough() -> None:
    assert len(CORPUS) >= 60 and len({a.name for a in CORPUS}) == len(CORPUS)


@pytest.mark.parametrize("attack", CORPUS, ids=lambda a: a.name)
def test_attack_is_contained(corpus: Corpus, attack: Attack) -> None:
    record = corpus.records[attack.name]
    run = record.run
    assert run.isolation == "bwrap" and run.notes == ()
    assert "ESCAPED" not in (run.error or ""), run.error
    assert not leaked(run), "the canary came back"
    assert record.alive_after == [], "processes outlived the run"
    if attack.expect is not None:
        assert run.error_kind in attack.expect, (run.error_kind, run.error)
    if attack.dos:
        # The wall-clock limit ends it; the slack covers a loaded CI machine (a run of
        # 4.1 s was seen with the whole suite running beside it), well short of what an
        # unbounded attack takes.
        assert record.seconds <= LIMITS.wall_seconds + DOS_SLACK_SECONDS, record.seconds
    # errors never show the worker's own paths
    for path in (str(corpus.runs_root), str(Path.cwd()), sys.prefix, interpreter()[1]):
        assert path not in (run.error or "")


@pytest.mark.parametrize("attack", ISSUE_15, ids=lambda a: a.name)
def test_new_attacks_end_in_one_clean_line_within_10_s(corpus: Corpus, attack: Attack) -> None:
    """Issue 15: whatever the code does, the worker gets a verdict, not an exception or a
    stalled activity, and the feedback is one line that does not echo forged text."""
    record = corpus.records[attack.name]
    run = record.run
    assert run.ok or run.error_kind is not None
    assert "\n" not in (run.error or "") and len(run.error or "") <= 1500
    assert "CODE TEXT" not in (run.error or "")
    assert record.seconds <= 10.0, record.seconds


def test_forged_and_inflated_results_are_rejected_strategies(corpus: Corpus) -> None:
    for name in ("forge_internal_status", "forge_internal_long_text"):
        assert "sandbox's own status" in (corpus.records[name].run.error or "")
    error = corpus.records["result_duplicate_keys"].run.error or ""
    assert "more than any valid answer for 200 bars x 1 parameter sets" in error


def test_memory_outside_the_address_space_is_refused(corpus: Corpus) -> None:
    assert "PermissionError" in (corpus.records["memfd_create"].run.error or "")
    assert "ESCAPED" not in (corpus.records["sysv_shm_many_segments"].run.error or "")


def test_no_cgroup_of_a_run_is_left(corpus: Corpus) -> None:
    ids = {r.run.run_id for r in corpus.records.values()}
    left = [
        path for path in Path("/sys/fs/cgroup").glob("**/stratlab-sandbox-*") if path.name in ids
    ]
    assert left == []


def test_nothing_was_written_outside_the_work_dir(corpus: Corpus) -> None:
    planted = [
        str(path)
        for directory in corpus.host_dirs
        if os.path.isdir(directory)
        for path in Path(directory).glob(f"{MARKER}*")
    ]
    planted += [
        os.path.join(root, name)
        for top in ("/tmp", "/var/tmp", "/dev/shm")
        for root, _, names in os.walk(top)
        for name in names
        if MARKER in name or name in ("pickled", "npload")
    ]
    assert planted == []
    assert list(corpus.runs_root.iterdir()) == [], "run dirs must be removed"


def test_no_connection_reached_the_listener(corpus: Corpus) -> None:
    assert corpus.connections == 0


def test_no_process_survived_any_run(corpus: Corpus) -> None:
    assert processes_with(MARKER) == []
    # This module's runs only: their run dirs live in runs_root. Other test files (run in
    # parallel by xdist) have sandboxes of their own alive at the same time.
    assert processes_with(str(corpus.runs_root)) == []
    assert [r for r in corpus.records.values() if processes_with(r.run.run_id)] == []


def test_the_worker_kept_working(corpus: Corpus) -> None:
    assert corpus.honest_after.ok, corpus.honest_after.error
    assert corpus.max_loop_stall < 1.0, corpus.max_loop_stall


def test_limits_classify_denial_of_service(corpus: Corpus) -> None:
    kinds = {name: r.run.error_kind for name, r in corpus.records.items()}
    assert kinds["cpu_spin"] == "timeout"
    assert kinds["print_flood"] == "output_limit"
    assert kinds["huge_numpy"] == "memory"
    assert kinds["fork_bomb"] == "runtime"
    assert "PermissionError" in (corpus.records["fork_bomb"].run.error or "")


def test_the_sandbox_sees_only_a_scrubbed_environment(corpus: Corpus) -> None:
    error = corpus.records["environ_canary"].run.error or ""
    assert error.startswith("RuntimeError: FOUND: {")
    assert CANARY_VAR not in error and "HOME" in error


def test_a_result_forged_by_the_code_is_rejected(corpus: Corpus) -> None:
    for name in ("traceback_frame_escape", "memmap_result_garbage"):
        run = corpus.records[name].run
        assert run.error_kind == "bad_result" and run.entries is None


def test_frames_are_rebuilt_faithfully(corpus: Corpus) -> None:
    """Not an attack: the honest run's frame is the one we sent."""
    assert isinstance(corpus.honest_after.entries, np.ndarray)
    assert corpus.honest_after.entries.shape == (200, 1)
    assert pd.api.types.is_bool_dtype(corpus.honest_after.entries.dtype)
