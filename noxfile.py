# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE)
"""nox sessions of nova.cells: antsibull-nox's (antsibull-nox.toml) and the ones it has no offline form for.

Run through tools/test.sh, which bootstraps the machine first and passes the sessions a phase list names.
"""

from __future__ import annotations

import os
import shlex
import shutil
import subprocess

import nox

try:
    import antsibull_nox
except ImportError:  # tools/bootstrap.sh installs it in $NOVA_CELLS_HOME/venv-nox (tools/requirements-nox.txt)
    raise SystemExit('antsibull-nox is missing: run tools/bootstrap.sh, then $NOVA_CELLS_HOME/venv-nox/bin/nox') from None

antsibull_nox.load_antsibull_nox_toml()

CTL_VENV = os.environ.get('NOVA_CELLS_CTL_VENV') or os.path.join(
    os.environ.get('NOVA_CELLS_HOME') or os.path.expanduser('~/.cache/nova-cells'), 'venv-ctl')
# ansible-test's Python: the controller's (3.11 on Debian 12, 3.13 on Debian 13).
PYTHON = os.environ.get('NOVA_CELLS_PYTHON_XY', '3.11')


def _controller_core():
    """X.Y of the controller venv's ansible-core (2.19 on Debian 12, 2.21 on Debian 13, 2.20 in tools/matrix.sh core-2.20)."""
    code = 'from ansible.release import __version__ as v; print(".".join(v.split(".")[:2]))'
    try:
        return subprocess.run([os.path.join(CTL_VENV, 'bin', 'python'), '-c', code], capture_output=True, text=True,
                              check=True).stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return '2.19'


ANSIBLE_CORE = _controller_core()

# ansible-test runs with --venv: its default, --docker, pulls images from a registry this network cannot reach.
for name, test in (('sanity', 'sanity'), ('units', 'units')):
    antsibull_nox.add_ansible_test_session(
        name=name,
        description=f'ansible-test {test} --venv --python {PYTHON} (ansible-core {ANSIBLE_CORE} from PyPI)',
        ansible_test_params=[test, '--color', 'no', '-v', '--venv', '--python', PYTHON],
        default=False,
        ansible_core_version=ANSIBLE_CORE,
        ansible_core_source='pypi',
        # antsibull-nox copies tests/output back into the checkout; ansible-test's delegation venv (.tmp) holds
        # links that do not survive the copy, and nothing there is a result.
        callback_after=lambda: shutil.rmtree('tests/output/.tmp', ignore_errors=True),
    )


def _pytest_args(session):
    """The pytest arguments: the session's posargs, else those tools/test.sh was given (NOVA_CELLS_PYTEST_ARGS)."""
    return session.posargs or shlex.split(os.environ.get('NOVA_CELLS_PYTEST_ARGS', ''))


def _ctl(session, *args, **kwargs):
    """Run a command with the controller venv (pytest, Molecule, the Nova lab's libraries) first on PATH."""
    env = {'PATH': f"{CTL_VENV}/bin:{os.environ['PATH']}", **kwargs.pop('env', {})}
    program = os.path.join(CTL_VENV, 'bin', args[0])
    session.run(program if os.path.exists(program) else args[0], *args[1:], env=env, external=True, **kwargs)


@nox.session(python=False, default=False)
def shellcheck(session):
    """shellcheck on tools/*.sh and .ci/run; antsibull-changelog lint (ruff is antsibull-nox's lint session)."""
    scripts = sorted(f'tools/{name}' for name in os.listdir('tools') if name.endswith('.sh'))
    session.run('shellcheck', '-x', *scripts, '.ci/run', external=True)
    _ctl(session, 'antsibull-changelog', 'lint')
    _ctl(session, 'antsibull-changelog', 'lint-changelog-yaml', 'changelogs/changelog.yaml')


@nox.session(python=False, default=False)
def build(session):
    """tests/test_collection_build.py: build, install, ansible-doc every module (with the controller venv)."""
    _ctl(session, 'python', '-m', 'pytest', '-p', 'no:cacheprovider', '-ra', 'tests/test_collection_build.py', *_pytest_args(session))


@nox.session(python=False, default=False)
def docs(session):
    """tools/docs.sh: Markdown guides to reStructuredText, antsibull-docs lint-collection-docs, then the Sphinx site.

    Not antsibull-nox's docs-check: the guides it would lint are generated from docs/*.md by the build.
    """
    session.run('tools/docs.sh', external=True)


@nox.session(python=False, default=False)
def integration(session):
    """pytest tests/integration: the real-Nova lab (two workers, one test file each at a time)."""
    workers = os.environ.get('NOVA_CELLS_PYTEST_WORKERS', '2')
    _ctl(session, 'python', '-m', 'pytest', '-p', 'no:cacheprovider', '-ra', '-n', workers, '--dist', 'loadfile',
         'tests/integration', *_pytest_args(session))


@nox.session(python=False, default=False)
def molecule(session):
    """tools/molecule.sh: the Molecule scenarios in parallel, each with its own ephemeral directory and container names."""
    _ctl(session, 'tools/molecule.sh', *session.posargs)


@nox.session(python=False, default=False)
def ee(session):
    """tools/ee.sh build and check: the execution environment (ansible-builder) on the lab's base image."""
    # The base image comes from tools/build-images.sh, which tools/test.sh may be running in the background.
    lock = os.path.join(os.environ.get('NOVA_CELLS_HOME') or os.path.expanduser('~/.cache/nova-cells'), 'build-images.lock')
    session.run('flock', '-w', '1800', lock, 'true', external=True)
    session.run('tools/ee.sh', 'build', external=True)
    session.run('tools/ee.sh', 'check', external=True)


@nox.session(python=False, default=False)
def debian13(session):
    """tools/matrix.sh: bootstrap, sanity, units and build in a Debian 13 container, then Molecule single_cell there."""
    env = {'NOVA_CELLS_MATRIX_PHASES': os.environ.get('NOVA_CELLS_MATRIX_PHASES', 'sanity units build')}
    session.run('tools/matrix.sh', *session.posargs, env=env, external=True)
