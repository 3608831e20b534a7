"""The nova.cells.cells role (and the status playbook) against real nova-manage 34, MariaDB and RabbitMQ.

A two-cell deployment in template-URL mode on 127.0.0.1, in its own API database, cell databases
and vhosts: the nova_conf role renders the configs of an API-level host ("ctl"), of cell1's
conductor and of a compute; the cells role builds the schema and the mappings; the test starts the
cell conductor and the compute with the rendered files (there is no systemd here), and the cells
role waits for the compute and maps it. Then every step runs again (no change), in check mode (no
change, nothing written), and in check mode with a third cell (reported, not created).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from harness import Lab
from harness.deployment import SCHEMA_PLAYBOOK, deployment_inventory

REPO = Path(__file__).resolve().parents[2]
API_DB = "nova_api_roles"
CELL_DBS = {"cell0": "nova_roles_cell0", "cell1": "nova_roles_cell1", "cell2": "nova_roles_cell2", "cell3": "nova_roles_cell3"}
VHOSTS = {"api": "roles_api", "cell1": "roles_cell1", "cell2": "roles_cell2", "cell3": "roles_cell3"}
COMPUTE = "rolescmp1"
ENV = {"ANSIBLE_PIPELINING": "1"}

SCHEMA = SCHEMA_PLAYBOOK
HOSTS = """\
- name: Map the computes
  hosts: ctl
  gather_facts: false
  tasks:
    - name: Cells bootstrap, hosts step
      ansible.builtin.include_role:
        name: nova.cells.cells
        tasks_from: hosts
"""
BOTH = SCHEMA + HOSTS.replace("- name: Map the computes", "\n- name: Map the computes", 1)


@pytest.fixture(name="world", scope="module")
def world_fixture(lab: Lab, mariadb, rabbitmq, placement):  # pylint: disable=unused-argument
    for database in [API_DB, *CELL_DBS.values()]:
        lab.create_database(database)
    for vhost in VHOSTS.values():
        lab.create_vhost(vhost)
    root = lab.dir / "cells_role"
    root.mkdir(exist_ok=True)
    for host in ("ctl", "c1cond", COMPUTE):
        (lab.dir / "state" / host).mkdir(exist_ok=True)
        (lab.dir / "lock" / host).mkdir(exist_ok=True)
    return {"lab": lab, "root": root}


def inventory(world, cells=("cell1", "cell2")) -> dict:
    return deployment_inventory(world["lab"], world["root"], api_database=API_DB, cell0_database=CELL_DBS["cell0"], api_vhost=VHOSTS["api"],
                                cells={name: {"database_name": CELL_DBS[name], "rabbit_vhost": VHOSTS[name]} for name in cells},
                                cell_conductor="c1cond", compute=COMPUTE)


def mappings(lab: Lab) -> dict[str, dict]:
    rows = lab.query(API_DB, "SELECT uuid, name, transport_url, database_connection, disabled FROM cell_mappings")
    return {row["name"]: row for row in rows}


def assert_no_secret(lab: Lab, result) -> None:
    for secret in lab.secrets:
        assert not result.contains(secret), "a lab password leaked into the Ansible output"


@pytest.fixture(name="bootstrapped", scope="module")
def bootstrapped_fixture(world, run_playbook):
    lab = world["lab"]
    schema = run_playbook(SCHEMA, inventory=inventory(world), verbosity=3, timeout=900, extra_env=ENV)
    assert not schema.failed, schema.stdout[-5000:]
    root = world["root"]
    conductor = lab.start_service("nova-conductor", root / "c1cond" / "nova.conf", "conductor-rolesc1", cell="cell1", host="c1cond")
    compute = lab.start_service("nova-compute", root / COMPUTE / "nova.conf", f"compute-{COMPUTE}", cell="cell1", host=COMPUTE)
    hosts = run_playbook(HOSTS, inventory=inventory(world), verbosity=3, timeout=900, extra_env=ENV)
    assert not hosts.failed, hosts.stdout[-5000:] + "\n" + compute.log_tail()
    yield {"schema": schema, "hosts": hosts}
    lab.stop_services([compute, conductor])


def test_bootstrap_creates_template_mappings_and_maps_the_compute(world, bootstrapped):
    lab = world["lab"]
    port = lab.mariadb.port
    cells = mappings(lab)
    assert set(cells) == {"cell0", "cell1", "cell2"}
    assert cells["cell0"]["uuid"] == "00000000-0000-0000-0000-000000000000"
    assert cells["cell0"]["database_connection"] == f"mysql+pymysql://{{username}}:{{password}}@127.0.0.1:{port}/{CELL_DBS['cell0']}"
    assert cells["cell1"]["database_connection"] == f"mysql+pymysql://{{username}}:{{password}}@127.0.0.1:{port}/{CELL_DBS['cell1']}"
    assert cells["cell2"]["transport_url"] == f"rabbit://{{username}}:{{password}}@127.0.0.1:{lab.rabbitmq.port}/{VHOSTS['cell2']}"
    for name in ("cell0", "cell1", "cell2"):
        assert lab.query(CELL_DBS[name], "SELECT count(*) AS n FROM alembic_version")[0]["n"] == 1, name
    hosts = lab.query(API_DB, "SELECT h.host, c.name FROM host_mappings h JOIN cell_mappings c ON c.id = h.cell_id")
    assert hosts == [{"host": COMPUTE, "name": "cell1"}]
    result = bootstrapped["hosts"]
    assert result.task("nova.cells.cells : Map new compute hosts to their cell (nova-manage cell_v2 discover_hosts)", "ctl")["changed"]
    # The manage configs the cells role keeps hold credentials: root only.
    manage = world["root"] / "ctl" / "manage"
    assert sorted(p.name for p in manage.iterdir()) == ["api.conf", "cell-cell1.conf", "cell-cell2.conf"]
    assert all(p.stat().st_mode & 0o777 == 0o600 for p in manage.iterdir())


def test_bootstrap_output_hides_every_password(world, bootstrapped):
    assert_no_secret(world["lab"], bootstrapped["schema"])
    assert_no_secret(world["lab"], bootstrapped["hosts"])


def test_second_run_changes_nothing(world, bootstrapped, run_playbook):
    before = mappings(world["lab"])
    result = run_playbook(BOTH, inventory=inventory(world), timeout=900, extra_env=ENV)
    assert not result.failed, result.stdout[-4000:]
    assert {host: stats["changed"] for host, stats in result.stats.items() if stats["changed"]} == {}
    assert mappings(world["lab"]) == before


def test_check_mode_changes_nothing(world, bootstrapped, run_playbook):
    before = mappings(world["lab"])
    result = run_playbook(BOTH, inventory=inventory(world), check=True, timeout=900, extra_env=ENV)
    assert not result.failed, result.stdout[-4000:]
    assert {host: stats["changed"] for host, stats in result.stats.items() if stats["changed"]} == {}
    assert mappings(world["lab"]) == before


def test_check_mode_reports_a_new_cell_without_creating_it(world, bootstrapped, run_playbook):
    lab = world["lab"]
    before = mappings(lab)
    result = run_playbook(BOTH, inventory=inventory(world, cells=("cell1", "cell2", "cell3")), check=True, timeout=900, extra_env=ENV)
    assert not result.failed, result.stdout[-4000:]
    sync = result.task("nova.cells.cells : Sync the schemas of the API database, cell0 and each cell (nova-manage api_db sync, db sync)", "ctl")
    cell3_sync = next(entry for entry in sync["databases"] if "nova_roles_cell3" in entry["versions"])
    assert cell3_sync["changed"] and cell3_sync["versions"]["nova_roles_cell3"]["before"] is None
    assert [entry["changed"] for entry in sync["databases"]] == [False, False, False, False, True]   # api, cell0, cell1-3
    create = result.task("nova.cells.cells : Map cell0 and create or update each cell mapping "
                         "(nova-manage cell_v2 map_cell0 / create_cell / update_cell)", "ctl")
    changed = {item["name"]: item["changed"] for item in create["cells"]}
    assert changed == {"cell0": False, "cell1": False, "cell2": False, "cell3": True}
    assert mappings(lab) == before
    assert lab.query(CELL_DBS["cell3"], "SHOW TABLES") == []
    assert not (world["root"] / "ctl" / "manage" / "cell-cell3.conf").exists()


def test_status_playbook_prints_cells_and_liveness(world, bootstrapped, run_playbook):
    result = run_playbook(REPO / "playbooks" / "status.yml", inventory=inventory(world), timeout=600, extra_env=ENV)
    assert not result.failed, result.stdout[-4000:]
    lines = result.task("nova.cells.cells : Show the cells and their services", "ctl")["msg"]
    text = "\n".join(lines)
    assert "CELLS (3)" in text and "cell2" in text
    assert any(COMPUTE in line and "nova-compute" in line and " up " in line for line in lines), text
    assert any(line.strip().startswith("cell1: 2 up, 0 down") for line in lines), text
    assert_no_secret(world["lab"], result)
