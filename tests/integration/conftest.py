"""Fixtures of the real-Nova integration lab; tests/integration/README.md documents them.

Fixture functions carry a ``_fixture`` suffix and are registered under their short name, so that
fixture parameters never shadow module-level names.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from harness import AnsibleRunner, Cell, Lab, ModuleResult, PlaybookResult
from harness.figures import ensure_figures_dir, figures_table, remove_figures_dir
from harness.infra import MariaDB, Memcached, Placement, RabbitMQ, ZooKeeper
from harness.lab import nova_cells_home

LAB_KEY = pytest.StashKey[Lab]()


@pytest.fixture(name="lab", scope="session")
def lab_fixture(request: pytest.FixtureRequest) -> Iterator[Lab]:
    """The session's lab: a private directory; daemons start on first use, everything stops at the end."""
    lab = Lab.create()
    request.config.stash[LAB_KEY] = lab
    yield lab
    lab.close(keep=request.session.testsfailed > 0)


@pytest.fixture(name="mariadb", scope="session")
def mariadb_fixture(lab: Lab) -> Iterator[MariaDB]:
    yield lab.mariadb
    lab.stop_infra("mariadb")


@pytest.fixture(name="rabbitmq", scope="session")
def rabbitmq_fixture(lab: Lab) -> Iterator[RabbitMQ]:
    yield lab.rabbitmq
    lab.stop_infra("rabbitmq")


@pytest.fixture(name="memcached", scope="session")
def memcached_fixture(lab: Lab) -> Iterator[Memcached]:
    yield lab.memcached
    lab.stop_infra("memcached")


@pytest.fixture(name="zookeeper", scope="session")
def zookeeper_fixture(lab: Lab) -> Iterator[ZooKeeper]:
    yield lab.zookeeper
    lab.stop_infra("zookeeper")


@pytest.fixture(name="placement", scope="session")
def placement_fixture(lab: Lab) -> Iterator[Placement]:
    yield lab.placement
    lab.stop_infra("placement")


@pytest.fixture(name="nova_lab", scope="session")
def nova_lab_fixture(lab: Lab) -> Lab:
    """The lab with nova_api, nova_cell0 and nova_cell1 synced by real nova-manage, and vhost cell1.

    Deliberately not built on the ``rabbitmq`` fixture: RabbitMQ boots in the background during the
    DB sync. Whatever this starts is stopped by ``lab``.
    """
    lab.setup_nova(("cell1",))
    return lab


@pytest.fixture(name="cell1", scope="session")
def cell1_fixture(nova_lab: Lab) -> Cell:
    return nova_lab.cells["cell1"]


@pytest.fixture(name="nova_services")
def nova_services_fixture(nova_lab: Lab) -> Iterator[Lab]:
    """``nova_lab``, but Nova services started through it stop when the test ends."""
    with nova_lab.service_scope():
        yield nova_lab


@pytest.fixture(name="ansible_runner", scope="session")
def ansible_runner_fixture(lab: Lab) -> AnsibleRunner:
    return AnsibleRunner(lab.dir / "ansible")


@pytest.fixture(name="run_module", scope="session")
def run_module_fixture(ansible_runner: AnsibleRunner) -> Callable[..., ModuleResult]:
    return ansible_runner.run_module


@pytest.fixture(name="run_playbook", scope="session")
def run_playbook_fixture(ansible_runner: AnsibleRunner) -> Callable[..., PlaybookResult]:
    return ansible_runner.run_playbook


def pytest_configure(config: pytest.Config) -> None:
    """Create the figures directory in the controlling process, before xdist starts its workers."""
    del config
    ensure_figures_dir()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter, config: pytest.Config) -> None:
    figures = figures_table()
    if figures:
        terminalreporter.section("nova.cells figures")
        for line in figures:
            terminalreporter.write_line(line)
        if not hasattr(config, "workerinput"):
            report = nova_cells_home() / "logs" / "figures.txt"
            report.parent.mkdir(parents=True, exist_ok=True)
            report.write_text("\n".join(figures) + "\n", encoding="utf-8")
            terminalreporter.write_line(f"(also written to {report})")
    lab = config.stash.get(LAB_KEY, None)
    if lab is None:
        return
    terminalreporter.section("nova.cells lab")
    for label, seconds in lab.timings.items():
        terminalreporter.write_line(f"{label:<44} {seconds:6.1f} s")
    if lab.kept:
        terminalreporter.write_line(f"lab kept for inspection: {lab.dir}")


def pytest_unconfigure(config: pytest.Config) -> None:
    if not hasattr(config, "workerinput"):
        remove_figures_dir()
