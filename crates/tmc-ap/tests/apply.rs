//! `apply` on a running system, with systemctl recorded instead of run: restarts follow changes only.

use std::fs;
use std::path::Path;

use tmc_ap::{apply, render, ChangeKind, ServiceManager};
use tmc_config::SiteConfig;

#[derive(Default)]
struct Recorder(Vec<String>);

impl ServiceManager for Recorder {
    fn systemctl(&mut self, args: &[&str]) -> Result<(), String> {
        self.0.push(args.join(" "));
        Ok(())
    }
}

fn files(site: &str) -> Vec<tmc_ap::ManagedFile> {
    render(&SiteConfig::from_toml_str(site, "site.toml").unwrap().ap)
}

#[test]
fn restarts_only_what_changed_in_dependency_order() {
    let root = tempfile::tempdir().unwrap();
    let mut sm = Recorder::default();
    let report = apply(&files("[ap]\n"), root.path(), Some(&mut sm)).unwrap();
    assert_eq!(report.changes.len(), 5);
    assert_eq!(
        sm.0,
        [
            "daemon-reload",
            "enable systemd-networkd.service",
            "restart systemd-networkd.service",
            "unmask hostapd.service",
            "enable hostapd.service",
            "restart hostapd.service",
            "enable dnsmasq.service",
            "restart dnsmasq.service",
        ]
    );

    let mut sm = Recorder::default();
    let report = apply(&files("[ap]\n"), root.path(), Some(&mut sm)).unwrap();
    assert!(!report.changed() && sm.0.is_empty(), "second run: nothing");

    // A new lease time touches dnsmasq only.
    let mut sm = Recorder::default();
    apply(
        &files("[ap]\nlease_time = \"2h\"\n"),
        root.path(),
        Some(&mut sm),
    )
    .unwrap();
    assert_eq!(sm.0, ["enable dnsmasq.service", "restart dnsmasq.service"]);
}

#[test]
fn an_uplink_adds_nat_and_removing_it_removes_it() {
    let root = tempfile::tempdir().unwrap();
    apply(
        &files("[ap]\n"),
        root.path(),
        Some(&mut Recorder::default()),
    )
    .unwrap();

    let mut sm = Recorder::default();
    let report = apply(
        &files("[ap]\nupstream_interface = \"eth0\"\n"),
        root.path(),
        Some(&mut sm),
    )
    .unwrap();
    let created: Vec<String> = report
        .changes
        .iter()
        .filter(|c| c.kind == ChangeKind::Created)
        .map(|c| c.path.display().to_string())
        .collect();
    assert_eq!(
        created,
        [
            "/etc/sysctl.d/90-tmc-ap.conf",
            "/etc/tmc-ap/nat.nft",
            "/etc/systemd/system/tmc-ap-nat.service",
            "/etc/systemd/system/multi-user.target.wants/tmc-ap-nat.service"
        ]
    );
    let link = root
        .path()
        .join("etc/systemd/system/multi-user.target.wants/tmc-ap-nat.service");
    assert_eq!(
        fs::read_link(&link).unwrap(),
        Path::new("/etc/systemd/system/tmc-ap-nat.service")
    );
    assert!(sm.0.contains(&"restart systemd-sysctl.service".to_owned()));
    assert_eq!(sm.0.last().unwrap(), "restart tmc-ap-nat.service");

    let mut sm = Recorder::default();
    let report = apply(&files("[ap]\n"), root.path(), Some(&mut sm)).unwrap();
    let kinds: Vec<(String, ChangeKind)> = report
        .changes
        .iter()
        .map(|c| (c.path.display().to_string(), c.kind))
        .collect();
    assert_eq!(
        kinds,
        [
            // Offline again: dnsmasq stops forwarding to the system's resolvers.
            ("/etc/dnsmasq.d/tmc-ap.conf".into(), ChangeKind::Updated),
            ("/etc/sysctl.d/90-tmc-ap.conf".into(), ChangeKind::Removed),
            ("/etc/tmc-ap/nat.nft".into(), ChangeKind::Removed),
            (
                "/etc/systemd/system/tmc-ap-nat.service".into(),
                ChangeKind::Removed
            ),
            (
                "/etc/systemd/system/multi-user.target.wants/tmc-ap-nat.service".into(),
                ChangeKind::Removed
            ),
        ]
    );
    assert_eq!(
        sm.0,
        [
            "disable --now tmc-ap-nat.service",
            "daemon-reload",
            "enable dnsmasq.service",
            "restart dnsmasq.service"
        ]
    );
    assert!(!root.path().join("etc/tmc-ap/nat.nft").exists());
    assert!(fs::symlink_metadata(&link).is_err());
    // The removed files are kept in this run's backup directory.
    let run = report.changes[2].backup.as_ref().unwrap();
    assert!(run.ends_with("etc/tmc-ap/nat.nft"), "{}", run.display());
    assert!(run.starts_with(root.path().join(tmc_ap::apply::BACKUP_DIR)));
    assert!(run.is_file());
}

#[test]
fn a_failed_restart_names_the_command() {
    struct Failing;
    impl ServiceManager for Failing {
        fn systemctl(&mut self, args: &[&str]) -> Result<(), String> {
            if args == ["restart", "hostapd.service"] {
                Err("exit status: 1: Job for hostapd.service failed".into())
            } else {
                Ok(())
            }
        }
    }
    let root = tempfile::tempdir().unwrap();
    let err = apply(&files("[ap]\n"), root.path(), Some(&mut Failing)).unwrap_err();
    assert_eq!(
        err.to_string(),
        "`systemctl restart hostapd.service` failed: exit status: 1: Job for hostapd.service failed \
         (the files are in place: fix the cause, then run `systemctl restart hostapd.service`)"
    );
}

#[test]
fn a_hand_edited_file_is_backed_up_and_a_wrong_mode_fixed() {
    let root = tempfile::tempdir().unwrap();
    let conf = root.path().join("etc/hostapd/hostapd.conf");
    fs::create_dir_all(conf.parent().unwrap()).unwrap();
    fs::write(&conf, "interface=wlan0\n# by hand\n").unwrap();
    let report = apply(&files("[ap]\n"), root.path(), None).unwrap();
    let change = report
        .changes
        .iter()
        .find(|c| c.path == Path::new("/etc/hostapd/hostapd.conf"))
        .unwrap();
    assert_eq!(change.kind, ChangeKind::Updated);
    let backup = change.backup.as_ref().unwrap();
    assert_eq!(
        fs::read_to_string(backup).unwrap(),
        "interface=wlan0\n# by hand\n"
    );

    use std::os::unix::fs::PermissionsExt;
    fs::set_permissions(&conf, fs::Permissions::from_mode(0o644)).unwrap();
    let report = apply(&files("[ap]\n"), root.path(), None).unwrap();
    assert_eq!(report.changes.len(), 1, "the mode alone is a change");
    assert_eq!(
        fs::metadata(&conf).unwrap().permissions().mode() & 0o777,
        0o600
    );
}
