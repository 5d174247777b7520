#!/usr/bin/env bash
# fold-parts.sh "FIX SUBJECT" PATCH "TARGET SUBJECT" [PATCH "TARGET SUBJECT"...]
#
# Fold a fix of the series into the patches that introduced the code:
# each PATCH (a part of the fix's change) is applied to every snapshot
# from the commit titled TARGET SUBJECT up to the fix, so that the
# diffs between them stay whole and the fix keeps only what is left
# (nothing: it goes).  The final tree does not change; check it with
# 'git diff before-parts'.  Run in the development tree.
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
find_commit() { git log --format=%H -F --grep="$1" base..HEAD | head -n 1; }
fix=$1; shift
log=$(mktemp)
trap 'rm -f "$log"' EXIT
git tag -f before-parts HEAD > /dev/null
while [ $# -gt 0 ]; do
    FOLD_F=$(find_commit "$fix")
    FOLD_T=$(find_commit "$2")
    FOLD_PATCH=$(realpath "$1")
    export FOLD_F FOLD_T FOLD_PATCH
    [ -n "$FOLD_F" ] && [ -n "$FOLD_T" ] || { echo "cannot find the commits" >&2; exit 1; }
    shift 2
    FILTER_BRANCH_SQUELCH_WARNING=1 git filter-branch -f --prune-empty \
        --index-filter "bash $here/apply-filter.sh" base..HEAD > "$log" 2>&1 ||
        { grep FOLD: "$log" >&2; git reset -q --hard before-parts; exit 1; }
done
echo "tree against before-parts: $(git diff before-parts --stat | tail -n 1)"
echo "commits: $(git rev-list --count base..HEAD)"
