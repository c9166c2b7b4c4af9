//! The simulator against the real mosquitto (Debian's) with the site's mTLS + ACL configuration,
//! started on 127.0.0.1 by each test; a relay-like subscriber checks what the broker delivered.
#![allow(clippy::unwrap_used)]

use std::collections::{BTreeMap, BTreeSet};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, MqttOptions, Packet, QoS};
use tmc_mqtt::{BrokerConfig, Session};
use tmc_pki::{broker, Role, Site, SiteInit, Validity};
use tmc_sensor_sim::{
    payload, read_ledger, sensor_topic, LedgerEntry, SimConfig, Simulator, StopSignal, Summary,
    TopicStyle,
};
use tmc_testkit::Mosquitto;
use tokio::sync::mpsc;

/// Every network wait in these tests is bounded by this.
const WAIT: Duration = Duration::from_secs(30);
const FENCE: &str = "fence";

struct Setup {
    dir: tempfile::TempDir,
    site: Site,
    port: u16,
}

impl Setup {
    /// A site whose broker certificate also names 127.0.0.1, with a relay and a fence sensor.
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let site = Site::init(
            &dir.path().join("site"),
            &SiteInit {
                extra_names: vec!["127.0.0.1".into()],
                ..SiteInit::default()
            },
        )
        .unwrap();
        site.issue("relay1", Role::Relay, &[], Validity::days(30))
            .unwrap();
        site.issue(FENCE, Role::Sensor, &[], Validity::days(30))
            .unwrap();
        Setup {
            dir,
            site,
            port: tmc_testkit::free_port(),
        }
    }

    fn issue(&self, names: &[&str], topics: &[String]) {
        for name in names {
            self.site
                .issue(name, Role::Sensor, topics, Validity::days(30))
                .unwrap();
        }
    }

    fn state_dir(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    /// Writes the broker configuration from the site as it is now (its ACL) and starts mosquitto.
    fn start_broker(&self) -> Mosquitto {
        let conf = self.dir.path().join("broker");
        let options = broker::BrokerOptions {
            port: self.port,
            bind: Some("127.0.0.1".into()),
            install_dir: None,
            plain_loopback_port: None,
        };
        broker::write(&self.site, &options, &conf).unwrap();
        std::fs::create_dir_all(self.state_dir()).unwrap();
        Mosquitto::start(&conf, &self.state_dir(), self.port)
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
        tokio::time::timeout(WAIT, sim.run(&StopSignal::new()))
            .await
            .expect("the simulator finishes within the bounded wait")
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
    for LedgerEntry {
        sensor,
        topic: _,
        seq,
        payload: p,
    } in read_ledger(&s.ledger()).unwrap()
    {
        assert_eq!(p.as_bytes(), payload(&sensor, seq), "{sensor} #{seq}");
        map.entry(sensor).or_default().push(seq);
    }
    map
}

#[tokio::test(flavor = "current_thread")]
async fn three_sensors_publish_exactly_their_readings_and_the_ledger_lists_them() {
    let s = Setup::new();
    let sensors = ["sensor1", "sensor2", "sensor3"];
    s.issue(&sensors, &[]);
    let _broker = s.start_broker();
    let mut relay = Relay::start(&s, &["sensors/+/reading", "/esp8266"], Session::Clean).await;

    let summary = s.simulate(&s.config(&sensors, 5)).await;
    assert_eq!(
        summary.to_string(),
        "sensor-sim: 3 sensors, 15 acknowledged, 0 refused"
    );
    assert!(summary.complete(5) && !summary.stopped);

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
    let want: BTreeMap<String, Vec<u64>> = sensors
        .iter()
        .map(|s| (s.to_string(), (1..=5).collect()))
        .collect();
    assert_eq!(ledger_by_sensor(&s), want);
}

#[tokio::test(flavor = "current_thread")]
async fn publishing_to_another_sensors_topic_is_refused_and_kept_out_of_the_ledger() {
    let s = Setup::new();
    s.issue(&["sensor1", "sensor2"], &[]);
    let _broker = s.start_broker();
    let mut relay = Relay::start(&s, &["sensors/#"], Session::Clean).await;

    // Both publish to sensor2's topic: the ACL lets only sensor2 do that.
    let mut config = s.config(&["sensor1", "sensor2"], 3);
    config.topic = TopicStyle::Template("sensors/sensor2/reading".into());
    let summary = s.simulate(&config).await;
    assert_eq!(
        summary.to_string(),
        "sensor-sim: 2 sensors, 3 acknowledged, 3 refused"
    );
    let (one, two) = (&summary.sensors[0], &summary.sensors[1]);
    assert_eq!(
        (one.sensor.as_str(), one.acknowledged, one.refused),
        ("sensor1", 0, 3)
    );
    assert_eq!(
        (two.sensor.as_str(), two.acknowledged, two.refused),
        ("sensor2", 3, 0)
    );

    let received = s.until_fence(&mut relay).await;
    assert_eq!(by_sensor(&received), expected(&["sensor2"], 1..=3));
    assert!(received
        .iter()
        .all(|(topic, _)| topic == "sensors/sensor2/reading"));
    let ledger = read_ledger(&s.ledger()).unwrap();
    assert!(ledger
        .iter()
        .all(|e| e.sensor == "sensor2" && e.topic == "sensors/sensor2/reading"));
    assert_eq!(
        ledger_by_sensor(&s),
        BTreeMap::from([("sensor2".to_string(), vec![1, 2, 3])])
    );
}

#[tokio::test(flavor = "current_thread")]
async fn readings_nobody_subscribes_to_are_not_acknowledged() {
    let s = Setup::new();
    s.issue(&["sensor1"], &[]);
    let _broker = s.start_broker();
    // No relay: mosquitto accepts with PUBACK 16 (no matching subscribers).
    let summary = s.simulate(&s.config(&["sensor1"], 2)).await;
    assert_eq!(
        summary.to_string(),
        "sensor-sim: 1 sensor, 0 acknowledged, 0 refused, 2 accepted without subscribers"
    );
    assert!(!summary.complete(2));
    assert_eq!(read_ledger(&s.ledger()).unwrap(), Vec::new());
}

#[test]
fn missing_certificates_are_named_and_issue_creates_them() {
    let s = Setup::new();
    s.issue(&["sensor8"], &[]);
    std::fs::remove_file(s.site.key_path("sensor8")).unwrap();
    let prepare = |names: &[&str]| {
        let mut config = s.config(names, 1);
        config.ledger = None;
        Simulator::prepare(&config).map(|_| ())
    };
    let err = prepare(&["fence", "sensor9"]).unwrap_err().to_string();
    let cert9 = s.site.cert_path("sensor9");
    assert!(
        err.starts_with(&format!(
            "sensor9: no client certificate at {}",
            cert9.display()
        )) && err.contains("--issue"),
        "{err}"
    );
    let err = prepare(&["sensor8"]).unwrap_err().to_string();
    assert!(
        err.starts_with(&format!(
            "sensor8: no client key at {}",
            s.site.key_path("sensor8").display()
        )),
        "{err}"
    );

    // The binary says the same in one line, before connecting to anything.
    let out = tmc_testkit::bin_command(env!("CARGO_BIN_EXE_tmc-sensor-sim"))
        .arg("--site")
        .arg(s.site.dir())
        .args(["--sensors", "sensor9", "--port", "1", "--readings", "1"])
        .stdin(Stdio::null())
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

    // --issue creates what is missing, as a sensor identity (the legacy topic when asked for).
    let mut config = s.config(&["sensor9"], 1);
    config.issue = true;
    config.topic = TopicStyle::Legacy;
    Simulator::prepare(&config).unwrap();
    assert!(cert9.exists() && s.site.key_path("sensor9").exists());
    let identity = s
        .site
        .list()
        .unwrap()
        .into_iter()
        .find(|i| i.name == "sensor9")
        .unwrap();
    assert_eq!(identity.role, Role::Sensor);
    assert!(identity.topics.contains(&"/esp8266".to_string()));
    // A half-present identity is not reissued.
    let mut config = s.config(&["sensor8"], 1);
    config.issue = true;
    assert!(Simulator::prepare(&config).is_err());
}

/// Runs the binary under the test runner (qemu for the aarch64 build) as a child process.
fn sim_command(s: &Setup) -> tokio::process::Command {
    let mut cmd = tmc_testkit::bin_command(env!("CARGO_BIN_EXE_tmc-sensor-sim"));
    cmd.arg("--site")
        .arg(s.site.dir())
        .args(["--host", "127.0.0.1", "--port", &s.port.to_string()])
        .arg("--ledger")
        .arg(s.ledger())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut cmd = tokio::process::Command::from(cmd);
    cmd.kill_on_drop(true);
    cmd
}

#[tokio::test(flavor = "current_thread")]
async fn the_binary_publishes_on_the_legacy_topic_and_exits_0_when_done() {
    let s = Setup::new();
    s.issue(&["sensor1", "sensor2"], &["/esp8266".into()]);
    let _broker = s.start_broker();
    let mut relay = Relay::start(&s, &["sensors/+/reading", "/esp8266"], Session::Clean).await;

    let out = tokio::time::timeout(
        WAIT,
        sim_command(&s)
            .args(["--sensors", "sensor1,sensor2", "--topic", "esp8266"])
            .args(["--interval", "10ms", "--readings", "3"])
            .output(),
    )
    .await
    .expect("the binary finishes within the bounded wait")
    .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {stderr}", out.status);
    assert_eq!(
        stderr.lines().last(),
        Some("sensor-sim: 2 sensors, 6 acknowledged, 0 refused"),
        "{stderr}"
    );

    let received = s.until_fence(&mut relay).await;
    assert!(received.iter().all(|(topic, _)| topic == "/esp8266"));
    assert_eq!(
        by_sensor(&received),
        expected(&["sensor1", "sensor2"], 1..=3)
    );
    let ledger = read_ledger(&s.ledger()).unwrap();
    assert!(ledger.iter().all(|e| e.topic == "/esp8266"));
    assert_eq!(ledger.len(), 6);
}

#[tokio::test(flavor = "current_thread")]
async fn sigterm_stops_the_binary_cleanly_with_a_ledger_of_what_was_acknowledged() {
    let s = Setup::new();
    s.issue(&["sensor1"], &[]);
    let _broker = s.start_broker();
    let mut relay = Relay::start(&s, &["sensors/+/reading"], Session::Clean).await;

    let child = sim_command(&s)
        .args(["--count", "1", "--interval", "20ms"])
        .spawn()
        .unwrap();
    // Readings are flowing once the relay has some.
    for _ in 0..3 {
        relay.next().await;
    }
    let pid = child.id().unwrap();
    let kill = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(kill.success());
    let out = tokio::time::timeout(WAIT, child.wait_with_output())
        .await
        .expect("the binary stops within the bounded wait")
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{}: {stderr}", out.status);

    let ledger = ledger_by_sensor(&s);
    let seqs = ledger.get("sensor1").cloned().unwrap_or_default();
    let n = seqs.len() as u64;
    assert!(n >= 3, "{seqs:?}");
    assert_eq!(seqs, (1..=n).collect::<Vec<_>>());
    assert_eq!(
        stderr.lines().last().unwrap_or_default(),
        format!("sensor-sim: 1 sensor, {n} acknowledged, 0 refused"),
        "{stderr}"
    );
}

/// Stops mosquitto with SIGTERM (it saves its sessions; SIGCONT in case it was frozen) and waits until
/// the process has exited.
async fn terminate(broker: Mosquitto) {
    signal(&broker, "-TERM");
    signal(&broker, "-CONT");
    let stat = format!("/proc/{}/stat", broker.pid());
    let deadline = std::time::Instant::now() + WAIT;
    // Exited = a zombie (this process is its parent and has not reaped it yet) or gone.
    while std::fs::read_to_string(&stat)
        .map(|s| {
            !s.rsplit(')')
                .next()
                .unwrap_or_default()
                .trim_start()
                .starts_with('Z')
        })
        .unwrap_or(false)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "mosquitto did not stop on SIGTERM"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    drop(broker);
}

fn signal(broker: &Mosquitto, flag: &str) {
    let status = std::process::Command::new("kill")
        .args([flag, &broker.pid().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
}

/// Makes mosquitto write its persistence file now (SIGUSR1) and waits until it is there.
async fn save_broker_state(s: &Setup, broker: &Mosquitto) {
    let db = s.state_dir().join("mosquitto.db");
    assert!(!db.exists());
    signal(broker, "-USR1");
    let deadline = std::time::Instant::now() + WAIT;
    while !db.exists() {
        assert!(
            std::time::Instant::now() < deadline,
            "mosquitto did not save on SIGUSR1"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Restarts the broker while two sensors publish 40 readings each; every reading must end up
/// acknowledged, once, in the ledger.
async fn restart_scenario(graceful: bool) -> (Summary, tmc_sensor_sim::Progress) {
    let s = Setup::new();
    let sensors = ["sensor1", "sensor2"];
    s.issue(&sensors, &[]);
    let broker = s.start_broker();
    // A relay with a persistent session: the broker keeps its subscription (and queues for it) across
    // the restart, so readings keep being accepted with Success rather than "no subscribers".
    let mut relay = Relay::start(&s, &["sensors/+/reading"], Session::Persistent).await;
    if !graceful {
        // A killed broker comes back with its last saved state: this one has the relay's session and
        // subscription, and nothing of the sensors, so their sessions are lost.
        save_broker_state(&s, &broker).await;
    }

    let mut config = s.config(&sensors, 40);
    config.interval = Duration::from_millis(25);
    let sim = Simulator::prepare(&config).unwrap();
    let mut progress = sim.progress();
    let stop = StopSignal::new();
    let run = tokio::spawn(async move { sim.run(&stop).await });

    tokio::time::timeout(WAIT, progress.wait_for(|p| p.acknowledged >= 10))
        .await
        .expect("readings acknowledged before the restart")
        .unwrap();
    // Freeze the broker so that readings are in flight (sent, no PUBACK) when it goes away.
    signal(&broker, "-STOP");
    let sent = progress.borrow().sent;
    tokio::time::timeout(WAIT, progress.wait_for(|p| p.sent >= sent + 4))
        .await
        .expect("readings sent to the frozen broker")
        .unwrap();
    if graceful {
        terminate(broker).await;
    } else {
        drop(broker); // SIGKILL
    }
    let _broker = s.start_broker();

    let summary = tokio::time::timeout(WAIT, run)
        .await
        .expect("the simulator finishes within the bounded wait")
        .unwrap()
        .unwrap();
    let final_progress = *progress.borrow();
    assert!(summary.complete(40), "{summary}");
    assert_eq!(summary.refused(), 0, "{summary}");
    // Each sensor connected at least twice: before and after the restart.
    assert!(final_progress.connects >= 4, "{final_progress:?}");
    let want: BTreeMap<String, Vec<u64>> = sensors
        .iter()
        .map(|s| (s.to_string(), (1..=40).collect()))
        .collect();
    let mut got = ledger_by_sensor(&s);
    let lines: usize = got.values().map(Vec::len).sum();
    assert_eq!(lines, 80, "every reading once in the ledger");
    got.values_mut().for_each(|v| v.sort_unstable());
    assert_eq!(got, want);

    if graceful {
        // The broker kept everything: each acknowledged reading reaches the relay (at least once).
        let received = s.until_fence(&mut relay).await;
        assert_relay_got_all(&received, &sensors, 40);
        // mosquitto 2.0 saves only sessions whose connection began with clean start off, and a run's
        // first connection starts clean: the sensors' in-flight readings come back as SessionReset and
        // are published again. (Were the sessions kept, rumqttc would re-send them with DUP instead.)
        assert!(
            final_progress.resent >= 4 || final_progress.resumed >= 2,
            "{final_progress:?}"
        );
        eprintln!(
            "graceful restart: relay received {} publishes for 80 readings",
            received.len()
        );
    } else {
        // The readings sent to the frozen broker died with it and were published again.
        assert!(final_progress.resent >= 4, "{final_progress:?}");
        assert_eq!(final_progress.resumed, 0, "{final_progress:?}");
    }
    (summary, final_progress)
}

/// Every reading of `sensors` 1..=`readings` is among the relay's publishes (duplicates allowed).
fn assert_relay_got_all(received: &[(String, Vec<u8>)], sensors: &[&str], readings: u64) {
    let distinct: BTreeSet<Vec<u8>> = received.iter().map(|(_, p)| p.clone()).collect();
    let all: BTreeSet<Vec<u8>> = expected(sensors, 1..=readings)
        .into_values()
        .flatten()
        .collect();
    assert_eq!(distinct, all, "the relay got every reading");
}

#[tokio::test(flavor = "current_thread")]
async fn readings_survive_a_broker_stopped_with_sigterm() {
    let (summary, progress) = restart_scenario(true).await;
    eprintln!("SIGTERM restart: {summary}; {progress:?}");
}

#[tokio::test(flavor = "current_thread")]
async fn readings_survive_a_killed_broker_that_lost_the_sensor_sessions() {
    let (summary, progress) = restart_scenario(false).await;
    eprintln!("SIGKILL restart: {summary}; {progress:?}");
}

/// A TCP proxy on 127.0.0.1 in front of the broker: the test can hold back what the broker sends
/// (its PUBACKs) and cut every connection, as a network drop would, while the broker stays up.
struct Proxy {
    port: u16,
    hold: std::sync::Arc<tokio::sync::watch::Sender<bool>>,
    cut: std::sync::Arc<tokio::sync::watch::Sender<u64>>,
    task: tokio::task::JoinHandle<()>,
}

impl Proxy {
    async fn start(broker_port: u16) -> Proxy {
        use std::sync::Arc;
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", 0))
            .await
            .unwrap();
        let port = listener.local_addr().unwrap().port();
        let hold = Arc::new(tokio::sync::watch::Sender::new(false));
        let cut = Arc::new(tokio::sync::watch::Sender::new(0u64));
        let (hold_tx, cut_tx) = (hold.clone(), cut.clone());
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                let mut cut = cut_tx.subscribe();
                let mut hold = hold_tx.subscribe();
                tokio::spawn(async move {
                    let Ok(upstream) =
                        tokio::net::TcpStream::connect(("127.0.0.1", broker_port)).await
                    else {
                        return;
                    };
                    let (mut client_rx, mut client_tx) = client.into_split();
                    let (mut up_rx, mut up_tx) = upstream.into_split();
                    let to_broker = tokio::io::copy(&mut client_rx, &mut up_tx);
                    let to_client = async {
                        let mut buf = vec![0u8; 16 * 1024];
                        loop {
                            let n = match up_rx.read(&mut buf).await {
                                Ok(0) | Err(_) => return,
                                Ok(n) => n,
                            };
                            if hold.wait_for(|held| !*held).await.is_err() {
                                return;
                            }
                            if client_tx.write_all(&buf[..n]).await.is_err() {
                                return;
                            }
                        }
                    };
                    // A cut drops both sockets: the sensor sees its connection reset.
                    tokio::select! {
                        _ = to_broker => {}
                        () = to_client => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        Proxy {
            port,
            hold,
            cut,
            task,
        }
    }

    fn hold(&self, held: bool) {
        self.hold.send_replace(held);
    }

    /// Cuts every connection open now; later ones pass.
    fn cut(&self) {
        self.cut.send_modify(|generation| *generation += 1);
    }
}

impl Drop for Proxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

#[tokio::test(flavor = "current_thread")]
async fn a_dropped_connection_resumes_the_session_and_rumqttc_resends_with_dup() {
    let s = Setup::new();
    let sensors = ["sensor1", "sensor2"];
    s.issue(&sensors, &[]);
    let _broker = s.start_broker();
    let mut relay = Relay::start(&s, &["sensors/+/reading"], Session::Clean).await;
    let proxy = Proxy::start(s.port).await;

    let mut config = s.config(&sensors, 40);
    config.port = proxy.port;
    config.interval = Duration::from_millis(25);
    let sim = Simulator::prepare(&config).unwrap();
    let mut progress = sim.progress();
    let stop = StopSignal::new();
    let run = tokio::spawn(async move { sim.run(&stop).await });

    tokio::time::timeout(WAIT, progress.wait_for(|p| p.acknowledged >= 10))
        .await
        .expect("readings acknowledged before the drop")
        .unwrap();
    // PUBACKs stop coming back, so readings are in flight when the connections drop.
    proxy.hold(true);
    let sent = progress.borrow().sent;
    tokio::time::timeout(WAIT, progress.wait_for(|p| p.sent >= sent + 4))
        .await
        .expect("readings sent while the PUBACKs are held")
        .unwrap();
    proxy.cut();
    proxy.hold(false);

    let summary = tokio::time::timeout(WAIT, run)
        .await
        .expect("the simulator finishes within the bounded wait")
        .unwrap()
        .unwrap();
    let final_progress = *progress.borrow();
    eprintln!("connection drop: {summary}; {final_progress:?}");
    assert!(summary.complete(40), "{summary}");
    assert_eq!(summary.refused(), 0, "{summary}");
    // The broker kept each sensor's session; rumqttc re-sent the in-flight readings itself.
    assert!(final_progress.resumed >= 2, "{final_progress:?}");
    assert_eq!(final_progress.resent, 0, "{final_progress:?}");
    let mut got = ledger_by_sensor(&s);
    assert_eq!(got.values().map(Vec::len).sum::<usize>(), 80);
    got.values_mut().for_each(|v| v.sort_unstable());
    let want: BTreeMap<String, Vec<u64>> = sensors
        .iter()
        .map(|s| (s.to_string(), (1..=40).collect()))
        .collect();
    assert_eq!(got, want);
    let received = s.until_fence(&mut relay).await;
    assert_relay_got_all(&received, &sensors, 40);
    eprintln!(
        "connection drop: relay received {} publishes for 80 readings",
        received.len()
    );
}
