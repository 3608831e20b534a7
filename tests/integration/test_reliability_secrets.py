"""Reliability, secrets: no password in any output, result, diff, log or file, whatever the mode and outcome.

One playbook runs every module and the nova_conf and cells roles through ``ansible-playbook -vvv``
in normal, check, diff and check+diff modes, on success paths and on failure paths (a wrong
password, an unknown cell, a database that does not answer, a nova-manage that fails, a refused
ServiceGroup setting, an INI injection attempt in the role). Every URL carries a distinctive
password of its own account: a database user and a RabbitMQ user created for this file, and a
wrong password, each with characters that need percent-encoding and JSON escaping.

The passwords are then counted, raw, percent-encoded, JSON-escaped and repr-escaped, in stdout,
stderr, the returned results and diffs, the ``ANSIBLE_LOG_PATH`` log, and every file under the
run's directories (the runner's work directory, the roles' output, ``TMPDIR``), except the
configuration files that must hold them (nova.conf, the cells role's nova-manage configs, this
test's own inputs). The total must be 0. nova.conf files must be 0640 with the configured group.
(nova.cells.lab_infra is not run: it drives the host's systemd MariaDB and RabbitMQ.)
"""

from __future__ import annotations

import grp
import json
import os
import stat
import tempfile
import time
from pathlib import Path
from typing import Any
from urllib.parse import quote, quote_plus

import pytest
from harness import Lab, PlaybookResult, record_figure

SECTION = "reliability: secrets"
USER = "leaker"
DB_PASSWORD = 'Lk1"Db\\pw+/:@%!?#&='
MQ_PASSWORD = 'Lk2"Mq\\pw+:@%!?#&='  # RabbitMQ passwords cannot contain '/'
WRONG_PASSWORD = 'Lk3"Wrong\\pw+/:@%!'
PASSWORDS = (DB_PASSWORD, MQ_PASSWORD, WRONG_PASSWORD)
API_DB, CELL0_DB, CELL_DB = "nova_leak_api", "nova_leak_cell0", "nova_leak_cell1"
VHOSTS = ("leak_api", "leak_cell1")
GROUP = "daemon"
MODES = {"normal": {}, "check": {"check": True}, "diff": {"diff": True}, "check+diff": {"check": True, "diff": True}}
MODULES = ("cell", "cell_info", "discover_hosts", "map_instances", "host", "db_sync", "servicegroup", "service_status")


def forms(password: str) -> list[str]:
    """Every spelling in which a password could leak: raw, percent-encoded (three ways), JSON- and repr-escaped."""
    spellings = {password, quote(password, safe=""), quote(password, safe="/"), quote_plus(password)}
    escaped = {json.dumps(text)[1:-1] for text in spellings} | {text.replace("\\", "\\\\") for text in spellings}
    escaped |= {text.replace("/", "\\/") for text in escaped}
    return sorted(spellings | escaped)


FORMS = sorted({form for password in PASSWORDS for form in forms(password)})


def count(text: str) -> int:
    return sum(text.count(form) for form in FORMS)


def enc(password: str) -> str:
    return quote(password, safe="")


class World:
    """This file's databases, accounts, directories and the playbook's inputs."""

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.root = lab.dir / "secrets"
        self.inputs = self.root / "inputs"
        self.log = self.root / "ansible.log"
        for sub in ("inputs", "roles", "tmp", "state", "lock"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        self.closed_port = lab.reserve_port()
        self.port = lab.mariadb.port
        self.mq_port = lab.rabbitmq.port
        self.started = time.time()

    def db_url(self, database: str, password: str = DB_PASSWORD, port: int | None = None) -> str:
        return f"mysql+pymysql://{USER}:{enc(password)}@127.0.0.1:{port or self.port}/{database}"

    def conf_dir(self, host: str) -> Path:
        return self.root / "roles" / host

    def env(self) -> dict[str, str]:
        # Pipelining as in test_roles_nova_conf.py: it saves a file copy per task and host (and writes no module payload).
        return {"ANSIBLE_LOG_PATH": str(self.log), "TMPDIR": str(self.root / "tmp"), "ANSIBLE_PIPELINING": "1"}


def create_accounts(lab: Lab) -> None:
    """A database user and a RabbitMQ user with the distinctive passwords, allowed on this file's databases and vhosts."""
    for host in ("127.0.0.1", "localhost"):
        lab.mariadb.execute("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (USER, host, DB_PASSWORD))
        for database in (API_DB, CELL0_DB, CELL_DB):
            lab.mariadb.execute(f"GRANT ALL PRIVILEGES ON `{database}`.* TO %s@%s", (USER, host))
    rabbitmq = lab.rabbitmq
    rabbitmq.ctl("add_user", USER, MQ_PASSWORD, check=False)
    for vhost in VHOSTS:
        rabbitmq.ctl("add_vhost", vhost, check=False)
        rabbitmq.ctl("set_permissions", "-p", vhost, USER, ".*", ".*", ".*")


def inventory(world: World) -> dict[str, Any]:
    lab = world.lab
    injection = f"10.0.0.1\nconnection = {world.db_url(API_DB)}"
    return {
        "all": {
            "vars": {
                "ansible_connection": "local",
                "nova_conf_dir": f"{world.root}/roles/{{{{ inventory_hostname }}}}",
                "nova_systemd_dir": f"{world.root}/roles/{{{{ inventory_hostname }}}}/systemd",
                "nova_conf_group": GROUP,
                "nova_conf_restart_services": False,
                "nova_conf_validate": False,
                "nova_manage": lab.nova_manage_command,
                "nova_database_host": "127.0.0.1",
                "nova_database_port": world.port,
                "nova_database_user": USER,
                "nova_database_password": DB_PASSWORD,
                "nova_api_database_name": API_DB,
                "nova_cell0_database_name": CELL0_DB,
                "nova_rabbit_hosts": ["127.0.0.1"],
                "nova_rabbit_port": world.mq_port,
                "nova_rabbit_user": USER,
                "nova_rabbit_password": MQ_PASSWORD,
                "nova_rabbit_vhost": VHOSTS[0],
                "nova_cells": {"lcell1": {"database_name": CELL_DB, "rabbit_vhost": VHOSTS[1]}},
                "nova_cell_name": "lcell1",
                "nova_api_mq_shared_cell": "",
                "nova_state_path": f"{world.root}/state/{{{{ inventory_hostname }}}}",
                "nova_lock_path": f"{world.root}/lock/{{{{ inventory_hostname }}}}",
                "nova_my_ip": "127.0.0.1",
                "nova_compute_driver": "fake.FakeDriverWithoutFakeNodes",
                "nova_placement_options": {"auth_type": "admin_token", "endpoint": "http://127.0.0.1:1/", "token": "admin"},
                "nova_cells_wait_for_computes": False,
                "nova_cells_map_instances": True,
                "nova_cells_refresh_services": False,
            },
            "children": {
                "nova_api": {
                    "hosts": {
                        "ctl": {},
                        "badpw": {"nova_database_password": WRONG_PASSWORD},
                    }
                },
                "nova_scheduler": {"hosts": {"ctl": {}}},
                "nova_super_conductor": {"hosts": {"ctl": {}}},
                "nova_compute": {"hosts": {"cmp1": {}, "badconf": {"nova_conf_overrides": {"DEFAULT": {"my_ip": injection}}}}},
            },
        }
    }


def module_tasks(world: World) -> list[dict[str, Any]]:
    """Every module on success paths, then on failure paths (ignore_errors), on the API-level host."""
    lab = world.lab
    common = {"config_files": ["{{ nova_conf_dir }}/manage/api.conf"], "nova_manage": lab.nova_manage_command}
    wrong_api = world.db_url(API_DB, WRONG_PASSWORD)
    unreachable_api = world.db_url(API_DB, port=world.closed_port)
    wrong_conf = world.inputs / "wrong-password.conf"
    wrong_conf.write_text(f"[api_database]\nconnection = {wrong_api}\n\n[database]\nconnection = {world.db_url(CELL0_DB, WRONG_PASSWORD)}\n", encoding="utf-8")
    unreachable_conf = world.inputs / "unreachable-cell.conf"
    unreachable_conf.write_text(
        f"[api_database]\nconnection = {world.db_url(API_DB)}\n\n[database]\nconnection = {world.db_url(CELL_DB, port=world.closed_port)}\n", encoding="utf-8"
    )
    transport = f"rabbit://{USER}:{enc(MQ_PASSWORD)}@127.0.0.1:{world.mq_port}/leak_other"

    def task(name: str, module: str, args: dict[str, Any], fail: bool = False) -> dict[str, Any]:
        entry: dict[str, Any] = {"name": f"{'fail' if fail else 'ok'}: {name}", f"nova.cells.{module}": {**common, **args}}
        if fail:
            entry["ignore_errors"] = True
        return entry

    return [
        task(
            "cell",
            "cell",
            {
                "name": "lcell1",
                "database_connection": "{{ _nova_conf_urls.cells.lcell1.mapping_database }}",
                "transport_url": "{{ _nova_conf_urls.cells.lcell1.mapping_transport }}",
            },
        ),
        task("cell_info", "cell_info", {}),
        task("discover_hosts", "discover_hosts", {"cell": "lcell1"}),
        task("map_instances", "map_instances", {"cell": "lcell1"}),
        task("host", "host", {"name": "leakhost", "cell": "lcell1"}),
        task("servicegroup", "servicegroup", {"path": "{{ nova_conf_dir }}/nova.conf", "driver": "db", "report_interval": 15, "nova_release": "34"}),
        task("service_status", "service_status", {"cells": ["lcell1"]}),
        task("cell wrong password", "cell", {"name": "lcell1", "api_database_connection": wrong_api}, fail=True),
        task(
            "cell unknown scheme",
            "cell",
            {"name": "lcell9", "database_connection": world.db_url("x").replace("mysql+pymysql", "postgresql"), "transport_url": transport},
            fail=True,
        ),
        task("cell_info unknown cell", "cell_info", {"cells": ["nosuchcell"]}, fail=True),
        task("cell_info unreachable", "cell_info", {"api_database_connection": unreachable_api}, fail=True),
        task("discover_hosts unknown cell", "discover_hosts", {"cell": "nosuchcell"}, fail=True),
        task("map_instances wrong password", "map_instances", {"cell": "lcell1", "api_database_connection": wrong_api}, fail=True),
        task("host unknown cell", "host", {"name": "leakhost", "cell": "nosuchcell"}, fail=True),
        # The module reads the schema with the right URL; nova-manage gets the wrong password and fails. A
        # current schema runs no nova-manage when the module can read Nova's installed head, so nova_manage is
        # given through env here: a command line that is not one local script makes the module run it.
        task(
            "db_sync nova-manage fails",
            "db_sync",
            {"database": "api", "api_database_connection": world.db_url(API_DB), "config_files": [str(wrong_conf)],
             "nova_manage": ["/usr/bin/env", *lab.nova_manage_command]},
            fail=True,
        ),
        task("db_sync unreachable", "db_sync", {"database": "cell", "local_cell": True, "config_files": [str(unreachable_conf)]}, fail=True),
        task(
            "servicegroup refused",
            "servicegroup",
            {"path": "{{ nova_conf_dir }}/nova.conf", "driver": "db", "report_interval": 60, "service_down_time": 30, "nova_release": "34"},
            fail=True,
        ),
        task(
            "servicegroup backend down",
            "servicegroup",
            {
                "path": "{{ nova_conf_dir }}/nova.conf",
                "driver": "mc",
                "nova_release": "34",
                "memcache_servers": [f"127.0.0.1:{world.closed_port}"],
                "check_backend": True,
                "backend_timeout": 1,
            },
            fail=True,
        ),
        task("service_status unknown cell", "service_status", {"cells": ["nosuchcell"]}, fail=True),
        task("service_status wrong password", "service_status", {"api_database_connection": wrong_api}, fail=True),
    ]


def playbook(world: World) -> list[dict[str, Any]]:
    return [
        # badpw fails in the cells role (its own inclusion of the nova_conf facts is enough for that).
        {"name": "Render nova.conf", "hosts": "all:!badpw", "gather_facts": False, "roles": [{"role": "nova.cells.nova_conf"}]},
        {
            "name": "Bootstrap the cells",
            "hosts": "ctl:badpw",
            "gather_facts": False,
            "tasks": [{"name": "Cells role", "ansible.builtin.include_role": {"name": "nova.cells.cells"}}],
        },
        {"name": "Every module", "hosts": "ctl", "gather_facts": False, "tasks": module_tasks(world)},
    ]


def ensure_host_mapping(lab: Lab) -> None:
    """A host mapping for the host module to remove (again) in the next run."""
    lab.query(API_DB, "INSERT IGNORE INTO host_mappings (created_at, cell_id, host) SELECT NOW(), id, 'leakhost' FROM cell_mappings WHERE name = 'lcell1'")


@pytest.fixture(name="world", scope="module")
def world_fixture(nova_lab: Lab) -> World:
    world = World(nova_lab)
    nova_lab.clone_database("nova_api", API_DB)
    nova_lab.clone_database("nova_cell0", CELL0_DB)
    nova_lab.clone_database("nova_cell1", CELL_DB)
    create_accounts(nova_lab)
    (world.inputs / "inventory.json").write_text(json.dumps(inventory(world)), encoding="utf-8")
    (world.inputs / "playbook.yml").write_text(json.dumps(playbook(world)), encoding="utf-8")
    return world


@pytest.fixture(name="runs", scope="module")
def runs_fixture(world: World, run_playbook) -> dict[str, PlaybookResult]:
    """The playbook in each mode, at -vvv; normal first, so that the later modes find the cells created."""
    runs = {}
    started = time.monotonic()
    world.started = time.time()
    for mode, options in MODES.items():
        # The role's validation with the real Nova (about 6 s of imports) in the first run only.
        extravars = {"nova_conf_validate": True} if mode == "normal" else None
        result = run_playbook(
            world.inputs / "playbook.yml", extravars, inventory=str(world.inputs / "inventory.json"), verbosity=3, extra_env=world.env(), timeout=900, **options
        )
        runs[mode] = result
        ensure_host_mapping(world.lab)
    record_figure(SECTION, "wall time of the four runs", time.monotonic() - started, "s")
    return runs


def outcome(result: PlaybookResult, host: str) -> dict[str, bool]:
    return {name: bool(task.get("failed")) for name, task in result.results(host)}


def test_every_module_and_role_ran_on_success_and_failure_paths(runs: dict[str, PlaybookResult]) -> None:
    tasks = 0
    for mode, result in runs.items():
        ctl = outcome(result, "ctl")
        assert not [name for name, failed in ctl.items() if failed and not name.startswith("fail: ")], (mode, result.stdout[-3000:])
        expected_failures = {name for name in ctl if name.startswith("fail: ")}
        if "check" in mode:  # check mode runs no nova-manage, so it cannot fail there
            expected_failures.discard("fail: db_sync nova-manage fails")
        assert {name for name in expected_failures if not ctl[name]} == set(), mode
        for host, task in (("badpw", "Sync the schemas of the API database"), ("badconf", "Refuse an inventory that nova.conf cannot express")):
            failed = [name for name, was_failed in outcome(result, host).items() if was_failed]
            assert failed and task in failed[-1], (mode, host, failed)
        assert {name.split(": ", 1)[1].split()[0] for name in ctl if name.startswith(("ok: ", "fail: "))} >= set(MODULES)
        assert any(name.startswith("nova.cells.cells : ") for name in ctl) and any(name.startswith("nova.cells.nova_conf : ") for name in ctl)
        tasks += sum(len(result.results(host)) for host in ("ctl", "cmp1", "badpw", "badconf"))
    assert runs["diff"].task("ok: host", "ctl")["changed"], "the host module removed no mapping: its nova-manage path did not run"
    record_figure(SECTION, "task results checked (8 modules, 2 roles, success and failure paths)", tasks)
    assert tasks >= len(runs) * len(MODULES)   # at least one task per module and run


def test_no_password_in_output_results_or_diffs(runs: dict[str, PlaybookResult]) -> None:
    found = {mode: count(result.stdout) + count(result.stderr) + count(json.dumps(result.data)) for mode, result in runs.items()}
    assert sum(found.values()) == 0, found


def written_files(world: World) -> tuple[list[Path], list[Path]]:
    """(files to search, configuration files allowed to hold passwords) under the run's directories.

    Also every file of the system temporary directory changed since the runs began, should anything escape TMPDIR.
    """
    search, allowed = [], []
    for top in (world.root, world.lab.dir / "ansible", Path(tempfile.gettempdir())):
        for directory, _dirs, files in os.walk(top):
            for name in files:
                path = Path(directory) / name
                try:
                    if path.is_symlink() or path == world.log or not path.is_file():
                        continue
                    info = path.stat()
                except OSError:  # another process removed it meanwhile
                    continue
                if info.st_mtime < world.started or info.st_size > 64 << 20:
                    continue
                holds_passwords = (
                    path.is_relative_to(world.inputs)
                    or (path.name == "nova.conf" and path.parent.parent == world.root / "roles")
                    or (path.parent.name == "manage" and path.suffix == ".conf")
                )
                (allowed if holds_passwords else search).append(path)
    return search, allowed


def read(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8", errors="replace")
    except OSError:  # removed meanwhile, or a socket or FIFO
        return ""


def test_no_password_in_the_log_or_any_written_file(world: World, runs: dict[str, PlaybookResult]) -> None:
    assert runs and world.log.stat().st_size > 0
    in_log = count(world.log.read_text(encoding="utf-8", errors="replace"))
    search, allowed = written_files(world)
    leaks = {str(path): n for path in search if (n := count(read(path)))}
    record_figure(SECTION, "files searched under the run's directories", len(search))
    record_figure(SECTION, "config files that hold passwords by design (nova.conf, nova-manage configs, inputs)", len(allowed))
    assert search and allowed   # the search covered files, and the files that must hold passwords were told apart
    total = in_log + sum(leaks.values()) + sum(count(r.stdout) + count(r.stderr) + count(json.dumps(r.data)) for r in runs.values())
    assert in_log == 0 and not leaks, (in_log, leaks)
    assert total == 0


def test_nova_conf_files_are_private(world: World, runs: dict[str, PlaybookResult]) -> None:
    assert runs
    gid = grp.getgrnam(GROUP).gr_gid
    confs = sorted(world.root.glob("roles/*/nova.conf"))
    assert {path.parent.name for path in confs} == {"ctl", "cmp1"}  # badconf was refused before writing
    exposed = [str(path) for path in confs if stat.S_IMODE(path.stat().st_mode) != 0o640 or path.stat().st_gid != gid]
    manage = sorted(world.root.glob("roles/*/manage/*.conf"))
    exposed += [str(path) for path in manage if stat.S_IMODE(path.stat().st_mode) != 0o600 or path.stat().st_uid != 0]
    record_figure(SECTION, f"nova.conf (0640, group {GROUP}) and nova-manage configs (0600) checked", len(confs) + len(manage))
    assert manage and not exposed, exposed
