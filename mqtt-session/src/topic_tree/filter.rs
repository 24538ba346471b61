//! Topic filters taken apart for the tree.

use mqtt_codec::StringError;

/// A topic filter taken apart: its share name, its levels before any trailing `#`, and
/// whether it ends in `#`.
pub(super) struct Parsed<'a> {
    pub(super) share: Option<&'a str>,
    /// `None` when no level precedes the `#` (the filter `#`).
    pub(super) path: Option<&'a str>,
    pub(super) multi: bool,
}

impl<'a> Parsed<'a> {
    /// The levels before any trailing `#`, root first.
    pub(super) fn levels(&self) -> impl DoubleEndedIterator<Item = &'a str> + use<'a> {
        self.path.into_iter().flat_map(|p| p.split('/'))
    }
}

/// Validates `filter` ([MQTT-4.7.1-1], [MQTT-4.7.1-2], [MQTT-4.7.3-1], [MQTT-4.7.3-2],
/// [MQTT-4.7.3-3], [MQTT-4.8.2-1], [MQTT-4.8.2-2]) and takes it apart.
pub(super) fn parse_filter(filter: &str) -> Result<Parsed<'_>, StringError> {
    if filter.len() > usize::from(u16::MAX) {
        return Err(StringError::TooLong);
    }
    if filter.as_bytes().contains(&0) {
        return Err(StringError::Null);
    }
    let (share, inner) = match filter.strip_prefix("$share/") {
        Some(rest) => {
            let Some((name, inner)) = rest.split_once('/') else {
                return Err(StringError::InvalidSharedSubscription);
            };
            if name.is_empty() || name.contains(['+', '#']) || inner.is_empty() {
                return Err(StringError::InvalidSharedSubscription);
            }
            (Some(name), inner)
        }
        None => (None, filter),
    };
    if inner.is_empty() {
        return Err(StringError::EmptyTopic);
    }
    if inner.contains(['+', '#']) {
        let mut levels = inner.split('/').peekable();
        while let Some(level) = levels.next() {
            if level.contains('#') && (level != "#" || levels.peek().is_some()) {
                return Err(StringError::MisplacedMultiLevelWildcard);
            }
            if level.contains('+') && level != "+" {
                return Err(StringError::MisplacedSingleLevelWildcard);
            }
        }
    }
    let (path, multi) = if inner == "#" {
        (None, true)
    } else if let Some(p) = inner.strip_suffix("/#") {
        (Some(p), true)
    } else {
        (Some(inner), false)
    };
    Ok(Parsed { share, path, multi })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn filters_are_parsed_into_levels_and_trailing_hash() {
        let p = parse_filter("#").unwrap();
        assert_eq!((p.path, p.multi, p.share), (None, true, None));
        let p = parse_filter("/#").unwrap();
        assert_eq!((p.path, p.multi), (Some(""), true));
        let p = parse_filter("$share/g/a/+").unwrap();
        assert_eq!((p.share, p.path, p.multi), (Some("g"), Some("a/+"), false));
        assert_eq!(
            parse_filter("a/#").unwrap().levels().collect::<Vec<_>>(),
            ["a"]
        );
        assert_eq!(
            parse_filter("a//").unwrap().levels().collect::<Vec<_>>(),
            ["a", "", ""]
        );
    }
}
