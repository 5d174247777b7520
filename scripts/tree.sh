#!/usr/bin/env bash
# Make the development tree $BUILD_DIR/qemu: the base as one commit tagged
# 'base', then one commit per patch in patches/series (git am).
#
#   tree.sh            create the tree if it does not exist; if it exists,
#                      check that it matches patches/ and say so if not
#   tree.sh --force    throw the tree's commits away and make it anew
#   tree.sh --check    exit 1 if the tree's commits differ from patches/
set -euo pipefail
. "$(dirname "$0")/lib.sh"

mode=${1:-}

series_patches() {
    sed -e 's/#.*//' -e '/^[[:space:]]*$/d' "$TOP/patches/series"
}

# Patch ids of the tree's commits and of patches/, one per line, in order.
tree_ids() {
    git -C "$TREE" log --reverse --format=%H base..HEAD |
        while read -r c; do
            git -C "$TREE" show "$c" | git patch-id --stable | cut -d' ' -f1
        done
}

file_ids() {
    local p
    series_patches | while read -r p; do
        git patch-id --stable < "$TOP/patches/$p" | cut -d' ' -f1
    done
}

tree_matches() {
    [ "$(tree_ids)" = "$(file_ids)" ]
}

if [ -d "$TREE/.git" ] && git -C "$TREE" rev-parse -q --verify base >/dev/null; then
    case "$mode" in
    --force)
        log "resetting $TREE to base"
        git -C "$TREE" am --abort >/dev/null 2>&1 || true
        git -C "$TREE" reset -q --hard base
        ;;
    --check)
        tree_matches && exit 0
        log "$TREE differs from patches/ (run 'make export' or 'make tree-reset')"
        exit 1
        ;;
    *)
        if tree_matches; then
            log "tree matches patches/"
        else
            log "warning: $TREE has commits that differ from patches/;" \
                "using the tree as it is ('make export' saves it," \
                "'make tree-reset' rebuilds it from patches/)"
        fi
        exit 0
        ;;
    esac
else
    [ "$mode" = --check ] && exit 1
    "$TOP/scripts/fetch-base.sh"
    stage_start "creating $TREE from the base"
    rm -rf "$TREE"
    cp -a "$BUILD_DIR/base/src" "$TREE"
    cd "$TREE"
    git init -q
    git config user.name "Kemari developer"
    git config user.email "kemari@localhost"
    git config core.abbrev 12
    # The base commit is made reproducibly, so its hash names the base.
    git add -A
    read -r _ _ base_desc < .kemari-base || base_desc=unknown
    git rm -q --cached .kemari-base
    GIT_AUTHOR_DATE="2000-01-01T00:00:00Z" GIT_COMMITTER_DATE="2000-01-01T00:00:00Z" \
        git commit -q --no-verify -m "QEMU $(cat VERSION) base ($base_desc)"
    git tag base
    echo ".kemari-base" >> .git/info/exclude
    echo "/build/" >> .git/info/exclude
    stage_end "base commit"
fi

cd "$TREE"
n=0
while read -r p; do
    git am -q --keep-cr "$TOP/patches/$p" ||
        die "patch $p does not apply (tree left in 'git am' state: fix it, 'git am --continue', then 'make export')"
    n=$((n + 1))
done < <(series_patches)
log "applied $n patches on base ($(git rev-parse --short base))"
