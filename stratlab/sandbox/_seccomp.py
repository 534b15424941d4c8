"""A seccomp filter for the sandbox, compiled by hand to classic BPF for ``bwrap --seccomp``.

Why a filter on top of namespaces and rlimits: ``RLIMIT_NPROC`` does not apply to root
(the kernel exempts uid 0 even inside a user namespace), so when the worker runs as root a
fork bomb would only be stopped by the wall clock, after it had filled the host's pid
table. The filter makes process creation fail instead: ``clone`` is allowed only with
``CLONE_THREAD`` (threads of the same process), ``fork``/``vfork`` fail with EPERM and
``clone3`` with ENOSYS, which makes glibc fall back to ``clone`` for threads. It also
refuses sockets, mounts, namespaces, ptrace, keyrings, bpf, io_uring, module loading and
rlimit changes, none of which a ``signals`` function has any use for.

Memory that lives outside the address space is refused too, since ``RLIMIT_AS`` does not
count it: SysV shared memory, message queues and semaphores, POSIX message queues, and
``memfd_create``/``memfd_secret`` (anonymous files as large as host RAM allows). The
sandbox's only writable file system, its ``/work`` tmpfs, is capped by size.

Only x86_64 and aarch64 are covered (syscall numbers from the kernel's unistd headers);
elsewhere ``seccomp_program`` returns None and the executor says so in the run's notes.
A foreign ABI (x86's x32 or i386 on x86_64) kills the process: the numbers would not mean
what the table says.
"""

from __future__ import annotations

import errno
import platform
import struct

# struct sock_filter opcodes
_LD_W_ABS = 0x20
_JEQ_K = 0x15
_JGE_K = 0x35
_JSET_K = 0x45
_RET_K = 0x06

_RET_ALLOW = 0x7FFF0000
_RET_ERRNO = 0x00050000
_RET_KILL_PROCESS = 0x80000000

_OFFSET_NR = 0
_OFFSET_ARCH = 4
_OFFSET_ARG0_LOW = 16  # seccomp_data.args[0], low 32 bits on a little-endian machine

CLONE_THREAD = 0x00010000
_X32_SYSCALL_BIT = 0x40000000

_COMMON_DENIED = (
    "socket", "socketpair", "ptrace", "process_vm_readv", "process_vm_writev", "mount",
    "umount2", "pivot_root", "chroot", "unshare", "setns", "keyctl", "add_key", "request_key",
    "bpf", "perf_event_open", "userfaultfd", "kexec_load", "kexec_file_load", "init_module",
    "finit_module", "delete_module", "reboot", "swapon", "swapoff", "io_uring_setup",
    "io_uring_enter", "io_uring_register", "open_tree", "move_mount", "fsopen", "fsconfig",
    "fsmount", "fspick", "mount_setattr", "setrlimit", "prlimit64", "name_to_handle_at",
    "open_by_handle_at", "kcmp", "personality", "acct", "quotactl", "syslog", "fanotify_init",
    "pidfd_getfd", "lookup_dcookie", "vhangup",
    # memory the address-space limit does not see
    "shmget", "shmat", "shmctl", "shmdt", "msgget", "msgsnd", "msgrcv", "msgctl", "semget",
    "semop", "semctl", "semtimedop", "mq_open", "mq_unlink", "mq_timedsend",
    "mq_timedreceive", "mq_notify", "mq_getsetattr", "memfd_create", "memfd_secret",
)  # fmt: skip

_X86_64 = {
    "socket": 41, "socketpair": 53, "clone": 56, "fork": 57, "vfork": 58, "ptrace": 101,
    "syslog": 103, "personality": 135, "vhangup": 153, "pivot_root": 155, "setrlimit": 160,
    "chroot": 161, "acct": 163, "mount": 165, "umount2": 166, "swapon": 167, "swapoff": 168,
    "reboot": 169, "init_module": 175, "delete_module": 176, "quotactl": 179,
    "lookup_dcookie": 212, "kexec_load": 246, "add_key": 248, "request_key": 249,
    "keyctl": 250, "unshare": 272, "perf_event_open": 298, "fanotify_init": 300,
    "prlimit64": 302, "name_to_handle_at": 303, "open_by_handle_at": 304, "setns": 308,
    "process_vm_readv": 310, "process_vm_writev": 311, "kcmp": 312, "finit_module": 313,
    "kexec_file_load": 320, "bpf": 321, "userfaultfd": 323, "io_uring_setup": 425,
    "io_uring_enter": 426, "io_uring_register": 427, "open_tree": 428, "move_mount": 429,
    "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433, "clone3": 435,
    "pidfd_getfd": 438, "mount_setattr": 442,
    "shmget": 29, "shmat": 30, "shmctl": 31, "semget": 64, "semop": 65, "semctl": 66,
    "shmdt": 67, "msgget": 68, "msgsnd": 69, "msgrcv": 70, "msgctl": 71,
    "semtimedop": 220, "mq_open": 240, "mq_unlink": 241, "mq_timedsend": 242,
    "mq_timedreceive": 243, "mq_notify": 244, "mq_getsetattr": 245, "memfd_create": 319,
    "memfd_secret": 447,
}  # fmt: skip

# asm-generic numbering; aarch64 has no fork/vfork syscalls (glibc forks with clone).
_AARCH64 = {
    "lookup_dcookie": 18, "umount2": 39, "mount": 40, "pivot_root": 41, "chroot": 51,
    "vhangup": 58, "quotactl": 60, "acct": 89, "personality": 92, "unshare": 97,
    "kexec_load": 104, "init_module": 105, "delete_module": 106, "syslog": 116, "ptrace": 117,
    "reboot": 142, "setrlimit": 164, "socket": 198, "socketpair": 199, "add_key": 217,
    "request_key": 218, "keyctl": 219, "clone": 220, "swapon": 224, "swapoff": 225,
    "perf_event_open": 241, "prlimit64": 261, "fanotify_init": 262, "name_to_handle_at": 264,
    "open_by_handle_at": 265, "setns": 268, "process_vm_readv": 270, "process_vm_writev": 271,
    "kcmp": 272, "finit_module": 273, "bpf": 280, "userfaultfd": 282, "kexec_file_load": 294,
    "io_uring_setup": 425, "io_uring_enter": 426, "io_uring_register": 427, "open_tree": 428,
    "move_mount": 429, "fsopen": 430, "fsconfig": 431, "fsmount": 432, "fspick": 433,
    "clone3": 435, "pidfd_getfd": 438, "mount_setattr": 442,
    "mq_open": 180, "mq_unlink": 181, "mq_timedsend": 182, "mq_timedreceive": 183,
    "mq_notify": 184, "mq_getsetattr": 185, "msgget": 186, "msgctl": 187, "msgrcv": 188,
    "msgsnd": 189, "semget": 190, "semctl": 191, "semtimedop": 192, "semop": 193,
    "shmget": 194, "shmctl": 195, "shmat": 196, "shmdt": 197, "memfd_create": 279,
    "memfd_secret": 447,
}  # fmt: skip

# machine -> (audit arch, syscall numbers, whether nr >= 0x40000000 is a foreign ABI)
_ARCHES: dict[str, tuple[int, dict[str, int], bool]] = {
    "x86_64": (0xC000003E, _X86_64, True),
    "aarch64": (0xC00000B7, _AARCH64, False),
}


def _insn(code: int, k: int, jt: int = 0, jf: int = 0) -> bytes:
    return struct.pack("=HBBI", code, jt, jf, k)


def seccomp_program(machine: str | None = None) -> bytes | None:
    """The compiled filter for ``machine`` (default: this one), or None if unsupported."""
    arch = _ARCHES.get(machine or platform.machine())
    if arch is None:
        return None
    audit_arch, numbers, foreign_abi_bit = arch
    denied = [numbers[name] for name in (*_COMMON_DENIED, "fork", "vfork") if name in numbers]
    # Layout: checks, then the shared return blocks at the end. Each check jumps forward
    # to a block; offsets count instructions between the check and its target.
    checks: list[tuple[int, int, str | None, str | None]] = [
        (_LD_W_ABS, _OFFSET_ARCH, None, None),
        (_JEQ_K, audit_arch, None, "kill"),
        (_LD_W_ABS, _OFFSET_NR, None, None),
    ]
    if foreign_abi_bit:
        checks.append((_JGE_K, _X32_SYSCALL_BIT, "kill", None))
    checks += [(_JEQ_K, nr, "deny", None) for nr in denied]
    checks += [
        (_JEQ_K, numbers["clone"], "clone", None),
        (_JEQ_K, numbers["clone3"], "enosys", None),
        (_RET_K, _RET_ALLOW, None, None),
    ]
    blocks = {
        "clone": [
            (_LD_W_ABS, _OFFSET_ARG0_LOW),
            (_JSET_K, CLONE_THREAD),  # true: next insn (allow), false: skip to deny
            (_RET_K, _RET_ALLOW),
        ],
        "deny": [(_RET_K, _RET_ERRNO | errno.EPERM)],
        "enosys": [(_RET_K, _RET_ERRNO | errno.ENOSYS)],
        "kill": [(_RET_K, _RET_KILL_PROCESS)],
    }
    starts: dict[str, int] = {}
    position = len(checks)
    for name, block in blocks.items():
        starts[name] = position
        position += len(block)
    program = []
    for index, (code, k, true_to, false_to) in enumerate(checks):
        program.append(
            _insn(
                code,
                k,
                starts[true_to] - index - 1 if true_to else 0,
                starts[false_to] - index - 1 if false_to else 0,
            )
        )
    for name, block in blocks.items():
        for offset, (code, k) in enumerate(block):
            skip = starts["deny"] - (starts[name] + offset) - 1 if code == _JSET_K else 0
            program.append(_insn(code, k, 0, skip))
    return b"".join(program)
