# SPDX-License-Identifier: GPL-2.0-or-later
"""Seed 004 (bypass shared memory) with the real guest.

The guest's RAM is a shared memory backend on a file
(memory-backend-file, share=on), and the x-ignore-shared migration
capability keeps it out of the migration stream: only device state
(and the small ROM blocks) travels, the RAM stays in the file.

  live-update    the guest under the disk+TCP workload is migrated to a
                 fresh QEMU on the same host that maps the same memory
                 file; the workload goes on there, the verifier passes,
                 and fewer than 1 MiB were sent (the RAM is 256 MiB)
  save-restore   the guest under the workload is saved to a file
                 (migrate file:) with x-ignore-shared, the QEMU quits,
                 a new QEMU maps the memory file and restores from the
                 state file (-incoming defer, migrate-incoming file:);
                 the workload goes on, the verifier passes, and the state
                 file and the bytes sent are under 1 MiB
  live-update-cpr  the live update in QEMU 10.0's cpr-transfer mode: the
                 new QEMU gets the RAM blocks' file descriptors over a
                 UNIX socket (-incoming with a cpr channel), no
                 x-ignore-shared needed, every RAM block stays in place
  seeds-controls both must fail with share=off (the RAM travels) and
                 with another memory file on the destination, and
                 cpr-transfer with share=off

Run by harness.py (harness.py live-update, harness.py save-restore).
The memory file is in KEMARI_SHM_DIR (default /dev/shm) and is removed
after the run.  With share=off (or two different files) the tests must
fail: the RAM would travel (over the limit), or the destination would
have a RAM that is not the guest's (its load of the device state fails,
or the workload stalls).
"""

import json
import os
import time

import harness
from harness import INCOMING, MIGRATION_PORT, Failure, log

RAM_SIZE = 256 << 20
# RAM bytes that may travel when the guest RAM is shared: device state
# and the ROM blocks (pc.bios, pc.rom, option ROMs) that are not on the
# memory backend.  A 256 MiB guest that travels sends far more than
# this even when most of its pages are zero.
SMALL = 1 << 20
RECORDS = 100           # acknowledged writes before and after the move
KEEP_FAILED = True      # keep the scratch directory of a failed run


def memory_file(run, name="ram0"):
    """Path of the guest RAM file of @run (not created: QEMU does it)."""
    base = os.environ.get("KEMARI_SHM_DIR", "/dev/shm")
    if not os.path.isdir(base):
        base = run.dir
    return os.path.join(base, "kemari-%s.%s" % (os.path.basename(run.dir),
                                                 name))


def memory_backend(path, share=True):
    """QEMU arguments: the guest RAM (-m 256) on the file @path."""
    return ["-object", "memory-backend-file,id=ram0,size=%d,mem-path=%s,"
                       "share=%s" % (RAM_SIZE, path, "on" if share else "off"),
            "-machine", "memory-backend=ram0"]


class CprQemu(harness.Qemu):
    """A QEMU started for cpr-transfer: it reads the CPR channel before
    it opens its monitor, so QMP is connected only after the source has
    started the migration (connect())."""

    def _connect(self):
        pass

    def connect(self):
        harness.Qemu._connect(self)


def cpr_transfer(run, src, name, tap, extra):
    """Start @name in @run, incoming in cpr-transfer mode, and migrate
    @src to it: the RAM blocks' file descriptors go over a UNIX socket
    (the CPR channel), the device state over the main channel."""
    path = os.path.join(run.dir, "cpr.sock")
    cpr = {"channel-type": "cpr",
           "addr": {"transport": "socket", "type": "unix", "path": path}}
    main = {"channel-type": "main",
            "addr": {"transport": "socket", "type": "inet",
                     "host": "127.0.0.1", "port": str(MIGRATION_PORT)}}
    dst = CprQemu(name, run.dir, tap, run.image, incoming=INCOMING,
                  extra=list(extra) + ["-incoming", json.dumps(cpr)])
    run.vms.append(dst)
    deadline = time.time() + 30
    while not os.path.exists(path):
        if dst.proc.poll() is not None or time.time() > deadline:
            raise Failure("%s does not listen on its CPR channel: %s"
                          % (name, dst.tail()))
        time.sleep(0.05)
    src.cmd("migrate-set-parameters", mode="cpr-transfer")
    src.cmd("migrate", channels=[main, cpr])
    dst.connect()
    return dst


def ignore_shared(*vms):
    for vm in vms:
        vm.cmd("migrate-set-capabilities",
               capabilities=[{"capability": "x-ignore-shared",
                              "state": True}])


def remove(path):
    try:
        os.unlink(path)
    except FileNotFoundError:
        pass


def gone(vm, e):
    """The Failure for a QEMU whose QMP connection broke (@e)."""
    vm.proc.poll()
    return Failure("%s is gone (%s, exit status %s): %s"
                   % (vm.name, e, vm.proc.returncode, vm.tail()[-500:]))


def expect_running(vm):
    status = vm.status()
    if status != "running":
        raise Failure("%s is %s, not running" % (vm.name, status))


def expect_paused(vm):
    """A source whose migration completed must stay stopped."""
    status = vm.status()
    if status != "postmigrate":
        raise Failure("%s is %s after the migration, not postmigrate"
                      % (vm.name, status))


def expect_small(what, nbytes):
    if nbytes >= SMALL:
        raise Failure("%s: %d bytes (%.1f MiB), not under %d KiB: the "
                      "guest RAM travelled" % (what, nbytes, nbytes / 2**20,
                                               SMALL >> 10))


def scenario_live_update(progress=False, share=True, same_file=True,
                         timeout=120, cpr=False):
    """Local live update: same host, same memory file, x-ignore-shared
    (or, with @cpr, cpr-transfer mode); only device state travels."""
    run = harness.Run("live-update-cpr" if cpr else "live-update")
    mem = memory_file(run)
    dst_mem = mem if same_file else memory_file(run, "other")
    # cpr-transfer: the RAM blocks not on the backend (ROMs) on memfds
    aux = ["-machine", "aux-ram-share=on"] if cpr else []
    ok = False
    try:
        src = run.qemu("source", "tap0",
                       extra=memory_backend(mem, share) + aux)
        harness.boot_and_load(run, src, RECORDS, progress)
        if progress:
            log("%d writes acknowledged; live update to a new QEMU on %s"
                % (run.checker.log.count, mem))
        if cpr:
            dst = cpr_transfer(run, src, "destination", "tap1",
                               memory_backend(dst_mem, share) + aux)
        else:
            dst = run.qemu("destination", "tap1", incoming=INCOMING,
                           extra=memory_backend(dst_mem, share))
            ignore_shared(src, dst)
            src.cmd("migrate", uri=INCOMING)
        info = src.wait_migration(("completed",))
        try:
            dst.wait_migration(("completed",), timeout=30)
            expect_running(dst)
        except OSError as e:
            raise gone(dst, e)
        expect_paused(src)
        sent = info.get("ram", {}).get("transferred", 0)
        log("live update%s: %d ms total, %d ms downtime, %d KiB sent "
            "(guest RAM %d MiB)" % (" (cpr-transfer)" if cpr else "",
                                    info.get("total-time", 0),
                                    info.get("downtime", 0), sent >> 10,
                                    RAM_SIZE >> 20))
        harness.workload_goes_on(run, dst, "live update", RECORDS, timeout)
        expect_small("bytes sent by the live update", sent)
        src.quit()
        ok = harness.verdict(run)
        return ok
    finally:
        run.cleanup(keep=KEEP_FAILED and not ok)
        remove(mem)
        remove(dst_mem)


def scenario_save_restore(progress=False, share=True):
    """Fast save/restore: x-ignore-shared save to a file, quit, restore
    in a new QEMU on the same memory file."""
    run = harness.Run("save-restore")
    mem = memory_file(run)
    state = os.path.join(run.dir, "state")
    ok = False
    try:
        src = run.qemu("source", "tap0", extra=memory_backend(mem, share))
        harness.boot_and_load(run, src, RECORDS, progress)
        ignore_shared(src)
        src.cmd("migrate", uri="file:" + state)
        info = src.wait_migration(("completed",))
        expect_paused(src)
        saved = run.checker.log.count
        src.quit()
        size = os.path.getsize(state)
        log("saved with %d writes acknowledged: %d ms, state file %d KiB "
            "(guest RAM %d MiB)" % (saved, info.get("total-time", 0),
                                    size >> 10, RAM_SIZE >> 20))
        dst = run.qemu("restored", "tap1", incoming="defer",
                       extra=memory_backend(mem, share))
        ignore_shared(dst)
        dst.cmd("migrate-incoming", uri="file:" + state)
        try:
            dst.wait_migration(("completed",), timeout=60)
            expect_running(dst)
        except OSError as e:
            raise gone(dst, e)
        log("restored; the workload goes on")
        harness.workload_goes_on(run, dst, "restore", RECORDS)
        expect_small("state file", size)
        expect_small("bytes sent by the save",
                     info.get("ram", {}).get("transferred", 0))
        ok = harness.verdict(run)
        return ok
    finally:
        run.cleanup(keep=KEEP_FAILED and not ok)
        remove(mem)


def scenario_controls():
    """The two scenarios must fail when the RAM is not shared: with
    share=off the RAM travels; with another memory file on the
    destination the guest does not run on."""
    controls = [
        ("live update, share=off",
         lambda: scenario_live_update(share=False)),
        ("save/restore, share=off",
         lambda: scenario_save_restore(share=False)),
        ("live update, another memory file",
         lambda: scenario_live_update(same_file=False, timeout=20)),
        ("cpr-transfer, share=off",
         lambda: scenario_live_update(share=False, cpr=True)),
    ]
    global KEEP_FAILED
    KEEP_FAILED = False
    good = True
    for name, control in controls:
        try:
            failed = not control()
            why = "the verifier"
        except Failure as e:
            failed, why = True, str(e)
        log("control: %-34s %s (%s)" % (name, "fails, ok" if failed
                                         else "PASSES: WRONG", why[:150]))
        good &= failed
    return good


SCENARIOS = {
    "live-update": scenario_live_update,
    "save-restore": scenario_save_restore,
    "live-update-cpr": lambda: scenario_live_update(cpr=True),
    "seeds-controls": scenario_controls,
}
