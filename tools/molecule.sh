#!/usr/bin/env bash
# Run the Molecule scenarios of nova.cells (extensions/molecule/<scenario>/molecule.yml) as parallel
# processes and report the duration of each phase.
#
# Usage: tools/molecule.sh [OPTIONS] [SCENARIO...]
#   SCENARIO          default: every extensions/molecule/<scenario> with a molecule.yml
#   --copy DIR        run in DIR, an up-to-date copy of the collection whose path ends in
#                     ansible_collections/nova/cells (tools/test.sh passes its own); default: a copy
#                     made here under $NOVA_CELLS_HOME/build/<checkout>/molecule-sh/
#   --jobs N          scenarios at a time (default: $NOVA_CELLS_MOLECULE_JOBS, else 2)
#   --action ACTION   the molecule action (default: test); e.g. converge, verify, destroy
#   --no-images       do not run tools/build-images.sh first (the caller did)
#   --nodes SUITE     Debian of every node: bookworm (default) or trixie (Debian 13: the nova and
#                     cloud images of tools/build-images.sh --suite trixie, through NOVA_CELLS_NOVA_IMAGE
#                     and NOVA_CELLS_CLOUD_IMAGE, which molecule.yml reads)
#   --print-logs      print every scenario's log, not only those of failed scenarios
#
# Each scenario runs `molecule ACTION -s SCENARIO` in its own process (not Molecule 26's --workers:
# it refuses --destroy never, which the failure diagnostics need, and its --report has no durations),
# with its own ephemeral directory ($NOVA_CELLS_HOME/molecule/<tag>/<scenario>) and its own
# container and network names: nc-sc-<tag>-* (single_cell) and nc-mc-<tag>-* (multi_cell), where
# <tag> comes from the copy's path, so that two checkouts on one machine do not collide. Output goes
# to $NOVA_CELLS_HOME/logs/molecule-<tag>-<scenario>.log; a failed scenario's log is printed.
# The end is a table of the phases (create, prepare, converge, idempotence, verify, side_effect,
# destroy) with their seconds and results per scenario. Exit status 1 if any scenario failed.
# Ctrl-C or SIGTERM stops the runs and destroys their containers.
set -euo pipefail

# shellcheck source=tools/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

# --- internal entry point: one scenario, output to its log, phase marks to its timing file ------
# tools/molecule.sh --run-one SCENARIO ACTION LOG TIMES PREFIX (called by this script, in its own
# session). For ACTION test: molecule destroy; molecule test --destroy never; on failure the state
# of the scenario's containers (failed units, the end of the Nova, Placement, MariaDB and RabbitMQ
# journals) goes to the log; molecule destroy. That is the test sequence with a look inside first.
if [[ "${1:-}" == "--run-one" ]]; then
    scenario="$2" action="$3" log_file="$4" times_file="$5" prefix="$6"
    : >"${times_file}"
    : >"${log_file}"
    set +e
    # Unbuffered, so that the phase marks carry the time they were printed at.
    export PYTHONUNBUFFERED=1

    # run_molecule ARGS...: molecule ARGS -s SCENARIO, output appended to the log, phase marks to
    # the timing file ("<epoch> <action> start|<result>").
    run_molecule() {
        molecule "$@" -s "${scenario}" 2>&1 | while IFS= read -r line; do
            printf '%s\n' "${line}"
            # Molecule 26 marks each action: "[<scenario> > <action>] Executing" / "... Executed: <result>".
            if [[ "${line}" =~ \[${scenario}\ \>\ ([a-z_]+)\]\ (Executing|Executed:\ (.*))$ ]]; then
                printf '%s %s %s\n' "${EPOCHREALTIME}" "${BASH_REMATCH[1]}" "${BASH_REMATCH[3]:-start}" >>"${times_file}"
            elif [[ "${line}" =~ \[${scenario}\ \>\ ([a-z_]+)\]\ Skipping ]]; then
                # e.g. "Skipping, '--destroy=never' requested.", then "Executed: Successful"
                printf '%s %s skipping\n' "${EPOCHREALTIME}" "${BASH_REMATCH[1]}" >>"${times_file}"
            fi
        done >>"${log_file}"
        return "${PIPESTATUS[0]}"
    }

    # What the scenario's containers say, for a failed run.
    diagnose() {
        local name
        printf '\n===== state of the containers %s-* after the failure =====\n' "${prefix}"
        while IFS= read -r name; do
            printf '\n----- %s: failed units, then the last journal lines of its services -----\n' "${name}"
            podman exec "${name}" sh -c 'systemctl --failed --no-legend --plain; journalctl --no-pager -o short-iso -n 120 \
                -u "nova-*" -u placement-api -u mariadb -u rabbitmq-server -u memcached' 2>&1 | cut -c1-400
        done < <(podman ps --format '{{.Names}}' --filter "name=^${prefix}-" | sort)
        printf '===== end of the state of the containers =====\n'
    }

    if [[ "${action}" != test ]]; then
        run_molecule "${action}"
        exit $?
    fi
    run_molecule destroy
    run_molecule test --destroy never
    rc=$?
    [[ "${rc}" -eq 0 ]] || diagnose >>"${log_file}"
    run_molecule destroy || rc=1
    exit "${rc}"
fi

readonly PHASES=(destroy0 create prepare converge idempotence verify side_effect destroy)

copy=""
jobs="${NOVA_CELLS_MOLECULE_JOBS:-2}"
action="test"
build_images=1
print_logs=0
nodes=bookworm
scenarios=()

usage() {
    sed -n '2,/^$/{/^$/d;s/^# \{0,1\}//;p}' "$0"
}

parse_args() {
    while [[ $# -gt 0 ]]; do
        case "$1" in
            -h | --help) usage; exit 0 ;;
            --copy) copy="$2"; shift ;;
            --jobs) jobs="$2"; shift ;;
            --action) action="$2"; shift ;;
            --no-images) build_images=0 ;;
            --print-logs) print_logs=1 ;;
            --nodes) nodes="$2"; shift ;;
            -*) die "unknown option $1 (see --help)" ;;
            *) scenarios+=("$1") ;;
        esac
        shift
    done
    [[ "${jobs}" =~ ^[1-9][0-9]*$ ]] || die "--jobs wants a positive number, not '${jobs}'"
    case "${nodes}" in
        bookworm) ;;
        trixie)
            # Every node on Debian 13: the cell nodes, and the infrastructure and API-level hosts
            # (the cloud image: Keystone, Glance, Neutron, nova-api).
            export NOVA_CELLS_NOVA_IMAGE=localhost/nova-cells/nova:34.0.0-trixie
            export NOVA_CELLS_CLOUD_IMAGE=localhost/nova-cells/cloud:trixie
            ;;
        *) die "--nodes wants bookworm or trixie, not '${nodes}'" ;;
    esac
}

# make_copy: a copy of the working tree (copy_working_tree) in the layout Molecule and Ansible
# need, under a lock, as tools/test.sh makes it.
make_copy() {
    local base lock_fd
    base="${NOVA_CELLS_HOME}/build/$(printf '%s' "${NOVA_CELLS_REPO_ROOT}" | sha256sum | cut -c1-12)"
    copy="${base}/molecule-sh/ansible_collections/nova/cells"
    mkdir -p "${copy}"
    exec {lock_fd}>"${base}/molecule-sh.lock"
    if ! flock -n "${lock_fd}"; then
        log "[molecule] waiting for another run that uses ${base}/molecule-sh ..."
        flock "${lock_fd}"
    fi
    copy_working_tree "${copy}"
}

# prefix_var SCENARIO: the molecule.yml variable that names the scenario's containers.
prefix_var() {
    case "$1" in
        single_cell) printf 'NOVA_CELLS_SC_PREFIX' ;;
        multi_cell) printf 'NOVA_CELLS_MC_PREFIX' ;;
        *) printf '' ;;
    esac
}

# scenario_env NAME: the environment of one scenario's molecule runs (called in a subshell).
scenario_env() {
    local var
    cd "${copy}"
    export ANSIBLE_COLLECTIONS_PATH="${collections_root}:${COLLECTIONS_DIR}"
    export MOLECULE_EPHEMERAL_DIRECTORY="${NOVA_CELLS_HOME}/molecule/${tag}/$1"
    var="$(prefix_var "$1")"
    [[ -z "${var}" ]] || export "${var}=${short_of[$1]}-${tag}"
}

# log_of SCENARIO: its log, named with the tag so that two checkouts on one machine keep theirs apart.
log_of() {
    printf '%s/molecule-%s-%s.log' "${LOG_DIR}" "${tag}" "$1"
}

declare -A pid_of=() result_of=() started_of=() seconds_of=()
running=()

start_scenario() {
    local name="$1" var
    var="$(prefix_var "${name}")"
    started_of[${name}]="$(now)"
    (
        scenario_env "${name}"
        exec setsid "$0" --run-one "${name}" "${action}" "$(log_of "${name}")" "${times_dir}/${name}" \
            "${short_of[${name}]}-${tag}"
    ) &
    pid_of[${name}]=$!
    running+=("${name}")
    log "[molecule] ${name}: molecule ${action} started (log $(log_of "${name}")${var:+, containers ${short_of[${name}]}-${tag}-*})"
}

# Progress: one line per running scenario every 60 s, with its current phase.
progress_line() {
    local name="$1" phase
    phase="$(awk 'END { print $2 }' "${times_dir}/${name}" 2>/dev/null)"
    log "[molecule] ${name}: ${phase:-starting} ($(seconds_since "${started_of[${name}]}") s)"
}

wait_for_one() {
    local pid rc=0 name n
    while true; do
        rc=0
        pid=""
        wait -n -p pid "${pid_of[@]}" 2>/dev/null || rc=$?
        if [[ -n "${pid}" ]]; then
            break
        fi
    done
    for name in "${!pid_of[@]}"; do
        [[ "${pid_of[${name}]}" == "${pid}" ]] || continue
        unset "pid_of[${name}]"
        seconds_of[${name}]="$(seconds_since "${started_of[${name}]}")"
        result_of[${name}]="$([[ ${rc} -eq 0 ]] && echo passed || echo FAILED)"
        log "[molecule] ${name}: ${result_of[${name}]} (exit ${rc}) after ${seconds_of[${name}]} s"
        if [[ "${rc}" -ne 0 || "${print_logs}" -eq 1 ]]; then
            log "===== log of scenario ${name} ($(log_of "${name}")) ====="
            cat "$(log_of "${name}")"
            log "===== end of the log of scenario ${name} ====="
        fi
        for n in "${!running[@]}"; do
            [[ "${running[${n}]}" != "${name}" ]] || unset "running[${n}]"
        done
        return 0
    done
}

# Durations from the phase marks: a phase runs from its "start" to its result; the first
# destroy of `molecule test` (nothing to destroy, usually) is destroy0.
print_table() {
    local name phase header
    header="$(printf '%-12s' scenario)"
    for phase in "${PHASES[@]}"; do
        header+="$(printf ' %12s' "${phase}")"
    done
    log ""
    log "[molecule] seconds per phase (x: failed there; destroy0: the initial destroy of molecule test)"
    log "${header}$(printf ' %9s  %s' total result)"
    for name in "${selected[@]}"; do
        awk -v name="${name}" -v phases="${PHASES[*]}" -v action="${action}" -v total="${seconds_of[${name}]:--}" \
            -v result="${result_of[${name}]:-not run}" '
            BEGIN { n = split(phases, order, " ") }
            $3 == "start" { begun[$2] = $1; next }
            $3 == "skipping" { skipping[$2] = 1; next }
            {
                phase = $2
                if (phase == "create") created = 1
                if (phase == "destroy" && action == "test" && !created) phase = "destroy0"
                if ($2 in begun) {
                    had = (phase in secs)
                    old = had ? secs[phase] : ""
                    secs[phase] = sprintf("%.1f", $1 - begun[$2])
                    delete begun[$2]
                    if ($3 ~ /Failed/) secs[phase] = secs[phase] "x"
                    else if (($2 in skipping) || $3 ~ /[Ss]kip|disabled/) secs[phase] = (had && old != "skip") ? old : "skip"
                    delete skipping[$2]
                }
            }
            END {
                line = sprintf("%-12s", name)
                for (i = 1; i <= n; i++) line = line sprintf(" %12s", (order[i] in secs) ? secs[order[i]] : "-")
                printf "%s %9s  %s\n", line, total, result
            }' "${times_dir}/${name}"
    done
}

# shellcheck disable=SC2317  # called by the trap
stop_all() {
    local name
    trap - INT TERM HUP
    log ""
    log "[molecule] interrupted: stopping the scenarios and destroying their containers ..."
    for name in "${!pid_of[@]}"; do
        kill -TERM -- "-${pid_of[${name}]}" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    for name in "${running[@]}"; do
        if (scenario_env "${name}" && molecule destroy -s "${name}" >>"$(log_of "${name}")" 2>&1); then
            log "[molecule] ${name}: destroyed"
        else
            log "[molecule] ${name}: destroy FAILED (see $(log_of "${name}"))"
        fi
    done
    exit 130
}

main() {
    parse_args "$@"
    export PATH="${CTL_VENV}/bin:${PATH}"
    export ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1 PY_COLORS=0 NO_COLOR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
    command -v molecule >/dev/null || die "no molecule in ${CTL_VENV}: run tools/bootstrap.sh"

    local available=() file name
    for file in "${NOVA_CELLS_REPO_ROOT}"/extensions/molecule/*/molecule.yml; do
        [[ -f "${file}" ]] && available+=("$(basename "$(dirname "${file}")")")
    done
    selected=("${scenarios[@]}")
    [[ ${#selected[@]} -gt 0 ]] || selected=("${available[@]}")
    [[ ${#selected[@]} -gt 0 ]] || die "no scenarios in extensions/molecule"
    for name in "${selected[@]}"; do
        [[ " ${available[*]} " == *" ${name} "* ]] || die "no scenario ${name} (have: ${available[*]})"
    done

    if [[ "${build_images}" -eq 1 ]]; then
        "${NOVA_CELLS_REPO_ROOT}/tools/build-images.sh" --suite "${nodes}" || die "tools/build-images.sh failed"
    fi
    if [[ -z "${copy}" ]]; then
        make_copy
    fi
    copy="$(cd "${copy}" && pwd)"
    [[ "${copy}" == */ansible_collections/nova/cells ]] || die "--copy must end in ansible_collections/nova/cells: ${copy}"
    collections_root="$(cd "${copy}/../../.." && pwd)"
    tag="$(printf '%s' "${copy}" | sha256sum | cut -c1-4)"
    declare -gA short_of=([single_cell]=nc-sc [multi_cell]=nc-mc)

    mkdir -p "${LOG_DIR}" "${NOVA_CELLS_HOME}/molecule/${tag}"
    times_dir="$(mktemp -d "${NOVA_CELLS_HOME}/molecule/${tag}/times.XXXXXX")"
    trap 'rm -rf "${times_dir}"' EXIT
    trap stop_all INT TERM HUP

    local started last_progress
    started="$(now)"
    last_progress="${SECONDS}"
    log "[molecule] ${#selected[@]} scenario(s), ${jobs} at a time: ${selected[*]} (molecule ${action}, copy ${copy})"
    for name in "${selected[@]}" ""; do
        while [[ ${#pid_of[@]} -gt 0 ]] && { [[ -z "${name}" ]] || [[ ${#pid_of[@]} -ge ${jobs} ]]; }; do
            # Wake up every 10 s to print progress once a minute.
            if ! timeout_wait 10; then
                if (( SECONDS - last_progress >= 60 )); then
                    last_progress="${SECONDS}"
                    local n
                    for n in "${running[@]}"; do progress_line "${n}"; done
                fi
                continue
            fi
            wait_for_one
        done
        [[ -n "${name}" ]] || break
        start_scenario "${name}"
    done
    print_table
    log "[molecule] all scenarios: $(seconds_since "${started}") s"
    for name in "${selected[@]}"; do
        [[ "${result_of[${name}]:-}" == passed ]] || return 1
    done
}

# timeout_wait SECONDS: true as soon as one of the scenario processes has ended, false after SECONDS.
timeout_wait() {
    local deadline=$((SECONDS + $1)) pid
    while (( SECONDS < deadline )); do
        for pid in "${pid_of[@]}"; do
            kill -0 "${pid}" 2>/dev/null || return 0
        done
        sleep 1
    done
    return 1
}

main "$@"; exit "$?"  # on one line: editing this file during a run cannot add commands
