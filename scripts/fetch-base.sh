#!/usr/bin/env bash
# Fetch and unpack the QEMU 10.0.x base into $BUILD_DIR/base/src.
#
# Default: Debian's qemu source package, fetched with a private apt
# sources list and lists directory (the system's apt configuration is not
# touched), unpacked with dpkg-source -x.
#
#   KEMARI_BASE=/path/to/qemu-10.0.x.tar.xz   an upstream release tarball
#   KEMARI_BASE=/path/to/qemu                 a local QEMU checkout
#
# The version must be 10.0.x.  The base recorded in base.conf is
# verified by sha256; another 10.0.x is used with a warning.
set -euo pipefail
. "$(dirname "$0")/lib.sh"
. "$TOP/base.conf"

BASE=$BUILD_DIR/base
SRC=$BASE/src

check_version() {
    local v=$1
    case "$v" in
    10.0.*) ;;
    *) die "base is QEMU $v; this series applies to QEMU 10.0.x only" ;;
    esac
    if [ "$v" != "$QEMU_VERSION" ]; then
        log "warning: base is QEMU $v, the series was last rebased on" \
            "$QEMU_VERSION (base.conf); continuing if it applies"
    fi
}

sha_check() {
    local file=$1 want=$2 got
    got=$(sha256sum "$file" | cut -d' ' -f1)
    [ "$got" = "$want" ] ||
        die "$(basename "$file"): sha256 $got, expected $want (base.conf)"
}

from_debian() {
    local apt=$BASE/apt dl=$BASE/dl uri sec ver want
    mkdir -p "$apt/lists/partial" "$dl"
    uri=$(debian_mirror_uri)
    sec=$(debian_security_uri)
    cat > "$apt/sources.sources" <<SRC
Types: deb-src
URIs: $uri
Suites: $DEBIAN_SUITES
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb-src
URIs: $sec
Suites: $DEBIAN_SECURITY_SUITES
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
    local opts=(-o "Dir::Etc::SourceList=$apt/sources.sources"
                -o Dir::Etc::SourceParts=/dev/null
                -o "Dir::State::Lists=$apt/lists"
                -o Debug::NoLocking=1)
    if [ -f "$dl/$ORIG_TARBALL" ] && [ -f "$dl/$DEBIAN_TARBALL" ]; then
        ver=$DEBIAN_VERSION
    else
        log "fetching the source index ($uri, $DEBIAN_SUITES)"
        apt-get "${opts[@]}" update -q >/dev/null
        # Prefer the recorded version; else the newest 10.0.x on offer.
        ver=$(apt-cache "${opts[@]}" showsrc "$DEBIAN_SOURCE" |
              awk '/^Version:/ { print $2 }' | sort -u)
        if grep -qxF "$DEBIAN_VERSION" <<<"$ver"; then
            ver=$DEBIAN_VERSION
        else
            ver=$(grep -E '^1:10\.0\.' <<<"$ver" | sort -V | tail -n1)
            [ -n "$ver" ] || die "no qemu 10.0.x source in $DEBIAN_SUITES"
        fi
        log "downloading $DEBIAN_SOURCE $ver"
        (cd "$dl" && apt-get "${opts[@]}" source --download-only -q \
             "$DEBIAN_SOURCE=$ver" >/dev/null 2>&1) ||
            die "apt-get source $DEBIAN_SOURCE=$ver failed"
    fi
    want=${ver#*:}
    want=${want%%+*}
    want=${want%%-*}
    check_version "$want"
    local dsc
    dsc=$(ls "$dl"/"${DEBIAN_SOURCE}_${ver#*:}".dsc)
    if [ "$ver" = "$DEBIAN_VERSION" ]; then
        sha_check "$dl/$ORIG_TARBALL" "$ORIG_SHA256"
        sha_check "$dl/$DEBIAN_TARBALL" "$DEBIAN_SHA256"
    fi
    rm -rf "$SRC.tmp"
    dpkg-source -q -x "$dsc" "$SRC.tmp" >/dev/null 2>&1 ||
        die "dpkg-source -x $dsc failed"
    # The packaging is not part of QEMU's tree.
    rm -rf "$SRC.tmp/debian"
    echo "debian $DEBIAN_SOURCE $ver" > "$SRC.tmp/.kemari-base"
}

from_tarball() {
    local tb=$1 v
    rm -rf "$SRC.tmp"
    mkdir -p "$SRC.tmp"
    tar -xf "$tb" -C "$SRC.tmp" --strip-components=1
    v=$(cat "$SRC.tmp/VERSION")
    check_version "$v"
    echo "tarball $(basename "$tb") $(sha256sum "$tb" | cut -d' ' -f1)" \
        > "$SRC.tmp/.kemari-base"
}

from_checkout() {
    local dir=$1 v
    v=$(cat "$dir/VERSION")
    check_version "$v"
    rm -rf "$SRC.tmp"
    mkdir -p "$SRC.tmp"
    if [ -d "$dir/.git" ]; then
        git -C "$dir" archive --format=tar HEAD | tar -x -C "$SRC.tmp"
        echo "checkout $(git -C "$dir" rev-parse HEAD)" > "$SRC.tmp/.kemari-base"
    else
        cp -a "$dir/." "$SRC.tmp/"
        echo "directory $dir" > "$SRC.tmp/.kemari-base"
    fi
}

want_id() {
    if [ -n "${KEMARI_BASE:-}" ]; then
        echo "user $KEMARI_BASE"
    else
        echo "debian $DEBIAN_VERSION"
    fi
}

mkdir -p "$BASE"
if [ -f "$BASE/.id" ] && [ "$(cat "$BASE/.id")" = "$(want_id)" ] &&
   [ -f "$SRC/VERSION" ]; then
    log "base already unpacked: $(cat "$SRC/.kemari-base")"
    exit 0
fi

if [ -z "${KEMARI_BASE:-}" ]; then
    from_debian
elif [ -d "$KEMARI_BASE" ]; then
    from_checkout "$KEMARI_BASE"
elif [ -f "$KEMARI_BASE" ]; then
    from_tarball "$KEMARI_BASE"
else
    die "KEMARI_BASE=$KEMARI_BASE is neither a tarball nor a directory"
fi
rm -rf "$SRC"
mv "$SRC.tmp" "$SRC"
want_id > "$BASE/.id"
log "base ready: $(cat "$SRC/.kemari-base")"
