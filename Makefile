# TMC: the one entry point. `make help` lists the targets.
#
# Native builds use the rustup toolchain (stable). The aarch64 build uses Debian's rustc-web/cargo-web,
# which ship the aarch64 standard library as a Debian package; its tests run under qemu-user.
# `make deps` installs everything (idempotent) and every target that needs it calls it first.

SHELL := /bin/bash
export PATH := $(HOME)/.cargo/bin:$(PATH)

CARGO        ?= cargo
MSRV         := 1.94.1
AARCH64      := aarch64-unknown-linux-gnu
TARGET       ?= $(AARCH64)
# qemu finds the aarch64 loader and libraries in Debian's multiarch libc6:arm64 (/lib/aarch64-linux-gnu).
# Not `-L /usr/aarch64-linux-gnu`: under qemu 7.2 every thread start with that cross glibc
# (2.36-8cross1) spins forever, and the test harness starts a thread per test.
QEMU_AARCH64 := qemu-aarch64-static
CROSS        ?=

# Debian's toolchain for aarch64, in its own target directory so the two compilers never share one.
DEBIAN_CARGO := env RUSTC=/usr/bin/rustc RUSTDOC=/usr/bin/rustdoc \
	CARGO_TARGET_DIR=$(CURDIR)/target/debian \
	CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc \
	CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_RUNNER="$(QEMU_AARCH64)" \
	TMC_TEST_RUNNER="$(QEMU_AARCH64)" \
	/usr/bin/cargo
MSRV_CARGO   := env CARGO_TARGET_DIR=$(CURDIR)/target/msrv $(CARGO) +$(MSRV)

# PRUNE=1 (CI sets it) deletes a compiler's build tree once the last stage that uses it has passed: `make test`
# builds the workspace with three compilers plus the firmware, and a fresh CI machine may have only a few GB
# of disk. It deletes build output only, never a check.
PRUNE ?= 0
prune = $(if $(filter 1,$(PRUNE)),rm -rf $(1),@true)

.PHONY: help deps build test fmt fmt-check clippy test-native msrv cross test-aarch64 bench fuzz soak certs demo \
	crates-inc crates-inc-check recipe-check vm-binaries vm-test vm layer-check test-scripts image flash provision boards sensor-identity provision-sensor firmware firmware-test flash-firmware clean

help:
	@echo "make deps          install build/test dependencies on Debian 12 (idempotent)"
	@echo "make build         build the workspace (native, debug)"
	@echo "make test          layer checks, script tests, fmt check, clippy -D warnings, tests, firmware checks in QEMU, MSRV $(MSRV) build, aarch64 build + tests under qemu"
	@echo "make cross         release binaries for $(AARCH64) (Debian toolchain; CROSS=1 uses cross-rs + docker, TARGET= to pick)"
	@echo "make bench         criterion benchmarks"
	@echo "make fuzz          fuzz the token, batch, frame and MQTT parsers (cargo-fuzz, nightly), FUZZ_RUNS executions per target"
	@echo "make soak          the fault test at 10 000 readings (about 30 minutes): 0 lost, 0 duplicated; prints duration, retries, queue depth, RSS"
	@echo "make certs         create the site PKI in SITE=site (CA, broker certificate, CRL, envelope keys) if absent, and list it"
	@echo "make demo          a throwaway site on this machine: real mosquitto (mTLS), relay + receiver on the simulated air, sensors; DURATION=s to stop;"
	@echo "                   WEB=1 also the web page (tmc-web) and both services' Prometheus metrics, their addresses printed at start"
	@echo "make layer-check   meta-tmc: tmc-crates.inc in sync with Cargo.lock, oelint-adv, kas files, shellcheck"
	@echo "make image         build tmc-image with kas: MACHINE=raspberrypi4-64|raspberrypi3-64|raspberrypi5 [SOURCE=checkout|git]"
	@echo "make flash         write IMAGE=... to DEVICE=/dev/sdX (refuses mounted/system/non-removable disks; FORCE=1, YES=1)"
	@echo "make provision     BOOT=<mounted boot partition> ROLE=concentrator|gateway SITE=<site dir> NAME=<board> [BOARD=preset] [ADDRESS=node] [METRICS=1|addr:port] [WEB=1|addr:port]"
	@echo "make boards        SITE=<site dir>: the site's boards with their node addresses and sender ids"
	@echo "make sensor-identity SITE=<site dir> NAME=<sensor> CHIP=sim:<file>|/dev/i2c-N: key made in the secure element, certificate from its CSR"
	@echo "make provision-sensor PORT=/dev/ttyUSB0 SITE=<site dir> NAME=<sensor>: a flashed sensor's identity over its console (key, CSR, certificate + site CA into its flash)"
	@echo "make firmware      ESP8266 sensor firmware (ELF + flash images): [SITE=dir NAME=sensor] config from the site file, [ESP8266_SDK=dir] Wi-Fi + TCP"
	@echo "make firmware-test on-target checks on the lx106 core in QEMU, the firmware images and the SDK link check"
	@echo "make flash-firmware PORT=/dev/ttyUSB0 [ESP8266_SDK=dir ERASE=1] [BAUD=460800] [FLASH_MODE=dio]: write the firmware with esptool"
	@echo "make fmt           format the code"
	@echo "make crates-inc    regenerate meta-tmc/recipes-tmc/tmc/tmc-crates.inc from Cargo.lock (crates-inc-check: fail when out of date)"
	@echo "make recipe-check  the recipe's Rust build offline as bitbake's cargo class runs it (crates from tmc-crates.inc only, aarch64)"
	@echo "make vm-test       boot concentrator + gateway VMs (Debian rootfs, the project as the recipe installs it, provisioned FAT): first boot, AP on hwsim, sensors, LoRa, power cut"
	@echo "make vm            ROLE=concentrator|gateway: one such VM on the serial console [VM_ARCH=arm64|amd64]"

deps:
	@bash scripts/deps.sh

build: deps
	$(CARGO) build --workspace --locked

fmt:
	$(CARGO) fmt --all
	$(CARGO) fmt --all --manifest-path firmware/Cargo.toml

fmt-check: deps
	$(CARGO) fmt --all -- --check
	$(CARGO) fmt --all --manifest-path firmware/Cargo.toml -- --check

# unwrap() is denied in library and binary code, which handles outside input; tests, benches and examples use it
# to say "this must hold" (the workspace lint is allowed for those targets here, not file by file).
clippy: deps
	$(CARGO) clippy --workspace --lib --bins --locked -- -D warnings
	$(CARGO) clippy --workspace --tests --benches --examples --locked -- -D warnings -A clippy::unwrap_used

# TMC_REQUIRE_PROMTOOL, TMC_REQUIRE_CHROMIUM: deps installed promtool and chromium, so the metrics tests must
# lint with the one and the web page's tests load the page in the other, rather than skip.
test-native: deps
	TMC_REQUIRE_PROMTOOL=1 TMC_REQUIRE_CHROMIUM=1 $(CARGO) test --workspace --locked
	# the image's build of the radio opening: without the simulated air (features unify in the workspace run)
	$(CARGO) test --locked -p tmc-service --lib radio::
	$(call prune,$(CURDIR)/target/debug)

# Yocto 6.0 builds with Rust 1.94.1: everything, tests and benchmarks included, must build with it.
msrv: deps
	$(MSRV_CARGO) build --workspace --all-targets --locked
	$(call prune,$(CURDIR)/target/msrv)

test-aarch64: deps
	$(DEBIAN_CARGO) test --workspace --locked --target $(AARCH64)
	$(call prune,$(CURDIR)/target/debian)

test: layer-check test-scripts fmt-check clippy test-native firmware-test msrv cross recipe-check vm-test test-aarch64
	@echo "make test: all checks passed"

ifeq ($(CROSS),)
cross: deps
	$(DEBIAN_CARGO) build --workspace --locked --release --target $(AARCH64)
	# The ATECC driver over the Pi's i2c-dev (feature linux): nothing in the workspace enables it yet.
	$(DEBIAN_CARGO) build --locked --release --target $(AARCH64) -p tmc-atecc --features linux --example atecc-info
	@echo "binaries: target/debian/$(AARCH64)/release/ (atecc-info: examples/)"
else
cross:
	CROSS_CONFIG=$(CURDIR)/cross.toml cross build --workspace --locked --release --target $(TARGET)
	@echo "binaries: target/$(TARGET)/release/"
endif

# The recipe's Rust build as bitbake's cargo class runs it: exactly the crates tmc-crates.inc lists, vendored
# as the crate fetcher unpacks them, --frozen offline, the recipe's TMC_BINARIES for aarch64 (scripts/recipe-check.py).
recipe-check: deps
	python3 scripts/recipe-check.py
	$(call prune,$(CURDIR)/target/recipe-check)

# The image's behaviour booted: concentrator and gateway VMs (scripts/vm/vm-test.py). VM_ARCH=arm64 runs the
# Pi's architecture with the aarch64 release build (what `make cross` builds); VM_ARCH=amd64 the native one.
VM_ARCH ?= arm64
VM_BINARIES_arm64 := $(CURDIR)/target/debian/$(AARCH64)/release
VM_BINARIES_amd64 := $(CURDIR)/target/release
# what the VMs run: the recipe's binaries (with their default feature `sim`, which the recipe leaves out: the VMs'
# radios are simulated air), the node's code as simulated sensors, the air bridge
VM_PACKAGES := -p tmc-relay -p tmc-receiver -p tmc-web -p tmc-ap -p tmc-pki -p tmc-provision -p tmc-sensor-sim -p tmc-radio-sim
vm-binaries: deps
ifeq ($(VM_ARCH),arm64)
	$(DEBIAN_CARGO) build --locked --release --target $(AARCH64) $(VM_PACKAGES)
else
	$(CARGO) build --locked --release $(VM_PACKAGES)
endif
	$(CARGO) build --locked -p tmc-pki -p tmc-provision

vm-test: vm-binaries
	python3 scripts/vm/vm-test.py --arch $(VM_ARCH) --binaries $(VM_BINARIES_$(VM_ARCH)) --host-binaries $(CURDIR)/target/debug
	$(call prune,$(CURDIR)/target/vm-test)

# One VM on the serial console (root, no password; Ctrl-A X quits): ROLE=concentrator|gateway.
vm: vm-binaries
	python3 scripts/vm/vm.py --arch $(VM_ARCH) --role $(or $(ROLE),concentrator) --binaries $(VM_BINARIES_$(VM_ARCH)) --host-binaries $(CURDIR)/target/debug

bench: deps
	$(CARGO) bench --workspace --locked

# The fault test's scenario at soak scale (5 sensors x 2000 readings, about 30 minutes, not in make test); its
# figures go to stderr. The test starts the real binaries, which cargo test builds for its own crate only.
soak: deps
	$(CARGO) build --locked --bins -p tmc-relay -p tmc-receiver -p tmc-sensor-sim
	$(CARGO) test --locked -p tmc-demo --test fault -- --ignored --nocapture soak

# Issue 19's bar: 10 M executions of every target without a finding; scripts/fuzz.sh prints the figures.
FUZZ_RUNS ?= 10000000
# crate:target pairs; a fuzz crate with a `seeds` binary writes its seed corpus first.
FUZZ_TARGETS := tmc-envelope:open_packed tmc-envelope:open_text tmc-envelope:open_legacy \
	tmc-envelope:decode_batch tmc-radio:frame_parser tmc-sensor-core:mqtt_decoder
fuzz: deps
	@command -v cargo-fuzz >/dev/null || $(CARGO) install cargo-fuzz --locked
	@rustup toolchain list | grep -q '^nightly' || rustup toolchain install nightly --profile minimal
	CARGO=$(CARGO) bash scripts/fuzz.sh $(FUZZ_RUNS) $(FUZZ_TARGETS)

# The site PKI: `make certs SITE=/path INIT_ARGS="--extra-name 192.168.1.10"`; then issue with tmc-pki.
SITE ?= site
INIT_ARGS ?=
certs: deps
	$(CARGO) build --locked -p tmc-pki
	@if [ -f "$(SITE)/ecc.ca.cert.pem" ]; then echo "site $(SITE) exists (tmc-pki --site $(SITE) issue ... to add certificates)"; \
	else target/debug/tmc-pki --site "$(SITE)" init $(INIT_ARGS); fi
	@target/debug/tmc-pki --site "$(SITE)" list

# ESP8266 firmware (firmware/: its own cargo project; Debian's rustc-web and the xtensa-lx106 binutils).
# The config is compiled in: SITE=dir NAME=sensor takes it from the site file (tmc-provision sensor-config,
# written 0600 under target/firmware because it holds the Wi-Fi passphrase); without SITE, the bench
# defaults in firmware/sensor.toml. ESP8266_SDK=dir links Espressif's NONOS SDK (firmware/README.md).
# SENSOR_ARGS="--topic T --interval-ms MS --broker-port P" overrides the sensor-config defaults.
ESP8266_SDK ?=
NAME ?=
SENSOR_ARGS ?=
FIRMWARE_CONFIG = $(if $(filter command line environment,$(origin SITE)),$(CURDIR)/target/firmware/$(NAME).toml)
firmware: deps
ifneq ($(FIRMWARE_CONFIG),)
	@[ -n "$(NAME)" ] || { echo "make firmware: SITE= needs NAME=<sensor> (its certificate name, the MQTT client id)" >&2; exit 2; }
	@mkdir -p -m 0700 "$(dir $(FIRMWARE_CONFIG))"
	$(CARGO) run --quiet --locked -p tmc-provision -- sensor-config --site "$(SITE)" --name "$(NAME)" \
		--out "$(FIRMWARE_CONFIG)" $(SENSOR_ARGS)
else
	@echo "make firmware: config from firmware/sensor.toml (bench defaults; SITE=dir NAME=sensor for a site's)"
endif
	TMC_SENSOR_CONFIG="$(or $(FIRMWARE_CONFIG),$(CURDIR)/firmware/sensor.toml)" ESP8266_SDK="$(ESP8266_SDK)" \
		firmware/build-esp8266.sh sensor

# On-target checks on the lx106 core in QEMU (plain RAM, semihosting), debug and release; then the real
# memory map's images with their size report, and the NONOS SDK link check against a stand-in SDK.
firmware-test: deps
	firmware/run-qemu-tests.sh
	firmware/run-qemu-tests.sh --release
	firmware/build-esp8266.sh
	firmware/tools/check-sdk-link
	$(call prune,$(CURDIR)/firmware/target)

# The images `make firmware` wrote (with ESP8266_SDK: the SDK build's, with its PHY init data).
PORT ?=
flash-firmware: deps
	scripts/flash-firmware.sh "$(PORT)" "$(CURDIR)/firmware/target/$(if $(ESP8266_SDK),esp8266-sdk,esp8266)/image/sensor-"

# Everything runs on 127.0.0.1 and in a temporary directory that is removed at the end. WEB=1: the web page and
# the metrics too, on free ports.
DURATION ?=
WEB ?=
demo: deps
	$(CARGO) build --release --locked -p tmc-relay -p tmc-receiver -p tmc-sensor-sim -p tmc-web -p tmc-demo
	target/release/tmc-demo $(if $(DURATION),--duration $(DURATION)) $(if $(filter 1,$(WEB)),--web)

# The Yocto recipe's crate list (meta-tmc): generated from Cargo.lock, checked by `make test`.
crates-inc:
	python3 scripts/crates-inc.py

crates-inc-check:
	python3 scripts/crates-inc.py --check

# The layer without a Yocto build (CI cannot fetch the layers; meta-tmc/README.md shows the bitbake parse check).
OELINT_VENV ?= $(or $(XDG_CACHE_HOME),$(HOME)/.cache)/tmc/oelint-venv
SHELL_SCRIPTS := $(wildcard scripts/*.sh scripts/vm/*.sh scripts/vm/guest/*.sh firmware/*.sh) scripts/vm/guest/udhcpc.script \
	meta-tmc/recipes-tmc/tmc/files/tmc-install.sh firmware/tools/check-sdk-link .ci/run
layer-check: deps crates-inc-check
	$(OELINT_VENV)/bin/oelint-adv $$(find meta-tmc -name '*.bb' -o -name '*.bbappend' -o -name '*.bbclass' -o -name '*.inc' | sort)
	shellcheck $(SHELL_SCRIPTS)
	@echo "layer-check: oelint-adv and shellcheck clean, tmc-crates.inc in sync"

# The Python-tested scripts: crates-inc generator, kas files, make flash (loop devices; root).
test-scripts: deps
	$(OELINT_VENV)/bin/python -m unittest discover -s scripts -p 'test_*.py'

# Not in CI: a full Yocto build (disk, time and network: meta-tmc/README.md).
MACHINE ?= raspberrypi4-64
SOURCE ?= checkout
image:
	SOURCE=$(SOURCE) scripts/image.sh $(MACHINE)

IMAGE ?=
DEVICE ?=
flash:
	@[ -n "$(IMAGE)" ] && [ -n "$(DEVICE)" ] || { echo "usage: make flash IMAGE=tmc-image-<machine>.rootfs.wic.bz2 DEVICE=/dev/sdX [FORCE=1] [YES=1]" >&2; exit 2; }
	FORCE="$(FORCE)" YES="$(YES)" bash scripts/flash.sh "$(IMAGE)" "$(DEVICE)"

BOOT ?=
ROLE ?=
NAME ?=
BOARD ?= board-config/dragino-lora-hat.toml
# METRICS=1 / WEB=1 turn on the service's Prometheus metrics / the gateway's page (tmc-web) at their default
# loopback address; METRICS=addr:port / WEB=addr:port at that one. Unset (the default): off.
listen_arg = $(if $(2),$(if $(filter 1,$(2)),--$(1),--$(1)="$(2)"))
provision: deps
	@[ -n "$(BOOT)" ] && [ -n "$(ROLE)" ] && [ -n "$(NAME)" ] || { echo "usage: make provision BOOT=<mounted boot partition> ROLE=concentrator|gateway SITE=<site dir> NAME=<board> [BOARD=preset.toml] [ADDRESS=node] [METRICS=1|addr:port] [WEB=1|addr:port]" >&2; exit 2; }
	$(CARGO) build --locked -p tmc-provision
	target/debug/tmc-provision write --boot "$(BOOT)" --role "$(ROLE)" --site "$(SITE)" --name "$(NAME)" --board "$(BOARD)" \
		$(if $(ADDRESS),--address "$(ADDRESS)") $(call listen_arg,metrics,$(METRICS)) $(call listen_arg,web,$(WEB))

# The site's boards: node addresses and sender ids as provisioning assigned them (SITE/boards.toml).
boards: deps
	$(CARGO) build --locked -p tmc-provision
	target/debug/tmc-provision list --site "$(SITE)"

# A sensor's identity from its secure element: GenKey in the chip (CHIP=sim:FILE for a simulated chip kept in a
# 0600 file, or /dev/i2c-N), a CSR the chip signs, the site CA's certificate for it (tmc-provision sensor-identity).
# IDENTITY_ARGS="--topic T --new-key --config FILE" passes more options.
CHIP ?=
IDENTITY_ARGS ?=
sensor-identity: deps
	@[ -n "$(NAME)" ] && [ -n "$(CHIP)" ] || { echo "usage: make sensor-identity SITE=<site dir> NAME=<sensor> CHIP=sim:<file>|/dev/i2c-N [IDENTITY_ARGS=...]" >&2; exit 2; }
	$(CARGO) build --locked -p tmc-provision
	target/debug/tmc-provision sensor-identity --site "$(SITE)" --name "$(NAME)" --chip "$(CHIP)" $(IDENTITY_ARGS)

# A flashed sensor's identity over its UART console (tmc-provision sensor-console): the node makes its key in its
# ATECC and prints a CSR, the site CA certifies it (role sensor, topic /esp8266), the node stores the certificate and
# the site CA in its identity sector and `show` checks them. IDENTITY_ARGS="--new-key --timeout 20" passes more options.
provision-sensor: deps
	@[ -n "$(PORT)" ] && [ -n "$(NAME)" ] || { echo "usage: make provision-sensor PORT=/dev/ttyUSB0 SITE=<site dir> NAME=<sensor> [IDENTITY_ARGS=...]" >&2; exit 2; }
	$(CARGO) build --locked -p tmc-provision
	target/debug/tmc-provision sensor-console --port "$(PORT)" --site "$(SITE)" --name "$(NAME)" $(IDENTITY_ARGS)

clean:
	$(CARGO) clean
