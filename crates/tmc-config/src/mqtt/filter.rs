//! MQTT topic filters: checking the configured ones and matching incoming topics against them. A persistent
//! session keeps the subscriptions of an older configuration, so the relay cannot assume the broker only sends
//! what the current one asks for.

/// Why a topic filter is not valid MQTT.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum FilterError {
    #[error("empty filter")]
    Empty,
    #[error("`#` must be a whole level and the last one")]
    Hash,
    #[error("`+` must be a whole level")]
    Plus,
}

pub fn check_filter(filter: &str) -> Result<(), FilterError> {
    if filter.is_empty() {
        return Err(FilterError::Empty);
    }
    let levels: Vec<&str> = filter.split('/').collect();
    for (i, level) in levels.iter().enumerate() {
        if level.contains('#') && (*level != "#" || i + 1 != levels.len()) {
            return Err(FilterError::Hash);
        }
        if level.contains('+') && *level != "+" {
            return Err(FilterError::Plus);
        }
    }
    Ok(())
}

/// Whether `topic` matches `filter` (MQTT 3.1.1 §4.7).
pub fn matches(filter: &str, topic: &str) -> bool {
    let mut f = filter.split('/');
    let mut t = topic.split('/');
    loop {
        match (f.next(), t.next()) {
            (Some("#"), _) => return true,
            (Some("+"), Some(_)) => {}
            (Some(a), Some(b)) if a == b => {}
            (None, None) => return true,
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters() {
        assert_eq!(check_filter("sensors/+/reading"), Ok(()));
        assert_eq!(check_filter("/esp8266"), Ok(()));
        assert_eq!(check_filter("a/#"), Ok(()));
        assert_eq!(check_filter("a/#/b"), Err(FilterError::Hash));
        assert_eq!(check_filter("a/b+"), Err(FilterError::Plus));
        assert_eq!(check_filter(""), Err(FilterError::Empty));
    }

    #[test]
    fn matching() {
        assert!(matches("sensors/+/reading", "sensors/s1/reading"));
        assert!(!matches("sensors/+/reading", "sensors/s1/other"));
        assert!(!matches("sensors/+/reading", "sensors/reading"));
        assert!(matches("/esp8266", "/esp8266"));
        assert!(!matches("/esp8266", "esp8266"));
        assert!(matches("a/#", "a/b/c"));
        assert!(matches("a/#", "a"));
        assert!(!matches("a/+", "a/b/c"));
    }
}
