"""Reliability, bad input: inputs that the state of real databases makes wrong are refused, before any write.

Each case runs one module (directly, without the ansible CLI: fast) or one role host (one
``ansible-playbook`` run with a host per case) against this file's own databases: an API database,
cell0 and two cell databases with Nova's real schema, seeded with cells, hosts and instances.
Every case must fail with a clear, actionable message (a distinctive fragment of it is asserted),
and ``CHECKSUM TABLE`` over every table of those schemas, taken before and after, must show no
change. The servicegroup cases also prove that the nova.conf they point at is unchanged.

Input that is wrong by itself (malformed URLs, names, numbers, ServiceGroup settings) needs no service:
those cases are unit tests (tests/unit/plugins/modules/test_bad_input.py) that also prove the module read
and ran nothing. What stays here depends on real databases: duplicates, cells and hosts in use, unknown
cells, unreachable servers and wrong credentials, a missing nova-manage.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from harness import NOVA_DB_PASSWORD, RABBIT_PASSWORD, Lab

API_DB = "nova_bad_api"
CELL0_DB = "nova_bad_cell0"
CELL_DBS = {"bcell1": "nova_bad_cell1", "bcell2": "nova_bad_cell2"}
SCHEMAS = (API_DB, CELL0_DB, *CELL_DBS.values())
CELL0_UUID = "00000000-0000-0000-0000-000000000000"
UUIDS = {
    "bcell1": "b0000000-0000-4000-8000-000000000001",
    "bcell2": "b0000000-0000-4000-8000-000000000002",
    "dup-a": "b0000000-0000-4000-8000-00000000000a",
    "dup-b": "b0000000-0000-4000-8000-00000000000b",
}
LIVE_INSTANCE = "1a000000-0000-4000-8000-000000000001"
DELETED_INSTANCE = "1a000000-0000-4000-8000-000000000002"
WRONG_PASSWORD = "not+the@right/pw"  # deliberately wrong
METACHARACTERS = "cell1; rm -rf / #$(reboot)`id`"


class World:
    """This file's databases, configs and URLs (built once, in ``world_fixture``)."""

    def __init__(self, lab: Lab, root: Path) -> None:
        self.lab = lab
        self.root = root
        self.closed_port = lab.reserve_port()  # reserved, never listened on: "DB unreachable"
        self.api_url = lab.db_url(API_DB)
        self.cell_urls = {name: lab.db_url(db) for name, db in CELL_DBS.items()}
        self.transport = {name: lab.transport_url(name) for name in ("bcell1", "bcell2", "dup")}
        self.api_conf = lab.write_config(
            "bad-api",
            {
                "DEFAULT": {"transport_url": lab.transport_url("bad_api")},
                "api_database": {"connection": self.api_url},
                "database": {"connection": lab.db_url(CELL0_DB)},
            },
        )
        self.nova_conf = root / "nova.conf"

    def args(self, **kwargs: Any) -> dict[str, Any]:
        base: dict[str, Any] = {"config_files": [str(self.api_conf)], "nova_manage": self.lab.nova_manage_command}
        base.update(kwargs)
        return base

    def conf(self, name: str, sections: dict[str, dict[str, object]]) -> str:
        return str(self.lab.write_config(name, sections))

    def db_url(self, database: str, **kwargs: Any) -> str:
        return self.lab.db_url(database, **kwargs)

    def tables(self) -> dict[str, list[str]]:
        return {schema: [next(iter(row.values())) for row in self.lab.query(schema, "SHOW TABLES")] for schema in SCHEMAS}

    def checksums(self) -> dict[str, Any]:
        """``CHECKSUM TABLE`` of every table of every schema, and a hash of every file under ``root``."""
        sums: dict[str, Any] = {}
        for schema, tables in self.tables().items():
            rows = self.lab.query(schema, "CHECKSUM TABLE " + ", ".join(f"`{schema}`.`{table}`" for table in tables))
            sums.update({row["Table"]: row["Checksum"] for row in rows})
        for path in sorted(self.root.rglob("*")):
            if path.is_file():
                sums[str(path)] = hashlib.sha256(path.read_bytes()).hexdigest()
        return sums


def seed(world: World) -> None:
    """cell0; bcell1 with a host and a live instance; bcell2 with a host-less deleted instance; two cells named dup."""
    lab = world.lab
    cells = [
        (CELL0_UUID, "cell0", "none:///", lab.db_url(CELL0_DB)),
        (UUIDS["bcell1"], "bcell1", world.transport["bcell1"], world.cell_urls["bcell1"]),
        (UUIDS["bcell2"], "bcell2", world.transport["bcell2"], world.cell_urls["bcell2"]),
        (UUIDS["dup-a"], "dup", world.transport["dup"] + "a", lab.db_url("nova_bad_dup_a")),
        (UUIDS["dup-b"], "dup", world.transport["dup"] + "b", lab.db_url("nova_bad_dup_b")),
    ]
    for uuid, name, transport, database in cells:
        lab.query(
            API_DB,
            "INSERT INTO cell_mappings (created_at, uuid, name, transport_url, database_connection, disabled) VALUES (NOW(), %s, %s, %s, %s, 0)",
            (uuid, name, transport, database),
        )
    ids = {row["name"]: row["id"] for row in lab.query(API_DB, "SELECT id, name FROM cell_mappings")}
    lab.query(API_DB, "INSERT INTO host_mappings (created_at, cell_id, host) VALUES (NOW(), %s, 'bhost1')", (ids["bcell1"],))
    for instance, cell, deleted in ((LIVE_INSTANCE, "bcell1", 0), (DELETED_INSTANCE, "bcell2", 1)):
        lab.query(
            API_DB,
            "INSERT INTO instance_mappings (created_at, instance_uuid, cell_id, project_id, user_id, queued_for_delete) VALUES (NOW(), %s, %s, 'p1', 'u1', %s)",
            (instance, ids[cell], deleted),
        )
        lab.query(
            CELL_DBS[cell],
            "INSERT INTO instances (created_at, uuid, project_id, user_id, host, deleted) VALUES (NOW(), %s, 'p1', 'u1', 'bhost1', %s)",
            (instance, deleted),
        )
    world.nova_conf.write_text("[DEFAULT]\ndebug = true\nservicegroup_driver = db\n", encoding="utf-8")


@pytest.fixture(name="world", scope="module")
def world_fixture(nova_lab: Lab) -> World:
    root = nova_lab.dir / "bad_input"
    (root / "sub").mkdir(parents=True, exist_ok=True)
    world = World(nova_lab, root)
    nova_lab.clone_database("nova_api", API_DB)
    nova_lab.clone_database("nova_cell0", CELL0_DB)
    for database in CELL_DBS.values():
        nova_lab.clone_database("nova_cell1", database)
    seed(world)
    # The checksums compare something: every schema has Nova's tables.
    assert all(len(names) > 10 for names in world.tables().values()), world.tables()
    return world


@dataclass(frozen=True)
class Case:
    """One bad input: ``module`` with ``args(world)`` must fail with a message containing ``expect``."""

    id: str
    module: str
    args: Callable[[World], dict[str, Any]]
    expect: str
    check: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


def cell(**kwargs: Any) -> Callable[[World], dict[str, Any]]:
    """Arguments of nova.cells.cell; callables among the values are called with the world."""
    return lambda w: w.args(**{key: value(w) if callable(value) else value for key, value in kwargs.items()})


def good_db(name: str = "nova_bad_new") -> Callable[[World], str]:
    return lambda w: w.db_url(name)


def good_mq(vhost: str = "bad_new") -> Callable[[World], str]:
    return lambda w: w.lab.transport_url(vhost)


def sg(**kwargs: Any) -> Callable[[World], dict[str, Any]]:
    """Arguments of nova.cells.servicegroup on this file's nova.conf (release given: no detection)."""
    return lambda w: {"path": str(w.nova_conf), "nova_release": "34", **{k: v(w) if callable(v) else v for k, v in kwargs.items()}}


MODULE_CASES = [
    # -- reachability and credentials ------------------------------------------------------------------------
    Case(
        "api-db-unreachable",
        "cell_info",
        lambda w: w.args(api_database_connection=f"mysql+pymysql://nova:pw@127.0.0.1:{w.closed_port}/{API_DB}"),
        "the server is unreachable",
    ),
    Case(
        "api-db-wrong-password",
        "cell",
        lambda w: w.args(name="bcell1", api_database_connection=w.db_url(API_DB, password=WRONG_PASSWORD)),
        "wrong user name or password",
    ),
    Case(
        "api-db-does-not-exist",
        "discover_hosts",
        lambda w: w.args(api_database_connection=w.db_url("nova_bad_nowhere")),
        "the database does not exist or the user has no privileges on it",
    ),
    Case(
        "nova-manage-missing", "db_sync", lambda w: w.args(database="api", nova_manage=["/nonexistent/bin/nova-manage"]), "command not found; set nova_manage"
    ),
    # -- names and uuids against the stored cells ----------------------------------------------------------
    Case("cell-duplicate-name", "cell", cell(name="dup", disabled=True), "is used by 2 cell mappings"),
    Case("cell-duplicate-name-absent", "cell", cell(name="dup", state="absent"), "is used by 2 cell mappings"),
    Case("discover-all-with-duplicate-names", "discover_hosts", lambda w: w.args(), "is used by 2 cell mappings"),
    Case("cell-uuid-unknown", "cell", cell(name="bnew", uuid="b0000000-0000-4000-8000-0000000000ff"), "there is no cell with uuid"),
    Case("cell-rename-onto-another-cell", "cell", cell(name="bcell1", uuid=UUIDS["bcell2"]), "that name is already used by"),
    Case("cell-create-without-urls", "cell", cell(name="bnew"), "creating it needs database_connection and transport_url"),
    Case(
        "cell-shares-a-database",
        "cell",
        cell(name="bnew", database_connection=lambda w: w.cell_urls["bcell1"], transport_url=good_mq()),
        "would share its database",
    ),
    Case(
        "cell-shares-a-transport-url",
        "cell",
        cell(name="bnew", database_connection=good_db(), transport_url=lambda w: w.transport["bcell1"]),
        "would share its transport URL",
    ),
    # -- cell0 -------------------------------------------------------------------------------------------
    Case("cell0-deleted", "cell", cell(name="cell0", state="absent", force=True), "cell0 cannot be deleted"),
    Case("discover-in-cell0", "discover_hosts", lambda w: w.args(cell="cell0"), "cell0 holds no hosts"),
    Case("map-instances-in-cell0", "map_instances", lambda w: w.args(cell="cell0"), "cell0 holds no hosts"),
    # -- deleting what is in use ---------------------------------------------------------------------------
    Case("delete-cell-with-hosts", "cell", cell(name="bcell1", state="absent"), "still has 1 mapped host(s): bhost1"),
    Case("delete-cell-with-live-instances-forced", "cell", cell(name="bcell1", state="absent", force=True), "still has 1 live instance(s)"),
    Case("delete-cell-with-deleted-instance-mappings", "cell", cell(name="bcell2", state="absent"), "has 1 mapping(s) of deleted instances"),
    Case("delete-cell-with-hosts-check-mode", "cell", cell(name="bcell1", state="absent"), "still has 1 mapped host(s)", check=True),
    Case("delete-host-with-instances", "host", lambda w: w.args(name="bhost1"), "still has 1 instance(s)"),
    Case("delete-host-from-the-wrong-cell", "host", lambda w: w.args(name="bhost1", cell="bcell2"), "is mapped to cell 'bcell1'"),
    # -- unknown cells -------------------------------------------------------------------------------------
    Case("host-unknown-cell", "host", lambda w: w.args(name="bhost1", cell="nosuchcell"), "there is no cell named 'nosuchcell'"),
    Case("discover-unknown-cell", "discover_hosts", lambda w: w.args(cell="nosuchcell"), "there is no cell named 'nosuchcell'"),
    Case("map-instances-unknown-cell", "map_instances", lambda w: w.args(cell=METACHARACTERS), "there is no cell named"),
    Case("cell-info-unknown-cell", "cell_info", lambda w: w.args(cells=["bcell1", "nosuchcell"]), "there is no cell named 'nosuchcell'"),
    Case("service-status-unknown-cell", "service_status", lambda w: w.args(cells=["nosuchcell"]), "there is no cell named 'nosuchcell'"),
    # -- ServiceGroup ----------------------------------------------------------------------------------------
    Case(
        "servicegroup-mc-backend-down",
        "servicegroup",
        sg(driver="mc", memcache_servers=lambda w: [f"127.0.0.1:{w.closed_port}"], check_backend=True, backend_timeout=2),
        "did not answer",
    ),
    Case("service-status-zk-without-servers", "service_status", lambda w: w.args(driver="zk"), "no ZooKeeper servers"),
]


@pytest.mark.parametrize("case", MODULE_CASES, ids=[case.id for case in MODULE_CASES])
def test_module_refuses_bad_input(world: World, run_module, case: Case) -> None:
    before = world.checksums()
    result = run_module(case.module, case.args(world), check=case.check)
    changed_tables = sorted(name for name, value in world.checksums().items() if before.get(name) != value)
    assert result.failed, f"{case.id} was accepted: {result.result}"
    assert "Traceback" not in (result.msg or "") and "exception" not in result, result.result
    assert case.expect in (result.msg or ""), result.msg
    assert not changed_tables, f"{case.id} wrote to {changed_tables}"


# -- roles: one ansible-playbook run, one host per bad input -------------------------------------------------
ROLE_PLAYBOOK = """\
- name: Bad input for the roles, one host per case
  hosts: all
  gather_facts: false
  tasks:
    - name: Run the role under test
      ansible.builtin.include_role:
        name: "nova.cells.{{ bad_role }}"
        tasks_from: "{{ bad_tasks_from }}"
"""


@dataclass(frozen=True)
class RoleCase:
    """One inventory host: ``role`` (entry point ``tasks_from``) with ``hostvars`` must fail with ``expect``."""

    id: str
    role: str
    hostvars: Callable[[World], dict[str, Any]]
    expect: str
    tasks_from: str = "main"
    groups: tuple[str, ...] = ("nova_api",)


def fixed(**hostvars: Any) -> Callable[[World], dict[str, Any]]:
    return lambda w: hostvars


ROLE_CASES = [
    RoleCase("nova-conf-upgrade-levels-auto", "nova_conf", fixed(nova_upgrade_levels_compute="auto"), "LP#1815697"),
    RoleCase("nova-conf-host-in-no-group", "nova_conf", fixed(), "is in none of the groups", groups=()),
    RoleCase(
        "nova-conf-override-injects-a-line",
        "nova_conf",
        fixed(nova_cell_name="bcell1", nova_conf_overrides={"DEFAULT": {"my_ip": "10.0.0.1\nhost = evil"}}),
        "line break",
        groups=("nova_compute",),
    ),
    RoleCase("nova-conf-zk-on-a-modern-release", "nova_conf", fixed(nova_servicegroup_driver="zk"), "zk"),
    RoleCase(
        "nova-conf-down-time-not-above-interval",
        "nova_conf",
        fixed(nova_servicegroup_report_interval=60, nova_servicegroup_service_down_time=60),
        "must be greater than report_interval",
    ),
    RoleCase("nova-conf-mc-empty-server-list", "nova_conf", fixed(nova_servicegroup_driver="mc", nova_memcache_servers=[]), "is empty: give at least one"),
    RoleCase("nova-conf-unknown-release", "nova_conf", fixed(nova_release="banana"), "cannot parse nova_release 'banana'"),
    RoleCase("nova-conf-world-readable-mode", "nova_conf", fixed(nova_conf_mode="0644"), "lets other users read"),
    RoleCase("cells-unknown-cell", "cells", fixed(nova_cells_selected=["nosuchcell"]), "Unknown cell(s) nosuchcell", tasks_from="schema"),
    RoleCase("cells-empty-password", "cells", fixed(nova_database_password=""), "has an empty password: set nova_database_password", tasks_from="schema"),
    RoleCase("cells-wrong-password", "cells", fixed(nova_database_password=WRONG_PASSWORD), "wrong user name or password", tasks_from="schema"),
    RoleCase("cells-db-unreachable", "cells", lambda w: {"nova_database_port": w.closed_port}, "the server is unreachable", tasks_from="schema"),
]


def role_inventory(world: World) -> dict[str, Any]:
    lab = world.lab
    groups: dict[str, dict[str, Any]] = {"nova_api": {"hosts": {}}, "nova_compute": {"hosts": {}}}
    hosts: dict[str, Any] = {}
    for case in ROLE_CASES:
        hosts[case.id] = {"bad_role": case.role, "bad_tasks_from": case.tasks_from, **case.hostvars(world)}
        for group in case.groups:
            groups[group]["hosts"][case.id] = {}
    return {
        "all": {
            "vars": {
                "ansible_connection": "local",
                "nova_conf_dir": f"{world.root}/roles/{{{{ inventory_hostname }}}}",
                "nova_systemd_dir": f"{world.root}/roles/{{{{ inventory_hostname }}}}/systemd",
                "nova_conf_group": "daemon",
                "nova_conf_restart_services": False,
                "nova_conf_validate": False,
                "nova_manage": lab.nova_manage_command,
                "nova_database_host": "127.0.0.1",
                "nova_database_port": lab.mariadb.port,
                "nova_database_password": NOVA_DB_PASSWORD,
                "nova_api_database_name": API_DB,
                "nova_cell0_database_name": CELL0_DB,
                "nova_rabbit_hosts": ["127.0.0.1"],
                "nova_rabbit_port": lab.rabbitmq.port,
                "nova_rabbit_password": RABBIT_PASSWORD,
                "nova_cells": {"bcell1": {"database_name": CELL_DBS["bcell1"], "rabbit_vhost": "bcell1"}},
                "nova_api_mq_shared_cell": "",
                "nova_cells_wait_for_computes": False,
                "nova_cells_refresh_services": False,
            },
            "hosts": hosts,
            "children": groups,
        }
    }


@pytest.fixture(name="role_run", scope="module")
def role_run_fixture(world: World, run_playbook) -> dict[str, Any]:
    before = world.checksums()
    result = run_playbook(ROLE_PLAYBOOK, inventory=role_inventory(world), timeout=600, extra_env={"ANSIBLE_PIPELINING": "1"})
    changed = sorted(name for name, value in world.checksums().items() if before.get(name) != value)
    return {"result": result, "changed": changed}


@pytest.mark.parametrize("case", ROLE_CASES, ids=[case.id for case in ROLE_CASES])
def test_role_refuses_bad_input(world: World, role_run: dict[str, Any], case: RoleCase) -> None:
    results = role_run["result"].results(case.id)
    failures = [(name, result) for name, result in results if result.get("failed")]
    assert failures, f"{case.id} was accepted: {[name for name, _result in results]}"
    name, result = failures[-1]
    assert case.expect in str(result.get("msg", "")), (name, result.get("msg"))
    assert "Traceback" not in str(result.get("msg", "")), result
    assert not (world.root / "roles" / case.id / "nova.conf").exists(), f"{case.id} wrote nova.conf before refusing"
    assert not [path for path in role_run["changed"] if not path.startswith(str(world.root / "roles"))], role_run["changed"]
