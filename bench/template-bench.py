#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""VM template clones against a cold boot (seed 004 c), same run.

The e2e guest (256 MiB, kemari.mode=idle) is made a template with
tools/vm-template.py; then K = 1, 4, 8 clones are started at the same
time (each: a new QEMU, private copy-on-write RAM over the template's
memory file, device state from its state file with x-ignore-shared, a
qcow2 overlay, a tap), and the same guest is booted cold once (plain
anonymous RAM, the same command line otherwise).  For each it prints:

  start     process start until the guest answers ping (through its own
            tap), and until QEMU reports it running (clones)
  PSS       proportional set size of the QEMU process (smaps_rollup),
            KEMARI_BENCH_SETTLE s after it answered; pages of the
            template file that K clones map count 1/K in each
  private   its private pages (what it does not share)

and the memory saved per VM (cold PSS - clone PSS), beside the seed's
figures (hyper.sh: clones start in 130 ms and save 80 MB each).  Under
TCG; printed, never asserted.

  KEMARI_BENCH_CLONES   the Ks (default 1,4,8)
  KEMARI_BENCH_SETTLE   seconds between answering and measuring (3)
"""

import os
import shutil
import statistics
import subprocess
import sys
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "e2e"))
import harness  # noqa: E402
import postcopy_templates as pt  # noqa: E402
from harness import log, Failure  # noqa: E402

KS = [int(k) for k in os.environ.get("KEMARI_BENCH_CLONES",
                                     "1,4,8").split(",")]
SETTLE = float(os.environ.get("KEMARI_BENCH_SETTLE", "3"))
SEED_START_MS = 130
SEED_SAVED_MB = 80


def memory(vm):
    """(PSS, private, anonymous huge pages) of @vm's QEMU in MiB."""
    fields = {}
    with open("/proc/%d/smaps_rollup" % vm.pid) as f:
        for line in f:
            parts = line.split()
            if len(parts) >= 2 and parts[1].isdigit():
                fields[parts[0].rstrip(":")] = int(parts[1])
    return (fields.get("Pss", 0) / 1024,
            (fields.get("Private_Clean", 0) +
             fields.get("Private_Dirty", 0)) / 1024,
            fields.get("AnonHugePages", 0) / 1024)


def clones(vt, tmpl, work, k):
    """Start @k clones at once; return one row per clone."""
    results = [None] * k
    vms = [None] * k

    def one(i):
        try:
            t0 = time.time()
            vm = vt.start_clone(tmpl, work, "k%d-clone%d" % (k, i),
                                netdev=pt.tap_netdev("tc%d" % i))
            vms[i] = vm
            running = time.time() - t0
            if not pt.ping_tap("tc%d" % i):
                raise Failure("%s does not answer ping" % vm.name)
            results[i] = {"running": running * 1000,
                          "answers": (time.time() - t0) * 1000}
        except Exception as e:      # reported by the caller
            results[i] = {"error": str(e)}

    threads = [threading.Thread(target=one, args=(i,)) for i in range(k)]
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        errors = [r["error"] for r in results if "error" in r]
        if errors:
            raise Failure("clones failed: %s" % errors)
        time.sleep(SETTLE)
        for vm, r in zip(vms, results):
            if vm.status() != "running":
                raise Failure("%s is not running" % vm.name)
            r["pss"], r["private"], _ = memory(vm)
        return results
    finally:
        for vm in vms:
            if vm:
                vm.quit()


def cold_boot(vt, tmpl, work):
    """The same guest booted from scratch, plain RAM."""
    desc = vt.load(tmpl)
    overlay = os.path.join(work, "cold.qcow2")
    subprocess.run([vt.qemu_img(), "create", "-q", "-f", "qcow2", "-b",
                    os.path.join(tmpl, "disk.base"), "-F",
                    desc["disk_format"], overlay], check=True)
    args = ([desc["qemu"], "-m", str(desc["mem_mb"]),
             "-drive", "file=%s,format=qcow2,if=none,id=disk0" % overlay] +
            vt.netdev_args(pt.tap_netdev("tcold")) + desc["args"])
    t0 = time.time()
    vm = vt.Vm("cold", args, work)
    try:
        if not pt.ping_tap("tcold", timeout=180, interval=0.05):
            raise Failure("the cold-booted guest does not answer ping")
        answers = (time.time() - t0) * 1000
        vm.wait_serial(desc["ready"], 10)
        time.sleep(SETTLE)
        pss, private, huge = memory(vm)
        return {"answers": answers, "pss": pss, "private": private,
                "huge": huge}
    finally:
        vm.quit()


def main():
    if not harness.in_private_netns():
        return harness.reexec_in_netns()
    vt = pt.template_tool()
    work, tdir = pt.scratch("bench-template")
    tmpl = os.path.join(tdir, "t")
    pt.setup_taps(["tt0", "tcold"] + ["tc%d" % i for i in range(max(KS))])
    disk = os.path.join(work, "disk.raw")
    with open(disk, "wb") as f:
        f.truncate(64 << 20)
    try:
        log("bench: template")
        vt.create(tmpl, pt.guest_args("idle"), disk,
                  ready="workload: started",
                  netdev=pt.tap_netdev("tt0"), timeout=180, log=log)
        desc = vt.load(tmpl)
        populated = os.stat(os.path.join(tmpl, "memory")).st_blocks / 2048
        rows = []
        for k in KS:
            log("bench: %d clone%s at once" % (k, "s" if k > 1 else ""))
            rows.append((k, clones(vt, tmpl, work, k)))
        log("bench: cold boot")
        cold = cold_boot(vt, tmpl, work)
        changed = vt.verify(tmpl)
    finally:
        shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(tdir, ignore_errors=True)
    accel = os.environ.get("KEMARI_ACCEL", "tcg")
    print()
    print("VM templates: clones vs cold boot (real guest, 256 MiB, %s; "
          "template: boot %.1f s, save %.0f ms, device state %d KiB)"
          % (accel, desc["boot_seconds"], desc["save_seconds"] * 1000,
             desc["state_bytes"] >> 10))
    print("%-16s %12s %12s %12s %10s %10s %12s" %
          ("", "running", "answers", "answers max", "PSS", "private",
           "saved/VM"))
    print("%-16s %12s %10.0fms %12s %8.1fMB %8.1fMB %12s" %
          ("cold boot", "-", cold["answers"], "-", cold["pss"],
           cold["private"], "-"))
    for k, res in rows:
        pss = statistics.mean(r["pss"] for r in res)
        print("%-16s %10.0fms %10.0fms %10.0fms %8.1fMB %8.1fMB %10.1fMB" %
              ("%d clone%s (mean)" % (k, "s" if k > 1 else ""),
               statistics.mean(r["running"] for r in res),
               statistics.mean(r["answers"] for r in res),
               max(r["answers"] for r in res), pss,
               statistics.mean(r["private"] for r in res),
               cold["pss"] - pss))
    k, res = rows[-1]
    answers = statistics.mean(r["answers"] for r in res)
    print("ratios at K=%d: start %.3f of a cold boot, PSS %.3f of a cold "
          "boot" % (k, answers / cold["answers"],
                    statistics.mean(r["pss"] for r in res) / cold["pss"]))
    print("seed 004 (hyper.sh, KVM): start 130 ms, 80 MB saved per VM; "
          "ours (%s): start %.0f ms (K=%d, until ping), %.1f MB saved per "
          "VM at K=%d" % (accel, statistics.mean(r["answers"]
                                                 for r in rows[0][1]),
                          rows[0][0], cold["pss"] -
                          statistics.mean(r["pss"] for r in res), k))
    print("cold boot: QEMU's default anonymous RAM, %.0f MB of it in "
          "transparent huge pages; the template's memory file holds %.0f MB "
          "(the pages the guest touched to its ready point)"
          % (cold["huge"], populated))
    print("template files after all clones: %s"
          % ("CHANGED: %s" % changed if changed else "byte-identical"))
    return 1 if changed else 0


if __name__ == "__main__":
    sys.exit(main())
