//! Sensor provisioning, run on the PC for an ESP8266 node: its compiled-in configuration from the site file
//! (`tmc-provision sensor-config`, [`config`]), and its TLS identity, a key made in its secure element and
//! certified by the site CA, either from the chip itself (`sensor-identity`, wherever the chip is wired) or
//! over a flashed node's UART console (`sensor-console`, [`console`]).
//!
//! ## `tmc-provision sensor-config`
//!
//! ```text
//! tmc-provision sensor-config --site site --name esp1 --out esp1.toml
//! TMC_SENSOR_CONFIG=$PWD/esp1.toml make firmware
//! ```
//!
//! writes the firmware's compiled-in configuration (`firmware/build.rs` format) from the site file the
//! concentrator's access point is rendered from: see [`config`].
//!
//! ## `tmc-provision sensor-identity`
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
//! ## `tmc-provision sensor-console`
//!
//! ```text
//! tmc-provision sensor-console --port /dev/ttyUSB0 --site site --name esp1 [--topic T] [--new-key] [--timeout 10]
//! ```
//!
//! does what `sensor-identity` does for a flashed node, over its UART console: see [`console`].

pub(crate) mod cli;
pub mod config;
pub mod console;
mod console_link;

pub use config::{
    identity_file_beside, sensor_config, SensorConfigError, SensorConfigOptions,
    SensorConfigReport, DEFAULT_SENSOR_BROKER_PORT, DEFAULT_SENSOR_INTERVAL_MS,
    DEFAULT_SENSOR_TOPIC,
};
pub use console::{
    sensor_console, NodeKey, SensorConsoleError, SensorConsoleOptions, SensorConsoleReport,
};
