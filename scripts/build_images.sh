#!/usr/bin/env bash
# Build the two container images: Dockerfile.server (latency server) and Dockerfile.trainer (nas client).
#
#   scripts/build_images.sh [--debootstrap | --no-debootstrap] [--engine docker|buildah] [--only server|trainer]
#   make images                     (the same, no options)
#
# Engine: Docker when its daemon answers (`docker info`), else buildah (`buildah bud --isolation chroot`, which
# needs no daemon). Base image: the Dockerfiles' default (python:3.11-slim) when a registry is reachable; where none
# is (or with --debootstrap / HARDCORE_NAS_DEBOOTSTRAP=1) a Debian bookworm base is made with debootstrap from the
# machine's apt mirror and imported as localhost/debian:bookworm (once; --rebuild-base makes it again), and passed as
# BASE_IMAGE (the Dockerfiles then install python3-venv from apt). Torch comes from TORCH_INDEX when set, else from
# the Dockerfiles' default (download.pytorch.org) when that answers, else from PyPI (a CUDA build, ~6 GB venv).
#
# Environment: SERVER_IMAGE, TRAINER_IMAGE (names), BASE_IMAGE (skip the choice above), TORCH_INDEX,
# HARDCORE_NAS_DEBOOTSTRAP=1|0, DEBIAN_MIRROR, PIP_CA (a CA bundle for pip behind a TLS proxy; default pip's own
# `cert` setting), EXTRA_BUILD_ARGS (appended to each build command).
# Writes the build times to outputs/images/build.json (read by scripts/check_images.sh).
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."

SERVER_IMAGE=${SERVER_IMAGE:-localhost/hardcore-nas/latency-server:latest}
TRAINER_IMAGE=${TRAINER_IMAGE:-localhost/hardcore-nas/trainer:latest}
DEBIAN_BASE=${DEBIAN_BASE:-localhost/debian:bookworm}
DEBOOTSTRAP=${HARDCORE_NAS_DEBOOTSTRAP:-auto}
ENGINE=${ENGINE:-}
ONLY=""
REBUILD_BASE=0
OUT_DIR=outputs/images

usage() { sed -n '2,18p' "$0" | sed 's/^# \{0,1\}//'; }
while [ $# -gt 0 ]; do
    case "$1" in
        --debootstrap) DEBOOTSTRAP=1 ;;
        --no-debootstrap) DEBOOTSTRAP=0 ;;
        --rebuild-base) REBUILD_BASE=1 ;;
        --engine) ENGINE=$2; shift ;;
        --only) ONLY=$2; shift ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

log() { printf '==> %s\n' "$*" >&2; }

# -- engine ------------------------------------------------------------------------------------------------------
if [ -z "$ENGINE" ]; then
    if command -v docker >/dev/null 2>&1 && timeout 20 docker info >/dev/null 2>&1; then
        ENGINE=docker
    elif command -v buildah >/dev/null 2>&1; then
        ENGINE=buildah
    else
        echo "error: neither a running Docker engine nor buildah (Debian: apt-get install buildah podman)" >&2
        exit 1
    fi
fi
log "engine: $ENGINE"

# reachable: any HTTP answer, 401 included (a registry asks for a token); unreachable: no answer in 10 s
reachable() {
    python3 - "$1" <<'PY'
import sys, urllib.error, urllib.request
try:
    urllib.request.urlopen(sys.argv[1], timeout=10)
except urllib.error.HTTPError:
    pass
except Exception:
    sys.exit(1)
PY
}

image_exists() {
    if [ "$ENGINE" = docker ]; then docker image inspect "$1" >/dev/null 2>&1
    else buildah inspect --type image "$1" >/dev/null 2>&1; fi
}

# -- base image --------------------------------------------------------------------------------------------------
debian_mirror() {
    if [ -n "${DEBIAN_MIRROR:-}" ]; then echo "$DEBIAN_MIRROR"; return; fi
    local uri
    # deb822 sources: the URIs of a stanza whose suites include bookworm (not bookworm-security)
    uri=$(awk '/^URIs:/ {u=$2} /^Suites:/ {for (i = 2; i <= NF; i++) if ($i == "bookworm") {print u; exit}}' \
          /etc/apt/sources.list.d/*.sources 2>/dev/null || true)
    if [ -z "$uri" ] && [ -f /etc/apt/sources.list ]; then
        uri=$(awk '$1 == "deb" && $0 !~ /security/ {for (i = 2; i <= NF; i++) if ($i !~ /^\[/) {print $i; exit}}' \
              /etc/apt/sources.list || true)
    fi
    echo "${uri:-http://deb.debian.org/debian}"
}

make_debian_base() {
    if image_exists "$DEBIAN_BASE" && [ "$REBUILD_BASE" = 0 ]; then
        log "base: $DEBIAN_BASE (already here; --rebuild-base makes it again)"
        return
    fi
    command -v debootstrap >/dev/null 2>&1 || { echo "error: debootstrap missing (apt-get install debootstrap)" >&2; exit 1; }
    local mirror rootfs
    mirror=$(debian_mirror)
    rootfs=$(mktemp -d "${TMPDIR:-/tmp}/debian-rootfs.XXXXXX")
    trap 'rm -rf "$rootfs"' EXIT
    log "base: debootstrap --variant=minbase bookworm from $mirror"
    debootstrap --variant=minbase bookworm "$rootfs" "$mirror" >"$OUT_DIR/debootstrap.log" 2>&1 \
        || { tail -20 "$OUT_DIR/debootstrap.log" >&2; exit 1; }
    rm -rf "$rootfs"/var/cache/apt/archives/*.deb "$rootfs"/var/lib/apt/lists/*
    if [ "$ENGINE" = docker ]; then tar -C "$rootfs" -c . | docker import - "$DEBIAN_BASE" >/dev/null
    else tar -C "$rootfs" -c . | podman import - "$DEBIAN_BASE" >/dev/null; fi
    rm -rf "$rootfs"
    trap - EXIT
    log "base: imported $DEBIAN_BASE"
}

mkdir -p "$OUT_DIR"
BUILD_ARGS=()
if [ -n "${BASE_IMAGE:-}" ]; then
    log "base: $BASE_IMAGE (BASE_IMAGE)"
else
    if [ "$DEBOOTSTRAP" = auto ]; then
        if reachable https://registry-1.docker.io/v2/; then DEBOOTSTRAP=0; else
            log "no container registry answers: a local Debian base instead"; DEBOOTSTRAP=1; fi
    fi
    if [ "$DEBOOTSTRAP" = 1 ]; then
        make_debian_base
        BASE_IMAGE=$DEBIAN_BASE
    fi
fi
[ -n "${BASE_IMAGE:-}" ] && BUILD_ARGS+=(--build-arg "BASE_IMAGE=$BASE_IMAGE")

if [ -z "${TORCH_INDEX:-}" ] && ! reachable https://download.pytorch.org/whl/; then
    TORCH_INDEX=https://pypi.org/simple
    log "download.pytorch.org does not answer: torch from PyPI (its default build, CUDA 13)"
fi
[ -n "${TORCH_INDEX:-}" ] && BUILD_ARGS+=(--build-arg "TORCH_INDEX=$TORCH_INDEX")
# A TLS-intercepting proxy's CA (pip's `cert`, as configured here) goes to the pip steps as the build secret pip_ca.
PIP_CA=${PIP_CA:-${PIP_CERT:-$(python3 -m pip config get global.cert 2>/dev/null || true)}}
if [ -n "$PIP_CA" ] && [ -s "$PIP_CA" ]; then
    log "pip's CA bundle $PIP_CA goes to the pip steps (build secret pip_ca)"
    BUILD_ARGS+=(--secret "id=pip_ca,src=$PIP_CA")
fi
# shellcheck disable=SC2206
[ -n "${EXTRA_BUILD_ARGS:-}" ] && BUILD_ARGS+=($EXTRA_BUILD_ARGS)

# -- builds ------------------------------------------------------------------------------------------------------
RESULTS=()
build() {  # build NAME DOCKERFILE
    local name=$1 file=$2 start end cmd
    if [ "$ENGINE" = docker ]; then
        cmd=(docker build "${BUILD_ARGS[@]}" -f "$file" -t "$name" .)
    else
        # docker format: OCI images drop HEALTHCHECK; --layers: the torch layer is reused between the images
        cmd=(buildah bud --isolation chroot --format docker --layers "${BUILD_ARGS[@]}" -f "$file" -t "$name" .)
    fi
    log "build: ${cmd[*]}"
    local logfile="$OUT_DIR/build-${file#Dockerfile.}.log"
    start=$(date +%s.%N)
    "${cmd[@]}" 2>&1 | tee "$logfile"
    end=$(date +%s.%N)
    local secs cached
    secs=$(python3 -c "print(round($end - $start, 1))")
    # steps taken from the layer cache (an earlier build's, e.g. the other image's torch layer): a warm build time
    cached=$(grep -c -E "^--> Using cache|^ ---> Using cache|CACHED" "$logfile" || true)
    log "built $name in ${secs} s ($cached steps from the cache)"
    RESULTS+=("$(python3 -c 'import json, sys; print(json.dumps({"image": sys.argv[1], "dockerfile": sys.argv[2],
        "build_s": float(sys.argv[3]), "cached_steps": int(sys.argv[4]), "command": sys.argv[5]}))' \
        "$name" "$file" "$secs" "$cached" "${cmd[*]}")")
}

[ "$ONLY" != trainer ] && build "$SERVER_IMAGE" Dockerfile.server
[ "$ONLY" != server ] && build "$TRAINER_IMAGE" Dockerfile.trainer

# merge into outputs/images/build.json (an --only build keeps the other image's entry)
python3 - "$OUT_DIR/build.json" "$ENGINE" "${BASE_IMAGE:-default}" "${RESULTS[@]}" <<'PY'
import datetime, json, pathlib, subprocess, sys
path, engine, base, *items = sys.argv[1:]
old = json.loads(pathlib.Path(path).read_text()) if pathlib.Path(path).exists() else {}
images = old.get("images", {})
commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
for item in map(json.loads, items):
    item.update(engine=engine, base_image=base, commit=commit,
                date=datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"))
    images[item["image"]] = item
pathlib.Path(path).write_text(json.dumps({"images": images}, indent=1) + "\n")
PY
log "build times in $OUT_DIR/build.json"
