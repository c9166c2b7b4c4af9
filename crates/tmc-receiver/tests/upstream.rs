//! The upstream output against the real mosquitto (Debian's), on 127.0.0.1 with plain TCP: QoS 1 on the templated
//! topics, and an outage that only makes the journal grow.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use tmc_envelope::{Encoding, KeyRing, MemoryCounter, Opener, Reading, Sealer};
use tmc_mqtt::rumqttc::{AsyncClient, Event, EventLoop, Outgoing, Packet, PublishOptions, QoS};
use tmc_mqtt::{BrokerConfig, ClientOptions, Session};
use tmc_queue::{legacy_sender, Inbox, Record};
use tmc_receiver::config::{HomeAssistantSection, UpstreamConfig};
use tmc_receiver::outputs::upstream::Upstream;
use tmc_receiver::outputs::UPSTREAM;
use tmc_receiver::shared::{Meta, Shared, Snapshot};
use tmc_service::{Shutdown, Watchdog};
use tmc_testkit::Mosquitto;

/// Every wait in these tests is bounded by this.
const WAIT: Duration = Duration::from_secs(30);

fn ring() -> KeyRing {
    KeyRing::from_secrets(&[(1, [0x42; 32])]).unwrap()
}

struct Setup {
    dir: tempfile::TempDir,
    port: u16,
    shared: Arc<Shared>,
    sealer: Sealer<MemoryCounter>,
    tag: u32,
}

impl Setup {
    fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = tmc_testkit::free_port();
        // A plain listener on loopback; persistence so that a subscriber's session survives a broker restart.
        let conf = dir.path().join("conf");
        std::fs::create_dir_all(&conf).unwrap();
        std::fs::write(
            conf.join("tmc.conf"),
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence true\n"),
        )
        .unwrap();
        std::fs::create_dir_all(dir.path().join("state")).unwrap();
        let mut inbox = Inbox::open(&dir.path().join("inbox.db"), 32).unwrap();
        inbox.add_output(UPSTREAM).unwrap();
        let shared = Arc::new(Shared::new(inbox, Meta::default()));
        shared.register_output(UPSTREAM, Some(false));
        Setup {
            dir,
            port,
            shared,
            sealer: Sealer::new(&ring(), 10, MemoryCounter::starting_at(10, 0)),
            tag: 0,
        }
    }

    fn state(&self) -> PathBuf {
        self.dir.path().join("state")
    }

    fn start_broker(&self) -> Mosquitto {
        Mosquitto::start(&self.dir.path().join("conf"), &self.state(), self.port)
    }

    /// A token of two readings (one per topic) from sender 10, committed to the inbox.
    fn commit(&mut self) {
        let tag = self.tag;
        self.tag += 1;
        self.commit_readings(&[
            Reading::new("sensors/kitchen/reading", 1_700_000_000, format!("{tag}.0")),
            Reading::new("/esp8266", 1_700_000_000, format!("{tag}.1")),
        ]);
    }

    /// A token of `readings` from sender 10, committed to the inbox.
    fn commit_readings(&mut self, readings: &[Reading]) {
        let token = self
            .sealer
            .seal(readings, 1_700_000_000, Encoding::Packed)
            .unwrap();
        let mut inbox = self.shared.inbox();
        let opened = Opener::new(ring(), inbox.replay_guard().clone())
            .open(&token.bytes)
            .unwrap();
        // No radio loop here to wake the output: it looks for new records every second on its own.
        inbox.commit(&opened).unwrap();
    }

    /// Starts the upstream output on its own thread, as the service does.
    fn start_output(&self) -> (Shutdown, JoinHandle<()>) {
        self.start_output_with(None)
    }

    /// Starts the upstream output with Home Assistant discovery as given.
    fn start_output_with(
        &self,
        home_assistant: Option<HomeAssistantSection>,
    ) -> (Shutdown, JoinHandle<()>) {
        let upstream = Upstream::new(UpstreamConfig {
            broker: BrokerConfig::plain("127.0.0.1", self.port),
            topic: "site/{sensor}/{sender}/{topic}".parse().unwrap(),
            home_assistant,
        })
        .unwrap();
        let shutdown = Shutdown::new();
        let heartbeat = Watchdog::new().heartbeat(UPSTREAM);
        let (stop, shared) = (shutdown.clone(), self.shared.clone());
        let thread = std::thread::spawn(move || upstream.run(&shared, &stop, &heartbeat));
        (shutdown, thread)
    }

    fn wait(&self, what: &str, done: impl FnMut(&Snapshot) -> bool) -> Snapshot {
        self.shared.wait_until(WAIT, done).unwrap_or_else(|| {
            panic!(
                "{what}: not reached within {WAIT:?}: {:#?}",
                self.shared.snapshot()
            )
        })
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap()
}

/// Connects a watcher and waits for its CONNACK.
async fn connect(port: u16, id: &str, session: Session) -> (AsyncClient, EventLoop) {
    let options = BrokerConfig::plain("127.0.0.1", port)
        .options(id, session)
        .unwrap();
    let (client, mut eventloop) = AsyncClient::builder(options).capacity(16).build();
    tokio::time::timeout(WAIT, async {
        loop {
            if let Event::Incoming(Packet::ConnAck(_)) = eventloop.poll().await.unwrap() {
                return;
            }
        }
    })
    .await
    .expect("CONNACK within the bounded wait");
    (client, eventloop)
}

async fn subscribe(client: &AsyncClient, eventloop: &mut EventLoop, filter: &str) {
    client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    tokio::time::timeout(WAIT, async {
        loop {
            if let Event::Incoming(Packet::SubAck(_)) = eventloop.poll().await.unwrap() {
                return;
            }
        }
    })
    .await
    .expect("SUBACK within the bounded wait");
}

/// The next `n` publishes: (topic, QoS, payload as JSON).
async fn collect(eventloop: &mut EventLoop, n: usize) -> Vec<(String, QoS, serde_json::Value)> {
    let mut got = Vec::new();
    tokio::time::timeout(WAIT, async {
        while got.len() < n {
            if let Event::Incoming(Packet::Publish(p)) = eventloop.poll().await.unwrap() {
                got.push((
                    String::from_utf8(p.topic.to_vec()).unwrap(),
                    p.qos,
                    serde_json::from_slice(&p.payload).unwrap(),
                ));
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{n} publishes expected, got {}: {got:?}", got.len()));
    got
}

/// Stops mosquitto with SIGTERM, as systemd does, so that it writes its persistence file, and waits until it
/// has exited.
fn stop_cleanly(broker: Mosquitto, state: &Path) {
    let pid = broker.pid();
    let status = std::process::Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let exited = || match std::fs::read_to_string(format!("/proc/{pid}/stat")) {
        // Exited and not yet reaped (the Mosquitto handle reaps it on drop): state Z.
        Ok(stat) => stat
            .rsplit(')')
            .next()
            .is_some_and(|rest| rest.trim_start().starts_with('Z')),
        Err(_) => true,
    };
    let deadline = Instant::now() + WAIT;
    while !(exited() && state.join("mosquitto.db").exists()) {
        assert!(
            Instant::now() < deadline,
            "mosquitto did not stop on SIGTERM:\n{}",
            broker.log_text()
        );
        std::thread::sleep(Duration::from_millis(10));
    }
    drop(broker);
}

fn data(publishes: &[(String, QoS, serde_json::Value)]) -> Vec<&str> {
    publishes
        .iter()
        .map(|(_, _, p)| p["data"].as_str().unwrap())
        .collect()
}

#[test]
fn readings_are_republished_with_qos_1_on_their_templated_topics() {
    let mut s = Setup::new();
    let _broker = s.start_broker();
    let rt = runtime();
    let (watcher, mut events) = rt.block_on(connect(s.port, "watcher", Session::Clean));
    rt.block_on(subscribe(&watcher, &mut events, "site/#"));

    s.commit();
    s.commit();
    s.shared
        .inbox()
        .commit_legacy(
            12,
            &[Reading::new("/esp8266", 1_700_000_100, b"legacy".to_vec())],
        )
        .unwrap();
    let (shutdown, thread) = s.start_output();
    s.wait("all delivered", |snap| {
        let o = &snap.outputs[UPSTREAM];
        o.delivered == 5 && o.backlog == 0 && o.connected == Some(true)
    });
    let got = rt.block_on(collect(&mut events, 5));
    assert_eq!(data(&got), ["0.0", "0.1", "1.0", "1.1", "legacy"]);
    assert!(
        got.iter().all(|(_, qos, _)| *qos == QoS::AtLeastOnce),
        "{got:?}"
    );
    assert_eq!(got[0].0, "site/kitchen/10/sensors/kitchen/reading");
    // The legacy topic names no sensor: {sensor} is the placeholder, never "esp8266".
    assert_eq!(got[1].0, "site/~unknown/10/esp8266");
    // A legacy frame's {sender} is the radio node it came from.
    assert_eq!(got[4].0, "site/~unknown/12/esp8266");
    // The payload is the reading's JSON line.
    assert_eq!(got[3].2["sender"], 10);
    assert_eq!(got[3].2["counter"], 1);
    assert_eq!(got[3].2["index"], 1);
    assert_eq!(got[4].2["profile"], "legacy");
    assert!(
        s.shared.inbox().is_empty().unwrap(),
        "delivered records are pruned"
    );

    shutdown.request();
    thread.join().unwrap();
}

fn record(topic: &str, sender: u32, legacy: bool) -> Record {
    Record {
        seq: 1,
        sender,
        counter: 1,
        index: 0,
        kid: if legacy { 0 } else { 1 },
        encoding: Encoding::Packed,
        legacy,
        topic: topic.into(),
        time: 1_700_000_000,
        data: b"1".to_vec(),
        received_ms: 0,
    }
}

#[test]
fn sensor_comes_only_from_the_topic_level_the_broker_acl_ties_to_the_certificate() {
    let upstream = Upstream::new(UpstreamConfig {
        broker: BrokerConfig::plain("127.0.0.1", tmc_testkit::free_port()),
        topic: "site/{sensor}/{sender}/{topic}".parse().unwrap(),
        home_assistant: None,
    })
    .unwrap();
    let topic = |t: &str, legacy: bool| {
        let sender = if legacy { legacy_sender(12) } else { 10 };
        upstream.topic(&record(t, sender, legacy))
    };
    assert_eq!(
        topic("sensors/sensorB/reading", false),
        "site/sensorB/10/sensors/sensorB/reading"
    );
    // Sensor B's extra topic ends in sensor A's name: not credited to A.
    assert_eq!(
        topic("extra/sensorA", false),
        "site/~unknown/10/extra/sensorA"
    );
    // Every legacy sensor publishes to /esp8266: none of them is "esp8266".
    assert_eq!(topic("/esp8266", false), "site/~unknown/10/esp8266");
    // A legacy frame can be forged by anyone: even a sensors/<id>/ topic names nobody.
    assert_eq!(topic("/esp8266", true), "site/~unknown/12/esp8266");
    assert_eq!(
        topic("sensors/sensorA/reading", true),
        "site/~unknown/12/sensors/sensorA/reading"
    );
}

#[test]
fn with_the_broker_down_readings_wait_in_the_journal_and_all_arrive_once_it_is_back() {
    let mut s = Setup::new();
    let rt = runtime();
    // The watcher holds a persistent subscription on the broker, which then stops cleanly (keeping it on disk).
    let broker = s.start_broker();
    rt.block_on(async {
        let (watcher, mut events) = connect(s.port, "watcher", Session::Persistent).await;
        subscribe(&watcher, &mut events, "site/#").await;
        watcher.disconnect().await.unwrap();
        let _ = tokio::time::timeout(WAIT, async {
            loop {
                match events.poll().await {
                    Ok(Event::Outgoing(Outgoing::Disconnect)) | Err(_) => return,
                    Ok(_) => {}
                }
            }
        })
        .await;
    });
    stop_cleanly(broker, &s.state());

    // The broker is down: the output fails, the journal grows, nothing is lost.
    let (shutdown, thread) = s.start_output();
    s.commit();
    s.commit();
    s.wait("an outage reported with the backlog held", |snap| {
        let o = &snap.outputs[UPSTREAM];
        o.connected == Some(false) && o.error.is_some() && o.backlog == 4
    });
    s.commit();
    let snap = s.wait("the backlog grows", |snap| {
        snap.outputs[UPSTREAM].backlog == 6
    });
    assert_eq!(snap.outputs[UPSTREAM].delivered, 0);
    assert_eq!(s.shared.inbox().len().unwrap(), 6);

    // The broker is back: the output reconnects on its own and delivers the whole backlog.
    let broker = s.start_broker();
    s.wait("the backlog delivered", |snap| {
        let o = &snap.outputs[UPSTREAM];
        o.backlog == 0 && o.delivered == 6 && o.connected == Some(true) && o.error.is_none()
    });
    assert!(s.shared.inbox().is_empty().unwrap());
    let got = rt.block_on(async {
        let (_watcher, mut events) = connect(s.port, "watcher", Session::Persistent).await;
        collect(&mut events, 6).await
    });
    assert_eq!(
        data(&got),
        ["0.0", "0.1", "1.0", "1.1", "2.0", "2.1"],
        "broker log:\n{}",
        broker.log_text()
    );
    assert!(got.iter().all(|(_, qos, _)| *qos == QoS::AtLeastOnce));

    shutdown.request();
    thread.join().unwrap();
}

/// A publish as a subscriber sees it: topic, retain flag, payload as JSON.
type Message = (String, bool, serde_json::Value);

/// Publishes until `done` says the list is complete.
async fn collect_until(
    eventloop: &mut EventLoop,
    mut done: impl FnMut(&[Message]) -> bool,
) -> Vec<Message> {
    let mut got = Vec::new();
    tokio::time::timeout(WAIT, async {
        while !done(&got) {
            if let Event::Incoming(Packet::Publish(p)) = eventloop.poll().await.unwrap() {
                got.push((
                    String::from_utf8(p.topic.to_vec()).unwrap(),
                    p.retain,
                    serde_json::from_slice(&p.payload).unwrap(),
                ));
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("publishes did not complete: {got:?}"));
    got
}

/// The retained messages under `homeassistant/`, as a new subscriber gets them: everything before the marker
/// it publishes after subscribing.
async fn retained_discovery(port: u16) -> Vec<Message> {
    let (client, mut events) = connect(port, "ha", Session::Clean).await;
    // The marker's subscription first: waiting for a SUBACK passes over the publishes that come before it.
    subscribe(&client, &mut events, "end").await;
    subscribe(&client, &mut events, "homeassistant/#").await;
    client
        .publish("end", "{}", PublishOptions::new(QoS::AtLeastOnce))
        .await
        .unwrap();
    let mut got = collect_until(&mut events, |got| got.last().is_some_and(|m| m.0 == "end")).await;
    got.pop();
    got
}

fn sensor_payload(id: &str, seq: u32, adc: u32) -> String {
    format!(r#"{{"id":"{id}","seq":{seq},"adc":{adc}}}"#)
}

/// What Home Assistant would show for a reading: the field the value template names, taken out of the
/// published line's `data` (the template is `{{ (value_json.data | from_json).<field> }}`).
fn render(value_template: &str, line: &serde_json::Value) -> serde_json::Value {
    let field = value_template
        .strip_prefix("{{ (value_json.data | from_json).")
        .and_then(|t| t.strip_suffix(" }}"))
        .unwrap_or_else(|| panic!("unexpected value template {value_template:?}"));
    let data: serde_json::Value = serde_json::from_str(line["data"].as_str().unwrap()).unwrap();
    data[field].clone()
}

#[test]
fn home_assistant_discovery_announces_each_sensor_field_once_retained_where_its_readings_go() {
    let mut s = Setup::new();
    let broker = s.start_broker();
    let rt = runtime();
    // A subscriber to everything sees the configs and the readings in the order they were published.
    let (live, mut live_events) = rt.block_on(connect(s.port, "live", Session::Clean));
    rt.block_on(subscribe(&live, &mut live_events, "#"));

    for seq in 1..=2 {
        s.commit_readings(&[
            Reading::new(
                "sensors/kitchen/reading",
                1_700_000_000,
                sensor_payload("kitchen", seq, 500 + seq),
            ),
            Reading::new(
                "sensors/garden/reading",
                1_700_000_000,
                sensor_payload("garden", seq, 300 + seq),
            ),
            // Text: nothing for Home Assistant to chart, so no entity.
            Reading::new("/esp8266", 1_700_000_000, "Temperature: 21.50 C"),
        ]);
    }
    let (shutdown, thread) = s.start_output_with(Some(HomeAssistantSection::default()));
    s.wait("all delivered", |snap| {
        let o = &snap.outputs[UPSTREAM];
        o.delivered == 6 && o.backlog == 0
    });
    let live_got = rt.block_on(collect_until(&mut live_events, |got| {
        got.iter().filter(|m| m.0.starts_with("site/")).count() == 6
    }));
    let configs: Vec<(usize, &Message)> = live_got
        .iter()
        .enumerate()
        .filter(|(_, m)| m.0.starts_with("homeassistant/"))
        .collect();
    // Exactly one config per sensor and numeric field, though each sensor sent two readings.
    let mut announced: Vec<(String, String)> = configs
        .iter()
        .map(|(_, (_, _, c))| {
            (
                c["device"]["name"].as_str().unwrap().to_owned(),
                c["name"].as_str().unwrap().to_owned(),
            )
        })
        .collect();
    announced.sort();
    assert_eq!(
        announced,
        [
            ("garden".into(), "adc".into()),
            ("garden".into(), "seq".into()),
            ("kitchen".into(), "adc".into()),
            ("kitchen".into(), "seq".into()),
        ],
        "{live_got:#?}"
    );
    for (at, (topic, _, config)) in &configs {
        let state_topic = config["state_topic"].as_str().unwrap();
        let unique_id = config["unique_id"].as_str().unwrap();
        let field = config["name"].as_str().unwrap();
        assert_eq!(
            *topic,
            format!(
                "homeassistant/sensor/{}/{field}/config",
                config["device"]["identifiers"][0].as_str().unwrap()
            )
        );
        assert!(unique_id.ends_with(&format!("_{field}")), "{unique_id}");
        // The state topic is where this sensor's readings went, and the config came before the first of them.
        let readings: Vec<(usize, &serde_json::Value)> = live_got
            .iter()
            .enumerate()
            .filter(|(_, m)| m.0 == state_topic)
            .map(|(i, m)| (i, &m.2))
            .collect();
        assert_eq!(readings.len(), 2, "{state_topic}: {live_got:#?}");
        assert!(
            readings[0].0 > *at,
            "config after the first reading: {live_got:#?}"
        );
        // The value template picks the field out of each published line.
        let sensor = config["device"]["name"].as_str().unwrap();
        let base = if sensor == "kitchen" { 500 } else { 300 };
        let rendered: Vec<_> = readings
            .iter()
            .map(|(_, line)| render(config["value_template"].as_str().unwrap(), line))
            .collect();
        let want = if field == "adc" {
            [base + 1, base + 2]
        } else {
            [1, 2]
        };
        assert_eq!(rendered, want.map(serde_json::Value::from), "{config}");
    }

    // The configs are retained: a Home Assistant that subscribes later gets each once.
    let retained = rt.block_on(retained_discovery(s.port));
    assert_eq!(retained.len(), 4, "{retained:#?}");
    assert!(retained.iter().all(|m| m.1), "{retained:#?}");
    for (_, (topic, _, config)) in &configs {
        assert!(
            retained.iter().any(|m| &m.0 == topic && &m.2 == config),
            "{topic} not retained as announced: {retained:#?}"
        );
    }

    // A broker that lost its retained messages (killed, nothing saved) gets the configs again on the reconnect.
    drop(broker);
    s.wait("the outage seen", |snap| {
        snap.outputs[UPSTREAM].connected == Some(false)
    });
    let _broker = s.start_broker();
    s.commit_readings(&[Reading::new(
        "sensors/kitchen/reading",
        1_700_000_000,
        sensor_payload("kitchen", 3, 503),
    )]);
    // Published on the new connection after the configs, so once it is acknowledged they are stored.
    s.wait("delivered after the reconnect", |snap| {
        let o = &snap.outputs[UPSTREAM];
        o.delivered == 7 && o.backlog == 0
    });
    let again = rt.block_on(retained_discovery(s.port));
    let mut topics: Vec<&str> = again.iter().map(|m| m.0.as_str()).collect();
    let mut want: Vec<&str> = configs.iter().map(|(_, m)| m.0.as_str()).collect();
    topics.sort();
    want.sort();
    assert_eq!(topics, want);

    shutdown.request();
    thread.join().unwrap();
}

#[test]
fn without_home_assistant_nothing_but_readings_is_published() {
    let mut s = Setup::new();
    let _broker = s.start_broker();
    let rt = runtime();
    let (live, mut live_events) = rt.block_on(connect(s.port, "live", Session::Clean));
    rt.block_on(subscribe(&live, &mut live_events, "#"));
    s.commit_readings(&[Reading::new(
        "sensors/kitchen/reading",
        1_700_000_000,
        sensor_payload("kitchen", 1, 500),
    )]);
    let (shutdown, thread) = s.start_output();
    s.wait("delivered", |snap| snap.outputs[UPSTREAM].delivered == 1);
    // A config would have been published before the reading, on the same connection.
    let got = rt.block_on(collect_until(&mut live_events, |got| {
        got.iter().any(|m| m.0.starts_with("site/"))
    }));
    assert_eq!(got.len(), 1, "{got:#?}");
    assert_eq!(got[0].0, "site/kitchen/10/sensors/kitchen/reading");
    assert!(rt.block_on(retained_discovery(s.port)).is_empty());

    shutdown.request();
    thread.join().unwrap();
}
