# SPDX-License-Identifier: GPL-2.0-or-later
"""Kemari FT driven through a real libvirtd (issue 16).

  libvirt-ft  libvirtd (Debian's, started here in a mount namespace of
              its own, no systemd) runs the guest as a domain whose
              <emulator> is our QEMU.  A secondary is started from the
              command line libvirt gave the primary, with -incoming.
              FT is started and watched only through libvirt: `virsh
              qemu-monitor-command` (migrate-set-capabilities ft,
              migrate, query-migrate) and `virsh qemu-monitor-event`.
              kill -9 of the primary's QEMU: the secondary takes over,
              the workload goes on from it and the verifier passes.
              What libvirt reports on the way (domjobinfo, the domain's
              state, its log) is printed, for docs/devel/migration/
              kemari.rst's "With libvirt".

Run by harness.py (harness.py libvirt-ft).
"""

import json
import os
import re
import signal
import subprocess
import time

import harness
from harness import Failure, log

DOMAIN = "kemari-ft"

LIBVIRTD_CONF = """\
unix_sock_dir = "{sock}"
listen_tcp = 0
listen_tls = 0
log_outputs = "3:file:{log}/libvirtd.log"
"""

# QEMU as root without the host integration a test namespace lacks:
# no cgroups, no security driver, no virtlogd, no mount namespace.
QEMU_CONF = """\
user = "root"
group = "root"
dynamic_ownership = 0
remember_owner = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
"""

# What libvirt keeps in these directories goes to the run's own.
LIBVIRT_DIRS = ("/etc/libvirt", "/run/libvirt", "/var/lib/libvirt",
                "/var/cache/libvirt", "/var/log/libvirt")

DOMAIN_XML = """\
<domain type='qemu'>
  <name>{name}</name>
  <memory unit='MiB'>256</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
    <kernel>{kernel}</kernel>
    <initrd>{initrd}</initrd>
    <cmdline>{cmdline}</cmdline>
  </os>
  <features><acpi/></features>
  <on_poweroff>destroy</on_poweroff>
  <on_reboot>destroy</on_reboot>
  <on_crash>destroy</on_crash>
  <devices>
    <emulator>{emulator}</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='raw'/>
      <source file='{image}'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <interface type='ethernet'>
      <mac address='{mac}'/>
      <target dev='tap0' managed='no'/>
      <model type='virtio'/>
      <driver name='qemu'/>
    </interface>
    <serial type='file'>
      <source path='{serial}'/>
      <target port='0'/>
    </serial>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
"""


class Libvirtd:
    """libvirtd in a mount namespace whose libvirt directories are the
    run's own: the host's libvirt, if any, is neither seen nor touched."""

    def __init__(self, rundir):
        self.dir = os.path.join(rundir, "libvirt")
        sock = os.path.join(self.dir, "sock")
        logdir = os.path.join(self.dir, "log")
        binds = []
        for d in LIBVIRT_DIRS:
            src = os.path.join(self.dir, d.strip("/").replace("/", "-"))
            os.makedirs(src)
            binds.append("mkdir -p %s && mount --bind %s %s" % (d, src, d))
        os.makedirs(sock)
        os.makedirs(logdir)
        etc = os.path.join(self.dir, "etc-libvirt")
        with open(os.path.join(etc, "libvirtd.conf"), "w") as f:
            f.write(LIBVIRTD_CONF.format(sock=sock, log=logdir))
        with open(os.path.join(etc, "qemu.conf"), "w") as f:
            f.write(QEMU_CONF)
        self.uri = "qemu+unix:///system?socket=%s/libvirt-sock" % sock
        self.log = open(os.path.join(logdir, "stderr"), "w")
        script = " && ".join(binds + [
            "exec libvirtd -f /etc/libvirt/libvirtd.conf -p %s/libvirtd.pid"
            % self.dir])
        self.proc = subprocess.Popen(
            ["unshare", "--mount", "--propagation", "private",
             "sh", "-c", script], stdout=self.log, stderr=subprocess.STDOUT)
        deadline = time.time() + 30
        while self.virsh("list", "--all", check=False).returncode:
            if self.proc.poll() is not None or time.time() > deadline:
                self.stop()
                raise Failure("libvirtd did not start: %s" % self.tail())
            time.sleep(0.2)
        log("libvirtd %s" % subprocess.run(
            ["libvirtd", "--version"], stdout=subprocess.PIPE,
            text=True).stdout.split()[-1])

    def virsh(self, *args, check=True, timeout=60):
        r = subprocess.run(["virsh", "-q", "-c", self.uri] + list(args),
                           stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                           text=True, timeout=timeout)
        if check and r.returncode:
            raise Failure("virsh %s: %s" % (" ".join(args), r.stderr.strip()))
        return r

    def qmp(self, domain, command, **arguments):
        """@command through libvirt's monitor passthrough"""
        msg = {"execute": command}
        if arguments:
            msg["arguments"] = arguments
        out = self.virsh("qemu-monitor-command", domain, json.dumps(msg)).stdout
        resp = json.loads(out)
        if "error" in resp:
            raise Failure("%s through libvirt: %s" % (command,
                                                      resp["error"]["desc"]))
        return resp["return"]

    def tail(self):
        self.log.flush()
        text = ""
        for name in ("stderr", "libvirtd.log"):
            try:
                with open(os.path.join(self.dir, "log", name)) as f:
                    text += f.read()[-1500:]
            except OSError:
                pass
        return text

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()


class EventLog:
    """`virsh qemu-monitor-event --loop` of a domain, into a file"""

    def __init__(self, libvirtd, domain, path):
        self.path = path
        self.out = open(path, "w")
        self.proc = subprocess.Popen(
            ["virsh", "-c", libvirtd.uri, "qemu-monitor-event", domain,
             "--loop", "--timestamp"], stdout=self.out,
            stderr=subprocess.STDOUT)

    def lines(self):
        self.out.flush()
        with open(self.path) as f:
            return f.read().splitlines()

    def stop(self):
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)


def libvirt_qemu_pid(libvirtd, domain):
    path = os.path.join(libvirtd.dir, "run-libvirt", "qemu", domain + ".pid")
    with open(path) as f:
        return int(f.read().strip())


def secondary_args(pid, workdir):
    """The primary's command line as libvirt made it, for a secondary:
    the descriptors libvirt passed (monitor, tap) become a monitor
    socket and tap1 of our own, the serial console a file of its own,
    and -S gives way to -incoming."""
    with open("/proc/%d/cmdline" % pid, "rb") as f:
        argv = [a.decode() for a in f.read().split(b"\0")[:-1]]
    qmp = os.path.join(workdir, "secondary.qmp")
    serial = os.path.join(workdir, "secondary.serial")
    out = [argv[0]]
    i = 1
    while i < len(argv):
        opt, val = argv[i], argv[i + 1] if i + 1 < len(argv) else None
        i += 1
        if opt == "-S":
            continue
        if opt in ("-add-fd", "-pidfile"):
            i += 1
            continue
        if val is None or not opt.startswith("-"):
            out.append(opt)
            continue
        i += 1
        if opt == "-object" and '"secret"' in val:
            continue            # libvirt's master key, for no secret here
        if opt == "-chardev" and "charmonitor" in val:
            val = "socket,id=charmonitor,path=%s,server=on,wait=off" % qmp
        elif opt == "-chardev" and "charserial0" in val:
            val = "file,id=charserial0,path=%s" % serial
        elif opt == "-netdev":
            nd = json.loads(val)
            for k in ("fd", "fds", "vhostfd", "vhostfds"):
                nd.pop(k, None)
            nd.update(ifname="tap1", script="no", downscript="no")
            val = json.dumps(nd)
        out += [opt, val]
    return out + ["-incoming", harness.INCOMING], qmp, serial


class Secondary(harness.Qemu):
    """A QEMU started from a given command line, monitored over QMP"""

    def __init__(self, args, workdir, qmp, serial):
        self.name = "secondary"
        self.qmp_path = qmp
        self.serial = serial
        self.events = []
        self.stderr = open(os.path.join(workdir, "secondary.stderr"), "w")
        self.proc = subprocess.Popen(args, stdout=self.stderr,
                                     stderr=subprocess.STDOUT)
        self._connect()


def wait_for(what, cond, timeout):
    deadline = time.time() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.time() > deadline:
            raise Failure("timed out waiting for %s" % what)
        time.sleep(0.2)


def ft_exit(vm, timeout):
    """The FT_EXIT event of @vm, within @timeout seconds"""
    def seen():
        vm.status()             # reads the events that came meanwhile
        return [e for e in vm.events if e["event"] == "FT_EXIT"]
    return wait_for("FT_EXIT on the %s" % vm.name, seen, timeout)[0]


def scenario_libvirt_ft(stop="kill", progress=False):
    """@stop: how the primary goes: 'kill' (kill -9 of its QEMU, behind
    libvirt's back), 'destroy-failover' (`virsh destroy`, which sends
    SIGTERM, with ft-host-signal 'failover': the primary hands the
    guest over) or 'destroy-end' (`virsh destroy` with the default
    ft-host-signal, 'end': FT ends, the secondary does not take over)."""
    run = harness.Run("libvirt-ft")
    ok = False
    libvirtd = events = None
    try:
        libvirtd = Libvirtd(run.dir)
        guest = harness.guest_dir()
        xml = DOMAIN_XML.format(
            name=DOMAIN, emulator=os.path.abspath(harness.qemu_binary()),
            kernel=os.path.join(guest, "vmlinuz"),
            initrd=os.path.join(guest, "initrd.img"),
            cmdline="console=ttyS0 panic=-1 quiet kemari.server=%s:%d"
                    % (harness.BRIDGE_IP, harness.CHECKER_PORT),
            image=run.image, mac=harness.GUEST_MAC,
            serial=os.path.join(run.dir, "primary.serial"))
        xml_path = os.path.join(run.dir, DOMAIN + ".xml")
        with open(xml_path, "w") as f:
            f.write(xml)
        libvirtd.virsh("define", xml_path)
        libvirtd.virsh("start", DOMAIN)
        pid = libvirt_qemu_pid(libvirtd, DOMAIN)
        log("libvirt started the primary (QEMU pid %d)" % pid)
        events = EventLog(libvirtd, DOMAIN,
                          os.path.join(run.dir, "primary.events"))

        primary_serial = os.path.join(run.dir, "primary.serial")
        wait_for("the workload on the primary",
                 lambda: "workload: started" in open(primary_serial,
                                                     errors="replace").read(),
                 180)
        if not run.checker.wait_for(30, 120):
            raise Failure("only %d records acknowledged on the primary"
                          % run.checker.log.count)

        args, qmp, serial = secondary_args(pid, run.dir)
        with open(os.path.join(run.dir, "secondary.args"), "w") as f:
            f.write("\n".join(args) + "\n")
        secondary = Secondary(args, run.dir, qmp, serial)
        run.vms.append(secondary)

        # FT through libvirt only, with the defaults a user gets
        if stop == "destroy-failover":
            libvirtd.qmp(DOMAIN, "migrate-set-parameters",
                         **{"ft-host-signal": "failover"})
        libvirtd.qmp(DOMAIN, "migrate-set-capabilities",
                     capabilities=[{"capability": "ft", "state": True}])
        libvirtd.qmp(DOMAIN, "migrate", uri=harness.INCOMING)
        wait_for("the primary in state ft",
                 lambda: libvirtd.qmp(DOMAIN, "query-migrate")
                 .get("status") == "ft", 300)
        secondary.wait_migration(("ft",), timeout=60)
        def checkpoints():
            return libvirtd.qmp(DOMAIN, "query-migrate")["ft"]["checkpoints"]

        def passes():
            return len([ln for ln in events.lines()
                        if "MIGRATION_PASS" in ln])

        # libvirt sets 'events': the migration's passes are reported,
        # checkpoints must not be (libvirt makes each an iteration event)
        time.sleep(1)
        first, start = passes(), checkpoints()
        wait_for("20 checkpoints", lambda: checkpoints() >= start + 20, 120)
        time.sleep(1)
        log("primary (through libvirt): ft, %d checkpoints, mode %s; "
            "MIGRATION_PASS events: %d before FT, %d since"
            % (checkpoints(), libvirtd.qmp(
                DOMAIN, "query-migrate-parameters")["ft-mode"],
               first, passes() - first))
        if passes() != first:
            raise Failure("checkpoints emitted MIGRATION_PASS events")
        job = libvirtd.virsh("domjobinfo", DOMAIN).stdout.strip()
        log("virsh domjobinfo while FT runs: %s" % (job or "(empty)"))
        r = libvirtd.virsh("domjobabort", DOMAIN, check=False)
        log("virsh domjobabort while FT runs: %s"
            % (r.stderr.strip() or "succeeded"))
        status = [ln for ln in events.lines() if "MIGRATION" in ln]
        if not any('"status":"ft"' in ln.replace(" ", "") for ln in status):
            raise Failure("no MIGRATION event with status ft through "
                          "virsh qemu-monitor-event: %s" % status[-3:])
        if not run.checker.wait_for(run.checker.log.count + 20, 120):
            raise Failure("the workload stalled under FT")

        before = run.checker.log.count
        if stop == "kill":
            log("%d writes acknowledged; kill -9 of the primary's QEMU"
                % before)
            os.kill(pid, signal.SIGKILL)
        else:
            log("%d writes acknowledged; virsh destroy of the primary"
                % before)
            t0 = time.time()
            libvirtd.virsh("destroy", DOMAIN)
            log("virsh destroy returned after %.1f s" % (time.time() - t0))
        exit_ = ft_exit(secondary, 60)
        log("secondary: FT_EXIT %s" % exit_["data"])
        if stop == "destroy-end":
            time.sleep(1)
            if exit_["data"].get("takeover") or \
                    secondary.status() == "running":
                raise Failure("the secondary took over after virsh destroy "
                              "with ft-host-signal 'end'")
            log("the secondary is %s and does not take over: the guest "
                "is gone, as the operator asked" % secondary.status())
            # What the primary held was written when FT ended
            ok = harness.verdict(run)
            return ok
        harness.wait_takeover(secondary)
        if not exit_["data"].get("takeover"):
            raise Failure("no takeover on the secondary: %s" % exit_)
        want = "handover" if stop == "destroy-failover" else "peer-lost"
        if exit_["data"].get("reason") != want:
            raise Failure("the takeover's reason is not %s: %s"
                          % (want, exit_))
        def domstate():
            return libvirtd.virsh("domstate", DOMAIN,
                                  "--reason").stdout.strip()

        wait_for("libvirt to see the primary gone",
                 lambda: "shut off" in domstate(), 30)
        log("libvirt's domain state now: %s" % domstate())
        harness.workload_goes_on(run, secondary, "takeover")
        with open(os.path.join(libvirtd.dir, "log", "libvirtd.log"),
                  errors="replace") as f:
            warned = sorted(set(re.findall(r"unknown status '\w+'[^\n]*",
                                           f.read())))
        log("libvirtd's log on FT: %s" % (warned or "nothing"))
        ok = harness.verdict(run)
        return ok
    finally:
        if events:
            events.stop()
        if libvirtd:
            libvirtd.virsh("destroy", DOMAIN, check=False)
            libvirtd.stop()
        run.cleanup(keep=not ok)


SCENARIOS = {
    "libvirt-ft": lambda: scenario_libvirt_ft("kill"),
    "libvirt-ft-destroy": lambda: (
        scenario_libvirt_ft("destroy-failover") &
        scenario_libvirt_ft("destroy-end")),
}
