#!/usr/bin/env bash
# The nova.cells test command: bootstrap the machine, then run the phases as nox sessions (noxfile.py,
# antsibull-nox.toml).
#
# Usage: tools/test.sh [--no-bootstrap] [PHASE...] [-- PYTEST_ARGS...]
#
# Phases and their nox sessions (default: all but debian13):
#   lint          antsibull-nox's lint (ruff with ruff.toml on all Python) and shellcheck (tools/*.sh,
#                 .ci/run; antsibull-changelog lint)
#   ansible-lint  antsibull-nox's ansible-lint (.ansible-lint: profile production, offline)
#   sanity        ansible-test sanity --venv --python X.Y in antsibull-nox's collection tree
#   units         ansible-test units --venv --python X.Y, likewise
#   build         tests/test_collection_build.py: build, install, ansible-doc per module (antsibull-nox's
#                 build-import-check, a subset without Galaxy's importer, runs on demand: nox -s build-import-check)
#   docs          tools/docs.sh: antsibull-docs lint-collection-docs --plugin-docs, then the docs site
#   integration   pytest tests/integration: the real-Nova lab
#   molecule      tools/molecule.sh: the Molecule scenarios in parallel, seconds per phase
#   ee            tools/ee.sh build and check: the execution environment
#   debian13      tools/matrix.sh: bootstrap, sanity, units and build in a Debian 13 container, then
#                 Molecule single_cell there (see tools/matrix.sh --help)
#
# Every selected session runs even when an earlier one fails; nox ends with each session's result and
# duration, and exits non-zero if any failed. Arguments from the first one that is not a phase (or after
# "--") go to the pytest sessions, e.g. tools/test.sh integration -k discover -x
#
# Environment: NOVA_CELLS_HOME (see tools/bootstrap.sh); nox keeps its session venvs in
# $NOVA_CELLS_HOME/nox/<checkout>/ and reuses them from run to run.
set -euo pipefail

# shellcheck source=tools/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly ALL_PHASES=(lint ansible-lint sanity units build docs integration molecule ee debian13)
# The default run (CI). debian13 builds and bootstraps a Debian 13 container (about 15 minutes before its
# first test) and runs on demand: tools/test.sh debian13.
readonly DEFAULT_PHASES=(lint ansible-lint sanity units build docs integration molecule ee)

sessions_of() {
    case "$1" in
        lint) printf '%s\n' lint shellcheck ;;
        *) printf '%s\n' "$1" ;;
    esac
}

# The background image build, stopped when this script ends.
image_build_pid=""

main() {
    local phase phases=() pytest_args=() sessions=() run_bootstrap=1
    while [[ $# -gt 0 ]]; do
        case "$1" in
            -h | --help) sed -n '2,/^$/{/^$/d;s/^# \{0,1\}//;p}' "$0"; exit 0 ;;
            --no-bootstrap) run_bootstrap=0 ;;
            --) shift; pytest_args+=("$@"); break ;;
            -*) pytest_args+=("$@"); break ;;
            *)
                [[ " ${ALL_PHASES[*]} " == *" $1 "* ]] || die "unknown phase '$1' (phases: ${ALL_PHASES[*]})"
                phases+=("$1")
                ;;
        esac
        shift
    done
    [[ ${#phases[@]} -gt 0 ]] || phases=("${DEFAULT_PHASES[@]}")

    [[ "${run_bootstrap}" -eq 0 ]] || "${NOVA_CELLS_REPO_ROOT}/tools/bootstrap.sh"

    sessions=()
    for phase in "${phases[@]}"; do
        mapfile -t -O "${#sessions[@]}" sessions < <(sessions_of "${phase}")
    done

    # When the molecule phase follows other phases, the lab images (about 5 minutes cold) are built in the
    # background meanwhile; tools/build-images.sh holds its lock until it is done, so the molecule and ee
    # sessions wait for it and then find the images up to date.
    if [[ " ${phases[*]} " == *" molecule "* && ${#phases[@]} -gt 1 ]]; then
        mkdir -p "${LOG_DIR}"
        "${NOVA_CELLS_REPO_ROOT}/tools/build-images.sh" >"${LOG_DIR}/build-images-background.log" 2>&1 &
        image_build_pid=$!
        log "images: tools/build-images.sh runs in the background (${LOG_DIR}/build-images-background.log)"
    fi
    trap '[[ -z "${image_build_pid}" ]] || kill -TERM "${image_build_pid}" 2>/dev/null || true' EXIT

    # nox and antsibull-nox from venv-nox; ansible-galaxy of the controller venv lists the installed collections
    # (those of $COLLECTIONS_DIR, from the ansible wheel), so antsibull-nox never asks Galaxy for them.
    export PATH="${NOX_VENV}/bin:${PATH}:${CTL_VENV}/bin"
    export ANSIBLE_COLLECTIONS_PATH="${COLLECTIONS_DIR}"
    export NOVA_CELLS_PYTHON_XY NOVA_CELLS_CTL_VENV="${CTL_VENV}"
    export NOVA_CELLS_PYTEST_ARGS="${pytest_args[*]@Q}"
    export PIP_DISABLE_PIP_VERSION_CHECK=1
    if [[ ! -t 1 ]]; then
        export ANSIBLE_FORCE_COLOR=0 ANSIBLE_NOCOLOR=1 PY_COLORS=0 NO_COLOR=1
    fi
    cd "${NOVA_CELLS_REPO_ROOT}"
    nox --no-color --reuse-venv yes --envdir "${NOVA_CELLS_HOME}/nox/$(checkout_id)" -s "${sessions[@]}"
}

main "$@"; exit "$?"  # on one line: editing this file during a run cannot add commands
