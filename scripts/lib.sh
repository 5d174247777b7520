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
