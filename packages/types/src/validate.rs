//! Shape checks on user-supplied text shared by the contracts.

use thiserror::Error;

/// Longest URI a contribution or model may reference.
pub const MAX_URI_LEN: usize = 512;

/// Why a piece of text was refused.
#[derive(Error, Debug, Clone, PartialEq, Eq)]
pub enum TextError {
    #[error("{field} must be between {min} and {max} characters, got {len}")]
    Length {
        field: &'static str,
        min: usize,
        max: usize,
        len: usize,
    },
    #[error("{field} contains a control character")]
    ControlCharacter { field: &'static str },
    #[error("uri {uri:?} is not of the form scheme://rest without spaces")]
    Uri { uri: String },
    #[error("domain tag {tag:?} must be 1 to 32 characters of a-z, 0-9 and '-'")]
    Tag { tag: String },
}

/// Checks that `value` has between `min` and `max` characters and no control characters
/// (newlines and tabs are allowed in long free text).
pub fn text(field: &'static str, value: &str, min: usize, max: usize) -> Result<(), TextError> {
    let len = value.chars().count();
    if len < min || len > max {
        return Err(TextError::Length {
            field,
            min,
            max,
            len,
        });
    }
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(TextError::ControlCharacter { field });
    }
    Ok(())
}

/// Checks a URI of the form `scheme://rest`: scheme of letters, digits, `+.-` starting with a
/// letter; a non-empty rest with no whitespace or control characters; at most [`MAX_URI_LEN`].
pub fn uri(value: &str) -> Result<(), TextError> {
    let bad = || TextError::Uri {
        uri: value.chars().take(64).collect(),
    };
    if value.len() > MAX_URI_LEN {
        return Err(bad());
    }
    let (scheme, rest) = value.split_once("://").ok_or_else(bad)?;
    let scheme_ok = scheme
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic())
        && scheme
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "+.-".contains(c));
    let rest_ok = !rest.is_empty() && !rest.chars().any(|c| c.is_whitespace() || c.is_control());
    if scheme_ok && rest_ok {
        Ok(())
    } else {
        Err(bad())
    }
}

/// Longest gateway URL an attestor may publish in the model registry, in bytes.
pub const MAX_GATEWAY_URL_LEN: usize = 256;

/// Whether `url` is a gateway URL buyers can call: `http://` or `https://`, a host, a [`uri`]
/// (no whitespace or control characters), at most [`MAX_GATEWAY_URL_LEN`] bytes. The registry
/// takes only these, and a relayer checks its `public_url` with the same rule before it
/// publishes one.
pub fn is_gateway_url(url: &str) -> bool {
    let Some(rest) = url
        .strip_prefix("https://")
        .or_else(|| url.strip_prefix("http://"))
    else {
        return false;
    };
    let host = rest.split('/').next().unwrap_or_default();
    url.len() <= MAX_GATEWAY_URL_LEN && !host.is_empty() && uri(url).is_ok()
}

/// Checks a domain tag: 1 to 32 characters of `a-z`, `0-9` and `-`.
pub fn domain_tag(tag: &str) -> Result<(), TextError> {
    let ok = (1..=32).contains(&tag.len())
        && tag
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-');
    if ok {
        Ok(())
    } else {
        Err(TextError::Tag {
            tag: tag.chars().take(40).collect(),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uris_need_a_scheme_and_no_spaces() {
        assert_eq!(uri("tributary://blobs/abc"), Ok(()));
        assert_eq!(uri("ipfs://bafy"), Ok(()));
        assert_eq!(uri("https://example.org/a?b=c"), Ok(()));
        for bad in [
            "",
            "no-scheme",
            "://x",
            "1x://y",
            "http://",
            "http://a b",
            &format!("http://{}", "a".repeat(600)),
        ] {
            assert!(matches!(uri(bad), Err(TextError::Uri { .. })), "{bad}");
        }
    }

    #[test]
    fn text_limits_and_control_characters() {
        assert_eq!(text("name", "ok", 1, 4), Ok(()));
        assert!(matches!(
            text("name", "", 1, 4),
            Err(TextError::Length { len: 0, .. })
        ));
        assert!(matches!(
            text("name", "toolong", 1, 4),
            Err(TextError::Length { len: 7, .. })
        ));
        assert_eq!(
            text("name", "a\u{0}", 1, 4),
            Err(TextError::ControlCharacter { field: "name" })
        );
        assert_eq!(text("about", "line\nline", 1, 40), Ok(()));
    }

    #[test]
    fn tags_are_lowercase_words() {
        assert_eq!(domain_tag("systems-programming"), Ok(()));
        assert!(domain_tag("Systems").is_err());
        assert!(domain_tag("").is_err());
        assert!(domain_tag(&"a".repeat(33)).is_err());
    }
}
