#!/bin/sh
# Build the on-target check binaries for ESP8266 (Xtensa lx106), hil-test/src/bin/*.rs (one per
# area), and run each in QEMU's `sim` machine with semihosting; then the total over all of them,
# `N passed, M failed` (a binary that ended without its own count adds one failure). Exit status =
# the first failing binary's QEMU exit status, 0 when all passed (1: some check failed, 101: panic,
# 134: abort/trap, 0x81..0x87: CPU exception vector, 124: timeout, 2: the host side,
# tools/mtls-harness, failed).
#
# Usage: firmware/run-qemu-tests.sh [--release] [extra cargo args for the hil-test package...]
# Env:   QEMU_TIMEOUT (seconds per binary, default 300), CARGO (default /usr/bin/cargo)
# Each run goes through tools/mtls-harness, which starts the brokers the mTLS checks talk to.
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

"$CARGO" build -p tmc-hil-test --bins "$@"
# The host side of the mTLS and console checks: the project's own CA tool and provisioning tool.
# From the workspace root: the firmware's .cargo/config.toml would make it an Xtensa build.
(cd "$here/.." && "$CARGO" build --quiet --locked -p tmc-pki -p tmc-provision --target-dir "$here/target/host")

out=$(mktemp "${TMPDIR:-/tmp}/tmc-hil-test.XXXXXX")
trap 'rm -f "$out" "$out.status"' EXIT
status=0
passed=0
failed=0
for src in "$here"/hil-test/src/bin/*.rs; do
    bin=$(basename "$src" .rs)
    elf="$here/target/xtensa-esp8266-none-elf/$profile/$bin"
    echo "run-qemu-tests: running $elf"
    # -icount shift=0: one instruction per virtual nanosecond, so CCOUNT advances with the instructions
    # run (25 per count on this core: the checks convert and report instruction counts) and stands still
    # while a semihosting call waits for the host.
    {
        bin_status=0
        "$here/tools/mtls-harness" --timeout "${QEMU_TIMEOUT:-300}" --tmc-pki "$here/target/host/debug/tmc-pki" \
            --tmc-provision "$here/target/host/debug/tmc-provision" -- \
            qemu-system-xtensa \
            -M sim -cpu lx106 -semihosting -nographic -monitor none -icount shift=0 \
            -device loader,file="$elf",cpu-num=0 || bin_status=$?
        echo "$bin_status" >"$out.status"
    } | tee "$out"
    bin_status=$(cat "$out.status")
    echo "run-qemu-tests: $bin: qemu exit status $bin_status"
    counts=$(sed -n "s/^hil-test $bin: \([0-9]*\) passed, \([0-9]*\) failed\$/\1 \2/p" "$out")
    if [ -n "$counts" ]; then
        passed=$((passed + ${counts% *}))
        failed=$((failed + ${counts#* }))
    else
        echo "run-qemu-tests: $bin ended without its count (counted as one failure)"
        failed=$((failed + 1))
    fi
    if [ "$status" -eq 0 ] && [ "$bin_status" -ne 0 ]; then
        status=$bin_status
    fi
done
echo "run-qemu-tests: exit status $status"
echo "$passed passed, $failed failed"
exit "$status"
