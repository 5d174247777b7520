#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""Real-guest harness for the Kemari series.

Boots the e2e guest (guest/build-guest.sh) with the QEMU we built, on a
bridge inside a network namespace that this harness makes itself, runs
the disk+TCP workload against a host-side checker, and verifies the
outcome with verify.py.

  harness.py selftest      prove the verifier fails on lost writes, gaps
  harness.py migrate       precopy live migration mid-workload
  harness.py ft-failover   FT, kill -9 of the primary, the guest answers
  harness.py ft-noloss     FT event mode, kill -9 of the primary at a
                           random moment, 3 times: 0 acknowledged writes
                           lost, 0 TCP gaps (virtio-net + virtio-blk)
  harness.py ft-noloss-e1000  the same once with e1000 + ide-hd
  harness.py ft-noloss-slow   20 times each way (slow suite)
  harness.py demo          the main job, with progress
  harness.py live-update   guest RAM on a shared memory file, migrated
                           with x-ignore-shared to a new QEMU on the
                           same host: only device state travels (shared_ram.py)
  harness.py save-restore  the same RAM, saved with x-ignore-shared to a
                           file, restored in a new QEMU (shared_ram.py)
  harness.py live-update-cpr  the live update in cpr-transfer mode
  harness.py seeds-controls  both fail if the RAM is not shared
  harness.py postcopy      postcopy live migration mid-workload: passes
                           through postcopy-active (postcopy_templates.py)
  harness.py templates     VM template (tools/vm-template.py) and 3
                           clones: each runs, RAM and disk independent,
                           template files unchanged, a control fails
                           (postcopy_templates.py)
  harness.py vmstate-cycle  200 x-vmstate-cycle iterations (save, reset,
                           load the devices) under the workload, then
                           the verifier (vmstate_cycle.py)
  harness.py libvirt-ft    FT driven through a real libvirtd: the primary
                           a libvirt domain, kill -9 of its QEMU, the
                           secondary takes over, the verifier
                           (libvirt_ft.py)
  harness.py libvirt-ft-destroy  the same with `virsh destroy` (SIGTERM):
                           with ft-host-signal 'failover' the secondary
                           takes over (handover), with the default 'end'
                           it does not (libvirt_ft.py)

Environment: KEMARI_QEMU (binary), KEMARI_GUEST (dir with vmlinuz and
initrd.img), KEMARI_E2E_DIR (scratch dir), KEMARI_ACCEL (default tcg:
the nested kvm_pvm here cannot boot a Debian kernel).
"""

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
TOP = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, HERE)
import verify  # noqa: E402

BRIDGE_IP = "10.0.2.1"
GUEST_IP = "10.0.2.15"
CHECKER_PORT = 5555
MIGRATION_PORT = 4444
INCOMING = "tcp:127.0.0.1:%d" % MIGRATION_PORT
DISK_SIZE = 256 << 20
GUEST_MAC = "52:54:00:12:34:56"


def log(msg):
    print("[%s] %s" % (time.strftime("%H:%M:%S"), msg), flush=True)


class Failure(Exception):
    pass


# --------------------------------------------------------------------------
# Network namespace

def in_private_netns():
    return os.environ.get("KEMARI_IN_NETNS") == "1"


def reexec_in_netns():
    """Run this script again in new network (and, if needed, user) namespace."""
    cmd = ["unshare", "--net"]
    if os.geteuid() != 0:
        cmd += ["--user", "--map-root-user"]
    env = dict(os.environ, KEMARI_IN_NETNS="1")
    return subprocess.call(cmd + [sys.executable] + sys.argv, env=env)


def sh(*args):
    subprocess.run(args, check=True)


def setup_bridge(ntaps):
    # A scenario may follow another in the same namespace (the demo).
    for dev in ["br0"] + ["tap%d" % i for i in range(ntaps)]:
        subprocess.run(["ip", "link", "del", dev], stderr=subprocess.DEVNULL)
    sh("ip", "link", "set", "lo", "up")
    sh("ip", "link", "add", "br0", "type", "bridge")
    sh("ip", "addr", "add", BRIDGE_IP + "/24", "dev", "br0")
    sh("ip", "link", "set", "br0", "up")
    for i in range(ntaps):
        tap = "tap%d" % i
        sh("ip", "tuntap", "add", tap, "mode", "tap")
        sh("ip", "link", "set", tap, "master", "br0", "up")


# --------------------------------------------------------------------------
# The host-side checker

class Checker(threading.Thread):
    """Accepts the guest's one connection and checks the stream it sends."""

    def __init__(self):
        super().__init__(daemon=True)
        self.log = verify.StreamLog()
        self.times = []          # arrival time of record k at index k
        self.srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self.srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self.srv.bind((BRIDGE_IP, CHECKER_PORT))
        self.srv.listen(4)
        self.conn = None
        self.connections = 0
        self.stopping = False
        self.cond = threading.Condition()

    def run(self):
        try:
            conn, _ = self.srv.accept()
        except OSError:
            return          # stopped before the guest connected
        self.conn = conn
        self.connections = 1
        threading.Thread(target=self._refuse_more, daemon=True).start()
        buf = b""
        while True:
            try:
                data = conn.recv(65536)
            except OSError as e:
                if not self.stopping:
                    self.log.reset = str(e)
                break
            if not data:
                if not self.stopping:
                    self.log.reset = "connection closed by the guest"
                break
            buf += data
            *lines, buf = buf.split(b"\n")
            now = time.time()
            with self.cond:
                for line in lines:
                    if not self.log.feed_line(line.decode(errors="replace")):
                        break
                    self.times.append(now)
                self.cond.notify_all()

    def _refuse_more(self):
        while not self.stopping:
            try:
                c, _ = self.srv.accept()
            except OSError:
                return
            self.connections += 1
            self.log.errors.append("the guest opened a second connection")
            c.close()

    def wait_for(self, count, timeout):
        deadline = time.time() + timeout
        with self.cond:
            while self.log.count < count and not self.log.reset:
                left = deadline - time.time()
                if left <= 0:
                    break
                self.cond.wait(min(left, 1))
        return self.log.count >= count

    def stop(self):
        self.stopping = True
        for s in (self.conn, self.srv):
            if s:
                try:
                    s.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                s.close()


# --------------------------------------------------------------------------
# QEMU

# Guest device models: QEMU devices and what the guest loads for them
MODELS = {
    "virtio": {
        "nic": "virtio-net-pci", "disk": "virtio-blk-pci",
        "cmdline": "",
    },
    "e1000": {
        "nic": "e1000,romfile=", "disk": "ide-hd,bus=ide.0",
        "cmdline": "kemari.nic=e1000 kemari.blk=ata_piix,sd_mod "
                   "kemari.disk=/dev/sda",
    },
}


class Qemu:
    def __init__(self, name, workdir, tap, image, incoming=None, extra=(),
                 cmdline="", models="virtio"):
        self.name = name
        self.qmp_path = os.path.join(workdir, name + ".qmp")
        self.serial = os.path.join(workdir, name + ".serial")
        self.events = []
        guest = guest_dir()
        accel = os.environ.get("KEMARI_ACCEL", "tcg")
        args = [qemu_binary(), "-name", name, "-accel", accel,
                "-machine", "pc", "-m", "256", "-smp", "1",
                "-nodefaults", "-display", "none", "-no-reboot",
                "-kernel", os.path.join(guest, "vmlinuz"),
                "-initrd", os.path.join(guest, "initrd.img"),
                "-append", "console=ttyS0 panic=-1 quiet "
                           "kemari.server=%s:%d %s %s"
                           % (BRIDGE_IP, CHECKER_PORT,
                              MODELS[models]["cmdline"], cmdline),
                "-serial", "file:" + self.serial,
                "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path,
                "-drive", "file=%s,format=raw,if=none,id=disk0" % image,
                "-device", MODELS[models]["disk"] + ",drive=disk0",
                "-netdev", "tap,id=net0,ifname=%s,script=no,downscript=no" % tap,
                "-device", "%s,netdev=net0,mac=%s" % (MODELS[models]["nic"],
                                                      GUEST_MAC)]
        if incoming:
            args += ["-incoming", incoming]
        args += list(extra)
        self.stderr = open(os.path.join(workdir, name + ".stderr"), "w")
        self.proc = subprocess.Popen(args, stdout=self.stderr,
                                     stderr=subprocess.STDOUT)
        self._connect()

    def _connect(self):
        deadline = time.time() + 30
        while True:
            try:
                self.sock = socket.socket(socket.AF_UNIX)
                self.sock.connect(self.qmp_path)
                break
            except OSError:
                self.sock.close()
                if self.proc.poll() is not None or time.time() > deadline:
                    raise Failure("%s did not start: %s" % (self.name, self.tail()))
                time.sleep(0.05)
        self.rfile = self.sock.makefile("r")
        try:
            self._read()            # greeting
            self.cmd("qmp_capabilities")
        except OSError as e:
            raise Failure("%s: QMP failed (%s): %s" % (self.name, e, self.tail()))

    def _read(self):
        line = self.rfile.readline()
        if not line:
            raise Failure("%s: QMP connection closed: %s" % (self.name, self.tail()))
        return json.loads(line)

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        try:
            self.sock.sendall(json.dumps(msg).encode() + b"\n")
        except OSError as e:
            raise Failure("%s: %s: QMP connection lost (%s): %s"
                          % (self.name, name, e, self.tail()))
        while True:
            resp = self._read()
            if "event" in resp:
                self.events.append(resp)
                continue
            if "error" in resp:
                raise Failure("%s: %s failed: %s" % (self.name, name,
                                                      resp["error"]["desc"]))
            if "return" not in resp:
                raise Failure("%s: %s: unexpected QMP message %r"
                              % (self.name, name, resp))
            return resp["return"]

    def status(self):
        return self.cmd("query-status")["status"]

    def migration(self):
        return self.cmd("query-migrate")

    def wait_migration(self, states, timeout=300):
        deadline = time.time() + timeout
        while time.time() < deadline:
            info = self.migration()
            if info.get("status") in states:
                return info
            if info.get("status") == "failed":
                raise Failure("%s: migration failed: %s"
                              % (self.name, info.get("error-desc")))
            time.sleep(0.2)
        raise Failure("%s: migration not in %s after %ds"
                      % (self.name, states, timeout))

    def serial_text(self):
        try:
            with open(self.serial, errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def wait_serial(self, text, timeout):
        deadline = time.time() + timeout
        while time.time() < deadline:
            if text in self.serial_text():
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.2)
        raise Failure("%s: %r not on the serial console: %s"
                      % (self.name, text, self.serial_text()[-2000:]))

    def tail(self):
        self.stderr.flush()
        try:
            with open(self.stderr.name) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def kill(self, sig=signal.SIGKILL):
        if self.proc.poll() is None:
            self.proc.send_signal(sig)
        self.proc.wait(30)

    def quit(self):
        if self.proc.poll() is None:
            try:
                self.cmd("quit")
            except (Failure, OSError):
                pass
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()


def qemu_binary():
    return os.environ.get("KEMARI_QEMU",
                          os.path.join(TOP, "build/qemu/build/qemu-system-x86_64"))


def guest_dir():
    return os.environ.get("KEMARI_GUEST", os.path.join(TOP, "build/e2e/guest"))


# --------------------------------------------------------------------------
# Scenarios

class Run:
    """One scenario's scratch directory, checker, image and QEMUs."""

    def __init__(self, name, ntaps=2, disk_size=DISK_SIZE):
        base = os.environ.get("KEMARI_E2E_DIR", os.path.join(TOP, "build/e2e/runs"))
        os.makedirs(base, exist_ok=True)
        self.dir = tempfile.mkdtemp(prefix=name + ".", dir=base)
        self.image = os.path.join(self.dir, "disk.raw")
        with open(self.image, "wb") as f:
            f.truncate(disk_size)
        setup_bridge(ntaps)
        self.checker = Checker()
        self.checker.start()
        self.vms = []

    def qemu(self, name, tap, **kw):
        vm = Qemu(name, self.dir, tap, self.image, **kw)
        self.vms.append(vm)
        return vm

    def finish(self):
        """Stop everything, verify, and return the verifier's verdict."""
        self.checker.stop()
        for vm in self.vms:
            vm.quit()
        problems, summary = verify.verify(self.image, self.checker.log)
        return problems, summary

    def cleanup(self, keep):
        """Stop the checker and kill what still runs; @keep the scratch
        directory (of a failed run)."""
        self.checker.stop()
        for vm in self.vms:
            if vm.proc.poll() is None:
                vm.kill()
        if not keep:
            shutil.rmtree(self.dir, ignore_errors=True)


def boot_and_load(run, vm, records, progress):
    vm.wait_serial("workload: started", 180)
    if progress:
        log("guest booted on %s; workload running" % vm.name)
    if not run.checker.wait_for(records, 120):
        raise Failure("only %d records acknowledged, wanted %d: %s"
                      % (run.checker.log.count, records, vm.serial_text()[-1000:]))


def start_pair(run, first, second, records, progress, models="virtio"):
    """Boot the guest in @first under load; start @second, incoming."""
    a = run.qemu(first, "tap0", models=models)
    boot_and_load(run, a, records, progress)
    b = run.qemu(second, "tap1", incoming=INCOMING, models=models)
    return a, b


def workload_goes_on(run, vm, what, records=100, timeout=120):
    """The guest must go on writing, and reporting, from @vm after
    @what: @records more acknowledged within @timeout seconds."""
    want = run.checker.log.count + records
    if not run.checker.wait_for(want, timeout):
        raise Failure("the workload stalled after the %s (%d records): %s"
                      % (what, run.checker.log.count,
                         vm.serial_text()[-1000:]))


def verdict(run):
    """Stop everything and run the verifier; True if it found nothing."""
    problems, summary = run.finish()
    log("verifier: " + summary)
    for p in problems:
        log("verifier: " + p)
    return not problems


def scenario_migrate(progress=False):
    """Precopy live migration of the guest under the disk+TCP workload."""
    run = Run("migrate")
    ok = False
    try:
        src, dst = start_pair(run, "source", "destination", 100, progress)
        before = run.checker.log.count
        if progress:
            log("%d writes acknowledged; migrating to the destination" % before)
        src.cmd("migrate", uri=INCOMING)
        info = src.wait_migration(("completed",))
        if progress:
            log("migration completed: %d ms total, %d ms downtime, %d MB sent"
                % (info.get("total-time", 0), info.get("downtime", 0),
                   info.get("ram", {}).get("transferred", 0) >> 20))
        dst.wait_migration(("completed",), timeout=30)
        status = dst.status()
        if status != "running":
            raise Failure("destination is %s, not running" % status)
        workload_goes_on(run, dst, "migration")
        src.quit()
        ok = verdict(run)
        return ok
    finally:
        run.cleanup(keep=not ok)


def ping(count=3):
    return subprocess.run(["ping", "-c", str(count), "-W", "1", "-i", "0.2",
                           GUEST_IP], stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0


def ft_protect(primary, secondary, mode=None, interval_ms=None, hmp=False):
    """Start Kemari FT from @primary to @secondary, wait until it runs.

    Only what is given is set: with no @mode and no @interval_ms, FT runs
    with the defaults a user gets.  @hmp: the way a user types it,
    'migrate -d -k' (which sets the 'ft' capability); otherwise as
    libvirt does, the capability and 'migrate' over QMP."""
    params = {}
    if mode:
        params["ft-mode"] = mode
    if interval_ms:
        params["ft-interval"] = interval_ms
    if params:
        primary.cmd("migrate-set-parameters", **params)
    if hmp:
        out = primary.cmd("human-monitor-command",
                          **{"command-line": "migrate -d -k " + INCOMING})
        if out:
            raise Failure("migrate -d -k: %s" % out.strip())
    else:
        primary.cmd("migrate-set-capabilities",
                    capabilities=[{"capability": "ft", "state": True}])
        primary.cmd("migrate", uri=INCOMING)
    primary.wait_migration(("ft",), timeout=300)
    secondary.wait_migration(("ft",), timeout=60)


def scenario_ft_failover(progress=False):
    """FT on as a user types it (HMP 'migrate -d -k', no parameter set),
    kill -9 of the primary: the secondary takes over and the guest
    answers on the network."""
    run = Run("ft")
    ok = False
    try:
        primary, secondary = start_pair(run, "primary", "secondary", 50,
                                        progress)
        ft_protect(primary, secondary, hmp=True)
        if progress:
            log("FT established; the guest runs on the primary, protected")
        deadline = time.time() + 60
        while time.time() < deadline:
            ft = secondary.migration().get("ft", {})
            if ft.get("checkpoints", 0) >= 20:
                break
            time.sleep(0.5)
        pinfo = primary.migration().get("ft", {})
        sinfo = secondary.migration().get("ft", {})
        log("primary: %s" % pinfo)
        log("secondary: %s" % sinfo)
        if sinfo.get("checkpoints", 0) < 20:
            raise Failure("fewer than 20 checkpoints committed: %s" % sinfo)
        if not ping():
            raise Failure("the guest does not answer on the primary")
        if progress:
            log("kill -9 of the primary")
        t0 = time.time()
        primary.kill(signal.SIGKILL)
        deadline = time.time() + 60
        while time.time() < deadline:
            if secondary.status() == "running":
                break
            time.sleep(0.05)
        else:
            raise Failure("secondary did not take over: %s, %s"
                          % (secondary.status(), secondary.tail()))
        took = time.time() - t0
        if not ping(5):
            raise Failure("the guest does not answer after takeover")
        log("secondary took over in %.0f ms; the guest answers ping"
            % (took * 1000))
        exits = [e for e in secondary.events if e["event"] == "FT_EXIT"]
        if not exits or not exits[0]["data"]["takeover"]:
            raise Failure("no FT_EXIT with takeover on the secondary: %s"
                          % exits)
        ok = True
        return ok
    finally:
        run.cleanup(keep=not ok)


def wait_takeover(secondary, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if secondary.status() == "running":
            return
        time.sleep(0.05)
    raise Failure("secondary did not take over: %s, %s"
                  % (secondary.status(), secondary.tail()))


def ft_noloss_once(rep, models, progress, mode=None):
    """One run: FT in @mode (None: the defaults) under the workload,
    kill -9 of the primary at a random moment, the workload goes on on
    the secondary, then the verifier."""
    run = Run("ft-noloss")
    ok = False
    try:
        primary, secondary = start_pair(run, "primary", "secondary", 30,
                                        progress, models)
        ft_protect(primary, secondary, mode=mode)
        if mode == "hybrid":
            primary.cmd("migrate-set-parameters", **{"ft-window": 20})
        mode = primary.cmd("query-migrate-parameters")["ft-mode"]
        if progress:
            log("FT established in %s mode: every disk write and frame "
                "is held until its checkpoint is committed" % mode)
        taps = [n["node-name"] for n in primary.cmd("query-named-block-nodes",
                                                    flat=True)
                if n["drv"] == "ft-tap"]
        if taps != ["ft-tap-disk0"]:
            raise Failure("block taps on the primary: %s" % taps)
        # Protected output: the workload must make progress under FT.
        if not run.checker.wait_for(run.checker.log.count + 20, 120):
            raise Failure("the workload stalled under FT (%d records)"
                          % run.checker.log.count)
        time.sleep(random.uniform(0, 2))
        before = run.checker.log.count
        if progress:
            log("%d writes acknowledged; kill -9 of the primary" % before)
        primary.kill(signal.SIGKILL)
        wait_takeover(secondary)
        sinfo = secondary.migration().get("ft", {})
        if not run.checker.wait_for(run.checker.log.count + 20, 120):
            raise Failure("the workload stalled after takeover (%d records): %s"
                          % (run.checker.log.count,
                             secondary.serial_text()[-1000:]))
        problems, summary = run.finish()
        log("run %d (%s, %s): %d records acknowledged at the kill, %d held "
            "outputs replayed; verifier: %s"
            % (rep, models, mode, before, sinfo.get("replayed", 0), summary))
        for p in problems:
            log("verifier: " + p)
        ok = not problems
        return ok
    finally:
        run.cleanup(keep=not ok)


def scenario_ft_noloss(reps=3, models="virtio", progress=False,
                       modes=(None,)):
    """Output commit: whatever the guest acknowledged before the
    primary died is on disk and on the TCP stream, with no gap.

    In event mode a write's checkpoint is usually under way before the
    guest reports it, so the report rarely travels in the same epoch as
    its write; in periodic and hybrid mode many writes and reports share
    an epoch, which is where a report that left before its checkpoint
    was committed would show (the record rewritten after the takeover
    differs from the one reported).  So every mode after the first gets
    a run of its own."""
    good = 0
    runs = [(modes[0], rep) for rep in range(1, reps + 1)]
    runs += [(mode, 1) for mode in modes[1:]]
    for mode, rep in runs:
        if ft_noloss_once(rep, models, progress, mode):
            good += 1
    log("ft-noloss (%s): %d of %d runs without loss"
        % (models, good, len(runs)))
    return good == len(runs)


def scenario_ft_ide_start(cycles=20, progress=False):
    """FT started again and again on a guest writing to an ide-hd (the
    e1000 + ide-hd models): each time a new secondary, FT with the
    defaults until a few checkpoints are committed under the workload,
    then migrate_cancel.  A save that left the IDE controller's DMA
    retry state behind aborted the primary at such a start; here it
    must live through every cycle, and the verifier passes at the end."""
    run = Run("ft-ide-start")
    ok = False
    try:
        primary = run.qemu("primary", "tap0", models="e1000")
        boot_and_load(run, primary, 30, progress)
        for cycle in range(1, cycles + 1):
            secondary = run.qemu("secondary%d" % cycle, "tap1",
                                 incoming=INCOMING, models="e1000")
            ft_protect(primary, secondary)
            deadline = time.time() + 60
            while primary.migration().get("ft", {}).get("checkpoints",
                                                         0) < 5:
                if time.time() > deadline:
                    raise Failure("cycle %d: fewer than 5 checkpoints: %s"
                                  % (cycle, primary.migration()))
                time.sleep(0.1)
            time.sleep(random.uniform(0, 1))
            primary.cmd("migrate_cancel")
            primary.wait_migration(("cancelled",), timeout=30)
            if primary.status() != "running":
                raise Failure("cycle %d: the primary is %s after FT"
                              % (cycle, primary.status()))
            secondary.kill()
            secondary.proc.wait()
            log("cycle %d: FT started, %d checkpoints, cancelled; the "
                "primary runs" % (cycle, primary.migration().get(
                    "ft", {}).get("checkpoints", 0)))
        workload_goes_on(run, primary, "the last FT cycle", records=20)
        ok = verdict(run)
        return ok
    finally:
        run.cleanup(keep=not ok)


def scenario_selftest(progress=False):
    """The verifier must fail on each kind of loss it is meant to catch."""
    tmp = tempfile.mkdtemp()
    try:
        image = os.path.join(tmp, "disk.raw")

        def make(n, lost=None, corrupt=None, hole_after=None):
            log_ = verify.StreamLog()
            with open(image, "wb") as f:
                f.truncate(1 << 20)
                for k in range(n):
                    rec, crc = verify.make_record(k)
                    log_.feed_line("%d %08x" % (k, crc))
                    if k == lost:
                        continue
                    if k == corrupt:
                        rec = rec[:100] + b"X" + rec[101:]
                    f.seek(k * verify.RECORD_SIZE)
                    f.write(rec)
                if hole_after is not None:
                    rec, _ = verify.make_record(n + 2)
                    f.seek((n + 2) * verify.RECORD_SIZE)
                    f.write(rec)
            return log_

        def with_line(line, reset=None):
            log_ = make(50)
            if line:
                log_.feed_line(line)
            log_.reset = reset
            return log_

        def empty():
            open(image, "wb").close()
            return verify.StreamLog()

        # Each builder writes the image and returns the checker's log.
        cases = [
            ("good run", lambda: make(50), True),
            ("lost acknowledged write", lambda: make(50, lost=17), False),
            ("corrupt acknowledged write", lambda: make(50, corrupt=3), False),
            ("record after a hole", lambda: make(50, hole_after=True), False),
            ("gap in the TCP stream", lambda: with_line("52 00000000"), False),
            ("duplicate in the TCP stream",
             lambda: with_line("10 00000000"), False),
            ("TCP reset", lambda: with_line(None, "connection reset"), False),
            ("nothing acknowledged", empty, False),
        ]
        good = True
        for name, build, expect in cases:
            problems, _ = verify.verify(image, build())
            passed = (not problems) == expect
            log("selftest: %-30s %s (%s)" % (name, "ok" if passed else "WRONG",
                                             problems[0] if problems else "clean"))
            good &= passed
        return good
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def scenario_demo():
    """The main job: live migration with the verifier, then Kemari FT
    with kill -9 of the primary and the guest going on, on the
    secondary."""
    log("=== 1/2: live migration of the guest under disk+TCP load")
    ok = scenario_migrate(progress=True)
    log("=== 2/2: Kemari FT with the defaults (event mode): primary + "
        "secondary under the same load, kill -9 of the primary, the "
        "verifier")
    ok = scenario_ft_noloss(reps=1, progress=True) and ok
    return ok


def lazy(module, name):
    """Scenario @name of tests/e2e/@module.py, imported when it runs."""
    def scenario():
        # The module imports harness: give it this one, not a second copy.
        sys.modules.setdefault("harness", sys.modules[__name__])
        return __import__(module).SCENARIOS[name]()
    return scenario


SCENARIOS = {
    "selftest": scenario_selftest,
    "migrate": scenario_migrate,
    "ft-failover": scenario_ft_failover,
    "ft-noloss": lambda: scenario_ft_noloss(
        3, modes=(None, "periodic", "hybrid")),
    "ft-noloss-e1000": lambda: scenario_ft_noloss(1, "e1000"),
    "ft-noloss-slow": lambda: (
        scenario_ft_noloss(20, modes=(None, "periodic", "hybrid")) &
        scenario_ft_noloss(20, "e1000", modes=(None, "periodic"))),
    "ft-ide-start": lambda: scenario_ft_ide_start(),
    "demo": lambda: scenario_demo(),
    "live-update": lazy("shared_ram", "live-update"),
    "save-restore": lazy("shared_ram", "save-restore"),
    "live-update-cpr": lazy("shared_ram", "live-update-cpr"),
    "seeds-controls": lazy("shared_ram", "seeds-controls"),
    "postcopy": lazy("postcopy_templates", "postcopy"),
    "templates": lazy("postcopy_templates", "templates"),
    "vmstate-cycle": lazy("vmstate_cycle", "vmstate-cycle"),
    "libvirt-ft": lazy("libvirt_ft", "libvirt-ft"),
    "libvirt-ft-destroy": lazy("libvirt_ft", "libvirt-ft-destroy"),
}


def main():
    if len(sys.argv) != 2 or sys.argv[1] not in SCENARIOS:
        print("usage: harness.py {%s}" % "|".join(SCENARIOS), file=sys.stderr)
        return 2
    name = sys.argv[1]
    if name != "selftest" and not in_private_netns():
        return reexec_in_netns()
    try:
        ok = SCENARIOS[name]()
    except Failure as e:
        log("FAIL: %s" % e)
        ok = False
    log("%s: %s" % (name, "PASS" if ok else "FAIL"))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
