//! A site, a fake boot partition and a fake image root for the provisioning tests.
#![allow(dead_code)]

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use tmc_pki::{Site, SiteInit};
use tmc_provision::{FirstbootReport, Role, ServiceManager, WriteOptions, WriteReport};

/// Ids of the fake image's accounts: distinct from each other and from this machine's, so that a wrong
/// owner cannot pass by accident.
pub const TMC_UID: u32 = 4242;
pub const TMC_GID: u32 = 4343;
pub const MOSQUITTO_UID: u32 = 4250;
pub const MOSQUITTO_GID: u32 = 4251;

pub const UNITS: &[&str] = &[
    "tmc-relay.service",
    "tmc-receiver.service",
    "tmc-web.service",
    "mosquitto.service",
    "hostapd.service",
    "dnsmasq.service",
];

pub const PASSPHRASE: &str = "correct horse battery staple";

pub struct Fixture {
    _tmp: tempfile::TempDir,
    pub dir: PathBuf,
    pub site: Site,
    pub boot: PathBuf,
    pub root: PathBuf,
}

pub fn workspace_file(rel: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../..")
        .join(rel)
}

pub fn dragino() -> PathBuf {
    workspace_file("board-config/dragino-lora-hat.toml")
}

pub fn write_mode(path: &Path, text: &str, mode: u32) {
    if let Some(dir) = path.parent() {
        fs::create_dir_all(dir).unwrap();
    }
    fs::write(path, text).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

impl Fixture {
    /// A site (CA, broker certificate, key ring) whose site.toml names a 0600 passphrase file, an empty
    /// boot partition, and an image root with the accounts and unit files.
    pub fn new() -> Self {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().to_owned();
        let site = Site::init(&dir.join("site"), &SiteInit::default()).unwrap();
        write_mode(
            &site.dir().join("site.toml"),
            "# the test site\n[ap]\nssid = \"test-sensors\"\npassphrase_file = \"wifi-passphrase\"\n",
            0o644,
        );
        write_mode(
            &site.dir().join("wifi-passphrase"),
            &format!("{PASSPHRASE}\n"),
            0o600,
        );
        let boot = dir.join("boot");
        write_mode(&boot.join("config.txt"), "dtparam=spi=on\n", 0o644);
        let root = dir.join("root");
        Self::make_root(&root);
        Fixture {
            _tmp: tmp,
            dir,
            site,
            boot,
            root,
        }
    }

    fn make_root(root: &Path) {
        write_mode(
            &root.join("etc/passwd"),
            &format!(
                "root:x:0:0:root:/root:/bin/sh\n\
                 tmc:x:{TMC_UID}:{TMC_GID}::/var/lib/tmc:/sbin/nologin\n\
                 mosquitto:x:{MOSQUITTO_UID}:{MOSQUITTO_GID}::/var/lib/mosquitto:/bin/false\n"
            ),
            0o644,
        );
        write_mode(
            &root.join("etc/group"),
            &format!("root:x:0:\ntmc:x:{TMC_GID}:\nmosquitto:x:{MOSQUITTO_GID}:\nspi:x:970:tmc\n"),
            0o644,
        );
        for unit in UNITS {
            write_mode(
                &root.join("usr/lib/systemd/system").join(unit),
                &format!("[Unit]\nDescription={unit}\n\n[Service]\nExecStart=/bin/true\n\n[Install]\nWantedBy=multi-user.target\n"),
                0o644,
            );
        }
        // As Yocto ships it: every line a comment.
        write_mode(
            &root.join("etc/mosquitto/mosquitto.conf"),
            "# Place your local configuration in /etc/mosquitto/conf.d/\n#include_dir /etc/mosquitto/conf.d\n",
            0o644,
        );
    }

    pub fn options(&self, role: Role, name: &str) -> WriteOptions {
        WriteOptions {
            boot: self.boot.clone(),
            role,
            site: self.site.dir().to_owned(),
            name: name.into(),
            board: dragino(),
            ap: None,
            config: None,
            address: None,
            gateway: None,
            peers: None,
            metrics: None,
            web: None,
            force: false,
        }
    }

    pub fn write(&self, role: Role, name: &str) -> WriteReport {
        tmc_provision::write(&self.options(role, name)).unwrap()
    }

    pub fn firstboot(&self) -> FirstbootReport {
        tmc_provision::firstboot(&self.boot, &self.root, None).unwrap()
    }

    pub fn firstboot_live(&self, services: &mut Recorder) -> FirstbootReport {
        tmc_provision::firstboot(&self.boot, &self.root, Some(services)).unwrap()
    }

    /// `path` (absolute on the Pi) under the fake root.
    pub fn installed(&self, path: &str) -> PathBuf {
        self.root.join(path.trim_start_matches('/'))
    }

    pub fn wants(&self, unit: &str) -> PathBuf {
        self.installed("/etc/systemd/system/multi-user.target.wants")
            .join(unit)
    }

    pub fn enabled(&self, unit: &str) -> bool {
        fs::read_link(self.wants(unit))
            .is_ok_and(|t| t == Path::new("/usr/lib/systemd/system").join(unit))
    }
}

/// systemctl recorded instead of run.
#[derive(Default)]
pub struct Recorder(pub Vec<String>);

impl ServiceManager for Recorder {
    fn systemctl(&mut self, args: &[&str]) -> Result<(), String> {
        self.0.push(args.join(" "));
        Ok(())
    }
}

pub fn mode(path: &Path) -> u32 {
    fs::symlink_metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .mode()
        & 0o7777
}

pub fn owner(path: &Path) -> (u32, u32) {
    let meta = fs::symlink_metadata(path).unwrap();
    (meta.uid(), meta.gid())
}

/// Whether the tests run as root (as on CI): only then are owners set, and asserted.
pub fn is_root() -> bool {
    let dir = tempfile::tempdir().unwrap();
    let probe = dir.path().join("probe");
    fs::write(&probe, "").unwrap();
    fs::metadata(&probe).unwrap().uid() == 0
}

/// Everything under `dir`: relative path → (kind and content or link target, mode, inode, mtime).
pub type Snapshot = BTreeMap<PathBuf, (String, u32, u64, i64, i64)>;

pub fn snapshot(dir: &Path) -> Snapshot {
    let mut out = BTreeMap::new();
    let mut stack = vec![dir.to_owned()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let path = entry.unwrap().path();
            let meta = fs::symlink_metadata(&path).unwrap();
            let what = if meta.file_type().is_symlink() {
                format!("-> {}", fs::read_link(&path).unwrap().display())
            } else if meta.is_dir() {
                stack.push(path.clone());
                "dir".to_owned()
            } else {
                format!("{:?}", fs::read(&path).unwrap())
            };
            out.insert(
                path.strip_prefix(dir).unwrap().to_owned(),
                (
                    what,
                    meta.mode() & 0o7777,
                    meta.ino(),
                    meta.mtime(),
                    meta.mtime_nsec(),
                ),
            );
        }
    }
    out
}

/// The bundle files on the card, relative to BOOT/tmc.
pub fn boot_files(boot: &Path) -> Vec<String> {
    snapshot(&boot.join("tmc"))
        .into_iter()
        .filter(|(_, (what, ..))| what != "dir")
        .map(|(p, _)| p.display().to_string())
        .collect()
}
