#!/usr/bin/env bash
# Prepare this machine (Debian 12 with Python 3.11, or Debian 13 with Python 3.13) for nova.cells
# development and tests.
#
# Idempotent and quiet: every step checks first and acts only when something is missing or
# out of date, so a second run takes about a second and prints one line. Steps:
#   1. $NOVA_CELLS_HOME/venv-nox from tools/requirements-nox.txt: nox, antsibull-nox (tools/test.sh) and
#      bindep (python3-venv first when the machine's Python cannot create venvs)
#   2. the Debian packages that `bindep -b test` reports missing (apt-get update only when needed)
#   3. /etc/containers/containers.conf for podman on these hosts (runc, ulimits)
#   4. $NOVA_CELLS_HOME/venv-ctl and venv-nova from the pinned tools/requirements-*.txt (the
#      controller's pins by Python: requirements-controller.txt for 3.11 with ansible-core 2.19,
#      requirements-controller-py313.txt for 3.13 with ansible-core 2.21)
#   5. containers.podman and ansible.posix, extracted from the ansible wheel (no Galaxy here)
#   6. ansible-test's get-pip stand-in in ~/.ansible/test/cache (its download host is unreachable)
# Environment: NOVA_CELLS_HOME (default ~/.cache/nova-cells), NOVA_CELLS_PYTHON (default python3.11,
# else python3).
# Command logs go to $NOVA_CELLS_HOME/logs/bootstrap-*.log; a failing step prints its tail.
set -euo pipefail

# shellcheck source=tools/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly PIP_VERSION=26.3
# The ansible package is used only as an offline source of collections.
readonly ANSIBLE_PACKAGE_VERSION=12.3.0
readonly EXTRACTED_COLLECTIONS=(containers.podman ansible.posix)
# ansible-core 2.19 bootstraps its test venvs with pip 24.2; the neighbours cover core bumps.
readonly GET_PIP_VERSIONS=(24.0 24.1 24.2 24.3 25.0 25.1 25.2 25.3)
readonly CONTAINERS_CONF=/etc/containers/containers.conf

steps_changed=0
step_started=""
step_title=""

begin_step() {
    step_title="$1"
    step_started="$(now)"
    log "bootstrap: ${step_title} ..."
}

end_step() {
    steps_changed=$((steps_changed + 1))
    log "bootstrap: ${step_title}: done in $(seconds_since "${step_started}") s"
}

# --- 1. Debian packages ---------------------------------------------------------------

# The packages of bindep.txt's "test" profile that are not installed: bindep's own answer.
missing_debian_packages() {
    local rc=0 missing
    missing="$("${NOX_VENV}/bin/bindep" -b -f "${NOVA_CELLS_REPO_ROOT}/bindep.txt" test)" || rc=$?
    # bindep exits 1 when something is missing, other codes on errors.
    [[ "${rc}" -le 1 ]] || die "bindep -b test failed (exit ${rc})"
    printf '%s\n' "${missing}" | grep -v '^$' || true
}

apt_lists_are_fresh() {
    # Lists younger than six hours are good enough to install from.
    find /var/lib/apt/lists -maxdepth 1 -name '*Packages*' -mmin -360 2>/dev/null | grep -q .
}

# shellcheck disable=SC2317  # called through run_logged
apt_install() {
    DEBIAN_FRONTEND=noninteractive apt-get install -y -q \
        -o Dpkg::Options::=--force-confdef -o Dpkg::Options::=--force-confold "$@"
}

# The one package bindep cannot name for itself: venvs (bindep's included) need Debian's python3-venv.
ensure_python_venv() {
    command -v dpkg-query >/dev/null || return 0
    "${NOVA_CELLS_PYTHON}" -c 'import ensurepip, venv' 2>/dev/null && return 0
    [[ "$(id -u)" -eq 0 ]] || die "${NOVA_CELLS_PYTHON} cannot create venvs: install python3-venv (as root)"
    begin_step "installing python3-venv (for the venv of bindep)"
    apt_lists_are_fresh || run_logged bootstrap-apt-update apt-get update -q
    run_logged bootstrap-apt-install apt_install python3-venv
    end_step
}

ensure_debian_packages() {
    command -v dpkg-query >/dev/null || { log "bootstrap: not a Debian system, skipping Debian packages"; return 0; }
    local missing
    missing="$(missing_debian_packages)"
    [[ -z "${missing}" ]] && return 0
    [[ "$(id -u)" -eq 0 ]] || die "missing Debian packages (run as root or install them): ${missing//$'\n'/ }"

    begin_step "installing Debian packages: ${missing//$'\n'/ }"
    # Without systemd, package scripts would start MariaDB, RabbitMQ and memcached on their
    # standard ports, where the test lab runs its own. A policy-rc.d that says "no" prevents it.
    local temporary_policy=""
    if [[ ! -e /usr/sbin/policy-rc.d ]]; then
        temporary_policy=/usr/sbin/policy-rc.d
        printf '#!/bin/sh\n# written by nova.cells tools/bootstrap.sh for the duration of apt-get install\nexit 101\n' >"${temporary_policy}"
        chmod 0755 "${temporary_policy}"
    fi
    local rc=0
    if ! apt_lists_are_fresh; then
        run_logged bootstrap-apt-update apt-get update -q || rc=$?
    fi
    # shellcheck disable=SC2086
    if [[ "${rc}" -eq 0 ]] && ! run_logged bootstrap-apt-install apt_install ${missing}; then
        # Fresh-looking lists can still point at superseded versions: refresh once and retry.
        rc=0
        run_logged bootstrap-apt-update apt-get update -q || rc=$?
        # shellcheck disable=SC2086
        [[ "${rc}" -eq 0 ]] && { run_logged bootstrap-apt-install apt_install ${missing} || rc=$?; }
    fi
    [[ -n "${temporary_policy}" ]] && rm -f "${temporary_policy}"
    [[ "${rc}" -eq 0 ]] || die "installing Debian packages failed"
    end_step
}

# --- 2. podman configuration -----------------------------------------------------------

containers_conf_text() {
    cat <<'EOF'
# Written by nova.cells tools/bootstrap.sh.
# runc: crun fails on these hosts' hybrid cgroups. default_ulimits: podman's default
# nofile (1048576) exceeds the hard limit that a process without CAP_SYS_RESOURCE may set.
[containers]
default_ulimits = ["nofile=1024:1024", "nproc=4096:4096"]

[engine]
runtime = "runc"
cgroup_manager = "cgroupfs"
events_logger = "file"
EOF
}

ensure_containers_conf() {
    cmp -s <(containers_conf_text) "${CONTAINERS_CONF}" && return 0
    [[ "$(id -u)" -eq 0 ]] || die "${CONTAINERS_CONF} needs updating: run as root"
    begin_step "writing ${CONTAINERS_CONF}"
    mkdir -p "$(dirname "${CONTAINERS_CONF}")"
    if [[ -e "${CONTAINERS_CONF}" ]]; then
        cp -p "${CONTAINERS_CONF}" "${CONTAINERS_CONF}.before-nova-cells"
        log "bootstrap: previous file kept as ${CONTAINERS_CONF}.before-nova-cells"
    fi
    containers_conf_text >"${CONTAINERS_CONF}"
    if command -v podman >/dev/null; then
        local runtime
        runtime="$(podman info --format '{{.Host.OCIRuntime.Name}}' 2>/dev/null || echo 'podman info failed')"
        [[ "${runtime}" == runc ]] || log "bootstrap: WARNING: podman reports OCI runtime '${runtime}', expected runc"
    fi
    end_step
}

# --- 3. virtual environments ------------------------------------------------------------

python_version_of() {
    "$1" -c 'import sys; print(".".join(map(str, sys.version_info[:3])))' 2>/dev/null
}

# Normalised distribution names (PEP 503) from requirement or freeze lines on stdin.
requirement_names() {
    grep -Ev '^[[:space:]]*(#|-|$)' | sed -E 's/[[:space:]]*[@=<>!~;[ ].*//; s/[-_.]+/-/g' \
        | tr '[:upper:]' '[:lower:]' | sort -u
}

# ensure_venv VENV REQUIREMENTS: create or update VENV so it holds exactly the pinned packages.
# A stamp in the venv records what it was built from; a matching stamp means nothing to do.
ensure_venv() {
    local venv="$1" requirements="$2"
    local python_version wanted_stamp stamp_file="$1/.nova-cells-stamp"
    python_version="$(python_version_of "${NOVA_CELLS_PYTHON}")" || die "${NOVA_CELLS_PYTHON} not found (set NOVA_CELLS_PYTHON)"
    wanted_stamp="python=${python_version} pip=${PIP_VERSION} requirements=$(sha256_of "${requirements}")"
    if [[ -f "${stamp_file}" && "$(cat "${stamp_file}")" == "${wanted_stamp}" ]] \
        && [[ "$(python_version_of "${venv}/bin/python")" == "${python_version}" ]]; then
        return 0
    fi

    begin_step "updating ${venv} from ${requirements#"${NOVA_CELLS_REPO_ROOT}"/}"
    local log_name
    log_name="bootstrap-$(basename "${venv}")"
    if [[ "$(python_version_of "${venv}/bin/python" || true)" != "${python_version}" ]]; then
        run_logged "${log_name}-create" "${NOVA_CELLS_PYTHON}" -m venv --clear "${venv}"
    fi
    local pip=("${venv}/bin/python" -m pip --disable-pip-version-check --no-input)
    run_logged "${log_name}-pip" "${pip[@]}" install --progress-bar off "pip==${PIP_VERSION}"
    run_logged "${log_name}-install" "${pip[@]}" install --progress-bar off -r "${requirements}"
    # Installing on top keeps updates fast; removing what the pins no longer name keeps it exact.
    local extras
    extras="$(comm -23 <("${pip[@]}" freeze | requirement_names) <(requirement_names <"${requirements}"))"
    if [[ -n "${extras}" ]]; then
        log "bootstrap: removing packages no longer pinned: ${extras//$'\n'/ }"
        # shellcheck disable=SC2086
        run_logged "${log_name}-uninstall" "${pip[@]}" uninstall -y ${extras}
    fi
    run_logged "${log_name}-check" "${pip[@]}" check
    printf '%s\n' "${wanted_stamp}" >"${stamp_file}"
    end_step
}

# The controller's pins for the Python of this machine.
controller_requirements() {
    case "${NOVA_CELLS_PYTHON_XY}" in
        3.11) printf '%s\n' "${NOVA_CELLS_REPO_ROOT}/tools/requirements-controller.txt" ;;
        3.13) printf '%s\n' "${NOVA_CELLS_REPO_ROOT}/tools/requirements-controller-py313.txt" ;;
        "") die "${NOVA_CELLS_PYTHON} not found (set NOVA_CELLS_PYTHON)" ;;
        *) die "${NOVA_CELLS_PYTHON} is Python ${NOVA_CELLS_PYTHON_XY}; supported: 3.11 (Debian 12), 3.13 (Debian 13); set NOVA_CELLS_PYTHON" ;;
    esac
}

# --- 4. collections from the ansible wheel ------------------------------------------------

ensure_collections() {
    local wanted_stamp="ansible==${ANSIBLE_PACKAGE_VERSION} ${EXTRACTED_COLLECTIONS[*]}"
    local stamp_file="${COLLECTIONS_DIR}/.nova-cells-stamp"
    if [[ -f "${stamp_file}" && "$(cat "${stamp_file}")" == "${wanted_stamp}" ]]; then
        return 0
    fi
    begin_step "extracting ${EXTRACTED_COLLECTIONS[*]} from ansible==${ANSIBLE_PACKAGE_VERSION}"
    local work
    rm -rf "${NOVA_CELLS_HOME}"/collections.tmp.*  # left by an interrupted run
    work="$(mktemp -d "${NOVA_CELLS_HOME}/collections.tmp.XXXXXX")"
    run_logged bootstrap-collections-download "${CTL_VENV}/bin/python" -m pip --disable-pip-version-check \
        download --no-deps --progress-bar off -d "${work}/wheel" "ansible==${ANSIBLE_PACKAGE_VERSION}"
    run_logged bootstrap-collections-extract "${CTL_VENV}/bin/python" - "${work}/wheel" "${work}/collections" \
        "${EXTRACTED_COLLECTIONS[@]}" <<'PY'
import pathlib
import sys
import zipfile

wheel_dir, destination, *names = sys.argv[1:]
(wheel,) = pathlib.Path(wheel_dir).glob("ansible-*.whl")
prefixes = {name: "ansible_collections/%s/" % name.replace(".", "/") for name in names}
with zipfile.ZipFile(wheel) as archive:
    members = [m for m in archive.namelist() if m.startswith(tuple(prefixes.values()))]
    for name, prefix in prefixes.items():
        if not any(m.startswith(prefix) for m in members):
            sys.exit("%s is not in %s" % (name, wheel.name))
    archive.extractall(destination, members)
PY
    printf '%s\n' "${wanted_stamp}" >"${work}/collections/.nova-cells-stamp"
    rm -rf "${COLLECTIONS_DIR}"
    mv "${work}/collections" "${COLLECTIONS_DIR}"
    rm -rf "${work}"
    end_step
}

# --- 5. ansible-test's pip bootstrap -----------------------------------------------------

# ansible-test runs this as get-pip.py in each new test venv:
#   python get_pip.py --disable-pip-version-check pip==X [--no-setuptools] [--no-wheel]
get_pip_standin_text() {
    cat <<'EOF'
"""Stand-in for get-pip.py, written by nova.cells tools/bootstrap.sh (the real one is not reachable)."""
import subprocess
import sys

args = [a for a in sys.argv[1:] if a not in ("--no-setuptools", "--no-wheel")]
# In a subprocess: in-process ensurepip sets PIP_CONFIG_FILE=/dev/null, which hides the CA
# bundle configured in /etc/pip.conf from the pip install that follows.
subprocess.check_call([sys.executable, "-m", "ensurepip", "--upgrade"])
subprocess.check_call([sys.executable, "-m", "pip", "install", "--disable-pip-version-check"] + args)
if "--no-setuptools" in sys.argv[1:]:
    subprocess.call([sys.executable, "-m", "pip", "uninstall", "-y", "-q", "setuptools"])
EOF
}

ensure_get_pip_standin() {
    local cache_dir="${HOME}/.ansible/test/cache" version target outdated=()
    for version in "${GET_PIP_VERSIONS[@]}"; do
        target="${cache_dir}/get_pip_${version//./_}.py"
        cmp -s <(get_pip_standin_text) "${target}" || outdated+=("${target}")
    done
    [[ "${#outdated[@]}" -eq 0 ]] && return 0
    begin_step "writing ansible-test's get-pip stand-in for pip ${GET_PIP_VERSIONS[*]}"
    mkdir -p "${cache_dir}"
    for target in "${outdated[@]}"; do
        get_pip_standin_text >"${target}"
    done
    end_step
}

main() {
    local started
    started="$(now)"
    mkdir -p "${NOVA_CELLS_HOME}"
    # Engineers share one checkout and one NOVA_CELLS_HOME: one bootstrap at a time.
    local lock_fd
    exec {lock_fd}>"${NOVA_CELLS_HOME}/.bootstrap.lock"
    if ! flock -n "${lock_fd}"; then
        log "bootstrap: waiting for another bootstrap to finish ..."
        flock "${lock_fd}"
    fi

    ensure_python_venv
    ensure_venv "${NOX_VENV}" "${NOVA_CELLS_REPO_ROOT}/tools/requirements-nox.txt"
    ensure_debian_packages
    ensure_containers_conf
    local controller_pins
    controller_pins="$(controller_requirements)"
    ensure_venv "${CTL_VENV}" "${controller_pins}"
    ensure_venv "${NOVA_VENV}" "${NOVA_CELLS_REPO_ROOT}/tools/requirements-nova.txt"
    ensure_collections
    ensure_get_pip_standin

    if [[ "${steps_changed}" -eq 0 ]]; then
        log "bootstrap: up to date (${NOVA_CELLS_HOME}, $(seconds_since "${started}") s)"
    else
        log "bootstrap: ${steps_changed} step(s) done in $(seconds_since "${started}") s (${NOVA_CELLS_HOME})"
    fi
}

main "$@"; exit "$?"  # on one line: editing this file during a run cannot add commands
