SUMMARY = "TMC image: relay or receiver with broker and access point"
DESCRIPTION = "Minimal systemd image for Raspberry Pi with the TMC services, mosquitto, hostapd, \
               dnsmasq, iw and chrony. Site file, keys and role are provisioned per board, never baked in."
SECTION = "images"
LICENSE = "MIT"

inherit core-image

IMAGE_INSTALL = "packagegroup-core-boot \
                 ${CORE_IMAGE_EXTRA_INSTALL} \
                 ${MACHINE_EXTRA_RRECOMMENDS} \
                 tmc-relay \
                 tmc-receiver \
                 tmc-web \
                 tmc-ap \
                 tmc-pki \
                 tmc-provision \
                 mosquitto \
                 hostapd \
                 dnsmasq \
                 iw \
                 chrony \
                 "

IMAGE_LINGUAS = ""
IMAGE_FSTYPES = "wic.bz2 wic.bmap"

# systemd is required: the services are Type=notify with a watchdog
REQUIRED_DISTRO_FEATURES = "systemd"
inherit features_check
