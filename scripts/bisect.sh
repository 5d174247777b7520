#!/usr/bin/env bash
# Bisectability: build every prefix of the series (base + patches 1..k)
# in the development tree, then return to HEAD.  Incremental, so a patch
# that touches few files costs little.  The tree must be clean.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

cd "$TREE"
git diff --quiet HEAD -- || die "$TREE has uncommitted changes"
head=$(git rev-parse HEAD)
branch=$(git symbolic-ref -q --short HEAD || true)
restore() {
    if [ -n "$branch" ]; then
        git checkout -q "$branch"
    else
        git checkout -q "$head"
    fi
}
trap restore EXIT

n=0
for c in $(git rev-list --reverse base..HEAD); do
    n=$((n + 1))
    git checkout -q "$c"
    log "prefix $n: $(git log -1 --format=%s "$c")"
    KEMARI_BUILD_KNOWN_ONLY=1 "$TOP/scripts/build.sh" > "$BUILD_DIR/bisect-$n.log" 2>&1 ||
        { tail -n 30 "$BUILD_DIR/bisect-$n.log"; die "prefix $n does not build"; }
done
restore
trap - EXIT
"$TOP/scripts/build.sh" > /dev/null
log "all $n prefixes build"
