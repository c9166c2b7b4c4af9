//! A concentrator from card to installed system: `write`, then `firstboot` into a fake image root.

mod common;

use std::fs;

use common::*;
use tmc_pki::Role as PkiRole;
use tmc_provision::{Action, Manifest, Outcome, Role};

#[test]
fn write_puts_the_bundle_and_manifest_on_the_card_and_issues_a_new_relay() {
    let f = Fixture::new();
    let report = f.write(Role::Concentrator, "relay-1");
    let issued = report.issued.as_ref().expect("a new name is issued");
    assert_eq!(
        (issued.name.as_str(), issued.role),
        ("relay-1", PkiRole::Relay)
    );
    assert_eq!(report.written.last().unwrap(), &f.boot.join("tmc.toml"));
    assert_eq!(
        boot_files(&f.boot),
        [
            "assignment.toml",
            "board.toml",
            "broker/ecc.broker.cert.pem",
            "broker/ecc.broker.key.pem",
            "broker/ecc.ca.cert.pem",
            "broker/ecc.ca.crl.pem",
            "broker/tmc.acl",
            "broker/tmc.conf",
            "ecc.ca.cert.pem",
            "ecc.relay-1.cert.pem",
            "ecc.relay-1.key.pem",
            "keys.toml",
            "relay.toml",
            "site.toml",
            "wifi-passphrase",
        ]
    );
    // Never the CA key.
    assert!(!fs::read_dir(f.boot.join("tmc"))
        .unwrap()
        .any(|e| e.unwrap().file_name() == "ecc.ca.key.pem"));

    let text = fs::read_to_string(f.boot.join("tmc.toml")).unwrap();
    assert!(text.starts_with("# TMC provisioning manifest"), "{text}");
    assert!(text.contains("removes the secret ones"), "{text}");
    let manifest = Manifest::from_file(&f.boot.join("tmc.toml")).unwrap();
    assert_eq!(
        (manifest.role, manifest.name.as_str()),
        (Role::Concentrator, "relay-1")
    );
    let secrets: Vec<&str> = manifest
        .files
        .iter()
        .filter(|(_, e)| e.secret)
        .map(|(n, _)| n.as_str())
        .collect();
    assert_eq!(
        secrets,
        [
            "broker/ecc.broker.key.pem",
            "ecc.relay-1.key.pem",
            "keys.toml",
            "wifi-passphrase"
        ]
    );
    // Secrets are 0600 where the file system keeps modes (this one does; FAT would not).
    assert_eq!(mode(&f.boot.join("tmc/keys.toml")), 0o600);
    assert_eq!(mode(&f.boot.join("tmc/relay.toml")), 0o644);
    // The relay is in the broker's ACL.
    let acl = fs::read_to_string(f.boot.join("tmc/broker/tmc.acl")).unwrap();
    assert!(
        acl.contains("user relay-1\ntopic read sensors/+/#"),
        "{acl}"
    );
    let conf = fs::read_to_string(f.boot.join("tmc/broker/tmc.conf")).unwrap();
    assert!(
        conf.contains("keyfile /etc/mosquitto/tmc/ecc.broker.key.pem"),
        "{conf}"
    );

    // Writing the same board again uses the issued identity, and clears what an interrupted write left.
    write_mode(&f.boot.join("tmc.new/half-written"), "x", 0o644);
    write_mode(&f.boot.join("tmc/stale.toml"), "x", 0o644);
    let again = f.write(Role::Concentrator, "relay-1");
    assert!(!f.boot.join("tmc/stale.toml").exists());
    assert!(again.issued.is_none());
    assert_eq!(again.previous.as_deref(), Some("relay-1"));
    assert!(!f.boot.join("tmc.new").exists() && !f.boot.join("tmc.old").exists());
}

#[test]
fn firstboot_installs_with_modes_owners_broker_ap_and_units_then_clears_the_secrets() {
    let f = Fixture::new();
    f.write(Role::Concentrator, "relay-1");
    let report = f.firstboot();
    assert_eq!(report.outcome, Outcome::Provisioned);
    assert_eq!(report.board, Some((Role::Concentrator, "relay-1".into())));

    // The relay's configuration comes last: its unit starts once it exists.
    let installed: Vec<String> = report
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Installed(p) => Some(p.display().to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(installed.len(), 19, "{installed:?}");
    assert_eq!(installed[16], "/etc/tmc/relay.toml", "{installed:?}");
    assert_eq!(
        installed[17..],
        ["/etc/mosquitto/mosquitto.conf", "/etc/hosts"],
        "{installed:?}"
    );

    let root_owned = is_root();
    let expect = |path: &str, want_mode: u32, want_owner: (u32, u32)| {
        let p = f.installed(path);
        assert_eq!(mode(&p), want_mode, "{path}");
        if root_owned {
            assert_eq!(owner(&p), want_owner, "{path}");
        }
    };
    let root_tmc = (0, TMC_GID);
    expect("/etc/tmc", 0o750, root_tmc);
    for public in [
        "/etc/tmc/relay.toml",
        "/etc/tmc/assignment.toml",
        "/etc/tmc/board.toml",
        "/etc/tmc/site.toml",
        "/etc/tmc/ecc.ca.cert.pem",
        "/etc/tmc/ecc.relay-1.cert.pem",
        "/etc/tmc/provisioned.toml",
    ] {
        expect(public, 0o640, root_tmc);
    }
    expect("/etc/tmc/keys.toml", 0o600, (TMC_UID, TMC_GID));
    expect("/etc/tmc/ecc.relay-1.key.pem", 0o600, (TMC_UID, TMC_GID));
    expect("/etc/tmc/wifi-passphrase", 0o600, (0, 0));
    expect(
        "/etc/mosquitto/tmc/ecc.broker.key.pem",
        0o600,
        (MOSQUITTO_UID, MOSQUITTO_GID),
    );
    for public in [
        "/etc/mosquitto/tmc/tmc.acl",
        "/etc/mosquitto/tmc/ecc.ca.cert.pem",
        "/etc/mosquitto/tmc/ecc.broker.cert.pem",
        "/etc/mosquitto/tmc/ecc.ca.crl.pem",
        "/etc/mosquitto/conf.d/tmc.conf",
    ] {
        expect(public, 0o644, (0, 0));
    }
    // Every installed file is byte for byte the one the manifest names.
    let manifest = Manifest::from_file(&f.boot.join("tmc.toml")).unwrap();
    let keys = fs::read(f.installed("/etc/tmc/keys.toml")).unwrap();
    assert_eq!(fs::read(f.site.envelope_keys_path()).unwrap(), keys);
    assert_eq!(manifest.files["keys.toml"].sha256.len(), 64);

    // mosquitto reads the drop-in: the commented-out line does not count, one active line is appended.
    let conf = fs::read_to_string(f.installed("/etc/mosquitto/mosquitto.conf")).unwrap();
    assert!(
        conf.starts_with("# Place your local configuration"),
        "{conf}"
    );
    assert_eq!(
        conf.lines()
            .filter(|l| *l == "include_dir /etc/mosquitto/conf.d")
            .count(),
        1,
        "{conf}"
    );

    // The relay on the board reaches the broker by the name its certificate carries.
    let hosts = fs::read_to_string(f.installed("/etc/hosts")).unwrap();
    assert_eq!(
        hosts
            .lines()
            .filter(|l| l.starts_with("127.0.0.1\tmqtt.com\t"))
            .count(),
        1,
        "{hosts}"
    );

    // The access point, from the installed site file and its passphrase file.
    let hostapd = fs::read_to_string(f.installed("/etc/hostapd/hostapd.conf")).unwrap();
    assert!(hostapd.contains("ssid=test-sensors"), "{hostapd}");
    assert!(
        hostapd.contains(&format!("wpa_passphrase={PASSPHRASE}")),
        "{hostapd}"
    );
    assert!(f.installed("/etc/dnsmasq.d/tmc-ap.conf").is_file());
    assert!(f
        .installed("/etc/systemd/network/10-tmc-ap.network")
        .is_file());

    for unit in [
        "tmc-relay.service",
        "mosquitto.service",
        "hostapd.service",
        "dnsmasq.service",
    ] {
        assert!(f.enabled(unit), "{unit} enabled");
    }
    assert!(!f.enabled("tmc-receiver.service"));
    assert!(!f.enabled("tmc-web.service"));

    // Secrets left the card; the rest and the manifest stay.
    assert_eq!(
        boot_files(&f.boot),
        [
            "assignment.toml",
            "board.toml",
            "broker/ecc.broker.cert.pem",
            "broker/ecc.ca.cert.pem",
            "broker/ecc.ca.crl.pem",
            "broker/tmc.acl",
            "broker/tmc.conf",
            "ecc.ca.cert.pem",
            "ecc.relay-1.cert.pem",
            "relay.toml",
            "site.toml",
        ]
    );
    assert!(f.boot.join("tmc.toml").is_file());
    let removed: Vec<_> = report
        .actions
        .iter()
        .filter(|a| matches!(a, Action::RemovedFromBoot(_)))
        .collect();
    assert_eq!(removed.len(), 4, "{removed:?}");

    // The relay's configuration as the relay loads it, and every file it names installed.
    let relay = tmc_config::relay::RelayConfig::load(&f.installed("/etc/tmc/relay.toml")).unwrap();
    assert_eq!(
        (relay.mqtt.broker.host.as_str(), relay.mqtt.broker.port),
        ("mqtt.com", 8883)
    );
    assert_eq!((relay.radio.address, relay.link.gateway), (Some(10), 1));
    assert_eq!(relay.metrics_address(), None, "no metrics unless asked for");
    for file in [
        relay.mqtt.broker.ca.unwrap(),
        relay.mqtt.broker.cert.unwrap(),
        relay.mqtt.broker.key.unwrap(),
        relay.radio.board.unwrap(),
        relay.envelope.keys.clone(),
    ] {
        let installed = f.root.join(file.strip_prefix("/").unwrap());
        assert!(installed.is_file(), "{} is installed", file.display());
    }
    tmc_board::BoardPreset::from_file(f.installed("/etc/tmc/board.toml")).unwrap();
    tmc_envelope::KeyRing::load(&f.installed("/etc/tmc/keys.toml")).unwrap();

    // No line of output holds a secret.
    for action in &report.actions {
        let line = action.to_string();
        assert!(
            !line.contains(PASSPHRASE) && !line.contains("PRIVATE KEY"),
            "{line}"
        );
    }
}

#[test]
fn a_second_run_is_already_provisioned_and_changes_nothing() {
    let f = Fixture::new();
    f.write(Role::Concentrator, "relay-1");
    f.firstboot();
    let (root_before, boot_before) = (snapshot(&f.root), snapshot(&f.boot));
    let mut services = Recorder::default();
    let report = f.firstboot_live(&mut services);
    assert_eq!(report.outcome, Outcome::AlreadyProvisioned);
    assert!(
        report.actions.iter().all(|a| !a.is_change()),
        "{:?}",
        report.actions
    );
    assert!(
        services.0.is_empty(),
        "no service touched: {:?}",
        services.0
    );
    // Same content, modes, inodes and times: nothing was even rewritten.
    assert_eq!(snapshot(&f.root), root_before);
    assert_eq!(snapshot(&f.boot), boot_before);
}

#[test]
fn changes_made_on_the_pi_are_kept_until_the_card_is_written_again() {
    let f = Fixture::new();
    f.write(Role::Concentrator, "relay-1");
    f.firstboot();
    // The key ring rotated on the Pi, the relay configuration edited there.
    let keys = f.installed("/etc/tmc/keys.toml");
    let mut ring = tmc_envelope::KeyRing::load(&keys).unwrap();
    ring.rotate().unwrap();
    ring.save(&keys, tmc_envelope::Overwrite::Replace).unwrap();
    let relay = f.installed("/etc/tmc/relay.toml");
    let edited = fs::read_to_string(&relay)
        .unwrap()
        .replace("gateway = 1", "gateway = 2");
    fs::write(&relay, &edited).unwrap();
    let rotated = fs::read(&keys).unwrap();

    // Every boot runs firstboot again: it keeps both.
    assert_eq!(f.firstboot().outcome, Outcome::AlreadyProvisioned);
    assert_eq!(fs::read(&keys).unwrap(), rotated);
    assert_eq!(fs::read_to_string(&relay).unwrap(), edited);

    // A file edited on the card is still refused.
    let on_card = f.boot.join("tmc/relay.toml");
    let card_text = fs::read_to_string(&on_card).unwrap();
    fs::write(&on_card, "edited on the card").unwrap();
    let err = tmc_provision::firstboot(&f.boot, &f.root, None).unwrap_err();
    assert!(
        err.to_string().contains("does not match the manifest"),
        "{err}"
    );
    fs::write(&on_card, card_text).unwrap();

    // Written again (same content, secrets back on the card): installed again.
    f.write(Role::Concentrator, "relay-1");
    let report = f.firstboot();
    assert_eq!(report.outcome, Outcome::Provisioned);
    assert_eq!(
        fs::read(&keys).unwrap(),
        fs::read(f.site.envelope_keys_path()).unwrap()
    );
    assert!(fs::read_to_string(&relay).unwrap().contains("gateway = 1"));
}

#[test]
fn on_a_live_system_systemd_is_reloaded_and_units_restarted_without_blocking() {
    let f = Fixture::new();
    f.write(Role::Concentrator, "relay-1");
    let mut services = Recorder::default();
    f.firstboot_live(&mut services);
    assert_eq!(
        services.0,
        [
            // tmc-ap's own sequence, made non-blocking.
            "daemon-reload",
            "enable systemd-networkd.service",
            "restart --no-block systemd-networkd.service",
            "unmask hostapd.service",
            "enable hostapd.service",
            "restart --no-block hostapd.service",
            "enable dnsmasq.service",
            "restart --no-block dnsmasq.service",
            // Then the role's units, hostapd and dnsmasq already restarted above.
            "daemon-reload",
            "restart --no-block tmc-relay.service mosquitto.service",
        ]
    );
}

#[test]
fn an_interrupted_run_is_completed_by_the_next() {
    let f = Fixture::new();
    f.write(Role::Concentrator, "relay-1");
    // Keep the card's secrets as they were before the first run.
    let card = snapshot(&f.boot.join("tmc"));
    let secrets: Vec<(std::path::PathBuf, Vec<u8>)> = [
        "keys.toml",
        "ecc.relay-1.key.pem",
        "wifi-passphrase",
        "broker/ecc.broker.key.pem",
    ]
    .iter()
    .map(|n| {
        (
            f.boot.join("tmc").join(n),
            fs::read(f.boot.join("tmc").join(n)).unwrap(),
        )
    })
    .collect();
    assert_eq!(card.len(), 16);
    f.firstboot();

    // A crash after part of the install, before the card was cleaned: the secrets are back on the card,
    // one installed key is missing, another has the wrong mode, and there is no record.
    for (path, bytes) in &secrets {
        fs::write(path, bytes).unwrap();
    }
    fs::remove_file(f.installed("/etc/tmc/keys.toml")).unwrap();
    fs::set_permissions(
        f.installed("/etc/tmc/ecc.relay-1.key.pem"),
        std::os::unix::fs::PermissionsExt::from_mode(0o644),
    )
    .unwrap();
    fs::remove_file(f.installed("/etc/tmc/provisioned.toml")).unwrap();

    let report = f.firstboot();
    assert_eq!(report.outcome, Outcome::Provisioned);
    let installed: Vec<String> = report
        .actions
        .iter()
        .filter_map(|a| match a {
            Action::Installed(p) => Some(p.display().to_string()),
            _ => None,
        })
        .collect();
    assert_eq!(
        installed,
        ["/etc/tmc/ecc.relay-1.key.pem", "/etc/tmc/keys.toml"]
    );
    assert_eq!(mode(&f.installed("/etc/tmc/ecc.relay-1.key.pem")), 0o600);
    for (path, _) in &secrets {
        assert!(!path.exists(), "{} removed again", path.display());
    }
    assert!(f.installed("/etc/tmc/provisioned.toml").is_file());

    // A crash after the card was cleaned but before the record: the next run only records.
    fs::remove_file(f.installed("/etc/tmc/provisioned.toml")).unwrap();
    let report = f.firstboot();
    let changes: Vec<String> = report
        .actions
        .iter()
        .filter(|a| a.is_change())
        .map(ToString::to_string)
        .collect();
    assert_eq!(changes.len(), 1, "{changes:?}");
    assert!(changes[0].starts_with("recorded"), "{changes:?}");
    assert_eq!(f.firstboot().outcome, Outcome::AlreadyProvisioned);
}

#[test]
fn an_inline_passphrase_makes_the_site_file_a_root_only_secret() {
    let f = Fixture::new();
    let site_file = f.dir.join("inline-site.toml");
    write_mode(
        &site_file,
        &format!("[ap]\nssid = \"inline\"\npassphrase = \"{PASSPHRASE}\"\n"),
        0o600,
    );
    let mut options = f.options(Role::Concentrator, "relay-2");
    options.ap = Some(site_file);
    options.address = Some(12);
    options.gateway = Some(3);
    tmc_provision::write(&options).unwrap();
    let manifest = Manifest::from_file(&f.boot.join("tmc.toml")).unwrap();
    assert!(manifest.files["site.toml"].secret);
    assert!(!manifest.files.contains_key("wifi-passphrase"));
    f.firstboot();
    let site = f.installed("/etc/tmc/site.toml");
    assert_eq!(mode(&site), 0o600);
    if is_root() {
        assert_eq!(owner(&site), (0, 0));
    }
    assert!(!f.boot.join("tmc/site.toml").exists());
    let relay = tmc_config::relay::RelayConfig::load(&f.installed("/etc/tmc/relay.toml")).unwrap();
    assert_eq!((relay.radio.address, relay.link.gateway), (Some(12), 3));
}

#[test]
fn a_passphrase_file_elsewhere_is_renamed_and_the_site_file_points_at_it() {
    let f = Fixture::new();
    let elsewhere = f.dir.join("secrets");
    write_mode(
        &elsewhere.join("wifi.txt"),
        &format!("{PASSPHRASE}\n"),
        0o600,
    );
    let site_file = f.dir.join("conf/site.toml");
    write_mode(
        &site_file,
        "# comment\n[ap]\nssid = \"moved\"\npassphrase_file = \"../secrets/wifi.txt\"\n",
        0o644,
    );
    let mut options = f.options(Role::Concentrator, "relay-3");
    options.ap = Some(site_file);
    tmc_provision::write(&options).unwrap();
    f.firstboot();
    let installed = fs::read_to_string(f.installed("/etc/tmc/site.toml")).unwrap();
    assert!(
        installed.contains("passphrase_file = \"wifi-passphrase\""),
        "{installed}"
    );
    let config = tmc_config::SiteConfig::from_file(f.installed("/etc/tmc/site.toml")).unwrap();
    assert_eq!(config.ap.ssid, "moved");
    assert!(!config.ap.key_is_default);
    let hostapd = fs::read_to_string(f.installed("/etc/hostapd/hostapd.conf")).unwrap();
    assert!(
        hostapd.contains(&format!("wpa_passphrase={PASSPHRASE}")),
        "{hostapd}"
    );
}

#[test]
fn a_custom_relay_config_is_used_as_given() {
    let f = Fixture::new();
    let config = f.dir.join("custom/relay.toml");
    let text = "# custom\nstate_dir = \"/var/lib/tmc\"\n[mqtt]\nhost = \"mqtt.com\"\nca = \"ecc.ca.cert.pem\"\n\
                cert = \"/etc/tmc/ecc.relay-9.cert.pem\"\nkey = \"ecc.relay-9.key.pem\"\n\
                [radio]\nboard = \"board.toml\"\naddress = 20\n[envelope]\nkeys = \"/etc/tmc/keys.toml\"\nmax_batch = 4\n";
    write_mode(&config, text, 0o644);
    let mut options = f.options(Role::Concentrator, "relay-9");
    options.config = Some(config);
    tmc_provision::write(&options).unwrap();
    assert_eq!(
        fs::read_to_string(f.boot.join("tmc/relay.toml")).unwrap(),
        text
    );
    f.firstboot();
    let relay = tmc_config::relay::RelayConfig::load(&f.installed("/etc/tmc/relay.toml")).unwrap();
    // Relative paths resolve beside the installed file, where the card put those files.
    assert_eq!(
        relay.mqtt.broker.key.as_deref(),
        Some(f.installed("/etc/tmc/ecc.relay-9.key.pem").as_path())
    );
    assert!(relay.mqtt.broker.key.unwrap().is_file());
    assert_eq!(relay.envelope.max_batch, 4);
}

#[test]
fn metrics_asked_for_are_in_the_installed_relay_config() {
    let f = Fixture::new();
    let mut options = f.options(Role::Concentrator, "relay-1");
    options.metrics = Some(tmc_config::listen::ListenSection::default());
    let report = tmc_provision::write(&options).unwrap();
    assert!(
        report.warnings.iter().all(|w| !w.contains("--metrics")),
        "{:?}",
        report.warnings
    );
    f.firstboot();
    let relay = tmc_config::relay::RelayConfig::load(&f.installed("/etc/tmc/relay.toml")).unwrap();
    assert_eq!(
        relay.metrics_address(),
        Some("127.0.0.1:9101".parse().unwrap())
    );
}
