# SPDX-License-Identifier: GPL-2.0-or-later
"""Seeds 001 (postcopy) and 004 c (VM templates) with the real guest.

  postcopy   the guest under the disk+TCP workload is migrated with the
             postcopy-ram capability (both sides): 'migrate', then
             'migrate-start-postcopy' during the first precopy pass
             (after 16 MiB); the migration must pass through postcopy-active on
             both sides and send pages in the postcopy phase, complete,
             and the workload must go on from the destination (+100
             records), with the verifier passing
  templates  tools/vm-template.py: the guest (idle mode) is booted,
             paused and saved as a template (memory file, device state
             file, base disk; read-only); 3 clones are started from it
             (private copy-on-write RAM over the memory file, device
             state from the state file with x-ignore-shared, a qcow2
             overlay each, a tap each); every clone must run and answer
             ping, a write to each clone's RAM and disk must be seen by
             that clone only, and the template files must be
             byte-identical after the clones ran.  A control (two clones
             that share their RAM and their overlay) must fail the same
             checks.

Run by harness.py (harness.py postcopy, harness.py templates).
"""

import importlib.util
import os
import shutil
import subprocess
import tempfile
import time

import harness
from harness import INCOMING, Failure, log

RECORDS = 100
CLONES = 3


# --------------------------------------------------------------------------
# Postcopy

def caps(vm, **states):
    vm.cmd("migrate-set-capabilities",
           capabilities=[{"capability": k.replace("_", "-"), "state": v}
                         for k, v in states.items()])


def postcopy_caps(vm):
    try:
        caps(vm, postcopy_ram=True, events=True)
    except Failure as e:
        raise Failure("%s (postcopy needs userfaultfd: root, or "
                      "vm.unprivileged_userfaultfd=1)" % e)


def migrate_postcopy(src, dst, switch_after=16 << 20, timeout=300):
    """Migrate @src to @dst with postcopy; return (info, states seen).

    'migrate-start-postcopy' is sent once @switch_after bytes of RAM
    were sent in precopy, during the first pass over RAM (a guest that
    dirties little memory would otherwise converge in precopy first);
    with @switch_after None, once the first pass is done (dirty-sync-
    count 2); with 0, at once (pure postcopy)."""
    seen = []

    def note(info):
        if info.get("status") and info["status"] not in seen:
            seen.append(info["status"])
        return info

    src.cmd("migrate", uri=INCOMING)
    deadline = time.time() + timeout
    while switch_after != 0:
        info = note(src.migration())
        ram = info.get("ram", {})
        if info.get("status") in ("completed", "failed"):
            raise Failure("migration %s before the postcopy switch: %s"
                          % (info["status"], info.get("error-desc", "")))
        if switch_after is None and ram.get("dirty-sync-count", 0) >= 2:
            break
        if switch_after and ram.get("transferred", 0) >= switch_after:
            break
        if time.time() > deadline:
            raise Failure("no postcopy switch after %ds" % timeout)
        time.sleep(0.02)
    src.cmd("migrate-start-postcopy")
    while True:
        info = note(src.migration())
        if info.get("status") == "completed":
            break
        if info.get("status") == "failed":
            raise Failure("postcopy migration failed: %s"
                          % info.get("error-desc"))
        if time.time() > deadline:
            raise Failure("postcopy migration not done after %ds: %s"
                          % (timeout, info.get("status")))
        time.sleep(0.05)
    dst.wait_migration(("completed",), timeout=60)
    for vm in (src, dst):
        vm.status()         # collects the events that are queued
    return info, seen


def event_states(vm):
    return [e["data"]["status"] for e in vm.events
            if e["event"] == "MIGRATION"]


def scenario_postcopy(progress=False):
    """Postcopy live migration of the guest under the disk+TCP workload."""
    run = harness.Run("postcopy")
    ok = False
    try:
        src, dst = harness.start_pair(run, "source", "destination", RECORDS,
                                      progress)
        postcopy_caps(dst)
        postcopy_caps(src)
        before = run.checker.log.count
        log("%d writes acknowledged; migrating with postcopy" % before)
        info, seen = migrate_postcopy(src, dst)
        ram = info.get("ram", {})
        log("migration completed: %d ms total, %d ms downtime, %d KiB sent "
            "(precopy %d KiB, downtime %d KiB, postcopy %d KiB), %d page "
            "requests from the destination"
            % (info.get("total-time", 0), info.get("downtime", 0),
               ram.get("transferred", 0) >> 10,
               ram.get("precopy-bytes", 0) >> 10,
               ram.get("downtime-bytes", 0) >> 10,
               ram.get("postcopy-bytes", 0) >> 10,
               ram.get("postcopy-requests", 0)))
        log("source states polled: %s; events: source %s, destination %s"
            % (" ".join(seen), " ".join(event_states(src)),
               " ".join(event_states(dst))))
        for vm in (src, dst):
            if "postcopy-active" not in event_states(vm):
                raise Failure("%s: no MIGRATION event postcopy-active: %s"
                              % (vm.name, event_states(vm)))
        if not ram.get("postcopy-bytes"):
            raise Failure("no page was sent in the postcopy phase: %s" % ram)
        status = dst.status()
        if status != "running":
            raise Failure("destination is %s, not running" % status)
        harness.workload_goes_on(run, dst, "migration", RECORDS)
        src.quit()
        ok = harness.verdict(run)
        return ok
    finally:
        run.cleanup(keep=not ok)


# --------------------------------------------------------------------------
# VM templates

def template_tool():
    """tools/vm-template.py, as a module."""
    path = os.path.join(harness.TOP, "tools", "vm-template.py")
    spec = importlib.util.spec_from_file_location("vm_template", path)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def guest_args(mode="idle"):
    """QEMU arguments of the e2e guest, less RAM, disk backend and netdev."""
    guest = harness.guest_dir()
    return ["-accel", os.environ.get("KEMARI_ACCEL", "tcg"),
            "-machine", "pc", "-smp", "1", "-nodefaults",
            "-display", "none", "-no-reboot",
            "-kernel", os.path.join(guest, "vmlinuz"),
            "-initrd", os.path.join(guest, "initrd.img"),
            "-append", "console=ttyS0 panic=-1 quiet kemari.mode=%s" % mode,
            "-device", "virtio-blk-pci,drive=disk0",
            "-device", "virtio-net-pci,netdev=net0,mac=%s" % harness.GUEST_MAC]


def tap_netdev(tap):
    return "tap,ifname=%s,script=no,downscript=no" % tap


def setup_taps(names):
    """One tap per guest, each with the host address: clones share the
    guest's MAC and IP, so each is reached through its own tap
    (ping -I TAP)."""
    harness.sh("ip", "link", "set", "lo", "up")
    for tap in names:
        subprocess.run(["ip", "link", "del", tap], stderr=subprocess.DEVNULL)
        harness.sh("ip", "tuntap", "add", tap, "mode", "tap")
        harness.sh("ip", "addr", "add", harness.BRIDGE_IP + "/24", "dev", tap)
        harness.sh("ip", "link", "set", tap, "up")


def ping_tap(tap, timeout=30, interval=0.01):
    """Wait until the guest behind @tap answers ping; return success."""
    return subprocess.run(["ping", "-n", "-q", "-c", "1", "-w", str(timeout),
                           "-i", str(interval), "-I", tap, harness.GUEST_IP],
                          stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def scratch(name):
    """A scratch directory for @name, and one on tmpfs for the template."""
    base = os.environ.get("KEMARI_E2E_DIR",
                          os.path.join(harness.TOP, "build/e2e/runs"))
    os.makedirs(base, exist_ok=True)
    work = tempfile.mkdtemp(prefix=name + ".", dir=base)
    shm = os.environ.get("KEMARI_SHM_DIR", "/dev/shm")
    tmpl = tempfile.mkdtemp(prefix="kemari-" + name + ".",
                            dir=shm if os.path.isdir(shm) else work)
    return work, tmpl


def zero_page(path, start):
    """Offset of the first all-zero 4 KiB page of @path at or after @start."""
    zero = bytes(4096)
    with open(path, "rb") as f:
        f.seek(start)
        off = start
        while True:
            buf = f.read(4096)
            if len(buf) < 4096:
                raise Failure("no zero page in %s after %d" % (path, start))
            if buf == zero:
                return off
            off += 4096


def write_guest_ram(vm, gpa, data):
    """Write @data at guest physical address @gpa of the (paused) @vm
    through the QEMU process's own mapping of its RAM (/proc/PID/mem)."""
    out = vm.hmp("gpa2hva 0x%x" % gpa)
    try:
        hva = int(out.split(" is ")[1].split()[0], 16)
    except (IndexError, ValueError):
        raise Failure("%s: gpa2hva: %r" % (vm.name, out))
    with open("/proc/%d/mem" % vm.pid, "r+b", buffering=0) as f:
        f.seek(hva)
        f.write(data)


def read_guest_ram(vm, gpa, size, workdir):
    path = os.path.join(workdir, "%s.pmem" % vm.name)
    vm.cmd("pmemsave", val=gpa, size=size, filename=path)
    with open(path, "rb") as f:
        data = f.read()
    os.unlink(path)
    return data


def ram_independence(vms, gpa, template_page, workdir):
    """Write a marker into each (paused) clone's RAM at the same guest
    address; each clone must read back its own, and no other.  Returns
    the list of problems."""
    problems = []
    for vm in vms:
        vm.cmd("stop")
    markers = [("kemari clone %d %s" % (i, os.urandom(8).hex())).encode()
               .ljust(64, b".") for i in range(len(vms))]
    for vm, marker in zip(vms, markers):
        write_guest_ram(vm, gpa, marker)
    for vm, marker in zip(vms, markers):
        page = read_guest_ram(vm, gpa, 4096, workdir)
        if page[:64] != marker:
            other = [j for j, m in enumerate(markers) if page[:64] == m]
            problems.append("%s: RAM at 0x%x holds %s, not its own marker"
                            % (vm.name, gpa,
                               "the marker of clone %d" % other[0] if other
                               else "something else"))
        elif page[64:] != template_page[64:]:
            problems.append("%s: RAM page 0x%x changed beyond the marker"
                            % (vm.name, gpa))
    return problems


def pattern(i):
    return 0x41 + i


def write_disks(vms):
    """Each clone writes its own pattern to the first 4 KiB of its disk."""
    for i, vm in enumerate(vms):
        # A clone that never ran still has its images inactive (they are
        # activated when the guest starts after an incoming migration).
        vm.cmd("blockdev-set-active", active=True)
        vm.hmp('qemu-io disk0 "write -P 0x%x 0 4096"' % pattern(i))


def disk_independence(vt, vms, fmt, workdir):
    """With the clones stopped: each clone's disk must hold its own
    pattern (read through its backing chain with qemu-img dd).  Returns
    the list of problems."""
    problems = []
    for i, vm in enumerate(vms):
        out = os.path.join(workdir, vm.name + ".head")
        subprocess.run([vt.qemu_img(), "dd", "-f", fmt, "-O", "raw",
                        "bs=4096", "count=1", "if=" + vm.overlay,
                        "of=" + out], check=True)
        with open(out, "rb") as f:
            head = f.read()
        os.unlink(out)
        if head != bytes([pattern(i)]) * 4096:
            problems.append("%s: its disk does not hold its own pattern "
                            "(0x%02x) but 0x%02x..." % (vm.name, pattern(i),
                                                       head[0]))
    return problems


def scenario_templates(progress=False, clones=CLONES):
    """VM template and clones (tools/vm-template.py)."""
    vt = template_tool()
    work, tdir = scratch("templates")
    taps = ["tt0"] + ["tc%d" % i for i in range(clones)]
    setup_taps(taps)
    disk = os.path.join(work, "disk.raw")
    with open(disk, "wb") as f:
        f.truncate(64 << 20)
    vms = []
    ok = False
    try:
        ok = templates_run(vt, work, tdir, disk, vms, clones)
        return ok
    except vt.TemplateError as e:
        raise Failure(str(e))
    finally:
        for vm in vms:
            if vm.proc.poll() is None:
                vm.kill()
        if ok:
            shutil.rmtree(work, ignore_errors=True)
        shutil.rmtree(tdir, ignore_errors=True)


def templates_run(vt, work, tdir, disk, vms, clones):
    """The body of scenario_templates: @vms collects the QEMUs started."""
    tmpl = os.path.join(tdir, "t")
    vt.create(tmpl, guest_args("idle"), disk, ready="workload: started",
              netdev=tap_netdev("tt0"), timeout=180, log=log)
    desc = vt.load(tmpl)
    log("template: boot %.1f s, save %.2f s, device state %d KiB"
        % (desc["boot_seconds"], desc["save_seconds"],
           desc["state_bytes"] >> 10))
    mem = os.path.join(tmpl, "memory")
    gpa = zero_page(mem, 128 << 20)
    with open(mem, "rb") as f:
        f.seek(gpa)
        template_page = f.read(4096)

    # The clones: each must run and answer on its own tap.
    for i in range(clones):
        t0 = time.time()
        vm = vt.start_clone(tmpl, work, "clone%d" % i,
                            netdev=tap_netdev("tc%d" % i))
        vms.append(vm)
        running = time.time() - t0
        if vm.status() != "running":
            raise Failure("%s is %s" % (vm.name, vm.status()))
        if not ping_tap("tc%d" % i):
            raise Failure("%s does not answer ping" % vm.name)
        log("%s: running %.0f ms after its start, answers ping after "
            "%.0f ms" % (vm.name, running * 1000,
                         (time.time() - t0) * 1000))

    # Each clone's RAM and disk are its own.
    problems = ram_independence(vms, gpa, template_page, work)
    write_disks(vms)
    for i, vm in enumerate(vms):
        vm.cmd("cont")
        if not ping_tap("tc%d" % i, timeout=10):
            raise Failure("%s does not answer ping after the check"
                          % vm.name)
        if vm.proc.poll() is not None or vm.status() != "running":
            raise Failure("%s is not running" % vm.name)
    for vm in vms:
        vm.quit()
    problems += disk_independence(vt, vms, "qcow2", work)
    for p in problems:
        log("independence: " + p)
    if problems:
        raise Failure("the clones are not independent")
    log("independence: a marker written to guest RAM 0x%x and a "
        "pattern written to the disk of each clone are seen by that "
        "clone only" % gpa)

    # The control: two clones that share their RAM (share=on over a
    # copy of the memory file) and their disk (one copy of the base,
    # locking off) must fail the same check.
    ctl_mem = os.path.join(tdir, "control-memory")
    shutil.copyfile(mem, ctl_mem)
    ctl_disk = os.path.join(work, "control.disk")
    shutil.copyfile(os.path.join(tmpl, "disk.base"), ctl_disk)
    ctl = []
    for i in range(2):
        ctl.append(vt.start_clone(tmpl, work, "control%d" % i,
                                  netdev=tap_netdev("tc%d" % i), share=True,
                                  mem_path=ctl_mem, overlay=ctl_disk,
                                  overlay_format=desc["disk_format"],
                                  drive_opts=",file.locking=off", run=False))
        vms.append(ctl[-1])
    problems = ram_independence(ctl, gpa, template_page, work)
    write_disks(ctl)
    for vm in ctl:
        vm.kill()
    problems += disk_independence(vt, ctl, desc["disk_format"], work)
    log("control (shared RAM and disk): %d problems found: %s"
        % (len(problems), "; ".join(problems)))
    ram_caught = any("marker of clone" in p for p in problems)
    disk_caught = any("own pattern" in p for p in problems)
    if not (ram_caught and disk_caught):
        raise Failure("the check misses shared RAM or a shared disk")

    changed = vt.verify(tmpl)
    if changed:
        raise Failure("template files changed: %s" % changed)
    log("template files byte-identical after %d clones ran (sha256 of "
        "memory, state, disk.base)" % clones)
    return True


SCENARIOS = {
    "postcopy": scenario_postcopy,
    "templates": scenario_templates,
}
