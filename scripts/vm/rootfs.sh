#!/usr/bin/env bash
# A Debian 12 root filesystem for the test VMs (make vm-test, make vm), cached as a tarball keyed by the
# architecture and the package list: prints the tarball's path. Built with debootstrap from the Debian archive
# this machine's apt uses (read from its sources, not named here). arm64 needs qemu-aarch64 registered with
# binfmt_misc for debootstrap's second stage; this script registers it if missing.
#
#   scripts/vm/rootfs.sh amd64|arm64
set -euo pipefail

ARCH="${1:?usage: rootfs.sh amd64|arm64}"
SUITE=bookworm
# What the image's packagegroup brings (meta-tmc: tmc-image.bb), with Debian's names, plus the kernel (its
# modules: mac80211_hwsim, virtio, 9p) and what the in-VM checks use (iw, wpasupplicant, mosquitto-clients,
# busybox's udhcpc).
PACKAGES=(
  systemd systemd-sysv udev kmod dbus iproute2 iw hostapd dnsmasq mosquitto mosquitto-clients
  wpasupplicant busybox procps passwd
)
case "$ARCH" in
  amd64) PACKAGES+=(linux-image-amd64) ;;
  arm64) PACKAGES+=(linux-image-arm64) ;;
  *) echo "rootfs.sh: unknown architecture $ARCH (amd64 or arm64)" >&2; exit 2 ;;
esac

CACHE="${TMC_VM_CACHE:-${XDG_CACHE_HOME:-$HOME/.cache}/tmc/vm}"
key=$(printf '%s\n' "$SUITE" "$ARCH" "${PACKAGES[@]}" "format 1" | sha256sum | cut -c1-12)
tarball="$CACHE/rootfs-$SUITE-$ARCH-$key.tar"
if [ -s "$tarball" ]; then
  echo "$tarball"
  exit 0
fi

# The first deb URI of the host's apt sources that carries the suite's main component.
mirror() {
  local f
  for f in /etc/apt/sources.list.d/*.sources; do
    [ -f "$f" ] || continue
    awk -v suite="$SUITE" '
      /^[[:space:]]*$/ { if (uri != "" && has_suite) { print uri; exit } uri = ""; has_suite = 0; next }
      /^URIs:/ { uri = $2 }
      /^Suites:/ { for (i = 2; i <= NF; i++) if ($i == suite) has_suite = 1 }
      END { if (uri != "" && has_suite) print uri }' "$f"
  done | head -n1
  if [ -f /etc/apt/sources.list ]; then
    awk -v suite="$SUITE" '$1 == "deb" && $3 == suite { print $2; exit }' /etc/apt/sources.list
  fi
}
MIRROR="${TMC_VM_MIRROR:-$(mirror | head -n1)}"
[ -n "$MIRROR" ] || { echo "rootfs.sh: no Debian $SUITE source in the host's apt configuration (set TMC_VM_MIRROR)" >&2; exit 1; }

if [ "$ARCH" = arm64 ] && [ "$(uname -m)" != aarch64 ]; then
  if [ ! -e /proc/sys/fs/binfmt_misc/register ]; then
    mount -t binfmt_misc binfmt_misc /proc/sys/fs/binfmt_misc
  fi
  if [ ! -e /proc/sys/fs/binfmt_misc/qemu-aarch64 ]; then
    # The qemu-user-static package's entry (F: the interpreter is opened now, so it works inside the chroot).
    printf '%s' ':qemu-aarch64:M::\x7fELF\x02\x01\x01\x00\x00\x00\x00\x00\x00\x00\x00\x00\x02\x00\xb7\x00:\xff\xff\xff\xff\xff\xff\xff\x00\xff\xff\xff\xff\xff\xff\xff\xff\xfe\xff\xff\xff:/usr/bin/qemu-aarch64-static:F' \
      > /proc/sys/fs/binfmt_misc/register
  fi
fi

mkdir -p "$CACHE"
work=$(mktemp -d "$CACHE/build.XXXXXX")
trap 'rm -rf "$work"' EXIT
echo "rootfs.sh: debootstrap $SUITE $ARCH (${#PACKAGES[@]} packages) into $work" >&2
list=$(IFS=,; echo "${PACKAGES[*]}")
# INITRD=No: the VMs boot with a small initramfs built from the rootfs' own modules (scripts/vm/initramfs.sh).
INITRD=No debootstrap --variant=minbase --arch="$ARCH" --include="$list" "$SUITE" "$work/root" "$MIRROR" >&2
rm -rf "$work/root/var/cache/apt/archives/"*.deb "$work/root/var/lib/apt/lists/"*
tar --numeric-owner -C "$work/root" -cf "$work/rootfs.tar" .
mv "$work/rootfs.tar" "$tarball"
echo "$tarball"
