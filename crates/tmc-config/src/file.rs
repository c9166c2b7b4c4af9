//! Reading a configuration file into its type, and writing one back.

use std::path::{Path, PathBuf};

use serde::de::DeserializeOwned;
use serde::Serialize;

/// A configuration file that cannot be used. Its text is one line naming the file and the problem.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("{}: {source}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{}: {message}", path.display())]
    Invalid { path: PathBuf, message: String },
}

impl ConfigError {
    /// A semantic error found after parsing (a value out of range, two settings that exclude each other).
    pub fn invalid(path: &Path, message: impl Into<String>) -> Self {
        ConfigError::Invalid {
            path: path.to_owned(),
            message: message.into(),
        }
    }
}

/// Reads `path` as TOML into `T` (which should `deny_unknown_fields`). The error says where: `relay.toml: line
/// 4, column 1: unknown field `topcis`, expected one of ...`.
pub fn load_toml<T: DeserializeOwned>(path: &Path) -> Result<T, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_owned(),
        source,
    })?;
    parse_toml(&text, path)
}

/// Parses TOML `text` as if read from `path`.
pub fn parse_toml<T: DeserializeOwned>(text: &str, path: &Path) -> Result<T, ConfigError> {
    toml::from_str(text).map_err(|e| ConfigError::invalid(path, one_line_toml_error(text, &e)))
}

/// The TOML parser's message with its position, on one line (its own `Display` draws a multi-line snippet).
pub fn one_line_toml_error(text: &str, err: &toml::de::Error) -> String {
    let message = err.message().trim().replace('\n', " ");
    match err.span() {
        Some(span) => {
            let before = &text[..span.start.min(text.len())];
            let line = before.matches('\n').count() + 1;
            let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
            format!("line {line}, column {column}: {message}")
        }
        None => message,
    }
}

/// `value` as a TOML file, after `header` as comment lines (one `# ` line per line of it).
///
/// For the configuration types of this crate, which TOML can always represent (their round-trip tests render
/// every one): a failure is a bug in a type, not a problem with a value.
pub fn render_toml<T: Serialize>(header: &str, value: &T) -> String {
    let body = toml::to_string(value)
        .unwrap_or_else(|e| panic!("a configuration type that TOML cannot represent: {e}"));
    let mut text = String::new();
    for line in header.lines() {
        text.push_str("# ");
        text.push_str(line);
        text.push('\n');
    }
    text.push_str(&body);
    text
}

/// Resolves `path` against the directory of the config file (so a site directory can be moved as a whole).
pub fn relative_to(config: &Path, path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_owned();
    }
    config
        .parent()
        .map_or_else(|| path.to_owned(), |dir| dir.join(path))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, serde::Deserialize)]
    #[serde(deny_unknown_fields)]
    #[allow(dead_code)]
    struct Example {
        name: String,
        #[serde(default)]
        port: u16,
    }

    #[test]
    fn errors_name_file_line_and_key() {
        let path = Path::new("/etc/tmc/relay.toml");
        let err = parse_toml::<Example>("name = \"a\"\nprot = 3\n", path)
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("/etc/tmc/relay.toml: line 2, column 1: unknown field `prot`"),
            "{err}"
        );
        assert!(!err.contains('\n'), "{err}");
        let err = parse_toml::<Example>("name = 3", path)
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("line 1") && err.contains("invalid type"),
            "{err}"
        );
        let err = load_toml::<Example>(Path::new("/nonexistent/x.toml"))
            .unwrap_err()
            .to_string();
        assert!(
            err.starts_with("/nonexistent/x.toml: No such file"),
            "{err}"
        );
    }

    #[test]
    fn relative_paths_follow_the_config_file() {
        let config = Path::new("/site/relay.toml");
        assert_eq!(
            relative_to(config, Path::new("keys.toml")),
            Path::new("/site/keys.toml")
        );
        assert_eq!(relative_to(config, Path::new("/k")), Path::new("/k"));
    }
}
