//! The console state machine with a simulated ATECC608A and an in-memory identity sector, certificates
//! from real tmc-pki sites: the happy path, and every refusal leaving the flash and the key as they were.

use std::convert::Infallible;

use tmc_atecc::sim::{Model, SimAtecc, SimDelay, SimI2c};
use tmc_atecc::Atecc;
use tmc_node_console::{Console, IdentityFlash, Sha256Hex, Step, MAX_LINE_LEN, PROMPT};
use tmc_node_tls::atecc::AteccElement;
use tmc_node_tls::identity::{IdentityRecord, SECTOR_LEN};
use tmc_pki::{Role, Site, SiteInit, Validity};

/// An identity sector in memory, counting writes.
struct MemFlash {
    sector: [u8; SECTOR_LEN],
    writes: usize,
}

impl IdentityFlash for MemFlash {
    type Error = Infallible;

    fn read(&mut self, buf: &mut [u8]) -> Result<(), Infallible> {
        buf.copy_from_slice(&self.sector[..buf.len()]);
        Ok(())
    }

    fn write(&mut self, record: &[u8]) -> Result<(), Infallible> {
        self.sector.fill(0xFF);
        self.sector[..record.len()].copy_from_slice(record);
        self.writes += 1;
        Ok(())
    }
}

/// A node in provisioning mode.
struct Node {
    sim: SimAtecc,
    chip: Atecc<SimI2c, SimDelay>,
    flash: MemFlash,
    console: Box<Console>,
}

impl Node {
    fn new(serial: u8) -> Self {
        let sim =
            SimAtecc::with_serial(Model::Atecc608a, [0x01, 0x23, serial, 0, 0, 0, 0, 0, 0xee]);
        let chip = Atecc::new(sim.i2c(), sim.delay());
        let mut node = Node {
            sim,
            chip,
            flash: MemFlash {
                sector: [0xFF; SECTOR_LEN],
                writes: 0,
            },
            console: Box::new(Console::new()),
        };
        let mut out = String::new();
        node.console.start(&mut out).unwrap();
        assert_eq!(out, format!("{PROMPT}\n"));
        node
    }

    /// Types `text`; what the node answers, and whether it left the mode.
    fn type_text(&mut self, text: &str) -> (String, Step) {
        let mut out = String::new();
        let mut element = AteccElement {
            chip: &mut self.chip,
            slot: 0,
        };
        let step = self
            .console
            .feed_bytes(text.as_bytes(), &mut element, &mut self.flash, &mut out)
            .unwrap();
        (out, step)
    }

    fn send(&mut self, text: &str) -> String {
        self.type_text(text).0
    }

    fn key(&self) -> Option<[u8; 64]> {
        self.sim.public_key(0)
    }

    /// `csr NAME`: the PEM request.
    fn csr(&mut self, name: &str) -> String {
        let out = self.send(&format!("csr {name}\r\n"));
        assert!(out.ends_with("ok csr\n"), "{out}");
        let begin = out.find("-----BEGIN").unwrap();
        out[begin..out.len() - "ok csr\n".len()].to_owned()
    }

    /// Sends `what` is refused with exactly one `error: ` line and changes neither the flash nor the key.
    fn assert_refused(&mut self, input: &str, expected: &str) -> String {
        let (sector, writes, key) = (self.flash.sector, self.flash.writes, self.key());
        let out = self.send(input);
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines.len(), 1, "one line expected: {out:?}");
        assert!(lines[0].starts_with("error: "), "{out:?}");
        assert!(
            lines[0].contains(expected),
            "{out:?} should name {expected:?}"
        );
        assert_eq!(self.flash.writes, writes, "no flash write");
        assert!(self.flash.sector == sector, "flash unchanged");
        assert_eq!(self.key(), key, "key unchanged");
        out
    }
}

struct TestSite {
    _dir: tempfile::TempDir,
    site: Site,
}

impl TestSite {
    fn new(name: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let init = SiteInit {
            site_name: name.into(),
            ..SiteInit::default()
        };
        let site = Site::init(&dir.path().join("site"), &init).unwrap();
        TestSite { _dir: dir, site }
    }

    fn ca_pem(&self) -> String {
        std::fs::read_to_string(self.site.dir().join("ecc.ca.cert.pem")).unwrap()
    }

    /// The sensor certificate (PEM) for a request.
    fn issue(&self, name: &str, csr: &str) -> String {
        self.site
            .issue_csr(
                name,
                Role::Sensor,
                &["/esp8266".into()],
                csr,
                Validity::days(30),
            )
            .unwrap();
        std::fs::read_to_string(self.site.cert_path(name)).unwrap()
    }
}

fn der_of(pem_text: &str) -> Vec<u8> {
    let mut buf = vec![0u8; pem_text.len()];
    let (_, der) = pem_rfc7468::decode(pem_text.as_bytes(), &mut buf).unwrap();
    der.to_vec()
}

#[test]
fn happy_path_stores_the_certificate_and_the_ca_in_the_sector() {
    let site = TestSite::new("home");
    let mut node = Node::new(1);
    assert_eq!(node.key(), None);
    let out = node.send("csr esp1\n");
    assert!(
        out.starts_with("key created\n-----BEGIN CERTIFICATE REQUEST-----\n"),
        "{out}"
    );
    let key = node.key().expect("GenKey made the key");
    let csr = node.csr("esp1");
    let cert = site.issue("esp1", &csr);
    let ca = site.ca_pem();

    let ca_hash = Sha256Hex::of(&der_of(&ca)).to_string();
    assert_eq!(
        node.send(&format!("ca\n{ca}")),
        format!("ok ca {ca_hash}\n")
    );
    let cert_hash = Sha256Hex::of(&der_of(&cert)).to_string();
    assert_eq!(
        node.send(&format!("cert\r\n{}", cert.replace('\n', "\r\n"))),
        format!("ok stored {cert_hash}\n")
    );
    assert_eq!(node.flash.writes, 1);
    let record = IdentityRecord::decode(&node.flash.sector).unwrap();
    assert_eq!(record.cert_der, der_of(&cert));
    assert_eq!(record.ca_cert_der, der_of(&ca));
    assert_eq!(node.key(), Some(key));

    assert_eq!(
        node.send("show\n"),
        format!("identity: cert {cert_hash} ca {ca_hash}\n")
    );
    assert_eq!(node.send("provision\n"), format!("{PROMPT}\n"));
    assert_eq!(
        node.type_text("exit\nshow\n"),
        ("ok exit\n".to_owned(), Step::Exit)
    );
}

#[test]
fn show_on_an_erased_sector_says_why_there_is_none() {
    let mut node = Node::new(2);
    let out = node.send("show\n");
    assert!(
        out.starts_with("identity: none (no identity stored"),
        "{out}"
    );
}

#[test]
fn an_existing_key_is_kept_unless_new_key_is_asked_for() {
    let mut node = Node::new(3);
    node.csr("esp1");
    let first = node.key();
    assert!(node.send("csr esp1\n").starts_with("key kept\n"));
    assert_eq!(node.key(), first);
    assert!(node
        .send("csr esp1 new-key\n")
        .starts_with("key replaced\n"));
    assert_ne!(node.key(), first);
}

#[test]
fn garbage_and_over_long_lines_and_bad_names_are_refused() {
    let mut node = Node::new(4);
    node.assert_refused("hello world\n", "unknown command \"hello\"");
    node.assert_refused("\x01\x02\u{ff}\n", "unknown command");
    node.assert_refused(
        &format!("{}\n", "x".repeat(MAX_LINE_LEN + 1)),
        "line longer than 96 bytes",
    );
    node.assert_refused("csr\n", "usage: csr NAME [new-key]");
    node.assert_refused("csr esp-1\n", "\"esp-1\" is not a sensor name");
    node.assert_refused("csr esp1 please\n", "usage");
    // Refusals change nothing: the key was never made.
    assert_eq!(node.key(), None);
    // And the console still works.
    node.csr("esp1");
}

#[test]
fn pem_garbage_is_refused_in_one_line() {
    let site = TestSite::new("home");
    let mut node = Node::new(5);
    node.csr("esp1");
    node.assert_refused("ca\nnot pem\n", "ca: expected a PEM block");
    node.assert_refused(
        "ca\n-----BEGIN CERTIFICATE-----\n!!!!not base64!!!!\n-----END CERTIFICATE-----\n",
        "ca: not a PEM certificate",
    );
    node.assert_refused("ca\n-----BEGIN CERTIFICATE-----\nQUJD\n\n", "empty line");
    let csr = node.csr("esp1");
    node.assert_refused(&format!("ca\n{csr}"), "not a CERTIFICATE");
    let long_line = "QUJD".repeat(16);
    let huge = format!(
        "ca\n-----BEGIN CERTIFICATE-----\n{}-----END CERTIFICATE-----\n",
        format!("{long_line}\n").repeat(60)
    );
    node.assert_refused(&huge, "PEM block longer than");
    // A sensor certificate is no CA.
    let cert = site.issue("esp1", &csr);
    node.assert_refused(&format!("ca\n{cert}"), "ca: not a CA certificate");
    // An over-long line inside a block ends the block.
    node.assert_refused(
        &format!("ca\n-----BEGIN CERTIFICATE-----\n{}\n", "A".repeat(200)),
        "line longer",
    );
    assert_eq!(node.send("show\n").lines().count(), 1);
}

#[test]
fn a_certificate_before_the_ca_is_refused() {
    let site = TestSite::new("home");
    let mut node = Node::new(6);
    let cert = site.issue("esp1", &node.csr("esp1"));
    node.assert_refused(&format!("cert\n{cert}"), "cert: no CA yet");
}

#[test]
fn a_certificate_for_another_key_is_refused() {
    let site = TestSite::new("home");
    let mut node = Node::new(7);
    let mut other = Node::new(8);
    node.csr("esp1");
    let cert = site.issue("esp2", &other.csr("esp2"));
    node.send(&format!("ca\n{}", site.ca_pem()));
    node.assert_refused(
        &format!("cert\n{cert}"),
        "cert: certificate for another key",
    );
}

#[test]
fn a_certificate_from_another_ca_is_refused_and_a_stored_identity_stays() {
    let site = TestSite::new("home");
    let elsewhere = TestSite::new("elsewhere");
    let mut node = Node::new(9);
    let csr = node.csr("esp1");
    let good = site.issue("esp1", &csr);
    let foreign = elsewhere.issue("esp1", &csr);
    node.send(&format!("ca\n{}", site.ca_pem()));
    assert!(node
        .send(&format!("cert\n{good}"))
        .starts_with("ok stored "));
    node.assert_refused(
        &format!("cert\n{foreign}"),
        "cert: certificate from another CA",
    );
    // The CA certificate as the node's own.
    node.assert_refused(
        &format!("cert\n{}", site.ca_pem()),
        "cert: a CA certificate",
    );
    assert_eq!(
        IdentityRecord::decode(&node.flash.sector).unwrap().cert_der,
        der_of(&good)
    );
}

#[test]
fn a_certificate_without_a_key_in_the_chip_is_refused() {
    let site = TestSite::new("home");
    let mut other = Node::new(10);
    let cert = site.issue("esp2", &other.csr("esp2"));
    let mut node = Node::new(11);
    node.send(&format!("ca\n{}", site.ca_pem()));
    node.assert_refused(&format!("cert\n{cert}"), "holds no key yet");
}

#[test]
fn the_state_is_small_enough_for_the_esp8266() {
    assert_eq!(Console::STATE_LEN, std::mem::size_of::<Console>());
    // The limit itself is checked when the crate is built (`console.rs`).
    println!("console state: {} bytes", Console::STATE_LEN);
}
