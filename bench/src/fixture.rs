//! The benchmark inputs: a sparse kernel bitmap dump of the demo system with every physical page present, its
//! symbol store and the demo pooltag file.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use pooltop_synth::dump::{DumpFormat, HEADER_SIZE, PAGE_SIZE, PagePresence};
use pooltop_synth::scenario::demo::{DEMO_POOLTAG, demo_scenario};

use crate::error::{BenchError, Result};
use crate::sizes::DumpSize;

/// Slack kept free on the target filesystem on top of the estimated disk use.
pub const DISK_MARGIN: u64 = 256 << 20;

/// Symbol store and pooltag file shared by every dump.
#[derive(Debug, Clone)]
pub struct SupportFiles {
    /// The symbol store folder (pass as `srv*DIR`).
    pub symbols: PathBuf,
    /// The demo pooltag.txt.
    pub pooltag: PathBuf,
}

impl SupportFiles {
    /// Writes the demo kernel's symbol store to `dir/symbols` and the demo pooltag file to `dir/pooltag.txt`.
    pub fn write(dir: &Path) -> Result<Self> {
        let symbols = dir.join("symbols");
        demo_scenario()
            .kernel
            .write_symbol_store(&symbols)
            .map_err(|e| BenchError::io("writing the symbol store", &symbols, e))?;
        let pooltag = dir.join("pooltag.txt");
        std::fs::write(&pooltag, DEMO_POOLTAG)
            .map_err(|e| BenchError::io("writing the pooltag file", &pooltag, e))?;
        Ok(Self { symbols, pooltag })
    }

    /// The `--symbol-path` value.
    pub fn symbol_path(&self) -> String {
        format!("srv*{}", self.symbols.display())
    }

    /// Deletes both.
    pub fn remove(&self) -> Result<()> {
        std::fs::remove_dir_all(&self.symbols)
            .map_err(|e| BenchError::io("deleting", &self.symbols, e))?;
        std::fs::remove_file(&self.pooltag)
            .map_err(|e| BenchError::io("deleting", &self.pooltag, e))
    }
}

/// A written benchmark dump.
#[derive(Debug, Clone)]
pub struct BenchDump {
    /// Its size.
    pub size: DumpSize,
    /// The file.
    pub path: PathBuf,
    /// File length (`st_size`).
    pub apparent_bytes: u64,
    /// Disk space actually used (`st_blocks * 512`).
    pub on_disk_bytes: u64,
    /// Pages the bitmap marks present.
    pub present_pages: u64,
    /// Upper bound of the disk use expected for a sparse file.
    pub estimated_disk_bytes: u64,
    /// Time to build and write it.
    pub generation: Duration,
}

/// Plan for one dump, computed before anything is written.
#[derive(Debug, Clone, Copy)]
pub struct DumpPlan {
    /// File length.
    pub apparent_bytes: u64,
    /// Upper bound of the disk use if the filesystem keeps holes: header, bitmap and every page the scenario
    /// wrote or allocated (pages of zeros are holes).
    pub estimated_disk_bytes: u64,
}

/// Builds the demo system over `size` of physical memory, marks every page present and writes it to `path` as a
/// kernel bitmap dump (type 5, `SDMP`). Refuses to start if the filesystem lacks room for the estimated disk use
/// plus [`DISK_MARGIN`], and fails if the written file uses far more disk than estimated (no holes).
pub fn write_dump(size: DumpSize, path: &Path) -> Result<BenchDump> {
    let start = Instant::now();
    let mut scenario = demo_scenario();
    scenario.physical_pages = size.pages;
    // Every page present: the demo's sample of pool pages left out of the dump stays in.
    if let Some(blocks) = scenario.pool_blocks.as_mut() {
        blocks.missing_pages = 0;
    }
    let mut built = scenario.build()?;
    let touched_pages = built.dump.present_page_count();
    built.dump.set_presence(PagePresence::All);
    let present_pages = built.dump.present_page_count();
    let apparent_bytes = built
        .dump
        .file_len(DumpFormat::KernelBitmap)
        .map_err(pooltop_synth::scenario::ScenarioError::from)?;
    let bitmap_bytes = size.pages.div_ceil(8);
    let plan = DumpPlan {
        apparent_bytes,
        estimated_disk_bytes: HEADER_SIZE + PAGE_SIZE + bitmap_bytes + touched_pages * PAGE_SIZE,
    };
    let folder = match path.parent() {
        Some(parent) if !parent.as_os_str().is_empty() => parent,
        _ => Path::new("."),
    };
    if let Some(free) = free_disk_bytes(folder)?
        && free < plan.estimated_disk_bytes + DISK_MARGIN
    {
        return Err(BenchError::Disk(format!(
            "{}: {} free, the {} dump needs about {} (sparse) plus {} of margin",
            folder.display(),
            human_bytes(free),
            size.label(),
            human_bytes(plan.estimated_disk_bytes),
            human_bytes(DISK_MARGIN)
        )));
    }
    let written = built.write_file(DumpFormat::KernelBitmap, path)?;
    let generation = start.elapsed();
    let (apparent, on_disk) = file_sizes(path)?;
    if written != apparent || apparent != plan.apparent_bytes {
        return Err(BenchError::Disk(format!(
            "{}: length {apparent} differs from the planned {} / written {written}",
            path.display(),
            plan.apparent_bytes
        )));
    }
    if on_disk > 2 * plan.estimated_disk_bytes + (16 << 20) {
        return Err(BenchError::Disk(format!(
            "{}: uses {} of disk for a file whose data is at most {}: the filesystem does not keep holes; \
             use --dir on one that does (ext4, xfs, btrfs, tmpfs)",
            path.display(),
            human_bytes(on_disk),
            human_bytes(plan.estimated_disk_bytes)
        )));
    }
    Ok(BenchDump {
        size,
        path: path.to_path_buf(),
        apparent_bytes: apparent,
        on_disk_bytes: on_disk,
        present_pages,
        estimated_disk_bytes: plan.estimated_disk_bytes,
        generation,
    })
}

/// `(st_size, st_blocks * 512)` of a file; on non-Unix systems both are the length.
pub fn file_sizes(path: &Path) -> Result<(u64, u64)> {
    let meta = std::fs::metadata(path).map_err(|e| BenchError::io("reading metadata", path, e))?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::MetadataExt;
        Ok((meta.len(), meta.blocks() * 512))
    }
    #[cfg(not(unix))]
    {
        Ok((meta.len(), meta.len()))
    }
}

/// Free bytes for unprivileged users on the filesystem holding `dir` (`statvfs`); `None` where unsupported.
pub fn free_disk_bytes(dir: &Path) -> Result<Option<u64>> {
    #[cfg(unix)]
    {
        use std::os::unix::ffi::OsStrExt;
        let c_path = std::ffi::CString::new(dir.as_os_str().as_bytes()).map_err(|_| {
            BenchError::io(
                "checking free space",
                dir,
                std::io::Error::other("path contains a NUL byte"),
            )
        })?;
        // SAFETY: `statvfs` is a plain-integer C struct; all-zero bytes are a valid value of it.
        let mut stats: libc::statvfs = unsafe { std::mem::zeroed() };
        // SAFETY: `c_path` is a NUL-terminated string that outlives the call and `stats` is a valid, writable
        // `statvfs` the call fills in.
        let rc = unsafe { libc::statvfs(c_path.as_ptr(), &mut stats) };
        if rc != 0 {
            return Err(BenchError::io(
                "checking free space (statvfs)",
                dir,
                std::io::Error::last_os_error(),
            ));
        }
        #[allow(clippy::unnecessary_cast, clippy::useless_conversion)]
        let free = u64::from(stats.f_bavail).saturating_mul(u64::from(stats.f_frsize));
        Ok(Some(free))
    }
    #[cfg(not(unix))]
    {
        let _ = dir;
        Ok(None)
    }
}

/// `1.5 GiB`, `72.0 MiB`, `512 B`.
pub fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit < UNITS.len() - 1 {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn human_bytes_picks_binary_units() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(72 << 20), "72.0 MiB");
        assert_eq!(human_bytes(17_180_000_000), "16.0 GiB");
    }
}
