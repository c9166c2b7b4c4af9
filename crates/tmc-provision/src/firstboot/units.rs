//! Enabling and disabling units the way `systemctl enable` does, by links under the root: this works on
//! an image root (no systemd running) and at boot alike. On a live system `firstboot` then reloads systemd.

use std::fs;
use std::io;
use std::path::{Path, PathBuf};

use crate::boot_bundle::fsutil::{sync_dir, under, write_symlink};
use crate::firstboot::{Action, FirstbootError};

/// Where the administrator's units and the `.wants` links live.
const ETC_UNITS: &str = "/etc/systemd/system";
/// Where packages install units (`/lib/systemd/system` on images without merged /usr).
const PACKAGE_UNIT_DIRS: &[&str] = &["/usr/lib/systemd/system", "/lib/systemd/system"];
/// The target `WantedBy=` names when a unit file has none (what the services here use).
const DEFAULT_TARGET: &str = "multi-user.target";

/// A unit file found under the root.
#[derive(Debug, Clone)]
pub struct UnitFile {
    pub unit: &'static str,
    /// Its path on the running system: what the `.wants` link points to.
    pub install_path: PathBuf,
    /// Targets from its `[Install] WantedBy=`.
    pub wanted_by: Vec<String>,
}

fn io_err(path: &Path) -> impl FnOnce(io::Error) -> FirstbootError + '_ {
    move |source| FirstbootError::Io {
        path: path.to_owned(),
        source,
    }
}

/// Whether `path` is a mask: a link to /dev/null.
fn is_mask(path: &Path) -> bool {
    fs::read_link(path).is_ok_and(|t| t == Path::new("/dev/null"))
}

/// Finds `unit`'s file: the administrator's copy in /etc first (as systemd does), then the package's.
pub fn find(root: &Path, unit: &'static str) -> Result<UnitFile, FirstbootError> {
    let mut candidates = vec![PathBuf::from(ETC_UNITS).join(unit)];
    candidates.extend(
        PACKAGE_UNIT_DIRS
            .iter()
            .map(|d| PathBuf::from(d).join(unit)),
    );
    for install_path in candidates {
        let path = under(root, &install_path);
        if is_mask(&path) || !path.is_file() {
            continue;
        }
        let text = fs::read_to_string(&path).map_err(io_err(&path))?;
        return Ok(UnitFile {
            unit,
            install_path,
            wanted_by: wanted_by(&text),
        });
    }
    Err(FirstbootError::NoUnit {
        unit,
        root: root.to_owned(),
    })
}

/// The targets of `WantedBy=` lines in the `[Install]` section.
fn wanted_by(text: &str) -> Vec<String> {
    let mut section = "";
    let mut targets = Vec::new();
    for line in text.lines().map(str::trim) {
        if line.starts_with('[') {
            section = line;
            continue;
        }
        if section != "[Install]" {
            continue;
        }
        if let Some((key, value)) = line.split_once('=') {
            if key.trim() == "WantedBy" {
                targets.extend(value.split_whitespace().map(str::to_owned));
            }
        }
    }
    if targets.is_empty() {
        targets.push(DEFAULT_TARGET.to_owned());
    }
    targets
}

/// Unmasks and enables a unit: one `<target>.wants/<unit>` link per `WantedBy=` target.
pub fn enable(root: &Path, file: &UnitFile) -> Result<Vec<Action>, FirstbootError> {
    let mut actions = Vec::new();
    let mask = under(root, &PathBuf::from(ETC_UNITS).join(file.unit));
    if is_mask(&mask) {
        fs::remove_file(&mask).map_err(io_err(&mask))?;
        actions.push(Action::Unmasked(file.unit.to_owned()));
    }
    let mut changed = false;
    for target in &file.wanted_by {
        let wants = under(
            root,
            &PathBuf::from(ETC_UNITS).join(format!("{target}.wants")),
        );
        let link = wants.join(file.unit);
        if fs::read_link(&link).is_ok_and(|t| t == file.install_path) {
            continue;
        }
        fs::create_dir_all(&wants).map_err(io_err(&wants))?;
        write_symlink(&link, &file.install_path).map_err(io_err(&link))?;
        changed = true;
    }
    if changed {
        actions.push(Action::Enabled(file.unit.to_owned()));
    }
    Ok(actions)
}

/// Disables a unit: removes its links from every `.wants` directory.
pub fn disable(root: &Path, unit: &str) -> Result<Option<Action>, FirstbootError> {
    let etc = under(root, Path::new(ETC_UNITS));
    let entries = match fs::read_dir(&etc) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(io_err(&etc)(e)),
    };
    let mut removed = false;
    for entry in entries {
        let dir = entry.map_err(io_err(&etc))?.path();
        let is_wants = dir
            .file_name()
            .and_then(|n| n.to_str())
            .is_some_and(|n| n.ends_with(".wants"));
        let link = dir.join(unit);
        if is_wants && fs::symlink_metadata(&link).is_ok() {
            fs::remove_file(&link).map_err(io_err(&link))?;
            sync_dir(&dir).map_err(io_err(&dir))?;
            removed = true;
        }
    }
    Ok(removed.then(|| Action::Disabled(unit.to_owned())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wanted_by_reads_the_install_section_only() {
        let unit = "[Unit]\nWantedBy=not-this.target\n[Service]\nExecStart=x\n\n[Install]\nWantedBy=multi-user.target  network.target\nAlias=y.service\n";
        assert_eq!(wanted_by(unit), ["multi-user.target", "network.target"]);
        assert_eq!(wanted_by("[Service]\nExecStart=x\n"), ["multi-user.target"]);
    }

    #[test]
    fn enable_unmasks_links_and_disable_unlinks() {
        let root = tempfile::tempdir().unwrap();
        let lib = root.path().join("usr/lib/systemd/system");
        fs::create_dir_all(&lib).unwrap();
        fs::write(
            lib.join("x.service"),
            "[Install]\nWantedBy=multi-user.target\n",
        )
        .unwrap();
        let etc = root.path().join("etc/systemd/system");
        fs::create_dir_all(&etc).unwrap();
        std::os::unix::fs::symlink("/dev/null", etc.join("x.service")).unwrap();

        let file = find(root.path(), "x.service").unwrap();
        assert_eq!(
            file.install_path,
            Path::new("/usr/lib/systemd/system/x.service")
        );
        let actions = enable(root.path(), &file).unwrap();
        assert_eq!(
            actions,
            [
                Action::Unmasked("x.service".into()),
                Action::Enabled("x.service".into())
            ]
        );
        let link = etc.join("multi-user.target.wants/x.service");
        assert_eq!(fs::read_link(&link).unwrap(), file.install_path);
        assert!(
            enable(root.path(), &file).unwrap().is_empty(),
            "second time: nothing"
        );

        assert_eq!(
            disable(root.path(), "x.service").unwrap(),
            Some(Action::Disabled("x.service".into()))
        );
        assert!(fs::symlink_metadata(&link).is_err());
        assert_eq!(disable(root.path(), "x.service").unwrap(), None);

        let err = find(root.path(), "absent.service").unwrap_err().to_string();
        assert!(
            err.contains("absent.service") && err.contains("lacks"),
            "{err}"
        );
    }
}
