//! C and C++: which literals can spell a tag (multi-character constants and hex integers).
//!
//! - `'ThpK'` (4 characters): always a tag candidate, reported wherever it is;
//! - `'ab'`, `'abc'` (2–3 characters): only in a tag context (see [`super::analysis`]);
//! - `'s'` (1 character): an ordinary `char`, a tag only when it is the tag argument of an allocator;
//! - `0x4d454d50`: only in a tag context; decimal integers are never taken (tags are not written so);
//! - prefixed constants (`L'ab'`) never; zero never.

use super::analysis::{Candidate, Form};
use super::lexer::TokenKind;
use super::literals::{c_char_constant_chars, c_hex_value, c_multichar_tag, quoted_body};
use super::structure::Structure;

/// Tag candidates among the tokens of a C/C++ file.
pub(crate) fn candidates(s: &Structure<'_>) -> Vec<Candidate> {
    let mut out = Vec::new();
    for i in 0..s.len() {
        match s.kind(i) {
            Some(TokenKind::Char) => {
                let Some(chars) = quoted_body(s.text_of(i)).and_then(c_char_constant_chars) else {
                    continue;
                };
                let tag = c_multichar_tag(&chars);
                if tag == [0; 4] {
                    continue;
                }
                let form = match chars.len() {
                    4 => Form::MultiChar4,
                    1 => Form::SingleChar,
                    _ => Form::ShortMultiChar,
                };
                out.push(Candidate::single(i, tag, form));
            }
            Some(TokenKind::Number) => {
                if let Some(value) = c_hex_value(s.text_of(i)) {
                    out.push(Candidate::single(i, value.to_le_bytes(), Form::Hex));
                }
            }
            _ => {}
        }
    }
    out
}
