//! Real Wi-Fi + TLS transport over Espressif's ESP8266 NONOS SDK: STUB.
//!
//! Behind cargo feature `nonos-sdk` (off by default; nothing here is linked
//! into the default builds). Every call fails with [`SdkError::NotImplemented`].
//!
//! What a real implementation needs:
//! - the NONOS SDK (v3.0.x, Apache-2.0 / Espressif licence) binary libraries:
//!   `libmain`, `libnet80211`, `libwpa`, `liblwip`, `libpp`, `libphy`,
//!   `libcrypto`, `libssl` (axTLS) or `libmbedtls`, linked by
//!   `tools/xtensa-link` with the SDK's `eagle.app.v6.ld` layout and
//!   `eagle.rom.addr.v6.ld`;
//! - the SDK owns the boot: the entry point becomes `user_init()` (plus
//!   `user_pre_init()` partition table in SDK 3.x) instead of `_start`; the
//!   main loop must become an `os_timer`/task callback (never block: the SDK
//!   runs Wi-Fi in between and its soft WDT resets after ~3 s);
//! - Wi-Fi station: `wifi_set_opmode(STATION_MODE)`, `wifi_station_set_config`
//!   with `config::SSID`/`config::PASSPHRASE`, wait for `EVENT_STAMODE_GOT_IP`;
//! - DNS `espconn_gethostbyname(config::BROKER_HOST)`, TLS
//!   `espconn_secure_ca_enable` + `espconn_secure_connect` to
//!   `config::BROKER_PORT` (8883) with the broker CA, `espconn_secure_send`,
//!   receive callback feeding a ring that `recv` drains;
//! - C-ABI `extern "C"` bindings for the above (no bindgen on this target).
use tmc_sensor_core::node::Transport;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SdkError {
    NotImplemented,
}

impl core::fmt::Display for SdkError {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        f.write_str("nonos-sdk transport not implemented")
    }
}

/// Placeholder for the SDK-backed transport.
pub struct SdkTransport;

impl Transport for SdkTransport {
    type Error = SdkError;
    fn connect(&mut self) -> Result<(), SdkError> {
        Err(SdkError::NotImplemented)
    }
    fn send(&mut self, _data: &[u8]) -> Result<(), SdkError> {
        Err(SdkError::NotImplemented)
    }
    fn recv(&mut self, _buf: &mut [u8]) -> Result<usize, SdkError> {
        Err(SdkError::NotImplemented)
    }
    fn close(&mut self) {}
}
