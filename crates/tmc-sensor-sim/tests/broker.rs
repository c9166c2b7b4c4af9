//! The simulator (the firmware's node code over the node's TLS client, keys in simulated chips) against the
//! real mosquitto (Debian's) with the site's mTLS + ACL configuration, started on 127.0.0.1 by each test; a
//! relay-like subscriber checks what the broker delivered.

use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tmc_mqtt::{BrokerConfig, ClientOptions, Session};
use tmc_pki::{broker, Role, Site, SiteInit, Validity};
use tmc_sensor_sim::{
    chip_path, payload, read_ledger, sensor_topic, LedgerEntry, SimConfig, Simulator, StopSignal,
    Summary, TopicStyle,
};
use tmc_testkit::Mosquitto;
use tokio::sync::mpsc;

/// Every network wait in these tests is bounded by this.
const WAIT: Duration = Duration::from_secs(60);
const FENCE: &str = "fence";

struct Setup {
    dir: tempfile::TempDir,
    site: Site,
    port: u16,
}

/// A site whose broker certificate also names 127.0.0.1, for the relay-like subscriber (rustls checks the
/// address it connects to); the sensors check `mqtt.com`.
fn new_site(dir: &std::path::Path) -> Site {
    Site::init(
        dir,
        &SiteInit {
            extra_names: vec!["127.0.0.1".into()],
            ..SiteInit::default()
        },
    )
    .unwrap()
}

impl Setup {
    /// A site with a relay and a fence sensor (its chip enrolled).
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let site = new_site(&dir.path().join("site"));
        site.issue("relay1", Role::Relay, &[], Validity::days(30))
            .unwrap();
        let s = Setup {
            dir,
            site,
            port: tmc_testkit::free_port(),
        };
        s.enroll(&[FENCE], TopicStyle::PerSensor);
        s
    }

    /// Gives each sensor a chip and a certificate from its CSR, as `--issue` does.
    fn enroll(&self, names: &[&str], topic: TopicStyle) {
        let mut config = self.config(names, 1);
        config.ledger = None;
        config.issue = true;
        config.topic = topic;
        Simulator::prepare(&config).unwrap();
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Writes the broker configuration from `site` as it is now (its ACL) and starts mosquitto.
    fn start_broker_of(&self, site: &Site) -> Mosquitto {
        let conf = self.dir.path().join("broker");
        let options = broker::BrokerOptions::loopback(self.port);
        broker::write(site, &options, &conf).unwrap();
        std::fs::create_dir_all(self.state_dir()).unwrap();
        Mosquitto::start(&conf, &self.state_dir(), self.port)
    }

    fn start_broker(&self) -> Mosquitto {
        self.start_broker_of(&self.site)
    }

    fn ledger(&self) -> PathBuf {
        self.dir.path().join("ledger.jsonl")
    }

    /// `sensors` at a short interval against the test broker, with the ledger.
    fn config(&self, sensors: &[&str], readings: u64) -> SimConfig {
        let mut config = SimConfig::new(
            self.site.dir(),
            sensors.iter().map(|s| s.to_string()).collect(),
        );
        config.port = self.port;
        config.interval = Duration::from_millis(20);
        config.readings = Some(readings);
        config.ledger = Some(self.ledger());
        config
    }

    async fn simulate(&self, config: &SimConfig) -> Summary {
        let sim = Simulator::prepare(config).unwrap();
        let run = tokio::task::spawn_blocking(move || sim.run(&StopSignal::new()));
        tokio::time::timeout(WAIT, run)
            .await
            .expect("the simulator finishes within the bounded wait")
            .unwrap()
            .unwrap()
    }

    /// The relay's options from its site files, through tmc-mqtt like the real relay.
    fn relay_options(&self, session: Session) -> MqttOptions {
        BrokerConfig {
            host: "127.0.0.1".into(),
            port: self.port,
            ca: Some(self.site.dir().join("ecc.ca.cert.pem")),
            cert: Some(self.site.cert_path("relay1")),
            key: Some(self.site.key_path("relay1")),
            client_id: None,
            keep_alive: 30,
        }
        .options("relay1", session)
        .unwrap()
    }

    /// Publishes one fence reading and returns everything the relay received before it. The fence is
    /// published after every reading under test was acknowledged, and mosquitto queues a message for
    /// subscribers before it acknowledges it, so nothing under test can arrive after the fence.
    async fn until_fence(&self, relay: &mut Relay) -> Vec<(String, Vec<u8>)> {
        let mut config = self.config(&[FENCE], 1);
        config.ledger = None;
        let summary = self.simulate(&config).await;
        assert_eq!(summary.acknowledged(), 1, "{summary}");
        let mut before = Vec::new();
        loop {
            let (topic, payload) = relay.next().await;
            if topic == sensor_topic(FENCE) {
                return before;
            }
            before.push((topic, payload));
        }
    }
}

/// A relay-like subscriber: every publish it receives goes to a channel; it reconnects by itself.
struct Relay {
    rx: mpsc::UnboundedReceiver<(String, Vec<u8>)>,
    task: tokio::task::JoinHandle<()>,
    _client: AsyncClient,
}

impl Relay {
    /// Connects as relay1, subscribes to `filters` at QoS 1 and waits for every SUBACK.
    async fn start(s: &Setup, filters: &[&str], session: Session) -> Relay {
        let (client, mut eventloop) = AsyncClient::builder(s.relay_options(session))
            .capacity(16)
            .build();
        for filter in filters {
            client.subscribe(*filter, QoS::AtLeastOnce).await.unwrap();
        }
        let mut subacks = 0;
        tokio::time::timeout(WAIT, async {
            while subacks < filters.len() {
                if let Event::Incoming(Packet::SubAck(_)) =
                    eventloop.poll().await.expect("relay connects")
                {
                    subacks += 1;
                }
            }
        })
        .await
        .expect("SUBACKs within the bounded wait");
        let (tx, rx) = mpsc::unbounded_channel();
        let task = tokio::spawn(async move {
            loop {
                match eventloop.poll().await {
                    Ok(Event::Incoming(Packet::Publish(p))) => {
                        let topic = String::from_utf8_lossy(&p.topic).into_owned();
                        if tx.send((topic, p.payload.to_vec())).is_err() {
                            return;
                        }
                    }
                    Ok(_) => {}
                    // Back-off before the next attempt (the broker is restarting), not synchronisation.
                    Err(_) => tokio::time::sleep(Duration::from_millis(50)).await,
                }
            }
        });
        Relay {
            rx,
            task,
            _client: client,
        }
    }

    async fn next(&mut self) -> (String, Vec<u8>) {
        tokio::time::timeout(WAIT, self.rx.recv())
            .await
            .expect("a publish within the bounded wait")
            .expect("relay task alive")
    }
}

impl Drop for Relay {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// What `sensors` publish for `seqs`, by sensor, in order.
fn expected(
    sensors: &[&str],
    seqs: std::ops::RangeInclusive<u64>,
) -> BTreeMap<String, Vec<Vec<u8>>> {
    sensors
        .iter()
        .map(|s| (s.to_string(), seqs.clone().map(|q| payload(s, q)).collect()))
        .collect()
}

/// Received payloads by the sensor named in them, in arrival order.
fn by_sensor(received: &[(String, Vec<u8>)]) -> BTreeMap<String, Vec<Vec<u8>>> {
    let mut map: BTreeMap<String, Vec<Vec<u8>>> = BTreeMap::new();
    for (_, p) in received {
        let v: serde_json::Value = serde_json::from_slice(p).unwrap();
        let id = v["id"].as_str().unwrap().to_string();
        map.entry(id).or_default().push(p.clone());
    }
    map
}

/// The ledger's entries, checked against the payload function, by sensor: seqs in ledger order.
fn ledger_by_sensor(s: &Setup) -> BTreeMap<String, Vec<u64>> {
    let mut map: BTreeMap<String, Vec<u64>> = BTreeMap::new();
    let Ok(entries) = read_ledger(&s.ledger()) else {
        return map;
    };
    for LedgerEntry {
        sensor,
        topic: _,
        seq,
        payload: p,
    } in entries
    {
        assert_eq!(p.as_bytes(), payload(&sensor, seq), "{sensor} #{seq}");
        map.entry(sensor).or_default().push(seq);
    }
    map
}

fn all_seqs(sensors: &[&str], seqs: std::ops::RangeInclusive<u64>) -> BTreeMap<String, Vec<u64>> {
    sensors
        .iter()
        .map(|s| (s.to_string(), seqs.clone().collect()))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn three_sensors_publish_exactly_their_readings_over_tls_and_the_ledger_lists_them() {
    let s = Setup::new();
    let sensors = ["sensor1", "sensor2", "sensor3"];
    let started = Instant::now();
    s.enroll(&sensors, TopicStyle::PerSensor);
    eprintln!("enrolled 3 chips in {:?}", started.elapsed());
    // Each sensor's key is in its chip: the site has its certificate, and no key file.
    for name in sensors {
        assert!(s.site.cert_path(name).exists() && chip_path(s.site.dir(), name).exists());
        assert!(!s.site.key_path(name).exists());
    }
    let broker = s.start_broker();
    let mut relay = Relay::start(&s, &["sensors/+/reading", "/esp8266"], Session::Clean).await;

    let started = Instant::now();
    let summary = s.simulate(&s.config(&sensors, 5)).await;
    eprintln!("3 × 5 readings over TLS in {:?}", started.elapsed());
    assert_eq!(
        summary.to_string(),
        "sensor-sim: 3 sensors, 15 acknowledged, 0 dropped"
    );
    assert!(summary.complete(5) && !summary.stopped);
    assert_eq!(summary.connects(), 3, "{summary:?}");

    let received = s.until_fence(&mut relay).await;
    assert_eq!(received.len(), 15, "exactly the readings, once each");
    for (topic, p) in &received {
        let v: serde_json::Value = serde_json::from_slice(p).unwrap();
        assert_eq!(topic, &sensor_topic(v["id"].as_str().unwrap()));
    }
    // Byte-exact, and in order per sensor.
    assert_eq!(by_sensor(&received), expected(&sensors, 1..=5));

    let ledger = read_ledger(&s.ledger()).unwrap();
    assert_eq!(ledger.len(), 15);
    assert!(ledger.iter().all(|e| e.topic == sensor_topic(&e.sensor)));
    assert_eq!(ledger_by_sensor(&s), all_seqs(&sensors, 1..=5));
    // The broker knew each sensor by its certificate, over MQTT 3.1.1 (protocol level 4).
    let log = broker.log_text();
    for name in sensors {
        assert!(
            log.contains(&format!("as {name} (p2, c1, k30, u'{name}')")),
            "{log}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_reading_outside_the_acl_is_acknowledged_by_the_broker_but_never_delivered() {
    let s = Setup::new();
    s.enroll(&["sensor1", "sensor2"], TopicStyle::PerSensor);
    let broker = s.start_broker();
    let mut relay = Relay::start(&s, &["sensors/#"], Session::Clean).await;

    // Both publish to sensor2's topic: the ACL lets only sensor2 do that. MQTT 3.1.1 has no reason code in
    // PUBACK: mosquitto acknowledges the denied publish and drops it, so the sensor cannot tell.
    let mut config = s.config(&["sensor1", "sensor2"], 3);
    config.topic = TopicStyle::Template("sensors/sensor2/reading".into());
    let summary = s.simulate(&config).await;
    assert_eq!(
        summary.to_string(),
        "sensor-sim: 2 sensors, 6 acknowledged, 0 dropped"
    );

    let received = s.until_fence(&mut relay).await;
    assert_eq!(by_sensor(&received), expected(&["sensor2"], 1..=3));
    assert!(received
        .iter()
        .all(|(topic, _)| topic == "sensors/sensor2/reading"));
    let log = broker.log_text();
    assert!(
        log.contains("Denied PUBLISH from sensor1") && !log.contains("Denied PUBLISH from sensor2"),
        "{log}"
    );
}

/// Sends `signal` to `broker` with kill(1).
fn signal(broker: &Mosquitto, name: &str) {
    tmc_testkit::signal(broker.pid(), name).unwrap();
}

/// Makes mosquitto write its persistence file now (SIGUSR1) and waits until it is there. (The site's broker
/// configuration also saves after every change; the file of such a save is removed first, so that the one
/// waited for is this save's.)
async fn save_broker_state(s: &Setup, broker: &Mosquitto) {
    let db = s.state_dir().join("mosquitto.db");
    match std::fs::remove_file(&db) {
        Ok(()) => {}
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
        Err(e) => panic!("{}: {e}", db.display()),
    }
    signal(broker, "USR1");
    let deadline = Instant::now() + WAIT;
    while !db.exists() {
        assert!(
            Instant::now() < deadline,
            "mosquitto did not save on SIGUSR1"
        );
        // Another process writes the file: there is nothing to wait on instead.
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn readings_are_acknowledged_exactly_once_across_a_killed_and_restarted_broker() {
    let s = Setup::new();
    let sensors = ["sensor1", "sensor2"];
    s.enroll(&sensors, TopicStyle::PerSensor);
    let broker = s.start_broker();
    // A relay with a persistent session, saved before the kill: the restarted broker has its
    // subscription (and nothing of the sensors, whose sessions are clean anyway).
    let mut relay = Relay::start(&s, &["sensors/+/reading"], Session::Persistent).await;
    save_broker_state(&s, &broker).await;

    // 500 ms apart: the node's ring of 8 holds 4 s of readings, well more than the restart and the
    // reconnection take (also under qemu, where each TLS handshake is slower).
    let mut config = s.config(&sensors, 24);
    config.interval = Duration::from_millis(500);
    let sim = Simulator::prepare(&config).unwrap();
    let progress = sim.progress();
    let run = tokio::task::spawn_blocking(move || sim.run(&StopSignal::new()));

    let wait = |what: &'static str, done: &dyn Fn(&tmc_sensor_sim::Progress) -> bool| {
        let progress = progress.clone();
        let got = progress.wait_for(WAIT, done);
        got.unwrap_or_else(|| panic!("{what}: {:?}", progress.get()))
    };
    let before = wait("readings acknowledged before the kill", &|p| {
        p.acknowledged >= 6
    });
    // Frozen, the broker takes publishes without acknowledging them: readings are in flight when it dies.
    signal(&broker, "STOP");
    wait("readings sent to the frozen broker", &|p| {
        p.publishes >= before.publishes + 2
    });
    drop(broker); // SIGKILL
    let _broker = s.start_broker();

    let summary = tokio::time::timeout(WAIT, run)
        .await
        .expect("the simulator finishes within the bounded wait")
        .unwrap()
        .unwrap();
    let end = progress.get();
    eprintln!("broker killed: {summary}; {end:?}");
    assert!(summary.complete(24), "{summary}");
    assert_eq!(summary.dropped(), 0, "{summary}");
    // Each sensor lost its connection and connected again; the readings in flight went again.
    assert!(end.connects >= 4 && end.failures >= 2, "{end:?}");
    assert!(end.publishes > end.acknowledged, "{end:?}");
    let got = ledger_by_sensor(&s);
    assert_eq!(
        got,
        all_seqs(&sensors, 1..=24),
        "every reading once, in order"
    );
    // Every acknowledged reading reached the relay (a reading re-sent after the kill may arrive twice:
    // QoS 1 is at least once, and the relay's queue recognises copies).
    let received = s.until_fence(&mut relay).await;
    let mut distinct: Vec<Vec<u8>> = received.into_iter().map(|(_, p)| p).collect();
    distinct.sort();
    distinct.dedup();
    let mut want: Vec<Vec<u8>> = expected(&sensors, 1..=24).into_values().flatten().collect();
    want.sort();
    assert_eq!(distinct, want);
}

/// Runs the binary under the test runner (qemu for the aarch64 build) as a child process.
fn sim_command(s: &Setup) -> std::process::Command {
    let mut cmd = tmc_testkit::bin_command(env!("CARGO_BIN_EXE_tmc-sensor-sim"));
    cmd.arg("--site")
        .arg(s.site.dir())
        .args(["--host", "127.0.0.1", "--port", &s.port.to_string()])
        .arg("--ledger")
        .arg(s.ledger())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    cmd
}

/// Reads `child`'s stderr until a line contains `wanted` (bounded), then SIGTERMs it; returns its exit
/// status and all of its stderr.
fn terminate_after_line(
    mut child: std::process::Child,
    wanted: &str,
) -> (std::process::ExitStatus, String) {
    let stderr = child.stderr.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    let reader = std::thread::spawn(move || {
        let mut all = String::new();
        for line in BufReader::new(stderr).lines().map_while(Result::ok) {
            let _ = tx.send(line.clone());
            all.push_str(&line);
            all.push('\n');
        }
        all
    });
    let deadline = Instant::now() + WAIT;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        match rx.recv_timeout(left) {
            Ok(line) if line.contains(wanted) => break,
            Ok(_) => {}
            Err(_) => {
                let _ = child.kill();
                panic!("no line with {wanted:?}: {}", reader.join().unwrap());
            }
        }
    }
    tmc_testkit::signal(child.id(), "TERM").unwrap();
    let status = child.wait().unwrap();
    (status, reader.join().unwrap())
}

#[test]
fn a_broker_of_another_site_is_refused_with_the_reason_and_nothing_is_acknowledged() {
    let s = Setup::new();
    s.enroll(&["sensor1"], TopicStyle::PerSensor);
    // The broker runs with another site's CA and certificate (also for mqtt.com).
    let other = new_site(&s.dir.path().join("other-site"));
    let _broker = s.start_broker_of(&other);

    let child = sim_command(&s)
        .args(["--sensors", "sensor1", "--interval", "50ms"])
        .spawn()
        .unwrap();
    let (status, stderr) = terminate_after_line(child, "sensor1: mqtt: connect failed");
    assert!(
        stderr.contains("sensor1: mqtt: connect failed: TLS handshake failed: server certificate not from the site CA"),
        "{stderr}"
    );
    assert!(status.success(), "{status}: {stderr}");
    // The readings taken never got through (how many were taken before the stop depends on the machine's
    // speed); the stop's grace period ended without them.
    let unacknowledged = stderr
        .lines()
        .last()
        .and_then(|l| l.strip_prefix("sensor-sim: 1 sensor, 0 acknowledged, 0 dropped, "))
        .and_then(|l| l.strip_suffix(" unacknowledged at stop"))
        .and_then(|n| n.parse::<u64>().ok());
    assert!(unacknowledged.is_some_and(|n| n >= 1), "{stderr}");
    assert!(ledger_by_sensor(&s).is_empty());
}

#[test]
fn the_binary_stops_on_sigterm_with_a_ledger_of_what_was_acknowledged() {
    let s = Setup::new();
    s.enroll(&["sensor1"], TopicStyle::Legacy);
    let _broker = s.start_broker();
    let child = sim_command(&s)
        .args([
            "--count",
            "1",
            "--interval",
            "20ms",
            "--topic",
            "esp8266",
            "-v",
        ])
        .spawn()
        .unwrap();
    let (status, stderr) = terminate_after_line(child, "sensor1: mqtt: connected");
    assert!(status.success(), "{status}: {stderr}");
    let seqs = ledger_by_sensor(&s).remove("sensor1").unwrap_or_default();
    let n = seqs.len() as u64;
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>());
    assert!(read_ledger(&s.ledger())
        .unwrap()
        .iter()
        .all(|e| e.topic == "/esp8266"));
    assert_eq!(
        stderr.lines().last().unwrap_or_default(),
        format!("sensor-sim: 1 sensor, {n} acknowledged, 0 dropped"),
        "{stderr}"
    );
}

#[test]
fn missing_or_mismatched_identities_are_named_before_anything_is_sent() {
    let s = Setup::new();
    let prepare = |names: &[&str]| {
        let mut config = s.config(names, 1);
        config.ledger = None;
        Simulator::prepare(&config)
            .map(|_| ())
            .unwrap_err()
            .to_string()
    };
    // No certificate.
    let cert9 = s.site.cert_path("sensor9");
    let err = prepare(&["fence", "sensor9"]);
    assert!(
        err.starts_with(&format!(
            "sensor9: no client certificate at {}",
            cert9.display()
        )) && err.contains("--issue"),
        "{err}"
    );
    // A certificate for a site-made key: no chip holds it.
    s.site
        .issue("sensor8", Role::Sensor, &[], Validity::days(30))
        .unwrap();
    let err = prepare(&["sensor8"]);
    assert!(err.contains("the chip holding its key does not"), "{err}");
    // Another chip than the one certified.
    s.enroll(&["sensor7"], TopicStyle::PerSensor);
    std::fs::copy(
        chip_path(s.site.dir(), FENCE),
        chip_path(s.site.dir(), "sensor7"),
    )
    .unwrap();
    let err = prepare(&["sensor7"]);
    assert!(err.contains("certifies another key than slot 0"), "{err}");

    // The binary says the same in one line, before connecting to anything.
    let out = sim_command(&s)
        .args(["--sensors", "sensor9", "--readings", "1"])
        .output()
        .unwrap();
    let reason = tmc_testkit::failure_reason(&out);
    assert!(
        reason.starts_with(&format!(
            "tmc-sensor-sim: sensor9: no client certificate at {}",
            cert9.display()
        )),
        "{reason}"
    );
    // Bad command lines are refused by the parser (status 2).
    for bad in [
        &["--count", "0"][..],
        &["--count", "1", "--interval", "fast"],
        &["--count", "1", "--topic", "sensors/#"],
        &["--count", "1", "--readings", "x"],
    ] {
        let out = sim_command(&s).args(bad).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{bad:?}");
    }
    let out = sim_command(&s)
        .args(["--count", "1", "--readings", "0"])
        .output()
        .unwrap();
    assert!(tmc_testkit::failure_reason(&out).contains("--readings must be at least 1"));
}

#[tokio::test(flavor = "multi_thread")]
async fn a_broker_certificate_without_the_broker_name_is_refused() {
    let s = Setup::new();
    s.enroll(&["sensor1"], TopicStyle::PerSensor);
    let _broker = s.start_broker();
    // The site's broker certificate names mqtt.com (and 127.0.0.1), not this.
    let mut config = s.config(&["sensor1"], 1);
    config.broker_name = "other.example".into();
    config.stop_grace = Duration::from_millis(100);
    let sim = Simulator::prepare(&config).unwrap();
    let progress = sim.progress();
    let stop = StopSignal::new();
    let run = {
        let stop = stop.clone();
        tokio::task::spawn_blocking(move || sim.run(&stop))
    };
    let seen = progress.wait_for(WAIT, |p| p.failures >= 2);
    stop.request();
    let summary = run.await.unwrap().unwrap();
    assert!(seen.is_some(), "{:?}", progress.get());
    assert_eq!(
        (summary.acknowledged(), summary.connects()),
        (0, 0),
        "{summary:?}"
    );
    assert!(summary.stopped);
    assert!(ledger_by_sensor(&s).is_empty());
}
