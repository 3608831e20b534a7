"""Detached lab processes: start in a new session, record the PID, stop by PID.

Every process is started with ``start_new_session=True``, so its PID is also the id of its process
group. Stopping signals that group, which also reaches helpers such as RabbitMQ's ``beam.smp`` or a
conductor's worker. PID 1 on the project machines does not reap orphans, so a process in state ``Z``
counts as stopped.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

LOG_TAIL_LINES = 40


class LabError(RuntimeError):
    """A lab service failed to start, to become ready or to answer in time."""


@dataclass(frozen=True)
class ProcStat:
    state: str
    pgrp: int
    start_time: int


def proc_stat(pid: int) -> ProcStat | None:
    """State, process group and start time (clock ticks since boot) of a process, None if it is gone."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text(encoding="ascii", errors="replace")
    except OSError:
        return None
    # The command name may contain spaces and parentheses: the fields after the last ')' are fixed.
    fields = raw.rsplit(")", 1)[1].split()
    return ProcStat(state=fields[0], pgrp=int(fields[2]), start_time=int(fields[19]))


def process_identity(pid: int) -> str | None:
    """'<pid> <start time>': names a process unambiguously, even after its PID is reused."""
    stat = proc_stat(pid)
    return None if stat is None else f"{pid} {stat.start_time}"


def identity_alive(identity: str) -> bool:
    pid = int(identity.split(maxsplit=1)[0])
    return process_identity(pid) == identity


def group_members(pgid: int, not_before: int = 0) -> list[int]:
    """Live (non-zombie) processes of a process group that started at or after ``not_before``."""
    members = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        stat = proc_stat(int(entry.name))
        if stat and stat.pgrp == pgid and stat.start_time >= not_before and stat.state not in ("Z", "X"):
            members.append(int(entry.name))
    return members


def signal_group(pgid: int, sig: int, not_before: int = 0) -> None:
    """Signal the live members of a group, never a process that merely reuses one of its PIDs."""
    for pid in group_members(pgid, not_before):
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, sig)


def tail(path: Path | str, lines: int = LOG_TAIL_LINES) -> str:
    try:
        text = Path(path).read_text(encoding="utf-8", errors="replace")
    except FileNotFoundError:
        return "(file does not exist)"
    return "\n".join(text.splitlines()[-lines:])


def format_tails(paths: Iterable[Path | str], lines: int = LOG_TAIL_LINES) -> str:
    return "\n".join(f"--- last {lines} lines of {path} ---\n{tail(path, lines)}" for path in paths)


def wait_until(
    probe: Callable[[], T],
    *,
    timeout: float,
    what: str,
    process: ManagedProcess | None = None,
    logs: Iterable[Path | str] = (),
    interval: float = 0.2,
) -> T:
    """Call ``probe`` until it returns a truthy value and return that value.

    Fails at once if ``process`` exits meanwhile, or after ``timeout`` seconds; both errors carry
    the tail of the relevant logs. Exceptions from the probe count as "not yet".
    """
    log_paths = list(logs) or (process.log_paths if process else [])
    deadline = time.monotonic() + timeout
    last_error = ""
    while True:
        try:
            value = probe()
        except Exception as exc:  # pylint: disable=broad-exception-caught  # the probe fails until ready
            value, last_error = None, f"{type(exc).__name__}: {exc}"
        if value:
            return value
        if process is not None and not process.is_running():
            raise LabError(
                f"{process.name} exited (rc {process.returncode}) while waiting for {what}\n{format_tails(log_paths)}"
            )
        if time.monotonic() >= deadline:
            detail = f" (last probe error: {last_error})" if last_error else ""
            raise LabError(f"timed out after {timeout:.0f} s waiting for {what}{detail}\n{format_tails(log_paths)}")
        time.sleep(interval)


class ManagedProcess:
    """A daemon of the lab, started in its own session, with its PID recorded in ``pid_dir``."""

    def __init__(
        self,
        name: str,
        argv: list[str],
        *,
        log_dir: Path,
        pid_dir: Path,
        env: Mapping[str, str] | None = None,
        extra_logs: Iterable[Path] = (),
    ) -> None:
        self.name = name
        self.argv = argv
        self.env = dict(env) if env is not None else None
        self.output_path = log_dir / f"{name}.out"
        self.log_paths = [*extra_logs, self.output_path]
        self.pid_file = pid_dir / f"{name}.pid"
        self._popen: subprocess.Popen[bytes] | None = None
        self._start_time = 0

    @property
    def pid(self) -> int | None:
        return self._popen.pid if self._popen else None

    @property
    def returncode(self) -> int | None:
        return self._popen.poll() if self._popen else None

    def start(self) -> None:
        if self.is_running():
            raise LabError(f"{self.name} is already running as PID {self.pid}")
        with open(self.output_path, "ab") as output:
            self._popen = subprocess.Popen(  # pylint: disable=consider-using-with  # lives until stop()
                self.argv,
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        identity = process_identity(self._popen.pid)
        self._start_time = int(identity.split()[1]) if identity else 0
        self.pid_file.write_text(f"{identity or self._popen.pid}\n", encoding="ascii")

    def is_running(self) -> bool:
        # poll() reaps our direct child, so it never lingers as a zombie.
        return self._popen is not None and self._popen.poll() is None

    def send_signal(self, sig: int) -> None:
        if self._popen is not None:
            self._popen.poll()
            signal_group(self._popen.pid, sig, self._start_time)

    def remaining(self) -> list[int]:
        """PIDs of the process and its group that are still alive."""
        if self._popen is None:
            return []
        self._popen.poll()
        return group_members(self._popen.pid, self._start_time)

    def stop(self, timeout: float = 30.0) -> None:
        """SIGTERM, wait up to ``timeout`` seconds, then SIGKILL."""
        stop_processes([self], timeout)

    def kill(self) -> None:
        """SIGKILL the whole group at once (a crash, as seen by the rest of the lab)."""
        stop_processes([self], timeout=0)

    def log_tail(self, lines: int = LOG_TAIL_LINES) -> str:
        return format_tails(self.log_paths, lines)


def _wait_gone(processes: list[ManagedProcess], deadline: float) -> list[ManagedProcess]:
    pending = [proc for proc in processes if proc.remaining()]
    while pending and time.monotonic() < deadline:
        time.sleep(0.1)
        pending = [proc for proc in pending if proc.remaining()]
    return pending


def stop_processes(processes: Iterable[ManagedProcess], timeout: float = 30.0) -> None:
    """Stop several processes in parallel: SIGTERM all, wait, SIGKILL what is left."""
    processes = list(processes)
    pending = [proc for proc in processes if proc.remaining()]
    if timeout > 0:
        for proc in pending:
            proc.send_signal(signal.SIGTERM)
        pending = _wait_gone(pending, time.monotonic() + timeout)
    for proc in pending:
        proc.send_signal(signal.SIGKILL)
    survivors = _wait_gone(pending, time.monotonic() + 10)
    if survivors:
        raise LabError("could not stop " + ", ".join(f"{proc.name} (PIDs {proc.remaining()})" for proc in survivors))
    for proc in processes:
        proc.pid_file.unlink(missing_ok=True)


def rss_kib(pids: Iterable[int]) -> int:
    """Sum of the resident set sizes of the given processes, in KiB."""
    total = 0
    for pid in pids:
        try:
            status = Path(f"/proc/{pid}/status").read_text(encoding="ascii", errors="replace")
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total
