# SPDX-License-Identifier: GPL-2.0-or-later
"""Seed 002 (VMState continuous testing) with the real guest.

  vmstate-cycle  the guest under the disk+TCP workload goes through 200
                 iterations of x-vmstate-cycle (stop, save every
                 device's state, reset the devices, load the state,
                 run), 10 at a time with the guest running 20 ms between
                 iterations and a pause between calls in which the
                 workload must make progress; then 5 from HMP.  The
                 guest must stay running, the workload go on, and the
                 verifier pass: a device whose state did not survive
                 (the NIC, the disk, the CPU) stalls the workload or
                 loses a write.

Run by harness.py (harness.py vmstate-cycle).
"""

import time

import harness
from harness import Failure, log

ITERATIONS = 200
PER_CALL = 10
INTERVAL_MS = 20


def scenario_vmstate_cycle(progress=False):
    run = harness.Run("vmstate-cycle", ntaps=1)
    ok = False
    try:
        vm = run.qemu("guest", "tap0")
        harness.boot_and_load(run, vm, 30, progress)
        done = 0
        size = 0
        t0 = time.time()
        while done < ITERATIONS:
            before = run.checker.log.count
            size = vm.cmd("x-vmstate-cycle", count=PER_CALL,
                          interval=INTERVAL_MS)["bytes"]
            done += PER_CALL
            if vm.status() != "running":
                raise Failure("the VM is %s after %d iterations"
                              % (vm.status(), done))
            # The workload must go on between the calls, not only end
            if not run.checker.wait_for(before + 5, 60):
                raise Failure("the workload stalled after %d iterations "
                              "(%d records): %s"
                              % (done, run.checker.log.count,
                                 vm.serial_text()[-1000:]))
        took = time.time() - t0
        out = vm.cmd("human-monitor-command",
                     **{"command-line": "x_vmstate_cycle 5 20"})
        if "5 iterations" not in out:
            raise Failure("HMP x_vmstate_cycle: %r" % out)
        harness.workload_goes_on(run, vm, "cycles", 50)
        log("%d iterations (+5 from HMP) in %.1f s, %d bytes of device "
            "state each; %d records acknowledged"
            % (done, took, size, run.checker.log.count))
        ok = harness.verdict(run)
        return ok
    finally:
        run.cleanup(keep=not ok)


SCENARIOS = {
    "vmstate-cycle": scenario_vmstate_cycle,
}
