//! # tmc-sensor-sim
//!
//! Stands in for the ESP8266 sensor nodes on a PC: N sensors, each with its **own** client
//! certificate from the site PKI (`ecc.<name>.cert.pem` / `ecc.<name>.key.pem`, CN = name), each
//! publishing a reading per interval over MQTT 5 + mutual TLS at QoS 1. `make demo` and the relay's
//! end-to-end and fault tests use it, so it is exact about which readings the broker acknowledged.
//!
//! ## The sensor payload
//!
//! [`payload`] is THE sensor payload; the firmware produces the same bytes. Compact JSON, no spaces,
//! keys in this order:
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
//! sensors (the certificate must allow it: `tmc-pki issue --topic /esp8266`).
//!
//! ## Acknowledged means PUBACK Success
//!
//! A reading counts as acknowledged only when its PUBACK arrives with reason Success (0); then, and only
//! then, it is appended to the ledger as one JSON line (see [`LedgerEntry`]), flushed per line:
//!
//! ```text
//! {"sensor":"sensor1","topic":"sensors/sensor1/reading","seq":17,"payload":"{\"id\":\"sensor1\",\"seq\":17,\"adc\":512}"}
//! ```
//!
//! - A PUBACK with a failure reason (135 NotAuthorized when a sensor publishes outside its ACL) is a
//!   warning with the reason and counts as refused; it is never written to the ledger nor re-sent.
//! - A PUBACK 16 (accepted, no matching subscribers) is a warning too and is not in the ledger either:
//!   no relay got that reading.
//! - When the connection drops, the sensor reconnects with back-off (100 ms doubling to 5 s). The
//!   first connection of a run starts a clean session (whatever an earlier run left under the same
//!   client id is not resumed); reconnections resume it. Then either:
//!   - the broker still has the session (the network dropped, the broker stayed up): it answers
//!     "session present" and rumqttc re-sends the unacknowledged readings itself, with DUP set; or
//!   - the broker lost it (it was killed, or restarted: mosquitto 2.0 writes to disk only sessions
//!     whose connection began with clean start off, so not the one a run starts with): rumqttc fails
//!     those readings with `SessionReset` and the simulator publishes them again.
//!
//!   Either way each reading is acknowledged once and written to the ledger once (a seq already in
//!   the ledger is never written again). The broker may deliver a reading twice across a drop: QoS 1
//!   is at least once, and the relay's queue deals with duplicates.
//!
//! ## Use
//!
//! ```text
//! tmc-sensor-sim --site site --count 3 --host 127.0.0.1 --port 8883 --interval 500ms --readings 100 \
//!     --ledger ledger.jsonl
//! ```
//!
//! From Rust: [`SimConfig`] → [`Simulator::prepare`] → [`Simulator::run`] with a [`StopSignal`];
//! [`Simulator::progress`] follows the totals while it runs.

mod cli;
mod interval;
mod ledger;
mod payload;
mod sim;

pub use cli::{run, Cli};
pub use interval::{format_interval, parse_interval, IntervalError};
pub use ledger::{read_ledger, Ledger, LedgerEntry, LedgerError};
pub use payload::{adc, fnv1a32, payload};
pub use sim::{
    sensor_topic, Progress, SensorSummary, SimConfig, SimError, Simulator, StopSignal, Summary,
    TopicStyle, BACKOFF_MAX, BACKOFF_MIN, ISSUE_DAYS, LEGACY_TOPIC,
};
