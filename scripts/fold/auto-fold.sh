#!/usr/bin/env bash
# auto-fold.sh "FIX SUBJECT" "TARGET SUBJECT" PATH...
#
# Fold each hunk of the fix's change to PATH... into the earliest
# commit, from the target on, from which it applies to every snapshot
# up to the fix (fold-parts.sh).  What the fix changes elsewhere (its
# tests) stays in it.  Build every prefix afterwards (make bisect).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
find_commit() { git log --format=%H -F --grep="$1" base..HEAD | head -n 1; }
fix=$1 F=$(find_commit "$1") T=$(find_commit "$2"); shift 2
tmp=$(mktemp -d)
work=$tmp/tree
trap 'git worktree remove --force "$work" 2>/dev/null; rm -rf "$tmp"' EXIT
git diff "$F^" "$F" -- "$@" > "$tmp/fix.diff"
n=$(grep -c '^@@' "$tmp/fix.diff")
git worktree add -q --detach "$work" "$F^"
declare -A parts
for i in $(seq 1 "$n"); do
    python3 "$here/hunk.py" "$tmp/fix.diff" "$i" > "$tmp/hunk-$i.diff"
    best=
    for c in $(git rev-list "$T^..$F^"); do          # newest first
        (cd "$work" && git checkout -q --detach "$c" &&
         git apply --check "$tmp/hunk-$i.diff" 2> /dev/null) || break
        best=$c
    done
    [ -n "$best" ] || { echo "hunk $i applies nowhere" >&2; exit 1; }
    echo "hunk $i -> $(git log -1 --format=%s "$best")"
    { cat "$tmp/hunk-$i.diff"; echo; } >> "$tmp/at-$best.diff"
    parts[$best]=1
done
args=()
for b in "${!parts[@]}"; do
    args+=("$tmp/at-$b.diff" "$(git log -1 --format=%s "$b")")
done
"$here/fold-parts.sh" "$fix" "${args[@]}"
