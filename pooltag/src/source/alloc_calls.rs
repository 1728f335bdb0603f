//! Calls of tagged pool allocators (and their tagged frees) in source, and which argument is the tag.

use std::ops::Range;

use super::lexer::TokenKind;
use super::structure::Structure;

/// Functions that take a pool tag, with the 0-based index of the tag argument (from the WDK prototypes).
pub const TAGGED_POOL_FUNCTIONS: &[(&str, usize)] = &[
    ("ExAllocatePoolWithTag", 2),
    ("ExAllocatePoolWithQuotaTag", 2),
    ("ExAllocatePoolWithTagPriority", 2),
    ("ExAllocatePool2", 2),
    ("ExAllocatePool3", 2),
    ("ExAllocatePoolZero", 2),
    ("ExAllocatePoolQuotaZero", 2),
    ("ExAllocatePoolPriorityZero", 2),
    ("ExAllocatePoolUninitialized", 2),
    ("ExAllocatePoolQuotaUninitialized", 2),
    ("ExAllocatePoolPriorityUninitialized", 2),
    ("ExFreePoolWithTag", 1),
    ("ExFreePool2", 1),
    ("ExInitializeNPagedLookasideList", 5),
    ("ExInitializePagedLookasideList", 5),
    ("ExInitializeLookasideListEx", 6),
    ("ExAllocateCacheAwareRundownProtection", 1),
    ("NdisAllocateMemoryWithTag", 2),
    ("NdisAllocateMemoryWithTagPriority", 2),
    ("NdisFreeMemoryWithTag", 1),
    ("NdisFreeMemoryWithTagPriority", 2),
    ("FltAllocatePoolAlignedWithTag", 3),
    ("FltFreePoolAlignedWithTag", 2),
    ("FsRtlAllocatePoolWithTag", 2),
    ("FsRtlAllocatePoolWithQuotaTag", 2),
    ("VideoPortAllocatePool", 3),
    ("StorPortAllocatePool", 2),
    ("WdfMemoryCreate", 2),
    ("WdfLookasideListCreate", 4),
];

/// The tag-argument index of a tagged pool function, by name.
pub(crate) fn tag_argument_index(name: &str) -> Option<(&'static str, usize)> {
    TAGGED_POOL_FUNCTIONS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|&(n, i)| (n, i))
}

/// Identifiers that may stand right before a call (so the call is not a declaration).
const CALL_PREFIX_WORDS: [&str; 10] = [
    "return",
    "else",
    "case",
    "do",
    "unsafe",
    "in",
    "move",
    "co_return",
    "yield",
    "await",
];

/// One call of a tagged pool function.
#[derive(Debug, Clone)]
pub(crate) struct AllocCall {
    /// The function's name (from [`TAGGED_POOL_FUNCTIONS`]).
    pub(crate) function: &'static str,
    /// Token index of the function name.
    pub(crate) name_token: usize,
    /// Tokens of the tag argument.
    pub(crate) tag_argument: Range<usize>,
}

/// Every call of a tagged pool function whose tag argument is present. Declarations
/// (`PVOID ExAllocatePoolWithTag(POOL_TYPE, SIZE_T, ULONG);`, `fn ExAllocatePool2(…)`, a `#define` of the
/// name) are not calls: a call's name follows punctuation or one of a few keywords, never a type name.
pub(crate) fn find_alloc_calls(s: &Structure<'_>) -> Vec<AllocCall> {
    let mut out = Vec::new();
    for i in 0..s.len() {
        if s.kind(i) != Some(TokenKind::Ident) || !s.is_punct(i + 1, "(") {
            continue;
        }
        let Some((function, tag_index)) = tag_argument_index(s.text_of(i)) else {
            continue;
        };
        if i > 0 && is_declaration_prefix(s, i - 1) {
            continue;
        }
        let args = s.call_arguments(i + 1, tag_index + 1);
        if let Some(tag_argument) = args.get(tag_index) {
            out.push(AllocCall {
                function,
                name_token: i,
                tag_argument: tag_argument.clone(),
            });
        }
    }
    out
}

fn is_declaration_prefix(s: &Structure<'_>, prev: usize) -> bool {
    match s.kind(prev) {
        Some(TokenKind::Ident) => !CALL_PREFIX_WORDS.contains(&s.text_of(prev)),
        Some(TokenKind::Punct) => s.text_of(prev) == "*",
        _ => false,
    }
}

#[cfg(test)]
mod tests {
    use super::super::c_lexer::lex_c;
    use super::*;

    #[test]
    fn calls_not_declarations() {
        let text = "PVOID ExAllocatePoolWithTag(POOL_TYPE t, SIZE_T n, ULONG Tag);\n\
                    p = ExAllocatePoolWithTag(NonPagedPool, f(a, b), 'ThpK');\n\
                    ExFreePoolWithTag(p, TAG);\n\
                    ExAllocatePoolWithTag(NonPagedPool);";
        let s = Structure::new(text, lex_c(text, false));
        let calls = find_alloc_calls(&s);
        let found: Vec<(&str, Vec<&str>)> = calls
            .iter()
            .map(|c| {
                (
                    c.function,
                    c.tag_argument.clone().map(|i| s.text_of(i)).collect(),
                )
            })
            .collect();
        assert_eq!(
            found,
            [
                ("ExAllocatePoolWithTag", vec!["'ThpK'"]),
                ("ExFreePoolWithTag", vec!["TAG"])
            ]
        );
    }
}
