//! Site operations and certificate validation, through the library and the `tmc-pki` command.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use rcgen::{CertificateParams, KeyPair, PKCS_ECDSA_P256_SHA256};
use time::{Duration, OffsetDateTime};
use tmc_pki::validate::{self, CertCheck, CertProblem};
use tmc_pki::{PkiError, Role, Site, SiteInit, Validity};
use tmc_testkit::{failure_reason, success_stdout};

fn site(dir: &Path) -> Site {
    Site::init(&dir.join("site"), &SiteInit::default()).unwrap()
}

fn read(p: impl AsRef<Path>) -> String {
    std::fs::read_to_string(p).unwrap()
}

fn check(
    site: &Site,
    name: &str,
    key: bool,
    host: Option<&str>,
    now: OffsetDateTime,
) -> Result<(), CertProblem> {
    let cert = read(site.cert_path(name));
    let ca = read(site.dir().join("ecc.ca.cert.pem"));
    let key = key.then(|| read(site.key_path(name)));
    validate::check(&CertCheck {
        name,
        cert_pem: &cert,
        ca_pem: &ca,
        key_pem: key.as_deref(),
        host,
        now,
    })
}

fn mode(p: impl AsRef<Path>) -> u32 {
    std::fs::metadata(p).unwrap().permissions().mode() & 0o777
}

#[test]
fn init_and_issue_write_keys_0600_and_certificates_that_validate() {
    let dir = tempfile::tempdir().unwrap();
    let site = site(dir.path());
    site.issue("sensor1", Role::Sensor, &[], Validity::days(10))
        .unwrap();
    for key in ["ca", "broker", "sensor1"] {
        assert_eq!(mode(site.key_path(key)), 0o600, "{key}");
    }
    assert_eq!(mode(site.envelope_keys_path()), 0o600);
    assert_eq!(mode(site.cert_path("sensor1")), 0o644);
    assert_eq!(site.check("mqtt.com").unwrap(), ["broker", "sensor1"]);
    let err = Site::init(site.dir(), &SiteInit::default()).unwrap_err();
    assert!(matches!(err, PkiError::SiteExists(_)), "{err}");
}

#[test]
fn each_invalid_certificate_has_its_own_reason() {
    let dir = tempfile::tempdir().unwrap();
    let site = site(dir.path());
    let other = Site::init(&dir.path().join("other"), &SiteInit::default()).unwrap();
    site.issue("sensor1", Role::Sensor, &[], Validity::days(10))
        .unwrap();
    let now = OffsetDateTime::now_utc();

    let expired = check(&site, "sensor1", true, None, now + Duration::days(11)).unwrap_err();
    assert!(matches!(expired, CertProblem::Expired { .. }), "{expired}");
    assert!(expired.to_string().contains("tmc-pki renew --name sensor1"));
    let early = check(&site, "sensor1", true, None, now - Duration::days(1)).unwrap_err();
    assert!(matches!(early, CertProblem::NotYetValid { .. }), "{early}");

    // A certificate of another site's CA, checked against ours.
    other
        .issue("sensor1", Role::Sensor, &[], Validity::days(10))
        .unwrap();
    let cert = read(other.cert_path("sensor1"));
    let ca = read(site.dir().join("ecc.ca.cert.pem"));
    let foreign = validate::check(&CertCheck {
        name: "sensor1",
        cert_pem: &cert,
        ca_pem: &ca,
        key_pem: None,
        host: None,
        now,
    })
    .unwrap_err();
    assert_eq!(foreign.to_string(), "sensor1: not signed by this site's CA");

    // Our certificate with another key.
    let cert = read(site.cert_path("sensor1"));
    let wrong_key = read(other.key_path("sensor1"));
    let mismatch = validate::check(&CertCheck {
        name: "sensor1",
        cert_pem: &cert,
        ca_pem: &ca,
        key_pem: Some(&wrong_key),
        host: None,
        now,
    })
    .unwrap_err();
    assert_eq!(
        mismatch.to_string(),
        "sensor1: the private key does not match the certificate"
    );

    // The broker certificate does not name a host clients might use.
    let names = check(&site, "broker", true, Some("broker.example"), now).unwrap_err();
    assert!(
        matches!(&names, CertProblem::HostNotInNames { names, .. } if names == &["mqtt.com", "10.33.33.1"]),
        "{names}"
    );
    check(&site, "broker", true, Some("10.33.33.1"), now).unwrap();

    let garbage = validate::check(&CertCheck {
        name: "x",
        cert_pem: "not pem",
        ca_pem: &ca,
        key_pem: None,
        host: None,
        now,
    })
    .unwrap_err();
    assert!(
        matches!(garbage, CertProblem::Unreadable { .. }),
        "{garbage}"
    );
}

#[test]
fn a_csr_is_signed_without_the_key_ever_reaching_the_site() {
    let dir = tempfile::tempdir().unwrap();
    let site = site(dir.path());
    // Stands in for the ATECC608: the key stays here, only the request travels.
    let element_key = KeyPair::generate_for(&PKCS_ECDSA_P256_SHA256).unwrap();
    let csr = CertificateParams::new(vec![])
        .unwrap()
        .serialize_request(&element_key)
        .unwrap()
        .pem()
        .unwrap();
    let identity = site
        .issue_csr(
            "esp1",
            Role::Sensor,
            &["/esp8266".into()],
            &csr,
            Validity::days(10),
        )
        .unwrap();
    assert!(identity.from_csr);
    assert_eq!(identity.topics, ["sensors/esp1/#", "/esp8266"]);
    assert!(!site.key_path("esp1").exists());
    let cert = read(site.cert_path("esp1"));
    let ca = read(site.dir().join("ecc.ca.cert.pem"));
    let now = OffsetDateTime::now_utc();
    validate::check(&CertCheck {
        name: "esp1",
        cert_pem: &cert,
        ca_pem: &ca,
        key_pem: Some(&element_key.serialize_pem()),
        host: None,
        now,
    })
    .unwrap();
    // Renewing a CSR identity needs a new request.
    assert!(matches!(
        site.renew("esp1", None, Validity::days(10)),
        Err(PkiError::RenewNeedsCsr { .. })
    ));
    let renewed = site.renew("esp1", Some(&csr), Validity::days(20)).unwrap();
    assert_ne!(renewed.serial, identity.serial);
    assert!(matches!(
        site.issue_csr("esp2", Role::Sensor, &[], "garbage", Validity::days(1)),
        Err(PkiError::Csr(_))
    ));
}

#[test]
fn revoke_renew_and_names() {
    let dir = tempfile::tempdir().unwrap();
    let site = site(dir.path());
    let first = site
        .issue("relay1", Role::Relay, &[], Validity::days(10))
        .unwrap();
    let renewed = site.renew("relay1", None, Validity::days(10)).unwrap();
    assert_ne!(first.serial, renewed.serial);
    let before = read(site.crl_path());
    site.revoke("relay1").unwrap();
    assert_ne!(read(site.crl_path()), before, "CRL rewritten");
    assert!(matches!(
        site.renew("relay1", None, Validity::days(1)),
        Err(PkiError::Revoked(_))
    ));
    assert!(matches!(
        site.issue("relay1", Role::Relay, &[], Validity::days(1)),
        Err(PkiError::AlreadyIssued(_))
    ));
    for bad in ["", "ca", "broker", "a/b", "../x", &"x".repeat(65)] {
        assert!(
            matches!(
                site.issue(bad, Role::Sensor, &[], Validity::days(1)),
                Err(PkiError::BadName(_))
            ),
            "{bad:?}"
        );
    }
    assert!(matches!(
        site.issue("s", Role::Sensor, &["a/+/b".into()], Validity::days(1)),
        Err(PkiError::BadTopic { .. })
    ));
    assert!(matches!(
        site.revoke("nobody"),
        Err(PkiError::UnknownIdentity(_))
    ));
}

fn pki(site: &Path, args: &[&str]) -> std::process::Output {
    let mut cmd = tmc_testkit::bin_command(env!("CARGO_BIN_EXE_tmc-pki"));
    cmd.arg("--site").arg(site).args(args);
    tmc_testkit::run_with_stdin(cmd, b"")
}

#[test]
fn the_command_refuses_an_open_key_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("site");
    success_stdout(&pki(&s, &["init", "--extra-name", "127.0.0.1"]));
    let out = success_stdout(&pki(
        &s,
        &[
            "issue", "--name", "sensor1", "--role", "sensor", "--topic", "/esp8266",
        ],
    ));
    assert!(out.contains("issued sensor1 (sensor)"), "{out}");
    let list = success_stdout(&pki(&s, &["list"]));
    assert!(
        list.contains("sensor1") && list.contains("/esp8266"),
        "{list}"
    );
    assert!(success_stdout(&pki(&s, &["check"])).starts_with("ok: 2 certificate(s) valid"));

    std::fs::set_permissions(
        s.join("ecc.ca.key.pem"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let err = failure_reason(&pki(
        &s,
        &["issue", "--name", "sensor2", "--role", "sensor"],
    ));
    assert!(
        err.starts_with("tmc-pki: ") && err.contains("ecc.ca.key.pem: mode 0644"),
        "{err}"
    );
    std::fs::set_permissions(
        s.join("ecc.broker.key.pem"),
        std::fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    let err = failure_reason(&pki(
        &s,
        &[
            "broker-config",
            "--out",
            dir.path().join("b").to_str().unwrap(),
        ],
    ));
    assert!(err.contains("ecc.broker.key.pem: mode 0644"), "{err}");
    let err = failure_reason(&pki(&dir.path().join("nowhere"), &["list"]));
    assert!(err.contains("not a TMC site directory"), "{err}");
}

#[test]
fn issue_refuses_topics_that_would_widen_the_acl() {
    let dir = tempfile::tempdir().unwrap();
    let site = site(dir.path());
    site.issue("sensorA", Role::Sensor, &[], Validity::days(10))
        .unwrap();
    for (topic, problem) in [
        ("+/#", "concrete topics"),
        ("#/#", "concrete topics"),
        ("#", "lone #"),
        ("a/+", "concrete topics"),
        ("a/b#", "concrete topics"),
        ("sensors/#", "its own sensors/<name>/ space"),
        ("sensors/sensorA/#", "its own sensors/<name>/ space"),
        ("sensors/sensorA/reading", "its own sensors/<name>/ space"),
        ("sensors", "its own sensors/<name>/ space"),
        ("$SYS/#", "belong to the broker"),
        ("$share/g/x", "belong to the broker"),
        (" sensors/sensorA/#", "white space"),
        ("a//b", "empty level"),
        ("a/", "empty level"),
        ("/", "empty level"),
        ("x\n203.0.113.7", "control characters"),
        ("", "is empty"),
    ] {
        let err = site
            .issue("sensorB", Role::Sensor, &[topic.into()], Validity::days(10))
            .unwrap_err();
        let line = err.to_string();
        assert!(
            matches!(err, PkiError::BadTopic { .. })
                && line.contains(problem)
                && !line.contains('\n'),
            "{topic:?}: {line}"
        );
    }
    assert!(
        !site.list().unwrap().iter().any(|i| i.name == "sensorB"),
        "nothing issued"
    );
    // The legitimate forms stay: the legacy topic, concrete topics, a trailing #, the own space.
    let topics: Vec<String> = [
        "/esp8266",
        "/#",
        "garden/alerts",
        "garden/#",
        "sensors/sensorB/extra",
    ]
    .map(String::from)
    .into();
    let b = site
        .issue("sensorB", Role::Sensor, &topics, Validity::days(10))
        .unwrap();
    assert_eq!(b.topics[0], "sensors/sensorB/#");
    assert_eq!(b.topics[1..], topics[..]);
}

#[test]
fn broker_config_refuses_an_inventory_whose_sensor_topic_widens_the_acl() {
    let dir = tempfile::tempdir().unwrap();
    let site = site(dir.path());
    site.issue(
        "sensor1",
        Role::Sensor,
        &["/esp8266".into()],
        Validity::days(10),
    )
    .unwrap();
    site.issue("relay1", Role::Relay, &[], Validity::days(10))
        .unwrap();
    let acl = tmc_pki::broker::render_acl(&site).unwrap();
    assert!(acl.contains("topic read /esp8266"), "{acl}");
    // pki.toml from before the checks, or edited by hand: relays would read everything.
    let inventory = site.dir().join("pki.toml");
    for hostile in ["#", "$SYS/#", "sensors/#", "+/#"] {
        let text = read(&inventory).replace("\"/esp8266\"", &format!("{hostile:?}"));
        std::fs::write(&inventory, text).unwrap();
        for err in [
            tmc_pki::broker::render_acl(&site).unwrap_err(),
            tmc_pki::broker::render_loopback_acl(&site).unwrap_err(),
        ] {
            let line = err.to_string();
            assert!(
                matches!(err, PkiError::BadTopic { .. })
                    && line.contains(&format!("topic {hostile:?} for \"sensor1\""))
                    && !line.contains('\n'),
                "{line}"
            );
        }
        let text = read(&inventory).replace(&format!("{hostile:?}"), "\"/esp8266\"");
        std::fs::write(&inventory, text).unwrap();
    }
}

#[test]
fn the_command_refuses_a_wildcard_topic_with_one_line() {
    let dir = tempfile::tempdir().unwrap();
    let s = dir.path().join("site");
    success_stdout(&pki(&s, &["init"]));
    let err = failure_reason(&pki(
        &s,
        &[
            "issue", "--name", "sensorB", "--role", "sensor", "--topic", "+/#",
        ],
    ));
    assert_eq!(
        err,
        "tmc-pki: topic \"+/#\" for \"sensorB\": a sensor publishes to concrete topics; \
         the only wildcard allowed is # as the whole last level (garden/#)"
    );
    let err = failure_reason(&pki(
        &s,
        &[
            "issue",
            "--name",
            "sensorB",
            "--role",
            "sensor",
            "--topic",
            "sensors/sensorA/#",
        ],
    ));
    assert_eq!(
        err,
        "tmc-pki: topic \"sensors/sensorA/#\" for \"sensorB\": inside sensors/ a sensor may only \
         publish to its own sensors/<name>/ space"
    );
    assert!(!s.join("ecc.sensorB.cert.pem").exists());
}
