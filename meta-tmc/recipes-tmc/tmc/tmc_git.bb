SUMMARY = "TMC secure LoRa sensor network: relay, receiver, web page, AP helper, site PKI"
SUMMARY:${PN}-relay = "TMC relay service (MQTT readings to LoRa tokens)"
SUMMARY:${PN}-receiver = "TMC receiver service (LoRa tokens to readings)"
SUMMARY:${PN}-web = "TMC gateway web page (the receiver's readings, read-only)"
SUMMARY:${PN}-ap = "TMC access point helper (hostapd, dnsmasq, systemd-networkd)"
SUMMARY:${PN}-pki = "TMC site PKI tool"
SUMMARY:${PN}-provision = "TMC first boot: installs the board's role, site file and keys"
DESCRIPTION = "Rust workspace of TMC: tmc-relay seals sensor readings into tokens for the LoRa link, \
               tmc-receiver opens them and delivers the readings, tmc-web shows them on a read-only web \
               page, tmc-ap renders and applies the access point configuration, tmc-pki manages the site \
               PKI, tmc-provision installs a board's provisioning bundle from the boot partition at first boot."

HOMEPAGE = "https://example.invalid/tmc"
SECTION = "net"
# NVD knows no TMC; the default (the recipe name "tmc") could match other products' CVEs.
CVE_PRODUCT = "tmc-lora-sensor-network"
# Cargo.toml: license = "MIT OR Apache-2.0"
LICENSE = "MIT | Apache-2.0"
LIC_FILES_CHKSUM = "file://LICENSE-MIT;md5=28955a4a8f5870cba2f6a0c37fdbeb38 \
                    file://LICENSE-APACHE;md5=3b83ef96387f14655fc854ddc3c6bd57"

PV = "0.1.0+git"

# The project's repository at a pinned commit; TMC_GIT_BRANCH and SRCREV can be overridden (local.conf:
# SRCREV:pn-tmc = "...", or a bbappend). Another clone: a bbappend replacing the git:// entry.
# The local checkout instead: externalsrc, see meta-tmc/README.md.
TMC_GIT_BRANCH ?= "main"
SRC_URI = "git://example.invalid/tmc.git;protocol=https;branch=${TMC_GIT_BRANCH} \
           file://tmc-relay.service \
           file://tmc-receiver.service \
           file://tmc-web.service \
           file://tmc-firstboot.service \
           file://60-tmc.rules \
           file://tmc-install.sh \
           "
SRCREV = "3b9c6ebccf07ab5bd597bb6fd453f148a2b09ddb"

# every registry package of Cargo.lock (crate:// entries): `make crates-inc` writes it, `make test` checks it
require ${BPN}-crates.inc

# Not cargo-update-recipe-crates: its `bitbake -c update_crates` would rewrite tmc-crates.inc in another order.
inherit cargo systemd useradd

# Build only what goes on the image (not tmc-sensor-sim / tmc-demo).
TMC_BINARIES = "tmc-relay tmc-receiver tmc-web tmc-ap tmc-pki tmc-provision"
# Without the default features: the only one is `sim` (tmc-relay, tmc-receiver), the simulated air for the demo
# and the tests, which a board never uses; leaving it out saves about 45 KB per service (README, "Binary
# size"). Such a binary given `[radio] sim` refuses it, naming the feature. The VM test builds with it.
TMC_FEATURE_FLAGS = "--no-default-features"
CARGO_BUILD_FLAGS:append = " ${TMC_FEATURE_FLAGS} ${@' '.join('-p ' + b for b in d.getVar('TMC_BINARIES').split())}"
# The workspace's release profile (opt-level "s", LTO) keeps each service under 5 MB stripped (README, "Binary
# size"). It strips; let OE split debug symbols and strip instead.
export CARGO_PROFILE_RELEASE_STRIP = "false"

# What goes on the image is listed once, in tmc-install.sh: the VM image builder (make vm-test) installs with it too.
do_install() {
    bindir=${bindir} systemd_system_unitdir=${systemd_system_unitdir} \
    udev_rules_dir=${nonarch_base_libdir}/udev/rules.d sysconfdir=${sysconfdir} \
        sh ${UNPACKDIR}/tmc-install.sh ${D} ${B}/target/${CARGO_TARGET_SUBDIR} ${UNPACKDIR} ${TMC_BINARIES}
}

PACKAGE_BEFORE_PN = "${PN}-relay ${PN}-receiver ${PN}-web ${PN}-ap ${PN}-pki ${PN}-provision"

# ${PN} (default FILES): the tmc user and groups, the udev rules, /etc/tmc; both services need it
FILES:${PN}-relay += "${bindir}/tmc-relay ${systemd_system_unitdir}/tmc-relay.service"
FILES:${PN}-receiver += "${bindir}/tmc-receiver ${systemd_system_unitdir}/tmc-receiver.service"
FILES:${PN}-web += "${bindir}/tmc-web ${systemd_system_unitdir}/tmc-web.service"
FILES:${PN}-ap += "${bindir}/tmc-ap"
FILES:${PN}-pki += "${bindir}/tmc-pki"
FILES:${PN}-provision += "${bindir}/tmc-provision ${systemd_system_unitdir}/tmc-firstboot.service"

RDEPENDS:${PN}-relay = "${PN}"
RDEPENDS:${PN}-receiver = "${PN}"
# group tmc (its unit's SupplementaryGroups) reads /etc/tmc and the receiver's state directory
RDEPENDS:${PN}-web = "${PN}"
RDEPENDS:${PN}-ap = "dnsmasq hostapd"
# it installs into /etc/tmc (the tmc user) and applies the access point on concentrators (the tmc-ap library)
RDEPENDS:${PN}-provision = "${PN}"

SYSTEMD_PACKAGES = "${PN}-relay ${PN}-receiver ${PN}-web ${PN}-provision"
SYSTEMD_SERVICE:${PN}-relay = "tmc-relay.service"
SYSTEMD_SERVICE:${PN}-receiver = "tmc-receiver.service"
SYSTEMD_SERVICE:${PN}-web = "tmc-web.service"
SYSTEMD_SERVICE:${PN}-provision = "tmc-firstboot.service"
# One image serves both roles: first boot enables the board's role units (and the broker, access point and
# DHCP/DNS on a concentrator; tmc-web on a gateway, where it serves only if receiver.toml has [web]). Each unit
# also refuses to start without its configuration (ConditionPathExists).
SYSTEMD_AUTO_ENABLE:${PN}-relay = "disable"
SYSTEMD_AUTO_ENABLE:${PN}-receiver = "disable"
SYSTEMD_AUTO_ENABLE:${PN}-web = "disable"
SYSTEMD_AUTO_ENABLE:${PN}-provision = "enable"

USERADD_PACKAGES = "${PN}"
GROUPADD_PARAM:${PN} = "--system spi; --system gpio; --system i2c"
USERADD_PARAM:${PN} = "--system --user-group --home-dir ${localstatedir}/lib/tmc --no-create-home \
                       --shell /sbin/nologin --groups spi,gpio,i2c tmc"
