"""Reliability, faults (issue 8): the collection against real outages of MariaDB (stopped, hung, lost in the
middle of a nova-manage run), RabbitMQ, memcached and ZooKeeper, a SIGKILLed nova-compute and a SIGKILLed
discover_hosts.

Every test works in its own API and cell databases (Nova's real schema, cloned with CREATE TABLE ... LIKE
from what real nova-manage synced), so other test files are not disturbed; daemons stopped here are
started again before the test ends (``lab.infra_outage``). The measured seconds are recorded as figures
("reliability: faults"); the asserted bounds are promises, not benchmarks.
"""

from __future__ import annotations

import os
import signal
import threading
import time
import uuid as uuidlib
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import pytest
from harness import Lab, LabError, ModuleResult, record_figure
from harness.lab import NOVA_DB_PASSWORD, RABBIT_PASSWORD
from kazoo.client import KazooClient
from kazoo.exceptions import NodeExistsError

SECTION = "reliability: faults"
CELL0_UUID = "00000000-0000-0000-0000-000000000000"
TIMING = {"report_interval": 2, "service_down_time": 6}
# What "fails within seconds" promises for a module whose database is down (a promise, not a benchmark).
DB_DOWN_BOUND_SECONDS = 20.0


# -- databases ---------------------------------------------------------------------------------------


def checksums(lab: Lab, *databases: str) -> dict[str, dict[str, Any]]:
    """``CHECKSUM TABLE`` of every table of each database ({} for a database without tables)."""
    state: dict[str, dict[str, Any]] = {}
    for database in databases:
        tables = [next(iter(row.values())) for row in lab.query(database, "SHOW TABLES")]
        rows = lab.query(database, "CHECKSUM TABLE " + ", ".join(f"`{table}`" for table in tables)) if tables else []
        state[database] = {row["Table"]: row["Checksum"] for row in rows}
    return state


def add_cell_mapping(lab: Lab, api_db: str, name: str, transport_url: str, database_connection: str, uuid: str | None = None) -> str:
    uuid = uuid or str(uuidlib.uuid4())
    lab.query(api_db, "INSERT INTO cell_mappings (created_at, uuid, name, transport_url, database_connection, disabled) "
                      "VALUES (UTC_TIMESTAMP(), %s, %s, %s, %s, 0)", (uuid, name, transport_url, database_connection))
    return uuid


def add_compute_nodes(lab: Lab, database: str, hosts: list[str]) -> None:
    """Unmapped compute_nodes rows, 500 per INSERT."""
    row = "(UTC_TIMESTAMP(), %s, %s, %s, 8, 8192, 100, 0, 0, 0, 'fake', 1000, '{}', 0, 0)"
    for start in range(0, len(hosts), 500):
        part = hosts[start:start + 500]
        lab.query(database, "INSERT INTO compute_nodes (created_at, host, hypervisor_hostname, uuid, vcpus, memory_mb, local_gb, "
                            "vcpus_used, memory_mb_used, local_gb_used, hypervisor_type, hypervisor_version, cpu_info, deleted, mapped) "
                            "VALUES " + ", ".join([row] * len(part)),
                  [value for host in part for value in (host, host, str(uuidlib.uuid4()))])


def add_instances(lab: Lab, database: str, count: int, host: str) -> None:
    row = ("(UTC_TIMESTAMP(), 0, %s, 'u1', 'p1', 'vm', 'vm', %s, %s, 'active', 1, 512, 1, 1, 0, 1, UTC_TIMESTAMP(), 0, 0, 0)")
    lab.query(database, "INSERT INTO instances (created_at, deleted, uuid, user_id, project_id, display_name, hostname, host, node, "
                        "vm_state, power_state, memory_mb, vcpus, root_gb, ephemeral_gb, instance_type_id, launched_at, locked, "
                        "cleaned, hidden) VALUES " + ", ".join([row] * count),
              [value for _index in range(count) for value in (str(uuidlib.uuid4()), host, host)])


def add_service_row(lab: Lab, database: str, host: str) -> None:
    lab.query(database, "INSERT INTO services (created_at, updated_at, host, `binary`, topic, report_count, disabled, deleted, "
                        "forced_down, uuid, version) VALUES (UTC_TIMESTAMP(), UTC_TIMESTAMP(), %s, 'nova-compute', 'compute', 1, "
                        "0, 0, 0, %s, 0)", (host, str(uuidlib.uuid4())))


def mapped_once(lab: Lab, api_db: str, hosts: list[str]) -> tuple[int, int]:
    """(distinct hosts mapped, duplicate mappings) for ``hosts``; asserts that exactly ``hosts`` are mapped."""
    rows = lab.query(api_db, "SELECT host, COUNT(*) AS n FROM host_mappings GROUP BY host")
    counts = {row["host"]: row["n"] for row in rows}
    assert sorted(counts) == sorted(hosts), f"{len(counts)} hosts mapped, expected {len(hosts)}"
    duplicates = sum(n - 1 for n in counts.values())
    assert duplicates == 0, {host: n for host, n in counts.items() if n > 1}
    return len(counts), duplicates


def assert_clear_failure(lab: Lab, name: str, result: ModuleResult, *phrases: str) -> None:
    """Failed with a message naming the cause, without a traceback or a password."""
    assert result.failed, f"{name} did not fail: {result.result}"
    message = result.msg or ""
    assert any(phrase in message for phrase in phrases), f"{name}: unclear message {message!r}"
    assert "Traceback" not in message and "unexpected error" not in message and "exception" not in result, f"{name}: {result.result}"
    for secret in lab.secrets:
        assert not result.contains(secret), f"{name} printed a password"


def timed(call: Callable[[], ModuleResult]) -> tuple[ModuleResult, float]:
    started = time.monotonic()
    result = call()
    return result, time.monotonic() - started


# -- DB down -----------------------------------------------------------------------------------------


class DbWorld:
    """An API database with cell flt1 (unmapped hosts and instances, one mapped host), an empty API database
    for db_sync, and the database of cell flt2 that a ``cell`` run creates."""

    api_db = "nova_api_flt"
    sync_db = "nova_api_fltsync"
    cell_dbs = {"flt1": "nova_flt1", "flt2": "nova_flt2"}
    hosts = [f"flt-h{index:02d}" for index in range(20)]

    def __init__(self, lab: Lab, run_module: Callable[..., ModuleResult]) -> None:
        self.lab = lab
        self._run_module = run_module
        lab.clone_database("nova_api", self.api_db)
        urls = {cell: lab.clone_database(lab.cells["cell1"].database, database) for cell, database in self.cell_dbs.items()}
        self.flt2_url = urls["flt2"]
        add_cell_mapping(lab, self.api_db, "flt1", lab.transport_url("flt1"), urls["flt1"])
        cell_id = lab.query(self.api_db, "SELECT id FROM cell_mappings WHERE name = 'flt1'")[0]["id"]
        add_compute_nodes(lab, self.cell_dbs["flt1"], self.hosts)
        add_instances(lab, self.cell_dbs["flt1"], 30, "flt-h00")
        lab.query(self.api_db, "INSERT INTO host_mappings (created_at, cell_id, host) VALUES (UTC_TIMESTAMP(), %s, 'flt-old')", (cell_id,))
        lab.drop_database(self.sync_db)
        lab.create_database(self.sync_db)
        self.conf = lab.write_config("flt-api", {
            "DEFAULT": {"transport_url": lab.transport_url("flt_default")},
            "api_database": {"connection": lab.db_url(self.api_db)},
            "database": {"connection": urls["flt1"]},
        })
        self.sync_conf = lab.write_config("flt-sync", {"api_database": {"connection": lab.db_url(self.sync_db)}})

    def calls(self) -> dict[str, Callable[[], ModuleResult]]:
        """One run of every DB-touching module, by name."""
        lab = self.lab

        def run(module: str, conf: Path | None = None, **args: Any) -> Callable[[], ModuleResult]:
            base = {"config_files": [str(conf or self.conf)], "nova_manage": lab.nova_manage_command, "database_connect_timeout": 5}
            return lambda: self._run_module(module, {**base, **args})

        return {
            "cell (create)": run("cell", name="flt2", database_connection=self.flt2_url, transport_url=lab.transport_url("flt2")),
            "cell_info": run("cell_info"),
            "discover_hosts": run("discover_hosts", cell="flt1"),
            "map_instances": run("map_instances", cell="flt1"),
            "host (absent)": run("host", name="flt-old", cell="flt1"),
            "db_sync (api)": run("db_sync", self.sync_conf, database="api"),
            "service_status (db)": run("service_status", driver="db", cells=["flt1"], **TIMING),
        }

    def databases(self) -> list[str]:
        return [self.api_db, self.sync_db, *self.cell_dbs.values()]


def test_db_down_fails_fast_writes_nothing_and_a_rerun_converges(nova_lab: Lab, run_module: Callable[..., ModuleResult]) -> None:
    lab = nova_lab
    world = DbWorld(lab, run_module)
    calls = world.calls()
    before = checksums(lab, *world.databases())

    with lab.infra_outage("mariadb"):
        down: dict[str, tuple[ModuleResult, float]] = {name: timed(call) for name, call in calls.items()}
    for name, (result, seconds) in down.items():
        record_figure(SECTION, f"DB down: {name} failed after", round(seconds, 2), "s")
        assert_clear_failure(lab, name, result, "cannot connect", "unreachable")
        assert seconds < DB_DOWN_BOUND_SECONDS, f"{name} took {seconds:.1f} s to fail with the database down"
        assert result.get("commands", []) == [] or name == "db_sync (api)", f"{name} ran nova-manage: {result['commands']}"
    record_figure(SECTION, "DB down: slowest module failure (bound)", round(max(s for _r, s in down.values()), 2), f"s (< {DB_DOWN_BOUND_SECONDS:.0f})")

    # A hung server (SIGSTOP): it accepts TCP connections but never answers; database_connect_timeout (5 s)
    # must bound the whole handshake. The seven runs go in parallel (each would take the full timeout).
    with lab.mariadb.frozen(), ThreadPoolExecutor(max_workers=len(calls)) as pool:
        futures = {name: pool.submit(timed, call) for name, call in calls.items()}
        hung = {name: future.result() for name, future in futures.items()}
    for name, (result, seconds) in hung.items():
        record_figure(SECTION, f"DB hung (SIGSTOP): {name} failed after", round(seconds, 2), "s")
        assert_clear_failure(lab, name, result, "cannot connect")
        assert seconds < DB_DOWN_BOUND_SECONDS, f"{name} took {seconds:.1f} s to fail with the database hung"

    after = checksums(lab, *world.databases())
    assert after == before, "a module wrote to a database while MariaDB was down or hung"

    # Recovery: every module converges (changed where there was work), then a further run changes nothing.
    expected_changed = {"cell (create)", "discover_hosts", "map_instances", "host (absent)", "db_sync (api)"}
    for phase in ("re-run after recovery", "further run"):
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=len(calls)) as pool:
            futures = {name: pool.submit(call) for name, call in calls.items()}
            results = {name: future.result() for name, future in futures.items()}
        record_figure(SECTION, f"DB down: {phase}, 7 modules in parallel", round(time.monotonic() - started, 2), "s")
        for name, result in results.items():
            assert not result.failed, f"{phase}: {name} failed: {result.msg}"
        changed = {name for name, result in results.items() if result.changed}
        assert changed == (expected_changed if phase == "re-run after recovery" else set()), f"{phase}: changed {changed}"
    assert [row["name"] for row in lab.query(world.api_db, "SELECT name FROM cell_mappings ORDER BY id")] == ["flt1", "flt2"]
    mapped_once(lab, world.api_db, world.hosts)


# -- discover_hosts interrupted: nova-manage killed, or the database lost mid-run --------------------------


class Discovery:
    """A cell with unmapped hosts in databases of its own, and a discover_hosts run in a thread."""

    def __init__(self, lab: Lab, run_module: Callable[..., ModuleResult], name: str, count: int) -> None:
        self.lab = lab
        self._run_module = run_module
        self.api_db, self.cell_db = f"nova_api_{name}", f"nova_{name}"
        self.hosts = [f"{name}-{index:04d}" for index in range(count)]
        lab.clone_database("nova_api", self.api_db)
        add_cell_mapping(lab, self.api_db, name, lab.transport_url(name), lab.clone_database(lab.cells["cell1"].database, self.cell_db))
        add_compute_nodes(lab, self.cell_db, self.hosts)
        self.conf = lab.write_config(name, {"api_database": {"connection": lab.db_url(self.api_db)},
                                            "database": {"connection": lab.db_url(self.cell_db)}})
        self.args = {"config_files": [str(self.conf)], "nova_manage": lab.nova_manage_command, "cell": name}
        self.box: dict[str, Any] = {}
        self.thread = threading.Thread(target=self._first_run)

    def _first_run(self) -> None:
        try:
            self.box["result"] = self._run_module("discover_hosts", self.args)
        except LabError as exc:  # killed: no JSON result
            self.box["error"] = exc

    def mapped(self) -> int:
        return self.lab.query(self.api_db, "SELECT COUNT(*) AS n FROM host_mappings")[0]["n"]

    def start_and_wait_for(self, mapped: int) -> None:
        """Start the first run; return once nova-manage has mapped ``mapped`` hosts (it is still running)."""
        self.thread.start()
        self.lab.wait_until(lambda: self.mapped() >= mapped or not self.thread.is_alive(), timeout=120,
                            what=f"nova-manage discover_hosts to map {mapped} hosts")
        assert self.thread.is_alive(), f"discover_hosts finished before it could be interrupted: {self.box}"

    def run(self) -> tuple[ModuleResult, float]:
        return timed(lambda: self._run_module("discover_hosts", self.args))

    def converge(self, label: str) -> None:
        """A re-run maps the rest, every host exactly once; a further run changes nothing."""
        again, seconds = self.run()
        assert not again.failed and again.changed, again.msg
        record_figure(SECTION, f"{label}: re-run mapping the rest", round(seconds, 2), "s")
        mapped_once(self.lab, self.api_db, self.hosts)   # asserts every host mapped exactly once
        unmarked = self.lab.query(self.cell_db, "SELECT COUNT(*) AS n FROM compute_nodes WHERE mapped = 0")[0]["n"]
        # Nova sets compute_nodes.mapped only when it creates the host mapping, so a node interrupted between the
        # two keeps mapped=0 with its host mapped: harmless (discovery checks it again and skips it), and Nova's own.
        # nova-manage maps one node at a time, so at most the one node it was at when interrupted.
        record_figure(SECTION, f"{label}: compute_nodes left with mapped=0 (host already mapped)", unmarked)
        assert unmarked <= 1, unmarked
        final, _seconds = self.run()
        assert not final.failed and not final.changed, final.result


def module_processes(marker: str) -> list[int]:
    """PIDs of processes started by this test whose command line names ``marker`` (a config file of its own)."""
    pids = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if any(marker.encode() in part for part in argv) and b"discover_hosts" in argv:
            pids.append(int(entry.name))
    return pids


def parent_pid(pid: int) -> int | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text(encoding="ascii").rsplit(")", 1)[1].split()
    except OSError:
        return None
    return int(fields[1])


def test_database_lost_during_discover_hosts(nova_lab: Lab, run_module: Callable[..., ModuleResult]) -> None:
    lab = nova_lab
    discovery = Discovery(lab, run_module, "fltlost", 300)
    discovery.start_and_wait_for(30)
    with lab.infra_outage("mariadb"):
        lost_at = time.monotonic()
        discovery.thread.join(timeout=120)
        seconds = time.monotonic() - lost_at
    result = discovery.box["result"]
    record_figure(SECTION, "DB lost mid discover_hosts: module failed after", round(seconds, 2), "s")
    assert seconds < DB_DOWN_BOUND_SECONDS
    # The cause in one line (not traceback frames and a whole SQL statement); the traceback stays in stdout.
    assert_clear_failure(lab, "discover_hosts", result, "The database went away during the command")
    assert "DBConnectionError" in result.msg and "[SQL:" not in result.msg and 'File "' not in result.msg, result.msg
    assert result["rc"] == 255 and "Traceback" in result["stdout"]
    discovery.converge("DB lost mid discover_hosts")


def test_nova_manage_killed_during_discover_hosts(nova_lab: Lab, run_module: Callable[..., ModuleResult]) -> None:
    lab = nova_lab
    discovery = Discovery(lab, run_module, "fltkill", 300)
    discovery.start_and_wait_for(30)
    # The module's processes: nova-manage (found by this test's own config file) and the module process that runs it,
    # killed by PID because the module shares pytest's process group.
    manage = module_processes(str(discovery.conf))
    assert manage, "no nova-manage discover_hosts process found"
    victims = sorted(set(manage) | {ppid for pid in manage if (ppid := parent_pid(pid)) is not None and ppid != os.getpid()})
    for pid in victims:
        os.kill(pid, signal.SIGKILL)
    discovery.thread.join(timeout=60)
    killed_after = discovery.mapped()
    record_figure(SECTION, f"nova-manage killed: hosts mapped when SIGKILL hit (of {len(discovery.hosts)})", killed_after)
    assert 0 < killed_after < len(discovery.hosts)
    discovery.converge("nova-manage killed")


# -- RabbitMQ down during a deploy -----------------------------------------------------------------------

MQ_API_DB = "nova_api_fltmq"
MQ_DBS = {"cell0": "nova_fltmq_cell0", "mq1": "nova_fltmq_c1"}
SCHEMA_PLAY = """\
- name: Cells bootstrap, schema step
  hosts: ctl
  gather_facts: false
  tasks:
    - name: Databases and cell mappings
      ansible.builtin.include_role:
        name: nova.cells.cells
        tasks_from: schema
"""


def mq_inventory(lab: Lab, root: Path) -> dict[str, Any]:
    """The cells role on one API-level host, template-URL mode, one cell (as test_playbooks.py, trimmed)."""
    return {"all": {
        "vars": {
            "ansible_connection": "local",
            "nova_conf_dir": str(root),
            "nova_conf_group": "daemon",
            "nova_manage": lab.nova_manage_command,
            "nova_database_host": "127.0.0.1",
            "nova_database_port": lab.mariadb.port,
            "nova_database_password": NOVA_DB_PASSWORD,
            "nova_api_database_name": MQ_API_DB,
            "nova_cell0_database_name": MQ_DBS["cell0"],
            "nova_rabbit_hosts": ["127.0.0.1"],
            "nova_rabbit_port": lab.rabbitmq.port,
            "nova_rabbit_password": RABBIT_PASSWORD,
            "nova_rabbit_vhost": "fltmq_api",
            "nova_cells": {"mq1": {"database_name": MQ_DBS["mq1"], "rabbit_vhost": "fltmq_c1"}},
            "nova_api_mq_shared_cell": "",
            "nova_cell_url_templates": True,
            # The schemas are cloned from synced ones: the API sync is skipped, db sync finds nothing to do.
            "nova_cells_sync_api": False,
        },
        "children": {"nova_api": {"hosts": {"ctl": {}}}, "nova_super_conductor": {"hosts": {"ctl": {}}}},
    }}


def test_rabbitmq_down_during_the_cells_bootstrap(nova_lab: Lab, run_playbook: Callable[..., Any]) -> None:
    """Decision: the schema step of the cells role needs no message queue (nova-manage db sync, map_cell0 and
    create_cell only store the transport URL), so with RabbitMQ down it completes; once RabbitMQ is back a
    re-run changes nothing and every cell is mapped once."""
    lab = nova_lab
    lab.clone_database("nova_api", MQ_API_DB)
    lab.clone_database("nova_cell0", MQ_DBS["cell0"])
    # cell0 was mapped by an earlier deploy (saves a nova-manage run); the value is the role's cell0 template.
    add_cell_mapping(lab, MQ_API_DB, "cell0", "none:///", f"mysql+pymysql://{{username}}:{{password}}@127.0.0.1:{lab.mariadb.port}/{MQ_DBS['cell0']}",
                     uuid=CELL0_UUID)
    lab.clone_database(lab.cells["cell1"].database, MQ_DBS["mq1"])
    root = lab.dir / "flt-mq"
    root.mkdir(exist_ok=True)
    inventory = mq_inventory(lab, root)

    with lab.infra_outage("rabbitmq") as rabbitmq:
        assert not rabbitmq.is_running()
        started = time.monotonic()
        during = run_playbook(SCHEMA_PLAY, inventory=inventory, timeout=600)
        seconds = time.monotonic() - started
        restart_started = time.monotonic()
    record_figure(SECTION, "RabbitMQ down: cells role schema step (completes)", round(seconds, 2), "s")
    record_figure(SECTION, "RabbitMQ down: RabbitMQ restart", round(time.monotonic() - restart_started, 2), "s")
    assert not during.failed, during.stdout[-4000:]
    create = during.task("nova.cells.cells : Map cell0 and create or update each cell mapping "
                         "(nova-manage cell_v2 map_cell0 / create_cell / update_cell)", "ctl")
    assert {item["name"]: item["changed"] for item in create["cells"]} == {"cell0": False, "mq1": True}

    again = run_playbook(SCHEMA_PLAY, inventory=inventory, timeout=600)
    assert not again.failed, again.stdout[-4000:]
    assert {host: stats["changed"] for host, stats in again.stats.items() if stats["changed"]} == {}
    rows = lab.query(MQ_API_DB, "SELECT name, uuid, COUNT(*) OVER (PARTITION BY name) AS n FROM cell_mappings ORDER BY id")
    assert [(row["name"], row["n"]) for row in rows] == [("cell0", 1), ("mq1", 1)]
    assert rows[0]["uuid"] == CELL0_UUID
    for result in (during, again):
        for secret in lab.secrets:
            assert not result.contains(secret)


# -- ZooKeeper restart and session expiry -----------------------------------------------------------------

ZK_API_DB = "nova_api_fltzk"
ZK_CELL_DB = "nova_fltzk"
ZK_PREFIX = "/nova-cells-faults/servicegroups"
ZK_HOSTS = ["flt-zk1", "flt-zk2"]


class ZkMembers:
    """Emulated Nova zk members (Nova 34 has no zk driver): flt-zk1 in the Kilo layout (host node + ephemeral
    child), flt-zk2 in the Juno layout (ephemeral host node). ``register()`` re-creates what is missing."""

    def __init__(self, hosts: str) -> None:
        # The session timeout is the server's maximum (20 ticks): a JVM restart on two busy cores plus kazoo's
        # reconnect backoff took more than 10 s in CI, and the test is about a restart the session outlives.
        self.client = KazooClient(hosts=hosts, timeout=40.0)
        self.client.start(timeout=15)

    def register(self) -> None:
        self.client.ensure_path(f"{ZK_PREFIX}/compute/flt-zk1")
        for path in (f"{ZK_PREFIX}/compute/flt-zk1/member-{os.getpid()}", f"{ZK_PREFIX}/compute/flt-zk2"):
            try:
                self.client.create(path, b"", ephemeral=True)
            except NodeExistsError:
                pass

    def present(self) -> bool:
        return bool(self.client.exists(f"{ZK_PREFIX}/compute/flt-zk2"))

    def close(self) -> None:
        self.client.stop()
        self.client.close()


def test_zookeeper_restart_and_session_expiry(nova_lab: Lab, zookeeper: Any, run_module: Callable[..., ModuleResult]) -> None:
    lab = nova_lab
    lab.clone_database("nova_api", ZK_API_DB)
    add_cell_mapping(lab, ZK_API_DB, "fltzk", "none:///", lab.clone_database(lab.cells["cell1"].database, ZK_CELL_DB))
    for host in ZK_HOSTS:
        add_service_row(lab, ZK_CELL_DB, host)
    conf = lab.write_config("flt-zk", {"api_database": {"connection": lab.db_url(ZK_API_DB)}})

    def status(**args: Any) -> ModuleResult:
        result = run_module("service_status", {
            "config_files": [str(conf)], "driver": "zk", "nova_release": "liberty", "zookeeper_address": [zookeeper.hosts],
            "zookeeper_sg_prefix": ZK_PREFIX, "hosts": ZK_HOSTS, "backend_timeout": 2, **TIMING, **args})
        assert not result.failed and "exception" not in result, result.result
        return result

    def states(result: ModuleResult) -> dict[str, str]:
        return {entry["host"]: entry["state"] for entry in result["services"]}

    members = ZkMembers(zookeeper.hosts)
    try:
        members.register()
        assert states(status()) == {"flt-zk1": "up", "flt-zk2": "up"}

        # Restart: unknown while ZooKeeper is down (never a crash); the session outlives a short restart.
        with lab.infra_outage("zookeeper"):
            during, seconds = timed(status)
            assert set(states(during).values()) == {"unknown"}, during.result
            assert any("did not answer" in warning for warning in during["warnings"])
        record_figure(SECTION, "ZooKeeper down: service_status answered unknown after", round(seconds, 2), "s")
        started = time.monotonic()
        up = status(wait_for={"hosts": ZK_HOSTS, "timeout": 30, "interval": 0.5})
        assert states(up) == {"flt-zk1": "up", "flt-zk2": "up"}, up.result
        record_figure(SECTION, "ZooKeeper restart: members up again after", round(time.monotonic() - started, 2), "s")
        assert members.present()   # nothing registered again: the session outlived the restart

        # Session expiry: a second client takes over the members' session and closes it, as the server does
        # when a member stops answering; the ephemeral nodes vanish at once.
        session_id, password = members.client.client_id
        thief = KazooClient(hosts=zookeeper.hosts, client_id=(session_id, password), timeout=10.0)
        thief.start(timeout=15)
        thief.stop()
        thief.close()
        expired_at = time.monotonic()
        down = status(wait_for={"hosts": ZK_HOSTS, "state": "down", "timeout": 20, "interval": 0.5})
        assert states(down) == {"flt-zk1": "down", "flt-zk2": "down"}, down.result
        reasons = {entry["host"]: entry["reason"] for entry in down["services"]}
        assert "no live member" in reasons["flt-zk1"] and "no znode" in reasons["flt-zk2"], reasons
        record_figure(SECTION, "ZooKeeper session expiry: members reported down after", round(time.monotonic() - expired_at, 2), "s")

        # The members re-register on their new session: up again.
        lab.wait_until(lambda: members.client.connected, timeout=30, what="the member client to reconnect with a new session")
        members.register()
        again = status(wait_for={"hosts": ZK_HOSTS, "timeout": 20, "interval": 0.5})
        assert states(again) == {"flt-zk1": "up", "flt-zk2": "up"}
        record_figure(SECTION, "ZooKeeper session expiry: members up again after", round(time.monotonic() - expired_at, 2), "s")
    finally:
        members.close()


# -- Nova services: memcached down, a compute killed -------------------------------------------------------

SG_API_DB = "nova_api_fltsg"


@pytest.fixture(name="services", scope="module")
def services_fixture(nova_lab: Lab, memcached: Any) -> Iterator[dict[str, Any]]:
    """A cell1 conductor and two computes (db and mc ServiceGroup drivers), report_interval 2, service_down_time 6;
    readers use their own API database with cell1 mapped."""
    lab = nova_lab
    lab.clone_database("nova_api", SG_API_DB)
    cell1 = lab.cells["cell1"]
    add_cell_mapping(lab, SG_API_DB, "cell1", cell1.transport_url, cell1.database_connection)
    api = {"api_database": {"connection": lab.db_url(SG_API_DB)}}
    mc = lab.memcache_sections()
    readers = {
        "db": lab.write_config("flt-sg-db", {"DEFAULT": dict(TIMING), **api}),
        "mc": lab.write_config("flt-sg-mc", {"DEFAULT": {**mc["DEFAULT"], **TIMING}, "cache": mc["cache"], **api}),
    }
    started = time.monotonic()
    conductor = lab.start_conductor("cell1", "flt-cond", **TIMING)
    computes = {
        "db": lab.start_compute("cell1", "flt-cmp-db", **TIMING),
        "mc": lab.start_compute("cell1", "flt-cmp-mc", extra_sections=mc, **TIMING),
    }
    for compute in computes.values():
        lab.wait_for_service_row("cell1", "nova-compute", compute.host, service=compute)
    record_figure(SECTION, "services: conductor + 2 computes registered after", round(time.monotonic() - started, 2), "s")
    yield {"readers": readers, "computes": computes, "memcached": memcached}
    lab.stop_services([conductor, *computes.values()], timeout=0)


def sg_status(run_module: Callable[..., ModuleResult], services: dict[str, Any], driver: str, host: str, **args: Any) -> ModuleResult:
    result = run_module("service_status", {"config_files": [str(services["readers"][driver])], "cells": ["cell1"], "hosts": [host], **args})
    assert "exception" not in result, result.result
    return result


def test_memcached_down_reports_unknown_never_crashes(nova_lab: Lab, services: dict[str, Any], run_module: Callable[..., ModuleResult]) -> None:
    lab = nova_lab
    host = services["computes"]["mc"].host
    up = sg_status(run_module, services, "mc", host, wait_for={"hosts": [host], "timeout": 90, "interval": 1})
    assert not up.failed and up["driver"] == "mc" and up["services"][0]["state"] == "up", up.result

    with lab.infra_outage("memcached"):
        during, seconds = timed(lambda: sg_status(run_module, services, "mc", host, backend_timeout=2))
        assert during.rc == 0 and not during.failed, during.result
        entry = during["services"][0]
        assert entry["state"] in ("unknown", "down") and entry["reason"], entry
        assert any("did not answer" in warning for warning in during["warnings"]), during.get("warnings")
        record_figure(SECTION, f"memcached down: service_status (rc {during.rc}) reported '{entry['state']}' after", round(seconds, 2), "s")
        # A wait for "up" during the outage ends with a clear time-out, not a crash.
        waited = sg_status(run_module, services, "mc", host, backend_timeout=1, wait_for={"hosts": [host], "timeout": 3, "interval": 1})
        assert waited.failed and "timed out after" in waited.msg and waited["services"], waited.result
    restarted = time.monotonic()
    # memcached restarts empty: the compute's next heartbeat (report_interval 2) makes it up again.
    again = sg_status(run_module, services, "mc", host, wait_for={"hosts": [host], "timeout": 60, "interval": 1})
    assert not again.failed and again["services"][0]["state"] == "up", again.result
    record_figure(SECTION, "memcached restart: mc compute up again after", round(time.monotonic() - restarted, 2), "s")
    assert services["computes"]["mc"].is_running(), "nova-compute died while memcached was down"


def test_killed_compute_reported_down_within_bound(nova_lab: Lab, services: dict[str, Any], run_module: Callable[..., ModuleResult]) -> None:
    lab = nova_lab
    compute = services["computes"]["db"]
    row = lab.wait_for_heartbeat("cell1", "nova-compute", compute.host, after=0, timeout=60, service=compute)
    lab.wait_for_heartbeat("cell1", "nova-compute", compute.host, after=row["report_count"], timeout=30, service=compute)
    up = sg_status(run_module, services, "db", compute.host)
    assert not up.failed and up["services"][0]["state"] == "up", up.result

    bound = TIMING["service_down_time"] + TIMING["report_interval"]
    killed_at = time.monotonic()
    compute.kill()
    down = sg_status(run_module, services, "db", compute.host, wait_for={"hosts": [compute.host], "state": "down", "timeout": 30, "interval": 0.25})
    seconds = time.monotonic() - killed_at
    assert not down.failed, down.msg
    entry = down["services"][0]
    assert entry["state"] == "down" and "last heartbeat" in entry["reason"], entry
    record_figure(SECTION, "compute SIGKILL: reported down after (db driver, 2 s / 6 s)", round(seconds, 2), f"s (bound {bound} s)")
    assert seconds <= bound, f"reported down {seconds:.1f} s after SIGKILL, more than service_down_time + report_interval = {bound} s"
