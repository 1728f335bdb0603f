//! Finding the source files under a root and reading them as text, within bounds.

use std::io::Read;
use std::path::{Path, PathBuf};

use super::{Language, SourceError, SourceProblem, SourceScanOptions, SourceWarning};

/// Folder names [`SourceScanOptions::default`] never enters: version control, IDE state, Cargo and other
/// build output.
pub const DEFAULT_SKIP_DIR_NAMES: &[&str] = &[
    ".git",
    ".hg",
    ".svn",
    ".vs",
    "target",
    "node_modules",
    "build",
    "out",
    "obj",
    "bin",
];

/// WDK build-output folder prefixes (`objfre_win7_amd64`, `objchk_wxp_x86`), always skipped.
const WDK_OUTPUT_PREFIXES: [&str; 2] = ["objfre", "objchk"];

/// A source file to scan.
#[derive(Debug, Clone)]
pub(crate) struct SourceFile {
    pub(crate) path: PathBuf,
    /// Path relative to the root, `/`-separated (the file name when the root is the file).
    pub(crate) display: String,
    pub(crate) language: Language,
}

/// One step of the walk, in order.
#[derive(Debug, Clone)]
pub(crate) enum WalkItem {
    File(SourceFile),
    Warning(SourceWarning),
}

/// Every source file under `root` (sorted by name within each folder, a folder's files before its
/// subfolders) interleaved with warnings about what was not entered.
pub(crate) fn walk(root: &Path, options: &SourceScanOptions) -> Result<Vec<WalkItem>, SourceError> {
    let meta = std::fs::metadata(root).map_err(|source| SourceError::Root {
        path: root.to_path_buf(),
        source,
    })?;
    if !meta.is_dir() {
        let language = Language::from_path(root).ok_or_else(|| SourceError::NotSource {
            path: root.to_path_buf(),
        })?;
        let display = root.file_name().map_or_else(
            || root.to_string_lossy().into_owned(),
            |n| n.to_string_lossy().into_owned(),
        );
        return Ok(vec![WalkItem::File(SourceFile {
            path: root.to_path_buf(),
            display,
            language,
        })]);
    }
    // Check the root is listable now, so that an unreadable root is an error rather than a warning.
    std::fs::read_dir(root).map_err(|source| SourceError::Root {
        path: root.to_path_buf(),
        source,
    })?;

    let mut items = Vec::new();
    let mut files = 0usize;
    let mut stack: Vec<(PathBuf, usize)> = vec![(root.to_path_buf(), 0)];
    while let Some((dir, depth)) = stack.pop() {
        let entries = match list_sorted(&dir) {
            Ok(entries) => entries,
            Err(e) => {
                items.push(warning(&dir, SourceProblem::UnreadableDir(e.to_string())));
                continue;
            }
        };
        let mut subdirs = Vec::new();
        for (path, file_type) in entries {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            if file_type.is_symlink() {
                if file_type_is_source_or_dir(&path) {
                    items.push(warning(&path, SourceProblem::Symlink));
                }
            } else if file_type.is_dir() {
                if skip_dir(&name, options) {
                    continue;
                }
                if depth + 1 > options.max_depth {
                    items.push(warning(&path, SourceProblem::TooDeep(options.max_depth)));
                } else {
                    subdirs.push(path);
                }
            } else if let Some(language) = Language::from_path(&path) {
                if files >= options.max_files {
                    items.push(warning(&path, SourceProblem::FileLimit(options.max_files)));
                    return Ok(items);
                }
                files += 1;
                items.push(WalkItem::File(SourceFile {
                    display: relative_display(root, &path),
                    path,
                    language,
                }));
            }
        }
        for sub in subdirs.into_iter().rev() {
            stack.push((sub, depth + 1));
        }
    }
    Ok(items)
}

fn warning(path: &Path, problem: SourceProblem) -> WalkItem {
    WalkItem::Warning(SourceWarning {
        path: path.to_path_buf(),
        problem,
    })
}

/// A symbolic link is worth a warning only when it points at a folder or has a source extension.
fn file_type_is_source_or_dir(path: &Path) -> bool {
    Language::from_path(path).is_some() || std::fs::metadata(path).is_ok_and(|m| m.is_dir())
}

fn list_sorted(dir: &Path) -> std::io::Result<Vec<(PathBuf, std::fs::FileType)>> {
    let mut entries = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        entries.push((entry.path(), entry.file_type()?));
    }
    entries.sort_by(|a, b| a.0.cmp(&b.0));
    Ok(entries)
}

fn skip_dir(name: &str, options: &SourceScanOptions) -> bool {
    let lower = name.to_ascii_lowercase();
    options
        .skip_dir_names
        .iter()
        .any(|s| s.eq_ignore_ascii_case(name))
        || WDK_OUTPUT_PREFIXES.iter().any(|p| lower.starts_with(p))
}

fn relative_display(root: &Path, path: &Path) -> String {
    let rel = path.strip_prefix(root).unwrap_or(path);
    rel.components()
        .map(|c| c.as_os_str().to_string_lossy())
        .collect::<Vec<_>>()
        .join("/")
}

/// Read a source file as text: at most `max_bytes`, UTF-8 (a BOM is dropped) or UTF-16 with a BOM;
/// anything else lossily. Returns the text and a problem to report when it was read lossily, or the
/// problem that kept it from being read.
pub(crate) fn read_source(
    path: &Path,
    max_bytes: u64,
) -> Result<(String, Option<SourceProblem>), SourceProblem> {
    let unreadable = |e: std::io::Error| SourceProblem::UnreadableFile(e.to_string());
    let file = std::fs::File::open(path).map_err(unreadable)?;
    let size = file.metadata().map_err(unreadable)?.len();
    if size > max_bytes {
        return Err(SourceProblem::TooLarge {
            size,
            limit: max_bytes,
        });
    }
    let mut bytes = Vec::new();
    file.take(max_bytes.saturating_add(1))
        .read_to_end(&mut bytes)
        .map_err(unreadable)?;
    let read = bytes.len() as u64;
    if read > max_bytes {
        return Err(SourceProblem::TooLarge {
            size: read,
            limit: max_bytes,
        });
    }
    Ok(decode_text(&bytes))
}

/// Bytes to text: UTF-8 (BOM dropped), UTF-16 LE/BE with a BOM, else lossy UTF-8 with [`SourceProblem::NotUtf8`].
pub(crate) fn decode_text(bytes: &[u8]) -> (String, Option<SourceProblem>) {
    if let Some(rest) = bytes.strip_prefix(b"\xEF\xBB\xBF") {
        return utf8(rest);
    }
    let utf16 = match bytes {
        [0xFF, 0xFE, rest @ ..] => Some((rest, false)),
        [0xFE, 0xFF, rest @ ..] => Some((rest, true)),
        _ => None,
    };
    if let Some((rest, big_endian)) = utf16 {
        let units = rest.chunks(2).map(|pair| match (pair, big_endian) {
            ([a, b], false) => u16::from_le_bytes([*a, *b]),
            ([a, b], true) => u16::from_be_bytes([*a, *b]),
            _ => 0xFFFD,
        });
        let mut lossy = rest.len() % 2 != 0;
        let text: String = char::decode_utf16(units)
            .map(|r| {
                r.unwrap_or_else(|_| {
                    lossy = true;
                    char::REPLACEMENT_CHARACTER
                })
            })
            .collect();
        return (text, lossy.then_some(SourceProblem::NotUtf8));
    }
    utf8(bytes)
}

fn utf8(bytes: &[u8]) -> (String, Option<SourceProblem>) {
    match std::str::from_utf8(bytes) {
        Ok(text) => (text.to_string(), None),
        Err(_) => (
            String::from_utf8_lossy(bytes).into_owned(),
            Some(SourceProblem::NotUtf8),
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decodes_boms_and_lossy() {
        assert_eq!(decode_text(b"\xEF\xBB\xBFab"), ("ab".to_string(), None));
        assert_eq!(decode_text(b"\xFF\xFEa\0b\0"), ("ab".to_string(), None));
        assert_eq!(decode_text(b"\xFE\xFF\0a\0b"), ("ab".to_string(), None));
        assert_eq!(
            decode_text(b"a\xFFb"),
            ("a\u{FFFD}b".to_string(), Some(SourceProblem::NotUtf8))
        );
    }
}
