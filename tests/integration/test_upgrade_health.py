"""The nova.cells.upgrade and nova.cells.health playbooks against real nova-manage / nova-status 34.

A deployment built by the roles (template-URL mode, cell0 and cell1, own databases and vhosts),
whose cell1 database is then put back to an older schema revision (``nova-manage db sync
--local_cell 1b91788ec3a6``, the revision before 2023.2 added ``instances.compute_id``) with rows
of that release: a compute node, its host mapping and instances without ``compute_id``. The
upgrade playbook must bring cell1 to the head revision, fill ``compute_id`` by the online data
migrations and pass nova-status; a second run changes nothing, and check mode writes nothing.
There is no systemd here, so the restart step is off (``nova_conf_restart_services: false``).
"""

from __future__ import annotations

import re
import time
import uuid as uuidlib
from pathlib import Path

import pytest
from harness import Lab
from harness.deployment import SCHEMA_PLAYBOOK, deployment_inventory

REPO = Path(__file__).resolve().parents[2]
API_DB = "nova_api_upg"
CELL_DBS = {"cell0": "nova_upg_cell0", "cell1": "nova_upg_cell1"}
VHOSTS = {"api": "upg_api", "cell1": "upg_cell1"}
OLD_REVISION = "1b91788ec3a6"
HEAD_REVISION = "ab450ba04102"
PROJECT = "6f70656e-7374-6163-6b20-70726f6a6563"
USER = "75736572-0000-4000-8000-000000000001"
ENV = {"ANSIBLE_PIPELINING": "1"}
# The lab has no Keystone, so no service user token is configured ([service_user] send_service_user_token).
NO_KEYSTONE = ["Service User Token Configuration"]
# The instances inserted by SQL carry no hw_machine_type (a libvirt setting; the lab's computes are fake).
LAB_STATUS_IGNORE = [*NO_KEYSTONE, "hw_machine_type unset"]

CONFIGURE = SCHEMA_PLAYBOOK


def inventory(lab: Lab, root: Path, **extra) -> dict:
    extra.setdefault("nova_upgrade_status_ignore", NO_KEYSTONE)
    return deployment_inventory(lab, root, api_database=API_DB, cell0_database=CELL_DBS["cell0"], api_vhost=VHOSTS["api"],
                                cells={"cell1": {"database_name": CELL_DBS["cell1"], "rabbit_vhost": VHOSTS["cell1"]}},
                                cell_conductor="upgc1cond", compute="upgcmp1", **extra)


def revision(lab: Lab, database: str) -> str:
    return lab.query(database, "SELECT version_num FROM alembic_version")[0]["version_num"]


def checksums(lab: Lab) -> dict:
    sums = {}
    for database in [API_DB, *CELL_DBS.values()]:
        for row in lab.query(database, "SHOW TABLES"):
            table = next(iter(row.values()))
            sums[f"{database}.{table}"] = lab.query(database, f"CHECKSUM TABLE `{table}`")[0]["Checksum"]
    return sums


def failures(result) -> str:
    """The failed tasks of a playbook run and their messages (for assertion messages)."""
    found = []
    for play in result.data.get("plays", []):
        for task in play.get("tasks", []):
            for host, outcome in task.get("hosts", {}).items():
                if outcome.get("failed") and not outcome.get("ignore_errors"):
                    found.append(f"{host}: {task['task']['name']}: {outcome.get('msg')}")
    return "\n".join(found) or result.stdout[-3000:]


def changed_hosts(result) -> dict:
    return {host: stats["changed"] for host, stats in result.stats.items() if stats["changed"]}


def assert_no_secret(lab: Lab, result) -> None:
    for secret in lab.secrets:
        assert not result.contains(secret), "a lab password leaked into the Ansible output"


@pytest.fixture(name="world", scope="module")
def world_fixture(lab: Lab, mariadb, rabbitmq, placement, run_playbook):  # pylint: disable=unused-argument
    for database in [API_DB, *CELL_DBS.values()]:
        lab.create_database(database)
    for vhost in VHOSTS.values():
        lab.create_vhost(vhost)
    root = lab.dir / "upgrade"
    root.mkdir(exist_ok=True)
    for host in ("ctl", "upgc1cond", "upgcmp1"):
        (lab.dir / "state" / host).mkdir(exist_ok=True)
        (lab.dir / "lock" / host).mkdir(exist_ok=True)
    deployed = run_playbook(CONFIGURE, inventory=inventory(lab, root), timeout=900, extra_env=ENV)
    assert not deployed.failed, deployed.stdout[-5000:]

    # cell1 back to the schema of an older release, with rows of that release.
    manage = root / "ctl" / "manage" / "cell-cell1.conf"
    lab.drop_database(CELL_DBS["cell1"])
    lab.create_database(CELL_DBS["cell1"])
    lab.nova_manage("db", "sync", "--local_cell", OLD_REVISION, config_files=[manage]).check()
    assert revision(lab, CELL_DBS["cell1"]) == OLD_REVISION
    columns = {row["COLUMN_NAME"] for row in lab.query(CELL_DBS["cell1"], "SELECT COLUMN_NAME FROM information_schema.columns "
                                                       "WHERE table_schema = DATABASE() AND table_name = 'instances'")}
    assert "compute_id" not in columns
    cell1_id = lab.query(API_DB, "SELECT id FROM cell_mappings WHERE name = 'cell1'")[0]["id"]
    lab.query(CELL_DBS["cell1"], "INSERT INTO compute_nodes (created_at, deleted, uuid, host, hypervisor_hostname, vcpus, memory_mb, "
              "local_gb, vcpus_used, memory_mb_used, local_gb_used, hypervisor_type, hypervisor_version, cpu_info, mapped) "
              "VALUES (NOW(), 0, %s, 'upgcmp1', 'upgcmp1', 4, 4096, 40, 0, 0, 0, 'fake', 1000, '{}', 1)", (str(uuidlib.uuid4()),))
    lab.query(API_DB, "INSERT INTO host_mappings (created_at, cell_id, host) VALUES (NOW(), %s, 'upgcmp1')", (cell1_id,))
    uuids = [str(uuidlib.uuid4()) for _index in range(5)]
    for uuid in uuids:
        lab.query(CELL_DBS["cell1"], "INSERT INTO instances (created_at, uuid, project_id, user_id, host, node, vm_state, deleted, "
                  "hidden) VALUES (NOW(), %s, %s, %s, 'upgcmp1', 'upgcmp1', 'active', 0, 0)", (uuid, PROJECT, USER))
        lab.query(API_DB, "INSERT INTO instance_mappings (created_at, instance_uuid, cell_id, project_id, user_id, "
                  "queued_for_delete) VALUES (NOW(), %s, %s, %s, %s, 0)", (uuid, cell1_id, PROJECT, USER))
    return {"lab": lab, "root": root, "uuids": uuids}


@pytest.fixture(name="upgraded", scope="module")
def upgraded_fixture(world, run_playbook):
    lab = world["lab"]
    before = checksums(lab)
    started = time.monotonic()
    check = run_playbook(REPO / "playbooks" / "upgrade.yml", inventory=inventory(lab, world["root"]), check=True,
                         timeout=900, extra_env=ENV)
    check_seconds = time.monotonic() - started
    after_check = checksums(lab)
    started = time.monotonic()
    first = run_playbook(REPO / "playbooks" / "upgrade.yml", inventory=inventory(lab, world["root"]), verbosity=3,
                         timeout=900, extra_env=ENV)
    first_seconds = time.monotonic() - started
    print(f"\nupgrade playbook: check mode {check_seconds:.1f} s, real run {first_seconds:.1f} s")
    return {"check": check, "first": first, "before": before, "after_check": after_check}


def test_upgrade_check_mode_reports_the_sync_and_writes_nothing(world, upgraded):
    check = upgraded["check"]
    assert not check.failed, check.stdout[-5000:]
    assert upgraded["after_check"] == upgraded["before"], "check mode wrote to a database"
    sync = check.task("nova.cells.cells : Sync the schemas of the API database, cell0 and each cell (nova-manage api_db sync, db sync)", "ctl")
    versions = sync["versions"]
    assert versions[CELL_DBS["cell1"]] == {"before": OLD_REVISION, "after": HEAD_REVISION}
    migrations = check.task("Run the online data migrations of every cell to completion (nova-manage db online_data_migrations)", "ctl")
    assert not migrations["changed"] and len(migrations["commands"]) == 2


def test_upgrade_syncs_the_old_cell_migrates_its_rows_and_passes_the_status_check(world, upgraded):
    lab, first = world["lab"], upgraded["first"]
    assert not first.failed, first.stdout[-6000:]
    assert revision(lab, CELL_DBS["cell1"]) == HEAD_REVISION
    rows = lab.query(CELL_DBS["cell1"], "SELECT compute_id FROM instances WHERE uuid IN %s", (world["uuids"],))
    node = lab.query(CELL_DBS["cell1"], "SELECT id FROM compute_nodes WHERE host = 'upgcmp1'")[0]["id"]
    assert [row["compute_id"] for row in rows] == [node] * 5
    migrations = first.task("Run the online data migrations of every cell to completion (nova-manage db online_data_migrations)", "ctl")
    assert migrations["changed"] and migrations["cells"]["cell1"]["migrations"]["populate_instance_compute_id"]["done"] == 5
    status = first.task("Check the deployment (nova-status upgrade check)", "ctl")
    results = {check["check"]: check["result"] for check in status["checks"]}
    assert results["Cells v2"] == "success", status["checks"]
    print("\nnova-status after the upgrade: " + ", ".join(f"{name}={result}" for name, result in results.items()))
    # Order of Nova's guide: the sync comes before the migrations, the status check last.
    names = [name for name, _result in first.results("ctl")]
    sync_at = names.index("nova.cells.cells : Sync the schemas of the API database, cell0 and each cell (nova-manage api_db sync, db sync)")
    assert sync_at < names.index("Run the online data migrations of every cell to completion (nova-manage db online_data_migrations)")
    assert names[-2:] == ["Check the deployment (nova-status upgrade check)", "Show the checks"] or \
        names.index("Check the deployment (nova-status upgrade check)") > sync_at
    assert_no_secret(lab, first)


def test_upgrade_second_run_and_check_mode_change_nothing(world, upgraded, run_playbook):
    lab = world["lab"]
    before = checksums(lab)
    started = time.monotonic()
    second = run_playbook(REPO / "playbooks" / "upgrade.yml", inventory=inventory(lab, world["root"]), timeout=900, extra_env=ENV)
    print(f"\nupgrade playbook, second run: {time.monotonic() - started:.1f} s")
    assert not second.failed, second.stdout[-4000:]
    assert changed_hosts(second) == {}
    check = run_playbook(REPO / "playbooks" / "upgrade.yml", inventory=inventory(lab, world["root"]), check=True, timeout=900,
                         extra_env=ENV)
    assert not check.failed and changed_hosts(check) == {}, check.stdout[-4000:]
    assert checksums(lab) == before


def test_upgrade_fails_on_a_failing_status_check(world, upgraded, run_playbook):
    lab = world["lab"]
    result = run_playbook(REPO / "playbooks" / "upgrade.yml",
                          inventory=inventory(lab, world["root"], nova_upgrade_status_ignore=[]),
                          extravars={"nova_upgrade_steps": ["check"]}, timeout=900, extra_env=ENV)
    assert result.failed
    status = result.task("Check the deployment (nova-status upgrade check)", "ctl")
    assert status["failed"] and status["problems"], status
    assert all(name in status["msg"] for name in status["problems"])


# -- nova.cells.health ------------------------------------------------------------------------------------------------
def health(run_playbook, world, **extra):
    started = time.monotonic()
    result = run_playbook(REPO / "playbooks" / "health.yml",
                          inventory=inventory(world["lab"], world["root"], nova_health_status_ignore=LAB_STATUS_IGNORE, **extra),
                          timeout=900, extra_env=ENV)
    return result, time.monotonic() - started


def test_health_of_the_upgraded_deployment_is_good(world, upgraded, run_playbook):
    result, seconds = health(run_playbook, world)
    print(f"\nhealth playbook (healthy): {seconds:.1f} s, rc {result.rc}")
    lines = result.task("Show the health of the deployment", "ctl")["msg"]
    print("\n".join(lines))
    assert result.rc == 0, "\n".join(lines) + result.stdout[-3000:]
    assert lines[-1] == "PROBLEMS: 0"
    reach = result.task("Log in to every cell's database and message queue", "ctl")
    assert [(c["name"], c["database"]["reachable"], c["queue"]["reachable"]) for c in reach["cells"]] == [
        ("cell0", True, None), ("cell1", True, True)]
    assert changed_hosts(result) == {}
    assert_no_secret(world["lab"], result)


def test_health_names_each_problem_and_exits_non_zero(world, upgraded, run_playbook):
    lab, root = world["lab"], world["root"]
    cell1_id = lab.query(API_DB, "SELECT id FROM cell_mappings WHERE name = 'cell1'")[0]["id"]
    orphan = str(uuidlib.uuid4())
    lab.query(CELL_DBS["cell1"], "INSERT INTO instances (created_at, uuid, project_id, user_id, host, node, vm_state, deleted, "
              "hidden) VALUES (NOW(), %s, %s, %s, 'upgcmp1', 'upgcmp1', 'active', 0, 0)", (orphan, PROJECT, USER))
    lab.query(API_DB, "INSERT INTO host_mappings (created_at, cell_id, host) VALUES (NOW(), %s, 'upgcmp')", (cell1_id,))
    conf = root / "upgcmp1" / "nova.conf"
    original = conf.read_text()
    conf.write_text(original.replace("report_interval = 10", "report_interval = 20", 1))
    try:
        result, seconds = health(run_playbook, world)
    finally:
        conf.write_text(original)
        lab.query(API_DB, "DELETE FROM host_mappings WHERE host = 'upgcmp'")
        lab.query(API_DB, "INSERT INTO instance_mappings (created_at, instance_uuid, cell_id, project_id, user_id, queued_for_delete) "
                  "VALUES (NOW(), %s, %s, %s, %s, 0)", (orphan, cell1_id, PROJECT, USER))
    print(f"\nhealth playbook (3 problems): {seconds:.1f} s, rc {result.rc}")
    assert result.rc == 2
    failed = result.task("Fail when there is a problem", "ctl")
    assert failed["msg"].startswith("3 problem(s): "), failed["msg"]
    assert "cell cell1: 1 instance(s) without an instance mapping" in failed["msg"]
    # exact names: 'upgcmp' is not taken for 'upgcmp1'
    assert "cell cell1: host mapping(s) upgcmp point at no compute of the cell" in failed["msg"]
    assert "ServiceGroup: report_interval differs between nodes: 10 on ctl, upgc1cond; 20 on upgcmp1" in failed["msg"]
    lines = result.task("Show the health of the deployment", "ctl")["msg"]
    print("\n".join(lines))


# -- nova.cells.orphans (day-2 procedure 7) ------------------------------------------------------------------------------
def test_orphans_are_found_mapped_once_and_stale_mappings_only_reported(world, upgraded, run_playbook):
    lab, root = world["lab"], world["root"]
    cell1_id = lab.query(API_DB, "SELECT id FROM cell_mappings WHERE name = 'cell1'")[0]["id"]
    orphans = [str(uuidlib.uuid4()) for _index in range(3)]
    for uuid in orphans:
        lab.query(CELL_DBS["cell1"], "INSERT INTO instances (created_at, uuid, project_id, user_id, host, node, vm_state, deleted, "
                  "hidden) VALUES (NOW(), %s, %s, %s, 'upgcmp1', 'upgcmp1', 'active', 0, 0)", (uuid, PROJECT, USER))
    lab.query(CELL_DBS["cell1"], "INSERT INTO compute_nodes (created_at, deleted, uuid, host, hypervisor_hostname, vcpus, memory_mb, "
              "local_gb, vcpus_used, memory_mb_used, local_gb_used, hypervisor_type, hypervisor_version, cpu_info, mapped) "
              "VALUES (NOW(), 0, %s, 'upgcmp2', 'upgcmp2', 4, 4096, 40, 0, 0, 0, 'fake', 1000, '{}', 0)", (str(uuidlib.uuid4()),))
    lab.query(API_DB, "INSERT INTO host_mappings (created_at, cell_id, host) VALUES (NOW(), %s, 'upgcmp')", (cell1_id,))
    playbook = REPO / "playbooks" / "orphans.yml"

    before = checksums(lab)
    check = run_playbook(playbook, inventory=inventory(lab, root), check=True, diff=True, timeout=900, extra_env=ENV)
    assert not check.failed, check.stdout[-4000:]
    assert check.task("Map the instances of each cell that has unmapped ones (nova-manage cell_v2 map_instances)", "ctl")["changed"]
    assert check.task("Map the computes of each cell that has unmapped ones (nova-manage cell_v2 discover_hosts)", "ctl")["changed"]
    assert checksums(lab) == before, "check mode wrote"

    started = time.monotonic()
    first = run_playbook(playbook, inventory=inventory(lab, root), timeout=900, extra_env=ENV)
    print(f"\norphans playbook: {time.monotonic() - started:.1f} s")
    assert not first.failed, first.stdout[-4000:]
    found = first.task("Find unmapped instances and computes and stale host mappings", "ctl")["cells"]
    assert [(c["name"], c["unmapped_instances"], c["unmapped_computes"], c["stale_host_mappings"]) for c in found] == [
        ("cell1", 3, ["upgcmp2"], ["upgcmp"])]
    mapped = lab.query(API_DB, "SELECT instance_uuid FROM instance_mappings WHERE instance_uuid IN %s AND cell_id = %s",
                       (orphans, cell1_id))
    assert len(mapped) == 3
    hosts = {row["host"] for row in lab.query(API_DB, "SELECT host FROM host_mappings")}
    assert {"upgcmp1", "upgcmp2", "upgcmp"} <= hosts  # the stale one is only reported

    second = run_playbook(playbook, inventory=inventory(lab, root), timeout=900, extra_env=ENV)
    assert not second.failed and changed_hosts(second) == {}, second.stdout[-4000:]

    removed = run_playbook(playbook, inventory=inventory(lab, root, nova_orphans_remove_stale=True), timeout=900, extra_env=ENV)
    assert not removed.failed, removed.stdout[-4000:]
    hosts = {row["host"] for row in lab.query(API_DB, "SELECT host FROM host_mappings")}
    assert "upgcmp" not in hosts and {"upgcmp1", "upgcmp2"} <= hosts  # exact name: upgcmp1 stays
    assert_no_secret(lab, first)


# -- nova.cells.remove_cell (day-2 procedure 3) ------------------------------------------------------------------------
CELL2_DB, CELL2_VHOST = "nova_upg_cell2", "upg_cell2"


def other_cells_checksums(lab: Lab, cell2_id: int) -> dict:
    """Everything of cell0 and cell1: their databases and their rows in the API database."""
    sums = {name: value for name, value in checksums(lab).items() if not name.startswith(f"{CELL2_DB}.")}
    for table in ("cell_mappings", "host_mappings", "instance_mappings"):
        column = "id" if table == "cell_mappings" else "cell_id"
        sums[f"{API_DB}.{table} (other cells)"] = lab.query(
            API_DB, f"SELECT * FROM {table} WHERE {column} IS NULL OR {column} != %s ORDER BY id", (cell2_id,))
        sums.pop(f"{API_DB}.{table}", None)
    return sums


def rabbitmqctl(lab: Lab) -> list[str]:
    env = lab.rabbitmq.env
    keep = ("HOME", "LC_ALL", "ERL_EPMD_ADDRESS", "RABBITMQ_NODENAME")
    return ["env", *[f"{key}={env[key]}" for key in keep], "/usr/lib/rabbitmq/bin/rabbitmqctl", "-n", lab.rabbitmq.node]


def test_remove_cell_refuses_with_instances_then_removes_an_empty_cell_and_nothing_else(world, upgraded, run_playbook):
    lab, root = world["lab"], world["root"]
    port, rport = lab.mariadb.port, lab.rabbitmq.port
    clone = CELL_DBS["cell1"]
    lab.create_database(CELL2_DB)
    for row in lab.query(clone, "SHOW TABLES"):
        table = next(iter(row.values()))
        lab.query(CELL2_DB, f"CREATE TABLE IF NOT EXISTS `{table}` LIKE `{clone}`.`{table}`")
    lab.create_vhost(CELL2_VHOST)
    lab.query(API_DB, "INSERT INTO cell_mappings (created_at, uuid, name, transport_url, database_connection, disabled) "
              "VALUES (NOW(), %s, 'cell2', %s, %s, 0)",
              (str(uuidlib.uuid4()), f"rabbit://{{username}}:{{password}}@127.0.0.1:{rport}/{CELL2_VHOST}",
               f"mysql+pymysql://{{username}}:{{password}}@127.0.0.1:{port}/{CELL2_DB}"))
    cell2_id = lab.query(API_DB, "SELECT id FROM cell_mappings WHERE name = 'cell2'")[0]["id"]
    lab.query(API_DB, "INSERT INTO host_mappings (created_at, cell_id, host) VALUES (NOW(), %s, 'upgc2cmp')", (cell2_id,))
    gone = str(uuidlib.uuid4())  # a deleted instance: only its mapping remains in the API database
    lab.query(CELL2_DB, "INSERT INTO instances (created_at, uuid, project_id, user_id, host, node, vm_state, deleted, deleted_at, "
              "hidden) VALUES (NOW(), %s, %s, %s, 'upgc2cmp', 'upgc2cmp', 'deleted', 1, NOW(), 0)", (gone, PROJECT, USER))
    lab.query(API_DB, "INSERT INTO instance_mappings (created_at, instance_uuid, cell_id, project_id, user_id, queued_for_delete) "
              "VALUES (NOW(), %s, %s, %s, %s, 1)", (gone, cell2_id, PROJECT, USER))
    cells = {"cell1": {"database_name": CELL_DBS["cell1"], "rabbit_vhost": VHOSTS["cell1"]},
             "cell2": {"database_name": CELL2_DB, "rabbit_vhost": CELL2_VHOST}}
    playbook = REPO / "playbooks" / "remove_cell.yml"

    def run(cell, check=False, **extra):
        return run_playbook(playbook, inventory=inventory(lab, root, nova_cells=cells, nova_rabbitmqctl=rabbitmqctl(lab), **extra),
                            extravars={"nova_cell_to_remove": cell}, check=check, diff=check, timeout=900, extra_env=ENV)

    before = checksums(lab)
    refused = run("cell1")
    assert refused.failed
    msg = refused.task("Refuse while the cell has live instances", "ctl")["msg"]
    assert re.search(r"Cell cell1 still has \d+ live instance\(s\): ", msg) and world["uuids"][0] in msg and "(upgcmp1)" in msg, msg
    assert "Nothing was changed" in msg
    assert checksums(lab) == before

    others = other_cells_checksums(lab, cell2_id)
    check = run("cell2", check=True, nova_remove_cell_drop_data=True)
    assert not check.failed, failures(check)
    assert check.task("Delete the cell mapping (nova-manage cell_v2 delete_cell)", "ctl")["changed"]
    assert checksums(lab) == before, "check mode wrote"

    started = time.monotonic()
    removed = run("cell2", nova_remove_cell_drop_data=True)
    print(f"\nremove_cell playbook: {time.monotonic() - started:.1f} s")
    assert not removed.failed, failures(removed)
    assert lab.query(API_DB, "SELECT * FROM cell_mappings WHERE name = 'cell2'") == []
    assert lab.query(API_DB, "SELECT * FROM host_mappings WHERE cell_id = %s", (cell2_id,)) == []
    assert lab.query(API_DB, "SELECT * FROM instance_mappings WHERE cell_id = %s", (cell2_id,)) == []
    assert lab.query("information_schema", "SELECT schema_name FROM schemata WHERE schema_name = %s", (CELL2_DB,)) == []
    assert CELL2_VHOST not in lab.rabbitmq.ctl("list_vhosts", "--silent").stdout.split()
    assert other_cells_checksums(lab, cell2_id) == others, "another cell changed"
    assert_no_secret(lab, removed)

    again = run("cell2", nova_remove_cell_drop_data=True)
    assert not again.failed and changed_hosts(again) == {}, failures(again)
