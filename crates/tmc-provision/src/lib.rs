//! # tmc-provision
//!
//! One image serves every board; what makes a board a **concentrator** (access point, broker, relay) or a
//! **gateway** (receiver) is put on its SD card after flashing, and installed by the board itself at first
//! boot. Nothing secret is baked into the image, and nothing secret stays on the card.
//!
//! ## On the PC: `tmc-provision write`
//!
//! ```text
//! tmc-provision write --boot /media/$USER/boot --role concentrator --site site --name relay-1 \
//!                     --board board-config/dragino-lora-hat.toml
//! ```
//!
//! reads the site directory of `tmc-pki` (CA, issued certificates, CRL, envelope key ring), checks
//! everything (board preset, site file, configuration, certificates against the CA, key permissions) and
//! builds the whole bundle in memory. Only then does it write the card; a refused run leaves the card as
//! it was. A concentrator name the site has not issued yet gets its relay certificate (and says so); a
//! name issued for another role, revoked, or with an expired certificate is refused. The CA key never
//! leaves the site directory. A card already provisioned for another name is refused without `--force`.
//!
//! ## Boot partition layout
//!
//! ```text
//! BOOT/tmc.toml                  manifest: format, role, name, and for every file its sha256 and secret flag
//! BOOT/tmc/board.toml            radio board preset
//! BOOT/tmc/keys.toml             envelope key ring                                   (secret)
//! BOOT/tmc/relay.toml            concentrator: relay configuration
//! BOOT/tmc/site.toml             concentrator: access point settings (secret if it holds the passphrase)
//! BOOT/tmc/wifi-passphrase       concentrator: if the site file names a passphrase_file (secret)
//! BOOT/tmc/ecc.ca.cert.pem       concentrator: site CA certificate
//! BOOT/tmc/ecc.NAME.cert.pem     concentrator: the relay's client certificate (CN = NAME)
//! BOOT/tmc/ecc.NAME.key.pem      concentrator: its key                               (secret)
//! BOOT/tmc/broker/               concentrator: mosquitto drop-in from tmc-pki: tmc.conf, tmc.acl,
//!                                ecc.ca.cert.pem, ecc.broker.cert.pem, ecc.broker.key.pem (secret),
//!                                ecc.ca.crl.pem
//! BOOT/tmc/receiver.toml         gateway: receiver configuration (plus, with a custom --config, the
//!                                upstream TLS files it names beside it; their key is secret)
//! ```
//!
//! The files are written to `BOOT/tmc.new/`, which then replaces `BOOT/tmc/`; the manifest is written
//! last, atomically, and everything is `fsync`ed. Secrets are created 0600 where the file system keeps
//! permissions; **FAT does not** (every file gets the mount's mode), so keep the card to yourself until its
//! first boot, which removes them.
//!
//! ## On the PC: `tmc-provision sensor-config`
//!
//! ```text
//! tmc-provision sensor-config --site site --name esp1 --out esp1.toml
//! TMC_SENSOR_CONFIG=$PWD/esp1.toml make firmware
//! ```
//!
//! writes the ESP8266 firmware's compiled-in configuration (`firmware/build.rs` format) from the same site
//! file, through the same parser, that the concentrator's access point is rendered from: `[ap]` ssid and
//! passphrase (inline or `passphrase_file`, 0600), the broker name (the first `[ap] local_names` entry
//! resolving to the AP, `mqtt.com`), port 8883, topic `/esp8266`, 5000 ms between readings (`--broker-port`,
//! `--topic`, `--interval-ms` change them), and `client_id` = `--name`, which must be the sensor's
//! certificate name (1–23 ASCII letters and digits). The file is written atomically with mode 0600 (it holds
//! the Wi-Fi passphrase, which is never printed); a raw 64-hex-digit PSK is refused (the firmware takes a
//! passphrase only).
//!
//! ## On the PC: `tmc-provision sensor-identity`
//!
//! ```text
//! tmc-provision sensor-identity --site site --name esp1 --chip sim:esp1.chip [--topic /esp8266] [--slot 0] \
//!                               [--config esp1.toml] [--new-key] [--days 825]
//! tmc-provision sensor-identity --site site --name esp1 --chip /dev/i2c-1 [--address 0x60]
//! ```
//!
//! gives a sensor its TLS identity from its secure element: the key is made inside the ATECC508A/608A
//! (GenKey) and never leaves it; the chip signs a PKCS#10 request (CN = `--name`, 1–23 ASCII letters and
//! digits, the sensor's MQTT client id) and the site CA certifies it as `tmc-pki issue --role sensor --csr`
//! does (topics `sensors/<name>/#` and `--topic`, default `/esp8266`), writing `SITE/ecc.<name>.cert.pem`.
//! `--chip sim:PATH` is a simulated chip whose non-volatile state is kept in PATH (created 0600);
//! `/dev/i2c-N` a real one on the Pi's I²C bus.
//!
//! The slot's key is created only if the slot has none: **a re-run keeps the key** and re-issues the
//! certificate (new serial and validity, as `tmc-pki renew --csr`), so re-provisioning never silently
//! changes a deployed sensor's key; `--new-key` replaces it. A name issued for another role or revoked is
//! refused before the chip is touched, and so is a site certificate for another key than the chip's
//! (another chip under that name) unless `--new-key` moves the name to this chip. With `--config FILE` (the
//! `sensor-config` file, whose `client_id` must be `--name`), `<name>.identity.toml` is written beside it:
//! slot, chip serial, public key, and the sensor and CA certificates as one-line base64 DER. It is a
//! separate file because `firmware/build.rs` refuses keys it does not know. It prints the chip serial, the
//! slot, whether the key is new, the certificate serial and expiry, and the files written. The library
//! entry points are `tmc_enroll::enroll` (any I²C bus) and `tmc_enroll::enroll_chip`.
//!
//! ## On the PC: `tmc-provision sensor-console`
//!
//! ```text
//! tmc-provision sensor-console --port /dev/ttyUSB0 --site site --name esp1 [--topic T] [--new-key] [--timeout 10]
//! ```
//!
//! does what `sensor-identity` does for a flashed node, over its UART console (115200 baud, the protocol of
//! `tmc-node-console`): the site is checked first; then `provision` is typed (again every second) until the
//! node's prompt, `csr NAME [new-key]` makes the key if the slot has none and returns the request, which the
//! site CA certifies (`tmc_enroll::SensorSite`: the same checks and `issue --csr` / `renew --csr`); `ca` and
//! `cert` send the site CA and the certificate, which the node checks and stores in its identity sector;
//! `show` must report the SHA-256 of exactly those; `exit` leaves the mode. Each step has `--timeout`
//! seconds; a timeout names the step and the last lines received, and a node's `error: ` line stops the run
//! with that line.
//!
//! ## On the Pi: `tmc-provision firstboot`
//!
//! Run as root by a oneshot unit at boot (`ConditionPathExists=/boot/tmc.toml`). Safe to run again at any
//! point, also after a crash half-way:
//!
//! 1. No `BOOT/tmc.toml`: prints "nothing to provision" and succeeds. If `/etc/tmc/provisioned.toml`
//!    records this very manifest (an earlier run finished) and none of its secrets is on the card, it
//!    prints "already provisioned" and changes nothing, so that the unit can run at every boot without
//!    undoing changes made on the Pi since (a rotated key ring); the files still on the card must match,
//!    though. Writing the card again (or removing `provisioned.toml`) makes the next boot install it again.
//! 2. The manifest is parsed strictly (unknown fields, names outside `tmc/`, keys not marked secret are
//!    refused). Every file on the card must match its sha256; a file no longer on the card is accepted only
//!    if its installed copy has that sum (a re-run after the secrets were removed). Otherwise nothing is
//!    installed.
//! 3. Files are installed (atomically, `fsync`ed, only where content, mode or owner differ), with users
//!    and groups from the image's `/etc/passwd` and `/etc/group` (owners are set only when running as root):
//!
//!    | file | installed as | mode | owner |
//!    |---|---|---|---|
//!    | directory | `/etc/tmc/` | 0750 | root:tmc |
//!    | relay.toml, receiver.toml, board.toml, site.toml, certificates | `/etc/tmc/` | 0640 | root:tmc |
//!    | keys.toml, ecc.NAME.key.pem, other secrets | `/etc/tmc/` | 0600 | tmc:tmc |
//!    | wifi-passphrase (site.toml if it holds the passphrase) | `/etc/tmc/` | 0600 | root:root (tmc-ap runs as root) |
//!    | broker/tmc.conf | `/etc/mosquitto/conf.d/tmc.conf` | 0644 | root:root |
//!    | broker/ecc.broker.key.pem | `/etc/mosquitto/tmc/` | 0600 | mosquitto:mosquitto |
//!    | other broker/ files | `/etc/mosquitto/tmc/` | 0644 | root:root |
//!
//!    The role's configuration (`relay.toml` or `receiver.toml`) comes last: its unit starts only where it
//!    exists, and then finds everything it names. The other role's configuration is removed.
//!    `/etc/mosquitto/mosquitto.conf` gets an `include_dir /etc/mosquitto/conf.d` line if it has no active
//!    one (the file is created if the image has none). On a concentrator, `/etc/hosts` gets
//!    `127.0.0.1 mqtt.com` (the relay's broker name) if no active line names it: the access point's DNS
//!    answers that name for the sensors, not for the board itself.
//! 4. Concentrator: the access point files are rendered from the installed site file and applied with
//!    tmc-ap. Gateway: access point files an earlier role left are removed.
//! 5. Units are enabled as `systemctl enable` does (links in `/etc/systemd/system/<target>.wants/`, masks
//!    removed) and the other role's disabled: concentrator `tmc-relay`, `mosquitto`, `hostapd`, `dnsmasq`;
//!    gateway `tmc-receiver`. A unit file missing from the image is an error naming it.
//! 6. The secret files are removed from the card (non-secret ones and `tmc.toml` stay).
//! 7. On a live system (`--root /` without `--offline`): `systemctl daemon-reload`, the other role's units
//!    stopped and the role's restarted, all `--no-block` (waiting for jobs from a boot-time unit can
//!    deadlock the boot).
//! 8. `/etc/tmc/provisioned.toml` (0640 root:tmc) records the manifest and the time. It is written last:
//!    a run interrupted anywhere before leaves no record, and the next run does every step again (each
//!    only changing what differs) and finishes.
//!
//! Each action is one line on stdout (installed, unchanged, removed from boot, enabled, ...); nothing
//! secret is ever printed.

pub mod boards;
mod console_link;
mod firstboot;
mod fsutil;
pub mod layout;
pub mod manifest;
mod sensor;
mod sensor_console;
mod write;

pub use boards::{Board, Boards, BoardsError, BOARDS_FILE};
pub use firstboot::{firstboot, Action, FirstbootError, FirstbootReport, Outcome};
pub use manifest::{FileEntry, Manifest, ManifestError, Role, BUNDLE_DIR, MANIFEST_FILE};
pub use sensor::{
    identity_file_beside, sensor_config, SensorConfigError, SensorConfigOptions,
    SensorConfigReport, DEFAULT_SENSOR_BROKER_PORT, DEFAULT_SENSOR_INTERVAL_MS,
    DEFAULT_SENSOR_TOPIC,
};
pub use sensor_console::{
    sensor_console, NodeKey, SensorConsoleError, SensorConsoleOptions, SensorConsoleReport,
};
pub use tmc_ap::{ServiceManager, Systemctl};
pub use write::{
    render_receiver, render_relay, write, WriteError, WriteOptions, WriteReport,
    DEFAULT_GATEWAY_ADDRESS, DEFAULT_RELAY_ADDRESS,
};
