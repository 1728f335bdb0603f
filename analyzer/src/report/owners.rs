//! `pooltop dump --owners`: for every tag of the `!poolused` table, the loaded modules whose code allocates it
//! (from [`crate::owners`]) next to what pooltag.txt says, with the verdict: agrees, disagrees, or fills a gap
//! pooltag.txt leaves. The WinDbg table above it is unchanged; this is a section of its own after it.

use std::fmt::Write as _;

use pooltop_pooltag::{Entry, PoolTagDb, tag_column};
use serde::Serialize;

use super::select::PoolusedTable;
use crate::owners::{Owners, TagOwner};

/// How the code's owners compare with pooltag.txt.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Verdict {
    /// A module pooltag.txt names allocates the tag.
    Agrees,
    /// Modules allocate the tag, none of them the binary pooltag.txt names.
    Disagrees,
    /// pooltag.txt has no entry (or `<unknown>` as its binary) and a module allocates the tag.
    FillsGap,
    /// No loaded module's code shows the tag.
    NotFound,
}

impl Verdict {
    /// The word shown in the text report.
    pub fn label(self) -> &'static str {
        match self {
            Verdict::Agrees => "agrees",
            Verdict::Disagrees => "DISAGREES",
            Verdict::FillsGap => "fills the gap",
            Verdict::NotFound => "not in code",
        }
    }
}

/// Kernel image names (all are "nt" in pooltag.txt's `nt!xx` binaries).
const KERNEL_STEMS: [&str; 4] = ["ntoskrnl", "ntkrnlmp", "ntkrnlpa", "ntkrpamp"];

/// A module or binary name reduced for comparison: lower case, no directory, no `!component`, no extension;
/// the kernel's file names become `nt`.
fn stem(name: &str) -> String {
    let name = name.trim().rsplit(['\\', '/']).next().unwrap_or("");
    let name = name.split('!').next().unwrap_or("");
    let lower = name.to_ascii_lowercase();
    let base = match lower.rsplit_once('.') {
        Some((base, "sys" | "exe" | "dll")) => base.to_string(),
        _ => lower,
    };
    if KERNEL_STEMS.contains(&base.as_str()) {
        "nt".to_string()
    } else {
        base
    }
}

/// The binaries a pooltag.txt entry names (`tcpip.sys, ndis.sys` is two).
fn binaries(entry: &Entry) -> Vec<String> {
    entry
        .binary
        .split([',', ';', ' ', '/'])
        .filter(|t| !t.trim().is_empty())
        .map(stem)
        .collect()
}

/// Compares the owners found in code with pooltag.txt's entry.
pub fn verdict(entry: Option<&Entry>, owners: &[TagOwner]) -> Verdict {
    if owners.is_empty() {
        return Verdict::NotFound;
    }
    let Some(entry) = entry.filter(|e| !e.binary_is_unknown() && !e.binary.trim().is_empty())
    else {
        return Verdict::FillsGap;
    };
    let named = binaries(entry);
    if owners.iter().any(|o| named.contains(&stem(&o.module))) {
        Verdict::Agrees
    } else {
        Verdict::Disagrees
    }
}

/// The owners section for the rows of `table`.
pub fn render_section(table: &PoolusedTable, db: &PoolTagDb, owners: &Owners) -> String {
    let mut out = String::from(
        "\n Owners: the loaded modules whose code allocates each tag, beside pooltag.txt\n\n",
    );
    let _ = writeln!(
        out,
        " {:<4}  {:<24}  {:<13}  Code",
        "Tag", "pooltag.txt", "Verdict"
    );
    for row in &table.rows {
        let found = owners.of(row.tag);
        let entry = db.lookup(row.tag);
        let named = entry.map_or("(none)".to_string(), |e| e.binary.clone());
        let code = if found.is_empty() {
            "-".to_string()
        } else {
            found
                .iter()
                .map(TagOwner::describe)
                .collect::<Vec<_>>()
                .join("; ")
        };
        let _ = writeln!(
            out,
            " {:<4}  {:<24}  {:<13}  {code}",
            tag_column(row.tag),
            named,
            verdict(entry, found).label()
        );
    }
    let scanned = owners.modules.iter().filter(|m| m.error.is_none()).count();
    let with_pdb = owners
        .modules
        .iter()
        .filter(|m| matches!(m.pdb, crate::owners::PdbStatus::Found { .. }))
        .count();
    let missing: u32 = owners.modules.iter().map(|m| m.missing_code_pages).sum();
    let _ = writeln!(
        out,
        "\n {} modules: {scanned} scanned ({with_pdb} with a PDB for source lines), {} not; {} of code missing from the dump",
        owners.modules.len(),
        owners.modules.len() - scanned,
        crate::owners::pages(u64::from(missing))
    );
    out
}

/// The JSON form of one tag's owners and verdict.
#[derive(Debug, Clone, Serialize)]
pub struct JsonOwners<'a> {
    /// Agreement with pooltag.txt.
    pub verdict: Verdict,
    /// The modules, best evidence first.
    pub modules: &'a [TagOwner],
}

/// The owners of `tag` for the JSON document.
pub fn json_owners<'a>(tag: [u8; 4], db: &PoolTagDb, owners: &'a Owners) -> JsonOwners<'a> {
    let found = owners.of(tag);
    JsonOwners {
        verdict: verdict(db.lookup(tag), found),
        modules: found,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stems_compare_kernel_and_driver_names() {
        assert_eq!(stem("nt!io"), "nt");
        assert_eq!(stem("ntoskrnl.exe"), "nt");
        assert_eq!(stem("NTFS.SYS"), "ntfs");
        assert_eq!(stem("\\SystemRoot\\system32\\drivers\\tcpip.sys"), "tcpip");
        assert_eq!(stem("leakydrv"), "leakydrv");
    }
}
