#!/usr/bin/env bash
# The FT tests on a busy host (not part of 'make check'): runs every FT
# qtest and FT e2e scenario of tests/suite.list N times, with H CPU hogs
# (busy loops at nice 19) beside them, and prints how many runs failed.
#
#   KEMARI_STRESS_RUNS=N     rounds (default 5)
#   KEMARI_STRESS_HOGS=H     busy loops (default 2)
#   KEMARI_TESTS=REGEX       which FT tests (default: every FT test)
#
# Each round is one 'make check'-style run of the selected tests through
# scripts/test.sh; the logs of a failed round are kept under
# build/stress-logs/ROUND.
set -uo pipefail
. "$(dirname "$0")/lib.sh"

RUNS=${KEMARI_STRESS_RUNS:-5}
HOGS=${KEMARI_STRESS_HOGS:-2}
export KEMARI_TESTS=${KEMARI_TESTS:-'(/ft/|ft-virtio|e2e ft-)'}

hogs=()
cleanup() {
    [ ${#hogs[@]} -gt 0 ] && kill "${hogs[@]}" 2>/dev/null
    return 0
}
trap cleanup EXIT
for _ in $(seq "$HOGS"); do
    nice -n 19 sh -c 'while :; do :; done' &
    hogs+=($!)
done
log "stress: $RUNS rounds of the tests matching '$KEMARI_TESTS', $HOGS busy loops at nice 19"

total_pass=0 total_fail=0 bad_rounds=0
mkdir -p "$BUILD_DIR/stress-logs"
for round in $(seq "$RUNS"); do
    out=$("$TOP/scripts/test.sh" 2>&1)
    summary=$(echo "$out" | tail -n 1)
    echo "$out" | grep -E '^(PASS|FAIL|SKIP) ' || true
    p=$(echo "$summary" | sed -n 's/^\([0-9]*\) passed.*/\1/p')
    f=$(echo "$summary" | sed -n 's/.* \([0-9]*\) failed.*/\1/p')
    total_pass=$((total_pass + ${p:-0}))
    total_fail=$((total_fail + ${f:-1}))
    if [ "${f:-1}" != 0 ]; then
        bad_rounds=$((bad_rounds + 1))
        rm -rf "$BUILD_DIR/stress-logs/$round"
        cp -a "$BUILD_DIR/test-logs" "$BUILD_DIR/stress-logs/$round"
    fi
    log "stress: round $round of $RUNS: $summary"
done
log "stress: $RUNS rounds x the FT tests with $HOGS busy loops: $total_fail failures in $((total_pass + total_fail)) test runs ($bad_rounds rounds with a failure)"
echo "$total_pass passed, $total_fail failed"
[ "$total_fail" = 0 ]
