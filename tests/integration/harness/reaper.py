"""Watchdog of one lab: once the pytest process that owns the lab is gone, stop the lab's processes.

Normally the lab stops everything itself and then terminates this watchdog. Only when pytest dies
without running its finalizers (SIGKILL, a CI time-out) does the watchdog act: it signals the
process groups recorded in ``<lab>/pids/*.pid`` (``<pid> <start time>``), SIGTERM first, SIGKILL
after 15 s. The lab's epmd is stopped only if no Erlang node is registered with it any more.

Usage: ``python -m harness.reaper <lab dir> "<owner pid> <owner start time>"``
"""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from pathlib import Path

from .processes import group_members, identity_alive, signal_group

GRACE_SECONDS = 15.0


def _recorded_groups(pid_dir: Path, *, epmd: bool) -> list[tuple[Path, int, int]]:
    groups = []
    for pid_file in sorted(pid_dir.glob("*.pid")):
        if (pid_file.stem == "epmd") != epmd:
            continue
        fields = pid_file.read_text(encoding="ascii").split()
        groups.append((pid_file, int(fields[0]), int(fields[1]) if len(fields) > 1 else 0))
    return groups


def stop_groups(groups: list[tuple[Path, int, int]]) -> None:
    for _path, pgid, not_before in groups:
        signal_group(pgid, signal.SIGTERM, not_before)
    deadline = time.monotonic() + GRACE_SECONDS
    while time.monotonic() < deadline and any(group_members(pgid, not_before) for _path, pgid, not_before in groups):
        time.sleep(0.2)
    for path, pgid, not_before in groups:
        signal_group(pgid, signal.SIGKILL, not_before)
        path.unlink(missing_ok=True)


def reap(lab_dir: Path) -> None:
    pid_dir = lab_dir / "pids"
    stop_groups(_recorded_groups(pid_dir, epmd=False))
    names = subprocess.run(["epmd", "-names"], capture_output=True, text=True, timeout=10, check=False).stdout
    if "name " not in names:
        stop_groups(_recorded_groups(pid_dir, epmd=True))


def main(argv: list[str]) -> int:
    lab_dir, owner = Path(argv[0]), argv[1]
    while identity_alive(owner):
        time.sleep(1)
    reap(lab_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
