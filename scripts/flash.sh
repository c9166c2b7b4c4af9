#!/usr/bin/env bash
# flash.sh IMAGE DEVICE: write a Raspberry Pi image to an SD card, refusing every target
# that looks like the wrong disk. Called by `make flash IMAGE=... DEVICE=/dev/sdX`.
#
#   IMAGE   *.wic / *.img (also .rpi-sdimg, .sdimg, .direct), optionally compressed:
#           .bz2 .gz .xz .zst. A bmap beside it (bmaptool's own lookup: IMAGE.bmap,
#           then one suffix stripped at a time, e.g. foo.wic.bz2 -> foo.wic.bmap) makes
#           bmaptool write only the mapped blocks and verify their checksums.
#   DEVICE  the whole disk of the SD card, e.g. /dev/sdb or /dev/mmcblk0 (a /dev/disk/by-id
#           link is fine; it is resolved).
#
# Environment:
#   FORCE=1  allow a disk that does not look removable (sysfs removable=0, not on USB, and
#            not an SD card in an MMC slot): some card readers report removable=0.
#            It never overrides the partition, mounted/in-use, root-disk, read-only or
#            size refusals.
#   YES=1    do not ask for confirmation.
#
# Writes with `bmaptool copy` when bmaptool is on PATH, otherwise decompresses and writes
# with dd. Writes nothing anywhere but DEVICE (no temporary files).
#
# Exit status: 0 written; 1 the write itself failed (the card is in an unknown state);
# 2 usage error or refused (nothing written); 3 not confirmed (nothing written).
set -euo pipefail

readonly EXIT_REFUSED=2 EXIT_ABORTED=3

usage() {
  cat >&2 <<'EOF'
usage: flash.sh IMAGE DEVICE
       make flash IMAGE=path/to/tmc-image-raspberrypi4-64.rootfs.wic.bz2 DEVICE=/dev/sdX [FORCE=1] [YES=1]
Writes IMAGE (.wic/.img, optionally .bz2/.gz/.xz/.zst; uses a .bmap beside it) to the whole
disk DEVICE. FORCE=1 allows a disk that does not look removable; YES=1 skips the question.
EOF
  exit "$EXIT_REFUSED"
}

# One line on stderr that names the problem; nothing has been written when this runs.
refuse() {
  printf 'flash: refusing: %s\n' "$*" >&2
  exit "$EXIT_REFUSED"
}

info() { printf 'flash: %s\n' "$*"; }

# Bytes to a short human-readable size (binary units, as lsblk and the card vendors' "GB" differ).
human() {
  awk -v b="$1" 'BEGIN { split("B KiB MiB GiB TiB PiB", u, " "); i = 1
    while (b >= 1024 && i < 6) { b /= 1024; i++ }
    if (i == 1) printf "%d %s", b, u[i]; else printf "%.1f %s", b, u[i] }'
}

[ "$#" -eq 2 ] || usage
IMAGE=$1
DEVICE_ARG=$2
if [ -z "$IMAGE" ] || [ -z "$DEVICE_ARG" ]; then usage; fi
FORCE=${FORCE:-0}
YES=${YES:-0}

# ---------------------------------------------------------------------------------------------
# The image: it must exist and be readable, and we must know how to decompress it, before
# anything about the device matters.
[ -e "$IMAGE" ] || refuse "image $IMAGE does not exist"
[ -f "$IMAGE" ] || refuse "image $IMAGE is not a regular file"
[ -r "$IMAGE" ] || refuse "image $IMAGE is not readable"

case "$IMAGE" in
  *.bmap) refuse "$IMAGE is a bmap file; pass the image beside it (e.g. ${IMAGE%.bmap}.bz2)" ;;
esac
# Only known image names: writing, say, a tarball raw to a card "works" and boots nothing.
case "$IMAGE" in
  *.bz2) DECOMP=bzip2 ;;
  *.gz) DECOMP=gzip ;;
  *.xz) DECOMP=xz ;;
  *.zst) DECOMP=zstd ;;
  *) DECOMP= ;;
esac
RAW_NAME=$IMAGE
[ -z "$DECOMP" ] || RAW_NAME=${IMAGE%.*}
case "$RAW_NAME" in
  *.wic | *.img | *.sdimg | *.rpi-sdimg | *.direct) ;;
  *) refuse "image $IMAGE is not a .wic/.img image (optionally .bz2/.gz/.xz/.zst)" ;;
esac
# Both write paths need the decompressor: bmaptool runs the external program too.
if [ -n "$DECOMP" ] && ! command -v "$DECOMP" >/dev/null 2>&1; then
  refuse "cannot decompress $IMAGE: $DECOMP is not installed"
fi

# The bmap, found the way bmaptool finds it, so that what we show is what it will use and the
# size check below can use the bmap's ImageSize instead of decompressing the whole image.
BMAP=
candidate=$IMAGE
while :; do
  if [ -f "$candidate.bmap" ]; then
    BMAP=$candidate.bmap
    break
  fi
  case "${candidate##*/}" in
    ?*.*) candidate=${candidate%.*} ;;
    *) break ;;
  esac
done

# ---------------------------------------------------------------------------------------------
# The device: a whole disk, identified through sysfs by its device number, so that symlinks
# (/dev/disk/by-id/...) and odd names cannot make us look at the wrong entry.
[ -e "$DEVICE_ARG" ] || refuse "device $DEVICE_ARG does not exist"
DEV=$(readlink -f -- "$DEVICE_ARG")
if [ ! -b "$DEV" ]; then
  if [ -f "$DEV" ]; then
    refuse "$DEVICE_ARG is not a block device (it is a regular file); pass the SD card's disk, e.g. /dev/sdX"
  fi
  refuse "$DEVICE_ARG is not a block device; pass the SD card's disk, e.g. /dev/sdX"
fi

# Major:minor as sysfs spells it (stat prints them in hex).
majmin_of() {
  local maj min
  read -r maj min < <(stat -L -c '%t %T' -- "$1")
  printf '%d:%d' "0x$maj" "0x$min"
}
DEV_MAJMIN=$(majmin_of "$DEV")
SYS=$(readlink -f "/sys/dev/block/$DEV_MAJMIN" 2>/dev/null || true)
if [ -z "$SYS" ] || [ ! -e "$SYS/dev" ]; then
  refuse "$DEV: no sysfs entry for block device $DEV_MAJMIN (is /sys mounted?)"
fi
DEV_NAME=${SYS##*/}

if [ -e "$SYS/partition" ]; then
  parent=$(basename "$(dirname "$SYS")")
  refuse "$DEV is a partition, not a whole disk; pass the disk that holds it: /dev/$parent"
fi
# A mapping (LVM, dm-crypt) or a RAID array is not an SD card, and writing an image over it
# would silently destroy whatever it is layered on.
[ ! -d "$SYS/dm" ] || refuse "$DEV is a device-mapper device (LVM/dm-crypt), not a whole disk"
[ ! -d "$SYS/md" ] || refuse "$DEV is a software RAID (md) device, not a whole disk"

# Whole disks under a block device: a partition's parent disk, a mapping's or array's members
# followed down (sysfs slaves/, the same links lsblk's PKNAME and `lsblk -s` read).
disks_under() {
  local sys=$1 s found=0
  if [ -e "$sys/partition" ]; then sys=$(dirname "$sys"); fi
  for s in "$sys"/slaves/*; do
    [ -e "$s" ] || continue
    found=1
    disks_under "$(readlink -f "$s")"
  done
  [ "$found" = 1 ] || printf '%s\n' "${sys##*/}"
}

# The disk(s) holding /. From the root mount's device number (mountinfo field 3), which is the
# kernel's own answer; btrfs reports an anonymous 0:N there, so fall back to the mount source
# (findmnt's SOURCE, with a btrfs "[/subvol]" suffix removed).
root_disks() {
  local mm src sys
  mm=$(awk '$5 == "/" { mm = $3 } END { print mm }' /proc/self/mountinfo)
  sys=
  if [ -n "$mm" ] && [ -e "/sys/dev/block/$mm" ]; then
    sys=$(readlink -f "/sys/dev/block/$mm")
  else
    src=$(awk '$5 == "/" { for (i = 7; i <= NF; i++) if ($i == "-") { s = $(i + 2); break } } END { print s }' /proc/self/mountinfo)
    src=${src%%\[*}
    if [ -b "$src" ]; then
      sys=$(readlink -f "/sys/dev/block/$(majmin_of "$src")")
    fi
  fi
  # / on overlay/tmpfs (a container): no disk holds it here; the mounted check still covers
  # the host's disks through the bind mounts it can see.
  [ -n "$sys" ] || return 0
  disks_under "$sys"
}

ROOT_SRC=$(findmnt -n -o SOURCE / 2>/dev/null || echo '?')
while read -r d; do
  [ -n "$d" ] || continue
  if [ "$d" = "$DEV_NAME" ]; then
    refuse "$DEV holds the root filesystem (/ is on $ROOT_SRC); this is the machine's own disk"
  fi
done < <(root_disks)

# The device, its partitions and everything stacked on them (holders: dm, md), as
# "name maj:min" lines. Whatever of these is mounted or swapped on makes the whole disk busy.
device_tree() {
  local sys=$1 p h
  printf '%s %s\n' "${sys##*/}" "$(cat "$sys/dev")"
  for p in "$sys"/*/partition; do
    [ -e "$p" ] || continue
    device_tree "$(dirname "$p")"
  done
  for h in "$sys"/holders/*; do
    [ -e "$h" ] || continue
    device_tree "$(readlink -f "$h")"
  done
}

# Refuses when the disk or anything on it is mounted (by device number in mountinfo, which
# also catches mounts made through another name), active swap, or held by a mapping/array.
# Run once now and again right after the question: desktop automounters mount a card's
# partitions as soon as it appears.
check_not_busy() {
  local name mm mnt swap holders h
  while read -r name mm; do
    mnt=$(awk -v mm="$mm" '$3 == mm { print $5; exit }' /proc/self/mountinfo)
    if [ -n "$mnt" ]; then
      refuse "$DEV is in use: /dev/$name is mounted on $mnt (unmount it first: umount /dev/$name)"
    fi
    while read -r swap _; do
      [ -b "$swap" ] || continue
      if [ "$(majmin_of "$swap")" = "$mm" ]; then
        refuse "$DEV is in use: /dev/$name is active swap (swapoff /dev/$name first)"
      fi
    done < <(tail -n +2 /proc/swaps)
  done < <(device_tree "$SYS")
  while read -r name mm; do
    holders=
    for h in "/sys/dev/block/$mm"/holders/*; do
      [ -e "$h" ] && holders="$holders ${h##*/}"
    done
    if [ -n "$holders" ]; then
      refuse "$DEV is in use: /dev/$name is held by$holders (device-mapper/RAID; deactivate it first)"
    fi
  done < <(device_tree "$SYS")
}
check_not_busy

[ "$(cat "$SYS/ro")" = 0 ] || refuse "$DEV is read-only (is the SD card's lock switch on?)"
[ -w "$DEV" ] || refuse "no permission to write $DEV (run as root, e.g. sudo make flash ...)"

# Removable: sysfs says so, or it sits on USB (card readers; many report removable=0), or it is
# an SD card in an MMC slot (sysfs device/type "SD"; internal eMMC says "MMC").
REMOVABLE=$(cat "$SYS/removable" 2>/dev/null || echo 0)
TRAN=$(lsblk -dno TRAN "$DEV" 2>/dev/null | tr -d '[:space:]' || true)
CARD_TYPE=$(cat "$SYS/device/type" 2>/dev/null || true)
if [ "$REMOVABLE" = 1 ] || [ "$TRAN" = usb ] || [ "$CARD_TYPE" = SD ]; then
  KIND="removable${TRAN:+, $TRAN}"
elif [ "$FORCE" = 1 ]; then
  KIND="NOT removable (removable=0, transport ${TRAN:-none}), allowed by FORCE=1"
else
  refuse "$DEV is not a removable disk (removable=0, transport ${TRAN:-none}); if it really is the card, run again with FORCE=1"
fi

# Sizes. sysfs counts 512-byte sectors whatever the logical block size.
DEV_BYTES=$(($(cat "$SYS/size") * 512))
[ "$DEV_BYTES" -gt 0 ] || refuse "$DEV has no medium (size 0; is the card inserted?)"

image_bytes() {
  local n
  if [ -n "$BMAP" ]; then
    n=$(sed -n 's:.*<ImageSize>[[:space:]]*\([0-9][0-9]*\)[[:space:]]*</ImageSize>.*:\1:p' "$BMAP" | head -n1)
    [ -n "$n" ] || refuse "bmap $BMAP has no ImageSize; is it a bmap file?"
  elif [ -z "$DECOMP" ]; then
    n=$(stat -L -c %s -- "$IMAGE")
  elif [ "$DECOMP" = xz ]; then
    # xz records the uncompressed size; no need to decompress.
    n=$(xz --robot --list -- "$IMAGE" | awk '$1 == "totals" { print $5 }') ||
      refuse "cannot read $IMAGE: not a valid xz file"
  else
    # gzip's own size field wraps at 4 GiB and bzip2/zstd streams may not record one: count.
    printf 'flash: measuring the decompressed size of %s (no .bmap beside it)...\n' "$IMAGE" >&2
    n=$("$DECOMP" -dc -- "$IMAGE" | wc -c) || refuse "cannot decompress $IMAGE with $DECOMP: corrupt or truncated"
  fi
  case "$n" in
    '' | *[!0-9]*) refuse "cannot determine the uncompressed size of $IMAGE" ;;
  esac
  printf '%s' "$n"
}
IMG_BYTES=$(image_bytes)
if [ "$IMG_BYTES" -gt "$DEV_BYTES" ]; then
  refuse "image $IMAGE is larger than $DEV: it needs $IMG_BYTES bytes ($(human "$IMG_BYTES")), the device holds $DEV_BYTES ($(human "$DEV_BYTES"))"
fi

# ---------------------------------------------------------------------------------------------
# Show what is about to happen, then ask.
MODEL=$(lsblk -dno MODEL "$DEV" 2>/dev/null | sed 's/[[:space:]]*$//' || true)
VENDOR=$(lsblk -dno VENDOR "$DEV" 2>/dev/null | sed 's/[[:space:]]*$//' || true)
[ -n "$MODEL" ] || MODEL=$(cat "$SYS/device/model" "$SYS/device/name" 2>/dev/null | head -n1 | sed 's/[[:space:]]*$//' || true)
[ -n "$VENDOR" ] || VENDOR=$(sed 's/[[:space:]]*$//' "$SYS/device/vendor" 2>/dev/null || true)
DESCR="${VENDOR:+$VENDOR }${MODEL:-(no model reported)}"
if [ -r "$SYS/loop/backing_file" ]; then
  DESCR="$DESCR, loop device over $(cat "$SYS/loop/backing_file")"
fi

if command -v bmaptool >/dev/null 2>&1; then
  TOOL=bmaptool
  if [ -n "$BMAP" ]; then BMAP_ARGS=(--bmap "$BMAP"); else BMAP_ARGS=(--nobmap); fi
  TOOL_LINE="bmaptool copy ${BMAP_ARGS[*]} $IMAGE $DEV"
else
  TOOL="dd"
  if [ -n "$DECOMP" ]; then
    TOOL_LINE="$DECOMP -dc $IMAGE | dd of=$DEV bs=4M iflag=fullblock conv=fsync,nocreat status=progress (bmaptool not on PATH)"
  else
    TOOL_LINE="dd if=$IMAGE of=$DEV bs=4M conv=fsync,nocreat status=progress (bmaptool not on PATH)"
  fi
fi

if [ "$DEVICE_ARG" = "$DEV" ]; then info "device: $DEV"; else info "device: $DEV (from $DEVICE_ARG)"; fi
info "size:   $(human "$DEV_BYTES") ($DEV_BYTES bytes), $KIND"
info "model:  $DESCR"
if [ -z "$BMAP" ]; then
  IMG_NOTE="no bmap"
elif [ "$TOOL" = bmaptool ]; then
  IMG_NOTE="bmap $BMAP"
else
  IMG_NOTE="size from bmap $BMAP; dd writes every block"
fi
info "image:  $IMAGE ($(human "$IMG_BYTES") uncompressed, $IMG_NOTE)"
info "tool:   $TOOL_LINE"

if [ "$YES" = 1 ]; then
  info "YES=1: not asking"
else
  printf 'Type yes to overwrite %s: ' "$DEV"
  answer=
  IFS= read -r answer || true
  if [ "$answer" != yes ]; then
    info "aborted, nothing written"
    exit "$EXIT_ABORTED"
  fi
fi

# The card may have been automounted while we waited for the answer.
check_not_busy

# ---------------------------------------------------------------------------------------------
# Write. nocreat: if the card vanished since the checks, dd must fail rather than create a
# regular file named /dev/sdX. bmaptool opens the device O_EXCL, which the kernel refuses
# while anything has it mounted.
info "writing with $TOOL"
status=0
if [ "$TOOL" = bmaptool ]; then
  bmaptool copy "${BMAP_ARGS[@]}" "$IMAGE" "$DEV" || status=$?
elif [ -n "$DECOMP" ]; then
  # iflag=fullblock: a pipe returns short reads, and dd would otherwise write short blocks.
  "$DECOMP" -dc -- "$IMAGE" | dd of="$DEV" bs=4M iflag=fullblock conv=fsync,nocreat status=progress || status=$?
else
  dd if="$IMAGE" of="$DEV" bs=4M conv=fsync,nocreat status=progress || status=$?
fi
# Flush everything before telling anyone the card can be pulled.
sync
if [ "$status" != 0 ]; then
  printf 'flash: writing failed (%s exited with %s); the card is in an unknown state\n' "$TOOL" "$status" >&2
  exit 1
fi
info "done: wrote $IMAGE to $DEV with $TOOL; the card can be removed"
