"""Upgrade and housekeeping modules against real nova-manage / nova-status 34 and MariaDB.

online_data_migrations, status_check, archive_deleted_rows and purge, each run twice (second run
changed=false) and in check mode (nothing written), on a world of its own: an API database and two
cell databases (cell0, cell1) cloned from the schema real ``nova-manage db sync`` created, with
rows shaped like Nova's (instances, compute nodes, instance mappings) inserted by SQL.
"""

from __future__ import annotations

import uuid as uuidlib

import pytest
from harness import Lab

CELL0_UUID = "00000000-0000-0000-0000-000000000000"
API_DB = "nova_api_hk"
CELL_DBS = {"cell0": "nova_hk_cell0", "cell1": "nova_hk_cell1"}
PROJECT = "6f70656e-7374-6163-6b20-70726f6a6563"
USER = "75736572-0000-4000-8000-000000000001"


def clone_schema(lab: Lab, source: str, target: str) -> None:
    """``target`` gets every table of ``source`` (empty) and its alembic revision."""
    lab.create_database(target)
    tables = [next(iter(row.values())) for row in lab.query(source, "SHOW TABLES")]
    for table in tables:
        lab.query(target, f"CREATE TABLE IF NOT EXISTS `{table}` LIKE `{source}`.`{table}`")
    lab.query(target, "DELETE FROM alembic_version")
    lab.query(target, f"INSERT INTO alembic_version SELECT * FROM `{source}`.alembic_version")


class World:
    def __init__(self, lab: Lab, run_module):
        self.lab = lab
        self._run_module = run_module
        clone_schema(lab, "nova_api", API_DB)
        for name, database in CELL_DBS.items():
            clone_schema(lab, lab.cells["cell1"].database, database)
            lab.query(API_DB, "INSERT INTO cell_mappings (created_at, uuid, name, transport_url, database_connection, disabled) "
                      "VALUES (NOW(), %s, %s, %s, %s, 0)",
                      (CELL0_UUID if name == "cell0" else str(uuidlib.uuid4()), name,
                       "none:///" if name == "cell0" else lab.transport_url("cell1"), lab.db_url(database)))
        self.cell_ids = {row["name"]: row["id"] for row in lab.query(API_DB, "SELECT id, name FROM cell_mappings")}
        self.conf = lab.write_config("hk-api", {
            "DEFAULT": {"transport_url": lab.transport_url("cell1")},
            "api_database": {"connection": lab.db_url(API_DB)},
            "database": {"connection": lab.db_url(CELL_DBS["cell1"])},
            "placement": {"auth_type": "admin_token", "endpoint": lab.placement.url, "token": "admin"},
        })

    def run(self, module, check=False, **kwargs):
        args = {"config_files": [str(self.conf)], "nova_manage": self.lab.nova_manage_command}
        args.update(kwargs)
        return self._run_module(module, args, check=check)

    def compute_node(self, cell: str, host: str) -> int:
        self.lab.query(CELL_DBS[cell], "INSERT INTO compute_nodes (created_at, deleted, uuid, host, hypervisor_hostname, vcpus, memory_mb, "
                       "local_gb, vcpus_used, memory_mb_used, local_gb_used, hypervisor_type, hypervisor_version, cpu_info, "
                       "mapped) VALUES (NOW(), 0, %s, %s, %s, 4, 4096, 40, 0, 0, 0, 'fake', 1000, '{}', 1)",
                       (str(uuidlib.uuid4()), host, host))
        self.lab.query(API_DB, "INSERT INTO host_mappings (created_at, cell_id, host) VALUES (NOW(), %s, %s)",
                       (self.cell_ids[cell], host))
        return self.lab.query(CELL_DBS[cell], "SELECT id FROM compute_nodes WHERE host = %s", (host,))[0]["id"]

    def instance(self, cell: str, host: str | None = None, *, deleted_days_ago: int | None = None, mapping: bool = True,
                 mapping_user: bool = True) -> str:
        """An instance row (with its instance_extra and, optionally, its instance mapping); deleted if asked."""
        uuid = str(uuidlib.uuid4())
        database = CELL_DBS[cell]
        self.lab.query(database, "INSERT INTO instances (created_at, uuid, project_id, user_id, host, node, vm_state, deleted, "
                       "hidden) VALUES (NOW(), %s, %s, %s, %s, %s, 'active', 0, 0)", (uuid, PROJECT, USER, host, host))
        self.lab.query(database, "INSERT INTO instance_extra (created_at, instance_uuid, deleted) VALUES (NOW(), %s, 0)", (uuid,))
        if deleted_days_ago is not None:
            self.lab.query(database, "UPDATE instances SET deleted = id, vm_state = 'deleted', "
                           "deleted_at = NOW() - INTERVAL %s DAY WHERE uuid = %s", (deleted_days_ago, uuid))
            self.lab.query(database, "UPDATE instance_extra SET deleted = id, deleted_at = NOW() - INTERVAL %s DAY "
                           "WHERE instance_uuid = %s", (deleted_days_ago, uuid))
        if mapping:
            self.lab.query(API_DB, "INSERT INTO instance_mappings (created_at, instance_uuid, cell_id, project_id, user_id, "
                           "queued_for_delete) VALUES (NOW(), %s, %s, %s, %s, %s)",
                           (uuid, self.cell_ids[cell], PROJECT, USER if mapping_user else None,
                            None if not mapping_user else int(deleted_days_ago is not None)))
        return uuid

    def checksum(self) -> dict:
        """CHECKSUM TABLE of every non-empty table of the world's databases: proof that nothing was written."""
        sums = {}
        for database in [API_DB, *CELL_DBS.values()]:
            for row in self.lab.query(database, "SHOW TABLES"):
                table = next(iter(row.values()))
                value = self.lab.query(database, f"CHECKSUM TABLE `{table}`")[0]["Checksum"]
                sums[f"{database}.{table}"] = value
        return sums


@pytest.fixture(name="world", scope="module")
def world_fixture(nova_lab: Lab, placement, run_module):  # pylint: disable=unused-argument
    return World(nova_lab, run_module)


def assert_no_secret(lab: Lab, result) -> None:
    for secret in lab.secrets:
        assert not result.contains(secret), "a lab password leaked into the Ansible output"


# -- online data migrations ------------------------------------------------------------------------------------
def test_online_data_migrations_migrate_every_cell_to_completion_then_nothing(world):
    lab = world.lab
    node = world.compute_node("cell1", "hk-cmp1")
    uuids = [world.instance("cell1", "hk-cmp1", mapping_user=False) for _index in range(3)]
    # The rows an upgrade leaves behind: no compute_id (added in 2023.2), instance mappings without user_id and
    # queued_for_delete (Rocky/Stein API-level migrations).
    assert lab.query(CELL_DBS["cell1"], "SELECT COUNT(*) AS n FROM instances WHERE compute_id IS NULL")[0]["n"] == 3

    check = world.run("online_data_migrations", check=True)
    assert not check.failed and not check.changed, check.msg
    assert [cmd.startswith("OS_DATABASE__CONNECTION=mysql+pymysql://nova:****@") for cmd in check["commands"]] == [True, True]
    assert lab.query(CELL_DBS["cell1"], "SELECT COUNT(*) AS n FROM instances WHERE compute_id IS NULL")[0]["n"] == 3

    first = world.run("online_data_migrations", max_count=2)
    assert not first.failed, first.msg
    assert first.changed
    cell1 = first["cells"]["cell1"]
    assert cell1["migrations"]["populate_instance_compute_id"]["done"] == 3
    # The API-level migrations walk every cell from whichever run comes first (cell0's): 3 mappings once.
    assert sum(cell["migrations"].get("populate_user_id", {}).get("done", 0) for cell in first["cells"].values()) == 3
    assert sum(cell["migrations"].get("populate_queued_for_delete", {}).get("done", 0) for cell in first["cells"].values()) == 3
    assert cell1["batches"] >= 3  # batches of 2 rows: rc 1 while rows move, rc 0 at the end
    assert set(first["cells"]) == {"cell0", "cell1"}
    rows = lab.query(CELL_DBS["cell1"], "SELECT compute_id FROM instances WHERE uuid IN %s", (uuids,))
    assert [row["compute_id"] for row in rows] == [node] * 3
    mapped = lab.query(API_DB, "SELECT user_id, queued_for_delete FROM instance_mappings WHERE instance_uuid IN %s", (uuids,))
    assert {(row["user_id"], row["queued_for_delete"]) for row in mapped} == {(USER, 0)}
    print(f"\nonline_data_migrations: {first['migrated']} rows in {cell1['batches']} batches (cell1), commands: "
          f"{len(first['commands'])}")
    assert_no_secret(lab, first)

    second = world.run("online_data_migrations", max_count=2)
    assert not second.failed and not second.changed, second.msg
    assert second["migrated"] == 0 and second["cells"]["cell1"]["batches"] == 1


def test_online_data_migrations_refuse_an_unknown_cell_before_running(world):
    result = world.run("online_data_migrations", cells=["cell"])
    assert result.failed and "no cell named 'cell'" in result.msg and "'cell1'" in result.msg
    assert result["commands"] == []


def test_online_data_migrations_local_uses_the_config_database(world):
    result = world.run("online_data_migrations", local=True)
    assert not result.failed and not result.changed, result.msg
    assert list(result["cells"]) == ["local"]
    assert not result["commands"][0].startswith("OS_DATABASE__CONNECTION")


# -- nova-status -------------------------------------------------------------------------------------------------
def test_status_check_returns_every_check_and_fails_as_asked(world):
    report = world.run("status_check", fail_on="never")
    assert not report.failed and not report.changed, report.msg
    checks = {check["check"]: check for check in report["checks"]}
    assert checks["Cells v2"]["result"] == "success", checks["Cells v2"]
    assert "Service User Token Configuration" in checks
    print("\nnova-status upgrade check: " + ", ".join(f"{c['check']}={c['result']}" for c in report["checks"]))
    failing = [c["check"] for c in report["checks"] if c["result"] == "failure"]
    strict = world.run("status_check", fail_on="failure")
    if failing:
        assert strict.failed and strict["problems"] == failing, strict.msg
        assert all(name in strict.msg for name in failing)
    relaxed = world.run("status_check", fail_on="failure", ignore=failing)
    assert not relaxed.failed, relaxed.msg
    in_check_mode = world.run("status_check", check=True, fail_on="never")
    assert in_check_mode["checks"] == report["checks"]


def test_status_check_reports_a_missing_cell0(world):
    lab = world.lab
    lab.query(API_DB, "UPDATE cell_mappings SET uuid = %s WHERE name = 'cell0'", (str(uuidlib.uuid4()),))
    try:
        result = world.run("status_check")
    finally:
        lab.query(API_DB, "UPDATE cell_mappings SET uuid = %s WHERE name = 'cell0'", (CELL0_UUID,))
    assert result.failed and "Cells v2: failure (No cell0 mapping found" in result.msg, result.msg


# -- archive and purge ---------------------------------------------------------------------------------------------
def test_archive_deleted_rows_moves_deleted_instances_only(world):
    lab = world.lab
    live = world.instance("cell1", "hk-cmp2")
    old = world.instance("cell1", "hk-cmp2", deleted_days_ago=40)
    recent = world.instance("cell1", "hk-cmp2", deleted_days_ago=1)
    before = (lab.query(CELL_DBS["cell1"], "SELECT DATE(NOW() - INTERVAL 10 DAY) AS d")[0]["d"]).isoformat()

    sums = world.checksum()
    check = world.run("archive_deleted_rows", check=True, before=before)
    assert not check.failed and check.changed, check.msg
    assert check["pending"] == {"cell1.instances": 1, "cell1.instance_extra": 1}
    assert world.checksum() == sums, "check mode wrote"

    first = world.run("archive_deleted_rows", before=before)
    assert not first.failed and first.changed, first.msg
    assert first["archived"]["cell1.instances"] == 1
    assert first["archived"]["API_DB.instance_mappings"] == 1
    remaining = {row["uuid"] for row in lab.query(CELL_DBS["cell1"], "SELECT uuid FROM instances WHERE uuid IN %s",
                                                  ((live, old, recent),))}
    assert remaining == {live, recent}
    assert lab.query(CELL_DBS["cell1"], "SELECT uuid FROM shadow_instances") == [{"uuid": old}]
    assert {row["instance_uuid"] for row in lab.query(API_DB, "SELECT instance_uuid FROM instance_mappings WHERE instance_uuid IN %s",
                                                      ((live, old, recent),))} == {live, recent}

    second = world.run("archive_deleted_rows", before=before)
    assert not second.failed and not second.changed and second["archived"] == {}, second.msg

    # Without before, every deleted instance goes: the recent one, and any other this module's tests left deleted in
    # cell1 (the marker instance of the fill_virtual_interface_list migration when the online-migration test ran first).
    everything = world.run("archive_deleted_rows")
    assert everything.changed and everything["archived"]["cell1.instances"] >= 1, everything.msg
    assert {row["uuid"] for row in lab.query(CELL_DBS["cell1"], "SELECT uuid FROM instances WHERE uuid IN %s",
                                             ((live, old, recent),))} == {live}
    assert not lab.query(CELL_DBS["cell1"], "SELECT uuid FROM instances WHERE deleted != 0")
    again = world.run("archive_deleted_rows", check=True)
    assert not again.changed and again["pending"] == {}


def test_archive_refuses_bad_input_before_running(world):
    for args, text in [({"before": "last tuesday"}, "before must be a date"), ({"max_rows": 0}, "max_rows must be a positive")]:
        result = world.run("archive_deleted_rows", **args)
        assert result.failed and text in result.msg and result["commands"] == [], result.msg


def test_purge_deletes_shadow_rows_once(world):
    lab = world.lab
    world.instance("cell1", "hk-cmp3", deleted_days_ago=400)
    archived = world.run("archive_deleted_rows")
    assert archived.changed, archived.msg
    shadow = lab.query(CELL_DBS["cell1"], "SELECT COUNT(*) AS n FROM shadow_instances")[0]["n"]
    assert shadow >= 1

    sums = world.checksum()
    check = world.run("purge", check=True, all=True)
    assert check.changed and check["pending"]["cell1.shadow_instances"] == shadow, check.msg
    assert world.checksum() == sums

    older = world.run("purge", before="2000-01-01")
    assert not older.failed and not older.changed, older.msg

    first = world.run("purge", all=True)
    assert not first.failed and first.changed, first.msg
    assert any(key.endswith(".shadow_instances") and rows == shadow for key, rows in first["purged"].items()), first["purged"]
    assert lab.query(CELL_DBS["cell1"], "SELECT COUNT(*) AS n FROM shadow_instances")[0]["n"] == 0
    second = world.run("purge", all=True)
    assert not second.failed and not second.changed, second.msg

    both = world.run("purge", all=True, before="2000-01-01")
    assert both.failed and "exactly one of all=true" in both.msg and both["commands"] == []
