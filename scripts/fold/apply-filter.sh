#!/usr/bin/env bash
# git filter-branch index filter: apply $FOLD_PATCH to every commit X
# with $FOLD_T <= X < $FOLD_F (see fold-parts.sh).
[ "$GIT_COMMIT" = "$FOLD_F" ] && exit 0
git merge-base --is-ancestor "$FOLD_T" "$GIT_COMMIT" || exit 0
git merge-base --is-ancestor "$FOLD_F" "$GIT_COMMIT" && exit 0
git apply --cached "$FOLD_PATCH" ||
    { echo "FOLD: does not apply at $(git log -1 --format=%s "$GIT_COMMIT")" >&2; exit 1; }
