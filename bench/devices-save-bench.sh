#!/usr/bin/env bash
# SPDX-License-Identifier: GPL-2.0-or-later
#
# The cost of saving the device state, the largest phase of a fault
# tolerance checkpoint's pause (and a part of a migration's downtime):
# instructions spent in qemu_save_device_state(), counted by callgrind,
# over $SAVES xen-save-devices-state of a paused pc machine with a
# virtio-net and a virtio-blk device, for the unpatched base and for
# the series, built the same way, in the same run.  Instruction counts
# do not depend on what else the machine does.
#
#   make bench-devices
set -euo pipefail
. "$(dirname "$0")/../scripts/lib.sh"

SAVES=${KEMARI_BENCH_SAVES:-20}

command -v valgrind >/dev/null ||
    { apt-get update -q && apt-get install -y -q valgrind; } >&2
build_base >&2
# The same firmware for both: the one scripts/build.sh gives our build
FIRMWARE=$("$OBJ/qemu-system-x86_64" -L help | grep '/share/qemu$' | head -n1)

# Instructions in qemu_save_device_state() over $SAVES saves by QEMU $1
count() {
    local bin=$1 dir out
    dir=$(mktemp -d)
    out=$dir/callgrind.out
    truncate -s 64M "$dir/disk.raw"
    valgrind --tool=callgrind --callgrind-out-file="$out" \
        --toggle-collect=qemu_save_device_state \
        "$bin" -L "$FIRMWARE" -machine pc -accel tcg -S -nodefaults \
        -display none -m 256 \
        -qmp "unix:$dir/qmp,server=on,wait=off" \
        -drive "file=$dir/disk.raw,format=raw,if=none,id=disk0" \
        -device virtio-blk-pci,drive=disk0 \
        -netdev user,id=net0 -device virtio-net-pci,netdev=net0 \
        > "$dir/qemu.log" 2>&1 &
    # A QEMU that the client could not drive does not outlive the bench
    trap 'kill $! 2>/dev/null' EXIT
    # QEMU's own QMP client, from the tree
    PYTHONPATH=$TREE/python python3 - "$dir" "$SAVES" <<'EOF'
import sys
import time
from qemu.qmp import ConnectError
from qemu.qmp.legacy import QEMUMonitorProtocol

d, saves = sys.argv[1], int(sys.argv[2])
for _ in range(600):
    qmp = QEMUMonitorProtocol(d + "/qmp")
    try:
        qmp.connect()
        break
    except ConnectError:
        time.sleep(0.1)
for _ in range(saves):
    qmp.cmd("xen-save-devices-state", filename=d + "/state", live=False)
qmp.cmd("quit")
EOF
    wait
    trap - EXIT
    size=$(stat -c %s "$dir/state")
    callgrind_annotate "$out" | awk -v size="$size" \
        '/PROGRAM TOTALS/ { gsub(",", "", $1); print $1, size; exit }'
    rm -rf "$dir"
}

read -r base_ir base_size < <(count "$BASE_OBJ/qemu-system-x86_64")
read -r ours_ir ours_size < <(count "$OBJ/qemu-system-x86_64")
echo
echo "Device state save, qemu_save_device_state(), $SAVES saves under callgrind"
echo "(pc machine, virtio-net + virtio-blk, paused; same run):"
printf '%-8s %16s %16s %14s\n' build instructions "per save" "state bytes"
printf '%-8s %16d %16d %14d\n' base "$base_ir" $((base_ir / SAVES)) "$base_size"
printf '%-8s %16d %16d %14d\n' series "$ours_ir" $((ours_ir / SAVES)) "$ours_size"
awk -v a="$ours_ir" -v b="$base_ir" \
    'BEGIN { printf "series / base: %.3f\n", a / b }'
