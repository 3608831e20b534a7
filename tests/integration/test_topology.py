"""The topology picture of nova.cells.status against real Nova 34 services, MariaDB and RabbitMQ.

Its own API database (the real schema, copied) maps cell0, two cells and a cell whose database does
not exist: "topo1" (the lab's cell1 database: a conductor, a compute that runs and a compute that
was stopped, both mapped), "topo2" (its own synced database, disabled, a conductor and a compute
not mapped yet) and "topogone" (unreachable). A scheduler runs too (its [database] is cell1's, so
it is drawn in topo1). The status playbook runs with nova_cells_status_picture, Graphviz renders
the SVG, and the test reads it: every cell, host and state is in it, no password is, and a second
run does not rewrite it.
"""

from __future__ import annotations

import time
import uuid
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from harness import Lab
from harness.lab import NOVA_DB_PASSWORD, RABBIT_PASSWORD

REPO = Path(__file__).resolve().parents[2]
API_DB = "nova_api_topo"
CELL0_UUID = "00000000-0000-0000-0000-000000000000"
TIMING = {"report_interval": 2, "service_down_time": 6}
ENV = {"ANSIBLE_PIPELINING": "1"}
SVG_NS = "{http://www.w3.org/2000/svg}"


def inventory(lab: Lab, root: Path, picture: Path) -> dict:
    return {"all": {
        "vars": {
            "ansible_connection": "local",
            "nova_conf_dir": f"{root}/{{{{ inventory_hostname }}}}",
            "nova_manage": [str(lab.nova_bin / "nova-manage")],
            "nova_database_host": "127.0.0.1",
            "nova_database_port": lab.mariadb.port,
            "nova_database_password": NOVA_DB_PASSWORD,
            "nova_api_database_name": API_DB,
            "nova_cell0_database_name": "nova_cell0",
            "nova_rabbit_hosts": ["127.0.0.1"],
            "nova_rabbit_port": lab.rabbitmq.port,
            "nova_rabbit_password": RABBIT_PASSWORD,
            "nova_rabbit_vhost": "cell1",
            "nova_cells": {"topo1": {"database_name": lab.cells["cell1"].database, "rabbit_vhost": "cell1"},
                           "topo2": {"database_name": lab.cells["topo2"].database, "rabbit_vhost": "topo2"}},
            "nova_servicegroup_report_interval": TIMING["report_interval"],
            "nova_servicegroup_service_down_time": TIMING["service_down_time"],
            "nova_cells_status_picture": str(picture),
            "nova_cells_status_picture_title": "topology test lab",
        },
        "children": {"nova_api": {"hosts": {"ctl": {}}}},
    }}


def svg_text(path: Path) -> str:
    """Every text line of the SVG (node labels, cluster labels, heading), in document order."""
    tree = ET.parse(path)
    return "\n".join(element.text or "" for element in tree.iter(f"{SVG_NS}text"))


@pytest.fixture(name="topo", scope="module")
def topo_fixture(nova_lab: Lab, run_playbook):
    lab = nova_lab
    lab.setup_nova(("cell1", "topo2"))
    lab.create_database(API_DB)
    for row in lab.query("nova_api", "SHOW TABLES"):
        (table,) = row.values()
        lab.query(API_DB, f"CREATE TABLE IF NOT EXISTS `{table}` LIKE `nova_api`.`{table}`")
    for table in ("host_mappings", "cell_mappings"):
        lab.query(API_DB, f"DELETE FROM {table}")
    insert = ("INSERT INTO cell_mappings (created_at, uuid, name, transport_url, database_connection, disabled) "
              "VALUES (UTC_TIMESTAMP(), %s, %s, %s, %s, %s)")
    cell1, topo2 = lab.cells["cell1"], lab.cells["topo2"]
    lab.query(API_DB, insert, (CELL0_UUID, "cell0", "none:///", lab.db_url("nova_cell0"), 0))
    lab.query(API_DB, insert, (str(uuid.uuid4()), "topo1", cell1.transport_url, cell1.database_connection, 0))
    lab.query(API_DB, insert, (str(uuid.uuid4()), "topo2", topo2.transport_url, topo2.database_connection, 1))
    lab.query(API_DB, insert, (str(uuid.uuid4()), "topogone", topo2.transport_url, lab.db_url("nova_topo_missing"), 0))

    services = [
        lab.start_scheduler("cell1", "topo-sched", **TIMING),
        lab.start_conductor("cell1", "topo1-cond", **TIMING),
        lab.start_compute("cell1", "topo1-cmp-up", **TIMING),
        lab.start_compute("cell1", "topo1-cmp-down", **TIMING),
        lab.start_conductor("topo2", "topo2-cond", **TIMING),
        lab.start_compute("topo2", "topo2-cmp", **TIMING),
    ]
    try:
        for cell, binary, host in (("cell1", "nova-compute", "topo1-cmp-up"), ("cell1", "nova-compute", "topo1-cmp-down"),
                                   ("topo2", "nova-compute", "topo2-cmp"), ("cell1", "nova-conductor", "topo1-cond")):
            lab.wait_for_heartbeat(cell, binary, host, after=0, timeout=120)
        # Both topo1 computes are mapped; topo2's is left for discover_hosts.
        lab.query(API_DB, "INSERT INTO host_mappings (created_at, cell_id, host) SELECT UTC_TIMESTAMP(), id, %s "
                          "FROM cell_mappings WHERE name = 'topo1'", ("topo1-cmp-up",))
        lab.query(API_DB, "INSERT INTO host_mappings (created_at, cell_id, host) SELECT UTC_TIMESTAMP(), id, %s "
                          "FROM cell_mappings WHERE name = 'topo1'", ("topo1-cmp-down",))
        lab.stop_services([services[3]])
        # Down once its last heartbeat is older than service_down_time.
        lab.wait_until(
            lambda: lab.query(cell1.database, "SELECT TIMESTAMPDIFF(SECOND, COALESCE(last_seen_up, updated_at), UTC_TIMESTAMP()) > %s AS old "
                                              "FROM services WHERE host = 'topo1-cmp-down'", (TIMING["service_down_time"] + 1,))[0]["old"],
            timeout=60, what="the stopped compute's heartbeat to age past service_down_time")
        root = lab.dir / "topology"
        root.mkdir(exist_ok=True)
        picture = root / "lab.svg"
        first = run_playbook(REPO / "playbooks" / "status.yml", inventory=inventory(lab, root, picture), timeout=600, extra_env=ENV)
        written = picture.read_bytes() if picture.exists() else b""
        mtime = picture.stat().st_mtime_ns if picture.exists() else 0
        time.sleep(0.01)
        second = run_playbook(REPO / "playbooks" / "status.yml", inventory=inventory(lab, root, picture), timeout=600, extra_env=ENV)
        yield {"lab": lab, "picture": picture, "first": first, "second": second, "written": written, "mtime": mtime}
    finally:
        lab.stop_services(services, timeout=0)


def test_status_writes_an_svg_with_every_cell_host_and_state(topo):
    first = topo["first"]
    assert not first.failed, first.stdout[-4000:]
    assert first.task("nova.cells.cells : Write the picture to %s" % topo["picture"], "ctl")["changed"]
    text = svg_text(topo["picture"])
    status = first.task("nova.cells.cells : Read the liveness of every service from the ServiceGroup backend", "ctl")
    services = {(s["host"], s["binary"]): s["state"] for s in status["services"]}
    lines = text.splitlines()
    # Every service the backend reported is drawn with its state (the lab's cell1 database may hold
    # rows of other tests: those are in the picture too).
    for (host, binary), state in services.items():
        index = lines.index(host)
        assert lines[index + 1:index + 3] == [binary, state.upper()], (host, binary, state, lines[index:index + 4])
    assert services[("topo1-cmp-up", "nova-compute")] == "up"
    assert services[("topo1-cmp-down", "nova-compute")] == "down"
    assert services[("topo-sched", "nova-scheduler")] == "up"
    for host, state in (("topo1-cmp-up", "UP"), ("topo1-cmp-down", "DOWN"), ("topo1-cond", "UP"), ("topo-sched", "UP"),
                        ("topo2-cond", "UP"), ("topo2-cmp", "UP")):
        index = lines.index(host)
        assert state in lines[index + 1:index + 3], (host, lines[index:index + 4])
    for cell in ("API level: cell0", "cell topo1", "cell topo2", "cell topogone"):
        assert cell in lines, cell
    assert "topology test lab" in lines
    # topo2: disabled, its compute not mapped; topogone: its database does not answer.
    assert lines[lines.index("cell topo2") + 2] == "DISABLED"
    assert lines[lines.index("cell topogone") + 2] == "DATABASE UNREACHABLE"
    index = lines.index("topo2-cmp")
    assert lines[index:index + 4] == ["topo2-cmp", "nova-compute", "UP", "NOT MAPPED"]
    assert lines.count("topo2-cmp") == 1
    # Databases and queues are drawn by host and name, without credentials.
    assert f"mysql+pymysql://nova@127.0.0.1:{topo['lab'].mariadb.port}/nova_cell1" in text
    assert f"rabbit://nova@127.0.0.1:{topo['lab'].rabbitmq.port}/topo2" in text


def test_picture_and_output_hold_no_password(topo):
    svg = topo["picture"].read_text(encoding="utf-8")
    for secret in topo["lab"].secrets:
        assert secret not in svg
        assert not topo["first"].contains(secret) and not topo["second"].contains(secret)
    assert "****" not in svg


def test_second_run_on_an_unchanged_deployment_rewrites_nothing(topo):
    second = topo["second"]
    assert not second.failed, second.stdout[-4000:]
    assert not second.task("nova.cells.cells : Write the picture to %s" % topo["picture"], "ctl")["changed"]
    assert topo["picture"].read_bytes() == topo["written"]
    assert topo["picture"].stat().st_mtime_ns == topo["mtime"]
