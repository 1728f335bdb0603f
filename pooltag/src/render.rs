//! Text exactly as WinDbg's `!poolused` prints it: the Tag column and the description after the TAB.

use crate::entry::{Entry, SourceKind};

/// WinDbg cuts the binary name to this many characters (a 32-byte buffer with its terminator).
pub const BINARY_MAX_CHARS: usize = 31;

/// What a localtag.txt entry without a description shows in place of the description.
pub const LOCALTAG_DESCRIPTION: &str = "localtag.txt";

/// The Tag column: the 4 raw bytes, each outside `0x20..=0x7E` shown as `.` (`[0x84, b'1', 0, 0]` →
/// `".1.."`). Always 4 characters.
pub fn tag_column(tag: [u8; 4]) -> String {
    tag.iter()
        .map(|&b| {
            if (0x20..=0x7E).contains(&b) {
                char::from(b)
            } else {
                '.'
            }
        })
        .collect()
}

/// The description for a tag no entry matches:
/// `UNKNOWN pooltag '{tag}', please update pooltag.txt`, with the tag shown as in [`tag_column`]
/// (short tags keep their padding: `'AGP '`).
pub fn unknown_description(tag: [u8; 4]) -> String {
    format!(
        "UNKNOWN pooltag '{}', please update pooltag.txt",
        tag_column(tag)
    )
}

/// The description for a matched entry, as WinDbg prints it:
///
/// - binary not `<unknown>`: `"{description} , Binary: {binary}"`, the binary cut to its first
///   [`BINARY_MAX_CHARS`] characters;
/// - binary `<unknown>`: `"{description} "` with exactly one trailing space (a raw WinDbg capture shows it;
///   copies that went through markdown lost it).
///
/// A localtag.txt entry has no description of its own; it renders as
/// `"localtag.txt , Binary: {driver}"` so the text keeps WinDbg's shape and says where it came from. A
/// localtag.txt line that does carry a description renders like a pooltag.txt line.
pub fn entry_description(entry: &Entry) -> String {
    let description = if entry.source == SourceKind::LocalTagTxt && entry.description.is_empty() {
        LOCALTAG_DESCRIPTION
    } else {
        entry.description.as_str()
    };
    if entry.binary_is_unknown() {
        format!("{description} ")
    } else {
        let binary: String = entry.binary.chars().take(BINARY_MAX_CHARS).collect();
        format!("{description} , Binary: {binary}")
    }
}

/// The full description column for `tag`, given the entry a lookup found (or `None`).
pub fn windbg_description(tag: [u8; 4], entry: Option<&Entry>) -> String {
    match entry {
        Some(entry) => entry_description(entry),
        None => unknown_description(tag),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(binary: &str, description: &str, source: SourceKind) -> Entry {
        Entry {
            pattern: *b"Test",
            binary: binary.to_owned(),
            description: description.to_owned(),
            line: 1,
            source,
        }
    }

    #[test]
    fn tag_column_hides_unprintable_bytes() {
        assert_eq!(tag_column([0x84, 0x31, 0, 0]), ".1..");
        assert_eq!(tag_column(*b"Io  "), "Io  ");
        assert_eq!(tag_column([0x1F, 0x20, 0x7E, 0x7F]), ". ~.");
    }

    #[test]
    fn unknown_message_uses_the_column_text() {
        assert_eq!(
            unknown_description([0x84, 0x31, 0, 0]),
            "UNKNOWN pooltag '.1..', please update pooltag.txt"
        );
    }

    #[test]
    fn binary_is_cut_to_31_chars() {
        let e = entry(
            "0123456789012345678901234567890123",
            "d",
            SourceKind::PoolTagTxt,
        );
        assert_eq!(
            entry_description(&e),
            "d , Binary: 0123456789012345678901234567890"
        );
    }

    #[test]
    fn localtag_entry_rendering() {
        let e = entry("el90xbc5", "", SourceKind::LocalTagTxt);
        assert_eq!(entry_description(&e), "localtag.txt , Binary: el90xbc5");
        let e = entry("el90xbc5", "NIC buffers", SourceKind::LocalTagTxt);
        assert_eq!(entry_description(&e), "NIC buffers , Binary: el90xbc5");
    }
}
