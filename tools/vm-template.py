#!/usr/bin/env python3
# SPDX-License-Identifier: GPL-2.0-or-later
"""VM templates and fast clones (seed 004 c, x-ignore-shared).

A template is a guest paused at a ready point and saved as three files,
made read-only:

  memory      the guest RAM: the template ran on
              memory-backend-file,share=on over this file
  state       the device state, saved with 'migrate' to file: with the
              x-ignore-shared capability (so without the RAM)
  disk.base   the base disk image

plus template.json (command line, sizes, sha256 of the three files).

A clone is a new QEMU with the same command line whose RAM is a private
copy-on-write mapping of the template's memory file
(memory-backend-file,share=off,readonly=on,rom=off: the file is opened
read-only and never written; the clone's writes go to its own anonymous
pages), with -incoming defer and migrate-incoming from the state file
(x-ignore-shared: only the device state is read), its own qcow2 overlay
over disk.base, its own QMP socket and serial log.  Unwritten guest
pages stay shared between the clones in the page cache.

  vm-template.py create DIR --disk IMG [--mem MB] [--ready TEXT]
                 [--netdev SPEC] [--timeout S] -- QEMU-ARGS...
      Boot the guest (QEMU-ARGS: everything but RAM, disk, netdev, QMP
      and serial; its devices use drive=disk0 and netdev=net0), wait for
      TEXT on the serial console, pause, save, quit, make it read-only.
  vm-template.py clone DIR OUTDIR [-n K] [--netdev SPEC]
      Start K clones (left running, detached); SPEC may use {i}, the
      clone number (default: hubport, i.e. a NIC with no network).  The
      clones' netdev must offer what the template's did: a template on
      a tap (vnet_hdr) needs taps, one on hubport or user any netdev.
      Prints each clone's pid, QMP socket, serial log and overlay.
  vm-template.py verify DIR
      Check the template files against the recorded sha256.

Environment: KEMARI_QEMU (the QEMU binary), QEMU_IMG (qemu-img).
"""

import argparse
import hashlib
import json
import os
import socket
import stat
import subprocess
import sys
import time

TOP = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
MEM_ID = "tmpl-mem"
FILES = ("memory", "state", "disk.base")


class TemplateError(Exception):
    pass


def qemu_binary():
    return os.environ.get("KEMARI_QEMU", os.path.join(
        TOP, "build/qemu/build/qemu-system-x86_64"))


def qemu_img():
    default = os.path.join(os.path.dirname(qemu_binary()), "qemu-img")
    return os.environ.get("QEMU_IMG", default if os.path.exists(default)
                          else "qemu-img")


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            buf = f.read(1 << 20)
            if not buf:
                return h.hexdigest()
            h.update(buf)


def image_format(path):
    out = subprocess.run([qemu_img(), "info", "--output=json", "-U", path],
                         check=True, capture_output=True, text=True).stdout
    return json.loads(out)["format"]


class Vm:
    """One QEMU process with a QMP connection."""

    def __init__(self, name, args, workdir, env=None):
        self.name = name
        self.qmp_path = os.path.join(workdir, name + ".qmp")
        self.serial = os.path.join(workdir, name + ".serial")
        self.events = []
        args = list(args) + [
            "-name", name,
            "-qmp", "unix:%s,server=on,wait=off" % self.qmp_path,
            "-serial", "file:" + self.serial]
        self.stderr = open(os.path.join(workdir, name + ".stderr"), "w")
        self.t0 = time.time()
        self.proc = subprocess.Popen(args, stdout=self.stderr,
                                     stderr=subprocess.STDOUT,
                                     stdin=subprocess.DEVNULL,
                                     start_new_session=True, env=env)
        self.pid = self.proc.pid
        self._connect()

    def _connect(self):
        deadline = time.time() + 30
        while True:
            self.sock = socket.socket(socket.AF_UNIX)
            try:
                self.sock.connect(self.qmp_path)
                break
            except OSError:
                self.sock.close()
                if self.proc.poll() is not None or time.time() > deadline:
                    raise TemplateError("%s did not start: %s"
                                        % (self.name, self.tail()))
                time.sleep(0.01)
        self.rfile = self.sock.makefile("r")
        self._read()                # greeting
        self.cmd("qmp_capabilities")

    def _read(self):
        try:
            line = self.rfile.readline()
        except OSError as e:
            raise TemplateError("%s: QMP: %s: %s"
                                % (self.name, e, self.tail()))
        if not line:
            raise TemplateError("%s: QMP connection closed: %s"
                                % (self.name, self.tail()))
        return json.loads(line)

    def cmd(self, name, **args):
        msg = {"execute": name}
        if args:
            msg["arguments"] = args
        self.sock.sendall(json.dumps(msg).encode() + b"\n")
        while True:
            resp = self._read()
            if "event" in resp:
                self.events.append(resp)
                continue
            if "error" in resp:
                raise TemplateError("%s: %s failed: %s"
                                    % (self.name, name, resp["error"]["desc"]))
            return resp["return"]

    def hmp(self, line):
        return self.cmd("human-monitor-command", **{"command-line": line})

    def status(self):
        return self.cmd("query-status")["status"]

    def wait_migration(self, timeout=60):
        deadline = time.time() + timeout
        while time.time() < deadline:
            info = self.cmd("query-migrate")
            if info.get("status") == "completed":
                return info
            if info.get("status") == "failed":
                raise TemplateError("%s: migration failed: %s"
                                    % (self.name, info.get("error-desc")))
            time.sleep(0.01)
        raise TemplateError("%s: migration not completed after %ds"
                            % (self.name, timeout))

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
            time.sleep(0.1)
        raise TemplateError("%s: %r not on the serial console: %s"
                            % (self.name, text, self.serial_text()[-2000:]))

    def pss_kib(self):
        """Proportional set size of the QEMU process, in KiB."""
        with open("/proc/%d/smaps_rollup" % self.pid) as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
        return 0

    def tail(self):
        self.stderr.flush()
        try:
            with open(self.stderr.name) as f:
                return f.read()[-2000:]
        except OSError:
            return ""

    def quit(self):
        if self.proc.poll() is None:
            try:
                self.cmd("quit")
            except (TemplateError, OSError):
                pass
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.kill()
        self.close()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(30)
        self.close()

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
        self.stderr.close()


def ram_args(mem_mb, mem_path, share, readonly):
    backend = ("memory-backend-file,id=%s,size=%dM,mem-path=%s,share=%s"
               % (MEM_ID, mem_mb, mem_path, "on" if share else "off"))
    if readonly:
        # Open the file read-only but give the guest writable RAM: a
        # private copy-on-write mapping (QEMU's VM-templating case).
        backend += ",readonly=on,rom=off"
    return ["-m", str(mem_mb), "-object", backend,
            "-machine", "memory-backend=" + MEM_ID]


def netdev_args(spec):
    return ["-netdev", (spec or "hubport,hubid=0") + ",id=net0"]


def load(tdir):
    with open(os.path.join(tdir, "template.json")) as f:
        return json.load(f)


def create(tdir, args, disk, mem_mb=256, ready=None, netdev=None,
           timeout=300, log=lambda msg: None):
    """Boot the guest, wait for @ready on its console, save it as a
    template in @tdir.  Returns the template description."""
    os.makedirs(tdir)
    base = os.path.join(tdir, "disk.base")
    subprocess.run(["cp", "--sparse=always", disk, base], check=True)
    fmt = image_format(base)
    mem = os.path.join(tdir, "memory")
    state = os.path.join(tdir, "state")
    qemu = qemu_binary()
    cmd = ([qemu] + ram_args(mem_mb, mem, share=True, readonly=False) +
           ["-drive", "file=%s,format=%s,if=none,id=disk0" % (base, fmt)] +
           netdev_args(netdev) + list(args))
    t0 = time.time()
    vm = Vm("template", cmd, tdir)
    try:
        if ready:
            vm.wait_serial(ready, timeout)
        booted = time.time() - t0
        log("template: guest ready after %.1f s; pausing and saving" % booted)
        vm.cmd("stop")
        vm.cmd("migrate-set-capabilities", capabilities=[
            {"capability": "x-ignore-shared", "state": True}])
        t1 = time.time()
        vm.cmd("migrate", uri="file:" + state)
        vm.wait_migration()
        saved = time.time() - t1
        vm.quit()
    finally:
        if vm.proc.poll() is None:
            vm.kill()
    desc = {
        "qemu": qemu, "args": list(args), "mem_mb": mem_mb,
        "disk_format": fmt, "ready": ready,
        "boot_seconds": booted, "save_seconds": saved,
        "state_bytes": os.path.getsize(state),
        "sha256": {},
    }
    for name in FILES:
        path = os.path.join(tdir, name)
        desc["sha256"][name] = sha256(path)
        os.chmod(path, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
    with open(os.path.join(tdir, "template.json"), "w") as f:
        json.dump(desc, f, indent=1)
    log("template: %s saved (device state %d KiB, RAM %d MiB in the "
        "memory file)" % (tdir, desc["state_bytes"] >> 10, mem_mb))
    return desc


def verify(tdir):
    """Return the template files whose sha256 changed since create."""
    desc = load(tdir)
    return [name for name in FILES
            if sha256(os.path.join(tdir, name)) != desc["sha256"][name]]


def start_clone(tdir, outdir, name, netdev=None, share=False, mem_path=None,
                overlay=None, overlay_format="qcow2", drive_opts="",
                run=True, extra=()):
    """Start one clone of the template in @tdir; return its Vm once it
    has loaded the device state (and, with @run, is running).

    @share, @mem_path, @overlay(_format) and @drive_opts exist for
    negative controls (clones that share what they must not)."""
    desc = load(tdir)
    os.makedirs(outdir, exist_ok=True)
    if overlay is None:
        overlay = os.path.join(outdir, name + ".qcow2")
        subprocess.run([qemu_img(), "create", "-q", "-f", "qcow2",
                        "-b", os.path.join(tdir, "disk.base"),
                        "-F", desc["disk_format"], overlay], check=True)
    mem = mem_path or os.path.join(tdir, "memory")
    cmd = ([desc["qemu"]] +
           ram_args(desc["mem_mb"], mem, share=share, readonly=not share) +
           ["-drive", "file=%s,format=%s,if=none,id=disk0%s"
            % (overlay, overlay_format, drive_opts)] +
           netdev_args(netdev) + desc["args"] + list(extra) +
           ["-incoming", "defer"])
    vm = Vm(name, cmd, outdir)
    try:
        vm.overlay = overlay
        vm.cmd("migrate-set-capabilities", capabilities=[
            {"capability": "x-ignore-shared", "state": True}])
        vm.cmd("migrate-incoming", uri="file:" + os.path.join(tdir, "state"))
        vm.wait_migration()
        if run:
            vm.cmd("cont")
    except BaseException:
        vm.kill()
        raise
    return vm


def main():
    ap = argparse.ArgumentParser(
        description="VM templates and fast clones (x-ignore-shared)",
        epilog="See the module docstring (head of this file) for details.")
    sub = ap.add_subparsers(dest="op", required=True)
    c = sub.add_parser("create", help="boot, pause and save a template")
    c.add_argument("dir")
    c.add_argument("--disk", required=True, help="base disk image (copied)")
    c.add_argument("--mem", type=int, default=256, help="RAM in MiB")
    c.add_argument("--ready", help="serial console text of the ready point")
    c.add_argument("--netdev", help="-netdev of the template (no id)")
    c.add_argument("--timeout", type=int, default=300)
    c.epilog = "QEMU arguments follow '--' (devices use disk0 and net0)"
    k = sub.add_parser("clone", help="start clones of a template")
    k.add_argument("dir")
    k.add_argument("outdir")
    k.add_argument("-n", "--count", type=int, default=1)
    k.add_argument("--netdev", help="-netdev of clone {i} (no id)")
    v = sub.add_parser("verify", help="check the template's checksums")
    v.add_argument("dir")
    argv = sys.argv[1:]
    qemu_args = []
    if "--" in argv:
        cut = argv.index("--")
        argv, qemu_args = argv[:cut], argv[cut + 1:]
    opts = ap.parse_args(argv)

    def say(msg):
        print(msg, flush=True)

    try:
        if opts.op == "create":
            create(opts.dir, qemu_args, opts.disk, opts.mem, opts.ready,
                   opts.netdev, opts.timeout, say)
        elif opts.op == "clone":
            for i in range(opts.count):
                t0 = time.time()
                netdev = opts.netdev.format(i=i) if opts.netdev else None
                vm = start_clone(opts.dir, opts.outdir, "clone%d" % i, netdev)
                say("clone%d: running after %.0f ms, pid %d, qmp %s, "
                    "serial %s, disk %s" % (i, (time.time() - t0) * 1000,
                                            vm.pid, vm.qmp_path, vm.serial,
                                            vm.overlay))
                with open(os.path.join(opts.outdir, "clone%d.pid" % i),
                          "w") as f:
                    f.write("%d\n" % vm.pid)
                vm.sock.close()     # the clone runs on, detached
        else:
            changed = verify(opts.dir)
            if changed:
                say("template %s CHANGED: %s" % (opts.dir, " ".join(changed)))
                return 1
            say("template %s intact (%s)" % (opts.dir, ", ".join(FILES)))
    except (TemplateError, subprocess.CalledProcessError, OSError) as e:
        print("vm-template: %s" % e, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
