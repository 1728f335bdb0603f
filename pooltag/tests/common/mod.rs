//! Helpers shared by the integration tests: paths into the shared real data, and simple, independent
//! readers of the real files (plain line searches, not the crate's parser).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use pooltop_pooltag::{PoolTagDb, SourceKind};

/// `/work/shared/data` seen from this crate.
pub fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data")
}

/// The real pooltag.txt.
pub fn pooltag_path() -> PathBuf {
    data_dir().join("pooltag.txt")
}

/// The real pooltag.txt, loaded by the crate.
pub fn real_db() -> PoolTagDb {
    PoolTagDb::load(&pooltag_path(), SourceKind::PoolTagTxt).expect("real pooltag.txt loads")
}

/// The real pooltag.txt as lines (CR stripped), independent of the crate's parser.
pub fn pooltag_lines() -> Vec<String> {
    let bytes = std::fs::read(pooltag_path()).expect("read pooltag.txt");
    String::from_utf8_lossy(&bytes)
        .split('\n')
        .map(|l| l.trim_end_matches('\r').to_owned())
        .collect()
}

/// 1-based numbers of the lines of the real pooltag.txt that start with `prefix`.
pub fn lines_starting_with(prefix: &str) -> Vec<usize> {
    pooltag_lines()
        .iter()
        .enumerate()
        .filter(|(_, l)| l.starts_with(prefix))
        .map(|(i, _)| i + 1)
        .collect()
}

/// The text of 1-based line `n` of the real pooltag.txt.
pub fn pooltag_line(n: usize) -> String {
    pooltag_lines()[n - 1].clone()
}

/// Read `outputs/<file>` and return the text after the TAB on the first `!poolused` row of `tag`
/// (a line that starts with a space, the 4 tag characters and a space, and contains a TAB).
pub fn poolused_description(file: &str, tag: &str) -> String {
    let text = std::fs::read_to_string(data_dir().join("outputs").join(file)).expect("read output");
    let prefix = format!(" {tag} ");
    let line = text
        .lines()
        .find(|l| l.starts_with(&prefix) && l.contains('\t'))
        .unwrap_or_else(|| panic!("no row for {tag:?} in {file}"));
    line.split_once('\t').expect("has a TAB").1.to_owned()
}
