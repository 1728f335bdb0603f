//! Values of the literals that can spell a pool tag, and the tag bytes they give.
//!
//! A pool tag is the 4-byte value whose first byte is the lowest one (x64 is little-endian), so the tag
//! bytes in memory — and as `!poolused`, poolmon and pooltag.txt print them — are the little-endian bytes
//! of the `ULONG` the code passes:
//!
//! - **C/C++ multi-character constants** (MSVC rule): each character shifts the value left by 8 bits,
//!   `'ThpK'` = `'T'<<24 | 'h'<<16 | 'p'<<8 | 'K'` = 0x5468704B, memory bytes `K p h T` = "KphT": the
//!   written order is reversed. Shorter constants pack the same way into the low bytes: `'ab'` = 0x6162,
//!   memory bytes `b a 00 00`; a one-character `'s'` is 0x73, memory `s 00 00 00`. Every character
//!   contributes its 8-bit value (escapes `\x84`, `\0`, `\'` included; a character outside ASCII
//!   contributes each of its UTF-8 bytes). More than 4 characters is an error for MSVC: not a tag.
//! - **Hex constants** `0x4d454d50` (any `u`/`l`/`ll`/`i32`/`ui64`… suffix, `'` separators): the value,
//!   little-endian: "PMEM". Zero and values above 0xFFFFFFFF are not tags.
//! - **Rust** `u32::from_le_bytes(*b"rust")` and `from_ne_bytes` (x64 is little-endian): the bytes as
//!   written, "rust"; `from_be_bytes` reverses them. A `char` (`'s' as u32`) is its code point,
//!   little-endian.

/// The characters of a plain C character constant (the text between the quotes), each as its 8-bit
/// value; `None` when there are none or more than 4 (not a tag for MSVC).
pub(crate) fn c_char_constant_chars(body: &str) -> Option<Vec<u8>> {
    let bytes = body.as_bytes();
    let mut out = Vec::with_capacity(4);
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        let value = if b == b'\\' {
            let (value, used) = c_escape(bytes.get(i + 1..).unwrap_or_default());
            i += 1 + used;
            value
        } else {
            i += 1;
            b
        };
        out.push(value);
        if out.len() > 4 {
            return None;
        }
    }
    (!out.is_empty()).then_some(out)
}

/// One C escape after its backslash: the 8-bit value and how many bytes it used.
fn c_escape(after: &[u8]) -> (u8, usize) {
    let Some(&first) = after.first() else {
        return (b'\\', 0);
    };
    match first {
        b'n' => (b'\n', 1),
        b't' => (b'\t', 1),
        b'r' => (b'\r', 1),
        b'a' => (0x07, 1),
        b'b' => (0x08, 1),
        b'f' => (0x0C, 1),
        b'v' => (0x0B, 1),
        b'x' | b'X' => {
            let digits = after
                .iter()
                .skip(1)
                .take_while(|d| d.is_ascii_hexdigit())
                .count();
            if digits == 0 {
                return (first, 1);
            }
            // Only the low 8 bits of a long hex escape survive in a narrow character.
            let low = after
                .get(1 + digits.saturating_sub(2)..1 + digits)
                .and_then(|d| std::str::from_utf8(d).ok())
                .and_then(|d| u8::from_str_radix(d, 16).ok())
                .unwrap_or(0);
            (low, 1 + digits)
        }
        b'0'..=b'7' => {
            let digits = after
                .iter()
                .take(3)
                .take_while(|d| (b'0'..=b'7').contains(d))
                .count();
            let value = after
                .iter()
                .take(digits)
                .fold(0u32, |v, d| v * 8 + u32::from(d - b'0'));
            ((value & 0xFF) as u8, digits)
        }
        // \' \" \? \\ and unknown escapes (MSVC: the character itself).
        other => (other, 1),
    }
}

/// Memory bytes of a C multi-character constant with these characters (1 to 4 of them).
pub(crate) fn c_multichar_tag(chars: &[u8]) -> [u8; 4] {
    let value = chars.iter().fold(0u32, |v, &c| (v << 8) | u32::from(c));
    value.to_le_bytes()
}

/// Value of a C/C++ hex integer literal (`0x…` with optional `'` separators and integer suffix), when it
/// is a possible tag: non-zero and at most 0xFFFFFFFF.
pub(crate) fn c_hex_value(text: &str) -> Option<u32> {
    let rest = text
        .strip_prefix("0x")
        .or_else(|| text.strip_prefix("0X"))?;
    let digits_end = rest
        .find(|ch: char| !(ch.is_ascii_hexdigit() || ch == '\''))
        .unwrap_or(rest.len());
    let (digits, suffix) = rest.split_at(digits_end);
    const SUFFIXES: [&str; 15] = [
        "", "u", "l", "ul", "lu", "ll", "ull", "llu", "i8", "i16", "i32", "i64", "ui8", "ui16",
        "ui32",
    ];
    let suffix = suffix.to_ascii_lowercase();
    if !(SUFFIXES.contains(&suffix.as_str()) || suffix == "ui64") {
        return None;
    }
    hex_digits_value(digits, '\'')
}

/// Value of a Rust hex integer literal (`0x4d45_4d50`, `0x4d454d50u32`, `0x…_u32`), when it is a possible
/// tag: non-zero, at most 0xFFFFFFFF, and its suffix (if any) an integer type.
pub(crate) fn rust_hex_value(text: &str) -> Option<u32> {
    let rest = text.strip_prefix("0x")?;
    let digits_end = rest
        .find(|ch: char| !(ch.is_ascii_hexdigit() || ch == '_'))
        .unwrap_or(rest.len());
    let (digits, suffix) = rest.split_at(digits_end);
    const SUFFIXES: [&str; 13] = [
        "", "u32", "i32", "u64", "i64", "u128", "i128", "usize", "isize", "u16", "i16", "u8", "i8",
    ];
    if !SUFFIXES.contains(&suffix) {
        return None;
    }
    hex_digits_value(digits, '_')
}

fn hex_digits_value(digits: &str, separator: char) -> Option<u32> {
    let mut value = 0u64;
    let mut any = false;
    for ch in digits.chars() {
        if ch == separator {
            continue;
        }
        let d = ch.to_digit(16)?;
        value = value * 16 + u64::from(d);
        if value > u64::from(u32::MAX) {
            return None;
        }
        any = true;
    }
    let value = u32::try_from(value).ok()?;
    (any && value != 0).then_some(value)
}

/// Bytes of a Rust byte string body (between the quotes, escapes allowed), when there are exactly 4.
pub(crate) fn rust_byte_string_4(body: &str) -> Option<[u8; 4]> {
    let bytes = body.as_bytes();
    let mut out = Vec::with_capacity(4);
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'\\' {
            let next = *bytes.get(i + 1)?;
            i += 2;
            let value = match next {
                b'n' => b'\n',
                b'r' => b'\r',
                b't' => b'\t',
                b'0' => 0,
                b'\\' | b'\'' | b'"' => next,
                b'x' => {
                    let hex = std::str::from_utf8(bytes.get(i..i + 2)?).ok()?;
                    i += 2;
                    u8::from_str_radix(hex, 16).ok()?
                }
                b'\n' | b'\r' => {
                    // Line continuation: skip the newline and the indentation that follows.
                    while bytes.get(i).is_some_and(u8::is_ascii_whitespace) {
                        i += 1;
                    }
                    continue;
                }
                _ => return None,
            };
            out.push(value);
        } else if b.is_ascii() {
            out.push(b);
            i += 1;
        } else {
            return None;
        }
        if out.len() > 4 {
            return None;
        }
    }
    <[u8; 4]>::try_from(out.as_slice()).ok()
}

/// Bytes of a Rust raw byte string body, when there are exactly 4 (ASCII only, as Rust requires).
pub(crate) fn rust_raw_byte_string_4(body: &str) -> Option<[u8; 4]> {
    let bytes = body.as_bytes();
    if !bytes.is_ascii() {
        return None;
    }
    <[u8; 4]>::try_from(bytes).ok()
}

/// Value of a Rust char or byte literal body (between the quotes).
pub(crate) fn rust_char_value(body: &str) -> Option<u32> {
    let mut chars = body.chars();
    let first = chars.next()?;
    if first != '\\' {
        return chars.next().is_none().then_some(u32::from(first));
    }
    let rest = chars.as_str();
    let value = match rest {
        "n" => u32::from(b'\n'),
        "r" => u32::from(b'\r'),
        "t" => u32::from(b'\t'),
        "0" => 0,
        "\\" | "'" | "\"" => u32::from(rest.as_bytes().first().copied()?),
        _ => {
            if let Some(hex) = rest.strip_prefix('x') {
                (hex.len() == 2).then_some(())?;
                u32::from_str_radix(hex, 16).ok()?
            } else {
                let inner = rest.strip_prefix("u{")?.strip_suffix('}')?;
                let inner: String = inner.chars().filter(|&c| c != '_').collect();
                (inner.len() <= 6).then_some(())?;
                u32::from_str_radix(&inner, 16).ok()?
            }
        }
    };
    Some(value)
}

/// The text between the quotes of a literal token such as `'ab'`, `b"ab"`, `br#"ab"#`.
pub(crate) fn quoted_body(token_text: &str) -> Option<&str> {
    let open = token_text.find(['\'', '"'])?;
    let quote = token_text.get(open..open + 1)?;
    let close = token_text.rfind(quote)?;
    token_text.get(open + 1..close)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn msvc_multichar_reverses() {
        let chars = c_char_constant_chars("ThpK").expect("4 chars");
        assert_eq!(&c_multichar_tag(&chars), b"KphT");
        let chars = c_char_constant_chars("ab").expect("2 chars");
        assert_eq!(c_multichar_tag(&chars), *b"ba\0\0");
        assert_eq!(
            c_char_constant_chars(r"\x84\061").map(|c| c_multichar_tag(&c)),
            Some([0x31, 0x84, 0, 0])
        );
        assert_eq!(c_char_constant_chars("abcde"), None);
        assert_eq!(c_char_constant_chars(""), None);
        assert_eq!(c_char_constant_chars(r"\'"), Some(vec![b'\'']));
    }

    #[test]
    fn hex_values() {
        assert_eq!(c_hex_value("0x4d454d50"), Some(0x4d45_4d50));
        assert_eq!(c_hex_value("0x4D45'4D50UL"), Some(0x4d45_4d50));
        assert_eq!(c_hex_value("0x3184ui32"), Some(0x3184));
        assert_eq!(c_hex_value("0x0"), None);
        assert_eq!(c_hex_value("0x100000000"), None);
        assert_eq!(c_hex_value("0x1.8p3"), None);
        assert_eq!(c_hex_value("1234"), None);
        assert_eq!(rust_hex_value("0x4d45_4d50u32"), Some(0x4d45_4d50));
        assert_eq!(rust_hex_value("0x4d454d50_u32"), Some(0x4d45_4d50));
        assert_eq!(rust_hex_value("0x4d454d50f32"), None);
    }

    #[test]
    fn rust_strings_and_chars() {
        assert_eq!(rust_byte_string_4("rust"), Some(*b"rust"));
        assert_eq!(
            rust_byte_string_4(r"\x84\x31\0\0"),
            Some([0x84, 0x31, 0, 0])
        );
        assert_eq!(rust_byte_string_4("rusty"), None);
        assert_eq!(rust_raw_byte_string_4("ab\"c"), Some(*b"ab\"c"));
        assert_eq!(rust_char_value("s"), Some(0x73));
        assert_eq!(rust_char_value(r"\u{1F600}"), Some(0x1F600));
        assert_eq!(quoted_body("br#\"ab\"#"), Some("ab"));
    }
}
