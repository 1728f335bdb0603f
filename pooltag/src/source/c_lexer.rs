//! Lexer for C and C++ source: comments, string and character literals, preprocessor directives.
//!
//! Rules (translation phases 2–3, simplified):
//! - a backslash before a newline joins lines everywhere (also inside `//` comments and directives);
//! - `/* … */` does not nest; `//` runs to the end of the (joined) line;
//! - `"…"` and `'…'` end at the closing quote or, unterminated, at the end of the line; encoding prefixes
//!   `L`, `u`, `U`, `u8` are recognised; C++ raw strings `R"delim(…)delim"` (also `LR`, `uR`, `UR`, `u8R`)
//!   span lines (only in C++ mode);
//! - numbers are pp-numbers, including C++14/C23 digit separators (`0x4d45'4d50`);
//! - a `#` that is the first token of a line starts a directive, which ends at the next unescaped newline
//!   ([`TokenKind::DirectiveEnd`]); the free text of `#error`, `#warning` and the header name of
//!   `#include` are skipped (an apostrophe in `#error don't` is not a character constant).

use super::lexer::{Cursor, Token, TokenKind, is_ident_continue, is_ident_start, lex_punct};

/// Tokens of C (`raw_strings == false`) or C++ (`raw_strings == true`) text.
pub(crate) fn lex_c(text: &str, raw_strings: bool) -> Vec<Token> {
    let mut c = Cursor::new(text);
    let mut out = Vec::new();
    let mut in_directive = false;
    let mut line_has_token = false;
    while let Some(b) = c.peek(0) {
        match b {
            b'\n' => {
                if in_directive {
                    let mark = c.mark();
                    out.push(c.token(TokenKind::DirectiveEnd, mark));
                    in_directive = false;
                }
                line_has_token = false;
                c.bump();
            }
            b'\\' if line_splice_len(&c) > 0 => c.bump_n(line_splice_len(&c)),
            b' ' | b'\t' | b'\r' | 0x0B | 0x0C => c.bump(),
            b'/' if c.peek(1) == Some(b'/') => skip_line_comment(&mut c),
            b'/' if c.peek(1) == Some(b'*') => {
                let start_line = c.line();
                skip_block_comment(&mut c);
                // A comment spanning lines outside a directive leaves us at the start of a fresh line as
                // far as `#` is concerned.
                if !in_directive && c.line() != start_line {
                    line_has_token = false;
                }
            }
            b'#' if !line_has_token && !in_directive => {
                line_has_token = true;
                in_directive = true;
                let mark = c.mark();
                c.bump();
                out.push(c.token(TokenKind::DirectiveStart, mark));
                lex_directive_name(&mut c, &mut out);
            }
            _ => {
                line_has_token = true;
                out.push(lex_token(&mut c, raw_strings));
            }
        }
    }
    if in_directive {
        let mark = c.mark();
        out.push(c.token(TokenKind::DirectiveEnd, mark));
    }
    out
}

/// Length of a backslash-newline line splice at the cursor (`\` `\n` or `\` `\r` `\n`), or 0.
fn line_splice_len(c: &Cursor<'_>) -> usize {
    match (c.peek(0), c.peek(1), c.peek(2)) {
        (Some(b'\\'), Some(b'\n'), _) => 2,
        (Some(b'\\'), Some(b'\r'), Some(b'\n')) => 3,
        _ => 0,
    }
}

/// Skip to the end of a logical line (stopping before the newline), honouring line splices.
fn skip_rest_of_logical_line(c: &mut Cursor<'_>) {
    while let Some(b) = c.peek(0) {
        if b == b'\n' {
            break;
        }
        let splice = line_splice_len(c);
        if splice > 0 {
            c.bump_n(splice);
        } else {
            c.bump();
        }
    }
}

fn skip_line_comment(c: &mut Cursor<'_>) {
    skip_rest_of_logical_line(c);
}

fn skip_block_comment(c: &mut Cursor<'_>) {
    c.bump_n(2);
    while c.peek(0).is_some() {
        if c.starts_with(b"*/") {
            c.bump_n(2);
            return;
        }
        c.bump();
    }
}

/// After the `#` of a directive: lex the directive name and skip free text where the directive has it.
fn lex_directive_name(c: &mut Cursor<'_>, out: &mut Vec<Token>) {
    c.bump_while(|b| b == b' ' || b == b'\t');
    if !c.peek(0).is_some_and(is_ident_start) {
        return;
    }
    let mark = c.mark();
    c.bump_while(is_ident_continue);
    let token = c.token(TokenKind::Ident, mark);
    out.push(token);
    let name = c.whole().get(token.start as usize..token.end as usize);
    if matches!(
        name,
        Some(b"error" | b"warning" | b"include" | b"include_next")
    ) {
        skip_rest_of_logical_line(c);
    }
}

fn lex_token(c: &mut Cursor<'_>, raw_strings: bool) -> Token {
    let mark = c.mark();
    let b = c.peek(0).unwrap_or(b' ');
    if is_ident_start(b) {
        let ident_start = c.pos();
        c.bump_while(is_ident_continue);
        let ident_len = c.pos() - ident_start;
        let next = c.peek(0);
        let prefix = prefix_kind(c, ident_len);
        match (prefix, next) {
            (Prefix::Encoding, Some(b'\'')) => {
                scan_quoted(c, b'\'');
                return c.token(TokenKind::PrefixedChar, mark);
            }
            (Prefix::Encoding, Some(b'"')) => {
                let kind = if scan_quoted(c, b'"') {
                    TokenKind::Str
                } else {
                    TokenKind::Unterminated
                };
                return c.token(kind, mark);
            }
            (Prefix::Raw, Some(b'"')) if raw_strings => {
                let kind = if scan_raw_string(c) {
                    TokenKind::Str
                } else {
                    TokenKind::Unterminated
                };
                return c.token(kind, mark);
            }
            _ => return c.token(TokenKind::Ident, mark),
        }
    }
    if b.is_ascii_digit() || (b == b'.' && c.peek(1).is_some_and(|d| d.is_ascii_digit())) {
        scan_pp_number(c);
        return c.token(TokenKind::Number, mark);
    }
    match b {
        b'\'' => {
            let kind = if scan_quoted(c, b'\'') {
                TokenKind::Char
            } else {
                TokenKind::Unterminated
            };
            c.token(kind, mark)
        }
        b'"' => {
            let kind = if scan_quoted(c, b'"') {
                TokenKind::Str
            } else {
                TokenKind::Unterminated
            };
            c.token(kind, mark)
        }
        _ => lex_punct(c),
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Prefix {
    None,
    /// `L`, `u`, `U`, `u8`.
    Encoding,
    /// `R`, `LR`, `uR`, `UR`, `u8R`.
    Raw,
}

/// What the identifier of `len` bytes that ends at the cursor is as a literal prefix.
fn prefix_kind(c: &Cursor<'_>, len: usize) -> Prefix {
    let Some(start) = c.pos().checked_sub(len) else {
        return Prefix::None;
    };
    let whole = c.whole();
    match whole.get(start..c.pos()) {
        Some(b"L" | b"u" | b"U" | b"u8") => Prefix::Encoding,
        Some(b"R" | b"LR" | b"uR" | b"UR" | b"u8R") => Prefix::Raw,
        _ => Prefix::None,
    }
}

/// Scan a quoted literal starting at the opening quote. Returns false when it is unterminated (the cursor
/// then stops before the newline, or at the end of the text).
fn scan_quoted(c: &mut Cursor<'_>, quote: u8) -> bool {
    c.bump();
    while let Some(b) = c.peek(0) {
        if b == b'\\' {
            let splice = line_splice_len(c);
            if splice > 0 {
                c.bump_n(splice);
            } else {
                c.bump();
                if c.peek(0).is_some_and(|n| n != b'\n') {
                    c.bump();
                }
            }
        } else if b == b'\n' {
            return false;
        } else if b == quote {
            c.bump();
            return true;
        } else {
            c.bump();
        }
    }
    false
}

/// Longest raw-string delimiter C++ allows.
const MAX_RAW_DELIMITER: usize = 16;

/// Scan a C++ raw string starting at its `"`. A malformed delimiter makes it an ordinary string.
fn scan_raw_string(c: &mut Cursor<'_>) -> bool {
    let rest = c.rest();
    let delimiter_len = rest
        .iter()
        .skip(1)
        .take(MAX_RAW_DELIMITER + 1)
        .position(|&b| {
            b == b'(' || b == b')' || b == b'\\' || b == b'"' || b.is_ascii_whitespace()
        });
    let delimiter = match delimiter_len {
        Some(n) if rest.get(1 + n) == Some(&b'(') => rest.get(1..1 + n).unwrap_or_default(),
        _ => return scan_quoted(c, b'"'),
    };
    let mut closing = Vec::with_capacity(delimiter.len() + 2);
    closing.push(b')');
    closing.extend_from_slice(delimiter);
    closing.push(b'"');
    let body_start = 1 + delimiter.len() + 1;
    let body = rest.get(body_start..).unwrap_or_default();
    match find_subslice(body, &closing) {
        Some(at) => {
            c.bump_n(body_start + at + closing.len());
            true
        }
        None => {
            c.bump_n(rest.len());
            false
        }
    }
}

/// First position of `needle` in `haystack` (linear in practice: the needle is at most 18 bytes).
pub(crate) fn find_subslice(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    let first = *needle.first()?;
    let mut from = 0;
    while let Some(rel) = haystack.get(from..)?.iter().position(|&b| b == first) {
        let at = from + rel;
        if haystack.get(at..)?.starts_with(needle) {
            return Some(at);
        }
        from = at + 1;
    }
    None
}

/// pp-number: digits, letters, `_`, `.`, exponent signs after `e`/`E`/`p`/`P`, and digit separators `'`
/// followed by an identifier character.
fn scan_pp_number(c: &mut Cursor<'_>) {
    c.bump_number(|prev, b, next| {
        b.is_ascii_alphanumeric()
            || b == b'_'
            || b == b'.'
            || ((b == b'+' || b == b'-') && matches!(prev, b'e' | b'E' | b'p' | b'P'))
            || (b == b'\'' && next.is_some_and(|n| n.is_ascii_alphanumeric() || n == b'_'))
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kinds(text: &str) -> Vec<(TokenKind, &str)> {
        lex_c(text, true)
            .into_iter()
            .map(|t| (t.kind, t.text(text)))
            .collect()
    }

    #[test]
    fn comments_and_strings_are_single_tokens_or_nothing() {
        let k = kinds("a /* 'abcd' */ b // 'efgh'\n\"'ijkl'\" 'mnop'");
        assert_eq!(
            k,
            [
                (TokenKind::Ident, "a"),
                (TokenKind::Ident, "b"),
                (TokenKind::Str, "\"'ijkl'\""),
                (TokenKind::Char, "'mnop'"),
            ]
        );
    }

    #[test]
    fn line_comment_continues_after_backslash() {
        let k = kinds("// x \\\n 'abcd'\n'efgh'");
        assert_eq!(k, [(TokenKind::Char, "'efgh'")]);
    }

    #[test]
    fn directive_ends_at_unescaped_newline() {
        let k = kinds("#define X \\\n 'abcd'\ny");
        let names: Vec<TokenKind> = k.iter().map(|(k, _)| *k).collect();
        assert_eq!(
            names,
            [
                TokenKind::DirectiveStart,
                TokenKind::Ident,
                TokenKind::Ident,
                TokenKind::Char,
                TokenKind::DirectiveEnd,
                TokenKind::Ident
            ]
        );
    }

    #[test]
    fn error_directive_text_is_skipped() {
        let k = kinds("#error don't do 'this'\n'abcd'");
        assert_eq!(k.last(), Some(&(TokenKind::Char, "'abcd'")));
        assert!(!k.iter().any(|(_, t)| t.contains("this")));
    }

    #[test]
    fn raw_string_and_prefixes() {
        let k = kinds("R\"x('a' )\" )x\" L'ab' u8\"q\" 0x4d45'4d50u");
        assert_eq!(
            k,
            [
                (TokenKind::Str, "R\"x('a' )\" )x\""),
                (TokenKind::PrefixedChar, "L'ab'"),
                (TokenKind::Str, "u8\"q\""),
                (TokenKind::Number, "0x4d45'4d50u"),
            ]
        );
    }

    #[test]
    fn escaped_quote_in_char_literal() {
        let k = kinds(r"'\'' '\\' 'ab");
        assert_eq!(
            k,
            [
                (TokenKind::Char, r"'\''"),
                (TokenKind::Char, r"'\\'"),
                (TokenKind::Unterminated, "'ab"),
            ]
        );
    }
}
