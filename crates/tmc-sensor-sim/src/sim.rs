//! Running the simulated sensors: one std thread per sensor, each driving the firmware's node over its own
//! connection.

use std::collections::BTreeSet;
use std::fmt;
use std::path::PathBuf;
use std::str::FromStr;
use std::sync::{Mutex, PoisonError};
use std::time::Duration;

use tmc_pki::Site;

use crate::identity::{self, ChipIdentity};
use crate::ledger::{Ledger, LedgerError};
use crate::link::PlainTcp;
use crate::sensor::{Flow, SensorPlan, SensorRun};
use crate::stop::{ProgressWatch, StopSignal};

/// The firmware's legacy topic, shared by all sensors (the payload's `id` tells them apart).
pub const LEGACY_TOPIC: &str = "/esp8266";
/// Validity of certificates issued by `--issue` (the site's default for client certificates).
pub const ISSUE_DAYS: i64 = 825;
/// First wait before reconnecting; the node doubles it (with jitter) up to [`BACKOFF_MAX`] while the broker
/// stays away. Shorter than the firmware's (500 ms … 60 s): a simulated site restarts its broker in about a
/// second, and the node's ring of 8 readings must bridge that at the tests' intervals.
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
pub const BACKOFF_MAX: Duration = Duration::from_secs(2);
/// A PUBLISH without PUBACK is sent again (DUP) after this long.
pub const PUBACK_RETRY: Duration = Duration::from_secs(5);

/// A sensor's own topic: `sensors/<name>/reading`.
pub fn sensor_topic(name: &str) -> String {
    format!("sensors/{name}/reading")
}

/// Where a sensor publishes.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum TopicStyle {
    /// `sensors/<name>/reading` (`--topic sensor`, the default).
    #[default]
    PerSensor,
    /// The firmware's legacy `/esp8266` (`--topic esp8266`); the certificate must allow it.
    Legacy,
    /// Any other topic, `{id}` replaced by the sensor's name (`--topic 'sensors/{id}/test'`).
    /// Publishing outside a sensor's own topics is how the broker's ACL is exercised.
    Template(String),
}

impl TopicStyle {
    pub fn topic(&self, sensor: &str) -> String {
        match self {
            TopicStyle::PerSensor => sensor_topic(sensor),
            TopicStyle::Legacy => LEGACY_TOPIC.to_owned(),
            TopicStyle::Template(t) => t.replace("{id}", sensor),
        }
    }

    /// Topics beyond `sensors/<name>/#` that a certificate issued for this style must allow.
    pub fn extra_topics(&self) -> Vec<String> {
        match self {
            TopicStyle::Legacy => vec![LEGACY_TOPIC.to_owned()],
            TopicStyle::PerSensor | TopicStyle::Template(_) => Vec::new(),
        }
    }
}

impl FromStr for TopicStyle {
    type Err = SimError;

    fn from_str(s: &str) -> Result<Self, SimError> {
        match s {
            "sensor" => Ok(TopicStyle::PerSensor),
            "esp8266" => Ok(TopicStyle::Legacy),
            t if t.contains('/') && !t.contains(['+', '#', '\0']) => {
                Ok(TopicStyle::Template(t.to_owned()))
            }
            _ => Err(SimError::BadTopic(s.to_owned())),
        }
    }
}

/// How a sensor reaches the broker.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum LinkKind {
    /// Mutual TLS, as the site's broker requires: the node's TLS client, the key in the sensor's chip.
    #[default]
    Tls,
    /// Plain TCP, for a bring-up listener without TLS (no certificate or chip is used).
    Plain,
}

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The site directory (`tmc-pki`): CA at `ecc.ca.cert.pem`, each sensor's `ecc.<name>.cert.pem`, and
    /// its simulated chip in `chips/<name>.atecc`.
    pub site: PathBuf,
    /// Sensor names: certificate CN, MQTT client id and payload `id`.
    pub sensors: Vec<String>,
    /// Where to connect (an address or a name).
    pub host: String,
    pub port: u16,
    /// The name the broker's certificate must carry (the sensors check it whatever `host` is).
    pub broker_name: String,
    pub link: LinkKind,
    /// Time between two readings of one sensor.
    pub interval: Duration,
    /// Readings per sensor; `None` runs until stopped.
    pub readings: Option<u64>,
    /// `seq` of each sensor's first reading (1, or where an earlier run stopped).
    pub first_seq: u64,
    pub topic: TopicStyle,
    /// Append a line per acknowledged reading to this file.
    pub ledger: Option<PathBuf>,
    /// Give sensors without a certificate a chip and a certificate for its key (needs the CA key).
    pub issue: bool,
    /// After a stop request, how long to wait for the PUBACKs of readings already taken.
    pub stop_grace: Duration,
    /// MQTT keep-alive in seconds.
    pub keep_alive: u16,
}

impl SimConfig {
    /// Defaults: broker 127.0.0.1:8883 named `mqtt.com`, mutual TLS, a reading a second from seq 1 until
    /// stopped, own topics.
    pub fn new(site: impl Into<PathBuf>, sensors: Vec<String>) -> Self {
        SimConfig {
            site: site.into(),
            sensors,
            host: "127.0.0.1".into(),
            port: 8883,
            broker_name: tmc_pki::DEFAULT_BROKER_HOST.into(),
            link: LinkKind::Tls,
            interval: Duration::from_secs(1),
            readings: None,
            first_seq: 1,
            topic: TopicStyle::PerSensor,
            ledger: None,
            issue: false,
            stop_grace: Duration::from_secs(5),
            keep_alive: 30,
        }
    }

    /// `<prefix>1` … `<prefix><count>`.
    pub fn numbered(prefix: &str, count: u32) -> Vec<String> {
        (1..=count).map(|i| format!("{prefix}{i}")).collect()
    }
}

/// Why the simulator cannot start or go on.
#[derive(Debug, thiserror::Error)]
pub enum SimError {
    #[error("no sensors to simulate")]
    NoSensors,
    #[error("sensor {0:?} is named twice")]
    DuplicateSensor(String),
    #[error(
        "sensor name {0:?} is not allowed: use 1–64 of A-Z a-z 0-9 . _ - (it is a certificate CN and a topic level)"
    )]
    BadSensorName(String),
    #[error("--readings must be at least 1")]
    NoReadings,
    #[error("sequence numbers from {first} for {readings} readings overflow")]
    SeqOverflow { first: u64, readings: u64 },
    #[error(
        "topic {0:?}: use `sensor`, `esp8266`, or a topic containing '/' (`{{id}}` is the sensor name, no wildcards)"
    )]
    BadTopic(String),
    /// The site directory cannot be used (the message names it).
    #[error(transparent)]
    Site(tmc_pki::PkiError),
    /// A sensor's certificate or chip is missing, unusable or does not match (the message says which).
    #[error(transparent)]
    Identity(#[from] identity::IdentityError),
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("sensor {0}: its thread panicked")]
    Panicked(String),
}

/// Checks a name the way the site PKI does (it becomes a CN, a client id and a topic level).
fn check_name(name: &str) -> Result<(), SimError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
        && !name.starts_with('.');
    if ok {
        Ok(())
    } else {
        Err(SimError::BadSensorName(name.to_owned()))
    }
}

/// What one sensor did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SensorSummary {
    pub sensor: String,
    pub topic: String,
    /// Readings the broker acknowledged (each in the ledger once).
    pub acknowledged: u64,
    /// Readings the node dropped because its ring of unsent readings was full.
    pub dropped: u64,
    /// Readings still without a PUBACK when a stop's grace period ended.
    pub unsettled: u64,
    /// Connections accepted (CONNACK).
    pub connects: u64,
    /// Connections that failed, were refused or were lost.
    pub failures: u64,
}

/// What a run did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    pub sensors: Vec<SensorSummary>,
    /// The run ended on a stop request rather than after `readings` per sensor.
    pub stopped: bool,
}

impl Summary {
    fn total(&self, f: impl Fn(&SensorSummary) -> u64) -> u64 {
        self.sensors.iter().map(f).sum()
    }

    pub fn acknowledged(&self) -> u64 {
        self.total(|s| s.acknowledged)
    }

    pub fn dropped(&self) -> u64 {
        self.total(|s| s.dropped)
    }

    pub fn unsettled(&self) -> u64 {
        self.total(|s| s.unsettled)
    }

    pub fn connects(&self) -> u64 {
        self.total(|s| s.connects)
    }

    pub fn failures(&self) -> u64 {
        self.total(|s| s.failures)
    }

    /// Every sensor has `readings` acknowledged readings.
    pub fn complete(&self, readings: u64) -> bool {
        self.sensors.iter().all(|s| s.acknowledged == readings)
    }
}

/// `sensor-sim: 3 sensors, 300 acknowledged, 0 dropped` (and the readings left at a stop when not zero).
impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.sensors.len();
        write!(
            f,
            "sensor-sim: {n} sensor{}, {} acknowledged, {} dropped",
            if n == 1 { "" } else { "s" },
            self.acknowledged(),
            self.dropped()
        )?;
        let unsettled = self.unsettled();
        if unsettled > 0 {
            write!(f, ", {unsettled} unacknowledged at stop")?;
        }
        Ok(())
    }
}

/// One sensor ready to run.
#[derive(Debug)]
struct Prepared {
    plan: SensorPlan,
    /// `None` for a plain TCP link.
    identity: Option<ChipIdentity>,
}

/// The simulator, its sensors' identities checked and its ledger open.
pub struct Simulator {
    sensors: Vec<Prepared>,
    ledger: Option<Mutex<Ledger>>,
    progress: ProgressWatch,
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field(
                "sensors",
                &self
                    .sensors
                    .iter()
                    .map(|s| &s.plan.name)
                    .collect::<Vec<_>>(),
            )
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// Checks the configuration and every sensor's certificate and chip (enrolling missing ones with
    /// `issue`), and opens the ledger. Nothing is sent yet.
    pub fn prepare(config: &SimConfig) -> Result<Self, SimError> {
        if config.sensors.is_empty() {
            return Err(SimError::NoSensors);
        }
        let mut seen = BTreeSet::new();
        for name in &config.sensors {
            check_name(name)?;
            if !seen.insert(name.as_str()) {
                return Err(SimError::DuplicateSensor(name.clone()));
            }
        }
        let last_seq =
            match config.readings {
                Some(0) => return Err(SimError::NoReadings),
                Some(n) => Some(config.first_seq.checked_add(n - 1).ok_or(
                    SimError::SeqOverflow {
                        first: config.first_seq,
                        readings: n,
                    },
                )?),
                None => None,
            };
        let site = match config.link {
            LinkKind::Tls => Some(Site::open(&config.site).map_err(SimError::Site)?),
            LinkKind::Plain => None,
        };
        let mut sensors = Vec::new();
        for name in &config.sensors {
            let identity = match &site {
                Some(site) => Some(identity::prepare(
                    site,
                    name,
                    &config.topic.extra_topics(),
                    &config.broker_name,
                    config.issue,
                )?),
                None => None,
            };
            sensors.push(Prepared {
                plan: SensorPlan {
                    name: name.clone(),
                    topic: config.topic.topic(name),
                    host: config.host.clone(),
                    port: config.port,
                    interval: config.interval,
                    keep_alive_s: config.keep_alive,
                    first_seq: config.first_seq,
                    last_seq,
                    stop_grace: config.stop_grace,
                    backoff_min: BACKOFF_MIN,
                    backoff_max: BACKOFF_MAX,
                    puback_retry: PUBACK_RETRY,
                },
                identity,
            });
        }
        let ledger = match &config.ledger {
            Some(path) => Some(Mutex::new(Ledger::append_to(path)?)),
            None => None,
        };
        Ok(Simulator {
            sensors,
            ledger,
            progress: ProgressWatch::default(),
        })
    }

    /// Totals as they change (readable and awaitable from any thread).
    pub fn progress(&self) -> ProgressWatch {
        self.progress.clone()
    }

    /// The ledger file, if any.
    pub fn ledger_path(&self) -> Option<PathBuf> {
        self.ledger.as_ref().map(|l| {
            l.lock()
                .unwrap_or_else(PoisonError::into_inner)
                .path()
                .to_owned()
        })
    }

    /// Runs every sensor, one thread each, until each has settled its readings (with `readings`) or `stop`
    /// is requested and the grace period for the readings in flight is over. Blocks until then.
    ///
    /// A sensor whose connection fails reconnects with back-off and goes on (a new connection, a clean
    /// session, the unacknowledged reading sent again). A failure to write the ledger stops every sensor and
    /// ends the run with that error.
    pub fn run(self, stop: &StopSignal) -> Result<Summary, SimError> {
        // Raised by the caller's stop, and by the first sensor that fails.
        let inner = stop.child();
        let ledger = self.ledger.as_ref();
        let progress = &self.progress;
        let results: Vec<Result<SensorSummary, SimError>> = std::thread::scope(|scope| {
            let handles: Vec<_> = self
                .sensors
                .iter()
                .map(|sensor| {
                    let inner = &inner;
                    let handle = std::thread::Builder::new()
                        .name(format!("sensor-{}", sensor.plan.name))
                        .spawn_scoped(scope, move || {
                            let result = run_sensor(sensor, ledger, progress, inner);
                            if result.is_err() {
                                inner.request();
                            }
                            result
                        });
                    (sensor.plan.name.clone(), handle)
                })
                .collect();
            handles
                .into_iter()
                .map(|(name, handle)| match handle {
                    Ok(handle) => handle.join().unwrap_or(Err(SimError::Panicked(name))),
                    Err(_) => {
                        inner.request();
                        Err(SimError::Panicked(name))
                    }
                })
                .collect()
        });
        let mut sensors = Vec::new();
        for result in results {
            sensors.push(result?);
        }
        Ok(Summary {
            sensors,
            stopped: stop.requested(),
        })
    }
}

/// One sensor's thread: a new transport per connection attempt until the node's work is done.
fn run_sensor(
    sensor: &Prepared,
    ledger: Option<&Mutex<Ledger>>,
    progress: &ProgressWatch,
    stop: &StopSignal,
) -> Result<SensorSummary, SimError> {
    let plan = &sensor.plan;
    let mut run = SensorRun::new(plan, ledger, progress, stop);
    match &sensor.identity {
        None => loop {
            let mut transport = PlainTcp::new(&plan.host, plan.port);
            if run.connection(&mut transport)? == Flow::Finished {
                break;
            }
        },
        Some(identity) => crate::tls::run(identity, plan, &mut run)?,
    }
    Ok(run.summary())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn topic_styles() {
        assert_eq!(
            "sensor".parse::<TopicStyle>().unwrap().topic("s1"),
            "sensors/s1/reading"
        );
        let legacy = "esp8266".parse::<TopicStyle>().unwrap();
        assert_eq!(legacy.topic("s1"), "/esp8266");
        assert_eq!(legacy.extra_topics(), vec!["/esp8266".to_string()]);
        assert_eq!(
            "sensors/{id}/test"
                .parse::<TopicStyle>()
                .unwrap()
                .topic("s2"),
            "sensors/s2/test"
        );
        for bad in ["", "reading", "sensors/+/reading", "sensors/#"] {
            assert!(bad.parse::<TopicStyle>().is_err(), "{bad}");
        }
    }

    #[test]
    fn summary_line() {
        let mut summary = Summary {
            sensors: (1..=3)
                .map(|i| SensorSummary {
                    sensor: format!("sensor{i}"),
                    acknowledged: 100,
                    ..SensorSummary::default()
                })
                .collect(),
            stopped: false,
        };
        assert_eq!(
            summary.to_string(),
            "sensor-sim: 3 sensors, 300 acknowledged, 0 dropped"
        );
        assert!(summary.complete(100) && !summary.complete(101));
        summary.sensors[0].dropped = 2;
        summary.sensors[1].unsettled = 1;
        assert_eq!(
            summary.to_string(),
            "sensor-sim: 3 sensors, 300 acknowledged, 2 dropped, 1 unacknowledged at stop"
        );
        summary.sensors.truncate(1);
        assert!(summary.to_string().starts_with("sensor-sim: 1 sensor, "));
    }

    #[test]
    fn configuration_is_checked_before_anything_is_sent() {
        let dir = tempfile::tempdir().unwrap();
        let prepare = |sensors: &[&str], f: &dyn Fn(&mut SimConfig)| {
            let mut config =
                SimConfig::new(dir.path(), sensors.iter().map(|s| s.to_string()).collect());
            f(&mut config);
            Simulator::prepare(&config).unwrap_err().to_string()
        };
        assert_eq!(prepare(&[], &|_| {}), "no sensors to simulate");
        assert!(prepare(&["a", "a"], &|_| {}).contains("named twice"));
        assert!(prepare(&["a/b"], &|_| {}).contains("not allowed"));
        assert!(prepare(&["a"], &|c| c.readings = Some(0)).contains("at least 1"));
        assert!(prepare(&["a"], &|c| {
            c.readings = Some(2);
            c.first_seq = u64::MAX;
        })
        .contains("overflow"));
        let err = prepare(&["a"], &|_| {});
        assert!(err.contains("not a TMC site directory"), "{err}");
        assert_eq!(
            SimConfig::numbered("sensor", 3),
            vec!["sensor1", "sensor2", "sensor3"]
        );
    }
}
