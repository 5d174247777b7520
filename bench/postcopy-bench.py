#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Postcopy against precopy (seed 001), the real guest, same run.

The e2e guest (256 MiB) dirties memory fast: kemari.mode=dirtyN writes
one byte in each of N pages of a 32 MiB buffer every millisecond, over
and over (at 4096 the whole buffer is dirty again every few ms).  One guest
is booted and migrated from QEMU to QEMU on this host, once per
configuration, with the same parameters (max-bandwidth 128 MiB/s,
QEMU's default; downtime-limit KEMARI_BENCH_DOWNTIME ms, except in the
first row):

  precopy, 300 ms (default) plain precopy with QEMU's default
                            downtime-limit (the only row with another)
  precopy                   plain precopy; capped at KEMARI_BENCH_CAP s
                            (it may never converge), then cancelled
  precopy + auto-converge   precopy that throttles the guest's vCPU
                            until the dirty pages fit in the downtime
  postcopy after 1st pass   precopy pass over RAM, then
                            migrate-start-postcopy (QEMU's recipe)
  postcopy at once          migrate-start-postcopy right after migrate:
                            the seed's pure postcopy, each page sent once

For each: total migration time, downtime, RAM bytes sent, pages sent
(normal pages: each send of a non-zero page counts), passes over RAM,
page requests from the destination; then the ratios of the postcopy
rows to the precopy ones, and pages sent per page of the pure postcopy
run (which sends every non-zero page once).  Under TCG, printed, never
asserted.

  KEMARI_BENCH_DIRTY     N, pages dirtied per ms (default 4096)
  KEMARI_BENCH_DOWNTIME  downtime-limit in ms (default 50)
  KEMARI_BENCH_CAP       precopy time cap in s (default 30)
"""

import os
import sys
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
import harness  # noqa: E402
from harness import log, Failure  # noqa: E402

DIRTY = int(os.environ.get("KEMARI_BENCH_DIRTY", "4096"))
DOWNTIME = int(os.environ.get("KEMARI_BENCH_DOWNTIME", "50"))
CAP = float(os.environ.get("KEMARI_BENCH_CAP", "30"))
PORT = 4450

CONFIGS = [
    # name, postcopy switch (None: precopy; "pass"; "now"), auto-converge,
    # downtime-limit (None: DOWNTIME)
    ("precopy, 300 ms (default)", None, False, 300),
    ("precopy", None, False, None),
    ("precopy + auto-converge", None, True, None),
    ("postcopy after 1st pass", "pass", False, None),
    ("postcopy at once", "now", False, None),
]


def set_caps(vm, **states):
    vm.cmd("migrate-set-capabilities",
           capabilities=[{"capability": k.replace("_", "-"), "state": v}
                         for k, v in states.items()])


def migrate(src, dst, uri, switch, converge, downtime):
    """One migration; returns the row of figures."""
    post = switch is not None
    set_caps(dst, events=True, postcopy_ram=post)
    set_caps(src, events=True, postcopy_ram=post, auto_converge=converge)
    src.cmd("migrate-set-parameters", **{"downtime-limit": downtime})
    throttle = 0
    t0 = time.time()
    src.cmd("migrate", uri=uri)
    if switch == "now":
        src.cmd("migrate-start-postcopy")
    switched = switch != "pass"
    while True:
        info = src.migration()
        status = info.get("status")
        if status == "completed":
            break
        if status == "failed":
            raise Failure("migration failed: %s" % info.get("error-desc"))
        ram = info.get("ram", {})
        throttle = max(throttle, info.get("cpu-throttle-percentage", 0))
        if not switched and ram.get("dirty-sync-count", 0) >= 2:
            src.cmd("migrate-start-postcopy")
            switched = True
        if not post and time.time() - t0 > CAP:
            src.cmd("migrate_cancel")
            src.wait_migration(("cancelled",), timeout=60)
            info["capped"] = True
            return row(info, throttle)
        time.sleep(0.02)
    dst.wait_migration(("completed",), timeout=60)
    for vm in (src, dst):
        vm.status()     # collects queued events
    states = [e["data"]["status"] for e in src.events
              if e["event"] == "MIGRATION"]
    if post and "postcopy-active" not in states:
        raise Failure("no postcopy-active on the source: %s" % states)
    if dst.status() != "running":
        raise Failure("destination not running")
    return row(info, throttle)


def row(info, throttle):
    ram = info.get("ram", {})
    return {
        "time": info.get("total-time", 0),
        "downtime": info.get("downtime", 0),
        "bytes": ram.get("transferred", 0),
        "normal": ram.get("normal", 0),
        "passes": ram.get("dirty-sync-count", 0),
        "requests": ram.get("postcopy-requests", 0),
        "postcopy_bytes": ram.get("postcopy-bytes", 0),
        "throttle": throttle,
        "capped": info.get("capped", False),
    }


def measure():
    run = harness.Run("bench-postcopy")
    rows = []
    try:
        ready = "dirty: started"
        vm = run.qemu("guest0", "tap0", cmdline="kemari.mode=dirty%d" % DIRTY)
        vm.wait_serial(ready, 180)
        time.sleep(2)
        tap = 1
        for i, (name, switch, converge, downtime) in enumerate(CONFIGS):
            uri = "tcp:127.0.0.1:%d" % (PORT + i)
            dst = run.qemu("guest%d" % (i + 1), "tap%d" % tap, incoming=uri)
            log("bench: %s" % name)
            r = migrate(vm, dst, uri, switch, converge,
                        downtime or DOWNTIME)
            rows.append((name, r))
            if r["capped"]:
                # Not migrated: the guest stays on the source.
                dst.kill()
                vm.cmd("migrate-set-capabilities", capabilities=[
                    {"capability": "auto-converge", "state": False}])
                continue
            vm.quit()
            vm, tap = dst, 1 - tap
            time.sleep(2)       # the dirtying settles on the new host
        return rows
    finally:
        run.cleanup(keep=False)


def main():
    if not harness.in_private_netns():
        return harness.reexec_in_netns()
    rows = measure()
    accel = os.environ.get("KEMARI_ACCEL", "tcg")
    print()
    print("Postcopy vs precopy (real guest, 256 MiB, %s, dirty%d: %d pages "
          "of a 32 MiB buffer dirtied per ms; downtime-limit %d ms unless "
          "said, max-bandwidth 128 MiB/s)" % (accel, DIRTY, DIRTY, DOWNTIME))
    print("%-25s %10s %9s %10s %10s %7s %8s %9s" %
          ("config", "total", "downtime", "RAM sent", "pages", "passes",
           "requests", "max thr"))
    for name, r in rows:
        print("%-25s %8dms %7dms %8.1fMB %10d %7d %8d %8d%%%s" %
              (name, r["time"], r["downtime"], r["bytes"] / 1e6, r["normal"],
               r["passes"], r["requests"], r["throttle"],
               "  (did not converge in %.0f s: cancelled)" % CAP
               if r["capped"] else ""))
    once = dict(rows).get("postcopy at once")
    print()
    print("ratios (postcopy / precopy; < 1: postcopy better)")
    for post in ("postcopy after 1st pass", "postcopy at once"):
        p = dict(rows)[post]
        for pre in [c[0] for c in CONFIGS if c[1] is None]:
            q = dict(rows)[pre]
            print("  %-25s / %-25s time %6.3f  bytes %6.3f%s" %
                  (post, pre, p["time"] / q["time"] if q["time"] else 0,
                   p["bytes"] / q["bytes"] if q["bytes"] else 0,
                   "  (precopy capped)" if q["capped"] else ""))
    if once and once["normal"]:
        print()
        print("pages sent per page sent by pure postcopy (%d non-zero pages "
              "each sent once):" % once["normal"])
        for name, r in rows:
            print("  %-25s %6.2f" % (name, r["normal"] / once["normal"]))
    print("seed 001: postcopy sends each page once, precopy may send the "
          "same pages again and again")
    return 0


if __name__ == "__main__":
    sys.exit(main())
