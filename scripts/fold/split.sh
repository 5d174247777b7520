#!/usr/bin/env bash
# split.sh COMMIT PATH...: split COMMIT of the development tree into its
# change to PATH... and the rest, both with its message.  Run in the tree.
set -euo pipefail
c=$(git rev-parse --short=12 "$1"); shift
GIT_SEQUENCE_EDITOR="sed -i 's/^pick $c/edit $c/'" git rebase -q -i base
git reset -q HEAD^
git add -- "$@"
git commit -q -C "$c"
git add -A
git diff --cached --quiet || git commit -q -C "$c"
git rebase --continue > /dev/null
