# ruff: noqa: E501  (the corpus is data: one attack per line reads best)
"""The attack corpus of ``test_sandbox_attacks``: hostile ``signals`` modules.

Each attack runs with the validator bypassed, so the sandbox alone must hold. An attack
raises ``RuntimeError("ESCAPED: ...")`` when it gets through, and reports anything it
reads, so a canary it finds ends up in the run's error text. ``@NAME@`` placeholders are
filled in by the test (marker, canary variable and file, listener port, host paths).
"""

from __future__ import annotations

from dataclasses import dataclass

PRELUDE = '''\
import os
import sys
import time

MARKER = "@MARKER@"
CANARY_VAR = "@CANARY_VAR@"
CANARY_FILE = "@CANARY_FILE@"
PORT = @PORT@
HOST_DIRS = @HOST_DIRS@


def ok(data):
    close = data["close"]
    return (close > close.shift(1)).to_numpy(), (close < close.shift(1)).to_numpy()


def escaped(what):
    raise RuntimeError("ESCAPED: " + str(what)[:300])


def report(what):
    raise RuntimeError("FOUND: " + str(what)[:350])


def write_everywhere(tag):
    """Try to leave a file in every host directory; /work is the sandbox's own tmpfs."""
    for directory in HOST_DIRS:
        path = os.path.join(directory, MARKER + "-" + tag)
        try:
            with open(path, "w") as handle:
                handle.write("x")
        except OSError:
            continue
        if not path.startswith("/work/"):
            escaped("wrote " + path)


def libc():
    import ctypes

    return ctypes.CDLL("libc.so.6", use_errno=True)

'''


@dataclass(frozen=True)
class Attack:
    name: str
    body: str
    dos: bool = False
    expect: frozenset[str] | None = None  # error kinds allowed; None: any outcome


def attack(name: str, body: str, *, dos: bool = False, expect: str | None = None) -> Attack:
    return Attack(name, body, dos, frozenset(expect.split()) if expect else None)


def _signals(lines: str) -> str:
    """A signals function whose body is ``lines`` followed by an honest return."""
    indented = "\n".join("    " + line if line else "" for line in lines.splitlines())
    return f"def signals(data, params):\n{indented}\n    return ok(data)\n"


_SUBCLASS_OS = """\
for cls in ().__class__.__base__.__subclasses__():
    init = cls.__init__
    if hasattr(init, "__globals__") and "system" in init.__globals__:
        code = init.__globals__["system"]("touch /tmp/" + MARKER + "-subclass")
        if code == 0:
            escaped("system via " + cls.__name__)
"""

_CANARY_IN_SIGNALS = """\
import numpy as np
text = os.environ.get(CANARY_VAR, "")
try:
    text += open(CANARY_FILE).read()
except OSError:
    pass
bits = np.unpackbits(np.frombuffer((text or "nothing").encode(), dtype=np.uint8))
entries = np.zeros(len(data), dtype=bool)
entries[: min(len(bits), len(data))] = bits[: len(data)].astype(bool)
return entries, entries
"""

# fmt: off
IMPORTS = [
    attack("os_system", _signals('if os.system("touch /tmp/" + MARKER + "-system") == 0:\n    escaped("os.system")')),
    attack("subprocess_run", _signals('import subprocess\nsubprocess.run(["/bin/sh", "-c", "touch /tmp/" + MARKER])\nescaped("subprocess")'), expect="runtime"),
    attack("dunder_import_subprocess", _signals('__import__("subprocess").Popen(["/usr/bin/env"])\nescaped("Popen")'), expect="runtime"),
    attack("importlib_ctypes_system", _signals('import importlib\nif importlib.import_module("ctypes").CDLL(None).system(b"true") == 0:\n    escaped("ctypes system")')),
    attack("builtins_import", _signals('b = __builtins__ if isinstance(__builtins__, dict) else vars(__builtins__)\nif b["__import__"]("os").system("true") == 0:\n    escaped("builtins")')),
    attack("sys_modules_os", _signals('if sys.modules["os"].system("true") == 0:\n    escaped("sys.modules")')),
    attack("worker_packages_invisible", _signals("import vectorbt\nescaped('vectorbt importable')"), expect="runtime"),
    attack("project_invisible", _signals("sys.path.append('/work/main')\nimport stratlab\nescaped('stratlab importable')"), expect="runtime"),
    attack("subclass_walk_os_system", _signals(_SUBCLASS_OS)),
    attack("subclass_walk_popen", _signals('import subprocess\nfor cls in object.__subclasses__():\n    if cls.__name__ == "Popen":\n        cls(["/bin/true"])\n        escaped("Popen")'), expect="runtime"),
    attack("catch_warnings_builtins", _signals('import warnings\nb = warnings.catch_warnings()._module.__builtins__\nif b["__import__"]("os").system("true") == 0:\n    escaped("warnings")')),
]

FRAMES = [
    attack("generator_frame_globals", _signals('def gen():\n    yield sys._getframe(0)\nframe = next(gen())\nwhile frame.f_back is not None:\n    frame = frame.f_back\ng = frame.f_globals\nif g["sys"].modules["os"].system("true") == 0:\n    escaped("frame globals")\nreport(sorted(g["sys"].modules["os"].environ.items()))')),
    attack("generator_gi_frame_walk", _signals('def gen():\n    yield 1\ng = gen()\nnext(g)\nf = g.gi_frame\nwhile f is not None:\n    for value in f.f_globals.values():\n        if getattr(value, "__name__", "") == "os":\n            report(dict(value.environ))\n    f = f.f_back')),
    attack("traceback_frame_escape", _signals('try:\n    1 / 0\nexcept ZeroDivisionError as exc:\n    frame = exc.__traceback__.tb_frame\nwhile frame.f_back is not None:\n    frame = frame.f_back\nrunner = frame.f_globals\npath = frame.f_locals.get("result_path") or "/work/result.json"\nwith open(path, "w") as handle:\n    handle.write(\'{"status": "ok", "n_bars": 1, "n_sets": 1, "entries": "gA==", "exits": "AA=="}\')\nos._exit(0)'), expect="bad_result"),
    attack("frame_builtins_open", _signals('f = sys._getframe(1)\nopen_ = f.f_builtins["open"]\nreport(open_(CANARY_FILE).read())'), expect="runtime"),
    attack("exec_replaces_runner", _signals('os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(60)", MARKER])'), dos=True, expect="timeout"),
]

FORMAT = [
    attack("format_globals_environ", _signals('text = "{0.__globals__[os].environ}".format(escaped)\nreport(text)'), expect="runtime"),
    attack("format_sys_modules", _signals('text = "{0.__globals__[sys].modules}".format(escaped)\nif "subprocess" in text:\n    report(text[:200])')),
    attack("format_map_builtins", _signals('text = "{f.__globals__[__builtins__]}".format_map({"f": escaped})\nreport(text[:200])'), expect="runtime"),
]

NATIVE = [
    attack("ctypeslib_libc_system", _signals('import numpy as np\nc = np.ctypeslib.load_library("libc.so.6", "/usr/lib/x86_64-linux-gnu")\nif c.system(b"touch /tmp/x") == 0:\n    escaped("ctypeslib system")')),
    attack("ctypes_raw_fork", _signals('if libc().syscall(57) >= 0:\n    escaped("raw fork")')),
    attack("ctypes_raw_socket", _signals('if libc().syscall(41, 2, 1, 0) >= 0:\n    escaped("raw socket")')),
    attack("ctypes_unshare_user", _signals('if libc().unshare(0x10000000) == 0:\n    escaped("unshare")')),
    attack("ctypes_mount_proc", _signals('os.makedirs("/work/p", exist_ok=True)\nif libc().mount(b"proc", b"/work/p", b"proc", 0, None) == 0:\n    report(open("/work/p/1/environ").read())')),
    attack("ctypes_ptrace_init", _signals('if libc().ptrace(16, 1, 0, 0) == 0:\n    escaped("ptrace attach")')),
    attack("ctypes_keyctl", _signals('if libc().syscall(250, 0, -4, 0) >= 0:\n    escaped("keyctl")')),
    attack("ctypes_segfault", _signals('import ctypes\nctypes.string_at(0)'), expect="runtime"),
    attack("ctypes_setns", _signals('if libc().setns(0, 0) == 0:\n    escaped("setns")')),
]

FILES = [
    attack("pandas_read_canary", _signals('import pandas as pd\nreport(pd.read_csv(CANARY_FILE))'), expect="runtime"),
    attack("numpy_loadtxt_passwd", _signals('import numpy as np\nreport(np.loadtxt("/etc/passwd", dtype=str))'), expect="runtime"),
    attack("open_canary_file", _signals('report(open(CANARY_FILE).read())'), expect="runtime"),
    attack("pandas_to_csv_everywhere", _signals('for d in HOST_DIRS:\n    try:\n        data.to_csv(os.path.join(d, MARKER + "-csv"))\n    except OSError:\n        continue\n    if not d.startswith("/work"):\n        escaped("to_csv " + d)')),
    attack("numpy_save_everywhere", _signals('import numpy as np\nfor d in HOST_DIRS:\n    try:\n        np.save(os.path.join(d, MARKER + "-npy"), np.zeros(3))\n    except OSError:\n        continue\n    if not d.startswith("/work"):\n        escaped("np.save " + d)')),
    attack("write_everywhere", _signals('write_everywhere("open")')),
    attack("write_inputs_readonly", _signals('with open("/sandbox/in/strategy.py", "a") as h:\n    h.write("x")\nescaped("inputs writable")'), expect="runtime"),
    attack("proc_environ", _signals('for path in ("/proc/self/environ", "/proc/1/environ", "/proc/%d/environ" % os.getppid()):\n    try:\n        report(open(path).read())\n    except OSError:\n        continue')),
    attack("walk_for_canary", _signals('for top in ("/sandbox", "/work"):\n    for root, dirs, files in os.walk(top):\n        for name in files:\n            try:\n                text = open(os.path.join(root, name), "rb").read(1 << 20)\n            except OSError:\n                continue\n            if (CANARY_VAR + "=").encode() in text:\n                report(text[:300])')),
    attack("symlink_root_write", _signals('os.symlink("/", "/work/root")\nwith open("/work/root/tmp/" + MARKER + "-link", "w") as h:\n    h.write("x")\nescaped("through symlink")'), expect="runtime"),
    attack("hardlink_result", _signals('os.link("/work/result.json", "/work/linked")\nescaped("hardlink")'), expect="runtime"),
    attack("memmap_result_garbage", _signals('import numpy as np\nwith open("/work/result.json", "wb") as h:\n    h.write(b"\\x80\\x04garbage" * 100)\nos._exit(0)'), expect="bad_result"),
    attack("mknod_device", _signals('os.mknod("/work/sda", 0o600 | 0o60000, os.makedev(8, 0))\nescaped("mknod")'), expect="runtime"),
    attack("chroot", _signals('os.chroot("/work")\nescaped("chroot")'), expect="runtime"),
    attack("setuid_root", _signals('os.setuid(0)\nescaped("setuid")'), expect="runtime"),
    attack("dev_tty_inject", _signals('import fcntl, termios\nfd = os.open("/dev/tty", os.O_RDWR)\nfcntl.ioctl(fd, termios.TIOCSTI, b"x")\nescaped("TIOCSTI")'), expect="runtime"),
    attack("fd_exhaustion", _signals('handles = []\ntry:\n    while True:\n        handles.append(open("/dev/null"))\nexcept OSError:\n    pass\nif len(handles) > 200:\n    escaped("%d files open" % len(handles))')),
]

PICKLE = [
    attack("pickle_os_system", _signals('import pickle\nif pickle.loads(b"cos\\nsystem\\n(S\'touch /tmp/pickled\'\\ntR.") == 0:\n    escaped("pickle system")')),
    attack("pickle_popen", _signals('import pickle\npickle.loads(b"csubprocess\\nPopen\\n((S\'/bin/true\'\\nltR.")\nescaped("pickle Popen")'), expect="runtime"),
    attack("numpy_load_pickled", _signals('import numpy as np, pickle\nclass Evil:\n    def __reduce__(self):\n        return (os.system, ("touch /tmp/npload",))\nnp.save("/work/evil.npy", np.array([Evil()], dtype=object), allow_pickle=True)\nresult = np.load("/work/evil.npy", allow_pickle=True)\nif result[0] == 0:\n    escaped("np.load pickle")')),
    attack("pandas_read_pickle", _signals('import pandas as pd, pickle\nwith open("/work/evil.pkl", "wb") as h:\n    h.write(b"cos\\nsystem\\n(S\'true\'\\ntR.")\nif pd.read_pickle("/work/evil.pkl") == 0:\n    escaped("read_pickle")')),
]

PROCESSES = [
    attack("fork_bomb", _signals('while True:\n    os.fork()'), dos=True, expect="runtime"),
    attack("double_fork_setsid", _signals('pid = os.fork()\nif pid == 0:\n    os.setsid()\n    if os.fork() == 0:\n        os.execv(sys.executable, [sys.executable, "-c", "import time; time.sleep(60)", MARKER])\n    os._exit(0)\nescaped("forked")'), expect="runtime"),
    attack("posix_spawn", _signals('os.posix_spawn(sys.executable, [sys.executable, "-c", "0", MARKER], {})\nescaped("posix_spawn")'), expect="runtime"),
    attack("multiprocessing", _signals("import multiprocessing\np = multiprocessing.Process(target=time.sleep, args=(60,))\np.start()\nescaped('multiprocessing')"), expect="runtime"),
    attack("ctypes_vfork", _signals('if libc().syscall(58) >= 0:\n    escaped("vfork")')),
    attack("thread_bomb", _signals('import threading\nthreads = []\ntry:\n    while len(threads) < 5000:\n        t = threading.Thread(target=time.sleep, args=(30,), daemon=True)\n        t.start()\n        threads.append(t)\nexcept (RuntimeError, MemoryError):\n    pass'), dos=True),
    attack("kill_sandbox_init", _signals('import signal\nos.kill(1, signal.SIGKILL)\ntime.sleep(5)'), dos=True, expect="runtime timeout"),
    attack("kill_everything", _signals('import signal\nos.kill(-1, signal.SIGKILL)\ntime.sleep(5)'), dos=True, expect="runtime timeout"),
    attack("setrlimit_raise", _signals("import resource\nresource.setrlimit(resource.RLIMIT_CPU, (resource.RLIM_INFINITY, resource.RLIM_INFINITY))\nescaped('rlimit raised')"), expect="runtime"),
]

DOS = [
    attack("cpu_spin", _signals('while True:\n    pass'), dos=True, expect="timeout"),
    attack("cpu_spin_ignoring_sigxcpu", _signals('import signal\nsignal.signal(signal.SIGXCPU, signal.SIG_IGN)\nwhile True:\n    pass'), dos=True, expect="timeout"),
    attack("numpy_spin", _signals('import numpy as np\na = np.random.rand(200, 200)\nwhile True:\n    a = a @ a / 200.0'), dos=True, expect="timeout"),
    attack("sleep_forever", _signals('time.sleep(3600)'), dos=True, expect="timeout"),
    attack("signal_pause", _signals('import signal\nsignal.pause()'), dos=True, expect="timeout"),
    attack("recursion", _signals('def f(n):\n    return f(n + 1)\nf(0)'), expect="runtime"),
    attack("huge_numpy", _signals('import numpy as np\nnp.ones(10**11)'), dos=True, expect="memory"),
    attack("huge_bytearray", _signals('bytearray(2**40)'), dos=True, expect="memory"),
    # The memory limit normally stops it; on a loaded machine the clock can come first.
    attack("growing_list", _signals('chunks = []\nwhile True:\n    chunks.append(bytearray(10**7))'), dos=True, expect="memory timeout"),
    attack("fill_work_tmpfs", _signals('i = 0\ntry:\n    while True:\n        with open("/work/fill%d" % i, "wb") as h:\n            h.write(b"x" * 10**6)\n        i += 1\nexcept OSError:\n    pass'), dos=True),
    attack("huge_result_file", _signals('with open("/work/result.json", "wb") as h:\n    while True:\n        h.write(b" " * 10**6)'), dos=True, expect="runtime"),
    attack("print_flood", _signals('while True:\n    print("x" * 10000)'), dos=True, expect="output_limit"),
    attack("stderr_flood", _signals('while True:\n    sys.stderr.write("y" * 10000)'), dos=True, expect="output_limit"),
    attack("raw_fd_flood", _signals('while True:\n    os.write(1, b"z" * 65536)'), dos=True, expect="output_limit"),
    attack("close_output_and_hang", _signals('os.close(1)\nos.close(2)\ntime.sleep(3600)'), dos=True, expect="timeout"),
]

NETWORK = [
    attack("tcp_connect_loopback", _signals('import socket\ns = socket.create_connection(("127.0.0.1", PORT), timeout=1)\nescaped("connected")'), expect="runtime"),
    attack("udp_send_loopback", _signals('import socket\nsocket.socket(socket.AF_INET, socket.SOCK_DGRAM).sendto(b"x", ("127.0.0.1", PORT))\nescaped("udp")'), expect="runtime"),
    attack("unix_socket_docker", _signals('import socket\ns = socket.socket(socket.AF_UNIX)\ns.connect("/var/run/docker.sock")\nescaped("docker.sock")'), expect="runtime"),
    attack("urllib_loopback", _signals('import urllib.request\nurllib.request.urlopen("http://127.0.0.1:%d/" % PORT, timeout=1)\nescaped("http")'), expect="runtime"),
    attack("socketpair", _signals('import socket\nsocket.socketpair()\nescaped("socketpair")'), expect="runtime"),
]

SECRETS = [
    attack("environ_canary", _signals('if CANARY_VAR in os.environ:\n    report(os.environ[CANARY_VAR])\nreport(dict(os.environ))'), expect="runtime"),
    attack("environ_via_frame", _signals("report(sys._getframe().f_globals['os'].environ)"), expect="runtime"),
    attack("canary_in_signals", _signals(_CANARY_IN_SIGNALS)),
    attack("read_host_home", _signals('for path in ("/root/.bash_history", "/root/.ssh/id_rsa", "/etc/shadow", "/work/main/README.md"):\n    try:\n        report(path + open(path).read(100))\n    except OSError:\n        continue')),
]

# --- issue 15: results the code forges or inflates, memory outside the address space,
# threads, routes around the validator, and inputs that used to crash it -----------------

# The runner is started as ``runner.py RUN_ID IN_DIR RESULT_PATH CONTROL_FD ...``.
_WRITE_RESULT = 'with open(sys.argv[3], "wb") as h:\n    h.write({payload})\nos._exit(0)'


def _result_attack(name: str, payload: str) -> Attack:
    return attack(name, _signals(_WRITE_RESULT.format(payload=payload)), expect="bad_result")


_PIPES = """\
import fcntl
held = 0
pipes = []
try:
    while True:
        r, w = os.pipe()
        pipes.append((r, w))
        fcntl.fcntl(w, 1031, 1 << 20)  # F_SETPIPE_SZ
        os.set_blocking(w, False)
        try:
            while True:
                held += os.write(w, b"x" * 65536)
        except BlockingIOError:
            pass
except OSError:
    pass
if held > 40 << 20:
    escaped("%d MiB in pipe buffers" % (held >> 20))
"""

_THREADS_SMALL_STACKS = """\
import threading
threading.stack_size(65536)
threads = []
try:
    while len(threads) < 3000:
        t = threading.Thread(target=time.sleep, args=(30,), daemon=True)
        t.start()
        threads.append(t)
except (RuntimeError, MemoryError):
    pass
if len(threads) > 500:
    escaped("%d threads" % len(threads))
"""

# fmt: off
RESULTS = [
    _result_attack("forge_internal_status", 'b\'{"status": "internal", "error": "CODE TEXT"}\''),
    _result_attack("forge_internal_long_text", 'b\'{"status": "internal", "error": "\' + b"CODE TEXT " * 914 + b\'"}\''),
    _result_attack("result_duplicate_keys", 'b"{" + b\'"n_bars": 1, \' * 550_000 + b\'"status": "ok"}\''),
    _result_attack("result_tiny_arrays_within_bound", 'b"[" + b"[]," * 80_000 + b"[]]"'),
    _result_attack("result_deep_nesting", 'b"[" * 100_000 + b"]" * 100_000'),
    _result_attack("result_huge_number", 'b\'{"status": "ok", "n_bars": \' + b"1" * 200_000 + b"}"'),
    _result_attack("result_nan_count", 'b\'{"status": "ok", "n_bars": NaN, "n_sets": 1, "entries": "", "exits": ""}\''),
    _result_attack("result_wrong_shape", 'b\'{"status": "ok", "n_bars": 1, "n_sets": 1, "entries": "gA==", "exits": "AA=="}\''),
    _result_attack("result_unasked_probe", 'b\'{"status": "ok", "n_bars": 200, "n_sets": 1, "entries": "\' + b"A" * 36 + b\'AA==", "exits": "\' + b"A" * 36 + b\'AA==", "probe": {"cuts": 1, "first_bar": null, "series": "", "cut": null, "error": null}}\''),
    _result_attack("result_unknown_error_kind", 'b\'{"status": "error", "error_kind": "internal", "error": "x"}\''),
    _result_attack("result_extra_field", 'b\'{"status": "error", "error_kind": "runtime", "error": "x", "pickle": "gASV"}\''),
    attack("control_fd_is_closed", _signals('try:\n    os.fstat(int(sys.argv[4]))\nexcept OSError:\n    pass\nelse:\n    escaped("control pipe open")\nos.write(int(sys.argv[4]), b"forged")'), expect="runtime"),
    attack("error_text_with_newlines", _signals('raise RuntimeError("first\\nsecond\\r\\x1b[31mthird")'), expect="runtime"),
    attack("exit_status_forged", _signals('os._exit(137)')),
]

MEMORY = [
    attack("sysv_shmget", _signals('if libc().shmget(0, 1 << 30, 0o1000 | 0o600) >= 0:\n    escaped("shmget")')),
    attack("sysv_shm_many_segments", _signals('made = [libc().shmget(0, 64 << 20, 0o1000 | 0o600) for _ in range(40)]\nif max(made) >= 0:\n    escaped("shm segments")')),
    attack("sysv_msgget", _signals('if libc().msgget(0, 0o1000 | 0o600) >= 0:\n    escaped("msgget")')),
    attack("sysv_semget", _signals('if libc().semget(0, 1, 0o1000 | 0o600) >= 0:\n    escaped("semget")')),
    attack("posix_mq_open", _signals('import ctypes\nrt = ctypes.CDLL("librt.so.1", use_errno=True)\nif rt.mq_open(b"/q", 0o100 | 2, 0o600, None) >= 0:\n    escaped("mq_open")')),
    attack("memfd_create", _signals('fd = os.memfd_create("held")\nos.ftruncate(fd, 1 << 30)\nescaped("memfd")'), expect="runtime"),
    attack("memfd_raw_syscall", _signals('if libc().syscall(319, b"held", 0) >= 0:\n    escaped("memfd syscall")')),
    attack("memfd_secret", _signals('if libc().syscall(447, 0) >= 0:\n    escaped("memfd_secret")')),
    attack("dev_shm_file", _signals('with open("/dev/shm/" + MARKER, "wb") as h:\n    h.write(b"x" * (1 << 20))\nescaped("/dev/shm writable")'), expect="runtime"),
    attack("pipe_buffers", _signals(_PIPES)),
    attack("tmpfs_many_files", _signals('n = 0\ntry:\n    for n in range(200_000):\n        open("/work/f%d" % n, "w").close()\nexcept OSError:\n    pass'), dos=True),
]

TASKS = [
    attack("thread_bomb_small_stacks", _signals(_THREADS_SMALL_STACKS), dos=True),
    attack("raw_thread_bomb", _signals('import _thread\nn = 0\ntry:\n    while n < 3000:\n        _thread.start_new_thread(time.sleep, (30,))\n        n += 1\nexcept (RuntimeError, MemoryError):\n    pass\nif n > 500:\n    escaped("%d raw threads" % n)'), dos=True),
    attack("fork_from_a_thread", _signals('import threading\nout = []\ndef go():\n    try:\n        out.append(os.fork())\n    except OSError as exc:\n        out.append(exc)\nt = threading.Thread(target=go)\nt.start()\nt.join()\nif isinstance(out[0], int) and out[0] >= 0:\n    escaped("fork from thread")')),
]

VALIDATOR_ROUTES = [
    attack("bit_generator_to_builtins", _signals('import numpy as np\nb = np.random.bit_generator\nfor name in dir(b):\n    mod = getattr(b, name)\n    if getattr(mod, "__name__", "") == "re":\n        opener = mod.enum.bltns.open\n        report(opener(CANARY_FILE).read())')),
    attack("polyutils_operator_attrgetter", _signals('import numpy as np\nget = np.polynomial.polyutils.operator.attrgetter\ndef gen():\n    yield 1\ng = gen()\nopener = get("gi_frame.f_builtins")(g)["open"]\nreport(opener(CANARY_FILE).read())'), expect="runtime"),
    attack("attrgetter_ctypeslib", _signals('import numpy as np\nget = np.polynomial.polyutils.operator.attrgetter\nlib = get("ctypeslib")(np).load_library("libc.so.6", "/usr/lib/x86_64-linux-gnu")\nif lib.system(b"touch /tmp/" + MARKER.encode()) == 0:\n    escaped("system via attrgetter")')),
    attack("apply_to_pickle_by_name", _signals('for d in HOST_DIRS:\n    try:\n        data["close"].apply("to_pickle", args=(os.path.join(d, MARKER + "-apply"),))\n    except (OSError, TypeError, ValueError):\n        continue\n    if not d.startswith("/work"):\n        escaped("apply to_pickle " + d)')),
    attack("agg_to_csv_by_name", _signals('for d in HOST_DIRS:\n    try:\n        data.agg("to_csv", path_or_buf=os.path.join(d, MARKER + "-agg"))\n    except (OSError, TypeError, ValueError, AttributeError):\n        continue\n    if not d.startswith("/work"):\n        escaped("agg to_csv " + d)')),
    attack("format_by_concatenation", _signals('text = ("{0.__glo" + "bals__[os].environ}").format(escaped)\nreport(text)'), expect="runtime"),
    attack("deep_expression", "x = " + "+".join(["1"] * 5000) + "\n\n" + _signals("pass"), expect="syntax runtime"),
    attack("deep_nesting_at_run_time", _signals('x = eval("(" * 5000 + "1" + ")" * 5000)'), expect="runtime"),
]

# fmt: on

CORPUS: list[Attack] = [
    *IMPORTS,
    *FRAMES,
    *FORMAT,
    *NATIVE,
    *FILES,
    *PICKLE,
    *PROCESSES,
    *DOS,
    *NETWORK,
    *SECRETS,
    *RESULTS,
    *MEMORY,
    *TASKS,
    *VALIDATOR_ROUTES,
]
ISSUE_15 = [*RESULTS, *MEMORY, *TASKS, *VALIDATOR_ROUTES]
