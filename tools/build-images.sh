#!/usr/bin/env bash
# Build the container images of the nova.cells Molecule lab and demo:
#
#   localhost/nova-cells/base:bookworm   Debian bookworm, systemd as PID 1 (mmdebstrap | podman import)
#   localhost/nova-cells/nova:34.0.0     FROM base: /opt/nova venv (nova 34.0.0, placement 16.0.0), units
#   localhost/nova-cells/infra:bookworm  FROM nova: mariadb-server, rabbitmq-server, memcached
#   localhost/nova-cells/cloud:bookworm  FROM infra: Keystone, Glance, Neutron API, openstackclient
#
# An image is rebuilt only when the hash of its inputs differs from the hash in
# its label (nova-cells.inputs-hash) or the image is missing. A child's hash
# includes its parent's image id, so a rebuilt parent rebuilds its children.
# Details: extensions/molecule/images/README.md.
#
# Needs: podman, mmdebstrap, a working /etc/containers/containers.conf (all from
# tools/bootstrap.sh), access to the Debian mirror and PyPI. Run as root.

set -euo pipefail

usage() {
    cat <<'EOF'
Usage: tools/build-images.sh [options] [base|nova|infra|cloud ...]

Builds the images that are out of date (all four when no name is given; a
named image's parents are checked and built first when needed).

Options:
  -f, --force                 rebuild the named images (default: all) even if up to date,
                              without podman's layer cache
      --suite SUITE           Debian suite of the images: bookworm (default: base:bookworm,
                              nova:34.0.0, infra:bookworm) or trixie (Debian 13, Python 3.13:
                              base:trixie, nova:34.0.0-trixie, infra:trixie)
  -v, --verbose               stream build output (it always goes to a log file too)
  -h, --help                  this help

Environment:
  NOVA_CELLS_HOME            state directory (default ~/.cache/nova-cells): logs/images/,
                             cache/image-build/ (pip cache, CA bundle), build-images.lock
  NOVA_CELLS_DEBIAN_SOURCES  apt sources for the base (default: /etc/apt/sources.list.d/debian.sources,
                             else the first *.sources there, else /etc/apt/sources.list); its suite
                             names are rewritten to the suite built (trixie-updates -> bookworm-updates
                             for the bookworm images on a Debian 13 host, and the other way round)
  NOVA_CELLS_CA_BUNDLE       CA bundle mounted into builds for pip (default: the machine's bundle
                             plus /usr/local/share/ca-certificates/*.crt)
  NOVA_CELLS_BUILD_NETWORK   network mode of podman build (default: host)
EOF
}

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
IMAGES_DIR=$ROOT/extensions/molecule/images
NOVA_CELLS_HOME=${NOVA_CELLS_HOME:-${HOME:?set HOME or NOVA_CELLS_HOME}/.cache/nova-cells}
LOG_DIR=$NOVA_CELLS_HOME/logs/images
# Mounted at /mnt in every build step (and nowhere at run time): the pip cache
# (pip/) and the CA bundle for pip (ca-bundle.crt). /mnt exists in the base, so
# the mount leaves no mount-point stub in the images.
BUILD_SHARE=$NOVA_CELLS_HOME/cache/image-build
# Ids of the images this script has built (and not yet removed) on this machine.
BUILT_IDS=$NOVA_CELLS_HOME/images-built.ids
# default_debian_sources: the machine's apt sources, deb822 (Debian 12 and 13 installs) or one-line.
default_debian_sources() {
    local candidate
    for candidate in /etc/apt/sources.list.d/debian.sources /etc/apt/sources.list.d/*.sources /etc/apt/sources.list; do
        if [[ -r $candidate ]]; then
            printf '%s\n' "$candidate"
            return 0
        fi
    done
    printf '%s\n' /etc/apt/sources.list.d/debian.sources
}
# sources_suite FILE: the first suite a sources file names (deb822 "Suites:" or a one-line "deb"),
# without its -updates/-security/-backports suffix.
sources_suite() {
    awk '$1 == "Suites:" { print $2; exit } $1 == "deb" { i = 2; if ($2 ~ /^\[/) { while ($i !~ /\]$/) i++; i++ } print $(i + 1); exit }' "$1" |
        sed 's/-\(updates\|security\|backports\)$//'
}
DEBIAN_SOURCES=${NOVA_CELLS_DEBIAN_SOURCES:-$(default_debian_sources)}
BUILD_NETWORK=${NOVA_CELLS_BUILD_NETWORK:-host}

BASE_IMAGE=localhost/nova-cells/base:bookworm
NOVA_IMAGE=localhost/nova-cells/nova:34.0.0
INFRA_IMAGE=localhost/nova-cells/infra:bookworm
LABEL_KEY=nova-cells.inputs-hash
SUITE=bookworm

# Bump a recipe version when this script changes how that image is built.
BASE_RECIPE="v1 mmdebstrap --variant=apt --skip=cleanup/apt/lists $SUITE; import CMD /sbin/init, STOPSIGNAL SIGRTMIN+3"
NOVA_RECIPE="v1 podman build -f nova/Containerfile"
INFRA_RECIPE="v1 podman build -f infra/Containerfile"

# Inside builds: where BUILD_SHARE is mounted.
SHARE_IN_BUILD=/mnt
# The nova image's pins: the one lock of the Nova stack, which the host's Nova venv uses too (the
# image installs the lines whose markers hold for its Python). The base's packages on top of
# base/packages.txt.
NOVA_LOCK=tools/requirements-nova.txt
EXTRA_BASE_PACKAGES=""
LOG_SUFFIX=""

ALL_IMAGES=(base nova infra)
declare -A TAG=([base]=$BASE_IMAGE [nova]=$NOVA_IMAGE [infra]=$INFRA_IMAGE)
declare -A PARENT=([base]="" [nova]=base [infra]=nova)
# Measured on an idle 2-core machine; expect up to twice as long while other jobs run.
declare -A ESTIMATE=([base]="about 50 s" [nova]="about 90 s" [infra]="about 30 s")

# -- the cloud image (Keystone, Glance, Neutron API, openstackclient; issue 12) ---------------
# Its own section: FROM infra, built like nova (pip cache and CA bundle mounted at /mnt).
CLOUD_IMAGE=localhost/nova-cells/cloud:bookworm
CLOUD_RECIPE="v1 podman build -f cloud/Containerfile"
ALL_IMAGES+=(cloud)
TAG[cloud]=$CLOUD_IMAGE
PARENT[cloud]=infra
ESTIMATE[cloud]="about 4 min"
cloud_inputs_hash() { hash_inputs "$CLOUD_RECIPE parent=$1" "$2/cloud" "$2/.containerignore"; }
cloud_build_args() {
    printf '%s\n' --build-arg "INFRA_IMAGE=$INFRA_IMAGE" -v "$BUILD_SHARE:$SHARE_IN_BUILD" \
        --build-arg "NOVA_PIP_CACHE=$SHARE_IN_BUILD/pip" --build-arg "NOVA_CA_BUNDLE=$CA_IN_BUILD"
}
declare -A RESULT=() SECS=() OLD_ID=() NEW_ID=() WANTED=() FORCED=()

# use_suite SUITE: the tags, pins and recipes of the images of SUITE. bookworm is the default and
# keeps the settings above exactly (same tags, same input hashes).
use_suite() {
    case $1 in
        bookworm) return 0 ;;
        trixie)
            SUITE=trixie
            LOG_SUFFIX=-trixie
            BASE_IMAGE=localhost/nova-cells/base:trixie
            NOVA_IMAGE=localhost/nova-cells/nova:34.0.0-trixie
            INFRA_IMAGE=localhost/nova-cells/infra:trixie
            # The cloud venvs pin only their top-level packages: pip resolves the rest for Python 3.13.
            CLOUD_IMAGE=localhost/nova-cells/cloud:trixie
            # trixie's minimal set lacks passwd (useradd, groupadd), which the nova image needs.
            EXTRA_BASE_PACKAGES=passwd
            ;;
        *) die "unknown suite '$1' (bookworm, trixie)" ;;
    esac
    BASE_RECIPE="v1 mmdebstrap --variant=apt --skip=cleanup/apt/lists $SUITE +$EXTRA_BASE_PACKAGES; import CMD /sbin/init, STOPSIGNAL SIGRTMIN+3"
    TAG=([base]=$BASE_IMAGE [nova]=$NOVA_IMAGE [infra]=$INFRA_IMAGE [cloud]=$CLOUD_IMAGE)
}

FORCE=0
VERBOSE=0
WORK=""
BG_PID=""
CA_IN_BUILD=""

log() { printf '[images] %s\n' "$*"; }
die() {
    printf '[images] ERROR: %s\n' "$*" >&2
    exit 1
}

cleanup() {
    if [[ -n $BG_PID ]]; then
        # the build job's process group (see run_logged), by its id
        kill -TERM -- "-$BG_PID" 2>/dev/null || true
        wait "$BG_PID" 2>/dev/null || true
        printf "[images] interrupted; stopped the build job (process group %s)\n" "$BG_PID" >&2 || true
    fi
    if [[ -n $WORK ]]; then
        rm -rf "$WORK"
    fi
}
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM

# ---------------------------------------------------------------------------
# helpers

# read_list FILE: the non-comment words of FILE, comma-separated.
read_list() {
    sed -e 's/#.*//' "$1" | tr -s ' \t\n' '\n' | sed '/^$/d' | paste -sd, -
}

# list_inputs DIR...: the files under the DIRs (relative to the repository),
# NUL-separated and sorted: in a git checkout the files git would track (tracked,
# or untracked and not ignored), elsewhere all files. Caches and editor files
# never count (the same patterns as .containerignore keeps out of the builds).
list_inputs() {
    local f
    if git -C "$ROOT" rev-parse --is-inside-work-tree >/dev/null 2>&1; then
        git -C "$ROOT" ls-files -z --cached --others --exclude-standard -- "$@"
    else
        (cd "$ROOT" && find "$@" -name .git -prune -o -type f -print0)
    fi | LC_ALL=C sort -z | while IFS= read -r -d '' f; do
        case /$f in
            */.ruff_cache/* | */__pycache__/* | */.pytest_cache/* | *.pyc | *~ | *.swp) ;;
            *) printf '%s\0' "$f" ;;
        esac
    done
}

# hash_inputs RECIPE DIR...: sha256 over RECIPE and, for every input file under
# the DIRs (relative to the repository), its path, executable bit and content.
hash_inputs() {
    local recipe=$1 f x
    shift
    {
        printf 'recipe %s\n' "$recipe"
        while IFS= read -r -d '' f; do
            [[ -f $ROOT/$f ]] || continue
            x=-
            if [[ -x $ROOT/$f ]]; then x=x; fi
            printf '%s %s %s\n' "$f" "$x" "$(sha256sum <"$ROOT/$f" | cut -d' ' -f1)"
        done < <(list_inputs "$@")
    } | sha256sum | cut -d' ' -f1
}

image_id() { podman image inspect --format '{{.Id}}' "$1" 2>/dev/null; }
image_label() { podman image inspect --format "{{index .Labels \"$LABEL_KEY\"}}" "$1" 2>/dev/null; }
image_mb() { podman image inspect --format '{{.Size}}' "$1" 2>/dev/null | awk '{printf "%d MB", $1 / 1000000}'; }

# run_logged NAME LOGFILE CMD...: run CMD with its output in LOGFILE (and on the
# terminal with --verbose); print a line every 30 s while it runs.
run_logged() {
    local name=$1 logfile=$2 start=$SECONDS next=30 rc=0
    shift 2
    if ((VERBOSE)); then
        "$@" 2>&1 | tee "$logfile"
        return "${PIPESTATUS[0]}"
    fi
    # In its own session and process group, so that cleanup() can stop all of
    # it (podman, mmdebstrap and their children) by that group's id.
    setsid "$@" >"$logfile" 2>&1 </dev/null &
    BG_PID=$!
    while kill -0 "$BG_PID" 2>/dev/null; do
        sleep 1
        if ((SECONDS - start >= next)); then
            log "$name: still building ($((SECONDS - start)) s)"
            next=$((next + 30))
        fi
    done
    wait "$BG_PID" || rc=$?
    BG_PID=""
    return "$rc"
}

fail_with_log() {
    local name=$1 logfile=$2
    printf '[images] ERROR: %s: build failed; last lines of %s:\n' "$name" "$logfile" >&2
    tail -n 40 "$logfile" | sed 's/^/    /' >&2
    exit 1
}

# ---------------------------------------------------------------------------
# checks and set-up

preflight() {
    local cmd out
    for cmd in podman mmdebstrap sha256sum flock find awk paste; do
        command -v "$cmd" >/dev/null 2>&1 || die "'$cmd' not found; run tools/bootstrap.sh first (it installs podman, runc, catatonit, netavark, aardvark-dns, mmdebstrap)"
    done
    if ! out=$(podman info --format '{{.Host.OCIRuntime.Name}} cgroups={{.Host.CgroupsVersion}}' 2>&1); then
        printf '%s\n' "$out" | tail -n 5 | sed 's/^/    /' >&2
        die "'podman info' failed; tools/bootstrap.sh writes /etc/containers/containers.conf (runtime runc, default_ulimits)"
    fi
    out=$(printf '%s\n' "$out" | tail -n 1)
    case $out in
        runc*) ;;
        *) log "warning: podman runtime is '${out%% *}', not runc (crun fails on cgroup v1 hybrid); see tools/bootstrap.sh" ;;
    esac
    if ((EUID != 0)); then
        log "warning: not root: mmdebstrap needs unshare mode and the images land in this user's podman storage"
    fi
    [[ -r $DEBIAN_SOURCES ]] || die "apt sources '$DEBIAN_SOURCES' not readable; set NOVA_CELLS_DEBIAN_SOURCES to a deb822 or one-line sources file"
    for cmd in base/packages.txt base/dpkg.cfg nova/Containerfile infra/Containerfile; do
        [[ -f $IMAGES_DIR/$cmd ]] || die "missing $IMAGES_DIR/$cmd"
    done
    [[ -f $ROOT/$NOVA_LOCK ]] || die "missing $ROOT/$NOVA_LOCK"

    mkdir -p "$LOG_DIR" "$BUILD_SHARE/pip"
    lock
    WORK=$(mktemp -d "${TMPDIR:-/tmp}/nc-build-images.XXXXXX")
    local machine_suite
    machine_suite=$(sources_suite "$DEBIAN_SOURCES")
    [[ -n $machine_suite ]] || die "no suite found in apt sources '$DEBIAN_SOURCES'"
    if [[ $machine_suite != "$SUITE" ]]; then
        # The same mirror, the suite's names (bookworm-updates -> trixie-updates, ...). Sources that
        # name the suite already are used as they are, so the input hash stays that of the file.
        sed "s/\b$machine_suite\b/$SUITE/g" "$DEBIAN_SOURCES" >"$WORK/debian.sources"
        DEBIAN_SOURCES=$WORK/debian.sources
    fi

    # The CA bundle for pip inside builds: mounted for the build only, so no
    # image carries this machine's trust anchors.
    local CA_BUNDLE=$BUILD_SHARE/ca-bundle.crt
    if [[ -n ${NOVA_CELLS_CA_BUNDLE:-} ]]; then
        [[ -r $NOVA_CELLS_CA_BUNDLE ]] || die "NOVA_CELLS_CA_BUNDLE '$NOVA_CELLS_CA_BUNDLE' not readable"
        cat "$NOVA_CELLS_CA_BUNDLE" >"$CA_BUNDLE"
    else
        : >"$CA_BUNDLE"
        if [[ -r /etc/ssl/certs/ca-certificates.crt ]]; then
            cat /etc/ssl/certs/ca-certificates.crt >>"$CA_BUNDLE"
        fi
        local crt
        for crt in /usr/local/share/ca-certificates/*.crt; do
            if [[ -r $crt ]]; then cat "$crt" >>"$CA_BUNDLE"; fi
        done
    fi
    if [[ -s $CA_BUNDLE ]]; then
        CA_IN_BUILD=$SHARE_IN_BUILD/ca-bundle.crt
    else
        log "warning: no CA bundle found on this machine; pip inside the build uses the image's own"
    fi
}

lock() {
    exec 9>"$NOVA_CELLS_HOME/build-images.lock"
    if ! flock -n 9; then
        log "another tools/build-images.sh is running; waiting for it (up to 30 min)..."
        flock -w 1800 9 || die "timed out waiting for $NOVA_CELLS_HOME/build-images.lock"
    fi
}

# ---------------------------------------------------------------------------
# input hashes

inputs_hash() {
    local name=$1 parent_id=""
    if [[ -n ${PARENT[$name]} ]]; then
        parent_id=$(image_id "${TAG[${PARENT[$name]}]}") || parent_id=missing
    fi
    local rel=${IMAGES_DIR#"$ROOT"/} sources
    case $name in
        base)
            sources=$(sha256sum <"$DEBIAN_SOURCES" | cut -d' ' -f1)
            hash_inputs "$BASE_RECIPE sources=$sources" "$rel/base"
            ;;
        nova) hash_inputs "$NOVA_RECIPE parent=$parent_id" "$rel/nova" "$NOVA_LOCK" "$rel/.containerignore" ;;
        infra) hash_inputs "$INFRA_RECIPE parent=$parent_id" "$rel/infra" "$rel/.containerignore" ;;
        cloud) cloud_inputs_hash "$parent_id" "$rel" ;;
    esac
}

# ---------------------------------------------------------------------------
# builders

build_base() {
    local hash=$1 logfile=$2 tmp_tag pkgs
    tmp_tag="localhost/nova-cells/base:building-$$"
    pkgs=$(read_list "$IMAGES_DIR/base/packages.txt")${EXTRA_BASE_PACKAGES:+,$EXTRA_BASE_PACKAGES}
    local -a mm=(mmdebstrap --variant=apt --skip=cleanup/apt/lists
        --aptopt='Acquire::Languages "none"'
        --dpkgopt="$IMAGES_DIR/base/dpkg.cfg"
        --include="$pkgs"
        "$SUITE" - "$DEBIAN_SOURCES")
    local -a imp=(podman import
        --change 'CMD ["/sbin/init"]'
        --change 'STOPSIGNAL SIGRTMIN+3'
        --change "LABEL $LABEL_KEY=$hash"
        --change 'LABEL org.opencontainers.image.title=nova-cells/base'
        --message "nova-cells base: Debian $SUITE with systemd"
        - "$tmp_tag")
    # "mmdebstrap ... | podman import ...", as one command that run_logged can
    # put in its own process group.
    # shellcheck disable=SC2016  # expanded by the inner bash
    if ! run_logged base "$logfile" bash -c 'set -o pipefail; n=$1; shift; "${@:1:n}" | "${@:n+1}"' \
        pipeline "${#mm[@]}" "${mm[@]}" "${imp[@]}"; then
        podman rmi "$tmp_tag" >/dev/null 2>&1 || true
        return 1
    fi
    podman tag "$tmp_tag" "$BASE_IMAGE" && podman untag "$tmp_tag" "$tmp_tag"
}

build_with_podman() {
    local name=$1 hash=$2 logfile=$3 context=$IMAGES_DIR
    local -a args=(
        build --pull=never --force-rm --network "$BUILD_NETWORK"
        --ulimit nofile=1024:1024 --ulimit nproc=4096:4096
        --label "$LABEL_KEY=$hash"
        -f "$IMAGES_DIR/$name/Containerfile" -t "${TAG[$name]}"
    )
    if ((FORCED[$name])); then args+=(--no-cache); fi
    case $name in
        nova)
            args+=(--build-arg "BASE_IMAGE=$BASE_IMAGE"
                -v "$BUILD_SHARE:$SHARE_IN_BUILD" --build-arg "NOVA_PIP_CACHE=$SHARE_IN_BUILD/pip"
                --build-arg "NOVA_CA_BUNDLE=$CA_IN_BUILD")
            ;;
        infra) args+=(--build-arg "NOVA_IMAGE=$NOVA_IMAGE") ;;
        cloud) mapfile -t -O "${#args[@]}" args < <(cloud_build_args) ;;
    esac
    if [[ $name == nova ]]; then
        # The Containerfile copies requirements-nova.txt: a context with the lock there.
        context=$WORK/context-$SUITE
        rm -rf "$context" && cp -a "$IMAGES_DIR" "$context"
        cp "$ROOT/$NOVA_LOCK" "$context/requirements-nova.txt"
    fi
    run_logged "$name" "$logfile" podman "${args[@]}" "$context"
}

# ensure NAME: build NAME if it is missing, out of date or forced.
ensure() {
    local name=$1 tag=${TAG[$1]} hash current logfile start
    hash=$(inputs_hash "$name")
    current=$(image_label "$tag") || current=""
    if ((FORCED[$name] == 0)) && [[ $current == "$hash" ]]; then
        log "$name: up to date ($tag, inputs ${hash:0:12})"
        RESULT[$name]=skipped
        SECS[$name]=0
        return 0
    fi
    if ! podman image exists "$tag"; then
        log "$name: missing, building ($tag, ${ESTIMATE[$name]})..."
    elif [[ -z $current || $current == "<no value>" ]]; then
        log "$name: $tag has no $LABEL_KEY label, rebuilding (${ESTIMATE[$name]})..."
    elif ((FORCED[$name])); then
        log "$name: --force, rebuilding ($tag, ${ESTIMATE[$name]})..."
    else
        log "$name: inputs changed (${current:0:12} -> ${hash:0:12}), rebuilding ($tag, ${ESTIMATE[$name]})..."
    fi
    OLD_ID[$name]=$(image_id "$tag") || OLD_ID[$name]=""
    logfile=$LOG_DIR/$name$LOG_SUFFIX.log
    start=$SECONDS
    case $name in
        base) build_base "$hash" "$logfile" || fail_with_log "$name" "$logfile" ;;
        *) build_with_podman "$name" "$hash" "$logfile" || fail_with_log "$name" "$logfile" ;;
    esac
    [[ $(image_label "$tag") == "$hash" ]] || die "$name: built, but $tag does not carry label $LABEL_KEY=$hash"
    SECS[$name]=$((SECONDS - start))
    RESULT[$name]=built
    NEW_ID[$name]=$(image_id "$tag")
    log "$name: built in ${SECS[$name]} s ($(image_mb "$tag"), log $logfile)"
}

# remove_old: drop the images this script built earlier and has since replaced.
# Candidates are the ids in $BUILT_IDS (every image this script built on this
# machine) and this run's replaced images; an image is removed only if it still
# exists, is untagged, and is not the current image. Never forced: an image
# still used by a container or by a child image stays (and is retried next
# time). Children first, two passes, so a parent freed by its child goes too.
remove_old() {
    local id pass tags err
    local -a candidates=() keep=()
    if [[ -f $BUILT_IDS ]]; then
        mapfile -t candidates <"$BUILT_IDS"
    fi
    candidates+=("${OLD_ID[cloud]:-}" "${OLD_ID[infra]:-}" "${OLD_ID[nova]:-}" "${OLD_ID[base]:-}")
    for pass in 1 2; do
        keep=()
        for id in "${candidates[@]}"; do
            [[ -n $id ]] || continue
            tags=$(podman image inspect --format '{{len .RepoTags}}' "$id" 2>/dev/null) || continue
            if [[ $tags != 0 ]]; then
                keep+=("$id")
            elif err=$(podman rmi "$id" 2>&1 >/dev/null); then
                log "removed the replaced image ${id:0:12}"
            else
                keep+=("$id")
                if ((pass == 2)); then
                    log "kept the replaced image ${id:0:12}: $(printf '%s' "$err" | tail -n 1)"
                fi
            fi
        done
        candidates=("${keep[@]}")
    done
    # Remember what still exists: the current images and whatever could not go yet.
    for id in "${candidates[@]}" "${NEW_ID[@]}"; do
        [[ -n $id ]] && podman image exists "$id" && printf '%s\n' "$id"
    done | sort -u >"$BUILT_IDS.tmp" || true
    mv -f "$BUILT_IDS.tmp" "$BUILT_IDS"
}

# ---------------------------------------------------------------------------
# main

main() {
    local name total_start=$SECONDS any_wanted=0 suite=bookworm
    while (($#)); do
        case $1 in
            -f | --force) FORCE=1 ;;
            -v | --verbose) VERBOSE=1 ;;
            --suite)
                (($# > 1)) || die "--suite needs a value (bookworm, trixie)"
                suite=$2
                shift
                ;;
            --suite=*) suite=${1#--suite=} ;;
            -h | --help)
                usage
                exit 0
                ;;
            base | nova | infra | cloud)
                WANTED[$1]=1
                any_wanted=1
                ;;
            *)
                usage >&2
                die "unknown argument '$1'"
                ;;
        esac
        shift
    done
    use_suite "$suite"
    if ((!any_wanted)); then
        for name in "${ALL_IMAGES[@]}"; do WANTED[$name]=1; done
    fi
    # A wanted image needs its parents; --force applies to the named images only.
    for name in cloud infra nova; do
        if [[ -n ${WANTED[$name]:-} && -n ${PARENT[$name]} ]]; then
            WANTED[${PARENT[$name]}]=${WANTED[${PARENT[$name]}]:-parent}
        fi
    done
    for name in "${ALL_IMAGES[@]}"; do
        FORCED[$name]=0
        if ((FORCE)) && [[ ${WANTED[$name]:-} == 1 ]]; then FORCED[$name]=1; fi
    done

    preflight

    for name in "${ALL_IMAGES[@]}"; do
        if [[ -n ${WANTED[$name]:-} && -z ${RESULT[$name]:-} ]]; then
            ensure "$name"
        fi
    done
    remove_old

    log "summary:"
    for name in "${ALL_IMAGES[@]}"; do
        [[ -n ${RESULT[$name]:-} ]] || continue
        printf '[images]   %-6s %-8s %4d s  %-38s %s\n' "$name" "${RESULT[$name]}" "${SECS[$name]}" \
            "${TAG[$name]}" "$(image_mb "${TAG[$name]}")"
    done
    log "total $((SECONDS - total_start)) s"
}

main "$@"
