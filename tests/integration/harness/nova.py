"""Real Nova pieces of the lab: nova.conf files, nova-manage calls and Nova service processes."""

from __future__ import annotations

import shlex
import subprocess
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from .processes import LabError, ManagedProcess

# Appended to every nova-manage call of the harness: log records go to stderr (stdout stays
# parseable), and a DB outage fails after seconds instead of oslo.db's ten 10 s retries.
FAIL_FAST_SECTIONS: dict[str, dict[str, object]] = {
    "DEFAULT": {"use_stderr": True},
    "api_database": {"max_retries": 0},
    "database": {"max_retries": 0},
}

Sections = Mapping[str, Mapping[str, object]]


def ini_value(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple)):
        return ",".join(ini_value(item) for item in value)
    text = str(value)
    if "\n" in text:
        raise ValueError(f"INI values cannot span lines: {text!r}")
    return text


def merge_sections(*layers: Sections | None) -> dict[str, dict[str, object]]:
    """Merge section dicts; later layers win per option, and a value of None drops the option."""
    merged: dict[str, dict[str, object]] = {}
    for layer in layers:
        for section, options in (layer or {}).items():
            target = merged.setdefault(section, {})
            for key, value in options.items():
                if value is None:
                    target.pop(key, None)
                else:
                    target[key] = value
    return merged


def write_ini(path: Path, sections: Sections) -> Path:
    """Write an oslo.config file. No inline comments: oslo.config would keep them in the value."""
    lines = []
    for section, options in sections.items():
        lines.append(f"[{section}]")
        lines.extend(f"{key} = {ini_value(value)}" for key, value in options.items())
        lines.append("")
    path.write_text("\n".join(lines), encoding="utf-8")
    return path


@dataclass
class CommandResult:
    """Outcome of one command (nova-manage, rabbitmqctl, ...): what ran, rc, output and wall time."""

    argv: list[str]
    rc: int
    stdout: str
    stderr: str
    seconds: float

    @property
    def command(self) -> str:
        return shlex.join(self.argv)

    def check(self) -> CommandResult:
        """Return self if rc is 0, else raise LabError with the command and the tails of its output."""
        if self.rc != 0:
            raise LabError(
                f"{self.command} failed with rc {self.rc} after {self.seconds:.1f} s\n"
                f"--- stdout (tail) ---\n{self.stdout[-4000:]}\n--- stderr (tail) ---\n{self.stderr[-4000:]}"
            )
        return self


def run_command(argv: Sequence[str], *, env: Mapping[str, str], timeout: float) -> CommandResult:
    started = time.monotonic()
    try:
        done = subprocess.run(list(argv), env=dict(env), capture_output=True, text=True, timeout=timeout, check=False)
    except subprocess.TimeoutExpired as exc:
        stdout = exc.stdout.decode(errors="replace") if isinstance(exc.stdout, bytes) else exc.stdout or ""
        raise LabError(f"{shlex.join(argv)} did not finish within {timeout:.0f} s\n--- stdout (tail) ---\n{stdout[-4000:]}") from exc
    return CommandResult(list(argv), done.returncode, done.stdout, done.stderr, time.monotonic() - started)


class NovaService(ManagedProcess):
    """A running nova-conductor, nova-scheduler or nova-compute of the lab.

    ``log_path`` is Nova's own log (``--log-file``); ``output_path`` catches anything printed before
    logging is set up (tracebacks at import time, CRITICAL start-up errors).
    """

    def __init__(
        self,
        name: str,
        binary: str,
        config_files: Sequence[Path],
        *,
        nova_bin: Path,
        env: Mapping[str, str],
        log_dir: Path,
        pid_dir: Path,
        cell: str | None = None,
        host: str | None = None,
    ) -> None:
        self.binary = binary
        self.config_files = [Path(path) for path in config_files]
        self.cell = cell
        self.host = host
        self.log_path = log_dir / f"{name}.log"
        argv = [str(nova_bin / binary)]
        for path in self.config_files:
            argv += ["--config-file", str(path)]
        argv += ["--log-file", str(self.log_path)]
        super().__init__(name, argv, log_dir=log_dir, pid_dir=pid_dir, env=env, extra_logs=[self.log_path])

    def restart(self, timeout: float = 30.0) -> NovaService:
        """Stop gracefully (SIGTERM, then SIGKILL after ``timeout``) and start again with the same files."""
        self.stop(timeout)
        self.start()
        return self

    def __repr__(self) -> str:
        return f"<NovaService {self.name} {self.binary} pid={self.pid} running={self.is_running()}>"
