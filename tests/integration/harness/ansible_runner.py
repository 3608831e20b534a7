"""Run the collection's modules and playbooks with the controller's Ansible, the way a user does.

The collection is reached through ``<work dir>/collections/ansible_collections/nova/cells``, a
symlink to this repository, so tests always run the working tree. Results come from the harness's
``json`` stdout callback; the raw stdout and stderr are kept for leak checks.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import shutil
import subprocess
import sys
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .lab import nova_cells_home
from .processes import LabError

REPO_ROOT = Path(__file__).resolve().parents[3]
CALLBACK_DIR = Path(__file__).resolve().parent / "callback_plugins"
_JSON_START = re.compile(r"^\{$", re.MULTILINE)


@dataclass(frozen=True)
class ControllerTools:
    ansible: str
    ansible_playbook: str
    python: str


def controller_tools() -> ControllerTools:
    """``NOVA_CELLS_CONTROLLER_BIN``: unset = ``$NOVA_CELLS_HOME/venv-ctl/bin``, ``PATH`` = look up on PATH, else a bin directory."""
    setting = os.environ.get("NOVA_CELLS_CONTROLLER_BIN", "")
    if setting == "PATH":
        ansible = shutil.which("ansible")
        ansible_playbook = shutil.which("ansible-playbook")
        if not ansible or not ansible_playbook:
            raise LabError("NOVA_CELLS_CONTROLLER_BIN=PATH, but ansible / ansible-playbook is not on PATH")
        python = Path(ansible).parent / "python"
        return ControllerTools(ansible, ansible_playbook, str(python) if python.exists() else sys.executable)
    bin_dir = Path(setting) if setting else nova_cells_home() / "venv-ctl" / "bin"
    if not (bin_dir / "ansible").exists():
        raise LabError(f"no ansible in {bin_dir} (set NOVA_CELLS_CONTROLLER_BIN, or run tools/bootstrap.sh)")
    return ControllerTools(str(bin_dir / "ansible"), str(bin_dir / "ansible-playbook"), str(bin_dir / "python"))


def parse_json_document(stdout: str) -> dict[str, Any] | None:
    """The callback's document: the last top-level ``{`` line that parses to the end of stdout.

    With -vvv Ansible prints progress lines on stdout before it, so the document is searched from the end.
    """
    decoder = json.JSONDecoder()
    for match in reversed(list(_JSON_START.finditer(stdout))):
        try:
            document, end = decoder.raw_decode(stdout, match.start())
        except json.JSONDecodeError:
            continue
        if not stdout[end:].strip():
            return document
    return None


def _last_json_line(stdout: str) -> dict[str, Any] | None:
    """A module prints its result as one JSON line (after any stray output)."""
    for line in reversed(stdout.splitlines()):
        if line.startswith("{"):
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


def _summary_message(item: Any) -> Any:
    """``{"event": {"msg": ...}, "__ansible_type": "WarningSummary"}`` (ansible-core 2.19) -> the message."""
    if isinstance(item, dict):
        event = item.get("event") or {}
        return event.get("msg", item.get("msg", item))
    return item


@dataclass
class AnsibleResult:
    """What one ``ansible`` / ``ansible-playbook`` run produced."""

    argv: list[str]
    rc: int
    stdout: str
    stderr: str
    data: dict[str, Any] = field(default_factory=dict)

    def contains(self, text: str) -> bool:
        """Whether ``text`` appears in the raw stdout or stderr."""
        return text in self.stdout or text in self.stderr


@dataclass
class ModuleResult(AnsibleResult):
    """One module run; ``result`` is the module's result dict (``result["key"]`` works on the object too)."""

    result: dict[str, Any] = field(default_factory=dict)

    @property
    def changed(self) -> bool:
        return bool(self.result.get("changed"))

    @property
    def failed(self) -> bool:
        return bool(self.result.get("failed"))

    @property
    def msg(self) -> str | None:
        return self.result.get("msg")

    def __getitem__(self, key: str) -> Any:
        return self.result[key]

    def __contains__(self, key: str) -> bool:
        return key in self.result

    def get(self, key: str, default: Any = None) -> Any:
        return self.result.get(key, default)


@dataclass
class PlaybookResult(AnsibleResult):
    """One playbook run; ``data`` is the callback document (plays, tasks, per-host results, stats)."""

    @property
    def stats(self) -> dict[str, dict[str, int]]:
        return self.data.get("stats", {})

    @property
    def changed(self) -> bool:
        return any(host_stats.get("changed", 0) for host_stats in self.stats.values())

    @property
    def failed(self) -> bool:
        return self.rc != 0

    def results(self, host: str = "localhost") -> list[tuple[str, dict[str, Any]]]:
        """(task name, result) for every task that ran on ``host``, in order."""
        return [
            (task["task"]["name"], task["hosts"][host])
            for play in self.data.get("plays", [])
            for task in play["tasks"]
            if host in task["hosts"]
        ]

    def task(self, name: str, host: str = "localhost") -> dict[str, Any]:
        """The result of the last task called ``name`` on ``host``."""
        matches = [result for task_name, result in self.results(host) if task_name == name]
        if not matches:
            raise KeyError(f"no task named {name!r} ran on {host}; tasks: {[task_name for task_name, _result in self.results(host)]}")
        return matches[-1]


class AnsibleRunner:
    """Runs ``ansible`` / ``ansible-playbook`` against localhost with a private, reproducible configuration."""

    def __init__(self, work_dir: Path) -> None:
        self.work_dir = work_dir
        self.tools = controller_tools()
        collection_link = work_dir / "collections" / "ansible_collections" / "nova" / "cells"
        collection_link.parent.mkdir(parents=True, exist_ok=True)
        if not collection_link.is_symlink():
            collection_link.symlink_to(REPO_ROOT, target_is_directory=True)
        for sub in ("tmp", "home", "runs"):
            (work_dir / sub).mkdir(exist_ok=True)
        # An explicit, empty config file: no ansible.cfg from the working directory or $HOME applies.
        self.config_file = work_dir / "ansible.cfg"
        self.config_file.write_text("[defaults]\n", encoding="utf-8")
        self.inventory_file = work_dir / "localhost.ini"
        self.inventory_file.write_text("localhost ansible_connection=local\n", encoding="utf-8")
        self._run_ids = itertools.count(1)

    def env(self, extra_env: Mapping[str, str] | None = None) -> dict[str, str]:
        env = {key: value for key, value in os.environ.items() if not key.startswith("ANSIBLE_")}
        env.update(
            {
                "ANSIBLE_CONFIG": str(self.config_file),
                "ANSIBLE_HOME": str(self.work_dir / "home"),
                "ANSIBLE_LOCAL_TEMP": str(self.work_dir / "tmp"),
                "ANSIBLE_REMOTE_TEMP": str(self.work_dir / "tmp"),
                "ANSIBLE_COLLECTIONS_PATH": str(self.work_dir / "collections"),
                "ANSIBLE_COLLECTIONS_SCAN_SYS_PATH": "false",
                "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACK_DIR),
                "ANSIBLE_STDOUT_CALLBACK": "json",
                "ANSIBLE_LOAD_CALLBACK_PLUGINS": "1",
                "ANSIBLE_NOCOLOR": "1",
                "ANSIBLE_RETRY_FILES_ENABLED": "0",
                "ANSIBLE_LOCALHOST_WARNING": "0",
            }
        )
        env.update(extra_env or {})
        return env

    def _next_file(self, suffix: str) -> Path:
        return self.work_dir / "runs" / f"{next(self._run_ids)}{suffix}"

    def _common_options(self, check: bool, diff: bool, verbosity: int) -> list[str]:
        options = ["-e", f"ansible_python_interpreter={self.tools.python}"]
        options += ["--check"] if check else []
        options += ["--diff"] if diff else []
        options += [f"-{'v' * verbosity}"] if verbosity > 0 else []
        return options

    def _run(self, argv: list[str], extra_env: Mapping[str, str] | None, timeout: float) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
        try:
            done = subprocess.run(argv, env=self.env(extra_env), cwd=self.work_dir, capture_output=True, text=True, timeout=timeout, check=False)
        except subprocess.TimeoutExpired as exc:
            raise LabError(f"{argv[0]} did not finish within {timeout:.0f} s: {argv}") from exc
        document = parse_json_document(done.stdout)
        if document is None:
            raise LabError(
                f"no JSON result from {' '.join(argv[:2])}… (rc {done.returncode})\n"
                f"--- stdout (tail) ---\n{done.stdout[-3000:]}\n--- stderr (tail) ---\n{done.stderr[-3000:]}"
            )
        return done, document

    def run_module(  # pylint: disable=too-many-arguments
        self,
        module: str,
        args: Mapping[str, Any] | None = None,
        *,
        check: bool = False,
        diff: bool = False,
        verbosity: int = 0,
        extra_env: Mapping[str, str] | None = None,
        timeout: float = 600,
        via_ansible: bool | None = None,
    ) -> ModuleResult:
        """``ansible localhost -m nova.cells.<module> -a '<json>'`` (a name with a dot is used as is).

        A collection module run without verbosity executes the module file directly with the
        controller's Python (what AnsiballZ runs, minus the controller's start-up, about a second of
        CPU per run); ``via_ansible=True``, any verbosity, or ``NOVA_CELLS_TEST_VIA_ANSIBLE=1`` runs
        it through ``ansible`` as a user does (tests that check -vvv output for secrets do that).
        """
        fqcn = module if "." in module else f"nova.cells.{module}"
        if via_ansible is None:
            via_ansible = verbosity > 0 or os.environ.get("NOVA_CELLS_TEST_VIA_ANSIBLE") == "1" or not fqcn.startswith("nova.cells.")
        if not via_ansible:
            return self._run_module_directly(fqcn, args, check=check, diff=diff, extra_env=extra_env, timeout=timeout)
        argv = [self.tools.ansible, "localhost", "-c", "local", "-i", "localhost,", "-m", fqcn, "-a", json.dumps(dict(args or {}))]
        argv += self._common_options(check, diff, verbosity)
        done, document = self._run(argv, extra_env, timeout)
        try:
            result = document["plays"][0]["tasks"][0]["hosts"]["localhost"]
        except (KeyError, IndexError) as exc:
            raise LabError(f"no localhost result in the JSON output of {fqcn}:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}") from exc
        return ModuleResult(argv, done.returncode, done.stdout, done.stderr, document, result)

    def _run_module_directly(  # pylint: disable=too-many-arguments
        self, fqcn: str, args: Mapping[str, Any] | None, *, check: bool, diff: bool, extra_env: Mapping[str, str] | None, timeout: float
    ) -> ModuleResult:
        module_args = dict(args or {})
        module_args.update({"_ansible_check_mode": check, "_ansible_diff": diff, "_ansible_remote_tmp": str(self.work_dir / "tmp"),
                            "_ansible_tmpdir": str(self.work_dir / "tmp"), "_ansible_keep_remote_files": False})
        args_file = self._next_file(".args.json")
        args_file.write_text(json.dumps({"ANSIBLE_MODULE_ARGS": module_args}), encoding="utf-8")
        name = fqcn.rsplit(".", 1)[1]
        argv = [self.tools.python, "-m", f"ansible_collections.nova.cells.plugins.modules.{name}", str(args_file)]
        env = self.env(extra_env)
        env["PYTHONPATH"] = str(self.work_dir / "collections")
        try:
            done = subprocess.run(argv, env=env, cwd=self.work_dir, capture_output=True, text=True, timeout=timeout, check=False)
        finally:
            args_file.unlink(missing_ok=True)
        result = parse_json_document(done.stdout) or _last_json_line(done.stdout)
        if result is None:
            raise LabError(f"no JSON result from {fqcn} (rc {done.returncode})\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
        # The controller turns the module's warning and deprecation summaries into plain messages; so do we.
        for key in ("warnings", "deprecations"):
            if key in result:
                result[key] = [_summary_message(item) for item in result[key]]
        return ModuleResult(argv, done.returncode, done.stdout, done.stderr, {}, result)

    def run_playbook(  # pylint: disable=too-many-arguments
        self,
        playbook: str | Path | Sequence[Mapping[str, Any]],
        extravars: Mapping[str, Any] | None = None,
        *,
        check: bool = False,
        diff: bool = False,
        verbosity: int = 0,
        inventory: str | Path | Mapping[str, Any] | None = None,
        extra_env: Mapping[str, str] | None = None,
        timeout: float = 900,
    ) -> PlaybookResult:
        """``ansible-playbook`` on a file path, on YAML text, or on a list of plays (dicts).

        ``inventory``: None (localhost, local connection), INI text (with a newline), a dict (YAML
        inventory structure), or anything ``-i`` accepts (a path, "host1,host2,").
        """
        argv = [self.tools.ansible_playbook, "-i", self._inventory_path(inventory)]
        if extravars:
            extravars_file = self._next_file(".json")
            extravars_file.write_text(json.dumps(dict(extravars)), encoding="utf-8")
            argv += ["-e", f"@{extravars_file}"]
        argv += self._common_options(check, diff, verbosity)
        argv.append(self._playbook_path(playbook))
        done, document = self._run(argv, extra_env, timeout)
        return PlaybookResult(argv, done.returncode, done.stdout, done.stderr, document)

    def _playbook_path(self, playbook: str | Path | Sequence[Mapping[str, Any]]) -> str:
        if isinstance(playbook, Path) or (isinstance(playbook, str) and "\n" not in playbook):
            path = Path(playbook)
            if not path.is_file():
                raise LabError(f"playbook {path} does not exist (pass YAML text with at least one newline)")
            return str(path.resolve())
        path = self._next_file(".yml")
        # JSON is valid YAML, so parsed plays need no YAML library here.
        path.write_text(playbook if isinstance(playbook, str) else json.dumps(list(playbook)), encoding="utf-8")
        return str(path)

    def _inventory_path(self, inventory: str | Path | Mapping[str, Any] | None) -> str:
        if inventory is None:
            return str(self.inventory_file)
        if isinstance(inventory, Mapping):
            path = self._next_file(".yml")
            path.write_text(json.dumps(dict(inventory)), encoding="utf-8")
            return str(path)
        if isinstance(inventory, str) and "\n" in inventory:
            path = self._next_file(".ini")
            path.write_text(inventory, encoding="utf-8")
            return str(path)
        # A path, or any other inventory source ansible accepts, such as "host1,host2,".
        return str(inventory)
