"""Proof that the lab works: real Nova services register and heartbeat, modules and playbooks run."""

from __future__ import annotations

import time
from urllib.parse import unquote, urlsplit

import pytest
from harness import NOVA_DB_PASSWORD, RABBIT_PASSWORD, Lab, LabError
from kazoo.client import KazooClient
from pymemcache.client.base import Client as MemcacheClient

# Short intervals keep the heartbeat test fast; service_down_time must stay above report_interval.
REPORT_INTERVAL = 2
SERVICE_DOWN_TIME = 10


def test_urls_percent_encode_the_passwords(lab: Lab) -> None:
    db_url = urlsplit(lab.db_url("nova_api"))
    mq_url = urlsplit(lab.transport_url("cell1"))
    assert unquote(db_url.password) == NOVA_DB_PASSWORD
    assert unquote(mq_url.password) == RABBIT_PASSWORD
    assert (db_url.path, mq_url.path) == ("/nova_api", "/cell1")
    assert NOVA_DB_PASSWORD not in lab.db_url("nova_api")


def test_run_module_returns_result_and_raw_output(run_module) -> None:
    ping = run_module("ansible.builtin.ping", {"data": "pong-nova"})
    assert (ping.rc, ping.changed, ping.failed, ping["ping"]) == (0, False, False, "pong-nova")
    assert "pong-nova" in ping.stdout

    failing = run_module("ansible.builtin.command", {"argv": ["sh", "-c", "echo to-stderr >&2; exit 3"]}, verbosity=3)
    assert failing.failed and failing.rc == 2
    assert (failing["rc"], failing["stderr"]) == (3, "to-stderr")
    assert "ESTABLISH LOCAL CONNECTION" in failing.stdout


def test_run_playbook_inline(run_playbook) -> None:
    playbook = """
- hosts: localhost
  gather_facts: false
  tasks:
    - name: Echo the extra var
      ansible.builtin.command: echo {{ word }}
      changed_when: false
"""
    result = run_playbook(playbook, {"word": "cells"}, check=False)
    assert result.rc == 0 and not result.changed
    assert result.task("Echo the extra var")["stdout"] == "cells"


def test_memcached_and_zookeeper_answer(memcached, zookeeper) -> None:
    client = MemcacheClient(("127.0.0.1", memcached.port), connect_timeout=2, timeout=2)
    client.set("nova-cells-harness", b"up")
    assert client.get("nova-cells-harness") == b"up"
    client.close()

    kazoo = KazooClient(hosts=zookeeper.hosts, timeout=5)
    kazoo.start(timeout=10)
    try:
        kazoo.ensure_path("/servicegroups/compute")
        assert kazoo.exists("/servicegroups/compute") is not None
    finally:
        kazoo.stop()
        kazoo.close()


def test_nova_manage_fails_fast_when_the_database_is_down(nova_lab: Lab) -> None:
    closed_port = nova_lab.reserve_port()
    broken = nova_lab.write_config(
        "db-down",
        {
            "api_database": {"connection": f"mysql+pymysql://nova:x@127.0.0.1:{closed_port}/nova_api"},
            "database": {"connection": f"mysql+pymysql://nova:x@127.0.0.1:{closed_port}/nova_cell1"},
        },
    )
    result = nova_lab.nova_manage("cell_v2", "list_cells", config_files=[broken], timeout=60)
    assert result.rc == 255
    assert result.seconds < 30, f"nova-manage took {result.seconds:.1f} s with the DB down"
    with pytest.raises(LabError, match="failed with rc 255"):
        result.check()


def test_compute_registers_and_heartbeats(nova_services: Lab) -> None:
    started = time.monotonic()
    lab = nova_services
    timing = {"report_interval": REPORT_INTERVAL, "service_down_time": SERVICE_DOWN_TIME}
    conductor = lab.start_conductor("cell1", **timing)
    compute = lab.start_compute("cell1", "cmp1", **timing)

    service = lab.wait_for_service_row("cell1", "nova-compute", "cmp1", timeout=90, service=compute)
    node = lab.wait_for_compute_node("cell1", "cmp1", timeout=90, service=compute)
    registered = time.monotonic() - started
    assert (service["topic"], node["hypervisor_hostname"], node["mapped"]) == ("compute", "cmp1", 0)
    lab.wait_for_service_row("cell1", "nova-conductor", "cell1-conductor", timeout=30, service=conductor)

    # Heartbeats go through the conductor and bump report_count and last_seen_up every report_interval.
    first = lab.wait_for_heartbeat("cell1", "nova-compute", "cmp1", after=0, timeout=30, service=compute)
    later = lab.wait_for_heartbeat("cell1", "nova-compute", "cmp1", after=first["report_count"] + 1, timeout=30, service=compute)
    assert later["last_seen_up"] > first["last_seen_up"]

    rss = lab.rss_mib()
    print(f"\ncompute registered after {registered:.1f} s; test body {time.monotonic() - started:.1f} s; RSS MiB {rss}")
    assert set(rss) >= {"conductor-cell1-conductor", "compute-cmp1", "mariadb", "rabbitmq", "placement"}
