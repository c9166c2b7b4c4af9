#!/bin/sh
# Release build for the real ESP8266, flash images via esptool elf2image (v1
# layout: <name>-0x00000.bin + <name>-0x10000.bin) and an IRAM/DRAM size report.
#
# Two builds, chosen by ESP8266_SDK:
# - unset: bare metal (link/esp8266.ld); the sensor image uses the UART bench
#   transport (MQTT frames printed on UART0, no Wi-Fi). Target dir
#   target/esp8266.
# - ESP8266_SDK=<dir> (Espressif ESP8266_NONOS_SDK v3.0.6 checkout): feature
#   nonos-sdk, links the SDK's libraries (link/sdk.ld), Wi-Fi station +
#   TCP + mutual TLS (key in the ATECC, identity from its flash sector). Only
#   the `sensor` binary. Target dir target/esp8266-sdk.
#
# Usage: firmware/build-esp8266.sh [bin-name]   (default: `sensor` and every
#        on-target check binary of hil-test/ (for their size on the real map;
#        they are meant for QEMU), or `sensor` with ESP8266_SDK; `BIN=sensor`
#        works too)
# Env:   ESP8266_SDK (see above), ESPTOOL (default
#        ~/.cache/tmc/esptool-venv/bin/esptool, installed by
#        make deps), CARGO (default /usr/bin/cargo),
#        FW_TARGET_DIR (overrides the target dir; tools/check-sdk-link uses it)
set -eu

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"
# The check binaries (package tmc-hil-test, one per hil-test/src/bin/*.rs).
hil_bins=""
for src in hil-test/src/bin/*.rs; do
    hil_bins="$hil_bins $(basename "$src" .rs)"
done
bins=${1:-${BIN:-sensor $hil_bins}}

CARGO=${CARGO:-/usr/bin/cargo}
export RUSTC="${RUSTC:-/usr/bin/rustc}"
export RUSTC_BOOTSTRAP=1
PATH="/usr/bin:$PATH"
export PATH
ESPTOOL=${ESPTOOL:-$HOME/.cache/tmc/esptool-venv/bin/esptool}

# Keep in sync with build.rs (SDK_VERSION, SDK_FILES, SDK_LIBS): checked here
# too so that a bad SDK directory is one line, not a cargo build-script dump.
sdk_version="ESP8266_NONOS_SDK v3.0.6"
sdk_files="ld/eagle.rom.addr.v6.ld ld/eagle.app.v6.ld include/version.h bin/esp_init_data_default_v08.bin"
for lib in main net80211 wpa lwip pp phy crypto hal driver c gcc; do
    sdk_files="$sdk_files lib/lib$lib.a"
done

features=esp8266
# The SDK image's extra rustflags (sdk-build.toml: smaller .rodata, which stays in DRAM).
sdk_config=""
tdir=${FW_TARGET_DIR:-$here/target/esp8266}
elf2image_args=""
sdk=${ESP8266_SDK:-}
if [ -n "$sdk" ]; then
    if [ ! -d "$sdk" ]; then
        echo "build-esp8266: ESP8266_SDK=$sdk is not a directory (expected $sdk_version; see firmware/README.md)" >&2
        exit 2
    fi
    sdk=$(cd "$sdk" && pwd)
    for f in $sdk_files; do
        if [ ! -f "$sdk/$f" ]; then
            echo "build-esp8266: ESP8266_SDK: missing $sdk/$f (expected $sdk_version; see firmware/README.md)" >&2
            exit 2
        fi
    done
    bins=${1:-${BIN:-sensor}}
    for bin in $bins; do
        if [ "$bin" != sensor ]; then
            echo "build-esp8266: with ESP8266_SDK only the sensor binary is built (not $bin)" >&2
            exit 2
        fi
    done
    export ESP8266_SDK="$sdk"
    features=esp8266,nonos-sdk
    sdk_config="--config $here/sdk-build.toml"
    tdir=${FW_TARGET_DIR:-$here/target/esp8266-sdk}
    # user_pre_init registers the 4 MB (map 4) partition table.
    elf2image_args="--flash-size 4MB"
    echo "build-esp8266: NONOS SDK build ($sdk): sensor uses Wi-Fi station + mutual TLS (ATECC key, identity sector 0x3FA000) to broker_host:broker_port from sensor.toml"
else
    echo "build-esp8266: no ESP8266_SDK: the sensor image uses the UART bench transport (MQTT frames printed on UART0, no Wi-Fi); for Wi-Fi + TCP: make firmware ESP8266_SDK=<$sdk_version checkout> (firmware/README.md)"
fi

if ! { [ -x "$ESPTOOL" ] || command -v "$ESPTOOL" >/dev/null 2>&1; }; then
    echo "build-esp8266: esptool not found ($ESPTOOL); run make deps" >&2
    exit 127
fi

for bin in $bins; do
    package=tmc-firmware
    case " $hil_bins " in *" $bin "*) package=tmc-hil-test ;; esac
    # shellcheck disable=SC2086 # empty or one option pair
    "$CARGO" build --release -p "$package" --features "$features" --target-dir "$tdir" --bin "$bin" $sdk_config
    elf="$tdir/xtensa-esp8266-none-elf/release/$bin"

    echo "== size ($elf)"
    xtensa-lx106-elf-size -A "$elf"
    if [ -n "$sdk" ]; then
        "$here/tools/size-report" "$elf" --sdk "$sdk"
    else
        "$here/tools/size-report" "$elf"
    fi

    mkdir -p "$tdir/image"
    # shellcheck disable=SC2086 # empty or one option pair
    "$ESPTOOL" --chip esp8266 elf2image $elf2image_args --output "$tdir/image/$bin-" "$elf"
    ls -l "$tdir/image/$bin-"*.bin
done
if [ -n "$sdk" ]; then
    # The SDK's PHY init data belongs at 0x3FC000 (4 MB map): named like the
    # other images so that scripts/flash-firmware.sh writes it at its address.
    cp "$sdk/bin/esp_init_data_default_v08.bin" "$tdir/image/sensor-0x3fc000.bin"
    echo "build-esp8266: flash (never tried on a chip): make flash-firmware ESP8266_SDK=$sdk PORT=/dev/ttyUSB0 ERASE=1" \
        "(the first time: erases the chip, so the SDK's RF calibration and system parameter sectors start blank)"
fi
