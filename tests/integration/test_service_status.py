"""nova.cells.service_status against real Nova 34 services, real memcached and a real ZooKeeper.

The tests use their own cell (``sgcell``: database synced by real nova-manage, own vhost) and their
own API database (the real schema, cell0 and sgcell mapped), so other test files are not disturbed.
Timers are small (report_interval 2, service_down_time 6), as Nova requires service_down_time >
report_interval. Tests run in file order and share the module-scoped world.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import time
import uuid

import pytest
from harness import Lab
from kazoo.client import KazooClient
from pymemcache.client.base import Client as MemcacheClient

CELL = "sgcell"
API_DB = "nova_api_sg"
CELL0_UUID = "00000000-0000-0000-0000-000000000000"
TIMING = {"report_interval": 2, "service_down_time": 6}


class World:
    def __init__(self, lab: Lab, run_module, run_playbook):
        self.lab = lab
        self._run_module = run_module
        self._run_playbook = run_playbook
        self.cell = lab.cells[CELL]
        self.services = []
        self.results = []
        self.reader = lab.write_config("sg-reader", {
            "DEFAULT": {"report_interval": 2, "service_down_time": 6},
            "api_database": {"connection": lab.db_url(API_DB)},
        })

    def run(self, module, args, check=False, diff=False):
        result = self._run_module(module, args, check=check, diff=diff)
        self.results.append(result)
        return result

    def status(self, config_files=None, check=False, **args):
        base = {"config_files": [str(path) for path in (config_files or [self.reader])], "cells": [CELL]}
        base.update(args)
        return self.run("service_status", base, check=check)

    def start(self, binary, host, extra=()):
        starter = self.lab.start_conductor if binary == "nova-conductor" else self.lab.start_compute
        service = starter(CELL, host, extra_config_files=list(extra), **TIMING)
        self.services.append(service)
        return service

    def add_row(self, host, topic="compute", binary="nova-compute"):
        self.lab.query(self.cell.database, "DELETE FROM services WHERE host = %s", (host,))
        self.lab.query(self.cell.database,
                       "INSERT INTO services (created_at, host, `binary`, topic, report_count, disabled, deleted, forced_down, "
                       "uuid, version) VALUES (UTC_TIMESTAMP(), %s, %s, %s, 0, 0, 0, 0, %s, 0)",
                       (host, binary, topic, str(uuid.uuid4())))

    def status_tasks(self, tasks):
        """Several service_status runs in one playbook (one Ansible start-up); returns {name: result}."""
        base = {"config_files": [str(self.reader)], "cells": [CELL]}
        play = {"hosts": "localhost", "gather_facts": False, "tasks": [
            {"name": name, "nova.cells.service_status": {**base, **args}, "ignore_errors": True, **extra}
            for name, (args, extra) in tasks.items()]}
        result = self._run_playbook([play])
        self.results.append(result)
        return {name: result.task(name) for name in tasks}

    def by_host(self, result):
        return {(entry["host"], entry["binary"]): entry for entry in result["services"]}


@pytest.fixture(name="sg", scope="module")
def sg_fixture(nova_lab: Lab, run_module, run_playbook):
    lab = nova_lab
    lab.setup_nova(("cell1", CELL))
    lab.create_database(API_DB)
    for row in lab.query("nova_api", "SHOW TABLES"):
        (table,) = row.values()
        lab.query(API_DB, f"CREATE TABLE IF NOT EXISTS `{table}` LIKE `nova_api`.`{table}`")
    lab.query(API_DB, "DELETE FROM cell_mappings")
    insert = ("INSERT INTO cell_mappings (created_at, uuid, name, transport_url, database_connection, disabled) "
              "VALUES (UTC_TIMESTAMP(), %s, %s, %s, %s, 0)")
    lab.query(API_DB, insert, (CELL0_UUID, "cell0", "none:///", lab.db_url("nova_cell0")))
    lab.query(API_DB, insert, (str(uuid.uuid4()), CELL, lab.cells[CELL].transport_url, lab.cells[CELL].database_connection))
    world = World(lab, run_module, run_playbook)
    yield world
    lab.stop_services(world.services, timeout=0)
    for result in world.results:
        for secret in lab.secrets:
            assert not result.contains(secret), f"a lab password leaked into the output of {result.argv[:8]}"


def test_db_driver_real_services(sg: World):
    hosts = ["sg-cond", "sg-cmp1", "sg-cmp2"]
    sg.start("nova-conductor", "sg-cond")
    sg.start("nova-compute", "sg-cmp1")
    cmp2 = sg.start("nova-compute", "sg-cmp2")

    up = sg.status(hosts=hosts, wait_for={"binary": "nova-compute", "count_per_cell": 2, "timeout": 120, "interval": 1})
    assert not up.failed, up.msg
    sg.lab.wait_for_heartbeat(CELL, "nova-compute", "sg-cmp1", after=0, timeout=30)   # a real heartbeat, not just created_at
    up = sg.status(hosts=hosts, wait_for={"hosts": hosts, "timeout": 60, "interval": 1})
    assert not up.failed and up["driver"] == "db" and up["service_down_time"] == 6, up.result
    services = sg.by_host(up)
    assert set(services) == {("sg-cond", "nova-conductor"), ("sg-cmp1", "nova-compute"), ("sg-cmp2", "nova-compute")}
    for entry in services.values():
        assert entry["state"] == "up" and entry["cell"] == CELL and not entry["forced_down"] and entry["reason"] is None
        assert entry["last_seen"].endswith("+00:00") and abs(entry["age_seconds"]) <= 6
    assert services[("sg-cmp1", "nova-compute")]["topic"] == "compute"
    assert up["summary"][CELL] == {"up": 3, "down": 0, "unknown": 0, "disabled": 0, "total": 3, "reachable": True}

    # Check mode, filters (done in SQL) and bad arguments, in one playbook.
    runs = sg.status_tasks({
        "check mode": ({"hosts": hosts}, {"check_mode": True}),
        "conductors": ({"hosts": hosts, "binary": "nova-conductor"}, {}),
        "compute topic": ({"hosts": hosts, "topic": "compute"}, {}),
        "binary and topic": ({"binary": "nova-compute", "topic": "compute"}, {}),
        "unknown cell": ({"cells": ["nope"]}, {}),
    })
    assert not runs["check mode"].get("changed") and not runs["check mode"].get("failed")
    assert len(runs["check mode"]["services"]) == 3
    assert [entry["host"] for entry in runs["conductors"]["services"]] == ["sg-cond"]
    assert {entry["host"] for entry in runs["compute topic"]["services"]} == {"sg-cmp1", "sg-cmp2"}
    assert runs["binary and topic"]["failed"] and "mutually exclusive" in runs["binary and topic"]["msg"]
    assert runs["unknown cell"]["failed"] and "there is no cell named 'nope'" in runs["unknown cell"]["msg"]

    # disabled is reported apart; forced_down wins over a fresh heartbeat.
    database = sg.cell.database
    sg.lab.query(database, "UPDATE services SET disabled = 1, disabled_reason = 'maintenance' WHERE host = 'sg-cmp1'")
    entry = sg.by_host(sg.status(hosts=["sg-cmp1"]))[("sg-cmp1", "nova-compute")]
    assert (entry["state"], entry["disabled"], entry["disabled_reason"]) == ("up", True, "maintenance")
    sg.lab.query(database, "UPDATE services SET forced_down = 1 WHERE host = 'sg-cmp1'")
    forced = sg.status(hosts=["sg-cmp1"])
    entry = sg.by_host(forced)[("sg-cmp1", "nova-compute")]
    assert (entry["state"], entry["reason"]) == ("down", "forced_down is set")
    assert forced["summary"][CELL]["disabled"] == 1 and forced["summary"][CELL]["down"] == 1
    sg.lab.query(database, "UPDATE services SET disabled = 0, disabled_reason = NULL, forced_down = 0 WHERE host = 'sg-cmp1'")

    # SIGKILL a compute: down once service_down_time has passed since its last heartbeat, not before.
    killed_at = time.monotonic()
    cmp2.kill()
    still_up = sg.by_host(sg.status(hosts=["sg-cmp2"]))[("sg-cmp2", "nova-compute")]
    if time.monotonic() - killed_at < 3:
        assert still_up["state"] == "up"
    down = sg.status(hosts=hosts, wait_for={"hosts": ["sg-cmp2"], "state": "down", "timeout": 60, "interval": 1})
    assert not down.failed, down.msg
    entry = sg.by_host(down)[("sg-cmp2", "nova-compute")]
    assert entry["state"] == "down" and entry["age_seconds"] > 6 and "last heartbeat" in entry["reason"]
    assert sg.by_host(down)[("sg-cmp1", "nova-compute")]["state"] == "up"
    print(f"\nkilled compute reported down {time.monotonic() - killed_at:.1f} s after SIGKILL (service_down_time 6)")

    timeout = sg.status(hosts=hosts, wait_for={"hosts": ["sg-cmp2"], "timeout": 3, "interval": 1})
    assert timeout.failed and "timed out after" in timeout.msg and "sgcell/sg-cmp2 nova-compute is down" in timeout.msg
    assert timeout["services"] and timeout["summary"][CELL]["down"] == 1

    sg.lab.stop_services([service for service in sg.services if service.is_running()], timeout=0)


def raw_item(memcached, topic, host):
    client = MemcacheClient(("127.0.0.1", memcached.port), deserializer=lambda key, value, flags: (value, flags))
    try:
        return client.get(hashlib.sha1(f"{topic}:{host}".encode()).hexdigest())
    finally:
        client.close()


class Evil:
    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_mc_driver_real_services(sg: World, memcached):
    lab = sg.lab
    overlays = {}
    for backend in ("dogpile.cache.pymemcache", "dogpile.cache.memcached"):
        path = lab.etc_dir / f"sg-mc-{backend.rsplit('.', 1)[1]}.conf"
        written = sg.run("servicegroup", {"path": str(path), "driver": "mc", "memcache_servers": [memcached.servers],
                                          "cache_backend": backend, "nova_python": str(lab.nova_python), **TIMING})
        assert written.changed and not written.failed, written.result
        overlays[backend] = path
    pymemcache_conf, memcached_conf = overlays["dogpile.cache.pymemcache"], overlays["dogpile.cache.memcached"]
    hosts = ["sg-cond", "sg-mc1", "sg-mc2"]
    started = time.monotonic()
    sg.start("nova-conductor", "sg-cond", extra=[pymemcache_conf])
    sg.start("nova-compute", "sg-mc1", extra=[pymemcache_conf])          # pymemcache: pickle protocol 5
    mc2 = sg.start("nova-compute", "sg-mc2", extra=[memcached_conf])     # python-memcached: pickle protocol 0

    reader = [sg.reader, pymemcache_conf]  # the whole [cache] block, as every reader needs
    up = sg.status(config_files=reader, hosts=hosts, wait_for={"hosts": hosts, "timeout": 120, "interval": 1})
    assert not up.failed, up.msg
    assert up["driver"] == "mc"                                       # read from [DEFAULT] servicegroup_driver
    for entry in up["services"]:
        assert entry["state"] == "up" and entry["last_seen"] and 0 <= entry["age_seconds"] <= 6, entry
    print(f"\nmc: all up {time.monotonic() - started:.1f} s after start")

    # What the two clients really stored: same flags, different pickle protocols.
    data1, flags1 = raw_item(memcached, "compute", "sg-mc1")
    data2, flags2 = raw_item(memcached, "compute", "sg-mc2")
    assert (flags1, flags2) == (1, 1)
    assert data1.startswith(b"\x80\x05") and data2.startswith(b"ccopy_reg\n_reconstructor")

    # The database heartbeat froze under mc: a db reader says down while the mc reader says up.
    db_view = sg.status(config_files=reader, driver="db", hosts=["sg-mc1"],
                        wait_for={"hosts": ["sg-mc1"], "state": "down", "timeout": 30, "interval": 1})
    assert not db_view.failed, db_view.msg
    assert sg.by_host(sg.status(config_files=reader, hosts=["sg-mc1"]))[("sg-mc1", "nova-compute")]["state"] == "up"

    # A crafted value under a service's key is refused and never runs.
    marker = lab.dir / "sg-pwned"
    sg.add_row("sg-evil")
    client = MemcacheClient(("127.0.0.1", memcached.port))
    try:
        client.set(hashlib.sha1(b"compute:sg-evil").hexdigest(), pickle.dumps(Evil(str(marker))), flags=1)
    finally:
        client.close()
    evil = sg.by_host(sg.status(config_files=reader, hosts=["sg-evil"]))[("sg-evil", "nova-compute")]
    assert evil["state"] == "unknown" and "refused to load posix.system" in evil["reason"]
    assert not marker.exists()

    # memcached servers that do not answer: unknown (with a warning), never a failure.
    dead = f"127.0.0.1:{lab.reserve_port()}"
    partly = sg.status(config_files=reader, hosts=hosts, memcache_servers=[memcached.servers, dead], backend_timeout=2)
    assert not partly.failed and all(entry["state"] == "up" for entry in partly["services"])
    assert any(dead in warning for warning in partly.get("warnings", []))
    gone = sg.status(config_files=reader, hosts=hosts, memcache_servers=[dead], backend_timeout=2)
    assert not gone.failed and {entry["state"] for entry in gone["services"]} == {"unknown"}
    assert gone["summary"][CELL]["unknown"] == 3 and any("did not answer" in warning for warning in gone["warnings"])

    # SIGKILL: the heartbeat item stays in memcached (no backend expiration) but reads as down after service_down_time.
    killed_at = time.monotonic()
    mc2.kill()
    down = sg.status(config_files=reader, hosts=hosts, wait_for={"hosts": ["sg-mc2"], "state": "down", "timeout": 60, "interval": 1})
    assert not down.failed, down.msg
    entry = sg.by_host(down)[("sg-mc2", "nova-compute")]
    assert entry["age_seconds"] > 6 and "last heartbeat" in entry["reason"]
    assert raw_item(memcached, "compute", "sg-mc2") is not None
    print(f"mc: killed compute reported down {time.monotonic() - killed_at:.1f} s after SIGKILL")

    sg.lab.stop_services([service for service in sg.services if service.is_running()], timeout=0)


def test_zk_legacy_layout(sg: World, zookeeper):
    lab = sg.lab
    prefix = "/nova-cells-test/servicegroups"
    for host in ("sg-zk1", "sg-zk2", "sg-zk3"):
        sg.add_row(host)
    hosts = ["sg-zk1", "sg-zk2", "sg-zk3"]
    # A Liberty-style config written by the servicegroup module; service_status takes driver and address from it.
    overlay = lab.etc_dir / "sg-zk.conf"
    written = sg.run("servicegroup", {"path": str(overlay), "driver": "zk", "nova_release": "liberty", "zookeeper_address": [zookeeper.hosts],
                                      "zookeeper_sg_prefix": prefix, **TIMING})
    assert written.changed, written.result

    writer = KazooClient(hosts=zookeeper.hosts, timeout=4.0)
    writer.start(timeout=15)
    try:
        writer.create(f"{prefix}/compute/sg-zk1", b"ZKMembers", makepath=True)
        writer.create(f"{prefix}/compute/sg-zk1/{os.getpid()}", b"0.42", ephemeral=True)   # Kilo/Liberty layout
        writer.create(f"{prefix}/compute/sg-zk3", b"", ephemeral=True)                       # Juno layout
        result = sg.status(config_files=[sg.reader, overlay], hosts=hosts)
        assert not result.failed and result["driver"] == "zk", result.result
        states = {entry["host"]: entry["state"] for entry in result["services"]}
        assert states == {"sg-zk1": "up", "sg-zk2": "down", "sg-zk3": "up"}
        entry = sg.by_host(result)[("sg-zk2", "nova-compute")]
        assert "no znode" in entry["reason"] and entry["last_seen"] is None

        released = sg.status(config_files=[sg.reader, overlay], hosts=hosts, nova_release="34")
        assert any("no zk ServiceGroup driver" in warning for warning in released["warnings"])
    finally:
        writer.stop()
        writer.close()
    # The session is closed: the ephemeral members are gone, the host node stays without children.
    down = sg.status(config_files=[sg.reader, overlay], hosts=hosts,
                     wait_for={"hosts": ["sg-zk1", "sg-zk3"], "state": "down", "timeout": 20, "interval": 0.5})
    assert not down.failed, down.msg
    assert "no live member" in sg.by_host(down)[("sg-zk1", "nova-compute")]["reason"]

    dead = f"127.0.0.1:{lab.reserve_port()}"
    unreachable = sg.status(config_files=[sg.reader, overlay], hosts=hosts, zookeeper_address=[dead], backend_timeout=2)
    assert not unreachable.failed and {entry["state"] for entry in unreachable["services"]} == {"unknown"}
    assert any("did not answer" in warning for warning in unreachable["warnings"])


def test_pre_cells_v2_deployment_reads_the_local_database(sg: World, zookeeper):
    """A Liberty-like nova.conf: no API database, services in [database]; one pseudo-cell named (database)."""
    conf = sg.lab.write_config("sg-liberty", {
        "DEFAULT": {"servicegroup_driver": "db", "report_interval": 2, "service_down_time": 6},
        "database": {"connection": sg.cell.database_connection},
    })
    sg.add_row("sg-local")
    result = sg.run("service_status", {"config_files": [str(conf)], "hosts": ["sg-local"], "nova_release": "liberty"})
    assert not result.failed, result.result
    assert [(entry["cell"], entry["host"], entry["state"]) for entry in result["services"]] == [("(database)", "sg-local", "up")]
    assert result["summary"]["(database)"]["up"] == 1
