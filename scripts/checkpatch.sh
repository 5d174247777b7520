#!/usr/bin/env bash
# QEMU's scripts/checkpatch.pl on patches (default: every patch in
# patches/series).  Errors fail; warnings are printed.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

[ -f "$TREE/scripts/checkpatch.pl" ] || die "no tree at $TREE ('make tree')"
if [ $# = 0 ]; then
    mapfile -t patches < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$TOP/patches/series")
    set -- "${patches[@]/#/$TOP/patches/}"
fi
rc=0
for p in "$@"; do
    out=$(cd "$TREE" && perl scripts/checkpatch.pl "$p" 2>&1)
    if grep -q 'total: 0 errors' <<<"$out"; then
        status=ok
    else
        status=ERRORS
        rc=1
    fi
    printf '%-7s %s\n' "$status" "$(basename "$p")"
    grep -E '^(ERROR|WARNING)' -A3 <<<"$out" | sed 's/^/        /'
done
exit $rc
