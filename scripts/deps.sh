#!/usr/bin/env bash
# Installs everything the Makefile targets need on Debian 12, idempotently:
# a second run finds everything present and changes nothing.
#
#   scripts/deps.sh            native build + MSRV toolchain + aarch64 cross toolchain + qemu,
#                              the layer checks (oelint-adv in a virtualenv, shellcheck), the flash tests and
#                              the ESP8266 firmware (xtensa-lx106 binutils/gcc, Rust library source for build-std,
#                              qemu-system-xtensa, esptool in a virtualenv)
#
# Native builds keep the rustup toolchain (stable). The aarch64 build uses Debian's
# rustc-web/cargo-web (they ship the aarch64 std as a package, which rustup cannot reach here).
set -euo pipefail

MSRV_TOOLCHAIN="${MSRV_TOOLCHAIN:-1.94.1}"
APT_PACKAGES=(
  build-essential pkg-config ca-certificates
  rustc-web cargo-web libstd-rust-web-dev:arm64
  gcc-aarch64-linux-gnu libc6-dev-arm64-cross
  libc6:arm64            # what qemu-aarch64-static runs aarch64 test binaries against (see Makefile)
  qemu-user-static
  dnsmasq-base hostapd busybox dnsutils iproute2 nftables   # tmc-ap: real daemons in its checks and netns tests
  mosquitto openssl      # the real broker the PKI and data-path tests start on 127.0.0.1; openssl s_client in TLS tests
  procps                 # kill(1): the tests and the demo stop the processes they start by pid (SIGTERM/SIGKILL)
  python3 python3-venv shellcheck   # make layer-check: oelint-adv (PyPI, in a virtualenv), shellcheck
  prometheus             # promtool check metrics: the services' [metrics] scrapes linted (TMC_REQUIRE_PROMTOOL)
  chromium               # tmc-web: its page loaded in headless Chromium (crates/tmc-web/tests/browser.rs)
  systemd                # systemd-analyze verify on the shipped units (tmc-demo tests/systemd.rs)
  bmap-tools bzip2 gzip xz-utils zstd fdisk e2fsprogs util-linux mount gawk   # make flash and its tests (loop devices)
  gcc-xtensa-lx106 binutils-xtensa-lx106   # firmware/: assembles and links the lx106 code (rustc emits assembly)
  rust-web-src           # firmware/: the core/alloc source that rustc-web's -Z build-std compiles for the lx106
  qemu-system-misc       # firmware/: qemu-system-xtensa runs the on-target checks on the lx106 core
  debootstrap qemu-system-arm qemu-system-x86 dosfstools mtools   # make vm-test / make vm: rootfs, VMs, FAT boot partition
)
# Python tools, pinned, in virtualenvs outside the repository so `cargo clean` keeps them:
# oelint-adv and kas (scripts/requirements-lint.txt), esptool (scripts/requirements-firmware.txt).
TMC_CACHE="${XDG_CACHE_HOME:-$HOME/.cache}/tmc"
OELINT_VENV="${OELINT_VENV:-$TMC_CACHE/oelint-venv}"
ESPTOOL_VENV="${ESPTOOL_VENV:-$TMC_CACHE/esptool-venv}"
SCRIPTS_DIR="$(dirname "$0")"

log() { printf 'deps: %s\n' "$*"; }

as_root() {
  if [ "$(id -u)" -eq 0 ]; then "$@"; else sudo "$@"; fi
}

ensure_arm64_arch() {
  if ! dpkg --print-foreign-architectures | grep -qx arm64; then
    log "adding dpkg architecture arm64"
    as_root dpkg --add-architecture arm64
    APT_NEEDS_UPDATE=1
  fi
}

missing_apt_packages() {
  local pkg
  for pkg in "${APT_PACKAGES[@]}"; do
    if ! dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q 'install ok installed'; then
      printf '%s\n' "$pkg"
    fi
  done
}

ensure_apt_packages() {
  local missing
  missing=$(missing_apt_packages)
  if [ -z "$missing" ] && [ "${APT_NEEDS_UPDATE:-0}" = 0 ]; then
    log "Debian packages present"
    return
  fi
  if [ -n "$missing" ]; then
    log "installing: ${missing//$'\n'/ }"
    as_root apt-get update -q
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive as_root apt-get install -y -q --no-install-recommends $missing
  fi
}

ensure_rustup_toolchains() {
  if ! command -v rustup >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/rustup" ]; then
      export PATH="$HOME/.cargo/bin:$PATH"
    else
      echo "deps: rustup not found: install the stable Rust toolchain with rustup first" >&2
      exit 1
    fi
  fi
  if ! rustup component list --installed --toolchain stable 2>/dev/null | grep -q '^clippy'; then
    rustup component add --toolchain stable clippy rustfmt
  fi
  if ! rustup component list --installed --toolchain stable 2>/dev/null | grep -q '^rustfmt'; then
    rustup component add --toolchain stable rustfmt
  fi
  if ! rustup toolchain list | grep -q "^${MSRV_TOOLCHAIN}-"; then
    log "installing Rust ${MSRV_TOOLCHAIN} (the MSRV: Yocto 6.0's Rust)"
    rustup toolchain install "$MSRV_TOOLCHAIN" --profile minimal
  else
    log "Rust ${MSRV_TOOLCHAIN} present"
  fi
}

# ensure_venv DIR REQUIREMENTS TOOL: reinstalls only when the pinned list changed (its copy in the
# virtualenv differs) or the tool is missing.
ensure_venv() {
  local venv="$1" requirements="$2" tool="$3"
  local copy
  copy="$venv/$(basename "$requirements")"
  if [ -x "$venv/bin/$tool" ] && cmp -s "$requirements" "$copy"; then
    log "$tool present ($venv)"
    return
  fi
  log "installing $tool into $venv"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --disable-pip-version-check -r "$requirements"
  cp "$requirements" "$copy"
}

ensure_arm64_arch
ensure_apt_packages
ensure_rustup_toolchains
ensure_venv "$OELINT_VENV" "$SCRIPTS_DIR/requirements-lint.txt" oelint-adv
ensure_venv "$ESPTOOL_VENV" "$SCRIPTS_DIR/requirements-firmware.txt" esptool
log "ok"
