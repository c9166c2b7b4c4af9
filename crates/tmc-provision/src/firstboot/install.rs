//! Putting files and directories in place under the root, only when content, mode or owner differ.

use std::fs;
use std::io;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use crate::boot_bundle::fsutil::{sync_dir, under, write_atomic, Ids};
use crate::boot_bundle::layout::{Account, HOSTS, MOSQUITTO_CONF, MOSQUITTO_CONF_D};
use crate::firstboot::accounts::Accounts;
use crate::firstboot::{Action, FirstbootError};

/// Installs under one root.
pub struct Installer<'a> {
    pub root: &'a Path,
    /// Only root may give files away; without it owners are left as they are (and `firstboot` warns).
    pub chown: bool,
    pub accounts: &'a Accounts,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> FirstbootError + '_ {
    move |source| FirstbootError::Io {
        path: path.to_owned(),
        source,
    }
}

fn dir_display(install_path: &Path) -> PathBuf {
    PathBuf::from(format!("{}/", install_path.display()))
}

impl Installer<'_> {
    fn ids(&self, user: Account, group: Account) -> Option<Ids> {
        self.chown.then(|| self.accounts.ids(user, group))
    }

    fn matches(&self, meta: &fs::Metadata, mode: u32, ids: Option<Ids>) -> bool {
        meta.mode() & 0o7777 == mode
            && ids.is_none_or(|ids| meta.uid() == ids.uid && meta.gid() == ids.gid)
    }

    /// A directory this tool owns (`/etc/tmc`, `/etc/mosquitto/tmc`): created, or its mode and owner set.
    pub fn dir(
        &self,
        install_path: &Path,
        mode: u32,
        user: Account,
        group: Account,
    ) -> Result<Action, FirstbootError> {
        let path = under(self.root, install_path);
        let ids = self.ids(user, group);
        let meta = match fs::symlink_metadata(&path) {
            Ok(meta) => Some(meta),
            Err(e) if e.kind() == io::ErrorKind::NotFound => None,
            Err(e) => return Err(io_err(&path)(e)),
        };
        if let Some(meta) = &meta {
            if !meta.is_dir() {
                return Err(FirstbootError::NotADirectory(path));
            }
            if self.matches(meta, mode, ids) {
                return Ok(Action::Unchanged(dir_display(install_path)));
            }
        } else {
            if let Some(parent) = path.parent() {
                fs::create_dir_all(parent).map_err(io_err(parent))?;
            }
            fs::create_dir(&path).map_err(io_err(&path))?;
        }
        if let Some(ids) = ids {
            std::os::unix::fs::chown(&path, Some(ids.uid), Some(ids.gid)).map_err(io_err(&path))?;
        }
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).map_err(io_err(&path))?;
        if let Some(parent) = path.parent() {
            sync_dir(parent).map_err(io_err(parent))?;
        }
        Ok(Action::Installed(dir_display(install_path)))
    }

    /// A directory of another package (`/etc/mosquitto/conf.d`): created 0755 root if missing, else left
    /// as its package made it.
    pub fn foreign_dir(&self, install_path: &Path) -> Result<(), FirstbootError> {
        let path = under(self.root, install_path);
        if !path.is_dir() {
            fs::create_dir_all(&path).map_err(io_err(&path))?;
        }
        Ok(())
    }

    /// A file with exactly this content, mode and (as root) owner.
    pub fn file(
        &self,
        install_path: &Path,
        bytes: &[u8],
        mode: u32,
        user: Account,
        group: Account,
    ) -> Result<Action, FirstbootError> {
        self.file_with_ids(install_path, bytes, mode, self.ids(user, group))
    }

    fn file_with_ids(
        &self,
        install_path: &Path,
        bytes: &[u8],
        mode: u32,
        ids: Option<Ids>,
    ) -> Result<Action, FirstbootError> {
        let path = under(self.root, install_path);
        if let Some(parent) = path.parent() {
            if !parent.is_dir() {
                fs::create_dir_all(parent).map_err(io_err(parent))?;
            }
        }
        let same = match fs::symlink_metadata(&path) {
            Ok(meta) => {
                meta.is_file()
                    && self.matches(&meta, mode, ids)
                    && fs::read(&path).map_err(io_err(&path))? == bytes
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => false,
            Err(e) => return Err(io_err(&path)(e)),
        };
        if same {
            return Ok(Action::Unchanged(install_path.to_owned()));
        }
        write_atomic(&path, bytes, mode, ids).map_err(io_err(&path))?;
        Ok(Action::Installed(install_path.to_owned()))
    }

    /// Removes a file a role no longer has (the other role's configuration).
    pub fn remove(&self, install_path: &Path) -> Result<Option<Action>, FirstbootError> {
        let path = under(self.root, install_path);
        match fs::remove_file(&path) {
            Ok(()) => {
                if let Some(parent) = path.parent() {
                    sync_dir(parent).map_err(io_err(parent))?;
                }
                Ok(Some(Action::Removed(install_path.to_owned())))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(io_err(&path)(e)),
        }
    }

    /// Makes mosquitto read its drop-in directory: an active `include_dir` line for it in
    /// `mosquitto.conf`, appended once (the file is created if the image has none).
    pub fn mosquitto_include(&self) -> Result<Action, FirstbootError> {
        self.append_once(
            Path::new(MOSQUITTO_CONF),
            has_include,
            &format!(
                "# Added by tmc-provision: the TMC broker settings are in {MOSQUITTO_CONF_D}/tmc.conf.\n\
                 include_dir {MOSQUITTO_CONF_D}\n"
            ),
            "# mosquitto configuration: the settings are in the included drop-in files.\n",
        )
    }

    /// Makes the broker's name (`mqtt.com`, which the access point's DNS answers for the sensors only)
    /// resolve to this board for the relay running on it: a line in `/etc/hosts`, appended once. The
    /// relay then verifies the broker certificate against that name while talking over loopback.
    pub fn broker_host(&self, name: &str) -> Result<Action, FirstbootError> {
        self.append_once(
            Path::new(HOSTS),
            |text| hosts_has(text, name),
            &format!(
                "127.0.0.1\t{name}\t# added by tmc-provision: the site broker runs on this board\n"
            ),
            "127.0.0.1\tlocalhost\n",
        )
    }

    /// Appends `addition` to the file unless `present` finds it there already; a missing file is created
    /// with `new_file` first. The package's mode and owner are kept.
    fn append_once(
        &self,
        install_path: &Path,
        present: impl Fn(&str) -> bool,
        addition: &str,
        new_file: &str,
    ) -> Result<Action, FirstbootError> {
        let path = under(self.root, install_path);
        let (mut text, mode, ids) = match fs::read_to_string(&path) {
            Ok(text) => {
                let meta = fs::metadata(&path).map_err(io_err(&path))?;
                let ids = self.chown.then(|| Ids {
                    uid: meta.uid(),
                    gid: meta.gid(),
                });
                (text, meta.mode() & 0o7777, ids)
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => (
                new_file.to_owned(),
                0o644,
                self.ids(Account::Root, Account::Root),
            ),
            Err(e) => return Err(io_err(&path)(e)),
        };
        if present(&text) {
            return Ok(Action::Unchanged(install_path.to_owned()));
        }
        if !text.is_empty() && !text.ends_with('\n') {
            text.push('\n');
        }
        if !text.is_empty() {
            text.push('\n');
        }
        text.push_str(addition);
        self.file_with_ids(install_path, text.as_bytes(), mode, ids)
    }
}

/// Whether an active line of an `/etc/hosts` text names `name` (as canonical name or alias).
fn hosts_has(text: &str, name: &str) -> bool {
    text.lines().any(|line| {
        let active = line.split('#').next().unwrap_or_default();
        active
            .split_whitespace()
            .skip(1)
            .any(|n| n.eq_ignore_ascii_case(name))
    })
}

/// Whether `text` has an active (not commented out) `include_dir` for the drop-in directory.
fn has_include(text: &str) -> bool {
    text.lines().any(|line| {
        let mut words = line.split_whitespace();
        words.next() == Some("include_dir")
            && words
                .next()
                .is_some_and(|dir| dir.trim_end_matches('/') == MOSQUITTO_CONF_D)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn include_dir_must_be_active_and_for_conf_d() {
        assert!(has_include("include_dir /etc/mosquitto/conf.d\n"));
        assert!(has_include("  include_dir   /etc/mosquitto/conf.d/  \n"));
        assert!(!has_include("#include_dir /etc/mosquitto/conf.d\n"));
        assert!(!has_include("# include_dir /etc/mosquitto/conf.d\n"));
        assert!(!has_include("include_dir /etc/other\n"));
        assert!(!has_include(""));
    }

    #[test]
    fn hosts_entry_must_be_active_and_name_the_host() {
        assert!(hosts_has(
            "127.0.0.1 localhost\n10.0.0.1\tbroker MQTT.com\n",
            "mqtt.com"
        ));
        assert!(!hosts_has("# 127.0.0.1 mqtt.com\n", "mqtt.com"));
        assert!(!hosts_has("127.0.0.1 localhost # mqtt.com\n", "mqtt.com"));
        assert!(!hosts_has("mqtt.com 127.0.0.1\n", "mqtt.com"));
        assert!(!hosts_has("127.0.0.1 mqtt.community\n", "mqtt.com"));
    }
}
