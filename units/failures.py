"""Saying why a session ended, in words an admin can act on (host layer, pure helpers).

systemd reports a unit's end as Result (success, exit-code, signal, oom-kill, ...),
ExecMainCode (how the main process ended) and ExecMainStatus (exit status or signal number).
Exit statuses 200-245 are systemd's own: the step of starting the process that failed.
"""

from __future__ import annotations

import signal

__all__ = [
    "CLD_DUMPED",
    "CLD_EXITED",
    "CLD_KILLED",
    "SYSTEMD_EXIT_STATUS",
    "describe_end",
    "describe_oom_kills",
    "exit_kind",
]

# ref: systemd.exec(5), "PROCESS EXIT CODES"
SYSTEMD_EXIT_STATUS = {
    200: "CHDIR: the working directory is missing or not accessible",
    201: "NICE",
    202: "FDS",
    203: "EXEC: the command could not be executed (missing or not executable)",
    204: "MEMORY",
    205: "LIMITS",
    206: "OOM_ADJUST",
    207: "SIGNAL_MASK",
    208: "STDIN",
    209: "STDOUT",
    210: "CHROOT",
    211: "IOPRIO",
    212: "TIMERSLACK",
    213: "SECUREBITS",
    214: "SETSCHEDULER",
    215: "CPUAFFINITY",
    216: "GROUP: the group could not be resolved",
    217: "USER: the user could not be resolved",
    218: "CAPABILITIES",
    219: "CGROUP",
    220: "SETSID",
    221: "CONFIRM",
    222: "STDERR",
    224: "PAM",
    225: "NETWORK",
    226: "NAMESPACE: a path to mount (ReadOnlyPaths=, ReadWritePaths=, ...) is missing",
    227: "NO_NEW_PRIVILEGES",
    228: "SECCOMP",
    229: "SELINUX_CONTEXT",
    230: "PERSONALITY",
    231: "APPARMOR_PROFILE",
    232: "ADDRESS_FAMILIES",
    233: "RUNTIME_DIRECTORY",
    235: "CHOWN",
    236: "SMACK_PROCESS_LABEL",
    237: "KEYRING",
    238: "STATE_DIRECTORY",
    239: "CACHE_DIRECTORY",
    240: "LOGS_DIRECTORY",
    241: "CONFIGURATION_DIRECTORY",
    242: "NUMA_POLICY",
    243: "CREDENTIALS: a credential could not be loaded",
    245: "BPF",
}

CLD_EXITED, CLD_KILLED, CLD_DUMPED = 1, 2, 3


def describe_end(result: str | None, exit_code: int | None, exit_status: int | None) -> str:
    """One phrase: "exit status 203 (EXEC: ...)", "killed by SIGKILL", ..."""
    if result == "oom-kill":
        return "killed: out of memory (MemoryMax reached)"
    if exit_code in (CLD_KILLED, CLD_DUMPED) and exit_status:
        try:
            name = signal.Signals(exit_status).name
        except ValueError:
            name = f"signal {exit_status}"
        # On cgroup v1 (hybrid) systemd cannot tell an OOM kill from another SIGKILL
        # (SYSTEMD-NOTES.md); the memory limit is the usual reason a session gets one.
        hint = " (often: out of memory)" if exit_status == signal.SIGKILL else ""
        dumped = ", core dumped" if exit_code == CLD_DUMPED else ""
        return f"killed by {name}{dumped}{hint}"
    if exit_status is not None and exit_code == CLD_EXITED:
        meaning = SYSTEMD_EXIT_STATUS.get(exit_status)
        return f"exit status {exit_status}" + (f" ({meaning})" if meaning else "")
    if result == "timeout":
        return "timed out"
    return f"result {result or 'unknown'}"


def exit_kind(exit_code: int | None) -> str | None:
    return {CLD_EXITED: "exited", CLD_KILLED: "killed", CLD_DUMPED: "dumped"}.get(exit_code or 0)


def describe_oom_kills(kills: int | None) -> str | None:
    """What a session's OOM kill count means, for people: "kernel killed: out of memory
    (2 processes)"; None for none or unknown. Under OOMPolicy=continue a kernel over
    mem_limit dies alone, and this is how its user learns why."""
    if not kills or kills < 0:
        return None
    return f"kernel killed: out of memory ({kills} process{'' if kills == 1 else 'es'})"
