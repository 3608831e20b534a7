#!/usr/bin/env bash
# The nova.cells demo: a multi-cell Nova in local containers, deployed with the collection.
#
# Usage: tools/demo.sh [up|status|add-cell|down]
#   up (default)  bootstrap the machine (tools/bootstrap.sh), build the images that are missing or out
#                 of date (tools/build-images.sh), create the lab of the Molecule scenario multi_cell
#                 (containers nc-demo-*: infra, ctl, cell1 and cell2 with a conductor and a compute
#                 each, and an idle node for cell3), deploy it with nova.cells.deploy (Keystone,
#                 Glance, Neutron API, Placement and nova-api too), boot a server into each cell
#                 through the compute API, print the state with nova.cells.status (servers per
#                 cell), and write its topology picture ($NOVA_CELLS_HOME/demo/topology.svg).
#                 Run it again on a running lab: it re-converges (no change) and prints the state.
#   status        print the state (and write the picture) only
#   add-cell      add cell3 with nova.cells.add_cell (twice: the second run changes nothing), then
#                 print the state
#   down          remove the lab's containers and network
# Long steps print a line every 20 s; their full output is in $NOVA_CELLS_HOME/logs/demo-<step>.log.
# Environment: NOVA_CELLS_HOME (default ~/.cache/nova-cells), NOVA_CELLS_DEMO_PREFIX (container
# prefix, default nc-demo). The lab needs about 3 GB of memory.
set -euo pipefail

# shellcheck source=tools/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly SCENARIO=multi_cell
readonly PREFIX="${NOVA_CELLS_DEMO_PREFIX:-nc-demo}"
readonly DEMO_DIR="${NOVA_CELLS_HOME}/demo"
readonly COPY="${DEMO_DIR}/ansible_collections/nova/cells"
readonly EPHEMERAL="${DEMO_DIR}/molecule"
# The topology picture that nova.cells.status draws (nova_cells_status_picture), on this machine.
readonly PICTURE="${DEMO_DIR}/topology.svg"

usage() {
    sed -n '2,/^$/{/^$/d;s/^# \{0,1\}//;p}' "$0"
}

say() {
    log "[demo] $*"
}

# run_step LABEL COMMAND...: run quietly into $LOG_DIR/demo-LABEL.log, one progress line every 20 s
# (with the task Ansible is at); on failure the log's last lines.
run_step() {
    local label="$1" log_file="${LOG_DIR}/demo-$1.log" started pid rc=0 next=20 task
    shift
    mkdir -p "${LOG_DIR}"
    started="$(now)"
    "$@" >"${log_file}" 2>&1 &
    pid=$!
    while kill -0 "${pid}" 2>/dev/null; do
        sleep 1
        if (( EPOCHSECONDS - ${started%.*} >= next )); then
            next=$((next + 20))
            task="$(grep -E '^(TASK|PLAY) \[' "${log_file}" | tail -n 1 | sed -E 's/ \**$//')" || true
            say "${label}: still running ($(seconds_since "${started}") s)${task:+ - ${task}}"
        fi
    done
    wait "${pid}" || rc=$?
    if [[ "${rc}" -ne 0 ]]; then
        say "${label}: FAILED after $(seconds_since "${started}") s (exit ${rc}); last lines of ${log_file}:"
        tail -n 60 "${log_file}" >&2
        exit 1
    fi
    say "${label}: done in $(seconds_since "${started}") s"
}

# The environment of every molecule and ansible-playbook call of the demo.
setup_env() {
    export PATH="${CTL_VENV}/bin:${PATH}"
    export ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1 PY_COLORS=0 NO_COLOR=1
    export ANSIBLE_COLLECTIONS_PATH="${DEMO_DIR}:${COLLECTIONS_DIR}"
    export MOLECULE_EPHEMERAL_DIRECTORY="${EPHEMERAL}"
    export NOVA_CELLS_MC_PREFIX="${PREFIX}"
}

# A copy of the working tree in the layout Ansible needs (files ignored by git left out).
update_copy() {
    copy_working_tree "${COPY}"
}

# shellcheck disable=SC2317  # called through run_step
molecule_in_copy() {
    (cd "${COPY}" && molecule "$@" -s "${SCENARIO}")
}

# shellcheck disable=SC2317  # called through run_step
playbook_in_copy() {
    (cd "${COPY}" && ANSIBLE_CONFIG="${EPHEMERAL}/ansible.cfg" ANSIBLE_CALLBACK_RESULT_FORMAT=json \
        ansible-playbook -i "${EPHEMERAL}/inventory" "$@")
}

# The lab's container names, from the scenario.
lab_containers() {
    # shellcheck disable=SC2016  # the ${...} is molecule.yml's text
    sed -n 's/^  - name: \${NOVA_CELLS_MC_PREFIX:-nc-mc}/'"${PREFIX}"'/p' \
        "${NOVA_CELLS_REPO_ROOT}/extensions/molecule/${SCENARIO}/molecule.yml"
}

# Molecule remembers "created"; after a reboot or a manual podman rm the containers may be gone or
# stopped. Then start again from scratch.
reset_if_stale() {
    [[ -f "${EPHEMERAL}/state.yml" ]] && grep -q '^created: true' "${EPHEMERAL}/state.yml" || return 0
    local name
    while IFS= read -r name; do
        if [[ "$(podman container inspect --format '{{.State.Running}}' "${name}" 2>/dev/null)" != true ]]; then
            say "container ${name} is missing or stopped: removing the lab and creating it again"
            run_step destroy molecule_in_copy destroy
            return 0
        fi
    done < <(lab_containers)
}

show_status() {
    [[ -f "${EPHEMERAL}/inventory/ansible_inventory.yml" ]] || die "no demo lab (run tools/demo.sh up)"
    local json rc=0
    json="$(cd "${COPY}" && ANSIBLE_CONFIG="${EPHEMERAL}/ansible.cfg" ANSIBLE_STDOUT_CALLBACK=ansible.posix.json \
        ansible-playbook -i "${EPHEMERAL}/inventory" nova.cells.status -e "nova_cells_status_picture=${PICTURE}" \
        2>"${LOG_DIR}/demo-status.err")" || rc=$?
    printf '%s\n' "${json}" >"${LOG_DIR}/demo-status.log"
    "${CTL_VENV}/bin/python" - "${LOG_DIR}/demo-status.log" <<'PY' || rc=1
import json
import sys

with open(sys.argv[1], encoding="utf-8") as handle:
    text = handle.read()
result, _ = json.JSONDecoder().raw_decode(text[text.index("{"):])
shown = False
for play in result["plays"]:
    for task in play["tasks"]:
        if not task["task"]["name"].endswith("Show the cells and their services"):
            continue
        for host in task["hosts"].values():
            if "msg" in host:
                print("\n".join(host["msg"]))
                shown = True
        break
for host, stats in result.get("stats", {}).items():
    if stats.get("failures") or stats.get("unreachable"):
        print("status failed on %s (see the log)" % host, file=sys.stderr)
        sys.exit(1)
if not shown:
    print("the status playbook printed no table", file=sys.stderr)
    sys.exit(1)
PY
    [[ "${rc}" -eq 0 ]] || die "nova.cells.status failed: see ${LOG_DIR}/demo-status.log and ${LOG_DIR}/demo-status.err"
    say "topology picture (SVG): ${PICTURE}"
}

cmd_up() {
    local started
    started="$(now)"
    say "bootstrap (tools/bootstrap.sh) ..."
    "${NOVA_CELLS_REPO_ROOT}/tools/bootstrap.sh"
    say "images (tools/build-images.sh; a cold build takes about 5 minutes) ..."
    "${NOVA_CELLS_REPO_ROOT}/tools/build-images.sh"
    setup_env
    update_copy
    reset_if_stale
    say "lab: containers ${PREFIX}-*, then nova.cells.deploy (molecule converge -s ${SCENARIO}; first run 3-6 minutes) ..."
    run_step converge molecule_in_copy converge
    # The recap of the deploy (the last one in the log).
    awk '/^PLAY RECAP/ { n = 0; delete lines; next } /^[^ ]+ +: ok=/ { lines[++n] = $0 }
         END { for (i = 1; i <= n; i++) print "[demo]   " lines[i] }' "${LOG_DIR}/demo-converge.log"
    say "servers through the compute API: one per cell (openstackclient/openstacksdk on ${PREFIX}-ctl) ..."
    run_step servers playbook_in_copy extensions/molecule/shared/verify_api.yml -e nc_verify_servers_prefix=demo-
    grep -E '"msg": ".*(seconds to ACTIVE|services up)' "${LOG_DIR}/demo-servers.log" | sed -E 's/^ *"msg": "(.*)",?$/[demo]   \1/' || true
    say "state of the deployment (nova.cells.status; INSTANCES = servers per cell):"
    show_status
    say "up in $(seconds_since "${started}") s. Next: tools/demo.sh add-cell | status | down"
}

cmd_status() {
    setup_env
    show_status
}

cmd_add_cell() {
    setup_env
    [[ -f "${EPHEMERAL}/inventory/ansible_inventory.yml" ]] || die "no demo lab (run tools/demo.sh up first)"
    update_copy
    say "adding cell3 with nova.cells.add_cell (molecule side-effect -s ${SCENARIO}) ..."
    run_step add-cell molecule_in_copy side-effect
    show_status
}

cmd_down() {
    setup_env
    if [[ ! -d "${COPY}" ]]; then
        say "no demo lab"
        return 0
    fi
    run_step destroy molecule_in_copy destroy
    say "removed the containers ${PREFIX}-* and the network ${PREFIX}-net"
}

main() {
    local command="${1:-up}"
    case "${command}" in
        -h | --help) usage ;;
        up) cmd_up ;;
        status) cmd_status ;;
        add-cell) cmd_add_cell ;;
        down) cmd_down ;;
        *) die "unknown command '${command}' (up, status, add-cell, down)" ;;
    esac
}

main "$@"; exit "$?"  # on one line: editing this file during a run cannot add commands
