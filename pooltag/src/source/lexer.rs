//! Tokens shared by the C/C++ and Rust lexers, and the cursor that tracks line and column.
//!
//! The lexers only need to be good enough to find literals and the little structure around them
//! (brackets, commas, `=`, `#define`): comments, string literals and character literals are skipped
//! exactly, everything else becomes identifiers, numbers and punctuation. They never fail: malformed
//! input (an unterminated comment, string or character literal) ends the token at the end of the line or
//! of the file. Time and memory are linear in the text size (no recursion, no backtracking).

/// What a token is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum TokenKind {
    /// Identifier or keyword (non-ASCII characters count as identifier characters).
    Ident,
    /// A number as written (C pp-number or Rust numeric literal, suffix included).
    Number,
    /// C/C++ character constant without prefix (`'a'`, `'ThpK'`), or a Rust `char` literal.
    Char,
    /// C/C++ character constant with an encoding prefix (`L'x'`, `u'x'`, `U'x'`, `u8'x'`): never a tag.
    PrefixedChar,
    /// Rust byte literal `b'x'`.
    ByteChar,
    /// Any string literal whose bytes are not needed (C strings, Rust `"…"`, `c"…"`, raw strings).
    Str,
    /// Rust byte string `b"…"` (escapes allowed).
    ByteStr,
    /// Rust raw byte string `br"…"` / `br#"…"#` (no escapes).
    RawByteStr,
    /// Rust lifetime or label (`'a`).
    Lifetime,
    /// Punctuation, one to three characters (`(`, `::`, `<<=`, …).
    Punct,
    /// The `#` that starts a C preprocessor directive.
    DirectiveStart,
    /// The (empty) end of a C preprocessor directive: the newline that is not escaped by a backslash.
    DirectiveEnd,
    /// A character or string literal that reached the end of its line or of the file unclosed.
    Unterminated,
}

/// One token: kind and where it is. Offsets are byte offsets into the text; `line` and `col` are 1-based,
/// `col` counting characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Token {
    pub(crate) kind: TokenKind,
    pub(crate) start: u32,
    pub(crate) end: u32,
    pub(crate) line: u32,
    pub(crate) col: u32,
}

impl Token {
    /// The token's text (empty when the offsets do not fall on character boundaries, which the lexers
    /// never produce).
    pub(crate) fn text<'a>(&self, text: &'a str) -> &'a str {
        text.get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }

    /// True for punctuation equal to `p`.
    pub(crate) fn is_punct(&self, text: &str, p: &str) -> bool {
        self.kind == TokenKind::Punct && self.text(text) == p
    }

    /// True for an identifier equal to `word`.
    pub(crate) fn is_ident(&self, text: &str, word: &str) -> bool {
        self.kind == TokenKind::Ident && self.text(text) == word
    }

    /// True for tokens that are literals (numbers, characters, strings).
    pub(crate) fn is_literal(&self) -> bool {
        matches!(
            self.kind,
            TokenKind::Number
                | TokenKind::Char
                | TokenKind::PrefixedChar
                | TokenKind::ByteChar
                | TokenKind::Str
                | TokenKind::ByteStr
                | TokenKind::RawByteStr
                | TokenKind::Unterminated
        )
    }
}

/// Largest text the lexers look at: offsets are stored as `u32`. Text beyond it is not scanned.
pub(crate) const MAX_LEXED_BYTES: usize = u32::MAX as usize;

/// A position in the text with its line and column.
pub(crate) struct Cursor<'a> {
    bytes: &'a [u8],
    pos: usize,
    line: u32,
    col: u32,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        let bytes = text.as_bytes();
        let bytes = bytes.get(..MAX_LEXED_BYTES).unwrap_or(bytes);
        Cursor {
            bytes,
            pos: 0,
            line: 1,
            col: 1,
        }
    }

    /// The byte `ahead` bytes after the current position.
    pub(crate) fn peek(&self, ahead: usize) -> Option<u8> {
        self.bytes.get(self.pos.checked_add(ahead)?).copied()
    }

    /// True when the bytes at the current position start with `s`.
    pub(crate) fn starts_with(&self, s: &[u8]) -> bool {
        self.bytes
            .get(self.pos..)
            .is_some_and(|rest| rest.starts_with(s))
    }

    /// Current 1-based line.
    pub(crate) fn line(&self) -> u32 {
        self.line
    }

    /// Current byte offset.
    pub(crate) fn pos(&self) -> usize {
        self.pos
    }

    /// All bytes of the text (up to [`MAX_LEXED_BYTES`]).
    pub(crate) fn whole(&self) -> &'a [u8] {
        self.bytes
    }

    /// Bytes from the current position to the end.
    pub(crate) fn rest(&self) -> &'a [u8] {
        self.bytes.get(self.pos..).unwrap_or_default()
    }

    /// Step over one byte, keeping line and column up to date.
    pub(crate) fn bump(&mut self) {
        let Some(&b) = self.bytes.get(self.pos) else {
            return;
        };
        self.pos += 1;
        if b == b'\n' {
            self.line = self.line.saturating_add(1);
            self.col = 1;
        } else if b & 0xC0 != 0x80 {
            // Count characters, not bytes: UTF-8 continuation bytes do not move the column.
            self.col = self.col.saturating_add(1);
        }
    }

    /// Step over `n` bytes (fewer at the end of the text).
    pub(crate) fn bump_n(&mut self, n: usize) {
        for _ in 0..n {
            self.bump();
        }
    }

    /// Step over bytes while `pred` holds.
    pub(crate) fn bump_while(&mut self, pred: impl Fn(u8) -> bool) {
        while self.peek(0).is_some_and(&pred) {
            self.bump();
        }
    }

    /// Step over the bytes of a number while `take(previous, byte, next)` holds (`previous` is 0 at the
    /// first byte). The C pp-number and the Rust numeric literal differ only in `take`.
    pub(crate) fn bump_number(&mut self, take: impl Fn(u8, u8, Option<u8>) -> bool) {
        let mut previous = 0u8;
        while let Some(b) = self.peek(0) {
            if !take(previous, b, self.peek(1)) {
                break;
            }
            previous = b;
            self.bump();
        }
    }

    /// Remember where a token starts.
    pub(crate) fn mark(&self) -> Mark {
        Mark {
            pos: self.pos,
            line: self.line,
            col: self.col,
        }
    }

    /// A token from `mark` to the current position.
    pub(crate) fn token(&self, kind: TokenKind, mark: Mark) -> Token {
        Token {
            kind,
            start: offset32(mark.pos),
            end: offset32(self.pos),
            line: mark.line,
            col: mark.col,
        }
    }
}

/// Where a token started.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Mark {
    pos: usize,
    line: u32,
    col: u32,
}

fn offset32(pos: usize) -> u32 {
    u32::try_from(pos).unwrap_or(u32::MAX)
}

/// Identifier start: ASCII letter, `_`, `$` (an MSVC extension) or any non-ASCII byte.
pub(crate) fn is_ident_start(b: u8) -> bool {
    b.is_ascii_alphabetic() || b == b'_' || b == b'$' || b >= 0x80
}

/// Identifier continuation.
pub(crate) fn is_ident_continue(b: u8) -> bool {
    is_ident_start(b) || b.is_ascii_digit()
}

/// Multi-character punctuation, longest first. Anything else is a single-byte punctuation token.
const PUNCTS: [&[u8]; 24] = [
    b"<<=", b">>=", b"...", b"..=", b"::", b"->", b"==", b"!=", b"<=", b">=", b"+=", b"-=", b"*=",
    b"/=", b"%=", b"&=", b"|=", b"^=", b"<<", b">>", b"&&", b"||", b"=>", b"..",
];

/// Lex one punctuation token at the cursor (the cursor is on a byte that starts no other token).
pub(crate) fn lex_punct(c: &mut Cursor<'_>) -> Token {
    let mark = c.mark();
    let len = PUNCTS
        .iter()
        .find(|p| c.starts_with(p))
        .map_or(1, |p| p.len());
    c.bump_n(len);
    c.token(TokenKind::Punct, mark)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursor_counts_lines_and_characters() {
        let mut c = Cursor::new("aé\nb");
        c.bump_n(3);
        assert_eq!((c.line, c.col), (1, 3));
        c.bump();
        assert_eq!((c.line, c.col), (2, 1));
        c.bump();
        c.bump();
        assert_eq!(c.pos(), 5);
    }

    #[test]
    fn punct_longest_match() {
        let text = "<<=x";
        let mut c = Cursor::new(text);
        let t = lex_punct(&mut c);
        assert_eq!(t.text(text), "<<=");
    }
}
