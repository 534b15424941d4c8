"""The attack corpus again, with the worker running as an unprivileged uid (issue 15).

The image runs its worker as an unprivileged user, which changes what binds: RLIMIT_NPROC
applies (it exempts root), the worker cannot make cgroups on most hosts, and bubblewrap
maps a uid that owns nothing. When this suite runs as root, this test runs
``test_sandbox_attacks.py`` in a child process as ``nobody`` and requires every test
there to pass, none to skip. The child gets a private mount namespace in which ``/root``
is an empty tmpfs with only the interpreter's install (``~/.pyenv``) bound back, because
an interpreter under a 0700 home is out of reach of any other uid; nothing else changes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from stratlab.sandbox._isolation import find_bwrap, interpreter

pytestmark = [
    pytest.mark.skipif(
        find_bwrap() is None,
        reason="bubblewrap (bwrap) is not installed: apt-get install bubblewrap",
    ),
    pytest.mark.slow,
]

ROOT = Path(__file__).resolve().parents[2]
NOBODY = 65534
CORPUS_TEST = "tests/integration/test_sandbox_attacks.py"


def _unprivileged_command(stage: Path, junit: Path) -> list[str]:
    """``unshare`` + ``setpriv``: the corpus as uid/gid ``nobody``, no supplementary groups."""
    _, prefix = interpreter()
    home = Path.home().resolve()
    binds = ""
    if prefix.startswith(str(home) + os.sep):
        # /root is 0700: bind the interpreter's top directory under it back onto a tmpfs
        top = home / Path(prefix).relative_to(home).parts[0]
        keep = stage / "keep"
        keep.mkdir()
        binds = (
            f"mount --bind {top} {keep} && "
            f"mount -t tmpfs -o mode=0755,size=1m tmpfs {home} && "
            f"mkdir {top} && mount --bind {keep} {top} && "
        )
    pytest_argv = [
        sys.executable, "-m", "pytest", CORPUS_TEST, "-q", "-p", "no:cacheprovider",
        f"--junitxml={junit}", f"--basetemp={stage / 'pytest'}",
    ]  # fmt: skip
    setpriv = [f"--reuid={NOBODY}", f"--regid={NOBODY}", "--clear-groups", "--inh-caps=-all"]
    env = [f"HOME={stage}", f"TMPDIR={stage}", f"STRATLAB_TEST_EXPECT_UID={NOBODY}"]
    script = binds + "exec setpriv " + " ".join([*setpriv, "--", "env", *env, *pytest_argv])
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", script]


def test_the_attack_corpus_holds_for_an_unprivileged_worker(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip(
            f"this suite already runs unprivileged (uid {os.geteuid()}): "
            f"{CORPUS_TEST} is the unprivileged run"
        )
    missing = [tool for tool in ("unshare", "setpriv", "sh") if shutil.which(tool) is None]
    if missing:
        pytest.skip(f"cannot drop to an unprivileged uid here: {', '.join(missing)} missing")
    stage = Path(tempfile.mkdtemp(prefix="stratlab-unprivileged-"))
    try:
        stage.chmod(0o777)
        junit = stage / "corpus.xml"
        done = subprocess.run(
            _unprivileged_command(stage, junit),
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=900,
        )
        tail = (done.stdout + done.stderr)[-4000:]
        assert junit.exists(), (
            f"the unprivileged run did not report (rc {done.returncode}):\n{tail}"
        )
        suite = ET.parse(junit).getroot()
        suite = suite if suite.tag == "testsuite" else suite[0]
        counts = {k: int(suite.get(k, "0")) for k in ("tests", "failures", "errors", "skipped")}
        print(f"unprivileged corpus run: {counts} in {suite.get('time')} s")
        assert done.returncode == 0, tail
        assert counts["failures"] == counts["errors"] == 0, tail
        assert counts["skipped"] == 0, f"the unprivileged run skipped tests:\n{tail}"
        assert counts["tests"] >= 60, counts
    finally:
        shutil.rmtree(stage, ignore_errors=True)
