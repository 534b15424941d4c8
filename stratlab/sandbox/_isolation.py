"""How a sandboxed run is started: the bubblewrap command line, its mounts, and rlimits.

The sandbox sees only what Python, numpy and pandas need, read-only: the shared system
libraries (``/usr/lib``, ``/lib``), the interpreter's executable, shared library and
standard library (not the rest of its prefix), and the distributions numpy and pandas
depend on, each bound on its own under ``/sandbox/site``. Every site-packages or
dist-packages directory those binds would show (the base interpreter's, Debian's) is
covered by an empty read-only tmpfs, so no other installed package, ``.pth`` file or
whatever an operator dropped there is readable inside. Nothing of the worker's home,
temp dir, ``/etc``, project or environment is either. What strategy code can read it
can send back in its signal bits (one per bar and parameter set, a channel every
strategy has by design), which is why what it can read is kept to public files.

It gets ``/sandbox/in`` (request, data and code, read-only), a size-capped tmpfs
``/work`` as its working directory, and one host file bound on ``/work/result.json`` for
the answer, so the only host storage it can write is that file, capped by
``RLIMIT_FSIZE``. No ``/proc``, no ``/etc``, no network, a new user/pid/ipc/uts/cgroup
namespace without capabilities, ``--new-session`` (no terminal to inject keystrokes into)
and the seccomp filter of ``_seccomp``. Everything in the pid namespace dies with its init
process, so no process can outlive a run.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.metadata
import math
import os
import re
import resource
import shutil
import sys
import sysconfig
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path, PurePath

from stratlab.sandbox._cgroups import join_in_child
from stratlab.sandbox.limits import SandboxLimits

SANDBOX_SITE = "/sandbox/site"
SANDBOX_IN = "/sandbox/in"
SANDBOX_RUNNER = "/sandbox/runner.py"
SANDBOX_WORK = "/work"
SANDBOX_RESULT = f"{SANDBOX_WORK}/result.json"
RUNNER = Path(__file__).with_name("_runner.py")
SANDBOX_PACKAGES = ("numpy", "pandas")
NOBODY = "65534"

# One BLAS/OpenMP thread: deterministic sums, no thread bursts against RLIMIT_AS.
_ENV = {
    "OPENBLAS_NUM_THREADS": "1",
    "OMP_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "LC_ALL": "C.UTF-8",
}
_NAMESPACES = (
    "--unshare-all",
    "--unshare-user",  # required, not "-try": --disable-userns and --uid need it
    "--disable-userns",
    "--die-with-parent",
    "--new-session",
    "--clearenv",
    "--cap-drop",
    "ALL",
    "--uid",
    NOBODY,
    "--gid",
    NOBODY,
    "--hostname",
    "sandbox",
)
_REQUIREMENT_NAME = re.compile(r"\s*([A-Za-z0-9][A-Za-z0-9._-]*)")


@dataclass(frozen=True)
class Command:
    """Everything ``create_subprocess_exec`` needs for one run."""

    argv: list[str]
    cwd: str
    env: dict[str, str]


def find_bwrap() -> str | None:
    return shutil.which("bwrap") or next(
        (p for p in ("/usr/bin/bwrap", "/bin/bwrap") if os.access(p, os.X_OK)), None
    )


@functools.cache
def interpreter() -> tuple[str, str]:
    """``(executable, prefix)`` of the base interpreter behind this (virtual) env."""
    prefix = os.path.realpath(sys.base_prefix)
    executable = os.path.realpath(sys.executable)
    if not executable.startswith(prefix + os.sep):
        # a venv made with --copies: run the base interpreter, not the copy
        executable = f"{prefix}/bin/python{sys.version_info.major}.{sys.version_info.minor}"
    return executable, prefix


@functools.cache
def package_mounts() -> tuple[tuple[str, str], ...]:
    """``(host path, top-level name)`` of every file tree numpy and pandas need at import:
    the two distributions and their non-optional requirements, transitively."""
    seen: set[str] = set()
    mounts: dict[str, str] = {}
    pending = list(SANDBOX_PACKAGES)
    while pending:
        try:
            dist = importlib.metadata.distribution(pending.pop())
        except importlib.metadata.PackageNotFoundError:
            continue  # a requirement for another platform, e.g. tzdata on Linux
        key = dist.metadata["Name"].lower().replace("_", "-")
        if key in seen:
            continue
        seen.add(key)
        for file in dist.files or ():
            top = PurePath(file).parts[0]
            if top in ("..", "__pycache__") or top.endswith((".dist-info", ".pth")):
                continue
            host = os.path.realpath(str(dist.locate_file(top)))
            mounts.setdefault(top, host)
        for requirement in dist.requires or ():
            # Requirements behind an extra are optional; any other marker is kept, since
            # binding one package too many is harmless and one too few breaks the import.
            match = _REQUIREMENT_NAME.match(requirement)
            if match and "extra" not in requirement.partition(";")[2]:
                pending.append(match.group(1))
    return tuple((host, top) for top, host in sorted(mounts.items()) if os.path.exists(host))


def _system_mounts() -> list[str]:
    """Shared libraries the interpreter and the extension modules link against."""
    args: list[str] = []
    for path in ("/usr/lib", "/usr/lib64", "/usr/lib32", "/lib", "/lib64", "/lib32"):
        if os.path.islink(path):
            args += ["--symlink", os.readlink(path), path]
        elif os.path.isdir(path):
            args += ["--ro-bind", path, path]
    return args


@functools.cache
def interpreter_mounts() -> tuple[str, ...]:
    """Host paths of the interpreter that the sandbox binds at the same path: the
    executable, its shared libpython (when built with one) and the standard library,
    lib-dynload included; not the prefix's bin/, include/, share/ or site-packages."""
    executable, _ = interpreter()
    stdlib = os.path.realpath(os.path.dirname(os.__file__))
    paths = [executable, stdlib]
    dynload = sysconfig.get_config_var("DESTSHARED")
    if isinstance(dynload, str) and os.path.isdir(dynload):
        paths.append(os.path.realpath(dynload))
    libdir = sysconfig.get_config_var("LIBDIR")
    if sysconfig.get_config_var("Py_ENABLE_SHARED") and isinstance(libdir, str):
        with contextlib.suppress(OSError):
            paths += [
                os.path.join(libdir, name)
                for name in sorted(os.listdir(libdir))
                if name.startswith("libpython") and ".so" in name
            ]
    # a path inside another one is bound with it already
    kept = sorted({p for p in paths if os.path.exists(p)})
    return tuple(p for p in kept if not any(p.startswith(q + os.sep) for q in kept))


@functools.cache
def hidden_site_dirs() -> tuple[str, ...]:
    """Directories of installed packages that the binds above would otherwise show."""
    _, prefix = interpreter()
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    stdlib = os.path.realpath(os.path.dirname(os.__file__))
    base = sysconfig.get_paths(vars={"base": prefix, "platbase": prefix})
    candidates = {
        base["purelib"],
        base["platlib"],
        os.path.join(stdlib, "site-packages"),
        os.path.join(stdlib, "dist-packages"),
        "/usr/lib/python3/dist-packages",
        f"/usr/lib/{version}/site-packages",
        f"/usr/lib/{version}/dist-packages",
        f"/usr/local/lib/{version}/site-packages",
        f"/usr/local/lib/{version}/dist-packages",
    }
    visible = (*interpreter_mounts(), "/usr/lib", "/lib")
    found = {os.path.realpath(c) for c in candidates if os.path.isdir(c)}
    return tuple(
        sorted(d for d in found if any(d == v or d.startswith(v + os.sep) for v in visible))
    )


def _interpreter_args() -> list[str]:
    args: list[str] = []
    for path in interpreter_mounts():
        args += ["--ro-bind", path, path]
    for path in hidden_site_dirs():
        # empty, and read-only: --remount-ro of / does not recurse into other mounts
        args += ["--size", "4096", "--tmpfs", path, "--remount-ro", path]
    return args


def probe_command(bwrap: str) -> list[str]:
    """A minimal run with the same namespaces: does bubblewrap work on this host?"""
    executable, _ = interpreter()
    return [
        bwrap,
        *_NAMESPACES,
        *_system_mounts(),
        *_interpreter_args(),
        *("--remount-ro", "/"),
        *(executable, "-I", "-S", "-c", "pass"),
    ]


def bwrap_command(
    bwrap: str,
    run_dir: Path,
    run_id: str,
    limits: SandboxLimits,
    seccomp_fd: int | None,
    control_fd: int,
) -> Command:
    executable, _ = interpreter()
    argv = [bwrap, *_NAMESPACES, *_system_mounts(), *_interpreter_args()]
    for host, top in package_mounts():
        argv += ["--ro-bind", host, f"{SANDBOX_SITE}/{top}"]
    argv += [
        *("--ro-bind", str(run_dir / "in"), SANDBOX_IN),
        *("--ro-bind", str(RUNNER), SANDBOX_RUNNER),
        *("--dev", "/dev"),
        *("--size", str(limits.file_mb * 1024 * 1024), "--tmpfs", SANDBOX_WORK),
        *("--bind", str(run_dir / "result.json"), SANDBOX_RESULT),
        *("--remount-ro", "/dev", "--remount-ro", "/"),
        *("--chdir", SANDBOX_WORK),
    ]
    for name, value in {**_ENV, "HOME": SANDBOX_WORK, "TMPDIR": SANDBOX_WORK}.items():
        argv += ["--setenv", name, value]
    if seccomp_fd is not None:
        argv += ["--seccomp", str(seccomp_fd)]
    argv += [executable, "-I", "-S", "-B", SANDBOX_RUNNER, run_id, SANDBOX_IN, SANDBOX_RESULT]
    argv += [str(control_fd), SANDBOX_SITE]
    return Command(argv=argv, cwd="/", env={})


def rlimits_command(run_dir: Path, run_id: str, control_fd: int) -> Command:
    """The weaker fallback: the same runner as a plain child process with rlimits only."""
    executable, _ = interpreter()
    work = run_dir / "work"
    work.mkdir(exist_ok=True)
    sites = sorted({str(Path(host).parent) for host, _ in package_mounts()})
    argv = [executable, "-I", "-S", "-B", str(RUNNER), run_id, str(run_dir / "in")]
    argv += [str(run_dir / "result.json"), str(control_fd), *sites]
    env = {**_ENV, "HOME": str(work), "TMPDIR": str(work)}
    return Command(argv=argv, cwd=str(work), env=env)


def rlimits_preexec(limits: SandboxLimits, cgroup_procs: Sequence[str] = ()) -> Callable[[], None]:
    """A ``preexec_fn`` that applies the limits in the child between fork and exec, after
    moving it into the run's cgroups (``cgroup_procs``: their ``cgroup.procs`` files).

    Values are computed here, in the parent, so the child only makes setrlimit calls.
    RLIMIT_NPROC counts every process of the uid (and root is exempt from it), so it is
    set to the uid's current count plus ``max_processes``; in bwrap mode the seccomp
    filter is what actually stops forks.
    """
    nproc = limits.max_processes
    if os.geteuid() != 0:
        nproc += _processes_of_uid(os.getuid())
    cpu = max(1, math.ceil(limits.cpu_seconds))
    wanted = {
        # SIGXCPU at the soft limit, SIGKILL one second later if the code ignores it
        resource.RLIMIT_CPU: (cpu, cpu + 1),
        resource.RLIMIT_AS: (limits.memory_mb * 1024 * 1024,) * 2,
        resource.RLIMIT_FSIZE: (limits.file_mb * 1024 * 1024,) * 2,
        resource.RLIMIT_NPROC: (nproc, nproc),
        resource.RLIMIT_NOFILE: (limits.open_files, limits.open_files),
        resource.RLIMIT_CORE: (0, 0),
    }
    values = [(which, _within_hard(which, *pair)) for which, pair in wanted.items()]
    procs = list(cgroup_procs)

    def apply() -> None:
        join_in_child(procs)
        for which, pair in values:
            resource.setrlimit(which, pair)

    return apply


def _within_hard(which: int, soft: int, hard: int) -> tuple[int, int]:
    """Never ask for more than the current hard limit (only root may raise it)."""
    current = resource.getrlimit(which)[1]
    if current == resource.RLIM_INFINITY:
        return soft, hard
    return min(soft, current), min(hard, current)


def _processes_of_uid(uid: int) -> int:
    """Tasks (threads count too, as they do for RLIMIT_NPROC) owned by ``uid``."""
    count = 0
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                if entry.stat().st_uid == uid:
                    count += len(os.listdir(f"/proc/{entry.name}/task"))
            except OSError:
                continue  # exited while we looked
    return count
