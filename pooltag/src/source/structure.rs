//! The little syntax the tag rules need around literals: matching brackets, `#define`s, bindings
//! (`NAME = value`, `let`/`const`/`static`), and whether a name looks like it holds a tag.
//!
//! Everything here is linear in the token count, with fixed bounds where a scan could otherwise run far
//! on broken input.

use std::ops::Range;

use super::lexer::{Token, TokenKind};

/// Sentinel for "no matching bracket".
const NO_MATCH: u32 = u32::MAX;

/// How far down the open-bracket stack a closing bracket looks for its opener. Deeper mismatches are
/// ignored, which keeps broken input linear.
const MATCH_SEARCH_DEPTH: usize = 8;

/// Longest initializer (in top-level tokens) a binding is followed over.
const MAX_INITIALIZER_TOKENS: usize = 4096;

/// How far back from `=` to look for `let`/`const`/`static`/`constexpr`.
const MAX_STATEMENT_LOOKBACK: usize = 32;

/// The token text and kinds of one file, plus bracket matches.
pub(crate) struct Structure<'a> {
    pub(crate) text: &'a str,
    pub(crate) tokens: Vec<Token>,
    /// For every opening bracket the index of its closing bracket and vice versa, or [`NO_MATCH`].
    matches: Vec<u32>,
    /// `literal_prefix[i]` = number of literal tokens before token `i`.
    literal_prefix: Vec<u32>,
    /// Indexes of the `}` tokens that close a top-level block (a function body, a namespace, …).
    top_level_closes: Vec<usize>,
}

impl<'a> Structure<'a> {
    pub(crate) fn new(text: &'a str, tokens: Vec<Token>) -> Self {
        let matches = match_brackets(text, &tokens);
        let mut literal_prefix = Vec::with_capacity(tokens.len() + 1);
        let mut count = 0u32;
        literal_prefix.push(0);
        let mut top_level_closes = Vec::new();
        let mut depth = 0usize;
        for (i, token) in tokens.iter().enumerate() {
            if token.is_literal() {
                count = count.saturating_add(1);
            }
            literal_prefix.push(count);
            if token.kind == TokenKind::Punct {
                match token.text(text) {
                    "{" => depth = depth.saturating_add(1),
                    "}" if depth > 0 => {
                        depth -= 1;
                        if depth == 0 {
                            top_level_closes.push(i);
                        }
                    }
                    _ => {}
                }
            }
        }
        Structure {
            text,
            tokens,
            matches,
            literal_prefix,
            top_level_closes,
        }
    }

    pub(crate) fn len(&self) -> usize {
        self.tokens.len()
    }

    pub(crate) fn token(&self, i: usize) -> Option<&Token> {
        self.tokens.get(i)
    }

    pub(crate) fn text_of(&self, i: usize) -> &'a str {
        self.tokens.get(i).map_or("", |t| t.text(self.text))
    }

    pub(crate) fn kind(&self, i: usize) -> Option<TokenKind> {
        self.tokens.get(i).map(|t| t.kind)
    }

    pub(crate) fn is_punct(&self, i: usize, p: &str) -> bool {
        self.tokens.get(i).is_some_and(|t| t.is_punct(self.text, p))
    }

    pub(crate) fn is_ident(&self, i: usize, word: &str) -> bool {
        self.tokens
            .get(i)
            .is_some_and(|t| t.is_ident(self.text, word))
    }

    /// The matching bracket of the bracket at `i`.
    pub(crate) fn matching(&self, i: usize) -> Option<usize> {
        match self.matches.get(i) {
            Some(&m) if m != NO_MATCH => Some(m as usize),
            _ => None,
        }
    }

    /// Which top-level block token `i` is in: the number of top-level blocks closed before it. Two
    /// tokens in the same function body have the same number.
    pub(crate) fn top_level_block(&self, i: usize) -> usize {
        self.top_level_closes.partition_point(|&close| close < i)
    }

    /// Number of literal tokens in `range`.
    pub(crate) fn literals_in(&self, range: &Range<usize>) -> usize {
        let at = |i: usize| {
            self.literal_prefix
                .get(i.min(self.tokens.len()))
                .copied()
                .unwrap_or(0)
        };
        at(range.end).saturating_sub(at(range.start)) as usize
    }

    /// Token ranges of the first `max_args` top-level arguments of the call whose `(` is at `open`
    /// (which must have a match). Empty arguments are kept as empty ranges.
    pub(crate) fn call_arguments(&self, open: usize, max_args: usize) -> Vec<Range<usize>> {
        let Some(close) = self.matching(open) else {
            return Vec::new();
        };
        let mut args = Vec::new();
        let mut start = open + 1;
        let mut i = open + 1;
        while i < close && args.len() < max_args {
            if self.is_punct(i, ",") {
                args.push(start..i);
                start = i + 1;
                i += 1;
            } else if let Some(m) = self.opener_match(i) {
                i = m + 1;
            } else {
                i += 1;
            }
        }
        if args.len() < max_args && (start < close || !args.is_empty()) {
            args.push(start..close);
        }
        args
    }

    /// The match of `i` when `i` is an opening bracket that is matched further on.
    fn opener_match(&self, i: usize) -> Option<usize> {
        let t = self.tokens.get(i)?;
        if t.kind == TokenKind::Punct && matches!(t.text(self.text), "(" | "[" | "{") {
            self.matching(i).filter(|&m| m > i)
        } else {
            None
        }
    }

    /// End (exclusive) of an initializer that starts at `start`: the first top-level `;` or `,`, an
    /// unmatched closing bracket, a directive end, or [`MAX_INITIALIZER_TOKENS`] top-level tokens.
    pub(crate) fn initializer_end(&self, start: usize) -> usize {
        let mut i = start;
        let mut steps = 0;
        while i < self.len() && steps < MAX_INITIALIZER_TOKENS {
            let Some(t) = self.tokens.get(i) else { break };
            match t.kind {
                TokenKind::DirectiveEnd | TokenKind::DirectiveStart => break,
                TokenKind::Punct => match t.text(self.text) {
                    ";" | "," | ")" | "]" | "}" => break,
                    _ => {
                        if let Some(m) = self.opener_match(i) {
                            i = m;
                        }
                    }
                },
                _ => {}
            }
            i += 1;
            steps += 1;
        }
        i
    }
}

/// Match `()`, `[]` and `{}`. Directives are matched on their own (a `(` in a `#define` never matches a
/// `)` in the code after it).
fn match_brackets(text: &str, tokens: &[Token]) -> Vec<u32> {
    let mut matches = vec![NO_MATCH; tokens.len()];
    // Stack of (token index, opening byte); a `None` entry is a directive barrier.
    let mut stack: Vec<Option<(usize, u8)>> = Vec::new();
    for (i, t) in tokens.iter().enumerate() {
        match t.kind {
            TokenKind::DirectiveStart => stack.push(None),
            TokenKind::DirectiveEnd => {
                while let Some(entry) = stack.pop() {
                    if entry.is_none() {
                        break;
                    }
                }
            }
            TokenKind::Punct => {
                let open = match t.text(text) {
                    "(" | "[" | "{" => {
                        stack.push(Some((i, t.text(text).as_bytes()[0])));
                        continue;
                    }
                    ")" => b'(',
                    "]" => b'[',
                    "}" => b'{',
                    _ => continue,
                };
                let found = stack
                    .iter()
                    .rev()
                    .take(MATCH_SEARCH_DEPTH)
                    .take_while(|e| e.is_some())
                    .position(|e| e.is_some_and(|(_, b)| b == open));
                if let Some(depth) = found {
                    let keep = stack.len() - depth - 1;
                    if let Some(Some((j, _))) = stack.get(keep) {
                        let j = *j;
                        if let (Ok(iu), Ok(ju)) = (u32::try_from(i), u32::try_from(j)) {
                            if let Some(m) = matches.get_mut(j) {
                                *m = iu;
                            }
                            if let Some(m) = matches.get_mut(i) {
                                *m = ju;
                            }
                        }
                    }
                    stack.truncate(keep);
                }
            }
            _ => {}
        }
    }
    matches
}

/// A `#define NAME body`.
#[derive(Debug, Clone)]
pub(crate) struct Define {
    pub(crate) name: String,
    pub(crate) name_token: usize,
    pub(crate) body: Range<usize>,
    /// `#define NAME(params) body`.
    pub(crate) function_like: bool,
}

/// Every `#define` in the tokens.
pub(crate) fn find_defines(s: &Structure<'_>) -> Vec<Define> {
    let mut out = Vec::new();
    let mut i = 0;
    while i < s.len() {
        if s.kind(i) != Some(TokenKind::DirectiveStart) {
            i += 1;
            continue;
        }
        let mut end = i + 1;
        while end < s.len() && s.kind(end) != Some(TokenKind::DirectiveEnd) {
            end += 1;
        }
        if s.is_ident(i + 1, "define") && s.kind(i + 2) == Some(TokenKind::Ident) {
            let name_token = i + 2;
            let adjacent_paren = s.is_punct(name_token + 1, "(")
                && s.token(name_token).map(|t| t.end) == s.token(name_token + 1).map(|t| t.start);
            let (body_start, function_like) = if adjacent_paren {
                match s.matching(name_token + 1) {
                    Some(close) if close < end => (close + 1, true),
                    _ => (end, true),
                }
            } else {
                (name_token + 1, false)
            };
            out.push(Define {
                name: s.text_of(name_token).to_string(),
                name_token,
                body: body_start..end,
                function_like,
            });
        }
        i = end + 1;
    }
    out
}

/// `NAME = initializer` (C/C++ declarations with initializers, assignments, enumerators, default
/// arguments; Rust `let`/`const`/`static`).
#[derive(Debug, Clone)]
pub(crate) struct Binding {
    pub(crate) name: String,
    pub(crate) name_token: usize,
    pub(crate) init: Range<usize>,
    /// Visible beyond its function: a `const`/`static`/`constexpr` declaration, or one at brace depth 0.
    pub(crate) global: bool,
}

/// Every binding in the tokens. `rust` selects the Rust rule for finding the name.
pub(crate) fn find_bindings(s: &Structure<'_>, rust: bool) -> Vec<Binding> {
    let mut out = Vec::new();
    let mut brace_depth = 0usize;
    for i in 0..s.len() {
        let Some(t) = s.token(i) else { break };
        if t.kind != TokenKind::Punct {
            continue;
        }
        match t.text(s.text) {
            "{" => brace_depth = brace_depth.saturating_add(1),
            "}" => brace_depth = brace_depth.saturating_sub(1),
            "=" => {
                let Some((name_token, keyword)) = binding_name(s, i, rust) else {
                    continue;
                };
                let init_end = s.initializer_end(i + 1);
                out.push(Binding {
                    name: s.text_of(name_token).to_string(),
                    name_token,
                    init: i + 1..init_end,
                    global: keyword || brace_depth == 0,
                });
            }
            _ => {}
        }
    }
    out
}

/// The name bound by the `=` at `eq`, and whether the statement has `const`/`static`/`constexpr`.
fn binding_name(s: &Structure<'_>, eq: usize, rust: bool) -> Option<(usize, bool)> {
    let statement_start = {
        let mut j = eq;
        let mut steps = 0;
        while j > 0 && steps < MAX_STATEMENT_LOOKBACK {
            let prev = j - 1;
            let stop = match s.kind(prev) {
                Some(TokenKind::DirectiveStart | TokenKind::DirectiveEnd) => true,
                Some(TokenKind::Punct) => matches!(s.text_of(prev), ";" | "{" | "}"),
                _ => false,
            };
            if stop {
                break;
            }
            j = prev;
            steps += 1;
        }
        j
    };
    let keyword = (statement_start..eq).any(|k| {
        matches!(s.text_of(k), "const" | "static" | "constexpr")
            && s.kind(k) == Some(TokenKind::Ident)
    });
    if rust {
        // `let [mut] name [: T] =`, `const NAME: T =`, `static [mut] NAME: T =`.
        if let Some(k) = (statement_start..eq).find(|&k| {
            s.kind(k) == Some(TokenKind::Ident)
                && matches!(s.text_of(k), "let" | "const" | "static")
        }) {
            let mut n = k + 1;
            while matches!(s.text_of(n), "mut" | "ref") {
                n += 1;
            }
            return (s.kind(n) == Some(TokenKind::Ident) && n < eq).then_some((n, keyword));
        }
    }
    let mut prev = eq.checked_sub(1)?;
    if s.is_punct(prev, "]") {
        // `ULONG Tags[] = { … }`: the name is before the brackets.
        prev = s.matching(prev)?.checked_sub(1)?;
    }
    let name = s.text_of(prev);
    (s.kind(prev) == Some(TokenKind::Ident) && name != "operator").then_some((prev, keyword))
}

/// Does this identifier look like it names a pool tag? True when one of its words is `tag`/`tags` (words
/// split at `_`, digits and case changes: `PMEM_POOL_TAG`, `FastioTag`, `kTag`, `TAG1`) or when it ends
/// in `tag` in any case (`DRIVERTAG`). `STAGE`, `Tagged`, `Vintage` are not tag names.
pub fn is_tag_name(name: &str) -> bool {
    if name.to_ascii_lowercase().ends_with("tag") {
        return true;
    }
    split_words(name)
        .iter()
        .any(|w| w.eq_ignore_ascii_case("tag") || w.eq_ignore_ascii_case("tags"))
}

fn split_words(name: &str) -> Vec<&str> {
    let chars: Vec<(usize, char)> = name.char_indices().collect();
    let mut words = Vec::new();
    let mut start: Option<usize> = None;
    for (k, &(at, ch)) in chars.iter().enumerate() {
        if !ch.is_alphabetic() {
            if let Some(s) = start.take() {
                words.push(name.get(s..at).unwrap_or_default());
            }
            continue;
        }
        let prev = k.checked_sub(1).and_then(|p| chars.get(p)).map(|&(_, c)| c);
        let next = chars.get(k + 1).map(|&(_, c)| c);
        let boundary = match prev {
            Some(p) if p.is_lowercase() && ch.is_uppercase() => true,
            Some(p) if p.is_uppercase() && ch.is_uppercase() => {
                next.is_some_and(char::is_lowercase)
            }
            _ => false,
        };
        if boundary && let Some(s) = start.take() {
            words.push(name.get(s..at).unwrap_or_default());
        }
        if start.is_none() {
            start = Some(at);
        }
    }
    if let Some(s) = start {
        words.push(name.get(s..).unwrap_or_default());
    }
    words
}

#[cfg(test)]
mod tests {
    use super::super::c_lexer::lex_c;
    use super::super::rust_lexer::lex_rust;
    use super::*;

    #[test]
    fn tag_names() {
        for yes in [
            "PMEM_POOL_TAG",
            "FastioTag",
            "kTag",
            "TAG1",
            "DRIVERTAG",
            "tag",
            "PoolTags",
            "PMEMTag",
        ] {
            assert!(is_tag_name(yes), "{yes}");
        }
        for no in ["STAGE", "Tagged", "Vintage", "size", "POOL_TYPE"] {
            assert!(!is_tag_name(no), "{no}");
        }
    }

    #[test]
    fn brackets_match_and_survive_garbage() {
        let text = "f(a, [b], {c}) ) ] (";
        let s = Structure::new(text, lex_c(text, false));
        assert_eq!(s.matching(1), Some(11));
        let args: Vec<Vec<&str>> = s
            .call_arguments(1, 8)
            .into_iter()
            .map(|r| r.map(|i| s.text_of(i)).collect())
            .collect();
        assert_eq!(args, [vec!["a"], vec!["[", "b", "]"], vec!["{", "c", "}"]]);
        assert_eq!(s.matching(14), None);
    }

    #[test]
    fn define_in_directive_does_not_match_code() {
        let text = "#define A (\nx)";
        let s = Structure::new(text, lex_c(text, false));
        assert_eq!(s.matching(3), None);
        let d = find_defines(&s);
        assert_eq!(d.len(), 1);
        assert_eq!(d[0].name, "A");
        assert!(!d[0].function_like);
    }

    #[test]
    fn binding_names() {
        let text = "ULONG FastioTag = 0x1, b = 2; x->Tag = 3; ULONG T[] = {1,2};";
        let s = Structure::new(text, lex_c(text, false));
        let names: Vec<(String, usize)> = find_bindings(&s, false)
            .into_iter()
            .map(|b| (b.name, b.init.len()))
            .collect();
        assert_eq!(
            names,
            [
                ("FastioTag".to_string(), 1),
                ("b".to_string(), 1),
                ("Tag".to_string(), 1),
                ("T".to_string(), 5)
            ]
        );
        let text = "const RUST_TAG: u32 = u32::from_ne_bytes(*b\"rust\"); let mut t: u32 = 1;";
        let s = Structure::new(text, lex_rust(text));
        let b = find_bindings(&s, true);
        assert_eq!(b[0].name, "RUST_TAG");
        assert!(b[0].global);
        assert_eq!(b[1].name, "t");
    }
}
