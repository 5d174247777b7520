#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""x-vmstate-cycle benchmark (seed 002): what one save/reset/load
iteration of the devices costs the real e2e guest, idle and under the
disk+TCP workload, against a plain stop + cont of the same guest in the
same run (the baseline: what any pause costs).

For each load it prints the VM pause per iteration (median and p99, from
the vmstate_cycle trace point), the device state size, and the ratio of
the pause median to the stop + cont median.  Under TCG (our machines)
the figures are those of an emulated guest; they are printed, never
asserted.

  KEMARI_BENCH_ITERATIONS   iterations per load (default 200)
"""

import os
import re
import statistics
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "e2e"))
import harness  # noqa: E402
from harness import log, Failure  # noqa: E402

ITERATIONS = int(os.environ.get("KEMARI_BENCH_ITERATIONS", "200"))
LOADS = [("idle", "kemari.mode=idle", "workload: started"),
         ("disk+TCP workload", "", "workload: started")]
CYCLE_RE = re.compile(r"vmstate_cycle iteration \d+: (\d+) bytes of device "
                      r"state, VM paused (\d+) us, ok 1")


def percentile(values, p):
    values = sorted(values)
    return values[min(len(values) - 1, int(len(values) * p / 100))]


def measure(name, cmdline, ready):
    run = harness.Run("bench-vmstate", ntaps=1)
    try:
        vm = run.qemu("guest", "tap0", cmdline=cmdline,
                      extra=["-trace", "vmstate_cycle"])
        vm.wait_serial(ready, 180)
        time.sleep(2)
        # Baseline: stop + cont, as the monitor sees it
        base = []
        for _ in range(ITERATIONS // 4):
            t0 = time.perf_counter()
            vm.cmd("stop")
            vm.cmd("cont")
            base.append((time.perf_counter() - t0) * 1e6)
        t0 = time.perf_counter()
        size = vm.cmd("x-vmstate-cycle", count=ITERATIONS,
                      interval=5)["bytes"]
        wall = time.perf_counter() - t0
        vm.quit()
        with open(vm.stderr.name) as f:
            pauses = [int(m.group(2)) for m in CYCLE_RE.finditer(f.read())]
        pauses = pauses[-ITERATIONS:]
        if len(pauses) < ITERATIONS:
            raise Failure("%s: %d trace lines for %d iterations"
                          % (name, len(pauses), ITERATIONS))
        return {"size": size, "wall": wall,
                "p50": statistics.median(pauses),
                "p99": percentile(pauses, 99),
                "base": statistics.median(base)}
    finally:
        run.cleanup(keep=False)


def main():
    if not harness.in_private_netns():
        return harness.reexec_in_netns()
    rows = []
    for name, cmdline, ready in LOADS:
        log("measuring %s: stop+cont x%d, then x-vmstate-cycle x%d"
            % (name, ITERATIONS // 4, ITERATIONS))
        rows.append((name, measure(name, cmdline, ready)))
    print()
    print("%-20s %10s %12s %12s %14s %8s"
          % ("load", "state (B)", "pause p50", "pause p99",
             "stop+cont p50", "ratio"))
    for name, r in rows:
        print("%-20s %10d %9.2f ms %9.2f ms %11.2f ms %7.1fx"
              % (name, r["size"], r["p50"] / 1000, r["p99"] / 1000,
                 r["base"] / 1000, r["p50"] / r["base"]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
