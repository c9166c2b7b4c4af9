//! Shared by the broker tests and `examples/handshake.rs`: a site built with tmc-pki, the real mosquitto
//! with the site's generated configuration, a node driven over TlsTransport, a relay-like subscriber.
#![allow(dead_code)]

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use p256::pkcs8::DecodePrivateKey;
use tmc_node_tls::tls::Socket;
use tmc_node_tls::{OsRng, SecureElement, SoftwareKey, StdTcpSocket, TlsClient, TlsClientConfig};
use tmc_pki::{broker, Role, Site, SiteInit, Validity};
use tmc_sensor_core::mqtt::{self, Packet, QoS};
use tmc_sensor_core::node::{Node, NodeConfig, Sensor, Transport, Wait};
use tmc_testkit::Mosquitto;

pub const BROKER_NAME: &str = "mqtt.com";

pub struct Setup {
    pub dir: tempfile::TempDir,
    pub site: Site,
    pub port: u16,
}

impl Setup {
    /// A site as `tmc-pki init` makes it (broker certificate for mqtt.com + 10.33.33.1), with a relay.
    pub fn new() -> Self {
        let dir = tempfile::tempdir().unwrap();
        let site = Site::init(&dir.path().join("site"), &SiteInit::default()).unwrap();
        site.issue("relay1", Role::Relay, &[], Validity::days(30))
            .unwrap();
        Setup {
            dir,
            site,
            port: tmc_testkit::free_port(),
        }
    }

    pub fn conf_dir(&self) -> PathBuf {
        self.dir.path().join("broker")
    }

    /// `tmc-pki broker-config` for 127.0.0.1:port, from the site as it is now.
    pub fn write_broker_config(&self) -> PathBuf {
        let conf = self.conf_dir();
        let options = broker::BrokerOptions::loopback(self.port);
        broker::write(&self.site, &options, &conf).unwrap();
        conf
    }

    pub fn start_broker(&self) -> Mosquitto {
        let conf = self.write_broker_config();
        self.start_broker_from(&conf)
    }

    pub fn start_broker_from(&self, conf: &Path) -> Mosquitto {
        let state = self.dir.path().join("state");
        std::fs::create_dir_all(&state).unwrap();
        Mosquitto::start(conf, &state, self.port)
    }

    /// A sensor whose key is made here and certified through a CSR, as a chip's would be.
    pub fn issue_node(&self, name: &str) -> (SoftwareKey, Vec<u8>) {
        let key = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let csr = rcgen::CertificateParams::default()
            .serialize_request(&key)
            .unwrap()
            .pem()
            .unwrap();
        self.site
            .issue_csr(name, Role::Sensor, &[], &csr, Validity::days(30))
            .unwrap();
        (software_key(&key), self.cert_der(name))
    }

    /// An identity `tmc-pki issue` made (key file next to the certificate).
    pub fn identity(&self, name: &str) -> (SoftwareKey, Vec<u8>) {
        let pem = std::fs::read_to_string(self.site.key_path(name)).unwrap();
        let key = rcgen::KeyPair::from_pem(&pem).unwrap();
        (software_key(&key), self.cert_der(name))
    }

    pub fn cert_der(&self, name: &str) -> Vec<u8> {
        der_of_pem(&self.site.cert_path(name))
    }

    pub fn ca_der(&self) -> Vec<u8> {
        der_of_pem(&self.site.dir().join("ecc.ca.cert.pem"))
    }
}

pub fn der_of_pem(path: &Path) -> Vec<u8> {
    let text = std::fs::read_to_string(path).unwrap();
    pem::parse(text).unwrap().into_contents()
}

pub fn software_key(key: &rcgen::KeyPair) -> SoftwareKey {
    let secret = p256::SecretKey::from_pkcs8_der(&key.serialize_der()).unwrap();
    SoftwareKey::new(p256::ecdsa::SigningKey::from(secret))
}

/// Config strings live as long as the test: leaked, a few bytes per test.
pub fn leak<T: ?Sized>(value: Box<T>) -> &'static T {
    Box::leak(value)
}

/// A TLS client for `name` against the test broker, pinning `ca_der`'s key.
pub fn client<E: SecureElement>(
    port: u16,
    ca_der: &[u8],
    cert_der: Vec<u8>,
    element: E,
) -> TlsClient<'static, StdTcpSocket, E, OsRng> {
    client_with_rng(port, ca_der, cert_der, element, OsRng)
}

/// [`client`] with another source of randomness.
pub fn client_with_rng<E: SecureElement, R: rand_core::CryptoRngCore>(
    port: u16,
    ca_der: &[u8],
    cert_der: Vec<u8>,
    element: E,
    rng: R,
) -> TlsClient<'static, StdTcpSocket, E, R> {
    let cert: &'static [u8] = leak(cert_der.into_boxed_slice());
    let config = TlsClientConfig::from_ca_cert(ca_der, BROKER_NAME, cert).unwrap();
    let socket = StdTcpSocket::new("127.0.0.1", port)
        .with_timeouts(Duration::from_secs(5), Duration::from_secs(5));
    TlsClient::new(config, socket, element, rng)
}

/// The sensor: 100, 101, …
pub struct Counter(pub u16);

impl Sensor for Counter {
    type Error = Infallible;
    fn read(&mut self) -> Result<u16, Infallible> {
        self.0 += 1;
        Ok(self.0)
    }
}

/// A node as the firmware runs it, with its log.
pub struct Harness {
    pub node: Node<'static>,
    pub sensor: Counter,
    pub log: String,
    epoch: Instant,
    rng: u32,
}

impl Harness {
    pub fn new(name: &'static str, interval_ms: u64) -> Self {
        let topic: &'static str = leak(format!("sensors/{name}/reading").into_boxed_str());
        let mut config = NodeConfig::new(name, BROKER_NAME, name);
        config.topic = topic;
        config.interval_ms = interval_ms;
        config.backoff_min_ms = 100;
        config.backoff_max_ms = 400;
        config.connack_timeout_ms = 5000;
        config.puback_retry_ms = 2000;
        config.rx_poll_ms = 10;
        Harness {
            node: Node::new(config),
            sensor: Counter(100),
            log: String::new(),
            epoch: Instant::now(),
            rng: 0x1234_5678,
        }
    }

    /// The firmware main loop: a fresh transport per connection attempt, until `done` or the deadline.
    /// Returns whether `done` became true.
    pub fn run<S: Socket, E: SecureElement>(
        &mut self,
        client: &mut TlsClient<'static, S, E, OsRng>,
        within: Duration,
        mut done: impl FnMut(&Node<'static>, &str) -> bool,
    ) -> bool {
        let deadline = Instant::now() + within;
        loop {
            let mut transport = client.transport();
            while !transport.is_spent() {
                if done(&self.node, &self.log) {
                    return true;
                }
                if Instant::now() >= deadline {
                    return false;
                }
                let Wait(ms) = self.poll(&mut transport);
                // The firmware's idle wait between polls (bounded so the deadline is honoured).
                std::thread::sleep(Duration::from_millis(ms.min(10)));
            }
        }
    }

    fn poll<T: Transport>(&mut self, transport: &mut T) -> Wait {
        self.rng = self.rng.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        let now = u64::try_from(self.epoch.elapsed().as_millis()).unwrap();
        self.node
            .poll(now, self.rng, transport, &mut self.sensor, &mut self.log)
    }

    /// Lines of the log starting with `prefix`.
    pub fn lines(&self, prefix: &str) -> Vec<String> {
        self.log
            .lines()
            .filter(|l| l.starts_with(prefix))
            .map(str::to_owned)
            .collect()
    }
}

/// A relay-like subscriber on its own thread (its own TLS client, relay1's certificate): sends every
/// PUBLISH payload it receives on `sensors/+/#` to the returned channel, after `ready` says it subscribed.
pub struct Subscriber {
    pub payloads: mpsc::Receiver<Result<String, String>>,
    stop: mpsc::Sender<()>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Subscriber {
    pub fn start(s: &Setup) -> Self {
        let (key, cert) = s.identity("relay1");
        let mut client = client(s.port, &s.ca_der(), cert, key);
        let (tx, payloads) = mpsc::channel();
        let (stop, stopped) = mpsc::channel();
        let (ready_tx, ready) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            let mut transport = client.transport();
            if let Err(e) = subscribe(&mut transport) {
                let _ = ready_tx.send(Err(e));
                return;
            }
            let _ = ready_tx.send(Ok(()));
            let mut buf = vec![0u8; 4096];
            let mut len = 0;
            while stopped.try_recv().is_err() {
                match transport.recv(&mut buf[len..]) {
                    Ok(0) => std::thread::sleep(Duration::from_millis(5)),
                    Ok(n) => len += n,
                    Err(e) => {
                        let _ = tx.send(Err(e.to_string()));
                        return;
                    }
                }
                while let Ok((packet, used)) = mqtt::decode(&buf[..len]) {
                    if let Packet::Publish(p) = packet {
                        let _ = tx.send(Ok(String::from_utf8_lossy(p.payload).into_owned()));
                        if let QoS::AtLeastOnce { packet_id, .. } = p.qos {
                            let mut ack = [0u8; 4];
                            let n = mqtt::encode_puback(packet_id, &mut ack).unwrap();
                            if transport.send(&ack[..n]).is_err() {
                                return;
                            }
                        }
                    }
                    buf.copy_within(used..len, 0);
                    len -= used;
                }
            }
            transport.close();
        });
        ready
            .recv_timeout(Duration::from_secs(20))
            .expect("subscriber ready in time")
            .unwrap_or_else(|e| panic!("subscriber: {e}"));
        Subscriber {
            payloads,
            stop,
            thread: Some(thread),
        }
    }

    /// The next payload, within `within`.
    pub fn next(&self, within: Duration) -> String {
        self.payloads
            .recv_timeout(within)
            .expect("a publish within the bounded wait")
            .unwrap_or_else(|e| panic!("subscriber connection failed: {e}"))
    }
}

impl Drop for Subscriber {
    fn drop(&mut self) {
        let _ = self.stop.send(());
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// CONNECT as relay1, SUBSCRIBE sensors/+/# at QoS 1, wait for CONNACK and SUBACK (bounded).
fn subscribe<T: Transport>(transport: &mut T) -> Result<(), String> {
    transport.connect().map_err(|e| e.to_string())?;
    let mut out = [0u8; 128];
    let n = mqtt::Connect::new("relay1", 60, true)
        .encode(&mut out)
        .unwrap();
    transport.send(&out[..n]).map_err(|e| e.to_string())?;
    // SUBSCRIBE, id 1, one filter at QoS 1 (the node's codec has no SUBSCRIBE encoder).
    let filter = b"sensors/+/#";
    let mut sub = vec![
        0x82,
        (2 + 2 + filter.len() + 1) as u8,
        0,
        1,
        0,
        filter.len() as u8,
    ];
    sub.extend_from_slice(filter);
    sub.push(1);
    transport.send(&sub).map_err(|e| e.to_string())?;
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0u8; 64];
    let mut len = 0;
    let (mut connack, mut suback) = (false, false);
    while !(connack && suback) {
        if Instant::now() >= deadline {
            return Err("no CONNACK/SUBACK in time".into());
        }
        let n = transport.recv(&mut buf[len..]).map_err(|e| e.to_string())?;
        if n == 0 {
            std::thread::sleep(Duration::from_millis(5));
        }
        len += n;
        while let Ok((packet, used)) = mqtt::decode(&buf[..len]) {
            match packet {
                Packet::ConnAck(ack) => {
                    ack.result().map_err(|r| format!("refused: {r:?}"))?;
                    connack = true;
                }
                Packet::SubAck(ack) if ack.return_codes == [1] => suback = true,
                other => return Err(format!("unexpected {other:?}")),
            }
            buf.copy_within(used..len, 0);
            len -= used;
        }
    }
    Ok(())
}
