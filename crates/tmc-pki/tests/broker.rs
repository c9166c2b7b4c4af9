//! The site PKI against the real mosquitto (Debian's), started on 127.0.0.1 by each test and
//! stopped by pid: mTLS, rejections, ACL, TLS versions, session takeover.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use rumqttc::{
    AsyncClient, Event, EventLoop, MqttOptions, Packet, PubAckReason, PublishOptions, QoS,
    TlsConfiguration, Transport,
};
use time::OffsetDateTime;
use tmc_pki::{broker, Role, Site, SiteInit, Validity};
use tmc_testkit::Mosquitto;

/// Every network wait in these tests is bounded by this.
const WAIT: Duration = Duration::from_secs(10);

struct Setup {
    dir: tempfile::TempDir,
    site: Site,
    port: u16,
}

impl Setup {
    /// A site whose broker certificate also names 127.0.0.1 (tests never resolve mqtt.com).
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
        Setup {
            dir,
            site,
            port: tmc_testkit::free_port(),
        }
    }

    fn start_broker(&self) -> Mosquitto {
        self.start_broker_with(None)
    }

    fn start_broker_with(&self, plain_loopback_port: Option<u16>) -> Mosquitto {
        let conf = self.dir.path().join("broker");
        let options = broker::BrokerOptions {
            plain_loopback_port,
            ..broker::BrokerOptions::loopback(self.port)
        };
        broker::write(&self.site, &options, &conf).unwrap();
        let state = self.dir.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        Mosquitto::start(&conf, &state, self.port)
    }

    fn read(&self, path: PathBuf) -> Vec<u8> {
        std::fs::read(path).unwrap()
    }

    /// MQTT 5 options for `name`'s certificate (or none), connecting to the test broker.
    fn options(&self, client_id: &str, cert_of: Option<(&Site, &str)>) -> MqttOptions {
        let mut options = MqttOptions::new(client_id, ("127.0.0.1", self.port));
        options.set_keep_alive(30);
        let client_auth = cert_of.map(|(site, name)| {
            (
                self.read(site.cert_path(name)),
                self.read(site.key_path(name)),
            )
        });
        options.set_transport(Transport::tls_with_config(TlsConfiguration::Simple {
            ca: self.read(self.site.dir().join("ecc.ca.cert.pem")),
            alpn: None,
            client_auth,
        }));
        options
    }
}

/// Connects and waits for CONNACK; Err carries why the connection failed.
async fn connect(options: MqttOptions) -> Result<(AsyncClient, EventLoop), String> {
    let (client, mut eventloop) = AsyncClient::builder(options).capacity(16).build();
    let outcome = tokio::time::timeout(WAIT, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(_))) => return Ok(()),
                Ok(_) => {}
                Err(e) => return Err(format!("{e:?}")),
            }
        }
    })
    .await
    .map_err(|_| "no CONNACK within the bounded wait".to_string())?;
    outcome.map(|()| (client, eventloop))
}

/// Polls until a packet matching `want` arrives, returning it and every Publish seen before it.
async fn until<T>(
    eventloop: &mut EventLoop,
    mut want: impl FnMut(&Packet) -> Option<T>,
) -> (T, Vec<String>) {
    let mut publishes = Vec::new();
    tokio::time::timeout(WAIT, async {
        loop {
            if let Event::Incoming(packet) = eventloop.poll().await.expect("connection stays up") {
                if let Some(found) = want(&packet) {
                    return (found, publishes);
                }
                if let Packet::Publish(p) = packet {
                    publishes.push(String::from_utf8_lossy(&p.topic).into_owned());
                }
            }
        }
    })
    .await
    .expect("expected packet within the bounded wait")
}

/// Connects as `name` with its own certificate and client id.
async fn identity(s: &Setup, name: &str) -> (AsyncClient, EventLoop) {
    connect(s.options(name, Some((&s.site, name))))
        .await
        .unwrap_or_else(|e| panic!("{name} could not connect: {e}"))
}

/// Subscribes at QoS 1 and waits for the SUBACK.
async fn subscribe(client: &AsyncClient, eventloop: &mut EventLoop, filter: &str) {
    client.subscribe(filter, QoS::AtLeastOnce).await.unwrap();
    until(eventloop, suback).await;
}

fn puback(p: &Packet) -> Option<PubAckReason> {
    match p {
        Packet::PubAck(ack) => Some(ack.reason),
        _ => None,
    }
}

fn publish_payload(p: &Packet) -> Option<(String, Vec<u8>)> {
    match p {
        Packet::Publish(p) => Some((
            String::from_utf8_lossy(&p.topic).into_owned(),
            p.payload.to_vec(),
        )),
        _ => None,
    }
}

fn suback(p: &Packet) -> Option<()> {
    matches!(p, Packet::SubAck(_)).then_some(())
}

#[tokio::test(flavor = "current_thread")]
async fn sensor_publishes_and_relay_receives_over_mtls() {
    let s = Setup::new();
    s.site
        .issue(
            "sensor1",
            Role::Sensor,
            &["/esp8266".into()],
            Validity::days(30),
        )
        .unwrap();
    s.site
        .issue("relay1", Role::Relay, &[], Validity::days(30))
        .unwrap();
    let _broker = s.start_broker();

    let (relay, mut relay_loop) = identity(&s, "relay1").await;
    relay
        .subscribe("sensors/+/#", QoS::AtLeastOnce)
        .await
        .unwrap();
    subscribe(&relay, &mut relay_loop, "/esp8266").await;
    until(&mut relay_loop, suback).await;

    let (sensor, mut sensor_loop) = identity(&s, "sensor1").await;
    for (topic, payload) in [("sensors/sensor1/reading", "21.5"), ("/esp8266", "legacy")] {
        sensor
            .publish(topic, payload, PublishOptions::new(QoS::AtLeastOnce))
            .await
            .unwrap();
        let (reason, _) = until(&mut sensor_loop, puback).await;
        assert_eq!(reason, PubAckReason::Success);
        let ((got_topic, got), _) = until(&mut relay_loop, publish_payload).await;
        assert_eq!(
            (got_topic.as_str(), got.as_slice()),
            (topic, payload.as_bytes())
        );
    }
}

#[tokio::test(flavor = "current_thread")]
async fn clients_without_a_valid_site_certificate_are_refused() {
    let s = Setup::new();
    // An expired certificate, correctly signed.
    let now = OffsetDateTime::now_utc();
    let expired = Validity {
        not_before: now - time::Duration::days(30),
        not_after: now - time::Duration::days(1),
    };
    s.site
        .issue("expired1", Role::Sensor, &[], expired)
        .unwrap();
    // A revoked one: it connects before `revoke`, and not after (mosquitto reads the CRL at start).
    s.site
        .issue("revoked1", Role::Sensor, &[], Validity::days(30))
        .unwrap();
    {
        let _before = s.start_broker();
        connect(s.options("revoked1", Some((&s.site, "revoked1"))))
            .await
            .expect("valid before revocation");
    }
    s.site.revoke("revoked1").unwrap();
    // One from another site's CA.
    let other = Site::init(&s.dir.path().join("other"), &SiteInit::default()).unwrap();
    other
        .issue("sensor1", Role::Sensor, &[], Validity::days(30))
        .unwrap();
    s.site
        .issue("sensor1", Role::Sensor, &[], Validity::days(30))
        .unwrap();
    let _broker = s.start_broker();

    let cases: [(&str, Option<(&Site, &str)>); 4] = [
        ("no certificate", None),
        ("another CA", Some((&other, "sensor1"))),
        ("expired", Some((&s.site, "expired1"))),
        ("revoked", Some((&s.site, "revoked1"))),
    ];
    for (what, cert) in cases {
        let result = connect(s.options("sensor1", cert)).await;
        assert!(
            result.is_err(),
            "{what}: connected although it must be refused"
        );
    }
    // The same broker still takes the valid certificate, so the refusals above are about the certificates.
    identity(&s, "sensor1").await;
}

#[tokio::test(flavor = "current_thread")]
async fn acl_keeps_sensors_to_their_own_topics() {
    let s = Setup::new();
    for name in ["sensor1", "sensor2"] {
        s.site
            .issue(name, Role::Sensor, &[], Validity::days(30))
            .unwrap();
    }
    s.site
        .issue("relay1", Role::Relay, &[], Validity::days(30))
        .unwrap();
    let _broker = s.start_broker();

    let (relay, mut relay_loop) = identity(&s, "relay1").await;
    subscribe(&relay, &mut relay_loop, "sensors/#").await;
    let (sensor1, mut loop1) = identity(&s, "sensor1").await;
    let (sensor2, mut loop2) = identity(&s, "sensor2").await;

    // sensor1 impersonating sensor2's topic: refused with reason code 135 (MQTT 5, QoS 1) ...
    sensor1
        .publish(
            "sensors/sensor2/reading",
            "forged",
            PublishOptions::new(QoS::AtLeastOnce),
        )
        .await
        .unwrap();
    assert_eq!(
        until(&mut loop1, puback).await.0,
        PubAckReason::NotAuthorized
    );
    // ... and not delivered: sensor1's next, allowed message reaches the relay with nothing before it.
    sensor1
        .publish(
            "sensors/sensor1/reading",
            "real",
            PublishOptions::new(QoS::AtLeastOnce),
        )
        .await
        .unwrap();
    assert_eq!(until(&mut loop1, puback).await.0, PubAckReason::Success);
    let ((topic, payload), before) = until(&mut relay_loop, publish_payload).await;
    assert_eq!(
        (topic.as_str(), payload.as_slice(), before.len()),
        ("sensors/sensor1/reading", &b"real"[..], 0)
    );

    // sensor1 subscribes to everyone's data: mosquitto grants the SUBSCRIBE but delivers nothing.
    subscribe(&sensor1, &mut loop1, "sensors/+/reading").await;
    sensor2
        .publish(
            "sensors/sensor2/reading",
            "private",
            PublishOptions::new(QoS::AtLeastOnce),
        )
        .await
        .unwrap();
    assert_eq!(until(&mut loop2, puback).await.0, PubAckReason::Success);
    let ((topic, _), _) = until(&mut relay_loop, publish_payload).await;
    assert_eq!(topic, "sensors/sensor2/reading", "the relay gets it");
    // Anything the broker sent sensor1 would arrive before the PUBACK of sensor1's own publish.
    sensor1
        .publish(
            "sensors/sensor1/reading",
            "fence",
            PublishOptions::new(QoS::AtLeastOnce),
        )
        .await
        .unwrap();
    let (_, seen_by_sensor1) = until(&mut loop1, puback).await;
    assert!(
        seen_by_sensor1.is_empty(),
        "sensor1 received other sensors' data: {seen_by_sensor1:?}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn a_relay_certificate_cannot_take_over_a_sensor_session() {
    let s = Setup::new();
    s.site
        .issue("sensor1", Role::Sensor, &[], Validity::days(30))
        .unwrap();
    s.site
        .issue("relay1", Role::Relay, &[], Validity::days(30))
        .unwrap();
    let broker = s.start_broker();
    let (sensor, mut sensor_loop) = identity(&s, "sensor1").await;
    // The relay claims the sensor's client id; the broker uses its certificate CN instead.
    let (_relay, _relay_loop) = connect(s.options("sensor1", Some((&s.site, "relay1"))))
        .await
        .unwrap();
    // The sensor's connection is still the live one: a QoS 1 round trip succeeds on it.
    sensor
        .publish(
            "sensors/sensor1/reading",
            "still here",
            PublishOptions::new(QoS::AtLeastOnce),
        )
        .await
        .unwrap();
    // Accepted (16 = accepted, no subscriber for it right now).
    assert!(matches!(
        until(&mut sensor_loop, puback).await.0,
        PubAckReason::Success | PubAckReason::NoMatchingSubscribers
    ));
    assert!(
        !broker
            .log_text()
            .contains("already connected, closing old connection"),
        "{}",
        broker.log_text()
    );
}

fn s_client(port: u16, site: &Path, version_flag: &str) -> (bool, String) {
    let out = Command::new("openssl")
        .args([
            "s_client",
            "-connect",
            &format!("127.0.0.1:{port}"),
            version_flag,
            "-cipher",
            "DEFAULT@SECLEVEL=0",
        ])
        .arg("-CAfile")
        .arg(site.join("ecc.ca.cert.pem"))
        .arg("-cert")
        .arg(site.join("ecc.sensor1.cert.pem"))
        .arg("-key")
        .arg(site.join("ecc.sensor1.key.pem"))
        .stdin(std::process::Stdio::null())
        .output()
        .expect("openssl is installed (make deps)");
    let text =
        String::from_utf8_lossy(&out.stdout).into_owned() + &String::from_utf8_lossy(&out.stderr);
    let handshake_ok = text.contains("Verify return code: 0 (ok)") && !text.contains("alert");
    (handshake_ok, text)
}

#[test]
fn broker_config_starts_mosquitto_and_refuses_tls_1_1() {
    let s = Setup::new();
    s.site
        .issue("sensor1", Role::Sensor, &[], Validity::days(30))
        .unwrap();
    let broker = s.start_broker();
    assert!(broker
        .log_text()
        .contains(&format!("Opening ipv4 listen socket on port {}", s.port)));
    let (ok12, text12) = s_client(s.port, s.site.dir(), "-tls1_2");
    assert!(ok12, "TLS 1.2 handshake failed: {text12}");
    let (ok11, text11) = s_client(s.port, s.site.dir(), "-tls1_1");
    assert!(
        !ok11 && text11.contains("alert protocol version"),
        "TLS 1.1 was not refused by the server: {text11}"
    );
}

#[tokio::test(flavor = "current_thread")]
async fn the_optional_loopback_listener_only_reads_sensor_topics() {
    let s = Setup::new();
    s.site
        .issue("sensor1", Role::Sensor, &[], Validity::days(30))
        .unwrap();
    let plain = tmc_testkit::free_port();
    let _broker = s.start_broker_with(Some(plain));
    let (local, mut local_loop) = connect(MqttOptions::new("local-tool", ("127.0.0.1", plain)))
        .await
        .unwrap();
    subscribe(&local, &mut local_loop, "sensors/#").await;
    let (sensor, mut sensor_loop) = identity(&s, "sensor1").await;
    sensor
        .publish(
            "sensors/sensor1/reading",
            "21.5",
            PublishOptions::new(QoS::AtLeastOnce),
        )
        .await
        .unwrap();
    until(&mut sensor_loop, puback).await;
    let ((topic, _), _) = until(&mut local_loop, publish_payload).await;
    assert_eq!(topic, "sensors/sensor1/reading");
    // Reading is all it may do.
    local
        .publish(
            "sensors/sensor1/reading",
            "forged",
            PublishOptions::new(QoS::AtLeastOnce),
        )
        .await
        .unwrap();
    assert_eq!(
        until(&mut local_loop, puback).await.0,
        PubAckReason::NotAuthorized
    );
    // The TLS listener is unchanged: no certificate, no connection.
    assert!(connect(s.options("anonymous", None)).await.is_err());
}
