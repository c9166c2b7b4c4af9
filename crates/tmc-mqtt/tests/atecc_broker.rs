//! The MQTT client key in a (simulated) ATECC608A against the real mosquitto with the site's mTLS + ACL
//! configuration, started on 127.0.0.1 by each test and stopped by pid: the chip makes its key, the site CA
//! certifies the chip's CSR (signed by the chip), and the relay identity connects with signatures the chip
//! makes during the TLS handshake.
#![cfg(feature = "atecc")]

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Duration;

use rumqttc::{AsyncClient, Event, EventLoop, MqttOptions, Packet, PublishOptions, QoS};
use tmc_atecc::sim::{Model, SimAtecc};
use tmc_mqtt::atecc::{ChipKey, DEFAULT_TIMEOUT};
use tmc_mqtt::{BrokerConfig, ChipKeyOptions, ClientOptions, MqttConfig, MqttConfigError, Session};
use tmc_pki::{broker, Role, Site, SiteInit, Validity};
use tmc_testkit::Mosquitto;

/// Every network wait in these tests is bounded by this.
const WAIT: Duration = Duration::from_secs(20);
const SLOT: u8 = 2;

/// A simulated chip with a key made in `SLOT`, served by its own thread. `serial` tells chips apart (the
/// simulator's key generator follows from it).
fn chip_key(serial: u8) -> ChipKey {
    let (made_tx, made_rx) = mpsc::channel();
    let key = ChipKey::spawn(
        format!("simulated ATECC608A #{serial}"),
        SLOT,
        DEFAULT_TIMEOUT,
        move || {
            let mut id = tmc_atecc::sim::DEFAULT_SERIAL;
            id[8] = serial;
            let sim = SimAtecc::with_serial(Model::Atecc608a, id);
            let mut chip = tmc_atecc::Atecc::new(sim.i2c(), sim.delay());
            let public = chip.generate_key(SLOT).map_err(|e| e.to_string())?;
            made_tx.send(public).map_err(|e| e.to_string())?;
            Ok(chip)
        },
    )
    .unwrap();
    assert_eq!(key.public_key(), made_rx.recv().unwrap());
    key
}

/// The chip as an rcgen key: the CSR's signature is made by the chip.
struct RemoteChip {
    key: ChipKey,
    point: Vec<u8>,
}

impl RemoteChip {
    fn new(key: &ChipKey) -> Self {
        let mut point = vec![0x04];
        point.extend_from_slice(&key.public_key());
        RemoteChip {
            key: key.clone(),
            point,
        }
    }
}

impl rcgen::PublicKeyData for RemoteChip {
    fn der_bytes(&self) -> &[u8] {
        &self.point
    }
    fn algorithm(&self) -> &'static rcgen::SignatureAlgorithm {
        &rcgen::PKCS_ECDSA_P256_SHA256
    }
}

impl rcgen::SigningKey for RemoteChip {
    fn sign(&self, msg: &[u8]) -> Result<Vec<u8>, rcgen::Error> {
        self.key.sign(msg).map_err(|_| rcgen::Error::RemoteKeyError)
    }
}

/// A CSR for `name`, signed by the chip.
fn csr(key: &ChipKey, name: &str) -> String {
    let params = rcgen::CertificateParams::new(vec![name.to_owned()]).unwrap();
    params
        .serialize_request(&RemoteChip::new(key))
        .unwrap()
        .pem()
        .unwrap()
}

struct Setup {
    dir: tempfile::TempDir,
    site: Site,
    port: u16,
}

impl Setup {
    /// A site whose broker certificate also names 127.0.0.1, with a sensor `s1` (key file) and the relay
    /// `relay1` certified for the chip's key.
    fn new(key: &ChipKey) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let site = Site::init(
            &dir.path().join("site"),
            &SiteInit {
                extra_names: vec!["127.0.0.1".into()],
                ..SiteInit::default()
            },
        )
        .unwrap();
        site.issue("s1", Role::Sensor, &[], Validity::days(30))
            .unwrap();
        site.issue_csr(
            "relay1",
            Role::Relay,
            &[],
            &csr(key, "relay1"),
            Validity::days(30),
        )
        .unwrap();
        Setup {
            dir,
            site,
            port: tmc_testkit::free_port(),
        }
    }

    fn start_broker(&self) -> Mosquitto {
        let conf = self.dir.path().join("broker");
        let options = broker::BrokerOptions::loopback(self.port);
        broker::write(&self.site, &options, &conf).unwrap();
        let state = self.dir.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        Mosquitto::start(&conf, &state, self.port)
    }

    fn ca(&self) -> PathBuf {
        self.site.dir().join("ecc.ca.cert.pem")
    }

    /// The relay's `[mqtt]` as relay.toml would give it: the chip holds the key.
    fn relay_config(&self) -> MqttConfig {
        let text = format!(
            "host = \"127.0.0.1\"\nport = {}\nca = {:?}\ncert = {:?}\nkey_atecc = \"/dev/i2c-1\"\nkey_slot = {SLOT}\n",
            self.port,
            self.ca().display().to_string(),
            self.site.cert_path("relay1").display().to_string(),
        );
        toml::from_str(&text).unwrap()
    }

    /// A sensor with its key file, the ordinary way.
    fn sensor_options(&self, name: &str) -> MqttOptions {
        let mut broker = BrokerConfig::plain("127.0.0.1", self.port);
        broker.ca = Some(self.ca());
        broker.cert = Some(self.site.cert_path(name));
        broker.key = Some(self.site.key_path(name));
        broker.options(name, Session::Clean).unwrap()
    }
}

/// Connects and waits for CONNACK; Err carries why the connection failed.
async fn connect(options: MqttOptions) -> Result<(AsyncClient, EventLoop), String> {
    let (client, mut eventloop) = AsyncClient::builder(options).capacity(16).build();
    let outcome = tokio::time::timeout(WAIT, async {
        loop {
            match eventloop.poll().await {
                Ok(Event::Incoming(Packet::ConnAck(ack))) => return Ok(ack),
                Ok(_) => {}
                Err(e) => return Err(format!("{e:?}")),
            }
        }
    })
    .await
    .map_err(|_| "no CONNACK within the bounded wait".to_string())??;
    if outcome.code != rumqttc::ConnectReturnCode::Success {
        return Err(format!("CONNACK {:?}", outcome.code));
    }
    Ok((client, eventloop))
}

/// Polls until a packet matching `want` arrives.
async fn until<T>(eventloop: &mut EventLoop, mut want: impl FnMut(&Packet) -> Option<T>) -> T {
    tokio::time::timeout(WAIT, async {
        loop {
            if let Event::Incoming(packet) = eventloop.poll().await.expect("connection stays up") {
                if let Some(found) = want(&packet) {
                    return found;
                }
            }
        }
    })
    .await
    .expect("expected packet within the bounded wait")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn relay_with_its_key_in_the_chip_receives_a_sensor_reading() {
    let key = chip_key(1);
    let s = Setup::new(&key);
    let mosquitto = s.start_broker();

    let options = s
        .relay_config()
        .options_with_key("relay1", Session::Clean, key)
        .unwrap();
    let (relay, mut relay_loop) = connect(options)
        .await
        .unwrap_or_else(|e| panic!("relay with the chip key: {e}\n{}", mosquitto.log_text()));
    relay
        .subscribe("sensors/+/reading", QoS::AtLeastOnce)
        .await
        .unwrap();
    until(&mut relay_loop, |p| {
        matches!(p, Packet::SubAck(_)).then_some(())
    })
    .await;

    let (sensor, mut sensor_loop) = connect(s.sensor_options("s1")).await.unwrap();
    sensor
        .publish(
            "sensors/s1/reading",
            "21.5",
            PublishOptions::new(QoS::AtLeastOnce),
        )
        .await
        .unwrap();
    until(&mut sensor_loop, |p| {
        matches!(p, Packet::PubAck(_)).then_some(())
    })
    .await;

    let (topic, payload) = until(&mut relay_loop, |p| match p {
        Packet::Publish(p) => Some((p.topic.to_vec(), p.payload.to_vec())),
        _ => None,
    })
    .await;
    assert_eq!(
        (topic.as_slice(), payload.as_slice()),
        (&b"sensors/s1/reading"[..], &b"21.5"[..])
    );
    // The broker took the identity from the certificate the CA issued for the chip's key.
    let log = mosquitto.log_text();
    assert!(log.contains("u'relay1'"), "{log}");
    mosquitto.stop();
}

#[test]
fn a_chip_whose_key_is_not_the_certificates_is_refused_at_start() {
    let certified = chip_key(1);
    let s = Setup::new(&certified);
    let other = chip_key(2);
    assert_ne!(other.public_key(), certified.public_key());
    let err = s
        .relay_config()
        .options_with_key("relay1", Session::Clean, other)
        .unwrap_err();
    assert!(matches!(err, MqttConfigError::Chip(_)), "{err:?}");
    let text = err.to_string();
    assert!(
        text.starts_with(&format!(
            "the certificate in cert ({}) is not for the key in the chip's slot {SLOT}",
            s.site.cert_path("relay1").display()
        )),
        "{text}"
    );
    // The certified chip is accepted by the same check.
    s.relay_config()
        .options_with_key("relay1", Session::Clean, certified)
        .unwrap();
}

#[test]
fn a_key_file_next_to_a_chip_key_is_refused() {
    let key = chip_key(3);
    let s = Setup::new(&key);
    let mut config = s.relay_config();
    config.broker.key = Some(s.site.key_path("s1"));
    let err = config
        .options_with_key("relay1", Session::Clean, key)
        .unwrap_err()
        .to_string();
    assert!(err.contains("`key` names a key file"), "{err}");
}

#[test]
fn an_absent_chip_is_a_clear_start_error() {
    let key = chip_key(4);
    let s = Setup::new(&key);
    let mut config = s.relay_config();
    let device = s.dir.path().join("no-i2c-bus");
    config.chip.as_mut().unwrap().device = device.clone();
    let err = config
        .options("relay1", Session::Clean)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!("ATECC 0x60 on {}", device.display()))
            && err.contains("cannot open I2C bus"),
        "{err}"
    );
}
