#!/usr/bin/env bash
# Builds tmc-image with kas: `make image MACHINE=raspberrypi4-64 [SOURCE=checkout|git]`.
#
#   SOURCE=checkout (default)  the working tree (kas overlay meta-tmc/kas/tmc-local-checkout.yml, externalsrc)
#   SOURCE=git                 the recipe's pinned SRCREV from the project's git
#   KAS_WORK_DIR               where kas clones the layers and bitbake builds (default: <repo>/yocto)
#
# A full Yocto build: it downloads the layers and every source (some GB), needs ~100 GB of disk and hours of
# CPU the first time. bitbake refuses to run as root. Not run in CI (see meta-tmc/README.md).
set -euo pipefail

MACHINES=(raspberrypi4-64 raspberrypi3-64 raspberrypi5)
KAS_VERSION=5.5
# Yocto's host packages on Debian (the Yocto Project reference manual, "Required Packages for the Build Host").
HOST_PACKAGES=(build-essential chrpath cpio debianutils diffstat file gawk gcc git iputils-ping libacl1
  liblz4-tool locales python3 python3-git python3-jinja2 python3-pexpect python3-pip python3-subunit
  python3-venv socat texinfo unzip wget xz-utils zstd)
MIN_FREE_GB=100

REPO=$(cd "$(dirname "$0")/.." && pwd)
MACHINE=${1:-raspberrypi4-64}
SOURCE=${SOURCE:-checkout}
export KAS_WORK_DIR=${KAS_WORK_DIR:-$REPO/yocto}

die() { printf 'make image: %s\n' "$*" >&2; exit 2; }

case " ${MACHINES[*]} " in
  *" $MACHINE "*) ;;
  *) die "MACHINE=$MACHINE is not supported (one of: ${MACHINES[*]})" ;;
esac
case "$SOURCE" in
  checkout|git) ;;
  *) die "SOURCE=$SOURCE: use SOURCE=checkout (the working tree) or SOURCE=git (the pinned SRCREV)" ;;
esac
[ "$(id -u)" -ne 0 ] || die "bitbake refuses to run as root: run make image as a normal user (sudo is used for apt only)"

missing=()
for pkg in "${HOST_PACKAGES[@]}"; do
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed' || missing+=("$pkg")
done
if [ "${#missing[@]}" -gt 0 ]; then
  echo "make image: installing Yocto's host packages: ${missing[*]}"
  sudo apt-get update -q
  sudo DEBIAN_FRONTEND=noninteractive apt-get install -y -q "${missing[@]}"
fi

mkdir -p "$KAS_WORK_DIR"
free_gb=$(df -P -BG "$KAS_WORK_DIR" | awk 'NR == 2 { sub("G", "", $4); print $4 }')
if [ "$free_gb" -lt "$MIN_FREE_GB" ]; then
  echo "make image: warning: $free_gb GB free in $KAS_WORK_DIR; a first build needs about $MIN_FREE_GB GB" >&2
fi

KAS=$(command -v kas || true)
if [ -z "$KAS" ]; then
  venv=${XDG_CACHE_HOME:-$HOME/.cache}/tmc/kas-$KAS_VERSION
  [ -x "$venv/bin/kas" ] || { python3 -m venv "$venv" && "$venv/bin/pip" install --quiet "kas==$KAS_VERSION"; }
  KAS=$venv/bin/kas
fi

config=meta-tmc/kas/tmc-$MACHINE.yml
if [ "$SOURCE" = checkout ]; then
  config=$config:meta-tmc/kas/tmc-local-checkout.yml
  export TMC_CHECKOUT=$REPO
fi
cd "$REPO"
echo "make image: $KAS build $config   (work dir $KAS_WORK_DIR)"
"$KAS" build "$config"
deploy=$KAS_WORK_DIR/build/tmp/deploy/images/$MACHINE
echo "make image: done: $deploy/tmc-image-$MACHINE.rootfs.wic.bz2 (+ .wic.bmap)"
echo "            next: make flash IMAGE=$deploy/tmc-image-$MACHINE.rootfs.wic.bz2 DEVICE=/dev/sdX"
