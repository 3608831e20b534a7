"""Reliability, concurrency (issues 8 and 13): parallel runs of the cell and discover_hosts modules against real
nova-manage 34 and MariaDB.

The tests use their own API database and cell database (Nova's real schema, cloned with CREATE TABLE ... LIKE
from what real nova-manage synced). Each parallel run is a separate module process, as parallel Ansible hosts
or operators would start them. Figures go to the "reliability: concurrency" section.
"""

from __future__ import annotations

import time
import uuid as uuidlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import pytest
from harness import Lab, ModuleResult, record_figure

SECTION = "reliability: concurrency"
API_DB = "nova_api_cc"
CELL_DB = "nova_cc1"
CELL = "cc1"
CELL_RUNS = 8
DISCOVER_RUNS = 4
DISCOVER_HOSTS = [f"cc-h{index:03d}" for index in range(500)]


class World:
    """An API database with Nova's schema and one cell database; module arguments to reach them."""

    def __init__(self, lab: Lab, run_module: Callable[..., ModuleResult]) -> None:
        self.lab = lab
        self._run_module = run_module
        lab.clone_database("nova_api", API_DB)
        self.cell_url = lab.clone_database(lab.cells["cell1"].database, CELL_DB)
        self.conf = lab.write_config("cc-api", {
            "DEFAULT": {"transport_url": lab.transport_url("cc_default")},
            "api_database": {"connection": lab.db_url(API_DB)},
            "database": {"connection": self.cell_url},
        })

    def run(self, module: str, **args: Any) -> tuple[ModuleResult, float]:
        started = time.monotonic()
        result = self._run_module(module, {"config_files": [str(self.conf)], "nova_manage": self.lab.nova_manage_command, **args})
        return result, time.monotonic() - started

    def parallel(self, runs: int, module: str, **args: Any) -> tuple[list[tuple[ModuleResult, float]], float]:
        """``runs`` module processes started together; their results with durations, and the wall time."""
        started = time.monotonic()
        with ThreadPoolExecutor(max_workers=runs) as pool:
            results = list(pool.map(lambda _index: self.run(module, **args), range(runs)))
        return results, time.monotonic() - started


@pytest.fixture(name="world", scope="module")
def world_fixture(nova_lab: Lab, run_module: Callable[..., ModuleResult]) -> World:
    return World(nova_lab, run_module)


def record_durations(label: str, timed: list[tuple[ModuleResult, float]], wall: float) -> None:
    durations = [seconds for _result, seconds in timed]
    record_figure(SECTION, f"{label}: fastest run", round(min(durations), 2), "s")
    record_figure(SECTION, f"{label}: slowest run", round(max(durations), 2), "s")
    record_figure(SECTION, f"{label}: wall time", round(wall, 2), "s")


def test_parallel_runs_creating_the_same_cell_leave_one_mapping(world: World) -> None:
    lab = world.lab
    timed, wall = world.parallel(CELL_RUNS, "cell", name=CELL, database_connection=world.cell_url, transport_url=lab.transport_url(CELL))
    results = [result for result, _seconds in timed]
    failed = [result.msg for result in results if result.failed]
    changed = sum(1 for result in results if result.changed)
    mappings = lab.query(API_DB, "SELECT uuid FROM cell_mappings WHERE name = %s", (CELL,))
    nova_manage_runs = sum(len(result["commands"]) for result in results)
    record_durations(f"{CELL_RUNS} parallel cell runs, same cell", timed, wall)
    assert not failed, failed
    assert len(mappings) == 1, mappings
    assert changed == 1 and nova_manage_runs == 1
    # Every run reports the one cell that exists.
    assert {result["cell"]["uuid"] for result in results} == {mappings[0]["uuid"]}
    for result in results:
        for secret in lab.secrets:
            assert not result.contains(secret)


def test_parallel_discover_hosts_map_every_host_once(world: World) -> None:
    lab = world.lab
    if not lab.query(API_DB, "SELECT id FROM cell_mappings WHERE name = %s", (CELL,)):   # run alone (-k)
        lab.query(API_DB, "INSERT INTO cell_mappings (created_at, uuid, name, transport_url, database_connection, disabled) "
                          "VALUES (UTC_TIMESTAMP(), %s, %s, %s, %s, 0)", (str(uuidlib.uuid4()), CELL, lab.transport_url(CELL), world.cell_url))
    row = "(UTC_TIMESTAMP(), %s, %s, %s, 8, 8192, 100, 0, 0, 0, 'fake', 1000, '{}', 0, 0)"
    lab.query(CELL_DB, "INSERT INTO compute_nodes (created_at, host, hypervisor_hostname, uuid, vcpus, memory_mb, local_gb, vcpus_used, "
                       "memory_mb_used, local_gb_used, hypervisor_type, hypervisor_version, cpu_info, deleted, mapped) VALUES "
                       + ", ".join([row] * len(DISCOVER_HOSTS)),
              [value for host in DISCOVER_HOSTS for value in (host, host, str(uuidlib.uuid4()))])

    timed, wall = world.parallel(DISCOVER_RUNS, "discover_hosts", cell=CELL, retry_delay=1)
    results = [result for result, _seconds in timed]
    failed = [result.msg for result in results if result.failed]
    counts = {row["host"]: row["n"] for row in lab.query(API_DB, "SELECT host, COUNT(*) AS n FROM host_mappings GROUP BY host")}
    nova_manage_runs = sum(len(result["commands"]) for result in results)
    unmarked = lab.query(CELL_DB, "SELECT COUNT(*) AS n FROM compute_nodes WHERE mapped = 0")[0]["n"]
    changed = sum(1 for result in results if result.changed)
    label = f"{DISCOVER_RUNS} parallel discover_hosts runs, {len(DISCOVER_HOSTS)} new hosts"
    record_figure(SECTION, f"{label}: runs reporting changed", changed)
    record_figure(SECTION, f"{label}: nova-manage discover_hosts calls (retries included)", nova_manage_runs)
    record_durations(label, timed, wall)
    assert not failed, failed
    assert sorted(counts) == DISCOVER_HOSTS and set(counts.values()) == {1}
    # The run that creates a host mapping marks the host's node (one node per host here); none is interrupted.
    assert unmarked == 0
    # At least one run maps hosts; every run that maps hosts ran nova-manage at least once.
    assert 1 <= changed <= DISCOVER_RUNS and nova_manage_runs >= changed
    # Each run reports only the hosts it mapped itself (issue 13): every host is reported by exactly one run.
    reported = [host for result in results for host in result["mapped_hosts"].get(CELL, [])]
    assert len(reported) == len(counts) == len(DISCOVER_HOSTS)
    assert set(reported) == set(DISCOVER_HOSTS)
    assert all(result.changed == bool(result["mapped_hosts"].get(CELL)) for result in results)

    again, _seconds = world.run("discover_hosts", cell=CELL)
    assert not again.failed and not again.changed and again["commands"] == [], again.result
