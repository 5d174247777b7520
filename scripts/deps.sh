#!/usr/bin/env bash
# Install the build and test dependencies of the Kemari series from Debian.
#
# Works on Debian 12 (bookworm, with bookworm-backports for meson >= 1.5
# and python3-pycotap) and Debian 13 (trixie).  The archive URI is taken
# from the machine's own apt configuration; nothing else is added.
# Idempotent: a second run with everything present only checks.
set -euo pipefail
. "$(dirname "$0")/lib.sh"

PKGS=(
    build-essential git ninja-build pkg-config ccache
    python3 python3-venv python3-setuptools
    libglib2.0-dev libpixman-1-dev zlib1g-dev libfdt-dev libslirp-dev
    libgnutls28-dev libtasn1-6-dev
    flex bison
    seabios ipxe-qemu qemu-system-data
    busybox-static cpio xz-utils zstd kmod iproute2 iputils-ping util-linux
    dpkg-dev
    libvirt-daemon libvirt-daemon-driver-qemu libvirt-clients
)
BPO_PKGS=(meson python3-pycotap)

need_install() {
    local p
    for p in "$@"; do
        dpkg-query -W -f='${Status}\n' "$p" 2>/dev/null |
            grep -q '^install ok installed$' || return 0
    done
    return 1
}

meson_ok() {
    command -v meson >/dev/null &&
        dpkg --compare-versions "$(meson --version)" ge 1.5.0
}

if [ "$(id -u)" != 0 ]; then
    die "deps.sh installs Debian packages and must run as root"
fi

codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-}")
export DEBIAN_FRONTEND=noninteractive

if [ "$codename" = bookworm ]; then
    bpo=/etc/apt/sources.list.d/kemari-bookworm-backports.sources
    if [ ! -f "$bpo" ]; then
        uri=$(debian_mirror_uri)
        log "enabling bookworm-backports from $uri"
        cat > "$bpo" <<SRC
Types: deb
URIs: $uri
Suites: bookworm-backports
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg
SRC
        rm -f "$STATE_DIR/apt-updated"
    fi
    bpo_opt=(-t bookworm-backports)
else
    bpo_opt=()
fi

# libvirtd (tests/e2e/libvirt_ft.py) runs its QEMUs as root, but its
# QEMU driver looks up the user it would otherwise use when it starts.
# libvirt-daemon-system creates it, and brings systemd with it: create
# it alone, as that package does.
libvirt_user() {
    getent passwd libvirt-qemu >/dev/null ||
        useradd --system --user-group --no-create-home \
                --home-dir /var/lib/libvirt --shell /usr/sbin/nologin \
                libvirt-qemu
}

if ! need_install "${PKGS[@]}" "${BPO_PKGS[@]}" && meson_ok; then
    libvirt_user
    log "dependencies already installed"
    exit 0
fi

mkdir -p "$STATE_DIR"
if [ ! -f "$STATE_DIR/apt-updated" ]; then
    apt-get update -q
    touch "$STATE_DIR/apt-updated"
fi
apt-get install -y -q --no-install-recommends "${PKGS[@]}"
apt-get install -y -q --no-install-recommends "${bpo_opt[@]}" "${BPO_PKGS[@]}"
meson_ok || die "meson >= 1.5 is required (found $(meson --version 2>&1))"
libvirt_user
log "dependencies installed (meson $(meson --version))"
