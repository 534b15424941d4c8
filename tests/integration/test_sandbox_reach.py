"""What strategy code can read inside the bwrap sandbox (issue 15, item 10).

Signals are data the strategy chooses, one bit per bar and parameter set, so anything
the code can read it can send back; that channel is inherent (the strategy's output IS
data). What must hold instead is that nothing secret is readable inside. Canaries are
planted where a worker keeps secrets or a test would find one (the temp dir, the home
dir, an ``/etc`` config dir, the project's ``.stratlab`` state dir, the worker's
environment) and in the two site-packages the interpreter has (the base prefix's and
the virtual env's), beside the packages the sandbox does bind. One run then looks for
them by their host paths and by reading every file it can see outside the public system
libraries, the standard library and the bound numpy/pandas trees, and reports what it
found and which top-level directories it sees, through the signal bits.
"""

from __future__ import annotations

import json
import os
import sysconfig
import tempfile
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from stratlab.market.synthetic import synthetic_ohlcv
from stratlab.sandbox._isolation import find_bwrap, interpreter
from stratlab.sandbox.executor import SandboxLimits, SandboxUnavailableError, run_signals

pytestmark = pytest.mark.skipif(
    find_bwrap() is None, reason="bubblewrap (bwrap) is not installed: apt-get install bubblewrap"
)

CANARY = f"reach-canary-{uuid.uuid4().hex}"
CANARY_VAR = f"STRATLAB_REACH_CANARY_{uuid.uuid4().hex[:8].upper()}"
BARS, COLUMNS = 2000, 32  # 64,000 bits: room for an 8 KB report
LIMITS = SandboxLimits(cpu_seconds=20, wall_seconds=40, memory_mb=768, file_mb=8)

# The canary goes in reversed, so the strategy's own file (/sandbox/in) never matches.
SEEKER = '''\
import json, os

CANARY = @REVERSED@[::-1]
PLANTED = @PLANTED@
SKIP = @SKIP@


def look():
    found, readable = [], []
    for path in PLANTED:
        try:
            with open(path, "rb") as handle:
                text = handle.read().decode("latin-1")
        except OSError:
            continue
        readable.append(path)
        if CANARY in text:
            found.append(path)
    walked = 0
    for root, dirs, files in os.walk("/"):
        dirs[:] = [d for d in dirs if os.path.join(root, d) not in SKIP]
        for name in files:
            path = os.path.join(root, name)
            try:
                with open(path, "rb") as handle:
                    text = handle.read(1 << 20).decode("latin-1")
            except OSError:
                continue
            walked += 1
            if CANARY in text:
                found.append(path)
    env = [k for k, v in os.environ.items() if CANARY in v]
    prefix = @PREFIX@
    return {
        "found": found, "readable": readable, "env": env, "walked": walked,
        "root": sorted(os.listdir("/")),
        "prefix": sorted(os.listdir(prefix)) if os.path.isdir(prefix) else None,
        "base_site": sorted(os.listdir(@BASE_SITE@)) if os.path.isdir(@BASE_SITE@) else None,
    }


BITS = []


def signals(data, params):
    """The report goes back in the signal bits: the channel every strategy has."""
    import numpy as np

    if not BITS:
        raw = json.dumps(look()).encode()
        BITS.append(np.unpackbits(np.frombuffer(len(raw).to_bytes(4, "big") + raw, np.uint8)))
    bits = BITS[0]
    n = len(data)
    start = int(params["column"]) * n
    column = np.zeros(n, dtype=bool)
    part = bits[start:start + n].astype(bool)
    column[: len(part)] = part
    return column, np.zeros(n, dtype=bool)
'''


def _plant(path: Path, planted: list[Path]) -> None:
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"secret={CANARY}\n")
    except OSError:
        return  # not writable for this worker: nothing to hide there either
    planted.append(path)


@pytest.fixture(scope="module")
def canaries(tmp_path_factory: pytest.TempPathFactory) -> Iterator[list[Path]]:
    tag = f"stratlab-reach-{uuid.uuid4().hex[:8]}"
    _, prefix = interpreter()
    base_site = Path(sysconfig.get_paths(vars={"base": prefix, "platbase": prefix})["purelib"])
    venv_site = Path(sysconfig.get_paths()["purelib"])
    made_dirs = [Path("/etc") / tag]
    candidates = [
        Path(tempfile.gettempdir()) / f"{tag}.txt",
        Path.home() / f".{tag}",
        Path("/etc") / tag / "secrets.env",
        Path.cwd() / ".stratlab" / f"{tag}.env",
        base_site / f"{tag}.txt",
        venv_site / f"{tag}.txt",
        tmp_path_factory.mktemp("reach") / "token",
    ]
    planted: list[Path] = []
    for path in candidates:
        _plant(path, planted)
    os.environ[CANARY_VAR] = CANARY
    try:
        yield planted
    finally:
        os.environ.pop(CANARY_VAR, None)
        for path in planted:
            path.unlink(missing_ok=True)
        for directory in made_dirs:
            if directory.is_dir() and not any(directory.iterdir()):
                directory.rmdir()


@pytest.fixture(scope="module")
async def report(canaries: list[Path]) -> dict[str, Any]:
    _, prefix = interpreter()
    base_site = sysconfig.get_paths(vars={"base": prefix, "platbase": prefix})["purelib"]
    stdlib = os.path.realpath(os.path.dirname(os.__file__))
    # public files the sandbox binds on purpose: system libraries, the standard library
    # (the base site-packages inside it is walked), and the /dev nodes
    skip = {"/usr", "/lib", "/lib64", "/lib32", "/dev", "/proc", "/sys", "/sandbox/site"}
    skip |= {os.path.join(stdlib, d) for d in os.listdir(stdlib) if d != "site-packages"}
    source = (
        SEEKER.replace("@REVERSED@", repr(CANARY[::-1]))
        .replace("@PLANTED@", repr([str(p) for p in canaries]))
        .replace("@SKIP@", repr(sorted(skip)))
        .replace("@PREFIX@", repr(prefix))
        .replace("@BASE_SITE@", repr(base_site))
    )
    columns = [{"column": float(i)} for i in range(COLUMNS)]
    try:
        run = await run_signals(
            source, synthetic_ohlcv(bars=BARS, seed=1), columns, limits=LIMITS, validate=False
        )
    except SandboxUnavailableError as exc:
        pytest.skip(f"the bwrap sandbox cannot run on this host: {exc}")
    assert run.entries is not None, run.error
    raw = np.packbits(run.entries.T.ravel()).tobytes()
    size = int.from_bytes(raw[:4], "big")
    return dict(json.loads(raw[4 : 4 + size]))


def test_canaries_were_planted_where_secrets_live(canaries: list[Path]) -> None:
    # at least the temp dir, the home dir and a test dir; as root also /etc and both sites
    assert len(canaries) >= 3
    if os.geteuid() == 0:
        assert len(canaries) == 7, canaries


def test_no_canary_is_readable_inside(report: dict[str, Any]) -> None:
    assert report["found"] == [], report
    assert report["readable"] == [], report
    assert report["env"] == [], report


def test_the_walk_saw_the_sandbox_own_files(report: dict[str, Any]) -> None:
    """The walk ran for real: the inputs and the runner are files it can read."""
    assert isinstance(report["walked"], int) and report["walked"] >= 3, report


def test_the_interpreter_prefix_holds_only_what_python_needs(report: dict[str, Any]) -> None:
    executable, prefix = interpreter()
    assert report["base_site"] in (None, []), report["base_site"]  # hidden: nothing inside
    if executable.startswith(prefix + os.sep):
        assert set(report["prefix"] or ()) <= {"bin", "lib"}, report["prefix"]


def test_the_root_shows_only_the_sandbox_mounts(report: dict[str, Any]) -> None:
    executable, prefix = interpreter()
    tops = {Path(p).parts[1] for p in (executable, prefix)}
    allowed = {"usr", "lib", "lib64", "lib32", "bin", "sbin", "dev", "sandbox", "work", *tops}
    root = set(report["root"])
    assert root <= allowed, sorted(root - allowed)
    assert "etc" not in root and "tmp" not in root
