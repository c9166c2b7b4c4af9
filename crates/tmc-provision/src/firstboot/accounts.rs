//! User and group ids from the image's own `/etc/passwd` and `/etc/group` (not this machine's: with
//! `--root` they are another system's), so that ownership is right for the system being provisioned.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use crate::boot_bundle::fsutil::{under, Ids};
use crate::boot_bundle::layout::Account;
use crate::firstboot::FirstbootError;

/// Ids of the accounts the role needs.
#[derive(Debug, Clone)]
pub struct Accounts(HashMap<Account, Ids>);

impl Accounts {
    /// Looks up `needed` under `root`: the user in `etc/passwd`, the group of the same name in
    /// `etc/group`. A missing one is an error naming the file.
    pub fn load(root: &Path, needed: &[Account]) -> Result<Self, FirstbootError> {
        let passwd_path = under(root, Path::new("/etc/passwd"));
        let group_path = under(root, Path::new("/etc/group"));
        let passwd = read_table(&passwd_path, 7)?;
        let group = read_table(&group_path, 4)?;
        let mut ids = HashMap::from([(Account::Root, Ids { uid: 0, gid: 0 })]);
        for &account in needed.iter().filter(|a| **a != Account::Root) {
            let name = account.name();
            let missing = |file: &PathBuf, kind: &'static str| FirstbootError::Account {
                path: file.clone(),
                kind,
                name,
            };
            let uid = *passwd
                .get(name)
                .ok_or_else(|| missing(&passwd_path, "user"))?;
            let gid = *group
                .get(name)
                .ok_or_else(|| missing(&group_path, "group"))?;
            ids.insert(account, Ids { uid, gid });
        }
        Ok(Accounts(ids))
    }

    /// The ids of `user` as owner and `group` as group.
    pub fn ids(&self, user: Account, group: Account) -> Ids {
        // `load` inserted every account the layout uses for this role; root is always there.
        let get = |a: Account| self.0.get(&a).copied().unwrap_or(Ids { uid: 0, gid: 0 });
        Ids {
            uid: get(user).uid,
            gid: get(group).gid,
        }
    }
}

/// Name → numeric id (third field) of a colon-separated account file with `fields` fields per line.
fn read_table(path: &Path, fields: usize) -> Result<HashMap<String, u32>, FirstbootError> {
    let text = std::fs::read_to_string(path).map_err(|source| FirstbootError::Io {
        path: path.to_owned(),
        source,
    })?;
    let mut table = HashMap::new();
    for (index, line) in text.lines().enumerate() {
        if line.trim().is_empty() || line.starts_with('#') {
            continue;
        }
        let parts: Vec<&str> = line.split(':').collect();
        let id = parts.get(2).and_then(|id| id.parse::<u32>().ok());
        match id {
            Some(id) if parts.len() == fields => {
                // The first entry wins, as for getpwnam.
                table.entry(parts[0].to_owned()).or_insert(id);
            }
            _ => {
                return Err(FirstbootError::AccountLine {
                    path: path.to_owned(),
                    line: index + 1,
                    expected: fields,
                })
            }
        }
    }
    Ok(table)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn root(passwd: &str, group: &str) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("etc")).unwrap();
        std::fs::write(dir.path().join("etc/passwd"), passwd).unwrap();
        std::fs::write(dir.path().join("etc/group"), group).unwrap();
        dir
    }

    #[test]
    fn looks_up_users_and_groups_by_name() {
        let dir = root(
            "root:x:0:0:root:/root:/bin/sh\ntmc:x:990:980::/var/lib/tmc:/sbin/nologin\n",
            "root:x:0:\ntmc:x:985:\nspi:x:970:tmc\n",
        );
        let a = Accounts::load(dir.path(), &[Account::Tmc]).unwrap();
        // The group is the group file's `tmc`, not the user's primary gid.
        assert_eq!(
            a.ids(Account::Tmc, Account::Tmc),
            Ids { uid: 990, gid: 985 }
        );
        assert_eq!(a.ids(Account::Root, Account::Tmc), Ids { uid: 0, gid: 985 });
    }

    #[test]
    fn missing_account_or_bad_line_names_the_file() {
        let dir = root("root:x:0:0:root:/root:/bin/sh\n", "root:x:0:\n");
        let err = Accounts::load(dir.path(), &[Account::Mosquitto])
            .unwrap_err()
            .to_string();
        assert!(err.contains("etc/passwd: no user \"mosquitto\""), "{err}");
        let dir = root("root:x:zero:0:root:/root:/bin/sh\n", "root:x:0:\n");
        let err = Accounts::load(dir.path(), &[]).unwrap_err().to_string();
        assert!(err.contains("etc/passwd: line 1"), "{err}");
    }
}
