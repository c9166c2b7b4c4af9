//! `tmc-provision sensor-identity` through the binary, on a simulated chip kept in a file; and the node's
//! PKCS#10 request (tmc-node-tls) through the site CA.

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Command, Output};

use common::Fixture;
use tmc_atecc::sim::{file, Model};
use tmc_pki::{Role, Validity};
use tmc_testkit::{failure_reason, success_stdout};

fn tmc_provision() -> Command {
    tmc_testkit::bin_command(env!("CARGO_BIN_EXE_tmc-provision"))
}

fn enroll(f: &Fixture, chip: &Path, name: &str, extra: &[&str]) -> Output {
    tmc_provision()
        .args(["sensor-identity", "--site"])
        .arg(f.site.dir())
        .args(["--name", name, "--chip"])
        .arg(format!("sim:{}", chip.display()))
        .args(extra)
        .output()
        .unwrap()
}

/// The chip's key in `slot`, read from its file as the simulator keeps it.
fn chip_key(chip: &Path, slot: u8) -> [u8; 64] {
    let sim = file::load_or_create(chip, Model::Atecc608a).unwrap();
    sim.public_key(slot).expect("the slot holds a key")
}

struct Cert {
    key: [u8; 64],
    common_name: String,
    serial: String,
}

fn read_cert(path: &Path) -> Cert {
    let pem_text = fs::read(path).unwrap();
    let (_, pem) = x509_parser::pem::parse_x509_pem(&pem_text).unwrap();
    let cert = pem.parse_x509().unwrap();
    let point = &cert.public_key().subject_public_key.data;
    assert_eq!(point[0], 4, "uncompressed point");
    let common_name = cert
        .subject()
        .iter_common_name()
        .map(|cn| cn.as_str().unwrap().to_owned())
        .collect::<Vec<_>>()
        .join(",");
    Cert {
        key: point[1..].try_into().unwrap(),
        common_name,
        serial: hex::encode(cert.raw_serial()),
    }
}

fn line_with<'a>(stdout: &'a str, start: &str) -> &'a str {
    stdout
        .lines()
        .find(|l| l.starts_with(start))
        .unwrap_or_else(|| panic!("no line starting {start:?} in:\n{stdout}"))
}

fn openssl_verifies(ca: &Path, cert: &Path) {
    let out = Command::new("openssl")
        .arg("verify")
        .arg("-CAfile")
        .arg(ca)
        .arg(cert)
        .output()
        .expect("the openssl binary");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn the_certificate_is_for_the_chips_key_and_a_rerun_keeps_it() {
    let f = Fixture::new();
    let chip = f.dir.join("esp1.chip");
    let cert_path = f.site.cert_path("esp1");

    let stdout = success_stdout(&enroll(&f, &chip, "esp1", &["--topic", "/esp8266"]));
    assert_eq!(
        line_with(&stdout, "key "),
        "key      slot 0: new key (GenKey)"
    );
    assert!(
        line_with(&stdout, "issued   sensor certificate for \"esp1\"")
            .ends_with("topics sensors/esp1/# /esp8266")
    );
    assert_eq!(
        line_with(&stdout, "wrote "),
        format!("wrote    {}", cert_path.display())
    );
    assert_eq!(
        fs::metadata(&chip).unwrap().permissions().mode() & 0o777,
        0o600,
        "the chip file holds private keys"
    );
    let key = chip_key(&chip, 0);
    let first = read_cert(&cert_path);
    assert_eq!(first.key, key, "the certificate certifies the chip's key");
    assert_eq!(first.common_name, "esp1");
    assert_eq!(
        line_with(&stdout, "public "),
        format!("public   04{}", hex::encode(key))
    );
    let serial = hex::encode(
        file::load_or_create(&chip, Model::Atecc608a)
            .unwrap()
            .serial_number(),
    );
    assert_eq!(
        line_with(&stdout, "chip "),
        format!("chip     sim:{}: serial {serial}", chip.display())
    );
    openssl_verifies(&f.site.dir().join("ecc.ca.cert.pem"), &cert_path);
    let identity = f
        .site
        .list()
        .unwrap()
        .into_iter()
        .find(|i| i.name == "esp1")
        .unwrap();
    assert_eq!(identity.role, Role::Sensor);
    assert!(identity.from_csr);
    assert_eq!(identity.serial, first.serial);

    // Again: same key, a new certificate for it.
    let stdout = success_stdout(&enroll(&f, &chip, "esp1", &[]));
    assert_eq!(
        line_with(&stdout, "key "),
        "key      slot 0: existing key kept (--new-key replaces it)"
    );
    assert!(
        stdout.contains("reissued sensor certificate for \"esp1\""),
        "{stdout}"
    );
    assert_eq!(chip_key(&chip, 0), key);
    let second = read_cert(&cert_path);
    assert_eq!(second.key, key);
    assert_ne!(second.serial, first.serial, "re-issued");

    // --new-key: another key, and the certificate follows it.
    let stdout = success_stdout(&enroll(&f, &chip, "esp1", &["--new-key"]));
    assert!(
        line_with(&stdout, "key ").contains("replaced the slot's key"),
        "{stdout}"
    );
    let replaced = chip_key(&chip, 0);
    assert_ne!(replaced, key);
    assert_eq!(read_cert(&cert_path).key, replaced);
    openssl_verifies(&f.site.dir().join("ecc.ca.cert.pem"), &cert_path);
}

#[test]
fn the_identity_file_goes_beside_the_sensor_config() {
    let f = Fixture::new();
    let config = f.dir.join("fw/esp1.toml");
    fs::create_dir_all(config.parent().unwrap()).unwrap();
    success_stdout(
        &tmc_provision()
            .args(["sensor-config", "--site"])
            .arg(f.site.dir())
            .args(["--name", "esp1", "--out"])
            .arg(&config)
            .output()
            .unwrap(),
    );
    let config_before = fs::read(&config).unwrap();
    let chip = f.dir.join("esp1.chip");
    let config_arg = config.to_str().unwrap();
    let stdout = success_stdout(&enroll(
        &f,
        &chip,
        "esp1",
        &["--slot", "2", "--config", config_arg],
    ));
    let identity_path = f.dir.join("fw/esp1.identity.toml");
    assert!(
        stdout.contains(&format!("wrote    {}", identity_path.display())),
        "{stdout}"
    );
    assert_eq!(
        fs::read(&config).unwrap(),
        config_before,
        "the firmware's file is left alone"
    );
    let text = fs::read_to_string(&identity_path).unwrap();
    let value = |key: &str| {
        text.lines()
            .find_map(|l| l.strip_prefix(&format!("{key} = ")))
            .unwrap_or_else(|| panic!("{key} in {text}"))
            .trim_matches('"')
            .to_owned()
    };
    assert_eq!(value("client_id"), "esp1");
    assert_eq!(value("key_slot"), "2");
    assert_eq!(
        value("public_key"),
        format!("04{}", hex::encode(chip_key(&chip, 2)))
    );
    let body = |pem: &Path| -> String {
        fs::read_to_string(pem)
            .unwrap()
            .lines()
            .filter(|l| !l.starts_with("-----"))
            .collect()
    };
    assert_eq!(value("cert_der_base64"), body(&f.site.cert_path("esp1")));
    assert_eq!(
        value("ca_der_base64"),
        body(&f.site.dir().join("ecc.ca.cert.pem"))
    );

    // A config file for another sensor is refused before the chip is touched.
    let other = f.dir.join("other.chip");
    let reason = failure_reason(&enroll(&f, &other, "esp2", &["--config", config_arg]));
    assert!(
        reason.contains("its client_id is Some(\"esp1\"), not \"esp2\""),
        "{reason}"
    );
    assert!(!other.exists());
}

#[test]
fn refusals_are_one_line_each() {
    let f = Fixture::new();
    let chip = f.dir.join("chip");

    let reason = failure_reason(&enroll(&f, &chip, "esp-1", &[]));
    assert!(
        reason.starts_with("tmc-provision: --name esp-1: "),
        "{reason}"
    );
    assert!(!chip.exists(), "no chip file for a refused name");

    let out = tmc_provision()
        .args(["sensor-identity", "--site"])
        .arg(f.dir.join("nowhere"))
        .args(["--name", "esp1", "--chip"])
        .arg(format!("sim:{}", chip.display()))
        .output()
        .unwrap();
    let reason = failure_reason(&out);
    assert!(reason.contains("not a TMC site directory"), "{reason}");

    let garbage = f.dir.join("garbage.chip");
    fs::write(&garbage, b"not a chip").unwrap();
    fs::set_permissions(&garbage, fs::Permissions::from_mode(0o600)).unwrap();
    let reason = failure_reason(&enroll(&f, &garbage, "esp1", &[]));
    assert!(
        reason.starts_with(&format!("tmc-provision: chip sim:{}: ", garbage.display())),
        "{reason}"
    );
    assert_eq!(fs::read(&garbage).unwrap(), b"not a chip", "left as it was");

    // Slot 5 of the simulated chip is a data slot.
    let reason = failure_reason(&enroll(&f, &chip, "esp1", &["--slot", "5"]));
    assert!(
        reason.contains("slot 5 is not a P-256 private-key slot"),
        "{reason}"
    );
    let reason = failure_reason(&enroll(&f, &chip, "esp1", &["--slot", "16"]));
    assert!(
        reason.contains("--slot \"16\": the chip's slots are 0..=15"),
        "{reason}"
    );

    let out = tmc_provision()
        .args(["sensor-identity", "--site"])
        .arg(f.site.dir())
        .args(["--name", "esp1", "--chip", "i2c-1"])
        .output()
        .unwrap();
    assert!(failure_reason(&out).contains("expected sim:PATH"));

    // A name another role holds.
    f.site
        .issue("relay1", Role::Relay, &[], Validity::days(1))
        .unwrap();
    let reason = failure_reason(&enroll(&f, &chip, "relay1", &[]));
    assert!(reason.contains("issued as a relay"), "{reason}");

    // A name another chip holds: not moved without --new-key.
    success_stdout(&enroll(&f, &chip, "esp1", &[]));
    let second_chip = f.dir.join("second.chip");
    let reason = failure_reason(&enroll(&f, &second_chip, "esp1", &[]));
    assert!(
        reason.contains("certifies another key than slot 0 of chip"),
        "{reason}"
    );
    assert_eq!(read_cert(&f.site.cert_path("esp1")).key, chip_key(&chip, 0));

    // A revoked name stays revoked.
    f.site.revoke("esp1").unwrap();
    let reason = failure_reason(&enroll(&f, &chip, "esp1", &[]));
    assert!(reason.contains("revoked"), "{reason}");
}

#[test]
fn the_site_ca_accepts_the_nodes_request() {
    use tmc_node_tls::csr::{csr_pem, write_csr, MAX_CSR_DER_LEN, MAX_CSR_PEM_LEN};
    use tmc_node_tls::SecureElement;

    let f = Fixture::new();
    for (seed, name) in [(3u8, "esp7"), (4, "kitchen")] {
        let mut scalar = [0x5au8; 32];
        scalar[0] = seed;
        let mut key = tmc_node_tls::software::SoftwareKey::from_bytes(&scalar).unwrap();
        let mut der = [0u8; MAX_CSR_DER_LEN];
        let n = write_csr(&mut key, name, &mut der).unwrap();
        let mut pem = [0u8; MAX_CSR_PEM_LEN];
        let m = csr_pem(&der[..n], &mut pem).unwrap();
        let pem = std::str::from_utf8(&pem[..m]).unwrap();
        let identity = f
            .site
            .issue_csr(
                name,
                Role::Sensor,
                &["/esp8266".into()],
                pem,
                Validity::days(30),
            )
            .unwrap();
        assert!(identity.from_csr);
        let cert = read_cert(&f.site.cert_path(name));
        assert_eq!(cert.key, key.public_key().unwrap());
        assert_eq!(cert.common_name, name);
        assert_eq!(cert.serial, identity.serial);
        // renew --csr takes it too.
        let renewed = f.site.renew(name, Some(pem), Validity::days(30)).unwrap();
        assert_ne!(renewed.serial, identity.serial);
    }
}

/// A concentrator's relay key in its own chip: the request made where the chip is (`chip-csr`), certified
/// where the CA is (`Site::issue_csr`, as `tmc-pki issue --csr --role relay`), for the chip's key; a second
/// run keeps the key.
#[test]
fn chip_csr_for_a_relay_key() {
    let f = Fixture::new();
    let chip = f.dir.join("pi-chip.atecc");
    let csr = f.dir.join("relay1.csr.pem");
    let run = |extra: &[&str]| {
        tmc_provision()
            .args(["chip-csr", "--name", "relay1", "--chip"])
            .arg(format!("sim:{}", chip.display()))
            .arg("--out")
            .arg(&csr)
            .args(extra)
            .output()
            .unwrap()
    };
    let out = success_stdout(&run(&[]));
    assert!(
        line_with(&out, "key ").contains("new key (GenKey)"),
        "{out}"
    );
    let key = chip_key(&chip, 0);
    let pem = fs::read_to_string(&csr).unwrap();
    assert!(
        pem.starts_with("-----BEGIN CERTIFICATE REQUEST-----"),
        "{pem}"
    );
    f.site
        .issue_csr("relay1", Role::Relay, &[], &pem, Validity::days(30))
        .unwrap();
    let cert = read_cert(&f.site.cert_path("relay1"));
    assert_eq!((cert.key, cert.common_name.as_str()), (key, "relay1"));

    let out = success_stdout(&run(&[]));
    assert!(line_with(&out, "key ").contains("kept"), "{out}");
    assert_eq!(chip_key(&chip, 0), key);
    let out = success_stdout(&run(&["--new-key"]));
    assert!(line_with(&out, "key ").contains("replaced"), "{out}");
    assert_ne!(chip_key(&chip, 0), key);

    let out = run(&["--slot", "8"]);
    assert!(
        failure_reason(&out).contains("slot 8 is not a P-256 private-key slot"),
        "{}",
        failure_reason(&out)
    );
}
