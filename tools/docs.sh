#!/usr/bin/env bash
# Build the nova.cells docs site (antsibull-docs + Sphinx) and lint its sources.
#
# Usage: tools/docs.sh [--lint-only] [--open-path]
#   1. a copy of the working tree as ansible_collections/nova/cells (files ignored by git left out)
#   2. the Markdown guides of docs/ named in docs/docsite/extra-docs.yml become its
#      docs/docsite/rst/guide_<name>.rst (tools/docs_guides.py, pandoc)
#   3. antsibull-docs lint-collection-docs --plugin-docs: extra docs, links, module, filter and role
#      documentation (DOCUMENTATION and meta/argument_specs.yml) must be clean
#   4. antsibull-docs sphinx-init + collection: the reStructuredText of every module, filter and
#      role; docs/images/ next to the guides
#   5. sphinx-build -W (warnings are errors), HTML into $NOVA_CELLS_HOME/build/<checkout>/docs/site/build/html
# Nothing is fetched but the PyPI packages of tools/requirements-docs.txt ($NOVA_CELLS_HOME/venv-docs,
# created here when missing or out of date): intersphinx is off, so references to docs.ansible.com
# pages become plain links (conf.py's missing-reference handler; other unresolved references fail).
# --lint-only stops after step 3. The last line names the site's index.html.
set -euo pipefail

# shellcheck source=tools/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

readonly DOCS_VENV="${NOVA_CELLS_HOME}/venv-docs"
readonly DOCS_REQUIREMENTS="${NOVA_CELLS_REPO_ROOT}/tools/requirements-docs.txt"
BUILD_BASE="${NOVA_CELLS_HOME}/build/$(printf '%s' "${NOVA_CELLS_REPO_ROOT}" | sha256sum | cut -c1-12)/docs"

usage() {
    sed -n '2,/^$/{/^$/d;s/^# \{0,1\}//;p}' "$0"
}

say() {
    log "[docs] $*"
}

main() {
    local lint_only=0 started copy collections site
    while [[ $# -gt 0 ]]; do
        case "$1" in
            -h | --help) usage; exit 0 ;;
            --lint-only) lint_only=1 ;;
            *) die "unknown argument '$1' (see --help)" ;;
        esac
        shift
    done
    started="$(now)"
    ensure_tool_venv "${DOCS_VENV}" "${DOCS_REQUIREMENTS}"
    export PATH="${DOCS_VENV}/bin:${PATH}"
    # antsibull-docs runs ansible-doc of this venv; it must see only this copy of nova.cells.
    collections="${BUILD_BASE}/collections"
    copy="${collections}/ansible_collections/nova/cells"
    export ANSIBLE_COLLECTIONS_PATH="${collections}" ANSIBLE_COLLECTIONS_SCAN_SYS_PATH=false
    copy_working_tree "${copy}"

    say "guides: docs/*.md -> docs/docsite/rst/*.rst (tools/docs_guides.py)"
    python "${NOVA_CELLS_REPO_ROOT}/tools/docs_guides.py" "${copy}"

    say "antsibull-docs lint-collection-docs --plugin-docs"
    (cd "${copy}" && antsibull-docs lint-collection-docs --plugin-docs .)
    say "lint clean"
    [[ "${lint_only}" -eq 0 ]] || { say "done in $(seconds_since "${started}") s"; return 0; }

    site="${BUILD_BASE}/site"
    rm -rf "${site}"
    # antsibull-docs wants its directories writable by their owner only.
    mkdir -p "${site}" && chmod 0700 "${site}"
    say "antsibull-docs sphinx-init and collection"
    run_logged docs-sphinx-init antsibull-docs sphinx-init --use-current --squash-hierarchy --fail-on-error \
        --project nova.cells --copyright 'nova.cells contributors' --title 'nova.cells' \
        --dest-dir "${site}" nova.cells
    # No network at build time: no intersphinx inventories (the default ones live on the web).
    cat >>"${site}/conf.py" <<'EOF'

# nova.cells (tools/docs.sh): the docs build has no network, so no intersphinx inventories. The
# labels of the Ansible docs that antsibull-docs refers to become plain links to docs.ansible.com;
# any other unresolved reference still fails the build (-W).
extensions = [extension for extension in extensions if extension != 'sphinx.ext.intersphinx']
intersphinx_mapping = {}

_ANSIBLE_DOCS = 'https://docs.ansible.com/projects/ansible/devel/'
_ANSIBLE_LABELS = {
    'common_return_values': 'reference_appendices/common_return_values.html',
    'ansible_configuration_settings': 'reference_appendices/config.html',
}


def _ansible_docs_link(app, env, node, contnode):
    from docutils import nodes

    target = node.get('reftarget')
    if node.get('reftype') != 'ref' or target not in _ANSIBLE_LABELS:
        return None
    reference = nodes.reference('', '', internal=False, refuri=_ANSIBLE_DOCS + _ANSIBLE_LABELS[target])
    reference += contnode
    return reference


def setup(app):
    app.connect('missing-reference', _ansible_docs_link)
EOF
    mkdir -p "${site}/rst" && chmod 0700 "${site}/rst"
    run_logged docs-antsibull antsibull-docs --config-file "${site}/antsibull-docs.cfg" collection --cleanup everything \
        --fail-on-error --use-current --squash-hierarchy --dest-dir "${site}/rst" nova.cells
    if [[ -d "${copy}/docs/images" ]]; then
        cp -r "${copy}/docs/images" "${site}/rst/docsite/images"
    fi
    say "sphinx-build -W (log ${LOG_DIR}/docs-sphinx.log)"
    run_logged docs-sphinx sphinx-build -M html "${site}/rst" "${site}/build" -c "${site}" -W --keep-going
    say "built in $(seconds_since "${started}") s: ${site}/build/html/index.html"
}

main "$@"; exit "$?"  # on one line: editing this file during a run cannot add commands
