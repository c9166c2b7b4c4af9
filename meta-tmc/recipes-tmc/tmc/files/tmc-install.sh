#!/bin/sh
# What the tmc recipe puts on the image, in one place: tmc_git.bb's do_install runs this script, and so does the
# VM image builder (scripts/vm/image.py) that boots the project under a real kernel and systemd. The users and
# groups come from the recipe's GROUPADD_PARAM/USERADD_PARAM, which the VM builder reads from the recipe too.
# scripts/test_image_install.py fails when the recipe and this script drift apart.
#
#   tmc-install.sh DESTDIR BINARIES_DIR FILES_DIR BINARY...
#
# BINARIES_DIR holds the built BINARY files, FILES_DIR this directory's units and udev rules. The image's paths
# come from the environment (the recipe passes its own): bindir, systemd_system_unitdir, udev_rules_dir,
# sysconfdir. TMC_GROUP names the group that owns /etc/tmc (default tmc; a number where the build host has no
# such group).
set -eu

if [ "$#" -lt 3 ]; then
    echo "usage: tmc-install.sh DESTDIR BINARIES_DIR FILES_DIR BINARY..." >&2
    exit 2
fi
dest=$1
binaries=$2
files=$3
shift 3

bindir=${bindir:-/usr/bin}
systemd_system_unitdir=${systemd_system_unitdir:-/usr/lib/systemd/system}
udev_rules_dir=${udev_rules_dir:-/usr/lib/udev/rules.d}
sysconfdir=${sysconfdir:-/etc}

install -d "$dest$bindir"
for b in "$@"; do
    install -m 0755 "$binaries/$b" "$dest$bindir/$b"
done

install -d "$dest$systemd_system_unitdir"
for u in tmc-relay.service tmc-receiver.service tmc-web.service tmc-firstboot.service; do
    sed -e "s,@BINDIR@,$bindir,g" "$files/$u" > "$dest$systemd_system_unitdir/$u"
    chmod 0644 "$dest$systemd_system_unitdir/$u"
done

install -d "$dest$udev_rules_dir"
install -m 0644 "$files/60-tmc.rules" "$dest$udev_rules_dir/60-tmc.rules"

# configuration and keys are provisioned per board (relay.toml / receiver.toml), never baked in
install -d -m 0750 "$dest$sysconfdir/tmc"
chown "root:${TMC_GROUP:-tmc}" "$dest$sysconfdir/tmc"
