//! A gateway, a custom receiver configuration with upstream TLS files, and a board changing role.

mod common;

use std::fs;

use common::*;
use tmc_config::listen::ListenSection;
use tmc_provision::{Manifest, Outcome, Role};

const CONCENTRATOR_ONLY: &[&str] = &[
    "tmc-relay.service",
    "mosquitto.service",
    "hostapd.service",
    "dnsmasq.service",
];

#[test]
fn gateway_gets_receiver_board_and_keys_and_only_the_receiver_runs() {
    let f = Fixture::new();
    let mut options = f.options(Role::Gateway, "gw-1");
    options.peers = Some(vec![10, 11]);
    let report = tmc_provision::write(&options).unwrap();
    assert!(report.issued.is_none(), "a gateway has no certificate");
    assert_eq!(
        boot_files(&f.boot),
        ["board.toml", "keys.toml", "receiver.toml"]
    );
    // The site has not changed: no identity was issued.
    assert!(f.site.list().unwrap().is_empty());

    // A file someone added to the card is not installed, and said so.
    write_mode(&f.boot.join("tmc/notes.txt"), "hello", 0o644);
    let report = f.firstboot();
    assert_eq!(report.outcome, Outcome::Provisioned);
    assert_eq!(
        report.warnings,
        [format!(
            "{}: not in the manifest, not installed",
            f.boot.join("tmc/notes.txt").display()
        )]
    );
    assert!(!f.installed("/etc/tmc/notes.txt").exists());
    fs::remove_file(f.boot.join("tmc/notes.txt")).unwrap();
    assert_eq!(mode(&f.installed("/etc/tmc/receiver.toml")), 0o640);
    assert_eq!(mode(&f.installed("/etc/tmc/board.toml")), 0o640);
    assert_eq!(mode(&f.installed("/etc/tmc/keys.toml")), 0o600);
    if is_root() {
        assert_eq!(
            owner(&f.installed("/etc/tmc/keys.toml")),
            (TMC_UID, TMC_GID)
        );
        assert_eq!(owner(&f.installed("/etc/tmc/receiver.toml")), (0, TMC_GID));
    }
    let config =
        tmc_config::receiver::Config::load(&f.installed("/etc/tmc/receiver.toml")).unwrap();
    assert_eq!(config.peers, [10, 11]);
    assert_eq!(config.radio.address, Some(1));
    assert!(config.stdout);
    // Off unless asked for: no metrics listener, and tmc-web (enabled below) exits at once.
    assert_eq!((config.metrics, config.web), (None, None));
    assert!(f
        .root
        .join(config.keys.strip_prefix("/").unwrap())
        .is_file());

    assert!(f.enabled("tmc-receiver.service"));
    assert!(f.enabled("tmc-web.service"));
    for unit in CONCENTRATOR_ONLY {
        assert!(!f.enabled(unit), "{unit} not enabled");
    }
    // No broker, no access point on a gateway.
    assert!(!f.installed("/etc/mosquitto/conf.d/tmc.conf").exists());
    assert!(!f.installed("/etc/hostapd/hostapd.conf").exists());
    assert_eq!(boot_files(&f.boot), ["board.toml", "receiver.toml"]);
    assert_eq!(f.firstboot().outcome, Outcome::AlreadyProvisioned);
}

#[test]
fn web_and_metrics_asked_for_are_in_the_installed_receiver_config() {
    let f = Fixture::new();
    let mut options = f.options(Role::Gateway, "gw-1");
    options.metrics = Some(ListenSection::default());
    options.web = Some(ListenSection::default());
    let report = tmc_provision::write(&options).unwrap();
    assert!(report.warnings.is_empty(), "{:?}", report.warnings);
    f.firstboot();
    let config =
        tmc_config::receiver::Config::load(&f.installed("/etc/tmc/receiver.toml")).unwrap();
    assert_eq!(config.metrics, Some("127.0.0.1:9102".parse().unwrap()));
    assert_eq!(config.web, Some("127.0.0.1:8080".parse().unwrap()));
    assert!(f.enabled("tmc-web.service"));

    // Another address is written as given, with a warning: neither listener has authentication.
    let web = "0.0.0.0:8081".parse().unwrap();
    options.metrics = None;
    options.web = Some(ListenSection { listen: Some(web) });
    let report = tmc_provision::write(&options).unwrap();
    assert_eq!(
        report.warnings,
        ["--web 0.0.0.0:8081: served without authentication beyond the board's loopback interface"]
    );
    f.firstboot();
    let config =
        tmc_config::receiver::Config::load(&f.installed("/etc/tmc/receiver.toml")).unwrap();
    assert_eq!((config.metrics, config.web), (None, Some(web)));
}

#[test]
fn a_custom_receiver_config_brings_its_upstream_tls_files() {
    let f = Fixture::new();
    let dir = f.dir.join("gw");
    write_mode(&dir.join("upstream-ca.pem"), "CA\n", 0o644);
    write_mode(&dir.join("upstream.cert.pem"), "CERT\n", 0o644);
    write_mode(&dir.join("upstream.key.pem"), "KEY\n", 0o600);
    let text = "[radio]\nboard = \"/etc/tmc/board.toml\"\n[link]\npeers = [10]\n[envelope]\nkeys = \"keys.toml\"\n\
                [upstream]\nhost = \"broker.example.org\"\nca = \"upstream-ca.pem\"\ncert = \"upstream.cert.pem\"\nkey = \"upstream.key.pem\"\n";
    write_mode(&dir.join("receiver.toml"), text, 0o644);
    let mut options = f.options(Role::Gateway, "gw-2");
    options.config = Some(dir.join("receiver.toml"));
    tmc_provision::write(&options).unwrap();
    let manifest = Manifest::from_file(&f.boot.join("tmc.toml")).unwrap();
    assert!(manifest.files["upstream.key.pem"].secret);
    assert!(!manifest.files["upstream-ca.pem"].secret);

    f.firstboot();
    assert_eq!(mode(&f.installed("/etc/tmc/upstream.key.pem")), 0o600);
    assert_eq!(mode(&f.installed("/etc/tmc/upstream-ca.pem")), 0o640);
    let config =
        tmc_config::receiver::Config::load(&f.installed("/etc/tmc/receiver.toml")).unwrap();
    let upstream = config.upstream.unwrap();
    for file in [
        upstream.broker.ca,
        upstream.broker.cert,
        upstream.broker.key,
    ] {
        assert!(file.unwrap().is_file());
    }
    assert!(!f.boot.join("tmc/upstream.key.pem").exists());

    // An upstream key others can read is refused like any other secret.
    fs::set_permissions(
        dir.join("upstream.key.pem"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    let err = tmc_provision::write(&options).unwrap_err().to_string();
    assert!(err.contains("upstream.key.pem: mode 0644"), "{err}");
}

#[test]
fn a_gateway_reprovisioned_as_concentrator_runs_only_the_concentrator_units() {
    let f = Fixture::new();
    f.write(Role::Gateway, "board-7");
    f.firstboot();
    assert!(f.enabled("tmc-receiver.service"));

    // The same card, written again for the other role (same name).
    f.write(Role::Concentrator, "board-7");
    let report = f.firstboot();
    assert_eq!(report.outcome, Outcome::Provisioned);
    assert!(!f.enabled("tmc-receiver.service"));
    assert!(!f.enabled("tmc-web.service"));
    for unit in CONCENTRATOR_ONLY {
        assert!(f.enabled(unit), "{unit} enabled");
    }
    // The receiver's configuration is gone (its unit would start wherever it exists).
    assert!(!f.installed("/etc/tmc/receiver.toml").exists());
    assert!(f.installed("/etc/tmc/relay.toml").is_file());
    let lines: Vec<String> = report.actions.iter().map(ToString::to_string).collect();
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("disabled") && l.ends_with("tmc-receiver.service")),
        "{lines:?}"
    );
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with("removed") && l.ends_with("/etc/tmc/receiver.toml")),
        "{lines:?}"
    );

    // And back to a gateway: the access point goes with the concentrator units.
    f.write(Role::Gateway, "board-7");
    let mut services = Recorder::default();
    f.firstboot_live(&mut services);
    assert!(f.enabled("tmc-receiver.service"));
    for unit in CONCENTRATOR_ONLY {
        assert!(!f.enabled(unit), "{unit} disabled");
    }
    assert!(!f.installed("/etc/hostapd/hostapd.conf").exists());
    assert!(!f
        .installed("/etc/systemd/network/10-tmc-ap.network")
        .exists());
    assert!(!f.installed("/etc/tmc/relay.toml").exists());
    assert_eq!(
        services.0,
        [
            // tmc-ap, having removed its unit drop-ins.
            "daemon-reload",
            // After the links changed.
            "daemon-reload",
            "stop --no-block tmc-relay.service mosquitto.service hostapd.service dnsmasq.service",
            "restart --no-block tmc-receiver.service tmc-web.service",
        ]
    );
}
