# shellcheck shell=bash disable=SC2034  # the variables are used by the scripts that source this file
# Shared settings and helpers of the tools/*.sh scripts (sourced, not run).

NOVA_CELLS_REPO_ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
export NOVA_CELLS_HOME="${NOVA_CELLS_HOME:-${HOME}/.cache/nova-cells}"

# NOVA_CELLS_CTL_VENV: another controller venv for tools/test.sh (tools/matrix.sh: ansible-core 2.20).
CTL_VENV="${NOVA_CELLS_CTL_VENV:-${NOVA_CELLS_HOME}/venv-ctl}"
NOVA_VENV="${NOVA_CELLS_HOME}/venv-nova"
# nox, antsibull-nox and bindep (tools/requirements-nox.txt): the test runner and the Debian package list.
NOX_VENV="${NOVA_CELLS_HOME}/venv-nox"
COLLECTIONS_DIR="${NOVA_CELLS_HOME}/collections"
LOG_DIR="${NOVA_CELLS_HOME}/logs"

# The Python every tool runs on (ansible-test is told --python with the same X.Y): Debian 12's
# python3.11, else (Debian 13) the machine's python3 (3.13).
if [[ -z "${NOVA_CELLS_PYTHON:-}" ]]; then
    if command -v python3.11 >/dev/null 2>&1; then
        NOVA_CELLS_PYTHON=python3.11
    else
        NOVA_CELLS_PYTHON=python3
    fi
fi
# X.Y of NOVA_CELLS_PYTHON ("" when it does not run).
NOVA_CELLS_PYTHON_XY="$("${NOVA_CELLS_PYTHON}" -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null || true)"

# checkout_id: a short name of this checkout, for build areas and nox venvs shared by several checkouts.
checkout_id() {
    printf '%s' "${NOVA_CELLS_REPO_ROOT}" | sha256sum | cut -c1-12
}

# Seconds since the epoch with microseconds (bash 5).
now() {
    printf '%s\n' "${EPOCHREALTIME}"
}

# seconds_since START: elapsed seconds with one decimal.
seconds_since() {
    awk -v start="$1" -v end="${EPOCHREALTIME}" 'BEGIN { printf "%.1f", end - start }'
}

log() {
    printf '%s\n' "$*"
}

die() {
    printf 'ERROR: %s\n' "$*" >&2
    exit 1
}

# run_logged LOGNAME COMMAND...: run quietly with the output in $LOG_DIR/LOGNAME.log;
# on failure print the log's tail so CI shows why.
run_logged() {
    local log_name="$1"
    shift
    local log_file="${LOG_DIR}/${log_name}.log"
    local rc=0
    mkdir -p "${LOG_DIR}"
    "$@" >"${log_file}" 2>&1 || rc=$?
    if [[ "${rc}" -eq 0 ]]; then
        return 0
    fi
    printf 'ERROR: command failed (exit %s): %s\n--- last lines of %s ---\n' "${rc}" "$*" "${log_file}" >&2
    tail -n 60 "${log_file}" >&2
    printf -- '--- end of %s ---\n' "${log_file}" >&2
    return "${rc}"
}

# sha256_of FILE...: one hash over the files' contents.
sha256_of() {
    cat "$@" | sha256sum | cut -d' ' -f1
}

# copy_working_tree DEST: make DEST (a path ending in ansible_collections/nova/cells) an up-to-date
# copy of the working tree. Files ignored by git are left out; untracked files that git does not
# ignore are included, as in a clean clone of a commit that adds them. No .git: ansible-test then
# lists every file. DEST's tests/output (ansible-test's delegation venv, ~20 s to create) and
# .ansible (ansible-lint's cache) survive from run to run.
copy_working_tree() {
    mkdir -p "$1"
    rsync -a --delete --delete-excluded --filter='P /tests/output/' --filter='P .ansible/' \
        --exclude=/.git --exclude=/tests/output --exclude=.ansible/ --filter=':- .gitignore' \
        "${NOVA_CELLS_REPO_ROOT}/" "$1/"
}

# ensure_tool_venv VENV REQUIREMENTS: VENV has exactly what the pinned REQUIREMENTS file names
# (rebuilt when that file or the Python version changes). For the tools that only some commands
# need (tools/docs.sh, tools/ee.sh); the controller and Nova venvs are tools/bootstrap.sh's.
ensure_tool_venv() {
    local venv="$1" requirements="$2" stamp
    stamp="$(sha256_of "${requirements}") $("${NOVA_CELLS_PYTHON}" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])')"
    [[ -f "${venv}/.nova-cells-stamp" && "$(cat "${venv}/.nova-cells-stamp")" == "${stamp}" ]] && return 0
    log "creating ${venv} from ${requirements#"${NOVA_CELLS_REPO_ROOT}"/} ..."
    run_logged "$(basename "${venv}")-create" "${NOVA_CELLS_PYTHON}" -m venv --clear "${venv}"
    run_logged "$(basename "${venv}")-install" "${venv}/bin/python" -m pip --disable-pip-version-check --no-input \
        install --progress-bar off -r "${requirements}"
    printf '%s\n' "${stamp}" >"${venv}/.nova-cells-stamp"
}
