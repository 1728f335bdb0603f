//! Pool tags as text that round-trips exactly: printable ASCII as itself, any other byte (and `\`) as `\xNN`.
//!
//! `Ntf\x00` is the tag `N t f 0x00`; `a\x5cb ` is `a \ b space`. Spaces stay spaces (short tags are padded
//! with them), so a tag string is 4 to 16 characters long.

/// Why a tag string is not a tag.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TagParseError {
    /// Fewer or more than four bytes after unescaping.
    #[error("tag {text:?} is {len} bytes long after unescaping, not 4")]
    Length {
        /// The text as given.
        text: String,
        /// Its length in bytes after unescaping.
        len: usize,
    },
    /// A `\` not followed by `x` and two hex digits.
    #[error("tag {text:?} has a bad escape (only \\xNN with two hex digits is allowed)")]
    BadEscape {
        /// The text as given.
        text: String,
    },
    /// A character outside printable ASCII that should have been escaped.
    #[error("tag {text:?} has the character {ch:?}, which must be written as \\xNN")]
    Unescaped {
        /// The text as given.
        text: String,
        /// The offending character.
        ch: char,
    },
}

/// Writes a tag as text: printable ASCII except `\` as itself, other bytes as `\xNN` (lowercase hex).
pub fn escape_tag(tag: [u8; 4]) -> String {
    let mut out = String::with_capacity(4);
    for b in tag {
        if (0x20..=0x7E).contains(&b) && b != b'\\' {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("\\x{b:02x}"));
        }
    }
    out
}

/// Reads a tag written by [`escape_tag`] (hex digits in either case).
pub fn parse_tag(text: &str) -> Result<[u8; 4], TagParseError> {
    let mut tag = [0u8; 4];
    let mut len = 0usize;
    let mut chars = text.chars();
    while let Some(ch) = chars.next() {
        let byte = if ch == '\\' {
            let bad = || TagParseError::BadEscape { text: text.into() };
            if chars.next() != Some('x') {
                return Err(bad());
            }
            let hi = chars.next().and_then(|c| c.to_digit(16)).ok_or_else(bad)?;
            let lo = chars.next().and_then(|c| c.to_digit(16)).ok_or_else(bad)?;
            // Two hex digits: at most 0xff.
            u8::try_from(hi * 16 + lo).map_err(|_| bad())?
        } else if (' '..='~').contains(&ch) {
            ch as u8
        } else {
            return Err(TagParseError::Unescaped {
                text: text.into(),
                ch,
            });
        };
        if let Some(slot) = tag.get_mut(len) {
            *slot = byte;
        }
        len += 1;
    }
    if len == 4 {
        Ok(tag)
    } else {
        Err(TagParseError::Length {
            text: text.into(),
            len,
        })
    }
}

/// serde adapter: a tag field as its escaped string.
pub(crate) mod serde_tag {
    use serde::{Deserialize, Deserializer, Serializer};

    pub fn serialize<S: Serializer>(tag: &[u8; 4], s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(&super::escape_tag(*tag))
    }

    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<[u8; 4], D::Error> {
        let text = std::borrow::Cow::<str>::deserialize(d)?;
        super::parse_tag(&text).map_err(serde::de::Error::custom)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn printable_tags_stay_as_they_are() {
        assert_eq!(escape_tag(*b"Ntfx"), "Ntfx");
        assert_eq!(escape_tag(*b"AGP "), "AGP ");
        assert_eq!(parse_tag("AGP "), Ok(*b"AGP "));
    }

    #[test]
    fn unprintable_and_backslash_are_escaped() {
        assert_eq!(escape_tag([b'N', 0x00, 0xff, b'\\']), "N\\x00\\xff\\x5c");
        assert_eq!(parse_tag("N\\x00\\xFF\\x5c"), Ok([b'N', 0x00, 0xff, b'\\']));
    }

    #[test]
    fn every_byte_round_trips() {
        for b in 0..=255u8 {
            let tag = [b, b'a', b, 0x7f];
            assert_eq!(parse_tag(&escape_tag(tag)), Ok(tag), "byte {b:#x}");
        }
    }

    #[test]
    fn bad_strings_are_rejected() {
        assert!(matches!(
            parse_tag("abc"),
            Err(TagParseError::Length { len: 3, .. })
        ));
        assert!(matches!(
            parse_tag("abcde"),
            Err(TagParseError::Length { .. })
        ));
        assert!(matches!(
            parse_tag("ab\\q1"),
            Err(TagParseError::BadEscape { .. })
        ));
        assert!(matches!(
            parse_tag("ab\\x1"),
            Err(TagParseError::BadEscape { .. })
        ));
        assert!(matches!(
            parse_tag("abcé"),
            Err(TagParseError::Unescaped { ch: 'é', .. })
        ));
        assert_eq!(
            parse_tag("abc").map_err(|e| e.to_string()),
            Err("tag \"abc\" is 3 bytes long after unescaping, not 4".to_string())
        );
    }
}
