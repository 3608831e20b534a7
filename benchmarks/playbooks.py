"""What the playbooks cost: the nova_conf role at inventory scale, and a no-op deploy of the multi_cell lab.

One command, two measurements (docs/scale.md, section "Playbooks"):

  $NOVA_CELLS_HOME/venv-ctl/bin/python benchmarks/playbooks.py scale [--hosts 500] [--forks 10] [--no-baseline]
  $NOVA_CELLS_HOME/venv-ctl/bin/python benchmarks/playbooks.py baseline-lab [--action converge|destroy]
  $NOVA_CELLS_HOME/venv-ctl/bin/python benchmarks/playbooks.py deploy --inventory DIR --baseline-inventory DIR [--rounds 2]

scale: the nova.cells.nova_conf role for N simulated compute hosts (local connection, each host writing
under its own directory) in one ansible-playbook run, first deploy then no-op, next to the floor of one
ansible.builtin.template task per host measured in the same run, and next to the role of the baseline
(main at commit 1b8400d, extracted with git archive into a temporary directory). Prints per run: wall
time, CPU seconds of the whole process tree (ansible-playbook, its workers and, with the local
connection, the modules), CPU seconds per host, peak memory of the tree (sum of RSS, sampled every
0.2 s) and the tasks per host from the play recap.

deploy: a no-op nova.cells.deploy, this checkout against a running multi_cell lab that this checkout
converged (tools/molecule.sh --action converge multi_cell; --inventory is the Molecule inventory
directory of the scenario, $NOVA_CELLS_HOME/molecule/<tag>/multi_cell/inventory), the baseline against
the multi_cell lab of the baseline's own scenario, converged by the baseline itself (baseline-lab:
the baseline extracted under $NOVA_CELLS_HOME/bench/, its own tools/molecule.sh --action converge
multi_cell; it prints its inventory directory for --baseline-inventory). Each side's no-op on the lab
it built: the baseline run against today's lab is no no-op (the baseline knows neither Keystone, Glance
and Neutron in nova.cells.lab_infra nor today's nova.conf: it rewrites Placement's and every Nova
host's configuration, restarts the services, and the computes do not come back), and today's run would
then rewrite them back. Today's lab holds more (Keystone, Glance, Neutron, the API services), so the
comparison favours the baseline. The runs alternate, so that machine load affects both alike; a timed
run that changes anything is marked "NOT A NO-OP". Prints wall and CPU seconds, the tasks per compute
host, the hosts changed, the nova-manage commands that ran (every nova.cells module reports each
nova-manage command line it runs in its result's ``commands``; the runs use the ansible.posix.json
callback), and each play's seconds (from the callback's play durations).

Settings assumed everywhere: linear strategy, pipelining on, no fact gathering (the playbooks do not
gather), no fact cache, forks as given (default 10).
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BASELINE_COMMIT = '1b8400d'
HOME = Path(os.environ.get('NOVA_CELLS_HOME') or Path.home() / '.cache' / 'nova-cells')
BIN = Path(sys.executable).parent


# -- the collection trees -----------------------------------------------------------------------

def collection_tree(root: Path, source: Path | None = None, commit: str | None = None) -> Path:
    """root/ansible_collections/nova/cells: a symlink to ``source``, or ``commit`` extracted with git archive."""
    target = root / 'ansible_collections' / 'nova' / 'cells'
    target.parent.mkdir(parents=True, exist_ok=True)
    if source is not None:
        target.symlink_to(source)
    else:
        target.mkdir()
        archive = subprocess.run(['git', '-C', str(REPO), 'archive', commit], check=True, capture_output=True).stdout
        subprocess.run(['tar', '-x', '-C', str(target)], input=archive, check=True)
    return root


# -- measuring one ansible-playbook run ---------------------------------------------------------

def _tree_rss(root_pid: int) -> int:
    """Sum of the resident memory (bytes) of root_pid and its descendants."""
    children: dict[int, list[int]] = {}
    rss: dict[int, int] = {}
    page = os.sysconf('SC_PAGE_SIZE')
    for entry in os.listdir('/proc'):
        if not entry.isdigit():
            continue
        try:
            with open(f'/proc/{entry}/stat', encoding='utf-8') as handle:
                fields = handle.read().rsplit(')', 1)[1].split()
        except OSError:
            continue
        pid, ppid = int(entry), int(fields[1])
        children.setdefault(ppid, []).append(pid)
        rss[pid] = int(fields[21]) * page
    total, todo = 0, [root_pid]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo.extend(children.get(pid, []))
    return total


def _seconds(duration: dict) -> float:
    """Seconds between the ISO timestamps of an ansible.posix.json duration ({start, end}); 0 if absent."""
    from datetime import datetime
    try:
        start, end = (datetime.fromisoformat(duration[key].replace('Z', '+00:00')) for key in ('start', 'end'))
    except (KeyError, ValueError):
        return 0.0
    return (end - start).total_seconds()


class Run:
    def __init__(self, label, argv, env, cwd=None):
        self.label = label
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.monotonic()
        env = dict(env, ANSIBLE_STDOUT_CALLBACK='ansible.posix.json')
        process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.peak = 0
        stop = threading.Event()

        def sample():
            while not stop.is_set():
                self.peak = max(self.peak, _tree_rss(process.pid))
                stop.wait(0.2)

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        self.output, self.errors = process.communicate()
        stop.set()
        sampler.join()
        self.wall = time.monotonic() - started
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        self.cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        self.rc = process.returncode
        if self.rc != 0:
            sys.stderr.write(self.output[-6000:] + self.errors[-3000:])
            raise SystemExit(f'{label}: ansible-playbook failed (rc {self.rc})')
        document = json.loads(self.output[self.output.index('{'):])
        self.plays = [(play['play']['name'], _seconds(play['play'].get('duration') or {})) for play in document['plays']]
        self.recap = {host: {key: int(stats.get(key, 0)) for key in ('ok', 'changed', 'unreachable', 'failed', 'skipped')}
                      for host, stats in document['stats'].items()}
        # Every nova-manage command line a module reports in its result (the modules report each one they run).
        self.nova_manage = []
        for play in document['plays']:
            for task in play['tasks']:
                for result in task['hosts'].values():
                    for item in [result] + list(result.get('results') or []):
                        if isinstance(item, dict):
                            self.nova_manage.extend(item.get('commands') or [])

    def tasks(self, host):
        stats = self.recap.get(host, {})
        return stats.get('ok', 0) + stats.get('failed', 0), stats.get('skipped', 0), stats.get('changed', 0)

    def changed_hosts(self):
        return sorted(host for host, stats in self.recap.items() if stats['changed'])


def playbook_env(collections: Path, forks: int, extra=None):
    env = dict(os.environ)
    env.update({
        'ANSIBLE_COLLECTIONS_PATH': f'{collections}:{HOME / "collections"}', 'ANSIBLE_PIPELINING': '1', 'ANSIBLE_FORKS': str(forks),
        'ANSIBLE_GATHERING': 'explicit', 'ANSIBLE_STRATEGY': 'linear', 'ANSIBLE_HOST_KEY_CHECKING': '0',
        'ANSIBLE_RETRY_FILES_ENABLED': '0', 'ANSIBLE_NOCOLOR': '1', 'ANSIBLE_DEPRECATION_WARNINGS': '0',
    })
    env.update(extra or {})
    return env


def print_table(rows, per_host):
    print(f'{"run":<44} {"wall s":>8} {"CPU s":>8} {"CPU s/host":>11} {"peak MiB":>9} {"tasks/host":>11} {"skipped":>8} {"changed hosts":>14}')
    for run, host in rows:
        executed, skipped, _changed = run.tasks(host)
        print(f'{run.label:<44} {run.wall:8.1f} {run.cpu:8.1f} {run.cpu / per_host:11.3f} {run.peak / 2**20:9.0f} '
              f'{executed:>11} {skipped:>8} {len(run.changed_hosts()):>14}')


# -- scale --------------------------------------------------------------------------------------

ROLE_PLAY = """\
- name: nova.conf on every host
  hosts: all
  gather_facts: false
  roles:
    - role: nova.cells.nova_conf
"""
FLOOR_PLAY = """\
- name: One template task per host (the floor)
  hosts: all
  gather_facts: false
  tasks:
    - name: Write a file like nova.conf
      ansible.builtin.template:
        src: floor.conf.j2
        dest: "{{ nova_conf_dir }}/floor.conf"
        mode: "0640"
"""
FLOOR_TEMPLATE = """\
# A file of the size of a compute's nova.conf, for {{ inventory_hostname }}.
[DEFAULT]
host = {{ inventory_hostname }}
transport_url = rabbit://nova:{{ nova_rabbit_password | urlencode }}@mq.example.net:5672/{{ nova_cell_name }}
state_path = /var/lib/nova
compute_driver = libvirt.LibvirtDriver

[oslo_concurrency]
lock_path = /var/lib/nova/tmp

[upgrade_levels]
compute = hibiscus
"""


def scale_inventory(root: Path, hosts: int) -> dict:
    names = [f'cmp{index:05d}' for index in range(hosts)]
    return {'all': {
        'vars': {
            'ansible_connection': 'local', 'ansible_python_interpreter': sys.executable,
            'nova_conf_dir': f'{root}/{{{{ inventory_hostname }}}}', 'nova_systemd_dir': f'{root}/{{{{ inventory_hostname }}}}/systemd',
            'nova_conf_group': 'root', 'nova_conf_restart_services': False, 'nova_conf_validate': False,
            'nova_database_host': 'db.example.net', 'nova_rabbit_hosts': ['mq.example.net'],
            'nova_database_password': 'Db+pw/1', 'nova_rabbit_password': 'Mq+pw:1', 'nova_api_mq_shared_cell': '',
            'nova_cells': {f'cell{index}': {} for index in range(1, 11)},
        },
        'children': {'nova_compute': {'hosts': {name: {'nova_cell_name': f'cell{index % 10 + 1}'} for index, name in enumerate(names)}}},
    }}, names


def scale(options):
    work = Path(tempfile.mkdtemp(prefix='nova-cells-bench.'))
    try:
        current = collection_tree(work / 'current', source=REPO)
        baseline = None if options.no_baseline else collection_tree(work / 'baseline', commit=BASELINE_COMMIT)
        (work / 'floor.conf.j2').write_text(FLOOR_TEMPLATE, encoding='utf-8')
        (work / 'floor.yml').write_text(FLOOR_PLAY.replace('src: floor.conf.j2', f'src: {work}/floor.conf.j2'), encoding='utf-8')
        (work / 'role.yml').write_text(ROLE_PLAY, encoding='utf-8')
        contenders = [('floor: one template task', current, 'floor.yml'), ('nova_conf role, this checkout', current, 'role.yml')]
        if baseline is not None:
            contenders.append((f'nova_conf role, baseline {BASELINE_COMMIT}', baseline, 'role.yml'))
        rows = []
        for phase in ('first deploy', 'no-op'):
            for label, collections, playbook in contenders:
                out = work / 'out' / re.sub(r'\W+', '-', label)
                inventory, names = scale_inventory(out, options.hosts)
                (work / 'inventory.json').write_text(json.dumps(inventory), encoding='utf-8')
                if playbook == 'floor.yml':  # the floor is the template task alone: its directories exist
                    for name in names:
                        (out / name).mkdir(parents=True, exist_ok=True)
                run = Run(f'{phase}: {label}', [str(BIN / 'ansible-playbook'), '-i', str(work / 'inventory.json'), str(work / playbook)],
                          playbook_env(collections, options.forks))
                if phase == 'no-op' and run.changed_hosts():
                    raise SystemExit(f'{run.label}: not a no-op, changed {run.changed_hosts()[:5]}')
                rows.append((run, names[0]))
                print(f'... {run.label}: {run.wall:.1f} s', file=sys.stderr)
        print(f'nova_conf role, {options.hosts} compute hosts in 10 cells, local connection, forks {options.forks}, linear, '
              'pipelining, no facts, validation off')
        print_table(rows, options.hosts)
        for phase in ('first deploy', 'no-op'):
            floor = next(run for run, _host in rows if run.label == f'{phase}: floor: one template task')
            role = next(run for run, _host in rows if run.label == f'{phase}: nova_conf role, this checkout')
            print(f'{phase}: role CPU per host / floor CPU per host = {role.cpu / floor.cpu:.2f}')
            base = next((run for run, _host in rows if run.label.startswith(f'{phase}: nova_conf role, baseline')), None)
            if base is not None:
                print(f'{phase}: baseline CPU / this checkout CPU = {base.cpu / role.cpu:.2f}')
    finally:
        shutil.rmtree(work, ignore_errors=True)


# -- deploy -------------------------------------------------------------------------------------

def deploy(options):
    work = Path(tempfile.mkdtemp(prefix='nova-cells-bench.'))
    try:
        current = collection_tree(work / 'current', source=REPO)
        baseline = collection_tree(work / 'baseline', commit=BASELINE_COMMIT)
        extra = {'ANSIBLE_CONNECTION_PLUGINS': str(REPO / 'extensions' / 'molecule' / 'shared' / 'connection_plugins'),
                 'ANSIBLE_TIMEOUT': '60'}
        sides = [('this checkout', current, options.inventory),
                 (f'baseline {BASELINE_COMMIT}, its own lab', baseline, options.baseline_inventory)]
        runs = []
        for round_ in range(options.rounds):
            for label, collections, inventory in sides:
                env = playbook_env(collections, options.forks, extra)
                playbook = collections / 'ansible_collections' / 'nova' / 'cells' / 'playbooks' / 'deploy.yml'
                run = Run(f'no-op deploy, {label} (round {round_ + 1})', [str(BIN / 'ansible-playbook'), '-i', inventory, str(playbook)], env)
                runs.append(run)
                print(f'... {run.label}: {run.wall:.1f} s, changed {run.changed_hosts()}', file=sys.stderr)
        load = os.getloadavg()
        print(f'no-op nova.cells.deploy of a multi_cell lab, forks {options.forks}, load average {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}')
        print('each side on the lab it converged itself: this checkout on today\'s multi_cell lab (with Keystone, Glance, Neutron),')
        print(f'the baseline {BASELINE_COMMIT} on the multi_cell lab of its own scenario (benchmarks/playbooks.py baseline-lab)')
        print(f'{"run":<52} {"hosts":>5} {"wall s":>7} {"CPU s":>7} {"tasks/compute":>14} {"skipped":>8} {"changed":>8} {"nova-manage":>12}')
        for run in runs:
            computes = sorted(host for host in run.recap if 'cmp' in host)
            executed, skipped, _changed = run.tasks(computes[0]) if computes else (0, 0, 0)
            flag = '  NOT A NO-OP' if run.changed_hosts() else ''
            print(f'{run.label:<52} {len(run.recap):>5} {run.wall:7.1f} {run.cpu:7.1f} {executed:>14} {skipped:>8} {len(run.changed_hosts()):>8} '
                  f'{len(run.nova_manage):>12}{flag}')
        print('seconds per play (the last round of each side):')
        for label, _collections, _inventory in sides:
            last = [run for run in runs if label in run.label][-1]
            print(f'  {label}:')
            for name, seconds in last.plays:
                print(f'    {seconds:7.1f}  {name}')
        mine = [run.wall for run in runs if 'this checkout' in run.label]
        base = [run.wall for run in runs if 'baseline' in run.label]
        print(f'baseline wall / this checkout wall = {min(base) / min(mine):.2f}x (best of {options.rounds}), '
              f'{statistics.median(base) / statistics.median(mine):.2f}x (median of {options.rounds})')
        lab = [sum(seconds for name, seconds in run.plays if name.startswith('Lab infrastructure')) for run in runs]
        mine_nova = min(run.wall - seconds for run, seconds in zip(runs, lab, strict=True) if 'this checkout' in run.label)
        base_nova = min(run.wall - seconds for run, seconds in zip(runs, lab, strict=True) if 'baseline' in run.label)
        print(f'without the lab infrastructure play: baseline {base_nova:.1f} s / this checkout {mine_nova:.1f} s = {base_nova / mine_nova:.2f}x')
    finally:
        shutil.rmtree(work, ignore_errors=True)


def baseline_lab(options):
    """The baseline's own multi_cell lab: the baseline extracted under $NOVA_CELLS_HOME/bench/, its own tools/molecule.sh."""
    root = HOME / 'bench' / f'baseline-{BASELINE_COMMIT}'
    target = root / 'ansible_collections' / 'nova' / 'cells'
    if options.action != 'destroy' or not target.exists():
        shutil.rmtree(root, ignore_errors=True)
        collection_tree(root, commit=BASELINE_COMMIT)
    # The baseline's molecule.sh names the containers and the ephemeral directory after a hash of the copy's path.
    tag = subprocess.run(['sha256sum'], input=str(target), capture_output=True, text=True, check=True).stdout[:4]
    subprocess.run([str(target / 'tools' / 'molecule.sh'), '--no-images', '--copy', str(target), '--action', options.action,
                    'multi_cell'], check=True)
    print(f'baseline lab inventory: {HOME / "molecule" / tag / "multi_cell" / "inventory"}')


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest='command', required=True)
    one = commands.add_parser('scale')
    one.add_argument('--hosts', type=int, default=500)
    one.add_argument('--forks', type=int, default=10)
    one.add_argument('--no-baseline', action='store_true')
    two = commands.add_parser('deploy')
    two.add_argument('--inventory', required=True)
    two.add_argument('--baseline-inventory', required=True)
    two.add_argument('--rounds', type=int, default=2)
    two.add_argument('--forks', type=int, default=10)
    three = commands.add_parser('baseline-lab')
    three.add_argument('--action', default='converge', choices=['converge', 'destroy'])
    options = parser.parse_args()
    {'scale': scale, 'deploy': deploy, 'baseline-lab': baseline_lab}[options.command](options)


if __name__ == '__main__':
    main()
