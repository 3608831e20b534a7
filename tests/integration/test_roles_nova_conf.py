"""The nova.cells.nova_conf role: nova.conf per node type, checked against the per-node-type matrix.

One inventory holds every node type in three deployments at once (each host renders into its own
directory through ``nova_conf_dir``, over the local connection):

- ``single``: one cell sharing the API message queue (no cell variables at all), the db driver, and an
  all-in-one host that runs nova-compute next to the API-level services;
- ``multi``: two isolated cells (own vhost each, super conductor), the mc driver, overrides;
- ``templates``: template-URL mode, every host with its own database and RabbitMQ credentials.

The rendered files are validated by the role itself with the real Nova 34 option definitions
(venv-nova), read back with an INI parser and compared with the matrix.
"""

from __future__ import annotations

import configparser
import os
import stat
import tempfile
import time
from pathlib import Path
from urllib.parse import quote

import pytest
from harness import Lab
from harness.lab import NOVA_DB_PASSWORD, RABBIT_PASSWORD

PLAYBOOK = """\
- name: Render nova.conf
  hosts: "{{ nova_test_hosts | default('all') }}"
  gather_facts: false
  roles:
    - role: nova.cells.nova_conf
"""
DB = "db.example.net"
MQ = "mq.example.net"
PLACEMENT = {"auth_type": "admin_token", "endpoint": "http://placement.example.net:8778", "token": "admin"}
TEMPLATE_USERS = {  # host: (database password, rabbit password), all URL-special
    "t-api": ("Api+db@pw/1", "Api+mq@pw:1"),
    "t-cond2": ("C2+db@pw/2", "C2+mq@pw:2"),
    "t-cmp2": ("unused-db-pw", "Cmp+mq@pw:3"),
}
API_LEVEL = {"api", "metadata", "scheduler", "super_conductor"}
SG_KEYS = ("servicegroup_driver", "report_interval", "service_down_time")
# Local connection with many hosts: pipelining saves a file copy per task and host.
ENV = {"ANSIBLE_PIPELINING": "1"}


def inventory(root: Path, **extra_vars) -> dict:
    """Three deployments in one inventory; a host's deployment is its scenario group."""

    def hosts(*names):
        return {"hosts": {name: {} for name in names}}

    template_hosts = {
        host: {
            "nova_database_user": f"{host.replace('-', '_')}_db",
            "nova_database_password": db_password,
            "nova_rabbit_user": f"{host.replace('-', '_')}_mq",
            "nova_rabbit_password": mq_password,
        }
        for host, (db_password, mq_password) in TEMPLATE_USERS.items()
    }
    template_hosts["t-cond2"]["nova_cell_name"] = "cell2"
    template_hosts["t-cmp2"]["nova_cell_name"] = "cell2"
    return {
        "all": {
            "vars": {
                "ansible_connection": "local",
                "nova_conf_dir": f"{root}/{{{{ inventory_hostname }}}}",
                "nova_systemd_dir": f"{root}/{{{{ inventory_hostname }}}}/systemd",
                "nova_conf_group": "daemon",
                "nova_conf_restart_services": False,
                "nova_database_host": DB,
                "nova_rabbit_hosts": [MQ],
                "nova_database_password": NOVA_DB_PASSWORD,
                "nova_rabbit_password": RABBIT_PASSWORD,
                "nova_placement_options": PLACEMENT,
                **extra_vars,
            },
            "children": {
                # Node types
                "nova_api": hosts("s-ctl", "s-aio", "m-api", "t-api"),
                "nova_scheduler": hosts("s-ctl", "s-aio", "m-sched"),
                "nova_super_conductor": hosts("s-ctl", "s-aio", "m-sc"),
                "nova_metadata": hosts("m-meta"),
                "nova_cell_conductor": hosts("s-cond", "s-aio", "m-c1cond", "m-c2cond", "t-cond2"),
                "nova_compute": hosts("s-cmp", "s-aio", "m-c1cmp", "m-c2cmp", "t-cmp2"),
                "nova_console_proxy": hosts("s-vnc", "m-c2vnc"),
                "nova_cell_metadata": hosts("m-c2meta"),
                # Deployments
                "single": {"hosts": {name: {} for name in ("s-ctl", "s-aio", "s-cond", "s-cmp", "s-vnc")}},
                "multi": {
                    "hosts": {
                        "m-api": {}, "m-sched": {}, "m-sc": {}, "m-meta": {}, "m-c1cond": {}, "m-c1cmp": {},
                        "m-c2cond": {"nova_cell_name": "cell2"}, "m-c2cmp": {"nova_cell_name": "cell2"},
                        "m-c2vnc": {"nova_cell_name": "cell2"}, "m-c2meta": {"nova_cell_name": "cell2"},
                    },
                    "vars": {
                        "nova_cells": {
                            "cell1": {"rabbit_vhost": "cell1"},
                            "cell2": {"database_host": "db2.example.net", "rabbit_hosts": ["mq2a.example.net", "mq2b.example.net"],
                                      "database_password": "Cell2+db@pw/x", "rabbit_password": "Cell2+mq@pw:x"},
                        },
                        "nova_api_mq_shared_cell": "",
                        "nova_servicegroup_driver": "mc",
                        "nova_memcache_servers": ["mc1.example.net:11211", "mc2.example.net:11211"],
                        "nova_servicegroup_report_interval": 5,
                        "nova_servicegroup_service_down_time": 30,
                        "nova_notifications_transport_url": "rabbit://notify:N0tify%40pw@mqn.example.net:5672/notifications",
                        "nova_conf_node_type_overrides": {"compute": {"libvirt": {"virt_type": "qemu"}}},
                        "nova_conf_overrides": {
                            "default": {"debug": True},
                            "placement": {"region_name": "RegionTwo", "token": None},
                            "scheduler": {"max_attempts": 5},
                        },
                    },
                },
                "templates": {
                    "hosts": template_hosts,
                    "vars": {
                        "nova_cell_url_templates": True,
                        "nova_cells": {"cell1": {}, "cell2": {"database_host": "db2.example.net"}},
                        "nova_api_mq_shared_cell": "",
                    },
                },
            },
        }
    }


ALL_HOSTS = ["s-ctl", "s-aio", "s-cond", "s-cmp", "s-vnc", "m-api", "m-sched", "m-sc", "m-meta", "m-c1cond", "m-c1cmp",
             "m-c2cond", "m-c2cmp", "m-c2vnc", "m-c2meta", "t-api", "t-cond2", "t-cmp2"]


def task(result, name: str, host: str) -> dict:
    """The result of a task of the role (Ansible prefixes role task names with the role)."""
    return result.task(f"nova.cells.nova_conf : {name}", host)


def read_conf(path: Path) -> dict[str, dict[str, str]]:
    parser = configparser.RawConfigParser(default_section="__none__", interpolation=None, strict=True)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    parser.read_string(path.read_text(encoding="utf-8"))
    return {section: dict(parser.items(section)) for section in parser.sections()}


def secrets(lab: Lab) -> list[str]:
    plain = [NOVA_DB_PASSWORD, RABBIT_PASSWORD, "Cell2+db@pw/x", "Cell2+mq@pw:x"]
    plain += [password for pair in TEMPLATE_USERS.values() for password in pair]
    return sorted(set(lab.secrets + plain + [quote(p, safe="") for p in plain]))


@pytest.fixture(name="rendered", scope="module")
def rendered_fixture(lab: Lab, run_playbook, tmp_path_factory):
    """First run, at -vvv, with the role's own validation by the real Nova 34 (venv-nova)."""
    root = lab.dir / "nova_conf" / tmp_path_factory.mktemp("r").name
    root.mkdir(parents=True)
    extra = {"nova_manage": [str(lab.nova_bin / "nova-manage")]}
    result = run_playbook(PLAYBOOK, inventory=inventory(root, **extra), verbosity=3, timeout=1200, extra_env=ENV)
    assert not result.failed, result.stdout[-4000:] + result.stderr[-3000:]
    confs = {host: read_conf(root / host / "nova.conf") for host in ALL_HOSTS}
    return {"root": root, "result": result, "confs": confs, "extra": extra}


def test_first_run_writes_every_file_and_hides_every_password(lab: Lab, rendered):
    result = rendered["result"]
    assert set(result.stats) == set(ALL_HOSTS)
    assert all(stats["changed"] > 0 for stats in result.stats.values())
    for secret in secrets(lab):
        assert not result.contains(secret), f"a password leaked into the -vvv output ({len(secret)} characters)"


def test_real_nova_validated_every_file(rendered):
    for host in ALL_HOSTS:
        verdict = task(rendered["result"], "Read the validator's verdict", host)["ansible_facts"]["_nova_conf_verdict"]
        assert verdict["status"] == "ok" and verdict["nova_version"] == "34.0.0", (host, verdict)


def test_files_are_0640_root_and_the_service_group(rendered):
    for host in ALL_HOSTS:
        info = os.stat(rendered["root"] / host / "nova.conf")
        assert stat.S_IMODE(info.st_mode) == 0o640, host
        assert info.st_uid == 0 and info.st_gid == 1, host  # daemon


def test_compute_has_no_database_section(rendered):
    for host in ("s-cmp", "m-c1cmp", "m-c2cmp", "t-cmp2", "s-aio"):
        conf = rendered["confs"][host]
        assert "api_database" not in conf and "database" not in conf, host
        assert conf["DEFAULT"]["compute_driver"] == "libvirt.LibvirtDriver"
        assert conf["placement"]["auth_type"] == "admin_token"


def test_cell_level_services_have_no_api_database(rendered):
    confs = rendered["confs"]
    for host in ("m-c1cond", "m-c2cond", "m-c2vnc", "m-c2meta", "t-cond2", "s-vnc"):
        assert "api_database" not in confs[host], host
    assert confs["m-c2cond"]["database"]["connection"].startswith("mysql+pymysql://nova:Cell2%2Bdb%40pw%2Fx@db2.example.net:3306/nova_cell2")
    assert confs["m-c2vnc"]["database"]["connection"] == confs["m-c2cond"]["database"]["connection"]
    assert confs["m-c2cond"]["DEFAULT"]["transport_url"] == (
        "rabbit://nova:Cell2%2Bmq%40pw%3Ax@mq2a.example.net:5672,nova:Cell2%2Bmq%40pw%3Ax@mq2b.example.net:5672/cell2")
    assert confs["m-c1cond"]["DEFAULT"]["transport_url"].endswith("@mq.example.net:5672/cell1")
    assert confs["m-c2cmp"]["DEFAULT"]["transport_url"] == confs["m-c2cond"]["DEFAULT"]["transport_url"]
    assert confs["m-c2meta"]["api"]["local_metadata_per_cell"] == "true"
    # Console proxies get no [placement] of their own; only the host override's region_name lands there.
    assert confs["m-c2vnc"]["placement"] == {"region_name": "RegionTwo"} and "auth_type" in confs["m-c2cond"]["placement"]


def test_api_level_services_use_the_api_database_cell0_and_the_api_queue(rendered):
    confs = rendered["confs"]
    api_mq = "rabbit://nova:R%40bb1t%2Bq%3Aw%25rd%21@mq.example.net:5672/"
    for host in ("m-api", "m-sched", "m-sc", "m-meta"):
        conf = confs[host]
        assert conf["api_database"]["connection"] == "mysql+pymysql://nova:N0va%2Bp%40ss%2Fw%3Ard%25%21@db.example.net:3306/nova_api"
        assert conf["database"]["connection"].endswith("/nova_cell0"), host  # superconductor layout
        assert conf["DEFAULT"]["transport_url"] == api_mq, host
        assert conf["database"]["max_retries"] == "3" and conf["database"]["retry_interval"] == "5"
    assert confs["m-api"]["api"]["list_records_by_skipping_down_cells"] == "true"
    assert confs["m-meta"]["api"]["local_metadata_per_cell"] == "false"
    assert confs["m-sched"]["scheduler"]["discover_hosts_in_cells_interval"] == "-1"


def test_multi_cell_upcall_settings(rendered):
    confs = rendered["confs"]
    assert confs["m-sched"]["filter_scheduler"]["track_instance_changes"] == "false"
    for host in ("m-c1cmp", "m-c2cmp"):
        assert confs[host]["workarounds"]["disable_group_policy_check_upcall"] == "true"
        assert confs[host]["filter_scheduler"]["track_instance_changes"] == "false"
    assert confs["m-sc"]["scheduler"]["max_attempts"] == "5"  # the host override wins over the default 3
    assert "discover_hosts_in_cells_interval" not in confs["m-sc"].get("scheduler", {})


def test_single_cell_needs_no_cell_variables(rendered):
    confs = rendered["confs"]
    mq = confs["s-ctl"]["DEFAULT"]["transport_url"]
    assert mq.endswith("@mq.example.net:5672/")
    assert confs["s-ctl"]["database"]["connection"].endswith("@db.example.net:3306/nova_cell1")
    assert confs["s-cond"]["api_database"] == confs["s-ctl"]["api_database"]  # one conductor for API and cell
    assert confs["s-cond"]["database"] == confs["s-ctl"]["database"]
    for host in ("s-cond", "s-cmp", "s-vnc"):
        assert confs[host]["DEFAULT"]["transport_url"] == mq
    assert "workarounds" not in confs["s-cmp"] and "filter_scheduler" not in confs["s-ctl"]
    assert confs["s-ctl"]["scheduler"]["max_attempts"] == "3"


def test_all_in_one_host_keeps_database_options_out_of_nova_conf(rendered):
    root = rendered["root"] / "s-aio"
    conf = rendered["confs"]["s-aio"]
    assert "api_database" not in conf and "database" not in conf
    env = (root / "nova-db.env").read_text(encoding="utf-8")
    assert stat.S_IMODE(os.stat(root / "nova-db.env").st_mode) == 0o600
    assert 'OS_API_DATABASE__CONNECTION="mysql+pymysql://nova:N0va%2Bp%40ss%2Fw%3Ard%25%21@db.example.net:3306/nova_api"' in env
    assert "OS_DATABASE__CONNECTION=" in env and "OS_DATABASE__MAX_RETRIES=" in env
    dropins = sorted(path.relative_to(root / "systemd").as_posix() for path in (root / "systemd").rglob("*.conf"))
    assert dropins == ["nova-api.service.d/nova-cells-db.conf", "nova-conductor.service.d/nova-cells-db.conf",
                       "nova-scheduler.service.d/nova-cells-db.conf"]
    assert f"EnvironmentFile={root}/nova-db.env" in (root / "systemd" / dropins[0]).read_text(encoding="utf-8")
    assert not (rendered["root"] / "s-ctl" / "nova-db.env").exists()


def test_servicegroup_options_are_identical_everywhere(rendered):
    confs = rendered["confs"]
    for group, expected in (("s-", ("db", "10", "60")), ("m-", ("mc", "5", "30")), ("t-", ("db", "10", "60"))):
        for host in (h for h in ALL_HOSTS if h.startswith(group)):
            assert tuple(confs[host]["DEFAULT"][key] for key in SG_KEYS) == expected, host
            assert confs[host]["upgrade_levels"]["compute"] == "hibiscus", host
    for host in (h for h in ALL_HOSTS if h.startswith("m-")):
        assert confs[host]["cache"] == {"enabled": "true", "backend": "dogpile.cache.pymemcache",
                                        "memcache_servers": "mc1.example.net:11211,mc2.example.net:11211"}, host
        assert confs[host]["oslo_messaging_notifications"] == {
            "transport_url": "rabbit://notify:N0tify%40pw@mqn.example.net:5672/notifications", "driver": "messagingv2"}
    assert "cache" not in confs["s-ctl"]


def test_overrides_merge_per_option(rendered):
    confs = rendered["confs"]
    for host in (h for h in ALL_HOSTS if h.startswith("m-")):
        assert confs[host]["DEFAULT"]["debug"] == "true", host
    placement = confs["m-c1cond"]["placement"]
    assert placement == {"auth_type": "admin_token", "endpoint": PLACEMENT["endpoint"], "region_name": "RegionTwo"}
    assert confs["m-c2cmp"]["libvirt"] == {"virt_type": "qemu"}
    assert "libvirt" not in confs["m-c2cond"]


def test_template_mode_keeps_each_hosts_credentials_in_its_own_file(rendered):
    confs = rendered["confs"]
    assert confs["t-api"]["api_database"]["connection"] == "mysql+pymysql://t_api_db:Api%2Bdb%40pw%2F1@db.example.net:3306/nova_api"
    assert confs["t-api"]["DEFAULT"]["transport_url"] == "rabbit://t_api_mq:Api%2Bmq%40pw%3A1@mq.example.net:5672/"
    assert confs["t-cond2"]["database"]["connection"] == "mysql+pymysql://t_cond2_db:C2%2Bdb%40pw%2F2@db2.example.net:3306/nova_cell2"
    assert confs["t-cmp2"]["DEFAULT"]["transport_url"] == "rabbit://t_cmp2_mq:Cmp%2Bmq%40pw%3A3@mq.example.net:5672/cell2"
    for host in TEMPLATE_USERS:
        text = (rendered["root"] / host / "nova.conf").read_text(encoding="utf-8")
        others = [p for h, pair in TEMPLATE_USERS.items() if h != host for p in pair]
        assert not any(quote(p, safe="") in text for p in others), host


def test_no_inline_comments(rendered):
    for host in ALL_HOSTS:
        for line in (rendered["root"] / host / "nova.conf").read_text(encoding="utf-8").splitlines():
            if "=" in line:
                assert " #" not in line and " ;" not in line, (host, line)


def test_second_run_changes_nothing(rendered, run_playbook):
    # Same inputs; the validation (about 6 s of Nova imports per host, never a change) is left out here.
    result = run_playbook(PLAYBOOK, inventory=inventory(rendered["root"], nova_conf_validate=False), timeout=1200, extra_env=ENV)
    assert not result.failed, result.stdout[-3000:]
    assert {host: stats["changed"] for host, stats in result.stats.items() if stats["changed"]} == {}


def test_check_mode_reports_and_changes_nothing(rendered, run_playbook):
    root = rendered["root"]
    before = {host: (root / host / "nova.conf").read_bytes() for host in ALL_HOSTS}
    started = time.time()
    # The validation runs in check mode too; one host is enough to prove it leaves nothing behind.
    inv = inventory(root, nova_servicegroup_report_interval=7, nova_conf_validate=False, **rendered["extra"])
    inv["all"]["children"]["single"]["hosts"]["s-ctl"]["nova_conf_validate"] = True
    result = run_playbook(PLAYBOOK, inventory=inv, check=True, timeout=1200, extra_env=ENV)
    assert task(result, "Read the validator's verdict", "s-ctl")["ansible_facts"]["_nova_conf_verdict"]["status"] == "ok"
    assert not result.failed, result.stdout[-3000:]
    # The s- and t- hosts would change; the m- hosts set their own interval in their group.
    changed = {host for host, stats in result.stats.items() if stats["changed"]}
    assert changed == {h for h in ALL_HOSTS if not h.startswith("m-")}
    assert task(result, "Write nova.conf", "s-ctl")["changed"]
    assert {host: (root / host / "nova.conf").read_bytes() for host in ALL_HOSTS} == before
    # The validation's private directories are gone again.
    assert not [p for p in Path(tempfile.gettempdir()).glob("nova-cells-conf.*") if p.stat().st_mtime >= started]


def test_invalid_override_is_refused_before_writing(lab: Lab, rendered, run_playbook):
    root = rendered["root"]
    before = (root / "s-cmp" / "nova.conf").read_bytes()
    overrides = {"DEFAULT": {"report_intervall": 3}, "database": {"max_retries": "many"}}
    result = run_playbook(PLAYBOOK, inventory=inventory(root, nova_conf_overrides=overrides, **rendered["extra"]),
                          extravars={"nova_test_hosts": "s-cmp"}, timeout=600, extra_env=ENV)
    assert result.failed
    message = task(result, "Refuse options Nova does not know or cannot read", "s-cmp")["msg"]
    assert "[DEFAULT] report_intervall is not an option Nova 34.0.0 knows" in message
    assert "[database] max_retries has a value Nova cannot use" in message
    assert (root / "s-cmp" / "nova.conf").read_bytes() == before
    # A section Nova does not know (an out-of-tree driver's) passes when it is declared.
    result = run_playbook(PLAYBOOK, inventory=inventory(root, nova_conf_overrides={"my_driver": {"flavour": "x"}},
                                                        nova_conf_validate_ignore_sections=["my_driver"], **rendered["extra"]),
                          extravars={"nova_test_hosts": "s-cmp"}, timeout=600, extra_env=ENV)
    assert not result.failed, result.stdout[-3000:]
    assert read_conf(root / "s-cmp" / "nova.conf")["my_driver"] == {"flavour": "x"}
    result = run_playbook(PLAYBOOK, inventory=inventory(root, nova_conf_validate=False),
                          extravars={"nova_test_hosts": "s-cmp"}, timeout=600, extra_env=ENV)
    assert not result.failed and "my_driver" not in read_conf(root / "s-cmp" / "nova.conf")


def test_inventory_errors_are_explained(lab: Lab, rendered, run_playbook):
    root = rendered["root"]
    result = run_playbook(PLAYBOOK, inventory=inventory(root, nova_upgrade_levels_compute="auto", nova_conf_validate=False),
                          extravars={"nova_test_hosts": "s-ctl"}, timeout=600, extra_env=ENV)
    assert result.failed
    assert "LP#1815697" in task(result, "Refuse an inventory that nova.conf cannot express", "s-ctl")["msg"]
    # A host with API-level services and a compute of an isolated cell cannot have one transport_url.
    bad = inventory(root, nova_conf_validate=False)
    bad["all"]["children"]["nova_api"]["hosts"]["m-c2cmp"] = {}
    result = run_playbook(PLAYBOOK, inventory=bad, extravars={"nova_test_hosts": "m-c2cmp"}, timeout=600, extra_env=ENV)
    assert result.failed
    assert "one nova.conf has one transport_url" in task(result, "Refuse an inventory that nova.conf cannot express", "m-c2cmp")["msg"]
    # oslo.messaging cannot hand a RabbitMQ password with "/" to kombu: refused, and not shown.
    slashed = "Mq/pw+no"
    result = run_playbook(PLAYBOOK, inventory=inventory(root, nova_conf_validate=False, nova_rabbit_password=slashed),
                          extravars={"nova_test_hosts": "s-ctl"}, timeout=600, extra_env=ENV)
    assert result.failed
    assert 'contains "/", which oslo.messaging cannot pass' in task(result, "Refuse an inventory that nova.conf cannot express", "s-ctl")["msg"]
    assert slashed not in result.stdout and "Mq%2Fpw" not in result.stdout
