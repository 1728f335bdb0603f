//! One file: which tag candidates are tags, in which context, and the names that connect them to
//! allocation calls elsewhere.
//!
//! A **tag context** is one of:
//! - the tag argument of a call of a tagged pool function ([`super::TAGGED_POOL_FUNCTIONS`]), possibly
//!   inside casts or other expressions (`(ULONG)'ThpK'`, `TAG | 1`);
//! - the body of a `#define` or the initializer of a binding whose name looks like a tag name
//!   ([`is_tag_name`]: `PMEM_POOL_TAG`, `FastioTag`), when the literal is the only literal there — for
//!   a hex value only when its 4 bytes are printable ASCII (`0x4d454d50` "PMEM" yes;
//!   `STATUS_IO_REPARSE_TAG_INVALID 0xC0000276` or `ASN1_TAG_SET 0x11` no).
//!
//! Four-character constants and `from_*_bytes` calls are tags anywhere. Hex integers, 2–3 character
//! constants and 4-byte byte strings are tags in a tag context; when they are the only literal of a
//! `#define` or binding with another name they are kept aside ("latent") and become tags if that name is
//! used as an allocator's tag argument (see [`super::link`]). One-character constants are tags only as a
//! tag argument.

use std::ops::Range;

use super::alloc_calls::{AllocCall, find_alloc_calls};
use super::c_lexer::lex_c;
use super::lexer::TokenKind;
use super::rust_lexer::lex_rust;
use super::structure::{Binding, Define, Structure, find_bindings, find_defines, is_tag_name};
use super::{AllocationSite, Language, SourceTag, TagKind, c_rules, rust_rules};

/// Most identifiers of one tag argument recorded as uses (`(ULONG)(BASE_TAG | FLAG)` has three).
const MAX_USES_PER_ARGUMENT: usize = 16;

/// Longest literal text kept in [`SourceTag::literal`], in characters.
const MAX_LITERAL_CHARS: usize = 120;

/// How a candidate is written, which decides where it counts as a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Form {
    /// A 4-character C constant.
    MultiChar4,
    /// A 2- or 3-character C constant.
    ShortMultiChar,
    /// A 1-character C constant or a Rust `char`/byte literal.
    SingleChar,
    /// A hex integer.
    Hex,
    /// `u32::from_le_bytes(…)` and friends.
    RustFromBytes,
    /// A 4-byte Rust byte string.
    ByteString,
}

/// A literal that may be a tag.
#[derive(Debug, Clone)]
pub(crate) struct Candidate {
    /// Token whose position is reported.
    pub(crate) token: usize,
    /// Tokens of the literal as written.
    pub(crate) span: Range<usize>,
    /// The tag bytes in memory order.
    pub(crate) tag: [u8; 4],
    pub(crate) form: Form,
}

impl Candidate {
    /// A candidate that is one token.
    pub(crate) fn single(token: usize, tag: [u8; 4], form: Form) -> Self {
        Candidate {
            token,
            span: token..token + 1,
            tag,
            form,
        }
    }
}

/// A name that can be used as a tag argument: a `#define` or a binding.
#[derive(Debug, Clone)]
pub(crate) struct Def {
    pub(crate) name: String,
    /// Token index of the name (for "nearest preceding" in the same file).
    pub(crate) token: usize,
    /// `#define`, `const`, `static`, or declared outside any braces: usable from other files.
    pub(crate) global: bool,
    /// Top-level block (function body) of the name; a non-global definition is seen only from there.
    pub(crate) block: usize,
    pub(crate) value: DefValue,
}

/// What a [`Def`] stands for.
#[derive(Debug, Clone)]
pub(crate) enum DefValue {
    /// Tags already reported (indexes into [`FileAnalysis::tags`]).
    Tags(Vec<usize>),
    /// A tag that counts only if the name feeds an allocator (index into [`FileAnalysis::latent`]).
    Latent(usize),
    /// Another name (`#define POOL_TAG KPH_TAG`, `let t = RUST_TAG;`).
    Alias(String),
    /// Nothing tag-like.
    Nothing,
}

/// A name used as an allocator's tag argument.
#[derive(Debug, Clone)]
pub(crate) struct Use {
    pub(crate) name: String,
    pub(crate) token: usize,
    /// Top-level block (function body) of the use.
    pub(crate) block: usize,
    pub(crate) site: AllocationSite,
}

/// Everything one file contributes.
#[derive(Debug, Clone, Default)]
pub(crate) struct FileAnalysis {
    pub(crate) tags: Vec<SourceTag>,
    pub(crate) latent: Vec<SourceTag>,
    pub(crate) defs: Vec<Def>,
    pub(crate) uses: Vec<Use>,
}

/// Where a candidate sits.
#[derive(Debug, Clone, Copy, Default)]
struct Context {
    define: Option<usize>,
    binding: Option<usize>,
    call: Option<usize>,
}

/// What becomes of a candidate.
enum Verdict {
    Tag,
    Latent,
    Nothing,
}

/// Analyse one file's text.
pub(crate) fn analyze(file: &str, language: Language, text: &str) -> FileAnalysis {
    let tokens = match language {
        Language::C => lex_c(text, false),
        Language::Cpp => lex_c(text, true),
        Language::Rust => lex_rust(text),
    };
    let s = Structure::new(text, tokens);
    let rust = language == Language::Rust;
    let defines = if rust { Vec::new() } else { find_defines(&s) };
    let bindings = find_bindings(&s, rust);
    let calls = find_alloc_calls(&s);
    let candidates = if rust {
        rust_rules::candidates(&s)
    } else {
        c_rules::candidates(&s)
    };

    let contexts = assign_contexts(&candidates, &defines, &bindings, &calls);
    let site_of = |call: &AllocCall| {
        let t = s.token(call.name_token);
        AllocationSite {
            function: call.function,
            file: file.to_string(),
            line: t.map_or(0, |t| t.line),
            column: t.map_or(0, |t| t.col),
        }
    };

    let mut out = FileAnalysis::default();
    // Per define / binding: reported tags and latent tags it names.
    let mut define_tags: Vec<Vec<usize>> = vec![Vec::new(); defines.len()];
    let mut define_latent: Vec<Option<usize>> = vec![None; defines.len()];
    let mut binding_tags: Vec<Vec<usize>> = vec![Vec::new(); bindings.len()];
    let mut binding_latent: Vec<Option<usize>> = vec![None; bindings.len()];

    for (candidate, ctx) in candidates.iter().zip(&contexts) {
        let call = ctx.call.and_then(|c| calls.get(c));
        let define = ctx.define.and_then(|d| defines.get(d));
        // The binding names the literal only when it is inside the binding, not inside a call that is
        // itself inside the binding (`p = ExAllocatePoolWithTag(…, 'ThpK')` does not name the tag `p`).
        let binding_index = ctx.binding.filter(|&b| match (bindings.get(b), call) {
            (Some(binding), Some(call)) => binding.init.start > call.name_token,
            _ => true,
        });
        let binding = binding_index.and_then(|b| bindings.get(b));
        let naming_range = binding
            .map(|b| b.init.clone())
            .or_else(|| define.map(|d| d.body.clone()));
        let naming_name = binding
            .map(|b| b.name.as_str())
            .or_else(|| define.map(|d| d.name.as_str()));
        let sole = naming_range.as_ref().is_some_and(|r| s.literals_in(r) == 1);
        let named_tag = naming_name.is_some_and(is_tag_name);
        let in_call = call.is_some();

        let verdict = match candidate.form {
            Form::MultiChar4 | Form::RustFromBytes => Verdict::Tag,
            Form::SingleChar if in_call => Verdict::Tag,
            Form::SingleChar => Verdict::Nothing,
            Form::ShortMultiChar | Form::Hex | Form::ByteString => {
                // A hex value named like a tag must also spell 4 printable characters to count on its
                // own (`STATUS_IO_REPARSE_TAG_INVALID 0xC0000276`, `ASN1_TAG_SET 0x11` are no pool
                // tags); any other value needs an allocator call as evidence.
                let spelled = candidate.form != Form::Hex || is_printable_tag(candidate.tag);
                if in_call || (named_tag && sole && spelled) {
                    Verdict::Tag
                } else if sole && naming_range.is_some() && !define.is_some_and(|d| d.function_like)
                {
                    Verdict::Latent
                } else {
                    Verdict::Nothing
                }
            }
        };
        if matches!(verdict, Verdict::Nothing) {
            continue;
        }

        let kind = if define.is_some() {
            TagKind::Define
        } else {
            match candidate.form {
                Form::MultiChar4 | Form::ShortMultiChar => TagKind::MultiCharConstant,
                Form::SingleChar => TagKind::CharConstant,
                Form::Hex => TagKind::HexConstant,
                Form::RustFromBytes | Form::ByteString => TagKind::RustBytes,
            }
        };
        // A define names everything in its body (the macro's name is the useful label even for an
        // allocation written inside the macro); a binding only what it directly holds.
        let name = define
            .map(|d| d.name.clone())
            .or_else(|| binding.map(|b| b.name.clone()));
        let token = s.token(candidate.token);
        let tag = SourceTag {
            tag: candidate.tag,
            file: file.to_string(),
            line: token.map_or(0, |t| t.line),
            column: token.map_or(0, |t| t.col),
            literal: literal_text(&s, &candidate.span),
            kind,
            name,
            calls: call.map(site_of).into_iter().collect(),
        };
        match verdict {
            Verdict::Tag => {
                let index = out.tags.len();
                out.tags.push(tag);
                if let Some(b) = binding_index
                    && let Some(list) = binding_tags.get_mut(b)
                {
                    list.push(index);
                } else if let Some(d) = ctx.define
                    && let Some(list) = define_tags.get_mut(d)
                {
                    list.push(index);
                }
            }
            Verdict::Latent => {
                let index = out.latent.len();
                out.latent.push(tag);
                if let Some(b) = binding_index
                    && let Some(slot) = binding_latent.get_mut(b)
                {
                    *slot = Some(index);
                } else if let Some(d) = ctx.define
                    && let Some(slot) = define_latent.get_mut(d)
                {
                    *slot = Some(index);
                }
            }
            Verdict::Nothing => {}
        }
    }

    for (d, define) in defines.iter().enumerate() {
        if define.function_like {
            continue;
        }
        let value = def_value(
            &s,
            &define.body,
            define_tags.get(d).cloned().unwrap_or_default(),
            define_latent.get(d).copied().flatten(),
        );
        out.defs.push(Def {
            name: define.name.clone(),
            token: define.name_token,
            global: true,
            block: s.top_level_block(define.name_token),
            value,
        });
    }
    for (b, binding) in bindings.iter().enumerate() {
        let value = def_value(
            &s,
            &binding.init,
            binding_tags.get(b).cloned().unwrap_or_default(),
            binding_latent.get(b).copied().flatten(),
        );
        out.defs.push(Def {
            name: binding.name.clone(),
            token: binding.name_token,
            global: binding.global,
            block: s.top_level_block(binding.name_token),
            value,
        });
    }
    for call in &calls {
        let site = site_of(call);
        let names = call
            .tag_argument
            .clone()
            .filter(|&i| s.kind(i) == Some(TokenKind::Ident) && !s.is_punct(i + 1, "("))
            .take(MAX_USES_PER_ARGUMENT);
        for i in names {
            out.uses.push(Use {
                name: s.text_of(i).to_string(),
                token: i,
                block: s.top_level_block(i),
                site: site.clone(),
            });
        }
    }
    // A definition with no tag value matters only where it can shadow a use in this same file; drop the
    // others so that a large tree does not keep every `x = …` of every file in memory.
    let used: std::collections::HashSet<&str> = out.uses.iter().map(|u| u.name.as_str()).collect();
    let keep: Vec<bool> = out
        .defs
        .iter()
        .map(|d| !matches!(d.value, DefValue::Nothing) || used.contains(d.name.as_str()))
        .collect();
    let mut keep = keep.into_iter();
    out.defs.retain(|_| keep.next().unwrap_or(true));
    out
}

/// All 4 bytes printable ASCII (0x20–0x7E).
fn is_printable_tag(tag: [u8; 4]) -> bool {
    tag.iter().all(|b| (0x20..=0x7E).contains(b))
}

/// For each candidate (sorted by token), the innermost define, binding and call that contain it.
fn assign_contexts(
    candidates: &[Candidate],
    defines: &[Define],
    bindings: &[Binding],
    calls: &[AllocCall],
) -> Vec<Context> {
    let mut contexts = vec![Context::default(); candidates.len()];
    let positions: Vec<usize> = candidates.iter().map(|c| c.token).collect();
    let in_range = |range: &Range<usize>| {
        let from = positions.partition_point(|&p| p < range.start);
        let to = positions.partition_point(|&p| p < range.end);
        from..to
    };
    // Ranges are visited in order of their start, so an inner (later-starting) range overwrites.
    for (d, define) in defines.iter().enumerate() {
        for k in in_range(&define.body) {
            if let Some(c) = contexts.get_mut(k) {
                c.define = Some(d);
            }
        }
    }
    let mut by_start: Vec<usize> = (0..bindings.len()).collect();
    by_start.sort_by_key(|&b| bindings.get(b).map_or(0, |x| x.init.start));
    for b in by_start {
        let Some(binding) = bindings.get(b) else {
            continue;
        };
        for k in in_range(&binding.init) {
            if let Some(c) = contexts.get_mut(k) {
                c.binding = Some(b);
            }
        }
    }
    for (n, call) in calls.iter().enumerate() {
        for k in in_range(&call.tag_argument) {
            if let Some(c) = contexts.get_mut(k) {
                c.call = Some(n);
            }
        }
    }
    contexts
}

/// The value of a define body or binding initializer.
fn def_value(
    s: &Structure<'_>,
    range: &Range<usize>,
    tags: Vec<usize>,
    latent: Option<usize>,
) -> DefValue {
    if !tags.is_empty() {
        return DefValue::Tags(tags);
    }
    if let Some(l) = latent {
        return DefValue::Latent(l);
    }
    alias_target(s, range).map_or(DefValue::Nothing, |name| DefValue::Alias(name.to_string()))
}

/// Longest initializer that can be an alias (`((ULONG)BASE_TAG)`, `crate::tags::RUST_TAG as u32`).
const MAX_ALIAS_TOKENS: usize = 12;

/// When the range is just a name (maybe in parentheses, with a cast before it or `as T` after it), that
/// name.
fn alias_target<'a>(s: &Structure<'a>, range: &Range<usize>) -> Option<&'a str> {
    if range.is_empty() || range.len() > MAX_ALIAS_TOKENS {
        return None;
    }
    let mut last_ident = None;
    for i in range.clone() {
        match s.kind(i) {
            Some(TokenKind::Ident) if s.text_of(i) == "as" => break,
            Some(TokenKind::Ident) => last_ident = Some(i),
            Some(TokenKind::Punct) if matches!(s.text_of(i), "(" | ")" | "::") => {}
            _ => return None,
        }
    }
    last_ident.map(|i| s.text_of(i))
}

/// The literal as written, whitespace runs collapsed to one space, at most [`MAX_LITERAL_CHARS`].
fn literal_text(s: &Structure<'_>, span: &Range<usize>) -> String {
    let (Some(first), Some(last)) = (
        s.token(span.start),
        span.end.checked_sub(1).and_then(|e| s.token(e)),
    ) else {
        return String::new();
    };
    let raw = s
        .text
        .get(first.start as usize..last.end as usize)
        .unwrap_or_default();
    let mut out = String::new();
    let mut chars = 0;
    let mut pending_space = false;
    for ch in raw.chars() {
        if ch.is_whitespace() {
            pending_space = !out.is_empty();
            continue;
        }
        if chars >= MAX_LITERAL_CHARS {
            out.push('…');
            break;
        }
        if pending_space {
            out.push(' ');
            pending_space = false;
        }
        out.push(ch);
        chars += 1;
    }
    out
}
