"""Free TCP ports on 127.0.0.1, reserved across concurrent pytest sessions.

Ports come from a range below the kernel's ephemeral range (32768-60999 here), so outgoing
connections never take them. A reservation is a file named after the port, created with O_EXCL and
holding the owner's process identity; a reservation whose owner is gone is taken over.
"""

from __future__ import annotations

import errno
import os
import random
import socket
import time
from pathlib import Path

from .processes import LabError, identity_alive

PORT_RANGE = range(20000, 32000)


def port_is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # Same options as the daemons use, so a port in TIME_WAIT still counts as free.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def port_is_open(port: int, host: str = "127.0.0.1", timeout: float = 0.5) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class PortAllocator:
    """Reserves ports for one owner (a process identity) in a directory shared by all labs."""

    def __init__(self, registry_dir: Path, owner: str) -> None:
        self.registry_dir = registry_dir
        self.owner = owner
        self.reserved: list[int] = []
        registry_dir.mkdir(parents=True, exist_ok=True)

    def reserve(self) -> int:
        candidates = random.sample(PORT_RANGE, 200)
        for port in candidates:
            if self._claim(port):
                if port_is_free(port):
                    self.reserved.append(port)
                    return port
                self._path(port).unlink(missing_ok=True)
        raise LabError(f"no free TCP port found in {PORT_RANGE.start}-{PORT_RANGE.stop - 1} after {len(candidates)} tries")

    def release_all(self) -> None:
        for port in self.reserved:
            self._path(port).unlink(missing_ok=True)
        self.reserved.clear()

    def _path(self, port: int) -> Path:
        return self.registry_dir / str(port)

    def _claim(self, port: int) -> bool:
        path = self._path(port)
        for _attempt in range(2):
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
            except OSError as exc:
                if exc.errno != errno.EEXIST:
                    raise
                if self._held_by_live_owner(path):
                    return False
                # Stale reservation of a session that died: drop it and try once more.
                path.unlink(missing_ok=True)
                continue
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(self.owner + "\n")
            return True
        return False

    @staticmethod
    def _held_by_live_owner(path: Path) -> bool:
        try:
            owner = path.read_text(encoding="ascii").strip()
            age = time.time() - path.stat().st_mtime
        except FileNotFoundError:
            return False
        if not owner:
            # A reservation being written right now, unless its writer died long ago.
            return age < 10
        return identity_alive(owner)
