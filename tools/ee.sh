#!/usr/bin/env bash
# The nova.cells execution environment (EE): build it with ansible-builder, and run
# nova.cells.status from inside it against the running multi-cell lab.
#
# Usage: tools/ee.sh build [--no-cache]
#        tools/ee.sh check
#        tools/ee.sh lab-status [--inventory DIR] [--picture FILE]
#   build         build localhost/nova-cells/ee:<collection version> from tools/ee/execution-environment.yml
#                 (ansible-builder, schema 3) on the lab's base image localhost/nova-cells/base:bookworm
#                 (tools/build-images.sh base builds it when missing; no registry is used). The EE holds
#                 ansible-core, ansible-runner, this collection (built from the working tree) and what its
#                 meta/execution-environment.yml names: requirements.txt and bindep.txt (Graphviz). Prints
#                 the build time and the image size. --no-cache: no layer of an earlier build is reused.
#   check         inside the built EE: nova.cells is installed and documented, the modules' libraries
#                 import (system Python and the EE's venv), ssh is there, and a play draws a picture
#                 with nova.cells.topology_dot and dot (the "ee" phase of tools/test.sh: build, check)
#   lab-status    run ansible-playbook nova.cells.status inside the EE against the Molecule multi_cell lab
#                 (tools/demo.sh, or tools/molecule.sh --action converge multi_cell) and write the topology
#                 picture (default: $NOVA_CELLS_HOME/ee/lab.svg). --inventory: the lab's Molecule inventory
#                 directory (default: the demo's, $NOVA_CELLS_HOME/demo/molecule/inventory).
#                 The lab's containers have no SSH: the EE reaches them with the lab's nsenter connection
#                 plugin (extensions/molecule/shared/connection_plugins), so it runs privileged in the
#                 host's PID namespace, as root; a real deployment reaches its hosts over SSH instead.
# Environment: NOVA_CELLS_HOME (default ~/.cache/nova-cells), NOVA_CELLS_EE_TAG (image name). The build
# log is $NOVA_CELLS_HOME/logs/ee-build.log. ansible-builder runs from $NOVA_CELLS_HOME/venv-ee
# (pinned in tools/requirements-ee.txt, created here when missing or out of date).
set -euo pipefail

# shellcheck source=tools/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly EE_VENV="${NOVA_CELLS_HOME}/venv-ee"
readonly EE_REQUIREMENTS="${NOVA_CELLS_REPO_ROOT}/tools/requirements-ee.txt"
readonly EE_DEFINITION="${NOVA_CELLS_REPO_ROOT}/tools/ee/execution-environment.yml"
readonly BASE_IMAGE=localhost/nova-cells/base:bookworm
readonly EE_WORK="${NOVA_CELLS_HOME}/ee"

usage() {
    sed -n '2,/^$/{/^$/d;s/^# \{0,1\}//;p}' "$0"
}

say() {
    log "[ee] $*"
}

collection_version() {
    sed -n 's/^version: *//p' "${NOVA_CELLS_REPO_ROOT}/galaxy.yml"
}

ee_tag() {
    printf '%s\n' "${NOVA_CELLS_EE_TAG:-localhost/nova-cells/ee:$(collection_version)}"
}

# The machine's CA bundle, for pip inside the build only (mounted at /mnt/nc-build).
prepare_build_share() {
    local share="${EE_WORK}/build-share" crt
    mkdir -p "${share}"
    : >"${share}/ca.crt"
    [[ -r /etc/ssl/certs/ca-certificates.crt ]] && cat /etc/ssl/certs/ca-certificates.crt >>"${share}/ca.crt"
    for crt in /usr/local/share/ca-certificates/*.crt; do
        [[ -r "${crt}" ]] && cat "${crt}" >>"${share}/ca.crt"
    done
    printf '%s\n' "${share}"
}

cmd_build() {
    local started tag context share copy size cache=()
    [[ "${1:-}" != --no-cache ]] || cache=(--no-cache)
    [[ $# -eq 0 || "$1" == --no-cache ]] || die "unknown argument '$1' (see --help)"
    started="$(now)"
    tag="$(ee_tag)"
    ensure_tool_venv "${EE_VENV}" "${EE_REQUIREMENTS}"
    if ! podman image exists "${BASE_IMAGE}"; then
        say "building the base image ${BASE_IMAGE} (tools/build-images.sh base) ..."
        "${NOVA_CELLS_REPO_ROOT}/tools/build-images.sh" base
    fi
    mkdir -p "${EE_WORK}"
    # The collection as ansible-galaxy builds it from the working tree (files ignored by git left out).
    copy="${EE_WORK}/src/ansible_collections/nova/cells"
    copy_working_tree "${copy}"
    context="${EE_WORK}/definition"
    rm -rf "${context}"
    mkdir -p "${context}"
    run_logged ee-collection-build "${CTL_VENV}/bin/ansible-galaxy" collection build --force --output-path "${context}" "${copy}"
    mv "${context}"/nova-cells-*.tar.gz "${context}/nova-cells.tar.gz"
    cp "${EE_DEFINITION}" "${context}/execution-environment.yml"
    share="$(prepare_build_share)"
    say "building ${tag} with ansible-builder (log ${LOG_DIR}/ee-build.log) ..."
    run_logged ee-build "${EE_VENV}/bin/ansible-builder" build "${cache[@]}" --verbosity 2 --container-runtime podman \
        --file "${context}/execution-environment.yml" --context "${EE_WORK}/context" --tag "${tag}" \
        --build-arg PIP_CERT=/mnt/nc-build/ca.crt --build-arg PKGMGR_PRESERVE_CACHE=always \
        --extra-build-cli-args "--network host --volume ${share}:/mnt/nc-build:ro"
    size="$(podman image inspect --format '{{.Size}}' "${tag}")"
    say "built ${tag} in $(seconds_since "${started}") s; image size $((size / 1000000)) MB ($(podman image inspect --format '{{.Id}}' "${tag}" | cut -c1-12))"
    podman run --rm "${tag}" sh -c 'ansible --version | head -n 1; ansible-runner --version; dot -V 2>&1; ansible-galaxy collection list nova.cells 2>/dev/null | tail -n 1'
}

# The play of "check": a two-cell picture from literal results, rendered by the EE's dot.
check_play() {
    cat <<'EOF'
- name: Draw a picture inside the execution environment
  hosts: localhost
  gather_facts: false
  vars:
    cells: {cells: [{uuid: 00000000-0000-0000-0000-000000000000, name: cell0, disabled: false},
                    {uuid: u1, name: cell1, disabled: true, reachable: true, hosts: [cmp1],
                     database_connection: "mysql+pymysql://nova:secret@db/nova_cell1"}]}
    services: {driver: db, service_down_time: 60,
               services: [{cell: cell1, cell_uuid: u1, host: cmp1, binary: nova-compute, state: down}]}
  tasks:
    - name: Render it
      ansible.builtin.command:
        argv: [dot, -Tsvg]
        stdin: "{{ cells | nova.cells.topology_dot(services) }}"
      register: svg
      changed_when: false
    - name: Check it
      ansible.builtin.assert:
        that:
          - "'<svg' in svg.stdout and 'cmp1' in svg.stdout and 'DISABLED' in svg.stdout"
          - "'secret' not in svg.stdout"
EOF
}

cmd_check() {
    local tag
    tag="$(ee_tag)"
    podman image exists "${tag}" || die "no image ${tag}: run tools/ee.sh build first"
    say "checking ${tag} ..."
    # shellcheck disable=SC2016  # the script runs inside the container
    check_play | podman run --rm -i --network none "${tag}" sh -euc '
        ansible-galaxy collection list nova.cells | grep -q "^nova.cells "
        ansible-doc nova.cells.cell_info >/dev/null
        ansible-doc -t filter nova.cells.topology_dot >/dev/null
        /usr/bin/python3 -c "import pymysql, pymemcache, kazoo"
        python3 -c "import pymysql, pymemcache, kazoo"
        command -v ssh >/dev/null
        cat >/tmp/check.yml
        ansible-playbook /tmp/check.yml'
    say "${tag}: collection, docs, libraries, ssh and a rendered picture: all there"
}

cmd_lab_status() {
    local inventory="${NOVA_CELLS_HOME}/demo/molecule/inventory" picture="${EE_WORK}/lab.svg" tag lab started
    while [[ $# -gt 0 ]]; do
        case "$1" in
            --inventory) inventory="$2"; shift ;;
            --picture) picture="$2"; shift ;;
            *) die "unknown argument '$1' (see --help)" ;;
        esac
        shift
    done
    tag="$(ee_tag)"
    podman image exists "${tag}" || die "no image ${tag}: run tools/ee.sh build first"
    [[ -f "${inventory}/ansible_inventory.yml" ]] || die "no lab inventory in ${inventory}: start the lab (tools/demo.sh) or pass --inventory"
    picture="$(realpath -m "${picture}")"
    mkdir -p "$(dirname "${picture}")"
    # The lab's connection plugin finds a container's PID 1 with "podman inspect": inside the EE a
    # stand-in answers from the PIDs read here.
    lab="${EE_WORK}/lab"
    rm -rf "${lab}"
    mkdir -p "${lab}"
    cp -r "${NOVA_CELLS_REPO_ROOT}/extensions/molecule/shared/connection_plugins" "${lab}/"
    podman ps --format '{{.Names}} {{.Pid}}' >"${lab}/pids"
    cat >"${lab}/podman" <<'EOF'
#!/bin/sh
# Stand-in for "podman inspect --type container --format {{.State.Pid}} NAME" (tools/ee.sh lab-status).
for name; do :; done
awk -v name="${name}" '$1 == name { print $2; found = 1 } END { exit !found }' /lab/pids || { echo "no container ${name}" >&2; exit 1; }
EOF
    chmod 0755 "${lab}/podman"
    say "nova.cells.status inside ${tag}, inventory ${inventory}, picture ${picture} ..."
    started="$(now)"
    podman run --rm --user 0 --privileged --pid host --network host \
        --volume "${inventory}:/runner/inventory:ro" --volume "${lab}:/lab:ro" \
        --volume "$(dirname "${picture}"):/output" \
        --env ANSIBLE_CONNECTION_PLUGINS=/lab/connection_plugins --env ANSIBLE_FORCE_COLOR=0 \
        --env ANSIBLE_PIPELINING=1 --env ANSIBLE_HOST_KEY_CHECKING=0 \
        "${tag}" ansible-playbook -i /runner/inventory nova.cells.status \
        -e ansible_podman_executable=/lab/podman -e "nova_cells_status_picture=/output/$(basename "${picture}")" \
        -e 'nova_cells_status_picture_title=nova.cells multi_cell lab (status run inside the EE)'
    say "status run inside the EE: $(seconds_since "${started}") s; picture: ${picture}"
}

main() {
    local command="${1:-}"
    [[ $# -gt 0 ]] && shift
    case "${command}" in
        -h | --help | "") usage ;;
        build) cmd_build "$@" ;;
        check) cmd_check ;;
        lab-status) cmd_lab_status "$@" ;;
        *) die "unknown command '${command}' (build, check, lab-status)" ;;
    esac
}

main "$@"; exit "$?"  # on one line: editing this file during a run cannot add commands
