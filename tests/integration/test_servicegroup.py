"""nova.cells.servicegroup against a real Nova 34 install, memcached and ZooKeeper (no Nova services needed).

The file the module writes is also what the Nova services in test_service_status.py run with.
"""

from __future__ import annotations

import json
import os
import stat
import subprocess
import textwrap

import pytest
from harness import Lab


@pytest.fixture(name="sg_dir")
def sg_dir_fixture(lab: Lab, tmp_path_factory):
    """A directory for nova.conf files inside the lab (removed with it)."""
    directory = lab.dir / "servicegroup" / tmp_path_factory.mktemp("sg").name
    directory.mkdir(parents=True)
    return directory


def existing_conf(lab: Lab, path):
    """A realistic nova.conf with the lab's secrets in URLs, an old mc setup and a stale upstream option."""
    path.write_text(
        textwrap.dedent(
            f"""\
            # kept by hand
            [DEFAULT]
            transport_url = {lab.transport_url("sg")}
            servicegroup_driver = mc
            memcached_servers = 10.9.9.9:11211
            debug = true

            [api_database]
            connection = {lab.db_url("nova_api")}

            [cache]
            enabled = true
            backend = dogpile.cache.memcached
            memcache_servers = 10.9.9.9:11211
            """
        ),
        encoding="utf-8",
    )
    os.chmod(path, 0o640)
    return path


def assert_no_secret(lab: Lab, *results):
    for result in results:
        for secret in lab.secrets:
            assert not result.contains(secret), f"a lab password leaked into the output of {result.argv[:8]}"


def test_twice_run_check_mode_and_masked_diff(lab: Lab, run_module, sg_dir):
    path = existing_conf(lab, sg_dir / "nova.conf")
    before = path.read_text(encoding="utf-8")
    args = {"path": str(path), "driver": "db", "report_interval": 2, "service_down_time": 6, "nova_release": "34.0.0"}

    checked = run_module("servicegroup", args, check=True, diff=True)
    assert checked.changed and not checked.failed, checked.result
    assert path.read_text(encoding="utf-8") == before                     # check mode writes nothing
    diff = checked["diff"]
    assert "servicegroup_driver = mc" in diff["before"] and "servicegroup_driver = db" in diff["after"]
    assert "****" in diff["before"]                                      # the URLs' passwords, masked

    first = run_module("servicegroup", args, diff=True)
    assert first.changed, first.result
    text = path.read_text(encoding="utf-8")
    assert "servicegroup_driver = db" in text and "report_interval = 2" in text and "service_down_time = 6" in text
    assert "memcached_servers" not in text                                # ignored since Newton: removed
    assert "backend = dogpile.cache.memcached" in text                   # [cache] is kept for other features
    assert "# kept by hand" in text and "debug = true" in text
    assert stat.S_IMODE(path.stat().st_mode) == 0o640
    assert sorted(first["changes"]) == sorted(["DEFAULT/servicegroup_driver set", "DEFAULT/report_interval set",
                                               "DEFAULT/service_down_time set", "DEFAULT/memcached_servers removed"])

    second = run_module("servicegroup", args, diff=True)
    assert not second.changed and second["changes"] == [], second.result
    assert_no_secret(lab, checked, first, second)


def test_new_file_mode_and_check_mode(run_module, sg_dir):
    path = sg_dir / "created.conf"
    args = {"path": str(path), "driver": "db", "nova_release": "34"}
    checked = run_module("servicegroup", args, check=True)
    assert checked.changed and not path.exists()
    created = run_module("servicegroup", args)
    assert created.changed and stat.S_IMODE(path.stat().st_mode) == 0o640
    assert not run_module("servicegroup", args).changed
    assert run_module("servicegroup", {**args, "mode": "0600"}).changed
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_release_detection(lab: Lab, run_module, sg_dir):
    path = sg_dir / "detect.conf"
    # The shebang of the lab's nova-manage points at the Nova venv's Python: fast, and gives oslo.cache too.
    detected = run_module("servicegroup", {"path": str(path), "driver": "db", "nova_manage": lab.nova_manage_command})
    assert not detected.failed, detected.result
    assert detected["nova_release"]["major"] == 34 and detected["nova_release"]["version"] == "34.0.0"
    assert detected["nova_release"]["name"] == "hibiscus" and detected["nova_release"]["series"] == "2026.2"
    assert detected["oslo_cache_version"] == "4.3.0"
    # A wrapper that is not a Python script: falls back to "nova-manage --version".
    wrapper = sg_dir / "nova-manage-wrapper"
    wrapper.write_text(f'#!/bin/sh\nexec {lab.nova_manage_command[0]} "$@"\n', encoding="utf-8")
    wrapper.chmod(0o755)
    wrapped = run_module("servicegroup", {"path": str(path), "driver": "db", "nova_manage": [str(wrapper)]})
    assert wrapped["nova_release"]["version"] == "34.0.0", wrapped.result
    assert wrapped["nova_release"]["source"].endswith("--version")
    missing = run_module("servicegroup", {"path": str(path), "driver": "db", "nova_manage": [str(sg_dir / "nope")]})
    assert missing.failed and "cannot detect the Nova release" in missing.msg and "set nova_release" in missing.msg


def test_zk_refused_on_the_detected_release(lab: Lab, run_module, sg_dir):
    path = sg_dir / "zk.conf"
    result = run_module("servicegroup", {"path": str(path), "driver": "zk", "zookeeper_address": ["127.0.0.1:2181"],
                                         "nova_manage": lab.nova_manage_command})
    assert result.failed
    assert "Nova 34.0.0 (2026.2 Hibiscus)" in result.msg and "removed in Mitaka 13.0.0" in result.msg and "337a1b029a" in result.msg
    assert "Use driver db" in result.msg
    assert not path.exists()


def test_service_down_time_refusal(run_module, sg_dir):
    path = sg_dir / "timing.conf"
    result = run_module("servicegroup", {"path": str(path), "driver": "db", "report_interval": 4, "service_down_time": 4,
                                         "nova_release": "34"})
    assert result.failed and "int(2.5 x report_interval) = 10 seconds" in result.msg
    assert not path.exists()


def test_check_backend_memcached(lab: Lab, run_module, memcached, sg_dir):
    path = sg_dir / "mc.conf"
    dead = f"127.0.0.1:{lab.reserve_port()}"  # reserved for this lab, nothing listens there
    live = run_module("servicegroup", {"path": str(path), "driver": "mc", "memcache_servers": [memcached.servers],
                                       "check_backend": True, "nova_release": "34"})
    assert live.changed and list(live["backend"]) == [memcached.servers], live.result
    failed = run_module("servicegroup", {"path": str(sg_dir / "mc-dead.conf"), "driver": "mc", "nova_release": "34",
                                         "memcache_servers": [memcached.servers, dead], "check_backend": True, "backend_timeout": 2})
    assert failed.failed and f"memcached {dead} did not answer" in failed.msg and "nothing was written" in failed.msg
    assert not (sg_dir / "mc-dead.conf").exists()


def test_check_backend_zookeeper(lab: Lab, run_module, zookeeper, sg_dir):
    dead = f"127.0.0.1:{lab.reserve_port()}"
    args = {"driver": "zk", "nova_release": "liberty", "check_backend": True, "backend_timeout": 3}
    live = run_module("servicegroup", {**args, "path": str(sg_dir / "zk.conf"), "zookeeper_address": [zookeeper.hosts]})
    assert live.changed and live["backend"] == {zookeeper.hosts: "connected"}, live.result
    expected = f"[zookeeper]\naddress = {zookeeper.hosts}\nrecv_timeout = 4000\nsg_prefix = /servicegroups\nsg_retry_interval = 5\n"
    assert expected in (sg_dir / "zk.conf").read_text(encoding="utf-8")
    failed = run_module("servicegroup", {**args, "path": str(sg_dir / "zk-dead.conf"), "zookeeper_address": [zookeeper.hosts, dead]})
    assert failed.failed and f"ZooKeeper {dead} did not answer" in failed.msg, failed.result
    assert not (sg_dir / "zk-dead.conf").exists()


PROBE = """
import json, sys
import nova.conf
from nova import availability_zones, cache_utils
from nova.servicegroup.drivers import mc
CONF = nova.conf.CONF
CONF(['--config-file', sys.argv[1]], project='nova')
result = {}
try:
    mc.MemcachedDriver()
    result['mc'] = 'ok'
except Exception as exc:
    result['mc'] = '%s: %s' % (type(exc).__name__, exc)
try:
    availability_zones._get_cache()
    result['az_cache'] = 'ok'
except Exception as exc:
    result['az_cache'] = '%s: %s' % (type(exc).__name__, exc)
print(json.dumps(result))
"""


def nova_probe(lab: Lab, path):
    done = subprocess.run([str(lab.nova_python), "-c", PROBE, str(path)], capture_output=True, text=True, timeout=120,
                          env=lab.nova_env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_real_nova_accepts_what_is_rendered_and_why_small_backend_expiration_is_refused(lab: Lab, run_module, memcached, sg_dir):
    """Real oslo.cache 4.3.0 in Nova 34: the module's backend_expiration_time rule is Nova's."""
    good = sg_dir / "bet-good.conf"
    result = run_module("servicegroup", {"path": str(good), "driver": "mc", "memcache_servers": [memcached.servers],
                                         "backend_expiration_time": 604800, "service_down_time": 6, "report_interval": 2,
                                         "nova_python": str(lab.nova_python)})
    assert result["options"]["cache"]["backend_expiration_time"] == "604800", result.result
    assert nova_probe(lab, good) == {"mc": "ok", "az_cache": "ok"}
    refused = run_module("servicegroup", {"path": str(sg_dir / "bet-bad.conf"), "driver": "mc", "memcache_servers": [memcached.servers],
                                          "backend_expiration_time": 120, "nova_release": "34"})
    assert refused.failed and "at least 604800" in refused.msg
    # What Nova itself would do with 120: the mc driver starts, the availability-zone cache (1 hour) cannot be created.
    bad = sg_dir / "bet-manual.conf"
    bad.write_text(good.read_text(encoding="utf-8").replace("backend_expiration_time = 604800", "backend_expiration_time = 120"),
                   encoding="utf-8")
    probe = nova_probe(lab, bad)
    assert probe["mc"] == "ok"
    assert probe["az_cache"].startswith("ConfigurationError: backend_expiration_time should not be smaller than expiration_time")
