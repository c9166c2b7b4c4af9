//! The `[mqtt]` table of a service whose client key may be in an ATECC508A/608A: [`MqttConfig`].
//!
//! A separate type next to [`BrokerConfig`] (rather than more fields in it) because other crates build
//! `BrokerConfig` with struct literals; the table is parsed into a `BrokerConfig` plus an optional
//! [`ChipKeyConfig`] and checked while it is parsed, so a bad combination is a config-load error.

use std::path::PathBuf;

use serde::{Deserialize, Serialize};

use super::BrokerConfig;

/// The key slot used when `key_slot` is not given: slot 0, the one Microchip's own configurations (and the
/// site's provisioning) keep the device's permanent P-256 private key in.
pub const DEFAULT_KEY_SLOT: u8 = 0;

/// The chip's factory 7-bit I²C address.
pub const DEFAULT_ATECC_ADDRESS: u8 = 0x60;

/// Highest ATECC key slot.
const MAX_SLOT: u8 = 15;

/// Where the client's private key is when a secure element holds it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChipKeyConfig {
    /// The I²C bus device, e.g. `/dev/i2c-1`.
    pub device: PathBuf,
    /// Key slot (0–15) holding the P-256 private key.
    pub slot: u8,
    /// 7-bit I²C address of the chip.
    pub address: u8,
}

/// A broker connection whose client key is a file ([`BrokerConfig::key`]) or in a chip (`chip`).
///
/// With `chip` set, `broker.key` is `None` and `broker.cert` is the certificate issued for the chip's key.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(try_from = "MqttTable", into = "MqttTable")]
pub struct MqttConfig {
    pub broker: BrokerConfig,
    pub chip: Option<ChipKeyConfig>,
}

impl From<BrokerConfig> for MqttConfig {
    fn from(broker: BrokerConfig) -> Self {
        MqttConfig { broker, chip: None }
    }
}

/// The TOML form: `BrokerConfig`'s fields and the chip's, side by side.
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct MqttTable {
    host: String,
    #[serde(default = "super::default_port")]
    port: u16,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    ca: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    cert: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_atecc: Option<PathBuf>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key_slot: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    atecc_address: Option<u8>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    client_id: Option<String>,
    #[serde(default = "super::default_keep_alive")]
    keep_alive: u16,
}

impl From<MqttConfig> for MqttTable {
    fn from(c: MqttConfig) -> Self {
        let b = c.broker;
        let (key_atecc, key_slot, atecc_address) = match c.chip {
            Some(chip) => (Some(chip.device), Some(chip.slot), Some(chip.address)),
            None => (None, None, None),
        };
        MqttTable {
            host: b.host,
            port: b.port,
            ca: b.ca,
            cert: b.cert,
            key: b.key,
            key_atecc,
            key_slot,
            atecc_address,
            client_id: b.client_id,
            keep_alive: b.keep_alive,
        }
    }
}

impl TryFrom<MqttTable> for MqttConfig {
    type Error = String;

    fn try_from(t: MqttTable) -> Result<Self, String> {
        let chip = match t.key_atecc {
            None => {
                for (name, set) in [
                    ("key_slot", t.key_slot.is_some()),
                    ("atecc_address", t.atecc_address.is_some()),
                ] {
                    if set {
                        return Err(format!(
                            "`{name}` is for a key in an ATECC chip: it needs `key_atecc`"
                        ));
                    }
                }
                None
            }
            Some(device) => {
                let chip = ChipKeyConfig {
                    device,
                    slot: t.key_slot.unwrap_or(DEFAULT_KEY_SLOT),
                    address: t.atecc_address.unwrap_or(DEFAULT_ATECC_ADDRESS),
                };
                check_chip(&chip, t.key.is_some(), t.cert.is_some(), t.ca.is_some())?;
                Some(chip)
            }
        };
        Ok(MqttConfig {
            broker: BrokerConfig {
                host: t.host,
                port: t.port,
                ca: t.ca,
                cert: t.cert,
                key: t.key,
                client_id: t.client_id,
                keep_alive: t.keep_alive,
            },
            chip,
        })
    }
}

fn check_chip(chip: &ChipKeyConfig, key: bool, cert: bool, ca: bool) -> Result<(), String> {
    if key {
        return Err(
            "`key` and `key_atecc` exclude each other: the client key is either a file or in the ATECC chip"
                .into(),
        );
    }
    // A relative device path would depend on the working directory, and is never what was meant.
    if !chip.device.is_absolute() {
        return Err(format!(
            "`key_atecc` = {:?}: give the I2C bus device's absolute path, e.g. /dev/i2c-1",
            chip.device.display().to_string()
        ));
    }
    if chip.slot > MAX_SLOT {
        return Err(format!(
            "`key_slot` = {}: the ATECC's key slots are 0–{MAX_SLOT}",
            chip.slot
        ));
    }
    // 0x00–0x07 and 0x78–0x7F are reserved I²C addresses (general call, 10-bit, …).
    if !(0x08..=0x77).contains(&chip.address) {
        return Err(format!(
            "`atecc_address` = {:#04x}: not a 7-bit I2C device address (0x08–0x77)",
            chip.address
        ));
    }
    if !cert {
        return Err(
            "`key_atecc` needs `cert`: the certificate the site CA issued for the chip's CSR"
                .into(),
        );
    }
    if !ca {
        return Err("`key_atecc` needs `ca`: mutual TLS is TLS".into());
    }
    Ok(())
}

impl MqttConfig {
    /// Checks a value built in code the way parsing checks a table.
    pub fn check(&self) -> Result<(), String> {
        match &self.chip {
            None => Ok(()),
            Some(chip) => check_chip(
                chip,
                self.broker.key.is_some(),
                self.broker.cert.is_some(),
                self.broker.ca.is_some(),
            ),
        }
    }

    /// `host:port`, for logs.
    pub fn address(&self) -> String {
        self.broker.address()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const BASE: &str = "host = \"mqtt.com\"\nca = \"ca.pem\"\ncert = \"c.pem\"\n";

    fn parse(text: &str) -> Result<MqttConfig, String> {
        toml::from_str(text).map_err(|e| e.to_string())
    }

    #[test]
    fn key_file_form_is_a_broker_config() {
        let c = parse(&format!("{BASE}key = \"k.pem\"")).unwrap();
        assert_eq!(c.chip, None);
        assert_eq!(c.broker.key, Some(PathBuf::from("k.pem")));
        assert_eq!((c.broker.port, c.broker.keep_alive), (8883, 30));
        let err = parse("host = \"x\"\nprot = 1").unwrap_err();
        assert!(err.contains("unknown field `prot`"), "{err}");
    }

    #[test]
    fn chip_form_and_defaults() {
        let c = parse(&format!("{BASE}key_atecc = \"/dev/i2c-1\"")).unwrap();
        assert_eq!(
            c.chip,
            Some(ChipKeyConfig {
                device: "/dev/i2c-1".into(),
                slot: DEFAULT_KEY_SLOT,
                address: 0x60
            })
        );
        assert_eq!(c.broker.key, None);
        let c = parse(&format!(
            "{BASE}key_atecc = \"/dev/i2c-3\"\nkey_slot = 2\natecc_address = 0x35"
        ))
        .unwrap();
        let chip = c.chip.unwrap();
        assert_eq!((chip.slot, chip.address), (2, 0x35));
    }

    #[test]
    fn chip_errors_name_the_settings() {
        for (extra, want) in [
            (
                "key = \"k.pem\"\nkey_atecc = \"/dev/i2c-1\"",
                "`key` and `key_atecc` exclude each other",
            ),
            (
                "key = \"k.pem\"\nkey_slot = 1",
                "`key_slot` is for a key in an ATECC chip",
            ),
            (
                "atecc_address = 0x60",
                "`atecc_address` is for a key in an ATECC chip",
            ),
            (
                "key_atecc = \"i2c-1\"",
                "`key_atecc` = \"i2c-1\": give the I2C bus device's absolute path",
            ),
            (
                "key_atecc = \"/dev/i2c-1\"\nkey_slot = 16",
                "`key_slot` = 16",
            ),
            (
                "key_atecc = \"/dev/i2c-1\"\natecc_address = 0x78",
                "`atecc_address` = 0x78",
            ),
            (
                "key_atecc = \"/dev/i2c-1\"\natecc_address = 0xc0",
                "atecc_address",
            ),
        ] {
            let err = parse(&format!("{BASE}{extra}")).unwrap_err();
            assert!(err.contains(want), "{extra}: {err}");
        }
        let err = parse("host = \"x\"\nca = \"ca.pem\"\nkey_atecc = \"/dev/i2c-1\"").unwrap_err();
        assert!(err.contains("`key_atecc` needs `cert`"), "{err}");
        let err = parse("host = \"x\"\ncert = \"c.pem\"\nkey_atecc = \"/dev/i2c-1\"").unwrap_err();
        assert!(err.contains("`key_atecc` needs `ca`"), "{err}");
    }

    #[test]
    fn built_in_code_is_checked_too() {
        let mut c = MqttConfig::from(BrokerConfig::plain("127.0.0.1", 8883));
        c.broker.ca = Some("ca.pem".into());
        c.broker.cert = Some("c.pem".into());
        c.broker.key = Some("k.pem".into());
        c.chip = Some(ChipKeyConfig {
            device: "/dev/i2c-1".into(),
            slot: 0,
            address: 0x60,
        });
        let err = c.check().unwrap_err();
        assert!(err.contains("exclude each other"), "{err}");
    }

    #[test]
    fn both_forms_render_back_to_themselves() {
        for text in [
            format!("{BASE}key = \"k.pem\""),
            format!("{BASE}key_atecc = \"/dev/i2c-3\"\nkey_slot = 2\natecc_address = 0x35"),
        ] {
            let c = parse(&text).unwrap();
            let rendered = toml::to_string(&c).unwrap();
            assert_eq!(parse(&rendered).unwrap(), c, "{rendered}");
        }
    }
}
