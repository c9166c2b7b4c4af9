//! What is refused, with one clear line, and that a refusal changes nothing: the card stays as it was
//! (`write`), nothing is installed (`firstboot`).

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;

use common::*;
use time::{Duration, OffsetDateTime};
use tmc_config::listen::ListenSection;
use tmc_pki::{Role as PkiRole, Validity};
use tmc_provision::{FirstbootError, Outcome, Role, WriteOptions};

/// Runs `write` with `options`, expects a refusal containing `want`, and checks that the card did not
/// change. Returns the message.
fn refused(f: &Fixture, options: &WriteOptions, want: &str) -> String {
    let before = snapshot(&f.boot);
    let err = tmc_provision::write(options).unwrap_err().to_string();
    assert!(err.contains(want), "want {want:?} in: {err}");
    assert!(!err.contains('\n'), "one line: {err}");
    assert_eq!(
        snapshot(&f.boot),
        before,
        "the card is unchanged after: {err}"
    );
    err
}

fn issued(f: &Fixture, name: &str) -> bool {
    f.site.list().unwrap().iter().any(|i| i.name == name)
}

#[test]
fn a_key_ring_others_can_read_is_refused() {
    let f = Fixture::new();
    let keys = f.site.envelope_keys_path();
    fs::set_permissions(&keys, fs::Permissions::from_mode(0o640)).unwrap();
    let err = refused(&f, &f.options(Role::Gateway, "gw"), "mode 0640");
    assert!(err.starts_with(&keys.display().to_string()), "{err}");
    refused(&f, &f.options(Role::Concentrator, "relay-1"), "chmod 600");
    assert!(!issued(&f, "relay-1"));
}

#[test]
fn a_name_issued_for_another_role_revoked_or_expired_is_refused() {
    let f = Fixture::new();
    f.site
        .issue("sensor-1", PkiRole::Sensor, &[], Validity::days(10))
        .unwrap();
    refused(
        &f,
        &f.options(Role::Concentrator, "sensor-1"),
        "--name sensor-1: issued as a sensor",
    );

    f.site
        .issue("relay-old", PkiRole::Relay, &[], Validity::days(10))
        .unwrap();
    f.site.revoke("relay-old").unwrap();
    refused(&f, &f.options(Role::Concentrator, "relay-old"), "revoked");

    let now = OffsetDateTime::now_utc();
    let past = Validity {
        not_before: now - Duration::days(30),
        not_after: now - Duration::days(1),
    };
    f.site
        .issue("relay-expired", PkiRole::Relay, &[], past)
        .unwrap();
    let err = refused(
        &f,
        &f.options(Role::Concentrator, "relay-expired"),
        "expired on",
    );
    assert!(err.contains("ecc.relay-expired.cert.pem"), "{err}");

    refused(&f, &f.options(Role::Concentrator, "ca"), "is not allowed");
}

#[test]
fn a_missing_or_invalid_site_file_is_refused_before_anything_is_issued() {
    let f = Fixture::new();
    fs::remove_file(f.site.dir().join("site.toml")).unwrap();
    let err = refused(
        &f,
        &f.options(Role::Concentrator, "relay-1"),
        "no site file: copy board-config/site.toml there and set [ap] ssid and passphrase",
    );
    assert!(err.contains("site.toml"), "{err}");

    write_mode(
        &f.site.dir().join("site.toml"),
        "[ap]\npassphrase_file = \"wifi-passphrase\"\n",
        0o644,
    );
    fs::set_permissions(
        f.site.dir().join("wifi-passphrase"),
        fs::Permissions::from_mode(0o644),
    )
    .unwrap();
    refused(
        &f,
        &f.options(Role::Concentrator, "relay-1"),
        "ap.passphrase_file",
    );
    write_mode(&f.site.dir().join("site.toml"), "[ap]\nchanel = 6\n", 0o644);
    refused(
        &f,
        &f.options(Role::Concentrator, "relay-1"),
        "unknown field `chanel`",
    );
    assert!(!issued(&f, "relay-1"), "nothing issued for a refused card");
}

#[test]
fn an_invalid_board_file_is_refused() {
    let f = Fixture::new();
    let text = fs::read_to_string(dragino())
        .unwrap()
        .replace("frequency_mhz = 868.0", "frequency_mhz = 915.0");
    let board = f.dir.join("bad-board.toml");
    write_mode(&board, &text, 0o644);
    for role in [Role::Concentrator, Role::Gateway] {
        let mut options = f.options(role, "b-1");
        options.board = board.clone();
        let err = refused(&f, &options, "radio.frequency_mhz");
        assert!(err.starts_with(&board.display().to_string()), "{err}");
    }
    let mut options = f.options(Role::Gateway, "b-1");
    options.board = f.dir.join("absent.toml");
    refused(&f, &options, "absent.toml");
    assert!(!issued(&f, "b-1"));
}

#[test]
fn an_invalid_custom_config_is_refused() {
    let f = Fixture::new();
    let config = f.dir.join("relay.toml");
    write_mode(
        &config,
        "[mqtt]\nhost = \"mqtt.com\"\n[radio]\nboard = \"/etc/tmc/board.toml\"\n[envelope]\nkeys = \"/etc/tmc/keys.toml\"\nkeyz = 1\n",
        0o644,
    );
    let mut options = f.options(Role::Concentrator, "relay-1");
    options.config = Some(config.clone());
    refused(&f, &options, "unknown field `keyz`");

    // Valid for the relay, but naming a file the card does not carry.
    write_mode(
        &config,
        "[mqtt]\nhost = \"mqtt.com\"\nkey = \"/etc/tmc/other.key.pem\"\n[radio]\nboard = \"/etc/tmc/board.toml\"\n[envelope]\nkeys = \"/etc/tmc/keys.toml\"\n",
        0o644,
    );
    refused(
        &f,
        &options,
        "mqtt.key = \"/etc/tmc/other.key.pem\": the card installs no such file in /etc/tmc",
    );
    assert!(!issued(&f, "relay-1"));

    let receiver = f.dir.join("receiver.toml");
    write_mode(
        &receiver,
        "[radio]\nboard = \"/etc/tmc/board.toml\"\n[link]\npeers = []\n[envelope]\nkeys = \"keys.toml\"\n[output]\nstdout = true\n",
        0o644,
    );
    let mut options = f.options(Role::Gateway, "gw");
    options.config = Some(receiver);
    refused(&f, &options, "[link] peers is empty");

    let mut options = f.options(Role::Gateway, "gw");
    options.config = Some(config);
    options.peers = Some(vec![10]);
    refused(&f, &options, "--peers: set it in the --config file");

    // The listeners too: a custom file is used as it is.
    let mut options = f.options(Role::Gateway, "gw");
    options.config = Some(f.dir.join("receiver.toml"));
    options.web = Some(ListenSection::default());
    refused(&f, &options, "--web: set it in the --config file");
    options.web = None;
    options.metrics = Some(ListenSection::default());
    refused(&f, &options, "--metrics: set it in the --config file");
}

#[test]
fn options_of_the_other_role_or_impossible_addresses_are_refused() {
    let f = Fixture::new();
    let mut options = f.options(Role::Concentrator, "relay-1");
    options.peers = Some(vec![10]);
    refused(&f, &options, "--peers: only for a gateway");
    let mut options = f.options(Role::Concentrator, "relay-1");
    options.address = Some(1);
    refused(&f, &options, "--address: 1 is also the gateway's address");
    let mut options = f.options(Role::Gateway, "gw");
    options.peers = Some(vec![10, 255]);
    refused(&f, &options, "255 is the broadcast address");
    let mut options = f.options(Role::Gateway, "gw");
    options.gateway = Some(2);
    refused(&f, &options, "--gateway: only for a concentrator");
    // The page shows what a gateway's receiver stored: a concentrator has none.
    let mut options = f.options(Role::Concentrator, "relay-1");
    options.web = Some(ListenSection::default());
    refused(&f, &options, "--web: only for a gateway");
}

#[test]
fn a_card_provisioned_for_another_name_needs_force() {
    let f = Fixture::new();
    f.write(Role::Gateway, "gw-a");
    let err = refused(
        &f,
        &f.options(Role::Gateway, "gw-b"),
        "provisioned for \"gw-a\"",
    );
    assert!(err.contains("--force"), "{err}");

    // An unreadable manifest is not overwritten silently either.
    fs::write(f.boot.join("tmc.toml"), "format = \"x\"\n").unwrap();
    refused(&f, &f.options(Role::Gateway, "gw-b"), "pass --force");

    let mut options = f.options(Role::Gateway, "gw-b");
    options.force = true;
    tmc_provision::write(&options).unwrap();
    let manifest = tmc_provision::Manifest::from_file(&f.boot.join("tmc.toml")).unwrap();
    assert_eq!(manifest.name, "gw-b");

    let mut options = f.options(Role::Gateway, "gw-c");
    options.boot = f.dir.join("not-mounted");
    let err = tmc_provision::write(&options).unwrap_err().to_string();
    assert!(
        err.contains("--boot must be the mounted boot partition"),
        "{err}"
    );
}

/// Runs `firstboot`, expects a refusal containing `want`, and checks that nothing was installed.
fn firstboot_refused(f: &Fixture, want: &str) -> FirstbootError {
    let (root, boot) = (snapshot(&f.root), snapshot(&f.boot));
    let err = tmc_provision::firstboot(&f.boot, &f.root, None).unwrap_err();
    let text = err.to_string();
    assert!(text.contains(want), "want {want:?} in: {text}");
    assert!(!text.contains('\n'), "one line: {text}");
    assert_eq!(snapshot(&f.root), root, "nothing installed after: {text}");
    assert_eq!(
        snapshot(&f.boot),
        boot,
        "the card is unchanged after: {text}"
    );
    err
}

#[test]
fn a_file_changed_on_the_card_is_refused_by_name() {
    let f = Fixture::new();
    f.write(Role::Concentrator, "relay-1");
    let relay = f.boot.join("tmc/relay.toml");
    let text = fs::read_to_string(&relay).unwrap();
    fs::write(&relay, text.replace("gateway = 1", "gateway = 2")).unwrap();
    let err = firstboot_refused(&f, "does not match the manifest");
    assert!(
        err.to_string().starts_with(&relay.display().to_string()),
        "{err}"
    );
    assert!(matches!(err, FirstbootError::Tampered { .. }));
}

#[test]
fn a_secret_neither_on_the_card_nor_installed_is_refused() {
    let f = Fixture::new();
    f.write(Role::Gateway, "gw");
    fs::remove_file(f.boot.join("tmc/keys.toml")).unwrap();
    let err = firstboot_refused(&f, "missing from the card");
    assert!(err.to_string().contains("keys.toml"), "{err}");

    // Installed, but not the file the manifest names.
    write_mode(&f.installed("/etc/tmc/keys.toml"), "other", 0o600);
    firstboot_refused(&f, "is not the file the manifest names");
}

#[test]
fn a_manifest_with_an_unknown_field_or_an_escaping_path_is_refused() {
    let f = Fixture::new();
    f.write(Role::Gateway, "gw");
    let path = f.boot.join("tmc.toml");
    let good = fs::read_to_string(&path).unwrap();
    let sum = "0".repeat(64);

    fs::write(
        &path,
        good.replace("format = 1", "format = 1\nextra = true"),
    )
    .unwrap();
    firstboot_refused(&f, "unknown field `extra`");

    fs::write(
        &path,
        good.replace(
            "[files.\"board.toml\"]",
            "[files.\"board.toml\"]\nmode = 420",
        ),
    )
    .unwrap();
    firstboot_refused(&f, "unknown field `mode`");

    for (name, want) in [
        ("../x", "leaves the bundle"),
        ("/etc/shadow", "an absolute path"),
        ("broker/../../x", "leaves the bundle"),
        ("systemd/x.service", "systemd/ is not a bundle directory"),
    ] {
        fs::write(
            &path,
            format!("{good}\n[files.\"{name}\"]\nsha256 = \"{sum}\"\nsecret = false\n"),
        )
        .unwrap();
        let err = firstboot_refused(&f, want);
        assert!(
            err.to_string().contains(&format!("files.{name:?}")),
            "{err}"
        );
    }

    // A key the manifest calls public would be installed readable: refused.
    fs::write(
        &path,
        good.replace(
            &format!(
                "[files.\"keys.toml\"]\nsha256 = \"{}\"\nsecret = true",
                sha_of(&good, "keys.toml")
            ),
            &format!(
                "[files.\"keys.toml\"]\nsha256 = \"{}\"\nsecret = false",
                sha_of(&good, "keys.toml")
            ),
        ),
    )
    .unwrap();
    firstboot_refused(&f, "must be marked secret");
}

fn sha_of(manifest: &str, name: &str) -> String {
    let m = tmc_provision::Manifest::parse(manifest, std::path::Path::new("tmc.toml")).unwrap();
    m.files[name].sha256.clone()
}

#[test]
fn a_missing_account_or_unit_file_is_refused_by_name() {
    let f = Fixture::new();
    f.write(Role::Concentrator, "relay-1");
    let passwd = f.installed("/etc/passwd");
    let good = fs::read_to_string(&passwd).unwrap();
    let without: String = good
        .lines()
        .filter(|l| !l.starts_with("mosquitto:"))
        .map(|l| format!("{l}\n"))
        .collect();
    fs::write(&passwd, without).unwrap();
    firstboot_refused(&f, "etc/passwd: no user \"mosquitto\"");
    fs::write(&passwd, good).unwrap();

    fs::remove_file(f.installed("/usr/lib/systemd/system/hostapd.service")).unwrap();
    firstboot_refused(&f, "hostapd.service: no unit file");
    // Units in /lib (images without merged /usr) are found too.
    write_mode(
        &f.installed("/lib/systemd/system/hostapd.service"),
        "[Install]\nWantedBy=multi-user.target\n",
        0o644,
    );
    assert_eq!(f.firstboot().outcome, Outcome::Provisioned);
    assert_eq!(
        fs::read_link(f.wants("hostapd.service")).unwrap(),
        std::path::Path::new("/lib/systemd/system/hostapd.service")
    );
}

#[test]
fn no_manifest_is_nothing_to_provision() {
    let f = Fixture::new();
    let before = snapshot(&f.root);
    let report = f.firstboot();
    assert_eq!(report.outcome, Outcome::NothingToProvision);
    assert!(report.actions.is_empty());
    assert_eq!(snapshot(&f.root), before);
}

/// Puts `bytes` on the card as bundle file `name` (replacing `replaces`, if given, on the card and in
/// the manifest) and lists it with its sum and `secret`: a card as someone with a pen and a card reader
/// could make it, with a manifest that checks out.
fn put_on_card(f: &Fixture, replaces: Option<&str>, name: &str, bytes: &[u8], secret: bool) {
    let manifest_path = f.boot.join("tmc.toml");
    let mut manifest = tmc_provision::Manifest::from_file(&manifest_path).unwrap();
    if let Some(old) = replaces {
        manifest.files.remove(old).unwrap();
        fs::remove_file(f.boot.join("tmc").join(old)).unwrap();
    }
    fs::write(f.boot.join("tmc").join(name), bytes).unwrap();
    manifest.files.insert(
        name.into(),
        tmc_provision::FileEntry {
            sha256: hex::encode(<sha2::Sha256 as sha2::Digest>::digest(bytes)),
            secret,
        },
    );
    fs::write(&manifest_path, manifest.render()).unwrap();
}

#[test]
fn a_key_called_public_is_refused_whatever_the_case_of_its_name() {
    let f = Fixture::new();
    f.write(Role::Concentrator, "relay-1");
    let key = fs::read(f.boot.join("tmc/broker/ecc.broker.key.pem")).unwrap();
    // FAT keeps no case: ecc.broker.key.PEM is the broker key, and was installed 0644 and left on the card.
    put_on_card(
        &f,
        Some("broker/ecc.broker.key.pem"),
        "broker/ecc.broker.key.PEM",
        &key,
        false,
    );
    let err = firstboot_refused(&f, "must be marked secret");
    assert!(
        err.to_string()
            .contains("files.\"broker/ecc.broker.key.PEM\": holds a key"),
        "{err}"
    );
    assert!(!f.installed("/etc/mosquitto/tmc").exists());
}

#[test]
fn a_file_holding_a_private_key_is_refused_unless_secret_whatever_its_name() {
    let f = Fixture::new();
    f.write(Role::Concentrator, "relay-1");
    let key = fs::read(f.boot.join("tmc/broker/ecc.broker.key.pem")).unwrap();
    assert!(key.starts_with(b"-----BEGIN PRIVATE KEY-----"));
    put_on_card(
        &f,
        Some("broker/ecc.broker.key.pem"),
        "broker/ecc.broker.pem",
        &key,
        false,
    );
    let err = firstboot_refused(&f, "holds a PEM private key");
    let card_file = f.boot.join("tmc/broker/ecc.broker.pem");
    assert_eq!(
        err.to_string(),
        format!(
            "{}: holds a PEM private key, but the manifest does not mark it secret = true: \
             nothing was installed, write the card again with `tmc-provision write`",
            card_file.display()
        )
    );
    assert!(matches!(err, FirstbootError::KeyNotSecret { .. }));

    // The other PEM labels of private keys, in a file of any name.
    for (i, label) in ["EC PRIVATE KEY", "ENCRYPTED PRIVATE KEY"]
        .iter()
        .enumerate()
    {
        let f = Fixture::new();
        f.write(Role::Gateway, "gw");
        let name = format!("notes-{i}.txt");
        let text = format!("-----BEGIN {label}-----\nMHcCAQEEIB\n-----END {label}-----\n");
        put_on_card(&f, None, &name, text.as_bytes(), false);
        let err = firstboot_refused(&f, "holds a PEM private key");
        assert!(
            err.to_string()
                .starts_with(&f.boot.join("tmc").join(&name).display().to_string()),
            "{err}"
        );
        // Marked secret, the same file is installed 0600 and leaves the card.
        put_on_card(&f, None, &name, text.as_bytes(), true);
        assert_eq!(f.firstboot().outcome, Outcome::Provisioned);
        assert_eq!(mode(&f.installed(&format!("/etc/tmc/{name}"))), 0o600);
        assert!(!f.boot.join("tmc").join(&name).exists());
    }
}

/// Moves the card's `rel` (below BOOT) to a directory outside the card and leaves a symbolic link to it
/// in its place. Returns that directory.
fn link_off_the_card(f: &Fixture, rel: &str) -> std::path::PathBuf {
    let outside = f.dir.join(format!("outside-{}", rel.replace('/', "-")));
    fs::create_dir_all(&outside).unwrap();
    let target = outside.join("moved");
    fs::rename(f.boot.join(rel), &target).unwrap();
    std::os::unix::fs::symlink(&target, f.boot.join(rel)).unwrap();
    outside
}

#[test]
fn a_symbolic_link_on_the_card_is_refused_before_anything_is_read_or_removed() {
    for rel in [
        "tmc/broker",
        "tmc/ecc.relay-1.key.pem",
        "tmc/keys.toml",
        "tmc",
        "tmc.toml",
    ] {
        let f = Fixture::new();
        f.write(Role::Concentrator, "relay-1");
        let outside = link_off_the_card(&f, rel);
        let before = snapshot(&outside);
        let err = firstboot_refused(&f, "a symbolic link on the boot partition");
        assert!(
            err.to_string()
                .starts_with(&format!("{}: ", f.boot.join(rel).display())),
            "{rel}: {err}"
        );
        assert!(matches!(err, FirstbootError::NotPlain { .. }), "{rel}");
        assert_eq!(
            snapshot(&outside),
            before,
            "{rel}: what the link points to is unchanged"
        );
        assert!(
            !f.installed("/etc/tmc").exists(),
            "{rel}: nothing installed"
        );
    }
}

#[test]
fn a_broker_host_that_is_no_host_name_is_refused_before_etc_hosts_is_written() {
    for (host, problem) in [
        (
            "x\\n203.0.113.7 some.host",
            "only letters, digits, hyphens and dots are allowed",
        ),
        (
            "mqtt.com evil.host",
            "only letters, digits, hyphens and dots are allowed",
        ),
        (
            "mqtt..com",
            "an empty label (a leading, trailing or double dot)",
        ),
    ] {
        let f = Fixture::new();
        f.write(Role::Concentrator, "relay-1");
        let relay = f.boot.join("tmc/relay.toml");
        let text = fs::read_to_string(&relay).unwrap();
        assert!(text.contains("host = \"mqtt.com\""), "{text}");
        let hostile = text.replace("host = \"mqtt.com\"", &format!("host = \"{host}\""));
        put_on_card(
            &f,
            Some("relay.toml"),
            "relay.toml",
            hostile.as_bytes(),
            false,
        );
        let err = firstboot_refused(&f, "[mqtt] host \"");
        // The TOML escape is the value's newline: the message quotes it back, on one line.
        assert_eq!(
            err.to_string(),
            format!(
                "{}: [mqtt] host \"{host}\" is not a DNS name or an IP address: {problem}: \
                 nothing was installed",
                relay.display()
            )
        );
        assert!(!f.installed("/etc/hosts").exists());
    }
}
