# Shared helpers for the Kemari series scripts.  Sourced, not run.
# shellcheck shell=bash

TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
BUILD_DIR=${BUILD_DIR:-$TOP/build}
STATE_DIR=$BUILD_DIR/state
TREE=$BUILD_DIR/qemu
OBJ=$TREE/build

log() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The first http(s) URI of the Debian archive in this machine's apt
# configuration (deb822 .sources or one-line .list entries).
debian_mirror_uri() {
    local f uri
    for f in /etc/apt/sources.list.d/*.sources; do
        [ -f "$f" ] || continue
        uri=$(awk '/^URIs:/ { for (i = 2; i <= NF; i++) print $i }' "$f" |
              grep -E '/debian/?$' | head -n1)
        [ -n "$uri" ] && { echo "${uri%/}"; return; }
    done
    for f in /etc/apt/sources.list /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        uri=$(awk '$1 == "deb" || $1 == "deb-src" {
                     for (i = 2; i <= NF; i++) if ($i ~ /^https?:/) { print $i; break }
                   }' "$f" | grep -E '/debian/?$' | head -n1)
        [ -n "$uri" ] && { echo "${uri%/}"; return; }
    done
    die "no Debian archive URI found in /etc/apt; configure apt first"
}

# The security archive lives beside the main one on Debian mirrors.
debian_security_uri() {
    local f uri
    for f in /etc/apt/sources.list.d/*.sources /etc/apt/sources.list \
             /etc/apt/sources.list.d/*.list; do
        [ -f "$f" ] || continue
        uri=$(grep -vE '^[[:space:]]*#' "$f" |
              grep -oE 'https?://[^ ]*/debian-security/?' | head -n1)
        [ -n "$uri" ] && { echo "${uri%/}"; return; }
    done
    echo "$(debian_mirror_uri)-security"
}

# Seconds since the epoch, for stage timing.
stage_start() { STAGE_T0=$(date +%s); log "== $1"; }
stage_end() { log "== $1 done in $(( $(date +%s) - STAGE_T0 ))s"; }

# The unpatched base, built beside the series for the checks that compare
# the two (scripts/abi-check.sh, scripts/stream-check.sh): a worktree of
# the development tree at its 'base' tag, with the same configure
# arguments as scripts/build.sh, so that ccache makes most of it hits.
BASE_TREE=$BUILD_DIR/base-qemu
BASE_OBJ=$BASE_TREE/build

build_base() {
    local want d args
    want=$(git -C "$TREE" rev-parse base)
    if [ "$(git -C "$BASE_TREE" rev-parse HEAD 2>/dev/null)" != "$want" ]; then
        rm -rf "$BASE_TREE"
        git -C "$TREE" worktree prune
        git -C "$TREE" worktree add --force --detach "$BASE_TREE" base \
            > /dev/null 2>&1
    fi
    # The subprojects the tree was given (ignored by git), as it has them
    for d in "$TREE"/subprojects/*/; do
        [ -d "$BASE_TREE/subprojects/$(basename "$d")" ] ||
            cp -a "$d" "$BASE_TREE/subprojects/"
    done
    if [ -d /usr/lib/ccache ]; then
        export PATH=/usr/lib/ccache:$PATH
    fi
    export CCACHE_BASEDIR=$BASE_TREE CCACHE_NOHASHDIR=1
    args=$(cut -d' ' -f2- < "$OBJ/.kemari-configure")
    mkdir -p "$BASE_OBJ"
    if [ ! -f "$BASE_OBJ/build.ninja" ] ||
       [ "$(cat "$BASE_OBJ/.kemari-configure" 2>/dev/null)" != "$args" ]; then
        stage_start "configure the base"
        # shellcheck disable=SC2086
        (cd "$BASE_OBJ" && ../configure $args > configure.log 2>&1) ||
            { tail -n 30 "$BASE_OBJ/configure.log"; die "base configure failed"; }
        echo "$args" > "$BASE_OBJ/.kemari-configure"
        stage_end "configure the base"
    fi
    stage_start "build the base"
    ninja -C "$BASE_OBJ" qemu-system-x86_64 > "$BASE_OBJ/ninja.log" 2>&1 ||
        { tail -n 30 "$BASE_OBJ/ninja.log"; die "base build failed"; }
    stage_end "build the base"
}
