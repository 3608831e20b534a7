#!/usr/bin/env bash
# The nova.cells test command: bootstrap the machine, then run the quality gates and tests.
#
# Usage: tools/test.sh [--no-bootstrap] [PHASE...] [-- PYTEST_ARGS...]
#
# Phases, in this order (default: all but debian13):
#   lint          ruff on all Python, shellcheck on tools/*.sh and .ci/run, antsibull-changelog lint
#   ansible-lint  ansible-lint --profile production on roles/ and playbooks/
#   sanity        ansible-test sanity --venv --python X.Y (the controller's: 3.11, 3.13 on Debian 13)
#   units         ansible-test units --venv --python X.Y
#   build         pytest tests/test_collection_build.py: collection build, install, ansible-doc per module
#   docs          tools/docs.sh: antsibull-docs lint-collection-docs --plugin-docs, then the docs site
#                 (antsibull-docs + Sphinx, warnings are errors)
#   integration   pytest tests/integration: the real-Nova lab
#   molecule      tools/molecule.sh: tools/build-images.sh, then molecule test for each
#                 extensions/molecule/<scenario>, scenarios in parallel, seconds per phase
#   ee            tools/ee.sh build, then tools/ee.sh check: the execution environment (ansible-builder)
#                 on the lab's base image, and a look inside it
#   debian13      tools/matrix.sh: in a Debian 13 container, tools/bootstrap.sh (Python 3.13, ansible-core
#                 2.21) and the phases sanity units build; then the Molecule scenario single_cell with
#                 that controller and Debian 13 nodes. The integration suite on 2.21 (about 20 more
#                 minutes) only with NOVA_CELLS_MATRIX_PHASES="sanity units build integration";
#                 NOVA_CELLS_MATRIX_STEPS picks steps (see tools/matrix.sh --help)
#
# Every selected phase runs even when an earlier one fails. The end is a table of phase results
# and durations and the line "N passed, M failed[, K skipped]"; the exit status is 1 if any failed.
# Arguments from the first one that is not a phase (or after "--") go to the pytest phases,
# e.g. tools/test.sh integration -k discover -x
#
# Environment: NOVA_CELLS_HOME (see tools/bootstrap.sh), NOVA_CELLS_MOLECULE_JOBS (parallel
# scenarios, default 2). ansible-test and Molecule run in copies of the working tree under
# $NOVA_CELLS_HOME/build/<checkout>/<phase>/ansible_collections/nova/cells.

# Phases are called by name (phase_<name>), which shellcheck cannot follow:
# shellcheck disable=SC2317
set -euo pipefail

# shellcheck source=tools/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly ALL_PHASES=(lint ansible-lint sanity units build docs integration molecule ee debian13)
# The default run (CI): every phase but debian13, which builds and bootstraps a Debian 13 container (about
# 15 minutes before its first test) and is run on demand: tools/test.sh debian13.
readonly DEFAULT_PHASES=(lint ansible-lint sanity units build docs integration molecule ee)
readonly PYTHON_FOR_TESTS="${NOVA_CELLS_PYTHON_XY:-3.11}"
readonly MOLECULE_JOBS="${NOVA_CELLS_MOLECULE_JOBS:-2}"

selected_phases=()
pytest_args=()
run_bootstrap=1
RUN_DIR=""
# One build area per checkout (engineers may share NOVA_CELLS_HOME between checkouts).
BUILD_BASE="${NOVA_CELLS_HOME}/build/$(printf '%s' "${NOVA_CELLS_REPO_ROOT}" | sha256sum | cut -c1-12)"
COPY=""

usage() {
    sed -n '2,/^$/{/^$/d;s/^# \{0,1\}//;p}' "$0"
}

is_phase() {
    local phase
    for phase in "${ALL_PHASES[@]}"; do
        [[ "$1" == "${phase}" ]] && return 0
    done
    return 1
}

parse_args() {
    while [[ $# -gt 0 ]]; do
        case "$1" in
            -h | --help) usage; exit 0 ;;
            --no-bootstrap) run_bootstrap=0 ;;
            --) shift; pytest_args+=("$@"); break ;;
            *)
                if is_phase "$1"; then
                    selected_phases+=("$1")
                elif [[ "$1" == -* ]]; then
                    pytest_args+=("$@")
                    break
                else
                    die "unknown phase '$1' (phases: ${ALL_PHASES[*]})"
                fi
                ;;
        esac
        shift
    done
    [[ ${#selected_phases[@]} -gt 0 ]] || selected_phases=("${DEFAULT_PHASES[@]}")
}

# --- helpers -----------------------------------------------------------------------------

# has_files DIR [FIND-EXPRESSION...]: DIR holds at least one matching file.
has_files() {
    local dir="${NOVA_CELLS_REPO_ROOT}/$1"
    shift
    [[ -d "${dir}" ]] && [[ -n "$(find "${dir}" -type f ! -name .gitkeep ! -name .keep "$@" -print -quit)" ]]
}

# Module files ansible-doc and validate-modules see: plugins/modules/<name>.py.
module_files() {
    find "${NOVA_CELLS_REPO_ROOT}/plugins/modules" -maxdepth 1 -type f -name '*.py' ! -name '__init__.py' \
        -printf 'plugins/modules/%f\n' 2>/dev/null | sort
}

# prepare_copy NAME: set COPY to an up-to-date copy of the working tree (copy_working_tree) at
# $BUILD_BASE/NAME/ansible_collections/nova/cells (the layout ansible-test and Molecule need),
# and hold its lock for the rest of the phase.
prepare_copy() {
    local lock_fd
    COPY="${BUILD_BASE}/$1/ansible_collections/nova/cells"
    mkdir -p "${COPY}"
    exec {lock_fd}>"${BUILD_BASE}/$1.lock"
    if ! flock -n "${lock_fd}"; then
        log "waiting for another run that uses ${BUILD_BASE}/$1 ..."
        flock "${lock_fd}"
    fi
    copy_working_tree "${COPY}"
}

# collections_root_of COPY: the directory that holds ansible_collections/.
collections_root_of() {
    (cd "$1/../../.." && pwd)
}

# Phases call skip_phase REASON to end as "skipped" rather than "passed".
skip_phase() {
    log "SKIPPED: $1"
    printf '%s\n' "$1" >"${RUN_DIR}/skipped-${current_phase}"
    exit 0
}

# check LABEL COMMAND...: run one check of a phase; returns its status after saying which failed.
check() {
    local label="$1" rc=0
    shift
    log "--- ${label}"
    "$@" || rc=$?
    [[ "${rc}" -eq 0 ]] || log "FAILED (exit ${rc}): ${label}"
    return "${rc}"
}

# --- phases ------------------------------------------------------------------------------

phase_lint() {
    local status=0 python_dirs=() shell_files=() dir
    cd "${NOVA_CELLS_REPO_ROOT}"
    for dir in plugins tests tools benchmarks extensions; do
        [[ -d "${dir}" ]] && python_dirs+=("${dir}")
    done
    check "ruff check ${python_dirs[*]}" ruff check --output-format concise --force-exclude "${python_dirs[@]}" || status=1
    # ansible-test's shellcheck covers *.sh only; .ci/run has no extension.
    mapfile -t shell_files < <(find tools .ci -type f \( -name '*.sh' -o -path .ci/run \) | sort)
    check "shellcheck ${shell_files[*]}" shellcheck -x "${shell_files[@]}" || status=1
    check "antsibull-changelog lint" antsibull-changelog lint || status=1
    check "antsibull-changelog lint-changelog-yaml" \
        antsibull-changelog lint-changelog-yaml changelogs/changelog.yaml || status=1
    return "${status}"
}

phase_ansible_lint() {
    local targets=() dir
    for dir in roles playbooks; do
        has_files "${dir}" && targets+=("${dir}")
    done
    [[ ${#targets[@]} -gt 0 ]] || skip_phase "no roles or playbooks yet"
    prepare_copy ansible-lint
    cd "${COPY}"
    ANSIBLE_COLLECTIONS_PATH="$(collections_root_of "${COPY}"):${COLLECTIONS_DIR}" \
        ansible-lint --profile production "${targets[@]}"
}

# Modules carry the Apache-2.0 header (galaxy.yml), so validate-modules' GPLv3 header check
# needs one ignore line per module; ansible-test offers no setting for a collection's licence.
check_module_ignore_lines() {
    local core_version ignore_file missing=() module
    core_version="$(python -c 'from ansible.release import __version__ as v; print(".".join(v.split(".")[:2]))')"
    ignore_file="tests/sanity/ignore-${core_version}.txt"
    while IFS= read -r module; do
        grep -qxF "${module} validate-modules:missing-gplv3-license" "${NOVA_CELLS_REPO_ROOT}/${ignore_file}" 2>/dev/null \
            || missing+=("${module} validate-modules:missing-gplv3-license")
    done < <(module_files)
    if [[ ${#missing[@]} -gt 0 ]]; then
        log "ERROR: ${ignore_file} lacks the licence-header ignore line of a module; add:"
        printf '    %s\n' "${missing[@]}"
        return 1
    fi
    log "every module has its ${ignore_file} line"
}

phase_sanity() {
    local status=0
    check "licence-header ignore lines" check_module_ignore_lines || status=1
    prepare_copy sanity
    cd "${COPY}"
    check "ansible-test sanity" ansible-test sanity --venv --python "${PYTHON_FOR_TESTS}" || status=1
    return "${status}"
}

phase_units() {
    has_files tests/unit -name 'test_*.py' || skip_phase "no unit tests in tests/unit"
    prepare_copy units
    cd "${COPY}"
    ansible-test units --venv --python "${PYTHON_FOR_TESTS}"
}

phase_build() {
    cd "${NOVA_CELLS_REPO_ROOT}"
    python -m pytest -p no:cacheprovider -ra tests/test_collection_build.py "${pytest_args[@]}"
}

phase_docs() {
    "${NOVA_CELLS_REPO_ROOT}/tools/docs.sh"
}

phase_integration() {
    # No test files at all is an empty phase; test files that collect nothing are a failure.
    has_files tests/integration \( -name 'test_*.py' -o -name '*_test.py' \) \
        || skip_phase "no tests in tests/integration"
    cd "${NOVA_CELLS_REPO_ROOT}"
    # Two workers, one test file each at a time (module-scoped labs stay on one worker): much of
    # a test's time is spent waiting for heartbeats and nova-manage start-up, which overlaps well.
    python -m pytest -p no:cacheprovider -ra -n "${NOVA_CELLS_PYTEST_WORKERS:-2}" --dist loadfile \
        tests/integration "${pytest_args[@]}"
}

phase_molecule() {
    has_files extensions/molecule -path "*/extensions/molecule/*/molecule.yml" || skip_phase "no molecule scenarios"
    prepare_copy molecule
    if [[ -n "${IMAGE_BUILD_LOG}" ]]; then
        # Waits for the background build (its lock), then reports what it did.
        flock -w 1800 "${NOVA_CELLS_HOME}/build-images.lock" true
        log "images, built in the background during the earlier phases:"
        cat "${IMAGE_BUILD_LOG}"
    fi
    # tools/molecule.sh builds what is missing of the images, runs the scenarios in parallel
    # processes and prints the seconds of each phase of each scenario.
    "${NOVA_CELLS_REPO_ROOT}/tools/molecule.sh" --copy "${COPY}" --jobs "${MOLECULE_JOBS}"
}

phase_ee() {
    if [[ -n "${IMAGE_BUILD_LOG}" ]]; then
        # The base image comes from the background build of the molecule phase's images.
        flock -w 1800 "${NOVA_CELLS_HOME}/build-images.lock" true
    fi
    "${NOVA_CELLS_REPO_ROOT}/tools/ee.sh" build
    "${NOVA_CELLS_REPO_ROOT}/tools/ee.sh" check
}

phase_debian13() {
    local steps=()
    read -r -a steps <<<"${NOVA_CELLS_MATRIX_STEPS:-}"
    # In CI the integration suite runs on the host's controller only: on 2.21 it would add about 20
    # minutes to a run that already takes about 25 here. tools/matrix.sh alone runs it.
    NOVA_CELLS_MATRIX_PHASES="${NOVA_CELLS_MATRIX_PHASES:-sanity units build}" \
        "${NOVA_CELLS_REPO_ROOT}/tools/matrix.sh" "${steps[@]}"
}

# --- driver ------------------------------------------------------------------------------

declare -A phase_result=() phase_seconds=()
current_phase=""

run_phase() {
    local phase="$1" started rc=0
    current_phase="${phase}"
    log ""
    log "==> ${phase}"
    started="$(now)"
    # A subshell per phase: it may cd and exit freely. It is not run as `( ... ) || rc=$?`:
    # bash would then ignore errexit inside it, and a failed step would not end the phase.
    set +e
    ( set -e; "phase_${phase//-/_}" )
    rc=$?
    set -e
    phase_seconds[${phase}]="$(seconds_since "${started}")"
    if [[ "${rc}" -ne 0 ]]; then
        phase_result[${phase}]=failed
    elif [[ -f "${RUN_DIR}/skipped-${phase}" ]]; then
        phase_result[${phase}]=skipped
    else
        phase_result[${phase}]=passed
    fi
    log "<== ${phase}: ${phase_result[${phase}]} in ${phase_seconds[${phase}]} s"
}

print_summary() {
    local phase passed=0 failed=0 skipped=0 note
    log ""
    log "==> summary"
    printf '%-14s %-8s %9s  %s\n' phase result seconds note
    for phase in "$@"; do
        note=""
        [[ -f "${RUN_DIR}/skipped-${phase}" ]] && note="$(cat "${RUN_DIR}/skipped-${phase}")"
        printf '%-14s %-8s %9s%s\n' "${phase}" "${phase_result[${phase}]}" "${phase_seconds[${phase}]}" "${note:+  ${note}}"
        case "${phase_result[${phase}]}" in
            passed) passed=$((passed + 1)) ;;
            failed) failed=$((failed + 1)) ;;
            skipped) skipped=$((skipped + 1)) ;;
        esac
    done
    printf '%-14s %-8s %9s\n' total "" "$(seconds_since "${run_started}")"
    if [[ "${skipped}" -gt 0 ]]; then
        log "${passed} passed, ${failed} failed, ${skipped} skipped"
    else
        log "${passed} passed, ${failed} failed"
    fi
    [[ "${failed}" -eq 0 ]]
}

cleanup() {
    [[ -z "${IMAGE_BUILD_PID}" ]] || kill -TERM "${IMAGE_BUILD_PID}" 2>/dev/null || true
    [[ -z "${RUN_DIR}" ]] || rm -rf "${RUN_DIR}"
}

# When the molecule phase follows other phases, the lab images (about 5 minutes cold, mostly
# downloads and dpkg) are built in the background meanwhile; tools/build-images.sh holds its lock
# until it is done, so the molecule phase's own call waits for it and then finds them up to date.
IMAGE_BUILD_PID=""
IMAGE_BUILD_LOG=""
start_background_image_build() {
    [[ " ${selected_phases[*]} " == *" molecule "* && ${#selected_phases[@]} -gt 1 ]] || return 0
    has_files extensions/molecule -path "*/extensions/molecule/*/molecule.yml" || return 0
    IMAGE_BUILD_LOG="${RUN_DIR}/build-images.log"
    "${NOVA_CELLS_REPO_ROOT}/tools/build-images.sh" >"${IMAGE_BUILD_LOG}" 2>&1 &
    IMAGE_BUILD_PID=$!
    log "images: tools/build-images.sh runs in the background for the molecule phase"
}

main() {
    parse_args "$@"
    run_started="$(now)"
    mkdir -p "${NOVA_CELLS_HOME}/runs" "${BUILD_BASE}"
    RUN_DIR="$(mktemp -d "${NOVA_CELLS_HOME}/runs/test.XXXXXX")"
    trap cleanup EXIT

    local phases_run=()
    if [[ "${run_bootstrap}" -eq 1 ]]; then
        current_phase=bootstrap
        log "==> bootstrap"
        local started rc=0
        started="$(now)"
        "${NOVA_CELLS_REPO_ROOT}/tools/bootstrap.sh" || rc=$?
        phase_seconds[bootstrap]="$(seconds_since "${started}")"
        phase_result[bootstrap]="$([[ ${rc} -eq 0 ]] && echo passed || echo failed)"
        phases_run+=(bootstrap)
        if [[ "${rc}" -ne 0 ]]; then
            log "bootstrap failed: no phase can run"
            print_summary "${phases_run[@]}" || exit 1
        fi
    fi

    start_background_image_build
    export PATH="${CTL_VENV}/bin:${PATH}"
    export PIP_DISABLE_PIP_VERSION_CHECK=1
    if [[ ! -t 1 ]]; then
        export ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1 PY_COLORS=0 NO_COLOR=1
    fi

    local phase
    for phase in "${selected_phases[@]}"; do
        run_phase "${phase}"
        phases_run+=("${phase}")
    done
    print_summary "${phases_run[@]}"
}

main "$@"; exit "$?"  # on one line: editing this file during a run cannot add commands
