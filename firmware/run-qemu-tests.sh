#!/bin/sh
# Build the on-target test binary for ESP8266 (Xtensa lx106) and run it in
# QEMU's `sim` machine with semihosting.  Exit status = QEMU's exit status
# (0: all checks passed, 1: some check failed, 101: panic, 134: abort/trap,
# 0x81..0x87: CPU exception vector, 124: timeout, 2: the host side,
# tools/mtls-harness, failed).
#
# Usage: firmware/run-qemu-tests.sh [--release] [extra cargo args...]
# Env:   QEMU_TIMEOUT (seconds, default 300), CARGO (default /usr/bin/cargo)
# The run goes through tools/mtls-harness, which starts the brokers the mTLS checks talk to.
set -eu

here=$(cd "$(dirname "$0")" && pwd)
cd "$here"

profile=debug
if [ "${1:-}" = "--release" ]; then
    profile=release
fi

# Debian's rustc-web/cargo-web (with Xtensa LLVM + rust-web-src) is required;
# a rustup toolchain earlier in PATH would shadow it.
CARGO=${CARGO:-/usr/bin/cargo}
export RUSTC="${RUSTC:-/usr/bin/rustc}"
export RUSTC_BOOTSTRAP=1
PATH="/usr/bin:$PATH"
export PATH

for tool in xtensa-lx106-elf-gcc xtensa-lx106-elf-as qemu-system-xtensa; do
    if ! command -v "$tool" >/dev/null 2>&1; then
        echo "run-qemu-tests: $tool not found; run make deps" >&2
        exit 127
    fi
done

"$CARGO" build --bin qemu-tests "$@"
# The host side of the mTLS and console checks: the project's own CA tool and provisioning tool.
# From the workspace root: the firmware's .cargo/config.toml would make it an Xtensa build.
(cd "$here/.." && "$CARGO" build --quiet --locked -p tmc-pki -p tmc-provision --target-dir "$here/target/host")

elf="$here/target/xtensa-esp8266-none-elf/$profile/qemu-tests"
echo "run-qemu-tests: running $elf"
status=0
# -icount shift=0: one instruction per virtual nanosecond, so CCOUNT advances with the instructions run
# (25 per count on this core: the checks convert and report instruction counts) and stands still while a
# semihosting call waits for the host.
"$here/tools/mtls-harness" --timeout "${QEMU_TIMEOUT:-300}" --tmc-pki "$here/target/host/debug/tmc-pki" \
    --tmc-provision "$here/target/host/debug/tmc-provision" -- \
    qemu-system-xtensa \
    -M sim -cpu lx106 -semihosting -nographic -monitor none -icount shift=0 \
    -device loader,file="$elf",cpu-num=0 || status=$?
echo "run-qemu-tests: qemu exit status $status"
exit "$status"
