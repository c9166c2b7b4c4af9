//! # tmc-sensor-sim
//!
//! Stands in for the ESP8266 sensor nodes on a PC by running **the node code that ships on the ESP8266**:
//! each sensor is a [`tmc_sensor_core::node::Node`] (MQTT 3.1.1, QoS 1, one reading in flight, DUP
//! retry, keep-alive, jittered reconnect back-off, a ring of 8 unsent readings) on its own std thread,
//! over the node's TLS client (`tmc_node_tls::TlsTransport` on a std TCP socket), with its private key
//! in its own simulated ATECC608A (`tmc_atecc::sim`, real P-256). `make demo` and the relay's end-to-end
//! and fault tests use it, so it is exact about which readings the broker acknowledged.
//!
//! ## Identities
//!
//! Each sensor has, in the site directory (`tmc-pki`):
//!
//! - `chips/<name>.atecc` (0600): its simulated chip's non-volatile state; the TLS key is in slot
//!   [`KEY_SLOT`] and never leaves the chip: the chip signs the handshake's CertificateVerify;
//! - `ecc.<name>.cert.pem`: its certificate, issued by the site CA from the chip's CSR.
//!
//! `--issue` (or [`enroll_sensor`]) enrolls a sensor that has no certificate: a new chip, GenKey, a
//! chip-signed CSR, the site CA's certificate, as `tmc-provision sensor-identity --chip sim:PATH` does
//! (regenerate the broker configuration afterwards: its ACL lists the sensors). A certificate without its
//! chip, or for another key than the chip's, is refused before anything is sent. The sensors trust only
//! the site CA (its key pinned) and require the broker's certificate to carry `--broker-name` (`mqtt.com`)
//! whatever address `--host` is; the broker takes the certificate CN as user name and client id.
//! `--plain` connects over plain TCP instead (a bring-up listener without TLS; no identity is needed).
//!
//! ## The sensor payload
//!
//! [`payload`] is THE sensor payload; the node writes it with `tmc_sensor_core::write_reading`. Compact
//! JSON, no spaces, keys in this order:
//!
//! ```text
//! {"id":"sensor1","seq":17,"adc":512}
//! ```
//!
//! - `id`: the sensor's name (its certificate CN and MQTT client id).
//! - `seq`: the reading's number, from 1 per sensor per run (or from `--first-seq`).
//! - `adc`: a 10-bit value, [`adc`]`(id, seq)`: a slow wave (a parabolic sine, period 120 readings,
//!   512 ± 300, phase from the name) plus ±16 of noise, both from FNV-1a hashes, in integer
//!   arithmetic only, so the firmware and tests compute it exactly.
//!
//! Topics: `sensors/<name>/reading` (default), or the firmware's legacy `/esp8266` shared by all
//! sensors (the certificate must allow it: `--issue --topic esp8266` enrolls it so).
//!
//! ## Acknowledged means PUBACK
//!
//! A reading counts as acknowledged when the broker's PUBACK for it arrives (the node hands it out once,
//! `Node::take_acked`); then, and only then, it is appended to the ledger as one JSON line (see
//! [`LedgerEntry`]), flushed per line:
//!
//! ```text
//! {"sensor":"sensor1","topic":"sensors/sensor1/reading","seq":17,"payload":"{\"id\":\"sensor1\",\"seq\":17,\"adc\":512}"}
//! ```
//!
//! - MQTT 3.1.1 has no reason code in PUBACK. mosquitto acknowledges a publish its ACL denies and drops
//!   it, and acknowledges a publish nobody subscribes to: the sensor cannot tell either case, so an
//!   acknowledged reading is one the broker took, not one a relay got. (The broker's log shows
//!   `Denied PUBLISH from <name>`.)
//! - Every connection is a clean session. When it fails (connect refused, TLS handshake refused, the
//!   broker gone, keep-alive lost) the node closes it, backs off with jitter ([`BACKOFF_MIN`] doubling to
//!   [`BACKOFF_MAX`]), connects again with a new TLS connection and sends the unacknowledged reading again
//!   with a new packet id. A reading the broker received just before it died may so reach the relay
//!   twice (QoS 1 is at least once; the relay's queue recognises copies); it is in the ledger once.
//! - While the broker is away the node keeps at most 8 unsent readings; when the ring is full the oldest
//!   is dropped (logged). Dropped readings are counted in the summary line; with `--readings` the run
//!   then exits non-zero.
//!
//! ## Use
//!
//! ```text
//! tmc-sensor-sim --site site --count 3 --host 127.0.0.1 --port 8883 --interval 500ms --readings 100 \
//!     --ledger ledger.jsonl [--issue] [--topic sensor|esp8266|TEMPLATE] [--first-seq N] [--broker-name mqtt.com]
//! ```
//!
//! With `--readings N` it exits once every sensor's N readings are acknowledged (status 0), or fails
//! when one was dropped or, after SIGTERM/Ctrl-C, is still unacknowledged. Without it, it runs until
//! SIGTERM/Ctrl-C; either way a stop waits up to 5 s for the readings already taken, then prints
//! `sensor-sim: 3 sensors, 300 acknowledged, 0 dropped` (`, N unacknowledged at stop` when not zero).
//! The node's log lines go to the log with the sensor's name (failures as warnings; every publish and
//! PUBACK with `RUST_LOG=debug`).
//!
//! From Rust: [`SimConfig`] → [`Simulator::prepare`] → [`Simulator::run`] (blocking; one thread per
//! sensor) with a [`StopSignal`]; [`Simulator::progress`] follows the totals while it runs.

mod cli;
mod identity;
mod interval;
mod ledger;
mod link;
mod payload;
mod sensor;
mod sim;
mod stop;
mod tls;

pub use cli::{run, Cli};
pub use identity::{chip_path, enroll_sensor, IdentityError, CHIPS_DIR, KEY_SLOT};
pub use interval::{format_interval, parse_interval, IntervalError};
pub use ledger::{read_ledger, Ledger, LedgerEntry, LedgerError};
pub use payload::{adc, fnv1a32, payload};
pub use sim::{
    sensor_topic, LinkKind, SensorSummary, SimConfig, SimError, Simulator, Summary, TopicStyle,
    BACKOFF_MAX, BACKOFF_MIN, ISSUE_DAYS, LEGACY_TOPIC, PUBACK_RETRY,
};
pub use stop::{Progress, ProgressWatch, StopSignal};
