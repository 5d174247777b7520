#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Seed 004 benchmark: guest RAM on a shared memory file with
x-ignore-shared, against the same moves with the RAM in the stream.

The real e2e guest (256 MiB) under the disk+TCP workload, measured in
the same run, runs interleaved, KEMARI_BENCH_REPS times each (default
3), medians printed:

(a) local live update (RAM on a memory-backend-file in /dev/shm,
    share=on, x-ignore-shared on both sides, the destination maps the
    same file), and the same in cpr-transfer mode (-machine
    aux-ram-share=on, a CPR channel), against a normal local live
    migration (anonymous RAM, the default -m 256): downtime, total time,
    bytes sent (query-migrate ram.transferred: the whole stream) and the
    ratios;

(b) fast save/restore (the same memory file, migrate file: with
    x-ignore-shared, quit, a new QEMU with -incoming defer, the
    capability, migrate-incoming file:) against a normal save to a
    file and restore (anonymous RAM): save time (query-migrate
    total-time of the save of the running guest), state file size,
    restore time from the start of the new QEMU process until the guest
    runs (query-status, polled) and until it answers ping (pinged every
    10 ms from the process start), and the ratios.

After each move the workload must go on and the verifier must pass.
Under TCG (our machines) the figures are those of an emulated guest.
"""

import os
import statistics
import subprocess
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)),
                                "..", "tests", "e2e"))
import harness  # noqa: E402
import shared_ram  # noqa: E402
from harness import log, Failure  # noqa: E402

REPS = int(os.environ.get("KEMARI_BENCH_REPS", "3"))
RECORDS = 50            # acknowledged writes before and after each move


def check(run, vm):
    """The workload goes on on @vm; then the verifier."""
    if not run.checker.wait_for(run.checker.log.count + RECORDS, 120):
        raise Failure("the workload stalled after the move: %s"
                      % vm.serial_text()[-1000:])
    problems, summary = run.finish()
    if problems:
        raise Failure("verifier: %s: %s" % (summary, problems))


def boot(run, shared, mem, extra=()):
    extra = (shared_ram.memory_backend(mem) if shared else []) + list(extra)
    vm = run.qemu("source", "tap0", extra=extra)
    harness.boot_and_load(run, vm, RECORDS, False)
    return vm


def live(shared, cpr=False):
    """One local live migration; with @shared, a live update
    (x-ignore-shared, or with @cpr in cpr-transfer mode)."""
    run = harness.Run("bench-live")
    mem = shared_ram.memory_file(run)
    aux = ["-machine", "aux-ram-share=on"] if cpr else []
    try:
        src = boot(run, shared, mem, aux)
        extra = shared_ram.memory_backend(mem) if shared else []
        if cpr:
            dst = shared_ram.cpr_transfer(run, src, "destination", "tap1",
                                     extra + aux)
        else:
            dst = run.qemu("destination", "tap1",
                           incoming=harness.INCOMING, extra=extra)
            if shared:
                shared_ram.ignore_shared(src, dst)
            src.cmd("migrate", uri=harness.INCOMING)
        info = src.wait_migration(("completed",))
        dst.wait_migration(("completed",), timeout=60)
        check(run, dst)
        return {"downtime": info["downtime"], "total": info["total-time"],
                "bytes": info["ram"]["transferred"]}
    finally:
        run.cleanup(keep=False)
        shared_ram.remove(mem)


def save_restore(shared):
    """One save of the running guest to a file and its restore."""
    run = harness.Run("bench-save")
    mem = shared_ram.memory_file(run)
    state = os.path.join(run.dir, "state")
    try:
        src = boot(run, shared, mem)
        if shared:
            shared_ram.ignore_shared(src)
        src.cmd("migrate", uri="file:" + state)
        info = src.wait_migration(("completed",))
        src.quit()
        size = os.path.getsize(state)
        extra = shared_ram.memory_backend(mem) if shared else []
        t0 = time.time()
        pinger = subprocess.Popen(["ping", "-c", "1", "-w", "60", "-i",
                                   "0.01", harness.GUEST_IP],
                                  stdout=subprocess.DEVNULL,
                                  stderr=subprocess.DEVNULL)
        try:
            dst = run.qemu("restored", "tap1", incoming="defer",
                           extra=extra)
            if shared:
                shared_ram.ignore_shared(dst)
            dst.cmd("migrate-incoming", uri="file:" + state)
            while dst.status() != "running":
                if time.time() - t0 > 60:
                    raise Failure("not running 60 s after the restore: %s"
                                  % dst.migration())
                time.sleep(0.005)
            running = time.time() - t0
            if pinger.wait(60) != 0:
                raise Failure("the restored guest does not answer ping")
            answers = time.time() - t0
        finally:
            if pinger.poll() is None:
                pinger.kill()
                pinger.wait()
        check(run, dst)
        return {"save": info["total-time"], "size": size,
                "running": running * 1000, "ping": answers * 1000}
    finally:
        run.cleanup(keep=False)
        shared_ram.remove(mem)


def median(rows, key):
    return statistics.median(r[key] for r in rows)


def ratio(a, b):
    return a / b if b else float("nan")


def size(n):
    return ("%.1f MiB" % (n / 2**20)) if n >= 2**20 else "%d KiB" % (n >> 10)


def main():
    if not harness.in_private_netns():
        return harness.reexec_in_netns()
    runs = [("mig", "live migration", lambda: live(False)),
            ("upd", "live update (x-ignore-shared)", lambda: live(True)),
            ("cpr", "live update (cpr-transfer)",
             lambda: live(True, cpr=True)),
            ("save", "save/restore", lambda: save_restore(False)),
            ("fast", "save/restore (x-ignore-shared)",
             lambda: save_restore(True))]
    res = {key: [] for key, _, _ in runs}
    for rep in range(1, REPS + 1):
        for key, name, measure in runs:
            row = measure()
            res[key].append(row)
            log("bench: run %d/%d: %s: %s" % (
                rep, REPS, name, ", ".join("%s %.0f" % kv
                                           for kv in sorted(row.items()))))
    accel = os.environ.get("KEMARI_ACCEL", "tcg")
    mig, upd, cpr = res["mig"], res["upd"], res["cpr"]
    print()
    print("(a) Local live update vs local live migration (real guest under "
          "the disk+TCP workload, 256 MiB, %s, median of %d runs)"
          % (accel, REPS))
    print("%-34s %10s %12s %12s" % ("", "downtime", "total time",
                                    "bytes sent"))
    for name, rows in (("live migration (anonymous RAM)", mig),
                       ("live update (x-ignore-shared)", upd),
                       ("live update (cpr-transfer)", cpr)):
        print("%-34s %8dms %10dms %12s" %
              (name, median(rows, "downtime"), median(rows, "total"),
               size(median(rows, "bytes"))))
    for name, rows in (("ratio x-ignore-shared / migration", upd),
                       ("ratio cpr-transfer / migration", cpr)):
        print("%-34s %10.3f %12.3f %12.4f" %
              (name,
               ratio(median(rows, "downtime"), median(mig, "downtime")),
               ratio(median(rows, "total"), median(mig, "total")),
               ratio(median(rows, "bytes"), median(mig, "bytes"))))
    save, fast = res["save"], res["fast"]
    print()
    print("(b) Save to a file / restore in a new QEMU (same guest and load, "
          "median of %d runs)" % REPS)
    print("%-34s %10s %12s %18s %16s" % ("", "save time", "state file",
                                         "restore: running",
                                         "restore: ping"))
    for name, rows in (("save/restore (anonymous RAM)", save),
                       ("save/restore (x-ignore-shared)", fast)):
        print("%-34s %8dms %12s %16.0fms %14.0fms" %
              (name, median(rows, "save"), size(median(rows, "size")),
               median(rows, "running"), median(rows, "ping")))
    print("%-34s %10.3f %12.4f %18.3f %16.3f" %
          ("ratio x-ignore-shared / normal",
           ratio(median(fast, "save"), median(save, "save")),
           ratio(median(fast, "size"), median(save, "size")),
           ratio(median(fast, "running"), median(save, "running")),
           ratio(median(fast, "ping"), median(save, "ping"))))
    print("restore times run from the start of the new QEMU process; "
          "the save is of the running guest (live, to file:)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except Failure as e:
        log("FAIL: %s" % e)
        sys.exit(1)
