//! `tmc-provision sensor-console` through the binary against the pty double of a flashed node
//! (`tmc_node_console::sim`, run as a child process of this test binary), with a real site: the identity
//! the node stores, a re-run keeping the key, and refusals (over the tool and typed on the pty) that leave
//! the node's flash as it was.

mod common;

use std::fs;
use std::io::{BufRead, BufReader, Write};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdout, Output, Stdio};

use common::Fixture;
use tmc_atecc::sim::{file, Model};
use tmc_node_tls::cert::Certificate;
use tmc_node_tls::identity::IdentityRecord;
use tmc_pki::{Role, Site, SiteInit, Validity};
use tmc_testkit::{failure_reason, success_stdout};

/// Set in the double's environment: "CHIP\nFLASH".
const DOUBLE_ENV: &str = "TMC_TEST_NODE_DOUBLE";

/// Not a test when run by the harness: the pty double's process when started by [`NodeDouble::start`].
#[test]
fn node_double() {
    let Ok(spec) = std::env::var(DOUBLE_ENV) else {
        return;
    };
    let (chip, flash) = spec.split_once('\n').unwrap();
    let options = tmc_node_console::sim::SimOptions {
        chip: chip.into(),
        flash: flash.into(),
        slot: 0,
    };
    tmc_node_console::sim::run(&options, |pty| println!("pty={}", pty.display())).unwrap();
}

/// The double as a child process, stopped by pid (SIGTERM) when dropped.
struct NodeDouble {
    child: Child,
    /// Kept open: the harness prints its result lines at the end.
    _stdout: BufReader<ChildStdout>,
    pty: PathBuf,
}

impl NodeDouble {
    fn start(chip: &Path, flash: &Path) -> Self {
        let exe = std::env::current_exe().unwrap();
        let mut cmd = tmc_testkit::bin_command(exe.to_str().unwrap());
        cmd.args(["--exact", "node_double", "--nocapture", "--test-threads=1"])
            .env(
                DOUBLE_ENV,
                format!("{}\n{}", chip.display(), flash.display()),
            )
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        let mut child = cmd.spawn().unwrap();
        let mut stdout = BufReader::new(child.stdout.take().unwrap());
        // The harness prints its own words first, on the same line ("test node_double ... pty=…").
        let pty = loop {
            let mut line = String::new();
            assert!(
                stdout.read_line(&mut line).unwrap() > 0,
                "the double ended before its pty"
            );
            if let Some((_, path)) = line.trim_end().split_once("pty=") {
                break PathBuf::from(path);
            }
        };
        NodeDouble {
            child,
            _stdout: stdout,
            pty,
        }
    }

    /// Waits for the double to end by itself (after `exit`).
    fn wait_exited(&mut self) {
        let status = self.child.wait().unwrap();
        assert!(status.success(), "{status}");
    }
}

impl Drop for NodeDouble {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = tmc_testkit::signal(self.child.id(), "TERM");
        }
        let _ = self.child.wait();
    }
}

fn sensor_console(f: &Fixture, pty: &Path, name: &str, extra: &[&str]) -> Output {
    tmc_testkit::bin_command(env!("CARGO_BIN_EXE_tmc-provision"))
        .args(["sensor-console", "--port"])
        .arg(pty)
        .arg("--site")
        .arg(f.site.dir())
        .args(["--name", name])
        .args(extra)
        .output()
        .unwrap()
}

fn chip_key(chip: &Path) -> Option<[u8; 64]> {
    file::load_or_create(chip, Model::Atecc608a)
        .unwrap()
        .public_key(0)
}

fn pem_der(path: &Path) -> Vec<u8> {
    let text = fs::read(path).unwrap();
    x509_parser::pem::parse_x509_pem(&text).unwrap().1.contents
}

fn mode(path: &Path) -> u32 {
    fs::metadata(path).unwrap().permissions().mode() & 0o777
}

/// The record in the flash file: the certificate's key and the CA DER.
fn stored(flash: &Path) -> (Vec<u8>, [u8; 64], Vec<u8>) {
    let sector = fs::read(flash).unwrap();
    assert_eq!(sector.len(), 4096);
    let record = IdentityRecord::decode(&sector).unwrap();
    let key = Certificate::parse(record.cert_der).unwrap().public_key;
    (record.cert_der.to_vec(), key, record.ca_cert_der.to_vec())
}

#[test]
fn provisions_the_node_and_a_rerun_keeps_its_key() {
    let f = Fixture::new();
    let (chip, flash) = (f.dir.join("esp1.chip"), f.dir.join("esp1.flash"));
    let mut node = NodeDouble::start(&chip, &flash);
    let out = success_stdout(&sensor_console(&f, &node.pty, "esp1", &[]));
    node.wait_exited();
    assert!(
        out.contains(": new key (GenKey in the node's secure element)"),
        "{out}"
    );
    assert!(
        out.contains("issued   sensor certificate for \"esp1\""),
        "{out}"
    );
    assert!(
        out.contains("stored   on the node: certificate sha256 "),
        "{out}"
    );

    let key = chip_key(&chip).expect("the node made its key");
    let (cert, cert_key, ca) = stored(&flash);
    assert_eq!(
        cert_key, key,
        "the stored certificate is for the chip's key"
    );
    assert_eq!(
        ca,
        pem_der(&f.site.dir().join("ecc.ca.cert.pem")),
        "the site CA"
    );
    assert_eq!(
        cert,
        pem_der(&f.site.cert_path("esp1")),
        "the certificate the site issued"
    );
    assert_eq!(mode(&flash), 0o600);
    assert_eq!(mode(&chip), 0o600);

    let mut node = NodeDouble::start(&chip, &flash);
    let out = success_stdout(&sensor_console(&f, &node.pty, "esp1", &[]));
    node.wait_exited();
    assert!(out.contains(": existing key kept"), "{out}");
    assert!(
        out.contains("reissued sensor certificate for \"esp1\""),
        "{out}"
    );
    assert_eq!(chip_key(&chip), Some(key));
    let (again, again_key, _) = stored(&flash);
    assert_eq!(again_key, key);
    assert_ne!(
        again, cert,
        "a new certificate (serial, validity) for the same key"
    );
}

#[test]
fn a_name_certified_for_another_node_is_refused_before_anything_is_stored() {
    let f = Fixture::new();
    let first = (f.dir.join("a.chip"), f.dir.join("a.flash"));
    let mut node = NodeDouble::start(&first.0, &first.1);
    success_stdout(&sensor_console(&f, &node.pty, "esp1", &[]));
    node.wait_exited();

    let (chip, flash) = (f.dir.join("b.chip"), f.dir.join("b.flash"));
    let node = NodeDouble::start(&chip, &flash);
    let reason = failure_reason(&sensor_console(&f, &node.pty, "esp1", &[]));
    assert!(
        reason.contains("certifies another key than the node's on"),
        "{reason}"
    );
    assert!(!flash.exists(), "nothing stored on the second node");
    drop(node);
}

#[test]
fn a_silent_console_times_out_naming_the_step() {
    let f = Fixture::new();
    // A pty nobody answers on.
    let pty = nix::pty::openpty(None, None).unwrap();
    let path = nix::unistd::ttyname(&pty.slave).unwrap();
    let out = sensor_console(&f, &path, "esp1", &["--timeout", "1"]);
    let reason = failure_reason(&out);
    assert!(
        reason.contains("entering provisioning mode: no answer within 1 s; received: nothing"),
        "{reason}"
    );
}

/// The node's console typed at by hand.
struct Typist {
    pty: fs::File,
    lines: BufReader<fs::File>,
}

impl Typist {
    fn open(pty: &Path) -> Self {
        let file = fs::OpenOptions::new()
            .read(true)
            .write(true)
            .open(pty)
            .unwrap();
        let lines = BufReader::new(file.try_clone().unwrap());
        Typist { pty: file, lines }
    }

    fn line(&mut self) -> String {
        let mut line = String::new();
        assert!(self.lines.read_line(&mut line).unwrap() > 0);
        line.trim_end().to_owned()
    }

    fn send(&mut self, text: &str) {
        self.pty.write_all(text.as_bytes()).unwrap();
    }

    /// Lines up to the first starting with `start`.
    fn until(&mut self, start: &str) -> Vec<String> {
        let mut lines = Vec::new();
        loop {
            let line = self.line();
            let done = line.starts_with(start);
            lines.push(line);
            if done {
                return lines;
            }
        }
    }
}

#[test]
fn certificates_from_another_ca_or_for_another_key_are_refused_on_the_console() {
    let f = Fixture::new();
    let (chip, flash) = (f.dir.join("esp1.chip"), f.dir.join("esp1.flash"));
    let mut node = NodeDouble::start(&chip, &flash);
    success_stdout(&sensor_console(&f, &node.pty, "esp1", &[]));
    node.wait_exited();
    let sector = fs::read(&flash).unwrap();
    let key = chip_key(&chip);

    // Another site's CA certifying this node's request, and this site certifying another chip's.
    let elsewhere = Site::init(&f.dir.join("elsewhere"), &SiteInit::default()).unwrap();
    let other_chip = f.dir.join("other.chip");
    success_stdout(
        &tmc_testkit::bin_command(env!("CARGO_BIN_EXE_tmc-provision"))
            .args(["sensor-identity", "--site"])
            .arg(f.site.dir())
            .args(["--name", "esp2", "--chip"])
            .arg(format!("sim:{}", other_chip.display()))
            .output()
            .unwrap(),
    );

    let node = NodeDouble::start(&chip, &flash);
    let mut console = Typist::open(&node.pty);
    console.send("provision\n");
    console.until("tmc provisioning:");
    console.send("csr esp1\n");
    let csr_lines = console.until("ok csr");
    assert_eq!(csr_lines[0], "key kept");
    let csr = csr_lines[1..csr_lines.len() - 1].join("\n") + "\n";
    elsewhere
        .issue_csr(
            "esp1",
            Role::Sensor,
            &["/esp8266".into()],
            &csr,
            Validity::days(30),
        )
        .unwrap();
    let foreign = fs::read_to_string(elsewhere.cert_path("esp1")).unwrap();
    let ca = fs::read_to_string(f.site.dir().join("ecc.ca.cert.pem")).unwrap();
    console.send(&format!("ca\n{ca}"));
    assert!(console.line().starts_with("ok ca "));

    console.send(&format!("cert\n{foreign}"));
    assert_eq!(
        console.line(),
        "error: cert: certificate from another CA than the pending one"
    );
    let other = fs::read_to_string(f.site.cert_path("esp2")).unwrap();
    console.send(&format!("cert\n{other}"));
    assert_eq!(
        console.line(),
        "error: cert: certificate for another key than this node's"
    );
    console.send("garbage\n");
    assert!(console
        .line()
        .starts_with("error: unknown command \"garbage\""));
    // Each refusal was one line: the next answer is show's.
    console.send("show\n");
    assert!(console.line().starts_with("identity: cert "));
    console.send("exit\n");
    assert_eq!(console.line(), "ok exit");
    drop(node);

    assert_eq!(fs::read(&flash).unwrap(), sector, "the flash is unchanged");
    assert_eq!(chip_key(&chip), key, "the key is unchanged");
}
