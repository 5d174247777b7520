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

MACHINES=${KEMARI_ABI_MACHINES:-"pc-q35-10.0 pc-i440fx-10.0"}

[ -x "$OBJ/qemu-system-x86_64" ] || die "build QEMU first ('make build')"
build_base

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
