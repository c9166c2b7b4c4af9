//! The boot bundle, shared by the card writer ([`crate::card`], on the PC) and first boot
//! ([`crate::firstboot`](mod@crate::firstboot), on the Pi): the manifest on the boot partition, where each of
//! its files goes on the Pi, and the crash-safe file operations both sides use.
//!
//! ## Boot partition layout
//!
//! ```text
//! BOOT/tmc.toml                  manifest: format, role, name, and for every file its sha256 and secret flag
//! BOOT/tmc/board.toml            radio board preset
//! BOOT/tmc/keys.toml             envelope key ring                                   (secret)
//! BOOT/tmc/relay.toml            concentrator: relay configuration
//! BOOT/tmc/assignment.toml       concentrator: the node address and sender id the site assigned it
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

pub(crate) mod fsutil;
pub mod layout;
pub mod manifest;
