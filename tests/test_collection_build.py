# Copyright: nova.cells contributors
# Apache License 2.0 (see LICENSE or https://www.apache.org/licenses/LICENSE-2.0)
"""Build the collection as a release would, install the tarball, and check what ships.

Run by ``tools/test.sh build`` with the controller venv's pytest, ansible-galaxy and ansible-doc
(outside tests/unit, which ansible-test units collects).
The source is copied first, with a sentinel file in every developer-only directory, so the
``build_ignore`` assertions hold something to exclude even where those directories are empty.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
import yaml

COLLECTION_ROOT = Path(__file__).resolve().parents[1]
GALAXY = yaml.safe_load((COLLECTION_ROOT / "galaxy.yml").read_text(encoding="utf-8"))
FQCN_PREFIX = f"{GALAXY['namespace']}.{GALAXY['name']}"
MODULES = sorted(path.stem for path in (COLLECTION_ROOT / "plugins" / "modules").glob("*.py") if path.name != "__init__.py")
# Content a user needs: every file under these must be in the installed collection.
SHIPPED_DIRS = ("plugins", "roles", "playbooks", "meta")
# Developer-only content that build_ignore must keep out of the tarball.
NOT_SHIPPED = (".ci", "benchmarks", "tools", "tests/output")
SENTINEL = "build-test-sentinel.txt"
# Local state that is not source (git-ignored, or written by tools), left out of the copy.
LOCAL_STATE_ANYWHERE = {"__pycache__", ".pytest_cache", ".ruff_cache", ".cache", ".ansible"}
LOCAL_STATE_AT_ROOT = {".git", "build"}


def tool(name: str) -> str:
    """Prefer the Ansible CLI next to this interpreter (the controller venv)."""
    candidate = Path(sys.executable).parent / name
    found = str(candidate) if candidate.exists() else shutil.which(name)
    assert found, f"{name} not found next to {sys.executable} or on PATH"
    return found


def run(args: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(args, capture_output=True, text=True, env=env, check=False, timeout=300)
    assert result.returncode == 0, f"{' '.join(args)} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result


def source_files(root: Path, top: str) -> set[str]:
    base = root / top
    return {
        str(path.relative_to(root))
        for path in base.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc"
    }


def ignore_local_state(directory: str, names: list[str]) -> set[str]:
    here = Path(directory)
    ignored = LOCAL_STATE_ANYWHERE.intersection(names)
    if here == COLLECTION_ROOT:
        ignored |= LOCAL_STATE_AT_ROOT.intersection(names)
    if here == COLLECTION_ROOT / "tests" and "output" in names:
        ignored.add("output")
    return ignored


@pytest.fixture(scope="module")
def source_tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("source") / "cells"
    shutil.copytree(COLLECTION_ROOT, root, ignore=ignore_local_state)
    for relative in NOT_SHIPPED:
        (root / relative).mkdir(parents=True, exist_ok=True)
        (root / relative / SENTINEL).write_text("must not be shipped\n", encoding="utf-8")
    return root


@pytest.fixture(scope="module")
def tarball(source_tree: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    output = tmp_path_factory.mktemp("dist")
    run([tool("ansible-galaxy"), "collection", "build", "--output-path", str(output), str(source_tree)])
    (built,) = output.glob("*.tar.gz")
    return built


@pytest.fixture(scope="module")
def collections_root(tarball: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A clean collections path holding only the installed tarball."""
    root = tmp_path_factory.mktemp("collections")
    run([tool("ansible-galaxy"), "collection", "install", "--offline", "-p", str(root), str(tarball)])
    return root


@pytest.fixture(scope="module")
def installed(collections_root: Path) -> Path:
    return collections_root / "ansible_collections" / GALAXY["namespace"] / GALAXY["name"]


@pytest.fixture(scope="module")
def ansible_env(collections_root: Path) -> dict[str, str]:
    env = dict(os.environ)
    env.update(ANSIBLE_COLLECTIONS_PATH=str(collections_root), ANSIBLE_NOCOLOR="1", ANSIBLE_FORCE_COLOR="0")
    return env


def test_tarball_carries_galaxy_metadata(tarball: Path, installed: Path) -> None:
    assert tarball.name == f"{GALAXY['namespace']}-{GALAXY['name']}-{GALAXY['version']}.tar.gz"
    info = json.loads((installed / "MANIFEST.json").read_text(encoding="utf-8"))["collection_info"]
    for key in ("namespace", "name", "version", "license"):
        assert info[key] == GALAXY[key], key


def test_installed_collection_has_all_content(source_tree: Path, installed: Path) -> None:
    missing = set()
    for top in SHIPPED_DIRS:
        if (source_tree / top).is_dir():
            missing |= {path for path in source_files(source_tree, top) if not (installed / path).is_file()}
    for top_file in ("README.md", "LICENSE"):
        if not (installed / top_file).is_file():
            missing.add(top_file)
    assert not missing, f"not in the installed collection: {sorted(missing)}"


@pytest.mark.parametrize("relative", NOT_SHIPPED)
def test_build_ignore_keeps_developer_content_out(tarball: Path, installed: Path, relative: str) -> None:
    assert not (installed / relative).exists()
    with tarfile.open(tarball) as archive:
        members = [name for name in archive.getnames() if name == relative or name.startswith(f"{relative}/")]
    assert not members, f"shipped although build_ignore should exclude it: {members}"


def test_ansible_doc_lists_exactly_the_module_files(ansible_env: dict[str, str]) -> None:
    assert MODULES, "no modules in plugins/modules"
    result = run([tool("ansible-doc"), "-t", "module", "--json", "-l", FQCN_PREFIX], env=ansible_env)
    assert sorted(json.loads(result.stdout)) == [f"{FQCN_PREFIX}.{name}" for name in MODULES]


@pytest.mark.parametrize("module", MODULES)
def test_ansible_doc_renders_module(ansible_env: dict[str, str], module: str) -> None:
    result = run([tool("ansible-doc"), "-t", "module", f"{FQCN_PREFIX}.{module}"], env=ansible_env)
    assert f"> MODULE {FQCN_PREFIX}.{module} " in result.stdout, result.stdout + result.stderr
    assert "[WARNING]" not in result.stderr and "[ERROR]" not in result.stderr, result.stderr
