"""Connection plugin of the nova.cells lab: run tasks in a local podman container with nsenter.

The containers.podman.podman connection costs five `podman` invocations per task (mount, mkdir,
chmod, exec, rm: 0.3 to 1 s each on a busy 2-core machine); this one enters the container's
namespaces directly (a few milliseconds), supports pipelining (one process per module run), and
copies files through /proc/<pid>/root. Lab use only: it needs root on the same machine as the
container, and the task's processes keep the caller's cgroup and capabilities. Molecule's podman
driver still creates and removes the containers.
"""

from __future__ import annotations

DOCUMENTATION = """
name: nc_nsenter
short_description: Run tasks in a local podman container through nsenter (nova.cells lab)
description:
  - Enters the namespaces of the container's PID 1 with nsenter(1) and runs the command there with the
    environment of that PID 1. Files go through /proc/PID/root. Needs root on the container's host.
author: nova.cells contributors
options:
  remote_addr:
    description: The container's name.
    default: inventory_hostname
    vars:
      - name: inventory_hostname
      - name: ansible_host
  podman_executable:
    description: The podman command, to find the container's PID 1.
    default: podman
    vars:
      - name: ansible_podman_executable
"""

import shutil
import subprocess

from ansible.errors import AnsibleConnectionFailure, AnsibleError
from ansible.module_utils.common.text.converters import to_bytes, to_text
from ansible.plugins.connection import ConnectionBase
from ansible.utils.display import Display

display = Display()


class Connection(ConnectionBase):
    transport = "nc_nsenter"
    has_pipelining = True

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._pid = None
        self._env = None

    def _container_pid(self) -> str:
        name = self.get_option("remote_addr")
        try:
            result = subprocess.run(
                [self.get_option("podman_executable"), "inspect", "--type", "container", "--format", "{{.State.Pid}}", name],
                capture_output=True,
                check=False,
            )
        except OSError as error:
            raise AnsibleConnectionFailure("cannot run podman: %s" % error) from error
        pid = to_text(result.stdout).strip()
        if result.returncode != 0 or not pid.isdigit() or pid == "0":
            raise AnsibleConnectionFailure("container %s is not running: %s" % (name, to_text(result.stderr).strip() or pid))
        return pid

    def _connect(self):
        if not self._connected:
            self._pid = self._container_pid()
            try:
                with open("/proc/%s/environ" % self._pid, "rb") as handle:
                    pairs = [item.split(b"=", 1) for item in handle.read().split(b"\0") if b"=" in item]
            except OSError as error:
                raise AnsibleConnectionFailure("cannot read the environment of PID %s: %s" % (self._pid, error)) from error
            self._env = dict(pairs)
            self._env.setdefault(b"PATH", b"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin")
            self._env.setdefault(b"HOME", b"/root")
            display.vvv("nsenter into PID %s" % self._pid, host=self.get_option("remote_addr"))
            self._connected = True
        return self

    def exec_command(self, cmd, in_data=None, sudoable=False):
        super().exec_command(cmd, in_data=in_data, sudoable=sudoable)
        self._connect()
        argv = [
            "nsenter",
            "--target",
            self._pid,
            "--mount",
            "--uts",
            "--ipc",
            "--net",
            "--pid",
            "--root",
            "--wd=/",
            "/bin/sh",
            "-c",
            to_bytes(cmd, errors="surrogate_or_strict"),
        ]
        display.vvv("EXEC %s" % to_text(cmd), host=self.get_option("remote_addr"))
        process = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=self._env)
        stdout, stderr = process.communicate(in_data)
        return process.returncode, stdout, stderr

    def _path(self, path: str) -> bytes:
        self._connect()
        if not path.startswith("/"):
            path = "/root/" + path
        return to_bytes("/proc/%s/root%s" % (self._pid, path), errors="surrogate_or_strict")

    def put_file(self, in_path, out_path):
        super().put_file(in_path, out_path)
        display.vvv("PUT %s TO %s" % (in_path, out_path), host=self.get_option("remote_addr"))
        try:
            shutil.copyfile(to_bytes(in_path, errors="surrogate_or_strict"), self._path(out_path))
        except OSError as error:
            raise AnsibleError("failed to copy %s to %s: %s" % (in_path, out_path, error)) from error

    def fetch_file(self, in_path, out_path):
        super().fetch_file(in_path, out_path)
        display.vvv("FETCH %s TO %s" % (in_path, out_path), host=self.get_option("remote_addr"))
        try:
            shutil.copyfile(self._path(in_path), to_bytes(out_path, errors="surrogate_or_strict"))
        except OSError as error:
            raise AnsibleError("failed to fetch %s to %s: %s" % (in_path, out_path, error)) from error

    def close(self):
        self._connected = False
        self._pid = None
