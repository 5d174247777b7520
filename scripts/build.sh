#!/usr/bin/env bash
# Configure (once) and build what the series and its tests need:
# qemu-system-x86_64, qemu-img and the test binaries we run.
# Incremental: a second run rebuilds only what changed (ccache + ninja).
#
#   build.sh [ninja targets...]   extra targets, e.g. a new test binary
set -euo pipefail
. "$(dirname "$0")/lib.sh"

[ -d "$TREE/.git" ] || die "no development tree at $TREE ('make tree')"

# QEMU itself plus every test binary that tests/suite.list runs.
mapfile -t TARGETS < <(
    echo qemu-system-x86_64
    echo qemu-img
    awk '$1 == "unit" || $1 == "qtest" { print $2 }' "$TOP/tests/suite.list" | sort -u
)

CONFIGURE_ARGS=(
    --target-list=x86_64-softmmu
    --python=/usr/bin/python3
    --disable-download
    --disable-docs
    --disable-rust
    --disable-install-blobs
    --without-default-features
    --enable-tcg --enable-kvm --enable-tools --enable-slirp --enable-fdt=system
    --enable-vhost-net --enable-vhost-kernel
    --enable-gnutls
)

# QEMU's configure names the compiler in its meson cross file, so meson
# does not add ccache itself: put Debian's ccache compiler links first.
if [ -d /usr/lib/ccache ]; then
    export PATH=/usr/lib/ccache:$PATH
fi
# Cache hits across clones in other directories (CI's fresh clone).
export CCACHE_BASEDIR=$TREE CCACHE_NOHASHDIR=1

mkdir -p "$OBJ"
stamp=$OBJ/.kemari-configure
want="$(command -v cc) ${CONFIGURE_ARGS[*]}"
if [ ! -f "$OBJ/build.ninja" ] || [ "$(cat "$stamp" 2>/dev/null)" != "$want" ]; then
    stage_start "configure"
    (cd "$OBJ" && ../configure "${CONFIGURE_ARGS[@]}" > configure.log 2>&1) ||
        { tail -n 30 "$OBJ/configure.log"; die "configure failed (see $OBJ/configure.log)"; }
    echo "$want" > "$stamp"
    stage_end "configure"
fi

# While building an early prefix of the series (scripts/bisect.sh), test
# binaries that later patches add do not exist yet: skip those.
if [ "${KEMARI_BUILD_KNOWN_ONLY:-0}" = 1 ]; then
    # The targets of this prefix's meson files, not of the last build's
    ninja -C "$OBJ" build.ninja > /dev/null ||
        die "cannot regenerate build.ninja"
    known=$(ninja -C "$OBJ" -t targets all 2>/dev/null | cut -d: -f1)
    mapfile -t TARGETS < <(printf '%s\n' "${TARGETS[@]}" | grep -Fxf <(echo "$known"))
fi

stage_start "build"
ninja -C "$OBJ" "${TARGETS[@]}" "$@" ||
    die "build failed"
stage_end "build"

# Firmware: the +ds base has no blobs; use Debian's seabios, ipxe-qemu and
# qemu-system-data.  QEMU run from its build directory looks in the
# build's qemu-bundle data directory (qemu -L help): link what is missing.
datadir=$("$OBJ/qemu-system-x86_64" -L help | grep '/share/qemu$' | head -n1)
[ -d "$datadir" ] || die "cannot find the build's firmware directory"
for f in /usr/share/qemu/*.bin /usr/share/qemu/*.rom \
         /usr/share/seabios/*.bin /usr/lib/ipxe/qemu/*.rom; do
    [ -e "$f" ] || continue
    dst=$datadir/$(basename "$f")
    [ -e "$dst" ] || ln -sf "$f" "$dst"
done
