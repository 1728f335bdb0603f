//! Rust: which expressions can spell a tag.
//!
//! - `u32::from_le_bytes(*b"rust")`, `u32::from_ne_bytes(*b"rust")` (x64 is little-endian: bytes as
//!   written), `u32::from_be_bytes(*b"tsur")` (reversed), also with `[b'r', b'u', b's', b't']` or a raw
//!   byte string: always a tag candidate. The receiver may be any 32-bit type name (`u32`, `i32`, `ULONG`);
//!   other integer widths are not tags;
//! - a 4-byte byte string `*b"abcd"`: only in a tag context (the tag argument of an allocator, a
//!   tag-named binding, or the value of a binding that feeds an allocator);
//! - hex integers `0x6d656d50u32`: only in a tag context;
//! - a `char` or byte literal (`'s' as u32`): only as an allocator's tag argument.

use super::analysis::{Candidate, Form};
use super::lexer::TokenKind;
use super::literals::{
    quoted_body, rust_byte_string_4, rust_char_value, rust_hex_value, rust_raw_byte_string_4,
};
use super::structure::Structure;

/// Integer types whose `from_*_bytes` does not take 4 bytes.
const NOT_32_BIT: [&str; 10] = [
    "u8", "i8", "u16", "i16", "u64", "i64", "u128", "i128", "usize", "isize",
];

/// Tag candidates among the tokens of a Rust file.
pub(crate) fn candidates(s: &Structure<'_>) -> Vec<Candidate> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if let Some((candidate, next)) = from_bytes_call(s, i) {
            out.push(candidate);
            i = next;
            continue;
        }
        match s.kind(i) {
            Some(TokenKind::Number) => {
                if let Some(value) = rust_hex_value(s.text_of(i)) {
                    out.push(Candidate::single(i, value.to_le_bytes(), Form::Hex));
                }
            }
            Some(kind @ (TokenKind::ByteStr | TokenKind::RawByteStr)) => {
                if let Some(bytes) = byte_string(s.text_of(i), kind)
                    && bytes != [0; 4]
                {
                    out.push(Candidate::single(i, bytes, Form::ByteString));
                }
            }
            Some(TokenKind::Char | TokenKind::ByteChar) => {
                if let Some(value) = quoted_body(s.text_of(i)).and_then(rust_char_value)
                    && value != 0
                {
                    out.push(Candidate::single(i, value.to_le_bytes(), Form::SingleChar));
                }
            }
            _ => {}
        }
        i += 1;
    }
    out
}

fn byte_string(text: &str, kind: TokenKind) -> Option<[u8; 4]> {
    let body = quoted_body(text)?;
    if kind == TokenKind::RawByteStr {
        rust_raw_byte_string_4(body)
    } else {
        rust_byte_string_4(body)
    }
}

/// `[T::]from_xe_bytes(…)` whose function name is token `i`: the candidate (positioned at `T` when
/// present) and the index of the token after the call.
fn from_bytes_call(s: &Structure<'_>, i: usize) -> Option<(Candidate, usize)> {
    let function = i;
    let owner = i
        .checked_sub(2)
        .filter(|&o| s.is_punct(o + 1, "::") && s.kind(o) == Some(TokenKind::Ident));
    let reversed = match s.text_of(function) {
        "from_le_bytes" | "from_ne_bytes" => false,
        "from_be_bytes" => true,
        _ => return None,
    };
    if s.kind(function) != Some(TokenKind::Ident) || !s.is_punct(function + 1, "(") {
        return None;
    }
    if owner.is_some_and(|o| NOT_32_BIT.contains(&s.text_of(o))) {
        return None;
    }
    let open = function + 1;
    let close = s.matching(open)?;
    let mut strings = Vec::new();
    let mut byte_chars = Vec::new();
    for k in open + 1..close {
        match s.kind(k) {
            Some(kind @ (TokenKind::ByteStr | TokenKind::RawByteStr)) => {
                strings.push(byte_string(s.text_of(k), kind));
            }
            Some(TokenKind::ByteChar) => {
                byte_chars.push(quoted_body(s.text_of(k)).and_then(rust_char_value));
            }
            _ => {}
        }
    }
    let bytes: [u8; 4] = match (strings.as_slice(), byte_chars.len()) {
        ([Some(bytes)], 0) => *bytes,
        ([], 4) => {
            let mut bytes = [0u8; 4];
            for (slot, value) in bytes.iter_mut().zip(&byte_chars) {
                *slot = u8::try_from((*value)?).ok()?;
            }
            bytes
        }
        _ => return None,
    };
    let mut tag = bytes;
    if reversed {
        tag.reverse();
    }
    if tag == [0; 4] {
        return None;
    }
    let start = owner.unwrap_or(function);
    Some((
        Candidate {
            token: start,
            span: start..close + 1,
            tag,
            form: Form::RustFromBytes,
        },
        close + 1,
    ))
}
