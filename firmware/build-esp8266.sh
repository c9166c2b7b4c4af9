#!/bin/sh
# Release build for the real ESP8266 memory map (link/esp8266.ld), flash
# images via esptool elf2image (v1 layout: <name>-0x00000.bin + <name>-0x10000.bin)
# and an IRAM/DRAM size report.
#
# Usage: firmware/build-esp8266.sh [bin-name]   (default: both `sensor` and
#        `qemu-tests`; `BIN=sensor` in the environment works too)
# Env:   ESPTOOL (default ~/.cache/tmc/esptool-venv/bin/esptool, installed by
#        WITH_ESPTOOL=1 scripts/firmware-deps.sh), CARGO (default /usr/bin/cargo)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
bins=${1:-${BIN:-sensor qemu-tests}}

CARGO=${CARGO:-/usr/bin/cargo}
export RUSTC="${RUSTC:-/usr/bin/rustc}"
export RUSTC_BOOTSTRAP=1
PATH="/usr/bin:$PATH"
export PATH
ESPTOOL=${ESPTOOL:-$HOME/.cache/tmc/esptool-venv/bin/esptool}

if ! { [ -x "$ESPTOOL" ] || command -v "$ESPTOOL" >/dev/null 2>&1; }; then
    echo "build-esp8266: esptool not found ($ESPTOOL); run WITH_ESPTOOL=1 scripts/firmware-deps.sh" >&2
    exit 127
fi

tdir="$here/target/esp8266"
for bin in $bins; do
    "$CARGO" build --release --features esp8266 --target-dir "$tdir" --bin "$bin"
    elf="$tdir/xtensa-esp8266-none-elf/release/$bin"

    echo "== size ($elf)"
    xtensa-lx106-elf-size -A "$elf"
    "$here/tools/size-report" "$elf"

    mkdir -p "$tdir/image"
    "$ESPTOOL" --chip esp8266 elf2image --output "$tdir/image/$bin-" "$elf"
    ls -l "$tdir/image/$bin-"*.bin
done
