#!/usr/bin/env bash
# Device ABI check (the migration checker of seed 002): with FT off, the
# patched QEMU must describe every device's migration state exactly as
# the unpatched base does, or a guest could not migrate between them.
#
# Builds qemu-system-x86_64 from the base alone (same configure, ccache)
# in build/base-qemu, dumps -dump-vmstate for the default machine types
# from both builds, and compares the dumps both ways with QEMU's own
# scripts/vmstate-static-checker.py.  Exit status 0 means no difference.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

BASE_TREE=$BUILD_DIR/base-qemu
BASE_OBJ=$BASE_TREE/build
MACHINES=${KEMARI_ABI_MACHINES:-"pc-q35-10.0 pc-i440fx-10.0"}

[ -x "$OBJ/qemu-system-x86_64" ] || die "build QEMU first ('make build')"

# The base tree: a worktree of the development tree at its 'base' tag.
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

# Same configuration as scripts/build.sh; ccache makes most of it hits.
if [ -d /usr/lib/ccache ]; then
    export PATH=/usr/lib/ccache:$PATH
fi
export CCACHE_BASEDIR=$BASE_TREE CCACHE_NOHASHDIR=1
args=$(cat "$OBJ/.kemari-configure" | cut -d' ' -f2-)
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

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
checker=$TREE/scripts/vmstate-static-checker.py
status=0
for m in $MACHINES; do
    "$BASE_OBJ/qemu-system-x86_64" -machine "$m" -dump-vmstate "$out/base.json"
    "$OBJ/qemu-system-x86_64" -machine "$m" -dump-vmstate "$out/ours.json"
    for dir in "base ours" "ours base"; do
        set -- $dir
        if python3 "$checker" -s "$out/$1.json" -d "$out/$2.json" \
                > "$out/report" 2>&1; then
            log "$m: $1 -> $2: no difference"
        else
            cat "$out/report" >&2
            log "$m: $1 -> $2: DIFFERENCES (above)"
            status=1
        fi
    done
    cmp -s "$out/base.json" "$out/ours.json" &&
        log "$m: the two dumps are byte-identical"
done

# The check must be able to fail: a device that lost a field is caught.
python3 - "$out/ours.json" "$out/broken.json" <<'PY'
import json, sys
dump = json.load(open(sys.argv[1]))
def drop_field(node):
    if isinstance(node, dict):
        fields = node.get("Fields")
        if isinstance(fields, list) and len(fields) >= 2:
            fields.pop()
            return True
        return any(drop_field(v) for v in node.values())
    if isinstance(node, list):
        return any(drop_field(v) for v in node)
    return False
assert drop_field(dump), "no device with two fields in the dump"
json.dump(dump, open(sys.argv[2], "w"))
PY
if python3 "$checker" -s "$out/ours.json" -d "$out/broken.json" \
        > "$out/report" 2>&1; then
    log "the checker did not notice a missing field: this check is void"
    status=1
else
    log "control: a device with a field removed is reported"
fi
exit $status
