#!/usr/bin/env bash
# Migration stream check (design decision 3): with FT off, the series
# must send exactly the stream the unpatched base sends, byte for byte,
# section ids included.
#
# Builds the base beside the series (scripts/lib.sh build_base), starts
# each QEMU paused and never run (-S, the RTC on the VM clock) with the
# same command line -- q35 and i440fx, virtio-net on a dgram netdev,
# virtio-blk on a raw image -- migrates it to a file, and compares the
# files.  Two controls keep the check honest: the base against itself
# must be identical (the stream of a never-run VM is deterministic), and
# our build with one more device must differ.  Exit status 0: identical.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

MACHINES=${KEMARI_STREAM_MACHINES:-"pc-q35-10.0 pc-i440fx-10.0"}
# The binary to check against the base (to see this check fail, give it
# one built from an older series)
OURS=${KEMARI_STREAM_QEMU:-$OBJ/qemu-system-x86_64}

[ -x "$OBJ/qemu-system-x86_64" ] || die "build QEMU first ('make build')"
build_base

out=$(mktemp -d)
trap 'rm -rf "$out"' EXIT
truncate -s 16M "$out/disk.raw"

# migrate_to FILE BINARY MACHINE [EXTRA ARGS...]: the stream of a paused,
# never-run VM, written by 'migrate' to FILE.
migrate_to() {
    python3 - "$@" <<'PY'
import json, os, socket, subprocess, sys, time

dest, binary, machine = sys.argv[1:4]
extra = sys.argv[4:]
work = os.path.dirname(dest)
qmp = os.path.join(work, "qmp.sock")
if os.path.exists(qmp):
    os.unlink(qmp)
pcbios = os.environ["FIRMWARE"]
args = [binary, "-machine", machine, "-accel", "tcg", "-m", "128", "-S",
        "-display", "none", "-L", pcbios,
        "-rtc", "base=2020-01-01T00:00:00,clock=vm",
        "-qmp", "unix:%s,server=on,wait=off" % qmp,
        "-netdev", "dgram,id=n0,local.type=inet,local.host=127.0.0.1,"
                   "local.port=0,remote.type=inet,remote.host=127.0.0.1,"
                   "remote.port=9",
        "-device", "virtio-net-pci,netdev=n0,mac=52:54:00:12:34:56",
        "-drive", "file=%s,format=raw,if=none,id=d0"
                  % os.path.join(work, "disk.raw"),
        "-device", "virtio-blk-pci,drive=d0"] + extra
proc = subprocess.Popen(args)
deadline = time.time() + 30
while True:
    try:
        s = socket.socket(socket.AF_UNIX)
        s.connect(qmp)
        break
    except OSError:
        s.close()
        if proc.poll() is not None or time.time() > deadline:
            sys.exit("%s did not start" % binary)
        time.sleep(0.05)
f = s.makefile("r")


def cmd(name, **arguments):
    s.sendall(json.dumps({"execute": name, "arguments": arguments}).encode())
    while True:
        r = json.loads(f.readline())
        if "event" in r:
            continue
        if "error" in r:
            sys.exit("%s: %s" % (name, r["error"]["desc"]))
        return r["return"]


f.readline()
cmd("qmp_capabilities")
# RAM pages at fixed offsets of the file, whatever the iterations
cmd("migrate-set-capabilities",
    capabilities=[{"capability": "mapped-ram", "state": True}])
cmd("migrate", uri="file:" + dest)
while True:
    status = cmd("query-migrate").get("status")
    if status == "completed":
        break
    if status in ("failed", "cancelled"):
        sys.exit("migration to %s: %s" % (dest, status))
    time.sleep(0.05)
cmd("quit")
proc.wait(30)
PY
}

# same A B [LABEL]: whether two streams are equal, byte for byte, once
# the empty RAM iterations are dropped: how many iterations the RAM
# pass takes is a matter of timing (rate limit, time slices), and each
# one that finds nothing to send leaves an 18-byte section part (ram's
# section id, the EOS flag, the footer).  Says where they differ.
same() {
    python3 - "$@" <<'PY'
import re, sys

def normal(path):
    data = open(path, "rb").read()
    m = re.search(rb"\x01(....)\x03ram", data, re.S)
    if not m:
        sys.exit("%s: no ram section" % path)
    sid = m.group(1)
    empty = b"\x02" + sid + b"\x00" * 7 + b"\x10\x7e" + sid
    return data.replace(empty, b""), data.count(empty)

a, na = normal(sys.argv[1])
b, nb = normal(sys.argv[2])
if a == b:
    sys.exit(0)
n = min(len(a), len(b))
first = next((i for i in range(n) if a[i] != b[i]), n)
diff = sum(1 for i in range(n) if a[i] != b[i]) + abs(len(a) - len(b))
print("%d against %d bytes (after dropping %d and %d empty RAM "
      "iterations), %d bytes differ, the first at offset %d:\n  %r\n  %r"
      % (len(a), len(b), na, nb, diff, first,
         a[max(0, first - 32):first + 32], b[max(0, first - 32):first + 32]),
      file=sys.stderr)
sys.exit(1)
PY
}

# The same firmware for both: the one scripts/build.sh gives our build
FIRMWARE=$("$OBJ/qemu-system-x86_64" -L help | grep '/share/qemu$' | head -n1)
export FIRMWARE
status=0
for m in $MACHINES; do
    migrate_to "$out/base1" "$BASE_OBJ/qemu-system-x86_64" "$m"
    migrate_to "$out/base2" "$BASE_OBJ/qemu-system-x86_64" "$m"
    migrate_to "$out/ours" "$OURS" "$m"
    migrate_to "$out/more" "$OURS" "$m" \
        -device virtio-rng-pci
    if ! same "$out/base1" "$out/base2"; then
        log "$m: the base's stream differs from itself: this check is void"
        status=1
        continue
    fi
    if same "$out/base1" "$out/ours"; then
        log "$m: our stream with FT off equals the base's"
    else
        log "$m: our stream with FT off differs from the base's (above)"
        status=1
    fi
    if same "$out/ours" "$out/more" 2> /dev/null; then
        log "$m: control: a stream with one more device is not told apart"
        status=1
    else
        log "$m: control: one more device changes the stream, as it must"
    fi
    rm -f "$out/base1" "$out/base2" "$out/ours" "$out/more"
done
exit $status
