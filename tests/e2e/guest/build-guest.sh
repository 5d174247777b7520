#!/usr/bin/env bash
# Build the e2e guest from Debian packages only: a Debian kernel (its .deb
# is downloaded and unpacked, not installed) and an initramfs made of
# busybox-static, the modules the guest needs, our init and our static
# workload.  Output: $OUT/vmlinuz and $OUT/initrd.img.
set -euo pipefail
HERE=$(cd "$(dirname "$0")" && pwd)
OUT=${1:?usage: build-guest.sh OUTDIR}
MODULES="virtio_pci virtio_net virtio_blk e1000 ata_piix sd_mod"

mkdir -p "$OUT"
stamp="$OUT/.stamp"
inputs=$(cat "$HERE"/init "$HERE"/*.c "$HERE"/*.h "$0" | sha256sum | cut -d' ' -f1)
if [ -f "$OUT/vmlinuz" ] && [ -f "$OUT/initrd.img" ] &&
   [ "$(cat "$stamp" 2>/dev/null)" = "$inputs" ]; then
    exit 0
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

# The kernel package the metapackage points at (no installation).
kpkg=$(apt-cache depends linux-image-amd64 2>/dev/null |
       awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
[ -n "$kpkg" ] || { echo "build-guest: no linux-image-amd64 in apt" >&2; exit 1; }
if ! ls "$OUT"/dl/"$kpkg"_*.deb >/dev/null 2>&1; then
    mkdir -p "$OUT/dl"
    (cd "$OUT/dl" && apt-get download -q "$kpkg" >/dev/null 2>&1) ||
        { echo "build-guest: apt-get download $kpkg failed" >&2; exit 1; }
fi
dpkg-deb -x "$OUT"/dl/"$kpkg"_*.deb "$work/k"
kver=$(ls "$work/k/lib/modules")
cp "$work/k/boot/vmlinuz-$kver" "$OUT/vmlinuz"

root=$work/root
mkdir -p "$root"/{bin,sbin,proc,sys,dev,etc,tmp} "$root/lib/modules/$kver"
cp /bin/busybox "$root/bin/busybox"
for a in $("$root/bin/busybox" --list); do
    [ -e "$root/bin/$a" ] || ln -s busybox "$root/bin/$a"
done
# Modules and their dependencies, found by depmod over the whole package.
depmod -b "$work/k" "$kver"
kmods=$work/k/lib/modules/$kver
want=$(for m in $MODULES; do modprobe -d "$work/k" -S "$kver" --show-depends "$m"; done |
       awk '$1 == "insmod" { print $2 }' | sort -u)
for f in $want; do
    rel=${f#"$kmods/"}
    mkdir -p "$root/lib/modules/$kver/$(dirname "$rel")"
    case "$f" in
    *.xz) xz -dc "$f" > "$root/lib/modules/$kver/${rel%.xz}" ;;
    *.zst) zstd -qdc "$f" > "$root/lib/modules/$kver/${rel%.zst}" ;;
    *) cp "$f" "$root/lib/modules/$kver/$rel" ;;
    esac
done
for f in modules.order modules.builtin modules.builtin.modinfo; do
    [ -f "$kmods/$f" ] && cp "$kmods/$f" "$root/lib/modules/$kver/"
done
depmod -b "$root" "$kver"

gcc -static -O2 -Wall -Werror -o "$root/bin/workload" "$HERE/workload.c"
gcc -static -O2 -Wall -Werror -o "$root/bin/dirty" "$HERE/dirty.c"
install -m 0755 "$HERE/init" "$root/init"
(cd "$root" && find . | cpio -o -H newc --quiet) | gzip -1 > "$OUT/initrd.img"
echo "$inputs" > "$stamp"
echo "build-guest: kernel $kver, initrd $(du -h "$OUT/initrd.img" | cut -f1)"
