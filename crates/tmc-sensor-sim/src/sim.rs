//! Running the simulated sensors: one MQTT 5 + mTLS connection and one reading loop per sensor.

use std::collections::BTreeSet;
use std::fmt;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rumqttc::{
    AsyncClient, ConnectionError, Event, EventLoop, MqttOptions, Packet, PubAckReason,
    PublishNoticeError, PublishOptions, PublishResult, QoS,
};
use tmc_mqtt::{BrokerConfig, Session};
use tmc_pki::{Role, Site, Validity};
use tokio::sync::watch;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::interval::format_interval;
use crate::ledger::{Ledger, LedgerEntry, LedgerError};
use crate::payload::payload;

/// The firmware's legacy topic, shared by all sensors (the payload's `id` tells them apart).
pub const LEGACY_TOPIC: &str = "/esp8266";
/// Validity of certificates issued by `--issue` (the site's default for client certificates).
pub const ISSUE_DAYS: i64 = 825;
/// First wait before reconnecting; it doubles up to [`BACKOFF_MAX`] while the broker stays away.
pub const BACKOFF_MIN: Duration = Duration::from_millis(100);
pub const BACKOFF_MAX: Duration = Duration::from_secs(5);

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

/// What to simulate.
#[derive(Debug, Clone)]
pub struct SimConfig {
    /// The site directory (`tmc-pki`): CA at `ecc.ca.cert.pem`, each sensor's `ecc.<name>.cert.pem`
    /// and `ecc.<name>.key.pem`.
    pub site: PathBuf,
    /// Sensor names: certificate CN, MQTT client id and payload `id`.
    pub sensors: Vec<String>,
    pub host: String,
    pub port: u16,
    /// Time between two readings of one sensor.
    pub interval: Duration,
    /// Readings per sensor; `None` runs until stopped.
    pub readings: Option<u64>,
    /// `seq` of each sensor's first reading (1, or where an earlier run stopped).
    pub first_seq: u64,
    pub topic: TopicStyle,
    /// Append a line per acknowledged reading to this file.
    pub ledger: Option<PathBuf>,
    /// Issue missing sensor certificates in the site (it needs the CA key).
    pub issue: bool,
    /// After a stop request, how long to wait for PUBACKs of readings already sent.
    pub stop_grace: Duration,
    /// MQTT keep-alive in seconds.
    pub keep_alive: u16,
}

impl SimConfig {
    /// Defaults: broker 127.0.0.1:8883, a reading a second from seq 1 until stopped, own topics.
    pub fn new(site: impl Into<PathBuf>, sensors: Vec<String>) -> Self {
        SimConfig {
            site: site.into(),
            sensors,
            host: "127.0.0.1".into(),
            port: 8883,
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
    #[error(
        "{sensor}: no client {what} at {} (issue it with `tmc-pki --site {} issue --name {sensor} --role sensor`, or pass --issue)",
        path.display(), site.display()
    )]
    MissingFile {
        sensor: String,
        what: &'static str,
        path: PathBuf,
        site: PathBuf,
    },
    #[error("{sensor}: cannot issue a certificate: {error}")]
    Issue {
        sensor: String,
        error: tmc_pki::PkiError,
    },
    #[error("{sensor}: {error}")]
    Mqtt {
        sensor: String,
        error: tmc_mqtt::MqttConfigError,
    },
    #[error("{sensor}: MQTT client: {error}")]
    Client {
        sensor: String,
        error: rumqttc::ClientBuildError,
    },
    #[error("{sensor}: cannot queue reading {seq}: {error}")]
    Publish {
        sensor: String,
        seq: u64,
        error: rumqttc::ClientError,
    },
    #[error(transparent)]
    Ledger(#[from] LedgerError),
    #[error("a sensor task failed: {0}")]
    Task(String),
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

/// A request to stop, shared by whoever may ask (signal handler, test) and the sensors. Cheap to clone.
#[derive(Debug, Clone)]
pub struct StopSignal {
    tx: Arc<watch::Sender<bool>>,
}

impl Default for StopSignal {
    fn default() -> Self {
        StopSignal {
            tx: Arc::new(watch::Sender::new(false)),
        }
    }
}

impl StopSignal {
    pub fn new() -> Self {
        Self::default()
    }

    /// Stop producing readings, wait (up to the grace period) for those sent, and disconnect.
    pub fn request(&self) {
        self.tx.send_replace(true);
    }

    pub fn requested(&self) -> bool {
        *self.tx.borrow()
    }

    /// Resolves once a stop is requested.
    pub async fn wait(&self) {
        let mut rx = self.tx.subscribe();
        // The sender lives in `self`, so this only returns once the flag is raised.
        let _ = rx.wait_for(|stop| *stop).await;
    }
}

/// Running totals over all sensors, published while the simulator runs.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Progress {
    /// Readings acknowledged with PUBACK Success (each in the ledger).
    pub acknowledged: u64,
    /// Readings the broker refused (PUBACK reason ≥ 0x80) or that failed for good.
    pub refused: u64,
    /// Readings accepted with PUBACK 16 (no matching subscribers): not in the ledger.
    pub no_subscribers: u64,
    /// Readings published again because the broker lost the session holding them.
    pub resent: u64,
    /// Publishes queued (first sends and re-sends).
    pub sent: u64,
    /// Successful CONNACKs over all sensors (more than one per sensor after reconnections).
    pub connects: u64,
    /// Reconnections on which the broker still had the sensor's session (its in-flight readings are
    /// then re-sent by rumqttc with DUP set).
    pub resumed: u64,
}

/// What one sensor did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SensorSummary {
    pub sensor: String,
    pub topic: String,
    pub acknowledged: u64,
    pub refused: u64,
    pub no_subscribers: u64,
    pub resent: u64,
    /// Readings still without a PUBACK when a stop's grace period ended.
    pub unsettled: u64,
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

    pub fn refused(&self) -> u64 {
        self.total(|s| s.refused)
    }

    pub fn no_subscribers(&self) -> u64 {
        self.total(|s| s.no_subscribers)
    }

    pub fn resent(&self) -> u64 {
        self.total(|s| s.resent)
    }

    pub fn unsettled(&self) -> u64 {
        self.total(|s| s.unsettled)
    }

    /// Every sensor has `readings` acknowledged readings.
    pub fn complete(&self, readings: u64) -> bool {
        self.sensors.iter().all(|s| s.acknowledged == readings)
    }
}

/// `sensor-sim: 3 sensors, 300 acknowledged, 0 refused` (and the unusual counts when not zero).
impl fmt::Display for Summary {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let n = self.sensors.len();
        write!(
            f,
            "sensor-sim: {n} sensor{}, {} acknowledged, {} refused",
            if n == 1 { "" } else { "s" },
            self.acknowledged(),
            self.refused()
        )?;
        for (count, what) in [
            (self.no_subscribers(), "accepted without subscribers"),
            (self.unsettled(), "unacknowledged at stop"),
            (self.resent(), "re-sent after the broker lost them"),
        ] {
            if count > 0 {
                write!(f, ", {count} {what}")?;
            }
        }
        Ok(())
    }
}

/// One sensor ready to connect.
#[derive(Debug)]
struct Prepared {
    name: String,
    topic: String,
    /// `host:port`, for logs.
    address: String,
    options: MqttOptions,
}

/// Settings every sensor loop shares.
#[derive(Debug, Clone, Copy)]
struct Plan {
    interval: Duration,
    first_seq: u64,
    /// One past the last seq, or `None` until stopped.
    end_seq: Option<u64>,
    stop_grace: Duration,
}

/// The simulator, its certificates checked and its ledger open.
pub struct Simulator {
    sensors: Vec<Prepared>,
    plan: Plan,
    ledger: Option<Arc<Mutex<Ledger>>>,
    progress: Arc<watch::Sender<Progress>>,
}

impl fmt::Debug for Simulator {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Simulator")
            .field(
                "sensors",
                &self.sensors.iter().map(|s| &s.name).collect::<Vec<_>>(),
            )
            .field("plan", &self.plan)
            .finish_non_exhaustive()
    }
}

impl Simulator {
    /// Checks the configuration and every sensor's files (issuing missing certificates with
    /// `issue`), builds the MQTT options and opens the ledger. Nothing is sent yet.
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
        let end_seq = match config.readings {
            Some(0) => return Err(SimError::NoReadings),
            Some(n) => Some(
                config
                    .first_seq
                    .checked_add(n)
                    .ok_or(SimError::SeqOverflow {
                        first: config.first_seq,
                        readings: n,
                    })?,
            ),
            None => None,
        };
        let site = Site::open(&config.site).map_err(SimError::Site)?;
        let mut sensors = Vec::new();
        for name in &config.sensors {
            let options = sensor_options(&site, config, name)?;
            sensors.push(Prepared {
                name: name.clone(),
                topic: config.topic.topic(name),
                address: format!("{}:{}", config.host, config.port),
                options,
            });
        }
        let ledger = match &config.ledger {
            Some(path) => Some(Arc::new(Mutex::new(Ledger::append_to(path)?))),
            None => None,
        };
        Ok(Simulator {
            sensors,
            plan: Plan {
                interval: config.interval,
                first_seq: config.first_seq,
                end_seq,
                stop_grace: config.stop_grace,
            },
            ledger,
            progress: Arc::new(watch::Sender::new(Progress::default())),
        })
    }

    /// Totals as they change.
    pub fn progress(&self) -> watch::Receiver<Progress> {
        self.progress.subscribe()
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

    /// Runs every sensor until each has settled its readings (with `readings`) or `stop` is
    /// requested. Needs a Tokio runtime with the time driver.
    ///
    /// A sensor whose connection drops reconnects with back-off and goes on; readings the broker lost
    /// with its session are published again, so every reading ends up acknowledged once, refused, or
    /// (only after a stop) unsettled. A failure to write the ledger ends the whole run with an error.
    pub async fn run(self, stop: &StopSignal) -> Result<Summary, SimError> {
        let inner = StopSignal::new();
        let forward = {
            let (outer, inner) = (stop.clone(), inner.clone());
            tokio::spawn(async move {
                outer.wait().await;
                inner.request();
            })
        };
        let mut tasks = JoinSet::new();
        for (index, sensor) in self.sensors.into_iter().enumerate() {
            let run = SensorRun {
                name: sensor.name,
                topic: sensor.topic,
                plan: self.plan,
                ledger: self.ledger.clone(),
                progress: self.progress.clone(),
                summary: SensorSummary::default(),
                acked: BTreeSet::new(),
                pending: JoinSet::new(),
            };
            let stop = inner.clone();
            tasks
                .spawn(async move { (index, run.run(sensor.options, sensor.address, stop).await) });
        }
        let mut results = Vec::new();
        let mut first_error = None;
        while let Some(joined) = tasks.join_next().await {
            match joined {
                Ok((index, Ok(summary))) => results.push((index, summary)),
                Ok((_, Err(e))) => {
                    inner.request();
                    first_error.get_or_insert(e);
                }
                Err(e) => {
                    inner.request();
                    first_error.get_or_insert(SimError::Task(e.to_string()));
                }
            }
        }
        forward.abort();
        if let Some(e) = first_error {
            return Err(e);
        }
        results.sort_by_key(|(index, _)| *index);
        Ok(Summary {
            sensors: results.into_iter().map(|(_, s)| s).collect(),
            stopped: stop.requested(),
        })
    }
}

/// MQTT options for `name` from the site's files, issuing them first if asked to.
fn sensor_options(site: &Site, config: &SimConfig, name: &str) -> Result<MqttOptions, SimError> {
    let cert = site.cert_path(name);
    let key = site.key_path(name);
    if config.issue && !cert.exists() && !key.exists() {
        site.issue(
            name,
            Role::Sensor,
            &config.topic.extra_topics(),
            Validity::days(ISSUE_DAYS),
        )
        .map_err(|error| SimError::Issue {
            sensor: name.to_owned(),
            error,
        })?;
        tracing::warn!(
            "issued a sensor certificate for {name}: regenerate the broker configuration \
             (tmc-pki broker-config) and reload mosquitto so that its ACL lets {name} publish"
        );
    }
    for (what, path) in [("certificate", &cert), ("key", &key)] {
        if !path.exists() {
            return Err(missing(name, what, path, site.dir()));
        }
    }
    let broker = BrokerConfig {
        host: config.host.clone(),
        port: config.port,
        ca: Some(site.dir().join("ecc.ca.cert.pem")),
        cert: Some(cert),
        key: Some(key),
        client_id: Some(name.to_owned()),
        keep_alive: config.keep_alive,
    };
    let mut options =
        broker
            .options(name, Session::Persistent)
            .map_err(|error| SimError::Mqtt {
                sensor: name.to_owned(),
                error,
            })?;
    // The first connection starts a fresh session: whatever an earlier run left on the broker under
    // this client id is not ours to resume (rumqttc would refuse to publish into it). The driver
    // switches to resuming once connected, so reconnections keep the session and its in-flight
    // readings.
    options.set_clean_start(true);
    Ok(options)
}

fn missing(sensor: &str, what: &'static str, path: &Path, site: &Path) -> SimError {
    SimError::MissingFile {
        sensor: sensor.to_owned(),
        what,
        path: path.to_owned(),
        site: site.to_owned(),
    }
}

type Outcome = (u64, Result<PublishResult, PublishNoticeError>);

/// One sensor's reading loop.
struct SensorRun {
    name: String,
    topic: String,
    plan: Plan,
    ledger: Option<Arc<Mutex<Ledger>>>,
    progress: Arc<watch::Sender<Progress>>,
    summary: SensorSummary,
    /// Seqs already in the ledger: a reading is never written twice.
    acked: BTreeSet<u64>,
    /// One task per reading sent and not yet settled, resolving to its outcome.
    pending: JoinSet<Outcome>,
}

impl SensorRun {
    async fn run(
        mut self,
        options: MqttOptions,
        address: String,
        stop: StopSignal,
    ) -> Result<SensorSummary, SimError> {
        let (client, eventloop) = AsyncClient::builder(options)
            .unbounded()
            .try_build()
            .map_err(|error| SimError::Client {
                sensor: self.name.clone(),
                error,
            })?;
        let closing = Arc::new(watch::Sender::new(false));
        let driver = tokio::spawn(drive(
            self.name.clone(),
            address,
            eventloop,
            closing.subscribe(),
            self.progress.clone(),
        ));
        let result = self.readings(&client, &stop).await;
        // Everything is settled (or given up on): leave without waiting for anything else, and
        // without reconnecting if the connection is down.
        closing.send_replace(true);
        let _ = client.disconnect_now().await;
        drop(client);
        let abort = driver.abort_handle();
        if tokio::time::timeout(Duration::from_secs(2), driver)
            .await
            .is_err()
        {
            abort.abort();
        }
        result.map(|()| {
            self.summary.sensor = self.name.clone();
            self.summary.topic = self.topic.clone();
            self.summary
        })
    }

    async fn readings(&mut self, client: &AsyncClient, stop: &StopSignal) -> Result<(), SimError> {
        let plan = self.plan;
        let mut ticker = tokio::time::interval(plan.interval);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut next = plan.first_seq;
        let mut producing = true;
        let mut give_up_at: Option<Instant> = None;
        loop {
            if !producing && self.pending.is_empty() {
                return Ok(());
            }
            // Far away while no stop is pending (the branch is disabled then anyway).
            let deadline = give_up_at.unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                _ = ticker.tick(), if producing => {
                    self.send(client, next).await?;
                    next += 1;
                    if plan.end_seq == Some(next) {
                        producing = false;
                    }
                }
                Some(joined) = self.pending.join_next(), if !self.pending.is_empty() => {
                    match joined {
                        Ok((seq, outcome)) => self.settle(client, seq, outcome).await?,
                        Err(e) => return Err(SimError::Task(e.to_string())),
                    }
                }
                () = stop.wait(), if give_up_at.is_none() => {
                    producing = false;
                    give_up_at = Some(Instant::now() + plan.stop_grace);
                    if !self.pending.is_empty() {
                        tracing::info!(
                            "{}: stopping; waiting up to {} for {} PUBACK(s)",
                            self.name,
                            format_interval(plan.stop_grace),
                            self.pending.len()
                        );
                    }
                }
                () = tokio::time::sleep_until(deadline), if give_up_at.is_some() => {
                    self.summary.unsettled = self.pending.len() as u64;
                    tracing::warn!(
                        "{}: {} reading(s) not acknowledged when the stop grace period ended",
                        self.name,
                        self.summary.unsettled
                    );
                    self.pending.abort_all();
                    return Ok(());
                }
            }
        }
    }

    /// Queues reading `seq` at QoS 1 and tracks its outcome.
    async fn send(&mut self, client: &AsyncClient, seq: u64) -> Result<(), SimError> {
        let notice = client
            .publish_tracked(
                self.topic.clone(),
                payload(&self.name, seq),
                PublishOptions::new(QoS::AtLeastOnce),
            )
            .await
            .map_err(|error| SimError::Publish {
                sensor: self.name.clone(),
                seq,
                error,
            })?;
        self.pending
            .spawn(async move { (seq, notice.wait_async().await) });
        self.progress.send_modify(|p| p.sent += 1);
        Ok(())
    }

    async fn settle(
        &mut self,
        client: &AsyncClient,
        seq: u64,
        outcome: Result<PublishResult, PublishNoticeError>,
    ) -> Result<(), SimError> {
        let name = &self.name;
        match outcome {
            Ok(PublishResult::Qos1(ack)) => match ack.reason {
                PubAckReason::Success => self.acknowledged(seq)?,
                PubAckReason::NoMatchingSubscribers => {
                    let message = format!(
                        "{name}: reading {seq} accepted, but nobody subscribes to {} (PUBACK 16): \
                         not in the ledger",
                        self.topic
                    );
                    // Once a warning per sensor; every one with -v.
                    if self.summary.no_subscribers == 0 {
                        tracing::warn!("{message}");
                    } else {
                        tracing::info!("{message}");
                    }
                    self.summary.no_subscribers += 1;
                    self.progress.send_modify(|p| p.no_subscribers += 1);
                }
                reason => {
                    tracing::warn!(
                        "{name}: broker refused reading {seq} on {}: PUBACK {reason:?} ({})",
                        self.topic,
                        reason as u8
                    );
                    self.refused();
                }
            },
            Err(PublishNoticeError::SessionReset) => {
                // The broker came back without the session that held it: it never acknowledged this
                // reading, so it goes again (the broker may have delivered it before; QoS 1 allows that).
                tracing::info!(
                    "{name}: reading {seq} lost with the broker's session: sending it again"
                );
                self.summary.resent += 1;
                self.progress.send_modify(|p| p.resent += 1);
                self.send(client, seq).await?;
            }
            Ok(other) => {
                tracing::warn!("{name}: reading {seq}: unexpected outcome {other:?}");
                self.refused();
            }
            Err(e) => {
                tracing::warn!("{name}: reading {seq} failed: {e}");
                self.refused();
            }
        }
        Ok(())
    }

    fn refused(&mut self) {
        self.summary.refused += 1;
        self.progress.send_modify(|p| p.refused += 1);
    }

    fn acknowledged(&mut self, seq: u64) -> Result<(), SimError> {
        if !self.acked.insert(seq) {
            tracing::warn!(
                "{}: reading {seq} acknowledged twice; the ledger has it once",
                self.name
            );
            return Ok(());
        }
        if let Some(ledger) = &self.ledger {
            let payload = String::from_utf8_lossy(&payload(&self.name, seq)).into_owned();
            let entry = LedgerEntry {
                sensor: self.name.clone(),
                topic: self.topic.clone(),
                seq,
                payload,
            };
            ledger
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .append(&entry)?;
        }
        self.summary.acknowledged += 1;
        self.progress.send_modify(|p| p.acknowledged += 1);
        Ok(())
    }
}

/// Drives one sensor's connection: polls the event loop, reconnects with back-off, and after the
/// first CONNACK resumes the session on every reconnection.
async fn drive(
    name: String,
    address: String,
    mut eventloop: EventLoop,
    mut closing: watch::Receiver<bool>,
    progress: Arc<watch::Sender<Progress>>,
) {
    let mut backoff = BACKOFF_MIN;
    let mut connected_before = false;
    let mut failures: u32 = 0;
    loop {
        match eventloop.poll().await {
            Ok(Event::Incoming(Packet::ConnAck(ack))) => {
                eventloop.options.set_clean_start(false);
                if connected_before {
                    tracing::info!(
                        "{name}: reconnected (broker kept the session: {})",
                        ack.session_present
                    );
                } else {
                    tracing::info!("{name}: connected to {}", address);
                }
                connected_before = true;
                backoff = BACKOFF_MIN;
                failures = 0;
                progress.send_modify(|p| {
                    p.connects += 1;
                    p.resumed += u64::from(ack.session_present);
                });
            }
            Ok(Event::Incoming(Packet::Disconnect(d))) => {
                tracing::warn!("{name}: the broker disconnected: {:?}", d.reason_code);
            }
            Ok(_) => {}
            Err(ConnectionError::RequestsDone) => return,
            Err(e) => {
                if *closing.borrow() {
                    return;
                }
                failures += 1;
                let message = format!(
                    "{name}: connection to {}: {e}; retrying in {}",
                    address,
                    format_interval(backoff)
                );
                // The first failure of a streak is a warning; the retries only with -v.
                if failures == 1 {
                    tracing::warn!("{message}");
                } else {
                    tracing::info!("{message}");
                }
                tokio::select! {
                    () = tokio::time::sleep(backoff) => {}
                    _ = closing.wait_for(|c| *c) => return,
                }
                backoff = (backoff * 2).min(BACKOFF_MAX);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used)]
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
            "sensor-sim: 3 sensors, 300 acknowledged, 0 refused"
        );
        assert!(summary.complete(100) && !summary.complete(101));
        summary.sensors[0].refused = 2;
        summary.sensors[1].unsettled = 1;
        assert_eq!(
            summary.to_string(),
            "sensor-sim: 3 sensors, 300 acknowledged, 2 refused, 1 unacknowledged at stop"
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
