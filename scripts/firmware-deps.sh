#!/bin/sh
# Idempotent installer for the ESP8266 (Xtensa lx106) firmware toolchain.
# Debian packages: cross gcc/binutils, Rust library source for build-std,
# QEMU system emulators (qemu-system-xtensa). Optionally esptool in a venv.
set -eu

PKGS="gcc-xtensa-lx106 binutils-xtensa-lx106 rust-web-src qemu-system-misc python3-venv"

missing=""
for p in $PKGS; do
    if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
        missing="$missing $p"
    fi
done

if [ -n "$missing" ]; then
    SUDO=""
    if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
    echo "firmware-deps: installing:$missing"
    $SUDO apt-get update
    # shellcheck disable=SC2086
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y --no-install-recommends $missing
else
    echo "firmware-deps: apt packages already installed"
fi

# esptool (elf2image) in a private venv, only when asked for.
if [ "${WITH_ESPTOOL:-0}" = "1" ]; then
    VENV="${HOME}/.cache/tmc/esptool-venv"
    if [ ! -x "$VENV/bin/esptool.py" ] && [ ! -x "$VENV/bin/esptool" ]; then
        mkdir -p "$(dirname "$VENV")"
        /usr/bin/python3 -m venv "$VENV"
        "$VENV/bin/pip" install --quiet esptool
    fi
    echo "firmware-deps: esptool at $VENV/bin"
fi
