"""The lab: one private directory, private daemons and real Nova for one pytest session."""

from __future__ import annotations

import atexit
import contextlib
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote

import pymysql
import pymysql.cursors

from .infra import InfraService, MariaDB, Memcached, Placement, RabbitMQ, ZooKeeper
from .nova import FAIL_FAST_SECTIONS, CommandResult, NovaService, Sections, merge_sections, run_command, write_ini
from .ports import PortAllocator
from .processes import LabError, ManagedProcess, identity_alive, process_identity, rss_kib, stop_processes, wait_until

T = TypeVar("T")

NOVA_DB_USER = "nova"
# Both passwords contain URL-special characters on purpose: URLs must percent-encode them, and
# tests grep raw output for them (raw and encoded) to catch leaks.
NOVA_DB_PASSWORD = "N0va+p@ss/w:rd%!"
RABBIT_USER = "nova"
# No "/": oslo.messaging re-quotes the password with urllib's default safe="/" before handing it
# to kombu, so a "/" ends the authority and nova services fail with "Port could not be cast".
RABBIT_PASSWORD = "R@bb1t+q:w%rd!"
# noauth2 in Placement maps this token to the admin role.
PLACEMENT_TOKEN = "admin"
CELL0_DATABASE = "nova_cell0"
API_DATABASE = "nova_api"
NOVA_SERVICE_STOP_TIMEOUT = 15.0
# At teardown nobody waits for a graceful shutdown (a compute takes 5-10 s): SIGKILL comes sooner.
TEARDOWN_STOP_TIMEOUT = 5.0
KEEP_STALE_LABS_SECONDS = 2 * 24 * 3600
_NAME_PATTERN = re.compile(r"^[A-Za-z0-9_]+$")


def nova_cells_home() -> Path:
    return Path(os.environ.get("NOVA_CELLS_HOME") or Path.home() / ".cache" / "nova-cells")


def labs_root() -> Path:
    return Path(os.environ.get("NOVA_CELLS_LABS_DIR") or nova_cells_home() / "labs")


def keep_lab_requested() -> bool:
    return os.environ.get("NOVA_CELLS_KEEP_LAB", "").lower() in ("1", "true", "yes")


@dataclass(frozen=True)
class Cell:
    """A cell's own database and vhost, and the URLs that reach them."""

    name: str
    database: str
    vhost: str
    database_connection: str
    transport_url: str


def _interrupt(signum: int, _frame: object) -> None:
    # Turns SIGTERM/SIGHUP into what Ctrl-C does, so pytest runs the fixture finalizers.
    raise KeyboardInterrupt(f"received signal {signum}")


class Lab:  # pylint: disable=too-many-instance-attributes,too-many-public-methods  # the one facade tests use
    """Everything one test session runs. Daemons start on first use and stop in ``close()``."""

    def __init__(self, directory: Path, lab_id: str, registry_dir: Path) -> None:
        self.id = lab_id
        self.dir = directory
        self.log_dir = directory / "logs"
        self.pid_dir = directory / "pids"
        self.etc_dir = directory / "etc"
        for path in (self.log_dir, self.pid_dir, self.etc_dir, directory / "state", directory / "lock"):
            path.mkdir(parents=True, exist_ok=True)
        self.owner = process_identity(os.getpid()) or str(os.getpid())
        (directory / "owner").write_text(self.owner + "\n", encoding="ascii")
        self.ports = PortAllocator(registry_dir, self.owner)
        # The overlay every harness nova-manage call gets as its last --config-file.
        self.fail_fast_conf = write_ini(self.etc_dir / "fail-fast.conf", FAIL_FAST_SECTIONS)
        self.timings: dict[str, float] = {}
        self.cells: dict[str, Cell] = {}
        self.primary_cell: str | None = None
        self.nova_venv = Path(os.environ.get("NOVA_CELLS_NOVA_VENV") or nova_cells_home() / "venv-nova")
        self.nova_bin = self.nova_venv / "bin"
        self.nova_python = self.nova_bin / "python"
        # Daemons must not inherit the controller venv's Python settings.
        self.base_env = {key: value for key, value in os.environ.items() if key not in ("VIRTUAL_ENV", "PYTHONPATH", "PYTHONHOME")}
        self.nova_env = {**self.base_env, "PATH": f"{self.nova_bin}:{self.base_env.get('PATH', '/usr/bin:/bin')}"}
        self._infra: dict[str, InfraService] = {}
        self._services: dict[str, NovaService] = {}
        self._processes: list[ManagedProcess] = []
        self._previous_handlers: dict[int, Any] = {}
        self._reaper: subprocess.Popen[bytes] | None = None
        self._closed = False
        self.kept = False

    # ------------------------------------------------------------------ life cycle

    @classmethod
    def create(cls) -> Lab:
        """A new lab under ``$NOVA_CELLS_LABS_DIR`` (default ``$NOVA_CELLS_HOME/labs``)."""
        root = labs_root()
        root.mkdir(parents=True, exist_ok=True)
        _prune_stale_labs(root)
        lab_id = f"{os.getpid()}{secrets.token_hex(2)}"
        lab = cls(root / f"{time.strftime('%Y%m%d-%H%M%S')}-{lab_id}", lab_id, root / ".ports")
        lab._install_safety_nets()
        return lab

    def _install_safety_nets(self) -> None:
        atexit.register(self.close)
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGTERM, signal.SIGHUP):
                if signal.getsignal(sig) is signal.SIG_DFL:
                    self._previous_handlers[sig] = signal.signal(sig, _interrupt)
        # Last resort if pytest itself is SIGKILLed: a watchdog stops the recorded PIDs.
        with open(self.log_dir / "reaper.out", "ab") as output:
            self._reaper = subprocess.Popen(  # pylint: disable=consider-using-with  # stopped in close()
                [sys.executable, "-m", "harness.reaper", str(self.dir), self.owner],
                cwd=Path(__file__).resolve().parents[1],
                stdin=subprocess.DEVNULL,
                stdout=output,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )

    def close(self, keep: bool = False) -> None:
        """Stop everything this lab started; remove its directory unless ``keep`` or NOVA_CELLS_KEEP_LAB."""
        if self._closed:
            return
        self._closed = True
        try:
            self._stop_everything()
        finally:
            if self._reaper is not None:
                self._reaper.terminate()
                self._reaper.wait(timeout=10)
            self.ports.release_all()
            for sig, handler in self._previous_handlers.items():
                signal.signal(sig, handler)
            atexit.unregister(self.close)
            self.kept = keep or keep_lab_requested()
            if not self.kept:
                shutil.rmtree(self.dir, ignore_errors=True)

    def _stop_everything(self) -> None:
        stop_processes(self._services.values(), TEARDOWN_STOP_TIMEOUT)
        stop_processes([proc for proc in self._processes if proc.name != "epmd"], timeout=30)
        rabbitmq = self._infra.get("rabbitmq")
        if isinstance(rabbitmq, RabbitMQ):
            rabbitmq.stop_epmd_if_unused()

    def new_process(
        self, name: str, argv: list[str], *, env: Mapping[str, str] | None = None, extra_logs: Sequence[Path] = ()
    ) -> ManagedProcess:
        """A detached process whose PID file lives in this lab (the reaper's list)."""
        proc = ManagedProcess(name, argv, log_dir=self.log_dir, pid_dir=self.pid_dir, env=env or self.base_env, extra_logs=extra_logs)
        self._processes.append(proc)
        return proc

    def reserve_port(self) -> int:
        return self.ports.reserve()

    # ------------------------------------------------------------------ infrastructure

    def _infra_service(self, name: str, start: bool = True) -> Any:
        service = self._infra.get(name)
        if service is None:
            factories: dict[str, Callable[[], InfraService]] = {
                "mariadb": lambda: MariaDB(self),
                "rabbitmq": lambda: RabbitMQ(self, RABBIT_USER, RABBIT_PASSWORD),
                "memcached": lambda: Memcached(self),
                "zookeeper": lambda: ZooKeeper(self),
                "placement": lambda: Placement(self),
            }
            service = self._infra[name] = factories[name]()
        if start:
            service.start()
        return service

    @property
    def mariadb(self) -> MariaDB:
        return self._infra_service("mariadb")

    @property
    def rabbitmq(self) -> RabbitMQ:
        return self._infra_service("rabbitmq")

    @property
    def memcached(self) -> Memcached:
        return self._infra_service("memcached")

    @property
    def zookeeper(self) -> ZooKeeper:
        return self._infra_service("zookeeper")

    @property
    def placement(self) -> Placement:
        return self._infra_service("placement")

    def launch_in_background(self, *names: str) -> None:
        """Spawn slow daemons (e.g. "rabbitmq") now and probe them on first use."""
        for name in names:
            self._infra_service(name, start=False).launch()

    def stop_infra(self, name: str) -> None:
        """Stop one daemon, after whatever depends on it (Nova services, Placement)."""
        if name not in self._infra:
            return
        if name in ("mariadb", "rabbitmq", "placement"):
            self.stop_services()
        if name == "mariadb" and "placement" in self._infra:
            self._infra["placement"].stop()
        self._infra[name].stop()

    @contextlib.contextmanager
    def infra_outage(self, name: str) -> Iterator[InfraService]:
        """An outage of one daemon for the block: ``stop_infra(name)`` on entry; on exit (also after a
        failure) the daemon starts again (same datadir and port), and so does Placement if a MariaDB
        outage stopped it, so later tests in the session find the lab as it was. Nova services that
        ``stop_infra`` stopped are not restarted."""
        service = self._infra_service(name)
        placement = self._infra.get("placement")
        restart_placement = name == "mariadb" and placement is not None and placement.is_running()
        self.stop_infra(name)
        try:
            yield service
        finally:
            service.start()
            if restart_placement and placement is not None:
                placement.start()

    # ------------------------------------------------------------------ URLs and secrets

    def db_url(self, database: str, *, user: str = NOVA_DB_USER, password: str = NOVA_DB_PASSWORD) -> str:
        """``mysql+pymysql://`` URL of a lab database, user and password percent-encoded."""
        port = self._infra_service("mariadb", start=False).port
        return f"mysql+pymysql://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{port}/{database}"

    def transport_url(self, vhost: str = "", *, user: str = RABBIT_USER, password: str = RABBIT_PASSWORD) -> str:
        """``rabbit://`` URL of a lab vhost ("" is the default vhost "/"), user and password percent-encoded."""
        port = self._infra_service("rabbitmq", start=False).port
        return f"rabbit://{quote(user, safe='')}:{quote(password, safe='')}@127.0.0.1:{port}/{quote(vhost, safe='')}"

    @property
    def secrets(self) -> list[str]:
        """Every form in which a lab password could leak: raw and percent-encoded."""
        return [form for password in (NOVA_DB_PASSWORD, RABBIT_PASSWORD) for form in (password, quote(password, safe=""))]

    # ------------------------------------------------------------------ databases and vhosts

    def create_database(self, name: str) -> str:
        """Create a database (if missing) that the ``nova`` user may use; returns its name."""
        _check_name(name)
        mariadb = self.mariadb
        mariadb.execute(f"CREATE DATABASE IF NOT EXISTS `{name}`")
        # 127.0.0.1 for TCP (the server skips name resolution), localhost for the socket.
        for host in ("127.0.0.1", "localhost"):
            mariadb.execute("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (NOVA_DB_USER, host, NOVA_DB_PASSWORD))
            mariadb.execute(f"GRANT ALL PRIVILEGES ON `{name}`.* TO %s@%s", (NOVA_DB_USER, host))
        return name

    def drop_database(self, name: str) -> None:
        _check_name(name)
        self.mariadb.execute(f"DROP DATABASE IF EXISTS `{name}`")

    def clone_database(self, template: str, name: str) -> str:
        """A fresh database ``name`` with every table of ``template`` (a schema real nova-manage synced) and
        its alembic revision, but none of its rows: a synced schema in milliseconds. Returns its URL."""
        _check_name(template)
        self.drop_database(name)
        self.create_database(name)
        connection = self.db_connect(name, admin=True)
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"SHOW TABLES FROM `{template}`")
                for (table,) in cursor.fetchall():
                    cursor.execute(f"CREATE TABLE `{table}` LIKE `{template}`.`{table}`")
                cursor.execute(f"INSERT INTO alembic_version SELECT * FROM `{template}`.alembic_version")
        finally:
            connection.close()
        return self.db_url(name)

    def db_connect(self, database: str | None = None, *, admin: bool = False) -> pymysql.connections.Connection:
        """PyMySQL connection, autocommit on: as root over the socket (``admin``) or as ``nova`` over TCP."""
        mariadb = self.mariadb
        if admin:
            return mariadb.admin_connect(database)
        return pymysql.connect(
            host="127.0.0.1",
            port=mariadb.port,
            user=NOVA_DB_USER,
            password=NOVA_DB_PASSWORD,
            database=database,
            autocommit=True,
            connect_timeout=5,
        )

    def query(self, database: str | None, sql: str, args: Sequence[Any] | Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run one statement as root and return the rows as dicts (empty for statements without rows)."""
        connection = self.db_connect(database, admin=True)
        try:
            with connection.cursor(pymysql.cursors.DictCursor) as cursor:
                cursor.execute(sql, args)
                return list(cursor.fetchall())
        finally:
            connection.close()

    def create_vhost(self, vhost: str) -> str:
        """Create a RabbitMQ vhost the lab user may use; returns its transport URL."""
        self.rabbitmq.add_vhost(vhost)
        return self.transport_url(vhost)

    # ------------------------------------------------------------------ nova.conf files

    def cell(self, name: str) -> Cell:
        """Names and URLs of a cell (``nova_<name>`` database, vhost ``<name>``); creates nothing."""
        _check_name(name)
        database = f"nova_{name}"
        return Cell(name, database, name, self.db_url(database), self.transport_url(name))

    def _resolve_cell(self, cell: str | Cell | None) -> Cell:
        if isinstance(cell, Cell):
            return cell
        name = cell or self.primary_cell or "cell1"
        return self.cells.get(name) or self.cell(name)

    def write_config(self, name: str, sections: Sections) -> Path:
        """Write ``etc/<name>.conf`` from ``{section: {option: value}}`` (bools as true/false, lists comma-joined)."""
        return write_ini(self.etc_dir / f"{name}.conf", sections)

    def write_nova_conf(  # pylint: disable=too-many-arguments
        self,
        name: str,
        *,
        role: str,
        cell: str | Cell | None = None,
        host: str | None = None,
        report_interval: int = 10,
        service_down_time: int = 60,
        extra_sections: Sections | None = None,
    ) -> Path:
        """Write ``etc/<name>.conf`` for one of three roles (the nova.conf shape each service needs).

        ``api``: API DB + the cell's DB + the cell's MQ (nova-manage, superconductor, scheduler).
        ``conductor``: the cell's DB and MQ, no API DB. ``compute``: the cell's MQ, no DB sections,
        its own ``host``, ``state_path`` and ``lock_path``, the fake driver. ``extra_sections`` is
        merged last (a value of None removes an option).
        """
        target = self._resolve_cell(cell)
        host = host or name
        # Nova creates neither: the fake driver writes state_path/compute_id, locks go to lock_path.
        (self.dir / "state" / host).mkdir(exist_ok=True)
        (self.dir / "lock" / host).mkdir(exist_ok=True)
        sections: dict[str, dict[str, object]] = {
            "DEFAULT": {
                "transport_url": target.transport_url,
                "host": host,
                "my_ip": "127.0.0.1",
                "state_path": str(self.dir / "state" / host),
                "report_interval": report_interval,
                "service_down_time": service_down_time,
            },
            "oslo_concurrency": {"lock_path": str(self.dir / "lock" / host)},
            "placement": {
                "auth_type": "admin_token",
                "endpoint": self._infra_service("placement", start=False).url,
                "token": PLACEMENT_TOKEN,
            },
        }
        if role == "api":
            sections["api_database"] = {"connection": self.db_url(API_DATABASE)}
            sections["database"] = {"connection": target.database_connection}
            sections["conductor"] = {"workers": 1}
            sections["scheduler"] = {"workers": 1}
        elif role == "conductor":
            sections["database"] = {"connection": target.database_connection}
            sections["conductor"] = {"workers": 1}
        elif role == "compute":
            sections["DEFAULT"]["compute_driver"] = "fake.FakeDriverWithoutFakeNodes"
        else:
            raise ValueError(f"unknown nova.conf role {role!r} (api, conductor, compute)")
        return self.write_config(name, merge_sections(sections, extra_sections))

    def api_conf(self, cell: str | Cell | None = None) -> Path:
        """The API-level config of a cell (default: the primary cell), written on first use."""
        target = self._resolve_cell(cell)
        path = self.etc_dir / f"{target.name}-api.conf"
        return path if path.exists() else self.write_nova_conf(f"{target.name}-api", role="api", cell=target)

    def memcache_sections(self, backend: str = "dogpile.cache.pymemcache") -> dict[str, dict[str, object]]:
        """``extra_sections`` for the mc ServiceGroup driver against the lab's memcached (starts it)."""
        return {
            "DEFAULT": {"servicegroup_driver": "mc"},
            "cache": {"enabled": True, "backend": backend, "memcache_servers": self.memcached.servers},
        }

    # ------------------------------------------------------------------ nova-manage and the databases

    @property
    def nova_manage_command(self) -> list[str]:
        """The ``nova_manage`` option value for the collection's modules."""
        return [str(self.nova_bin / "nova-manage")]

    def nova_manage(self, *args: str, config_files: Sequence[Path | str] | None = None, timeout: float = 180) -> CommandResult:
        """Run real nova-manage with ``config_files`` (default: the primary cell's API config) + the fail-fast overlay."""
        files = [Path(path) for path in config_files] if config_files else [self.api_conf()]
        argv = self.nova_manage_command
        for path in [*files, self.fail_fast_conf]:
            argv += ["--config-file", str(path)]
        self._infra_service("mariadb")
        return run_command([*argv, *args], env=self.nova_env, timeout=timeout)

    def _timed_nova_manage(self, label: str, *args: str, config_files: Sequence[Path]) -> None:
        result = self.nova_manage(*args, config_files=config_files).check()
        self.timings[label] = round(result.seconds, 2)

    def setup_nova(self, cells: Sequence[str] = ("cell1",)) -> dict[str, Cell]:
        """API DB, cell0 and the given cells' DBs synced by real nova-manage, one vhost per cell.

        The first cell ever set up becomes the primary cell: its API config drives ``api_db sync``,
        ``map_cell0`` and ``db sync`` (which migrates cell0 and that cell). Every other cell is synced
        with its own API config and ``db sync --local_cell``. Calling again only adds missing cells.
        Cell mappings are not created (see ``create_cell_mapping``).
        """
        new = [name for name in dict.fromkeys(cells) if name not in self.cells]
        if not new:
            return self.cells
        started = time.monotonic()
        self.launch_in_background("rabbitmq")
        for name in new:
            self.create_database(self.cell(name).database)
            # Written here, not in the worker threads, so that ports are reserved in one thread.
            self.api_conf(name)
        primary = new[0] if self.primary_cell is None else None
        extras = new[1:] if primary else new
        with ThreadPoolExecutor(max_workers=len(new)) as pool:
            futures = [pool.submit(self._sync_local_cell, name) for name in extras]
            if primary:
                self._sync_api_and_cell0(primary)
                self.primary_cell = primary
            for future in futures:
                future.result()
        for name in new:
            self.create_vhost(name)
            self.cells[name] = self.cell(name)
        self.timings[f"setup_nova {','.join(new)}"] = round(time.monotonic() - started, 2)
        return self.cells

    def _sync_api_and_cell0(self, primary: str) -> None:
        self.create_database(API_DATABASE)
        self.create_database(CELL0_DATABASE)
        config = [self.api_conf(primary)]
        self._timed_nova_manage("api_db sync", "api_db", "sync", config_files=config)
        self._timed_nova_manage(
            "cell_v2 map_cell0", "cell_v2", "map_cell0", "--database_connection", self.db_url(CELL0_DATABASE), config_files=config
        )
        self._timed_nova_manage(f"db sync (cell0 + {primary})", "db", "sync", config_files=config)

    def _sync_local_cell(self, name: str) -> None:
        self._timed_nova_manage(f"db sync --local_cell ({name})", "db", "sync", "--local_cell", config_files=[self.api_conf(name)])

    def create_cell_mapping(self, cell: str | Cell, *, disabled: bool = False) -> str:
        """``cell_v2 create_cell`` for a set-up cell with both URLs given explicitly; returns the new UUID."""
        target = self._resolve_cell(cell)
        args = ["cell_v2", "create_cell", "--name", target.name, "--database_connection", target.database_connection]
        args += ["--transport-url", target.transport_url, "--verbose"] + (["--disabled"] if disabled else [])
        return self.nova_manage(*args).check().stdout.strip().splitlines()[-1]

    def common_module_args(self, cell: str | Cell | None = None) -> dict[str, Any]:
        """The collection's common module options for this lab: ``config_files`` and ``nova_manage``."""
        return {"config_files": [str(self.api_conf(cell))], "nova_manage": self.nova_manage_command}

    # ------------------------------------------------------------------ Nova services

    @property
    def services(self) -> dict[str, NovaService]:
        return dict(self._services)

    def start_service(
        self, binary: str, conf: Path | str | Sequence[Path | str], name: str | None = None, *, cell: str | None = None, host: str | None = None
    ) -> NovaService:
        """Start ``nova-<binary>`` with the given config file(s); MariaDB, RabbitMQ (and Placement for
        nova-compute and nova-scheduler) are started first. ``name`` names the log and PID files."""
        config_files = [Path(conf)] if isinstance(conf, (str, Path)) else [Path(path) for path in conf]
        name = name or f"{binary.removeprefix('nova-')}-{config_files[0].stem}"
        existing = self._services.get(name)
        if existing is not None and existing.is_running():
            raise LabError(f"a service named {name!r} is already running (PID {existing.pid})")
        self._infra_service("mariadb")
        self._infra_service("rabbitmq")
        if binary in ("nova-compute", "nova-scheduler"):
            self._infra_service("placement")
        service = NovaService(
            name, binary, config_files, nova_bin=self.nova_bin, env=self.nova_env, log_dir=self.log_dir, pid_dir=self.pid_dir, cell=cell, host=host
        )
        service.start()
        self._services[name] = service
        return service

    def _start_role(
        self, binary: str, role: str, *, cell: str | Cell | None, host: str, extra_config_files: Sequence[Path], conf_options: Mapping[str, Any]
    ) -> NovaService:
        target = self._resolve_cell(cell)
        name = f"{binary.removeprefix('nova-')}-{host}"
        conf = self.write_nova_conf(name, role=role, cell=target, host=host, **conf_options)
        return self.start_service(binary, [conf, *extra_config_files], name, cell=target.name, host=host)

    def start_conductor(
        self, cell: str | Cell | None = None, host: str | None = None, *, extra_config_files: Sequence[Path] = (), **conf_options: Any
    ) -> NovaService:
        """A cell conductor (``conductor`` role config, no API DB); host defaults to ``<cell>-conductor``."""
        target = self._resolve_cell(cell)
        host = host or f"{target.name}-conductor"
        return self._start_role("nova-conductor", "conductor", cell=target, host=host, extra_config_files=extra_config_files, conf_options=conf_options)

    def start_compute(
        self, cell: str | Cell | None = None, host: str = "compute1", *, extra_config_files: Sequence[Path] = (), **conf_options: Any
    ) -> NovaService:
        """A nova-compute with the fake driver; ``host`` must be unique in the lab and stays stable across restarts."""
        return self._start_role("nova-compute", "compute", cell=cell, host=host, extra_config_files=extra_config_files, conf_options=conf_options)

    def start_scheduler(
        self, cell: str | Cell | None = None, host: str = "scheduler", *, extra_config_files: Sequence[Path] = (), **conf_options: Any
    ) -> NovaService:
        """nova-scheduler with an API-level config of the cell."""
        return self._start_role("nova-scheduler", "api", cell=cell, host=host, extra_config_files=extra_config_files, conf_options=conf_options)

    def stop_services(self, services: Sequence[NovaService] | None = None, timeout: float = NOVA_SERVICE_STOP_TIMEOUT) -> None:
        """Stop the given Nova services (default: all) in parallel."""
        stop_processes(self._services.values() if services is None else services, timeout)

    @contextlib.contextmanager
    def service_scope(self) -> Iterator[Lab]:
        """Nova services started inside the block are stopped when it ends."""
        before = dict(self._services)
        try:
            yield self
        finally:
            started = [service for name, service in self._services.items() if before.get(name) is not service]
            self.stop_services(started, TEARDOWN_STOP_TIMEOUT)

    # ------------------------------------------------------------------ waiting for Nova

    @staticmethod
    def wait_until(
        probe: Callable[[], T], *, timeout: float, what: str, service: ManagedProcess | None = None, logs: Sequence[Path] = ()
    ) -> T:
        """Poll ``probe`` until truthy; fail fast if ``service`` dies; errors carry log tails."""
        return wait_until(probe, timeout=timeout, what=what, process=service, logs=logs, interval=0.5)

    def wait_for_service_row(
        self, cell: str | Cell | None, binary: str, host: str, *, timeout: float = 90, service: NovaService | None = None
    ) -> dict[str, Any]:
        """The live ``services`` row of ``binary`` on ``host`` in the cell DB, once it exists."""
        database = self._resolve_cell(cell).database
        sql = "SELECT * FROM services WHERE `binary` = %s AND host = %s AND deleted = 0"
        return self.wait_until(
            lambda: next(iter(self.query(database, sql, (binary, host))), None),
            timeout=timeout,
            what=f"a {binary} services row for host {host} in {database}",
            service=service,
        )

    def wait_for_compute_node(self, cell: str | Cell | None, host: str, *, timeout: float = 90, service: NovaService | None = None) -> dict[str, Any]:
        """The live ``compute_nodes`` row of ``host`` in the cell DB, once it exists."""
        database = self._resolve_cell(cell).database
        sql = "SELECT * FROM compute_nodes WHERE host = %s AND deleted = 0"
        return self.wait_until(
            lambda: next(iter(self.query(database, sql, (host,))), None),
            timeout=timeout,
            what=f"a compute_nodes row for host {host} in {database}",
            service=service,
        )

    def wait_for_heartbeat(
        self, cell: str | Cell | None, binary: str, host: str, *, after: int, timeout: float = 60, service: NovaService | None = None
    ) -> dict[str, Any]:
        """The ``services`` row once its ``report_count`` exceeds ``after`` (db ServiceGroup driver)."""
        database = self._resolve_cell(cell).database
        sql = "SELECT * FROM services WHERE `binary` = %s AND host = %s AND deleted = 0 AND report_count > %s"
        return self.wait_until(
            lambda: next(iter(self.query(database, sql, (binary, host, after))), None),
            timeout=timeout,
            what=f"report_count of {binary} on {host} in {database} to pass {after}",
            service=service,
        )

    # ------------------------------------------------------------------ measurements

    def rss_mib(self) -> dict[str, float]:
        """Resident memory of each running lab process (with its process group), in MiB."""
        usage = {}
        for proc in [*self._processes, *self._services.values()]:
            members = proc.remaining()
            if members:
                usage[proc.name] = round(rss_kib(members) / 1024, 1)
        return usage


def _check_name(name: str) -> None:
    if not _NAME_PATTERN.match(name):
        raise ValueError(f"{name!r}: use letters, digits and underscores only")


def _prune_stale_labs(root: Path) -> None:
    """Remove lab directories of sessions that ended (kept after a failure, or killed) over two days ago."""
    for directory in root.iterdir():
        owner_file = directory / "owner"
        try:
            age = time.time() - owner_file.stat().st_mtime
            owner = owner_file.read_text(encoding="ascii").strip()
        except OSError:
            # Not a lab, or another session is pruning it right now.
            continue
        if age > KEEP_STALE_LABS_SECONDS and not identity_alive(owner):
            shutil.rmtree(directory, ignore_errors=True)
