#!/usr/bin/env bash
# The whole test suite: dependencies, base, tree, build, then the series
# checks and every test in tests/suite.list.  Prints the time of each
# stage and ends with the line "N passed, N failed[, N skipped]".
# Exit status is non-zero if anything failed.
#
#   KEMARI_TESTS=REGEX   run only the tests whose name matches
#   KEMARI_BISECT=1      also build every prefix of the series (CI does)
#   KEMARI_JOBS=N        qtests run N at a time (default 2)
set -uo pipefail
. "$(dirname "$0")/lib.sh"

LOGS=$BUILD_DIR/test-logs
SUITE_T0=$(date +%s)
passed=0 failed=0 skipped=0
failures=()

stage() {
    local name=$1
    shift
    stage_start "$name"
    if ! "$@"; then
        log "stage '$name' failed"
        echo "0 passed, 1 failed"
        exit 1
    fi
    stage_end "$name"
}

record() {
    local name=$1 result=$2 secs=$3
    case "$result" in
    PASS) passed=$((passed + 1)) ;;
    SKIP) skipped=$((skipped + 1)) ;;
    *) failed=$((failed + 1)); failures+=("$name") ;;
    esac
    printf '%-4s %-60s %4ss\n' "$result" "$name" "$secs"
}

selected() {
    [ -z "${KEMARI_TESTS:-}" ] || [[ $1 =~ $KEMARI_TESTS ]]
}

# Run one test; its output goes to a log, shown if it fails.
run_test() {
    local name=$1
    shift
    selected "$name" || return 0
    local logf=$LOGS/$(echo "$name" | tr '/ ' '__').log t0 rc result
    t0=$(date +%s)
    "$@" > "$logf" 2>&1
    rc=$?
    if [ $rc = 0 ]; then
        # A glib test whose only case skipped reports "# SKIP" in TAP.
        if grep -qE '^ok [0-9]+ .*# SKIP' "$logf" && ! grep -qE '^ok [0-9]+ [^#]*$' "$logf"; then
            result=SKIP
        else
            result=PASS
        fi
    else
        result=FAIL
    fi
    record "$name" "$result" $(( $(date +%s) - t0 ))
    if [ "$result" = FAIL ]; then
        echo "---- $logf (last 40 lines, exit $rc)"
        tail -n 40 "$logf"
        echo "----"
    fi
}

# qtests run KEMARI_JOBS at a time (default 2), as meson test runs them:
# each in the background, its result recorded, in the order of the
# suite, once the pool is drained.  The pool is drained before any other
# kind of test, so e2e scenarios and checks run alone.
JOBS=${KEMARI_JOBS:-2}
pool=()

run_pooled() {
    local name=$1
    shift
    selected "$name" || return 0
    local logf=$LOGS/$(echo "$name" | tr '/ ' '__').log
    while [ "$(jobs -rp | wc -l)" -ge "$JOBS" ]; do
        wait -n
    done
    (
        t0=$(date +%s)
        "$@" > "$logf" 2>&1
        echo "$? $(( $(date +%s) - t0 ))" > "$logf.rc"
    ) < /dev/null &
    pool+=("$name")
}

drain_pool() {
    local name logf rc secs result
    wait
    for name in "${pool[@]}"; do
        logf=$LOGS/$(echo "$name" | tr '/ ' '__').log
        read -r rc secs < "$logf.rc" || { rc=1; secs=0; }
        if [ "$rc" = 0 ]; then
            if grep -qE '^ok [0-9]+ .*# SKIP' "$logf" &&
               ! grep -qE '^ok [0-9]+ [^#]*$' "$logf"; then
                result=SKIP
            else
                result=PASS
            fi
        else
            result=FAIL
        fi
        record "$name" "$result" "$secs"
        if [ "$result" = FAIL ]; then
            echo "---- $logf (last 40 lines, exit $rc)"
            tail -n 40 "$logf"
            echo "----"
        fi
    done
    pool=()
}

# As meson test does: from the build directory (analyze-script looks for
# scripts/analyze-migration.py there), with the binaries we built.
qtest_env() (
    cd "$OBJ" || exit 1
    QTEST_QEMU_BINARY=$OBJ/qemu-system-x86_64 \
    QTEST_QEMU_IMG=$OBJ/qemu-img \
    QEMU_TEST_FLAKY_TESTS=1 \
    PYTHON=$OBJ/pyvenv/bin/python3 \
    G_TEST_DBUS_DAEMON=$TREE/tests/dbus-vmstate-daemon.sh \
    MALLOC_PERTURB_=$((RANDOM % 255 + 1)) \
    timeout --signal=KILL 900 "$@"
)

cd "$TOP"
mkdir -p "$BUILD_DIR"
if [ "${CI:-}" = true ]; then
    KEMARI_BISECT=${KEMARI_BISECT:-1}
fi

stage "dependencies" "$TOP/scripts/deps.sh"
stage "base and development tree" "$TOP/scripts/tree.sh"
stage "QEMU" "$TOP/scripts/build.sh"
stage "e2e guest" "$TOP/tests/e2e/guest/build-guest.sh" "$BUILD_DIR/e2e/guest"

rm -rf "$LOGS"
mkdir -p "$LOGS"
stage_start "tests"

if "$TOP/scripts/tree.sh" --check 2>/dev/null; then
    run_test "series: tree/export round trip is byte-identical" \
        "$TOP/scripts/export.sh" --check
else
    log "build/qemu differs from patches/: round-trip test not run"
fi
while read -r p; do
    run_test "checkpatch $p" "$TOP/scripts/checkpatch.sh" "$TOP/patches/$p"
done < <(sed -e 's/#.*//' -e '/^[[:space:]]*$/d' patches/series)

while read -r kind bin arg; do
    case "$kind" in
    ''|'#'*) continue ;;
    qtest) run_pooled "qtest $arg" qtest_env "$OBJ/$bin" --full --tap \
               -p "$arg"
           continue ;;
    esac
    drain_pool
    case "$kind" in
    unit) run_test "unit ${bin##*/}" qtest_env "$OBJ/$bin" --tap ;;
    e2e) run_test "e2e $bin" timeout --signal=KILL 900 \
             python3 "$TOP/tests/e2e/harness.py" "$bin" ;;
    check) run_test "check ${bin##*/}" timeout --signal=KILL 1800 "$TOP/$bin" ;;
    *) record "suite.list: unknown kind '$kind'" FAIL 0 ;;
    esac
done < tests/suite.list
drain_pool

if [ "${KEMARI_BISECT:-0}" = 1 ]; then
    run_test "bisect: every prefix of the series builds" "$TOP/scripts/bisect.sh"
fi
stage_end "tests"

log "suite took $(( $(date +%s) - SUITE_T0 ))s"
if [ ${#failures[@]} -gt 0 ]; then
    log "failed: ${failures[*]}"
fi
if [ $skipped -gt 0 ]; then
    echo "$passed passed, $failed failed, $skipped skipped"
else
    echo "$passed passed, $failed failed"
fi
[ $failed = 0 ]
