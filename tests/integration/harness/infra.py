"""Private infrastructure daemons of one lab: MariaDB, RabbitMQ, memcached, ZooKeeper, Placement.

Each daemon gets its own directory, its own ports on 127.0.0.1 and its own PID file, so several
labs can run side by side. None of them reads the machine-wide configuration in /etc.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import TYPE_CHECKING

import pymysql
from pymemcache.client.base import Client as MemcacheClient

from .ports import port_is_open
from .processes import LabError, ManagedProcess, stop_processes, wait_until

if TYPE_CHECKING:
    from .lab import Lab

RABBITMQ_SCRIPTS = Path("/usr/lib/rabbitmq/bin")
ZOOKEEPER_JARS = [Path("/usr/share/java/zookeeper.jar"), Path("/usr/share/java/slf4j-simple.jar")]
EPMD_PORT = 4369

PLACEMENT_LAUNCHER = '''\
"""Serve the Placement WSGI application on 127.0.0.1 (written by the nova.cells test harness)."""
import sys
from socketserver import ThreadingMixIn
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from placement.wsgi import api


class ThreadingWSGIServer(ThreadingMixIn, WSGIServer):
    daemon_threads = True


class QuietHandler(WSGIRequestHandler):
    def log_message(self, format, *args):
        pass


make_server("127.0.0.1", int(sys.argv[1]), api.application,
            server_class=ThreadingWSGIServer, handler_class=QuietHandler).serve_forever()
'''


class InfraService:
    """A daemon started on first use: ``launch()`` spawns it, ``start()`` also waits until it answers."""

    name = ""
    ready_timeout = 60.0

    def __init__(self, lab: Lab) -> None:
        self.lab = lab
        self.home = lab.dir / self.name
        self.home.mkdir(exist_ok=True)
        self.process: ManagedProcess | None = None
        self.startup_seconds: float | None = None
        self._launched_at = 0.0

    @property
    def pid(self) -> int | None:
        return self.process.pid if self.process else None

    @property
    def log_paths(self) -> list[Path]:
        return self.process.log_paths if self.process else []

    def is_running(self) -> bool:
        return self.process is not None and self.process.is_running()

    def start(self) -> InfraService:
        """Start (or restart after stop()) and wait until ready; a no-op when already ready."""
        if not self.is_running():
            self.launch()
            self._wait_ready(f"start {self.name}")
        elif self.startup_seconds is None:
            # Launched in the background: the time from launch to first use is only an upper bound.
            self._wait_ready(f"start {self.name} (background, upper bound)")
        return self

    def launch(self) -> None:
        """Spawn the daemon without waiting for it (lets slow daemons boot in the background)."""
        if self.is_running():
            return
        if self.process is None:
            self.process = self._create_process()
        self._launched_at = time.monotonic()
        self.process.start()
        self.startup_seconds = None

    def _wait_ready(self, label: str) -> None:
        wait_until(self._probe, timeout=self.ready_timeout, what=f"{self.name} to become ready", process=self.process)
        self.startup_seconds = time.monotonic() - self._launched_at
        self.lab.timings[label] = round(self.startup_seconds, 2)

    def stop(self, timeout: float = 30.0) -> None:
        if self.process is not None:
            stop_processes([self.process], timeout)
        self.startup_seconds = None

    @contextlib.contextmanager
    def frozen(self) -> Iterator[InfraService]:
        """SIGSTOP the daemon's process group for the block, SIGCONT after: a hung server that still accepts
        TCP connections (the kernel completes them) but never answers."""
        pid = self.pid
        if pid is None or not self.is_running():
            raise LabError(f"{self.name} is not running")
        os.killpg(pid, signal.SIGSTOP)
        try:
            yield self
        finally:
            os.killpg(pid, signal.SIGCONT)

    def _create_process(self) -> ManagedProcess:
        raise NotImplementedError

    def _probe(self) -> bool:
        raise NotImplementedError


class MariaDB(InfraService):
    """mariadbd with a private datadir, socket and port; root connects over the socket."""

    name = "mariadb"
    ready_timeout = 60.0
    server_options = (
        "--bind-address=127.0.0.1",
        "--skip-name-resolve",
        "--max-connections=1000",
        "--innodb-buffer-pool-size=64M",
        "--innodb-log-file-size=16M",
        "--innodb-flush-log-at-trx-commit=2",
        "--skip-innodb-doublewrite",
        "--character-set-server=utf8mb4",
        "--collation-server=utf8mb4_general_ci",
    )

    def __init__(self, lab: Lab) -> None:
        super().__init__(lab)
        self.port = lab.reserve_port()
        self.datadir = self.home / "data"
        # A private temporary directory: the server's temporary tables are files, and a shared /tmp that other
        # programs clean up made mariadb-install-db fail once ("Could not remove temporary table ... error: 2").
        self.tmpdir = self.home / "tmp"
        self.socket = self.home / "mysqld.sock"
        self.error_log = lab.log_dir / "mariadb.log"

    def _create_process(self) -> ManagedProcess:
        self.tmpdir.mkdir(parents=True, exist_ok=True)
        if not (self.datadir / "mysql").is_dir():
            self._install_db()
        argv = [
            "/usr/sbin/mariadbd",
            "--no-defaults",
            f"--datadir={self.datadir}",
            # The lab lives under /root, which the mysql user cannot enter.
            "--user=root",
            f"--port={self.port}",
            f"--socket={self.socket}",
            f"--pid-file={self.home / 'mariadbd.pid'}",
            f"--tmpdir={self.tmpdir}",
            f"--log-error={self.error_log}",
            *self.server_options,
        ]
        return self.lab.new_process(self.name, argv, extra_logs=[self.error_log])

    def _install_db(self) -> None:
        argv = [
            "mariadb-install-db",
            "--no-defaults",
            f"--datadir={self.datadir}",
            "--user=root",
            # root gets an empty password instead of unix_socket auth, which PyMySQL cannot do.
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
            "--innodb-log-file-size=16M",
            "--innodb-buffer-pool-size=64M",
            f"--tmpdir={self.tmpdir}",
        ]
        done = subprocess.run(argv, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise LabError(f"mariadb-install-db failed (rc {done.returncode}):\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")

    def _probe(self) -> bool:
        self.admin_connect().close()
        return True

    def admin_connect(self, database: str | None = None) -> pymysql.connections.Connection:
        """A root connection over the private socket, autocommit on."""
        return pymysql.connect(
            unix_socket=str(self.socket), user="root", password="", database=database, autocommit=True, connect_timeout=5
        )

    def execute(self, sql: str, args: tuple | dict | None = None) -> None:
        connection = self.admin_connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, args)
        finally:
            connection.close()


def erlang_binary(text: str) -> str:
    """``text`` as an Erlang binary literal for RabbitMQ's advanced.config: ``<<"...">>`` for
    printable ASCII, else its UTF-8 bytes as integers (``<<82,64,...>>``)."""
    if text.isascii() and text.isprintable():
        return '<<"%s">>' % text.replace("\\", "\\\\").replace('"', '\\"')
    return "<<%s>>" % ",".join(str(byte) for byte in text.encode("utf-8"))


class RabbitMQ(InfraService):
    """A RabbitMQ node of its own (``rabbit-<lab id>@localhost``) with a non-guest default user."""

    name = "rabbitmq"
    ready_timeout = 90.0

    def __init__(self, lab: Lab, user: str, password: str) -> None:
        super().__init__(lab)
        self.user = user
        self.password = password
        self.port = lab.reserve_port()
        self.dist_port = lab.reserve_port()
        self.node = f"rabbit-{lab.id}@localhost"
        self.log_base = self.home / "log"
        self._epmd: ManagedProcess | None = None

    @property
    def env(self) -> dict[str, str]:
        home = self.home
        return {
            **self.lab.base_env,
            # The Erlang cookie lives in $HOME: the server and rabbitmqctl must share it.
            "HOME": str(home / "home"),
            "LC_ALL": "C.UTF-8",
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(home / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.log_base),
            "RABBITMQ_CONFIG_FILE": str(home / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(home / "advanced.config"),
            "RABBITMQ_CONF_ENV_FILE": str(home / "rabbitmq-env.conf"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(home / "enabled_plugins"),
            "RABBITMQ_PID_FILE": str(home / "rabbitmq.pid"),
        }

    def _create_process(self) -> ManagedProcess:
        home = self.home
        (home / "home").mkdir(exist_ok=True)
        (home / "mnesia").mkdir(exist_ok=True)
        self.log_base.mkdir(exist_ok=True)
        (home / "rabbitmq-env.conf").write_text("", encoding="utf-8")
        (home / "enabled_plugins").write_text("[].\n", encoding="utf-8")
        (home / "rabbitmq.conf").write_text(
            "\n".join(
                [
                    f"listeners.tcp.default = 127.0.0.1:{self.port}",
                    "distribution.listener.interface = 127.0.0.1",
                    "",
                ]
            ),
            encoding="utf-8",
        )
        # The default user in advanced.config (Erlang terms), not in rabbitmq.conf: RabbitMQ 4.0
        # (Debian 13) reads "default_pass = a:b" as a tagged value; 3.10 (Debian 12) reads both.
        (home / "advanced.config").write_text(
            f"[{{rabbit, [{{default_user, {erlang_binary(self.user)}}}, {{default_pass, {erlang_binary(self.password)}}}]}}].\n",
            encoding="utf-8",
        )
        (home / "advanced.config").chmod(0o600)
        server_log = self.log_base / f"{self.node}.log"
        # rabbitmq-server under /usr/sbin would switch to the rabbitmq user; the real script runs as us.
        return self.lab.new_process(self.name, [str(RABBITMQ_SCRIPTS / "rabbitmq-server")], env=self.env, extra_logs=[server_log])

    def launch(self) -> None:
        if not self.is_running():
            self._ensure_epmd()
        super().launch()

    def _ensure_epmd(self) -> None:
        """Use the machine's epmd on 4369 if there is one; otherwise start one and remember it."""
        if port_is_open(EPMD_PORT):
            return
        epmd = self.lab.new_process("epmd", ["epmd", "-address", "127.0.0.1"], env={**self.lab.base_env, "ERL_EPMD_ADDRESS": "127.0.0.1"})
        epmd.start()
        # Another lab may have won the race for port 4369; its epmd serves us just as well.
        wait_until(lambda: port_is_open(EPMD_PORT), timeout=10, what="epmd on port 4369", logs=epmd.log_paths)
        if epmd.is_running():
            self._epmd = epmd

    def stop_epmd_if_unused(self) -> None:
        """Stop the epmd this lab started, unless other Erlang nodes (other labs) still use it."""
        if self._epmd is None or not self._epmd.is_running():
            return
        names = subprocess.run(["epmd", "-names"], capture_output=True, text=True, timeout=10, check=False).stdout
        if "name " not in names:
            self._epmd.stop(timeout=5)

    def _probe(self) -> bool:
        # The AMQP listener opens late in the boot; only then is one await_startup call worth its cost.
        if not port_is_open(self.port):
            return False
        return self.ctl("await_startup", "--timeout", "30", check=False).returncode == 0

    def ctl(self, *args: str, check: bool = True, timeout: float = 60) -> subprocess.CompletedProcess[str]:
        """Run ``rabbitmqctl -n <node> <args>`` against this node."""
        argv = [str(RABBITMQ_SCRIPTS / "rabbitmqctl"), "-n", self.node, *args]
        done = subprocess.run(argv, env=self.env, capture_output=True, text=True, timeout=timeout, check=False)
        if check and done.returncode != 0:
            raise LabError(f"rabbitmqctl {' '.join(args)} failed (rc {done.returncode}):\n{done.stdout}\n{done.stderr}")
        return done

    def add_vhost(self, vhost: str) -> None:
        """Create a vhost (if missing) and give the lab's user full rights on it."""
        self.ctl("add_vhost", vhost, check=False)
        self.ctl("set_permissions", "-p", vhost, self.user, ".*", ".*", ".*")


class Memcached(InfraService):
    name = "memcached"
    ready_timeout = 20.0

    def __init__(self, lab: Lab) -> None:
        super().__init__(lab)
        self.port = lab.reserve_port()

    @property
    def servers(self) -> str:
        """The value for ``[cache] memcache_servers``."""
        return f"127.0.0.1:{self.port}"

    def _create_process(self) -> ManagedProcess:
        # Foreground under setsid: with -d memcached drops privileges first and writes no pidfile.
        argv = ["memcached", "-u", "memcache", "-l", "127.0.0.1", "-p", str(self.port), "-U", "0", "-m", "64"]
        return self.lab.new_process(self.name, argv)

    def _probe(self) -> bool:
        client = MemcacheClient(("127.0.0.1", self.port), connect_timeout=1, timeout=1)
        try:
            return bool(client.version())
        finally:
            client.close()


class ZooKeeper(InfraService):
    """A standalone ZooKeeper with its own zoo.cfg and dataDir; heap capped, admin server off."""

    name = "zookeeper"
    ready_timeout = 60.0

    def __init__(self, lab: Lab) -> None:
        super().__init__(lab)
        self.port = lab.reserve_port()

    @property
    def hosts(self) -> str:
        """The connection string for kazoo (``KazooClient(hosts=...)``)."""
        return f"127.0.0.1:{self.port}"

    def _create_process(self) -> ManagedProcess:
        data_dir = self.home / "data"
        data_dir.mkdir(exist_ok=True)
        config = self.home / "zoo.cfg"
        config.write_text(
            "\n".join(
                [
                    "tickTime=2000",
                    f"dataDir={data_dir}",
                    f"clientPort={self.port}",
                    "clientPortAddress=127.0.0.1",
                    "admin.enableServer=false",
                    "4lw.commands.whitelist=ruok,mntr,stat,srvr",
                    "",
                ]
            ),
            encoding="utf-8",
        )
        classpath = ":".join(str(jar) for jar in ZOOKEEPER_JARS if jar.exists())
        argv = [
            "java",
            "-Xmx128m",
            "-XX:+UseSerialGC",
            "-XX:-UsePerfData",
            "-Dzookeeper.admin.enableServer=false",
            "-cp",
            classpath,
            "org.apache.zookeeper.server.quorum.QuorumPeerMain",
            str(config),
        ]
        return self.lab.new_process(self.name, argv)

    def four_letter_word(self, word: str) -> str:
        with socket.create_connection(("127.0.0.1", self.port), timeout=2) as sock:
            sock.sendall(word.encode("ascii"))
            chunks = []
            while chunk := sock.recv(4096):
                chunks.append(chunk)
        return b"".join(chunks).decode("utf-8", errors="replace")

    def _probe(self) -> bool:
        return self.four_letter_word("ruok") == "imok"


class Placement(InfraService):
    """Real openstack-placement (noauth2) under a threaded wsgiref server from the Nova venv."""

    name = "placement"
    ready_timeout = 90.0
    database = "placement"

    def __init__(self, lab: Lab) -> None:
        super().__init__(lab)
        self.port = lab.reserve_port()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def _create_process(self) -> ManagedProcess:
        self.lab.create_database(self.database)
        (self.home / "placement.conf").write_text(
            "\n".join(
                [
                    "[api]",
                    "auth_strategy = noauth2",
                    "[placement_database]",
                    f"connection = {self.lab.db_url(self.database)}",
                    "sync_on_startup = true",
                    "",
                ]
            ),
            encoding="utf-8",
        )
        launcher = self.home / "launcher.py"
        launcher.write_text(PLACEMENT_LAUNCHER, encoding="utf-8")
        env = {**self.lab.nova_env, "OS_PLACEMENT_CONFIG_DIR": str(self.home)}
        return self.lab.new_process(self.name, [str(self.lab.nova_python), str(launcher), str(self.port)], env=env)

    def _probe(self) -> bool:
        with urllib.request.urlopen(self.url + "/", timeout=2) as response:
            return response.status == 200
