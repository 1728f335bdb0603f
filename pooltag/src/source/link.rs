//! Connect names used as an allocator's tag argument to the `#define`s and bindings that give them a
//! value, within a file and across files.
//!
//! A use of `NAME` at some point of a file resolves to:
//! 1. the nearest definition of `NAME` before it in the same file — a local variable only when it is in
//!    the same function body (top-level `{…}` block) as the use; when that one is global (a `#define`,
//!    `const`/`static`, or at file level), every global definition of `NAME` before the use in that file
//!    (the branches of an `#ifdef`);
//! 2. otherwise every global definition of `NAME` in any scanned file (headers; Rust items, which may
//!    follow their use).
//!
//! Aliases (`#define POOL_TAG KPH_TAG`) are followed up to [`MAX_ALIAS_DEPTH`] steps, each resolved from
//! the alias's own position. Matching is by name only: the scanner does not know scopes, includes or
//! `#if` conditions, so a name defined differently in two unrelated places links to both.

use std::collections::{HashMap, HashSet};

use super::SourceTag;
use super::analysis::{Def, DefValue, FileAnalysis};

/// Most alias steps followed from one use.
const MAX_ALIAS_DEPTH: usize = 8;

/// A definition: (file index, index into that file's defs).
type DefRef = (usize, usize);

/// What a resolved name points at.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Target {
    Tag(usize, usize),
    Latent(usize, usize),
}

/// Link every use to its definitions, promote latent tags that feed an allocator, and return all tags
/// sorted by file, line and column, each with its allocation sites sorted and deduplicated.
pub(crate) fn link(mut files: Vec<FileAnalysis>) -> Vec<SourceTag> {
    let mut by_name: Vec<HashMap<&str, Vec<usize>>> = Vec::with_capacity(files.len());
    let mut globals: HashMap<&str, Vec<DefRef>> = HashMap::new();
    for (f, file) in files.iter().enumerate() {
        let mut names: HashMap<&str, Vec<usize>> = HashMap::new();
        for (d, def) in file.defs.iter().enumerate() {
            names.entry(def.name.as_str()).or_default().push(d);
            if def.global {
                globals.entry(def.name.as_str()).or_default().push((f, d));
            }
        }
        by_name.push(names);
    }
    let resolver = Resolver {
        files: &files,
        by_name: &by_name,
        globals: &globals,
    };

    let mut actions = Vec::new();
    for (f, file) in files.iter().enumerate() {
        for u in &file.uses {
            let mut targets = HashSet::new();
            let mut seen = HashSet::new();
            let at = Position {
                file: f,
                token: u.token,
                block: u.block,
            };
            resolver.resolve(at, &u.name, 0, &mut seen, &mut targets);
            let mut targets: Vec<Target> = targets.into_iter().collect();
            targets.sort_by_key(|t| match *t {
                Target::Tag(f, i) => (f, 0, i),
                Target::Latent(f, i) => (f, 1, i),
            });
            for target in targets {
                actions.push((target, u.site.clone()));
            }
        }
    }

    let mut promoted: HashMap<(usize, usize), usize> = HashMap::new();
    for (target, site) in actions {
        let (f, tag_index) = match target {
            Target::Tag(f, i) => (f, i),
            Target::Latent(f, l) => {
                let Some(file) = files.get_mut(f) else {
                    continue;
                };
                let index = match promoted.get(&(f, l)) {
                    Some(&index) => index,
                    None => {
                        let Some(tag) = file.latent.get(l).cloned() else {
                            continue;
                        };
                        file.tags.push(tag);
                        let index = file.tags.len() - 1;
                        promoted.insert((f, l), index);
                        index
                    }
                };
                (f, index)
            }
        };
        if let Some(tag) = files
            .get_mut(f)
            .and_then(|file| file.tags.get_mut(tag_index))
        {
            tag.calls.push(site);
        }
    }

    let mut tags: Vec<SourceTag> = files.into_iter().flat_map(|f| f.tags).collect();
    for tag in &mut tags {
        tag.calls.sort_by(|a, b| {
            (&a.file, a.line, a.column, a.function).cmp(&(&b.file, b.line, b.column, b.function))
        });
        tag.calls.dedup();
    }
    tags.sort_by(|a, b| (&a.file, a.line, a.column).cmp(&(&b.file, b.line, b.column)));
    tags
}

/// Where a name is used (or where an alias is defined).
#[derive(Debug, Clone, Copy)]
struct Position {
    file: usize,
    token: usize,
    block: usize,
}

struct Resolver<'a> {
    files: &'a [FileAnalysis],
    by_name: &'a [HashMap<&'a str, Vec<usize>>],
    globals: &'a HashMap<&'a str, Vec<DefRef>>,
}

impl Resolver<'_> {
    fn resolve(
        &self,
        at: Position,
        name: &str,
        depth: usize,
        seen: &mut HashSet<DefRef>,
        out: &mut HashSet<Target>,
    ) {
        for def_ref in self.definitions(at, name) {
            if !seen.insert(def_ref) {
                continue;
            }
            let (f, d) = def_ref;
            let Some(def) = self.files.get(f).and_then(|x| x.defs.get(d)) else {
                continue;
            };
            match &def.value {
                DefValue::Tags(list) => out.extend(list.iter().map(|&i| Target::Tag(f, i))),
                DefValue::Latent(l) => {
                    out.insert(Target::Latent(f, *l));
                }
                DefValue::Alias(target) if depth < MAX_ALIAS_DEPTH => {
                    let from = Position {
                        file: f,
                        token: def.token,
                        block: def.block,
                    };
                    self.resolve(from, target, depth + 1, seen, out);
                }
                DefValue::Alias(_) | DefValue::Nothing => {}
            }
        }
    }

    /// The definitions a use of `name` at `at` refers to (rules in the module docs).
    fn definitions(&self, at: Position, name: &str) -> Vec<DefRef> {
        let file = at.file;
        let defs = self
            .files
            .get(file)
            .map(|f| f.defs.as_slice())
            .unwrap_or_default();
        let visible = |def: &Def| def.token < at.token && (def.global || def.block == at.block);
        let local: Vec<usize> = self
            .by_name
            .get(file)
            .and_then(|m| m.get(name))
            .map(|list| {
                list.iter()
                    .copied()
                    .filter(|&d| defs.get(d).is_some_and(visible))
                    .collect()
            })
            .unwrap_or_default();
        let nearest = local
            .iter()
            .copied()
            .max_by_key(|&d| defs.get(d).map_or(0, |def| def.token));
        match nearest {
            Some(n) if defs.get(n).is_some_and(|def| !def.global) => vec![(file, n)],
            Some(_) => local
                .into_iter()
                .filter(|&d| defs.get(d).is_some_and(|def| def.global))
                .map(|d| (file, d))
                .collect(),
            None => self.globals.get(name).cloned().unwrap_or_default(),
        }
    }
}
