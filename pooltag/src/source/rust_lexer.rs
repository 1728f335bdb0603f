//! Lexer for Rust source: nested block comments, raw strings, byte strings, char literals vs lifetimes.
//!
//! - `//` runs to the end of the line; `/* … */` nests (`/* /* */ still comment */`);
//! - `"…"` may span lines; `r"…"`, `r#"…"#` (up to 255 `#`), `b"…"`, `br#"…"#`, `c"…"`, `cr#"…"#`;
//!   an unterminated string runs to the end of the file;
//! - `'x'`, `'\''`, `'\u{1F600}'` are char literals, `'a` is a lifetime or label; `b'x'` is a byte;
//! - `r#ident` is a raw identifier;
//! - numbers take letters, digits and `_` (`0x4d45_4d50u32`) and a `.` followed by a digit.

use super::lexer::{Cursor, Token, TokenKind, is_ident_continue, is_ident_start, lex_punct};

/// Most `#` Rust allows around a raw string.
const MAX_RAW_HASHES: usize = 255;

/// Longest char literal after its opening quote that we look for a closing quote in (`\u{10FFFF}'`).
const MAX_ESCAPED_CHAR: usize = 12;

/// Tokens of Rust text.
pub(crate) fn lex_rust(text: &str) -> Vec<Token> {
    let mut c = Cursor::new(text);
    let mut out = Vec::new();
    while let Some(b) = c.peek(0) {
        if b.is_ascii_whitespace() {
            c.bump();
            continue;
        }
        if c.starts_with(b"//") {
            c.bump_while(|b| b != b'\n');
            continue;
        }
        if c.starts_with(b"/*") {
            skip_nested_comment(&mut c);
            continue;
        }
        out.push(lex_token(&mut c));
    }
    out
}

fn skip_nested_comment(c: &mut Cursor<'_>) {
    let mut depth = 0u64;
    while c.peek(0).is_some() {
        if c.starts_with(b"/*") {
            depth += 1;
            c.bump_n(2);
        } else if c.starts_with(b"*/") {
            depth -= 1;
            c.bump_n(2);
            if depth == 0 {
                return;
            }
        } else {
            c.bump();
        }
    }
}

fn lex_token(c: &mut Cursor<'_>) -> Token {
    let mark = c.mark();
    let b = c.peek(0).unwrap_or(b' ');
    // Prefixed literals: b'…', b"…", br"…", r"…", r#"…"#, c"…", cr"…", and raw identifiers r#ident.
    match (b, c.peek(1)) {
        (b'b', Some(b'\'')) => {
            c.bump();
            let kind = match scan_char(c) {
                CharScan::Char => TokenKind::ByteChar,
                _ => TokenKind::Unterminated,
            };
            return c.token(kind, mark);
        }
        (b'b', Some(b'"')) => {
            c.bump();
            let kind = if scan_string(c) {
                TokenKind::ByteStr
            } else {
                TokenKind::Unterminated
            };
            return c.token(kind, mark);
        }
        (b'b' | b'c', Some(b'r')) if raw_hashes(c, 2).is_some() => {
            let byte = b == b'b';
            c.bump_n(2);
            let terminated = scan_raw(c);
            let kind = match (terminated, byte) {
                (false, _) => TokenKind::Unterminated,
                (true, true) => TokenKind::RawByteStr,
                (true, false) => TokenKind::Str,
            };
            return c.token(kind, mark);
        }
        (b'r', _) if raw_hashes(c, 1).is_some() => {
            c.bump();
            let kind = if scan_raw(c) {
                TokenKind::Str
            } else {
                TokenKind::Unterminated
            };
            return c.token(kind, mark);
        }
        (b'r', Some(b'#')) if c.peek(2).is_some_and(is_ident_start) => {
            c.bump_n(2);
            c.bump_while(is_ident_continue);
            return c.token(TokenKind::Ident, mark);
        }
        (b'c', Some(b'"')) => {
            c.bump();
            let kind = if scan_string(c) {
                TokenKind::Str
            } else {
                TokenKind::Unterminated
            };
            return c.token(kind, mark);
        }
        _ => {}
    }
    if is_ident_start(b) {
        c.bump_while(is_ident_continue);
        return c.token(TokenKind::Ident, mark);
    }
    if b.is_ascii_digit() {
        scan_number(c);
        return c.token(TokenKind::Number, mark);
    }
    match b {
        b'\'' => {
            let kind = match scan_char(c) {
                CharScan::Char => TokenKind::Char,
                CharScan::Lifetime => TokenKind::Lifetime,
                CharScan::Unterminated => TokenKind::Unterminated,
                CharScan::Quote => TokenKind::Punct,
            };
            c.token(kind, mark)
        }
        b'"' => {
            let kind = if scan_string(c) {
                TokenKind::Str
            } else {
                TokenKind::Unterminated
            };
            c.token(kind, mark)
        }
        _ => lex_punct(c),
    }
}

/// When the bytes `skip` bytes ahead are `#…#"` (or just `"`), the number of `#`.
fn raw_hashes(c: &Cursor<'_>, skip: usize) -> Option<usize> {
    let rest = c.rest().get(skip..)?;
    let hashes = rest.iter().take_while(|&&b| b == b'#').count();
    (hashes <= MAX_RAW_HASHES && rest.get(hashes) == Some(&b'"')).then_some(hashes)
}

/// Scan a raw string body starting at its `#…#"`; false when unterminated (the cursor ends at EOF).
fn scan_raw(c: &mut Cursor<'_>) -> bool {
    let Some(hashes) = raw_hashes(c, 0) else {
        return false;
    };
    c.bump_n(hashes + 1);
    while let Some(b) = c.peek(0) {
        c.bump();
        if b == b'"' && c.rest().iter().take(hashes).filter(|&&h| h == b'#').count() == hashes {
            c.bump_n(hashes);
            return true;
        }
    }
    false
}

/// Scan `"…"` with escapes, starting at the quote; may span lines. False when unterminated.
fn scan_string(c: &mut Cursor<'_>) -> bool {
    c.bump();
    while let Some(b) = c.peek(0) {
        match b {
            b'\\' => {
                c.bump();
                c.bump();
            }
            b'"' => {
                c.bump();
                return true;
            }
            _ => c.bump(),
        }
    }
    false
}

enum CharScan {
    Char,
    Lifetime,
    Unterminated,
    /// A lone `'` that starts nothing.
    Quote,
}

/// Scan after a `'` (the cursor is on it): a char literal, a lifetime, or a stray quote.
fn scan_char(c: &mut Cursor<'_>) -> CharScan {
    c.bump();
    match c.peek(0) {
        Some(b'\\') => {
            c.bump();
            c.bump();
            for _ in 0..MAX_ESCAPED_CHAR {
                match c.peek(0) {
                    Some(b'\'') => {
                        c.bump();
                        return CharScan::Char;
                    }
                    None | Some(b'\n') => return CharScan::Unterminated,
                    Some(_) => c.bump(),
                }
            }
            CharScan::Unterminated
        }
        None | Some(b'\n') => CharScan::Quote,
        Some(first) => {
            let width = utf8_width(first);
            if c.peek(width) == Some(b'\'') {
                c.bump_n(width + 1);
                CharScan::Char
            } else if is_ident_start(first) {
                c.bump_while(is_ident_continue);
                CharScan::Lifetime
            } else {
                CharScan::Quote
            }
        }
    }
}

/// Byte length of the UTF-8 character that starts with `first` (1 for stray continuation bytes).
fn utf8_width(first: u8) -> usize {
    match first {
        0xF0..=0xFF => 4,
        0xE0..=0xEF => 3,
        0xC0..=0xDF => 2,
        _ => 1,
    }
}

fn scan_number(c: &mut Cursor<'_>) {
    let hex = c.starts_with(b"0x") || c.starts_with(b"0X");
    c.bump_number(|prev, b, next| {
        b.is_ascii_alphanumeric()
            || b == b'_'
            || (b == b'.' && next.is_some_and(|n| n.is_ascii_digit()) && !hex)
            || ((b == b'+' || b == b'-') && matches!(prev, b'e' | b'E') && !hex)
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(TokenKind, &str)> {
        lex_rust(text)
            .into_iter()
            .map(|t| (t.kind, t.text(text)))
            .collect()
    }

    #[test]
    fn nested_comment_and_raw_string() {
        let k = kinds("/* a /* b */ *b\"x\" */ r#\"*b\"abcd\"\"# x");
        assert_eq!(
            k,
            [
                (TokenKind::Str, "r#\"*b\"abcd\"\"#"),
                (TokenKind::Ident, "x")
            ]
        );
    }

    #[test]
    fn char_lifetime_byte() {
        let k = kinds(r#"'a' 'a '\'' b'x' br#b"" &'static b"#);
        assert_eq!(
            k,
            [
                (TokenKind::Char, "'a'"),
                (TokenKind::Lifetime, "'a"),
                (TokenKind::Char, r"'\''"),
                (TokenKind::ByteChar, "b'x'"),
                (TokenKind::Ident, "br"),
                (TokenKind::Punct, "#"),
                (TokenKind::ByteStr, "b\"\""),
                (TokenKind::Punct, "&"),
                (TokenKind::Lifetime, "'static"),
                (TokenKind::Ident, "b"),
            ]
        );
    }

    #[test]
    fn numbers_and_raw_identifiers() {
        let k = kinds("0x4d45_4d50u32 1.5 0..2 r#type");
        assert_eq!(
            k,
            [
                (TokenKind::Number, "0x4d45_4d50u32"),
                (TokenKind::Number, "1.5"),
                (TokenKind::Number, "0"),
                (TokenKind::Punct, ".."),
                (TokenKind::Number, "2"),
                (TokenKind::Ident, "r#type"),
            ]
        );
    }
}
