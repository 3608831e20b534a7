#!/usr/bin/env bash
# The Debian 13 leg of the nova.cells test matrix (tools/test.sh phase debian13): the newest
# ansible-core on Debian 13's Python 3.13, in a local Debian 13 container, since the host has
# Debian 12 and Python 3.11 only.
#
# Usage: tools/matrix.sh [STEP...]
#
# Steps (default: tests molecule), in this order:
#   tests      tools/bootstrap.sh as on a Debian 13 host (Python 3.13, ansible-core 2.21 controller,
#              the Debian packages of bindep.txt from trixie), then
#              tools/test.sh --no-bootstrap $NOVA_CELLS_MATRIX_PHASES (default: sanity units build
#              integration) with that controller
#   molecule   molecule test single_cell with the 2.21 controller and Debian 13 managed nodes
#              (tools/molecule.sh --nodes trixie): Molecule in the container drives the host's
#              podman through a `podman` wrapper that enters the host's namespaces
#   core-2.20  ansible-core 2.20: sanity and units with a venv of tools/requirements-core-2.20.txt
#   demo       the README's main command on a Debian 13 host: tools/demo.sh (bootstrap, images, the
#              multi-cell lab with Debian 13 nodes, a server booted into each cell, the status table),
#              then tools/demo.sh down
#
# How: tools/build-images.sh --suite trixie builds localhost/nova-cells/base:trixie (and the nova and
# infra images of the Debian 13 nodes); tools/bootstrap.sh in a container of it, committed as
# localhost/nova-cells/matrix:trixie (again only when the base or bindep.txt changes), is where the
# steps run: one privileged container,
# with the host's PID and network namespaces (the lab's nsenter connection needs the nodes' PIDs),
# the checkout mounted at its own path, and its own state directory $NOVA_CELLS_HOME/debian13
# (venvs, caches, logs) mounted at the same path, so that paths mean the same inside and out.
# The bootstrap runs again there (finding everything in place, it proves the idempotent run); the
# apt, pip and ansible-test caches of that directory spare downloads.
# Output: each step's output, then a table of steps, results and seconds. Exit status 1 if any
# step failed.
# Steps run by name (step_<name>) inside the container, which shellcheck cannot follow:
# shellcheck disable=SC2317
set -euo pipefail

# shellcheck source=tools/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly ALL_STEPS=(tests molecule core-2.20 demo)
readonly DEFAULT_STEPS=(tests molecule)
readonly BASE_IMAGE=localhost/nova-cells/base:trixie
# BASE_IMAGE after a full tools/bootstrap.sh (its Debian packages installed), labelled with the hash
# of its inputs (the base's image id, bindep.txt, this recipe): built again when they change.
readonly RUNNER_IMAGE=localhost/nova-cells/matrix:trixie
readonly RUNNER_RECIPE="v1 bootstrap.sh on base:trixie, podman commit"
readonly LABEL_KEY=nova-cells.inputs-hash

# --- inside the container -----------------------------------------------------------------------

# `podman` for Molecule: the host's podman, run in the host's mount, UTS, IPC and network namespaces,
# those of tools/matrix.sh on the host (NOVA_CELLS_HOST_PID; the container shares the host's PID
# namespace). Not PID 1's: where the host is itself a container, entering those is not permitted.
install_podman_wrapper() {
    [[ -n "${NOVA_CELLS_HOST_PID:-}" ]] || die "NOVA_CELLS_HOST_PID is not set (tools/matrix.sh sets it)"
    cat >/usr/local/bin/podman <<EOF
#!/bin/sh
# Written by nova.cells tools/matrix.sh: the host's podman, for Molecule in this container.
exec nsenter --target ${NOVA_CELLS_HOST_PID} --mount --uts --ipc --net -- /usr/bin/podman "\$@"
EOF
    chmod 0755 /usr/local/bin/podman
    hash -r
}

declare -A step_result=() step_seconds=()

# run_step NAME COMMAND...: run one step, record its result and seconds.
run_step() {
    local name="$1" started rc=0
    shift
    log ""
    log "[matrix] ==> ${name}"
    started="$(now)"
    "$@" || rc=$?
    step_seconds[${name}]="$(seconds_since "${started}")"
    step_result[${name}]="$([[ ${rc} -eq 0 ]] && echo passed || echo failed)"
    log "[matrix] <== ${name}: ${step_result[${name}]} in ${step_seconds[${name}]} s"
}

step_tests() {
    local phases
    read -r -a phases <<<"${NOVA_CELLS_MATRIX_PHASES:-sanity units build integration}"
    "${NOVA_CELLS_REPO_ROOT}/tools/test.sh" --no-bootstrap "${phases[@]}"
}

# ansible-core 2.20 in a venv of its own; tools/test.sh's sanity and units phases with that venv as
# the controller (NOVA_CELLS_CTL_VENV).
step_core_2_20() {
    local venv="${NOVA_CELLS_HOME}/venv-core-2.20"
    ensure_tool_venv "${venv}" "${NOVA_CELLS_REPO_ROOT}/tools/requirements-core-2.20.txt"
    NOVA_CELLS_CTL_VENV="${venv}" "${NOVA_CELLS_REPO_ROOT}/tools/test.sh" --no-bootstrap sanity units
}

step_molecule() {
    install_podman_wrapper
    "${NOVA_CELLS_REPO_ROOT}/tools/molecule.sh" --nodes trixie --no-images single_cell
}

step_demo() {
    local rc=0
    install_podman_wrapper
    export NOVA_CELLS_NOVA_IMAGE=localhost/nova-cells/nova:34.0.0-trixie
    export NOVA_CELLS_CLOUD_IMAGE=localhost/nova-cells/cloud:trixie
    "${NOVA_CELLS_REPO_ROOT}/tools/demo.sh" || rc=$?
    "${NOVA_CELLS_REPO_ROOT}/tools/demo.sh" down || true
    return "${rc}"
}

inside() {
    local step name failed=0
    export PATH="${CTL_VENV}/bin:${PATH}"
    log "[matrix] in $(. /etc/os-release && printf '%s' "${PRETTY_NAME}"), $(python3 --version)"
    run_step bootstrap "${NOVA_CELLS_REPO_ROOT}/tools/bootstrap.sh"
    if [[ "${step_result[bootstrap]}" == passed ]]; then
        log "[matrix] controller: $("${CTL_VENV}/bin/ansible" --version | head -n 1), $("${CTL_VENV}/bin/python" --version)"
        for step in "$@"; do
            run_step "${step}" "step_${step//[-.]/_}"
        done
    fi
    log ""
    log "[matrix] summary (Debian 13, $(python3 --version))"
    printf '%-12s %-8s %9s\n' step result seconds
    for name in bootstrap "$@"; do
        printf '%-12s %-8s %9s\n' "${name}" "${step_result[${name}]:-not run}" "${step_seconds[${name}]:--}"
        [[ "${step_result[${name}]:-}" == passed ]] || failed=1
    done
    return "${failed}"
}

if [[ "${1:-}" == "--inside" ]]; then
    shift
    inside "$@"
    exit $?
fi

# --- on the host ------------------------------------------------------------------------------------

# ensure_runner_image MOUNT-ARGS...: build RUNNER_IMAGE when it is missing or its inputs changed: a
# container of BASE_IMAGE runs tools/bootstrap.sh (as on a fresh Debian 13 host: the Debian packages
# of bindep.txt, which take minutes, and the venvs in the mounted state directory), then
# `podman commit`. Later runs start from it, and their bootstrap finds the packages installed.
ensure_runner_image() {
    local key current old_id prep="nc-matrix-prep-${tag}" started
    key="$(printf '%s %s %s' "${RUNNER_RECIPE}" "$(podman image inspect --format '{{.Id}}' "${BASE_IMAGE}")" \
        "$(sha256_of "${NOVA_CELLS_REPO_ROOT}/bindep.txt")" | sha256sum | cut -d' ' -f1)"
    current="$(podman image inspect --format "{{index .Labels \"${LABEL_KEY}\"}}" "${RUNNER_IMAGE}" 2>/dev/null || true)"
    if [[ "${current}" == "${key}" ]]; then
        log "[matrix] ${RUNNER_IMAGE}: up to date (inputs ${key:0:12})"
        return 0
    fi
    old_id="$(podman image inspect --format '{{.Id}}' "${RUNNER_IMAGE}" 2>/dev/null || true)"
    log "[matrix] ${RUNNER_IMAGE}: building (tools/bootstrap.sh in ${BASE_IMAGE}; several minutes cold) ..."
    started="$(now)"
    podman rm -f --time 3 "${prep}" >/dev/null 2>&1 || true
    # The base image leaves out /usr/share/man (base/dpkg.cfg), which a real host has: openjdk's
    # postinst (zookeeper's Java) fails without man1 for its update-alternatives links.
    if ! podman run --name "${prep}" --network host "$@" -w "${NOVA_CELLS_REPO_ROOT}" \
        -e NOVA_CELLS_HOME="${home}" -e PIP_CERT=/etc/nova-cells-ca.crt "${BASE_IMAGE}" \
        bash -c 'mkdir -p /usr/share/man/man1 && exec tools/bootstrap.sh'; then
        podman rm -f --time 3 "${prep}" >/dev/null 2>&1 || true
        die "tools/bootstrap.sh failed in ${BASE_IMAGE} (output above)"
    fi
    podman commit --quiet --change "LABEL ${LABEL_KEY}=${key}" --change 'CMD ["/bin/bash"]' "${prep}" "${RUNNER_IMAGE}" >/dev/null
    podman rm "${prep}" >/dev/null
    [[ -z "${old_id}" ]] || podman rmi "${old_id}" >/dev/null 2>&1 || true
    log "[matrix] ${RUNNER_IMAGE}: built in $(seconds_since "${started}") s"
}

usage() {
    sed -n '2,/^$/{/^$/d;s/^# \{0,1\}//;p}' "$0"
}

main() {
    local steps=() step
    while [[ $# -gt 0 ]]; do
        case "$1" in
            -h | --help) usage; exit 0 ;;
            *)
                [[ " ${ALL_STEPS[*]} " == *" $1 "* ]] || die "unknown step '$1' (steps: ${ALL_STEPS[*]})"
                steps+=("$1")
                ;;
        esac
        shift
    done
    [[ ${#steps[@]} -gt 0 ]] || steps=("${DEFAULT_STEPS[@]}")
    # In the order of ALL_STEPS.
    local ordered=()
    for step in "${ALL_STEPS[@]}"; do
        [[ " ${steps[*]} " == *" ${step} "* ]] && ordered+=("${step}")
    done

    local started mounts=() git_dir
    started="$(now)"
    if [[ " ${ordered[*]} " == *" molecule "* || " ${ordered[*]} " == *" demo "* ]]; then
        "${NOVA_CELLS_REPO_ROOT}/tools/build-images.sh" --suite trixie || die "tools/build-images.sh --suite trixie failed"
    else
        "${NOVA_CELLS_REPO_ROOT}/tools/build-images.sh" --suite trixie base || die "tools/build-images.sh --suite trixie base failed"
    fi

    mkdir -p "${home}/root-ansible" "${home}/pip-cache" "${home}/apt-archives/partial"
    mounts+=(-v "${NOVA_CELLS_REPO_ROOT}:${NOVA_CELLS_REPO_ROOT}" -v "${home}:${home}"
        -v "${home}/root-ansible:/root/.ansible" -v "${home}/pip-cache:/root/.cache/pip"
        -v "${home}/apt-archives:/var/cache/apt/archives")
    # A git worktree's .git is a file naming the main repository's git directory: mount that too.
    git_dir="$(git -C "${NOVA_CELLS_REPO_ROOT}" rev-parse --path-format=absolute --git-common-dir 2>/dev/null || true)"
    if [[ -n "${git_dir}" && "${git_dir}" != "${NOVA_CELLS_REPO_ROOT}/.git" ]]; then
        mounts+=(-v "${git_dir}:${git_dir}:ro")
    fi
    # pip in the container trusts what pip on this machine trusts (ansible-test's pip runs do not
    # pass PIP_CERT on, so /etc/pip.conf says it, as on the host).
    local ca=/etc/ssl/certs/ca-certificates.crt
    [[ -f "${NOVA_CELLS_HOME}/cache/image-build/ca-bundle.crt" ]] && ca="${NOVA_CELLS_HOME}/cache/image-build/ca-bundle.crt"
    printf '[global]\ncert = /etc/nova-cells-ca.crt\n' >"${home}/pip.conf"
    mounts+=(-v "${ca}:/etc/nova-cells-ca.crt:ro" -v "${home}/pip.conf:/etc/pip.conf:ro")

    tag="$(printf '%s' "${NOVA_CELLS_REPO_ROOT}" | sha256sum | cut -c1-8)"
    ensure_runner_image "${mounts[@]}"
    log "[matrix] steps: ${ordered[*]} in a Debian 13 container (${RUNNER_IMAGE}, state ${home})"
    local rc=0
    podman run --rm --name "nc-matrix-${tag}" --privileged --pid host --network host \
        "${mounts[@]}" -w "${NOVA_CELLS_REPO_ROOT}" \
        -e NOVA_CELLS_HOME="${home}" -e PIP_CERT=/etc/nova-cells-ca.crt \
        -e NOVA_CELLS_MATRIX_PHASES="${NOVA_CELLS_MATRIX_PHASES:-sanity units build integration}" \
        -e NOVA_CELLS_PYTEST_WORKERS="${NOVA_CELLS_PYTEST_WORKERS:-2}" -e NOVA_CELLS_HOST_PID="$$" \
        -e TERM=dumb -e LANG=C.UTF-8 \
        "${RUNNER_IMAGE}" "${NOVA_CELLS_REPO_ROOT}/tools/matrix.sh" --inside "${ordered[@]}" || rc=$?
    log "[matrix] done in $(seconds_since "${started}") s (exit ${rc})"
    return "${rc}"
}

home="${NOVA_CELLS_HOME}/debian13"
tag=""
main "$@"; exit "$?"  # on one line: editing this file during a run cannot add commands
