//! Connecting with the relay's `[mqtt]` table ([`MqttConfig`], parsed and checked in tmc-config), whose client
//! key may be in an ATECC508A/608A.

use rumqttc::MqttOptions;

use crate::{ClientOptions, MqttConfig, MqttConfigError, Session};

impl ClientOptions for MqttConfig {
    /// Client options, as for a [`crate::BrokerConfig`]. With a chip key this opens the I²C bus, starts the
    /// thread that owns the chip and checks that the chip's public key is the certificate's: a chip that is
    /// absent or holds another key is an error here, before any connection.
    fn options(
        &self,
        default_client_id: &str,
        session: Session,
    ) -> Result<MqttOptions, MqttConfigError> {
        let Some(chip) = &self.chip else {
            return self.broker.options(default_client_id, session);
        };
        self.check().map_err(MqttConfigError::Invalid)?;
        #[cfg(feature = "atecc")]
        {
            let key = crate::atecc::ChipKey::open_linux(chip)?;
            self.options_with_key(default_client_id, session, key)
        }
        #[cfg(not(feature = "atecc"))]
        {
            let _ = chip;
            Err(MqttConfigError::NoChipSupport)
        }
    }
}

/// Client options with the client key in `key`, a chip already opened (a simulated one in tests): `ca` and
/// `cert` as configured, `chip` is not looked at. Checks that `cert` is for `key`.
#[cfg(feature = "atecc")]
pub trait ChipKeyOptions {
    fn options_with_key(
        &self,
        default_client_id: &str,
        session: Session,
        key: crate::atecc::ChipKey,
    ) -> Result<MqttOptions, MqttConfigError>;
}

#[cfg(feature = "atecc")]
impl ChipKeyOptions for MqttConfig {
    fn options_with_key(
        &self,
        default_client_id: &str,
        session: Session,
        key: crate::atecc::ChipKey,
    ) -> Result<MqttOptions, MqttConfigError> {
        if self.broker.key.is_some() {
            return Err(MqttConfigError::Invalid(
                "`key` names a key file, but the client key is in a chip".into(),
            ));
        }
        let mut options = crate::base_options(&self.broker, default_client_id, session)?;
        options.set_transport(crate::atecc::transport(&self.broker, key)?);
        Ok(options)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{BrokerConfig, ChipKeyConfig};

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
        let err = c.options("x", Session::Clean).unwrap_err().to_string();
        assert!(err.contains("exclude each other"), "{err}");
    }

    #[cfg(not(feature = "atecc"))]
    #[test]
    fn without_the_feature_a_chip_key_is_refused() {
        const BASE: &str = "host = \"mqtt.com\"\nca = \"ca.pem\"\ncert = \"c.pem\"\n";
        let c: MqttConfig = toml::from_str(&format!("{BASE}key_atecc = \"/dev/i2c-1\"")).unwrap();
        assert!(matches!(
            c.options("x", Session::Clean),
            Err(MqttConfigError::NoChipSupport)
        ));
    }
}
