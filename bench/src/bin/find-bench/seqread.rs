//! The physical limit `find` is compared with: reading the dump file front to back in large `read` calls on one
//! thread, either the whole file (holes read as zeros from the page cache) or only its data extents (the ranges
//! `lseek(SEEK_DATA)` / `lseek(SEEK_HOLE)` report: the pages the generator wrote, almost all of them pool).

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::ops::Range;
use std::path::Path;
use std::time::{Duration, Instant};

/// Bytes per `read` call.
pub const CHUNK: usize = 2 << 20;

/// One timed pass over a file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pass {
    /// Bytes read.
    pub bytes: u64,
    /// Time taken.
    pub wall: Duration,
}

/// Reads the whole file with `read` calls of [`CHUNK`] bytes into one buffer.
pub fn read_whole(path: &Path) -> std::io::Result<Pass> {
    let mut buf = vec![0u8; CHUNK];
    let start = Instant::now();
    let mut file = File::open(path)?;
    let mut bytes = 0u64;
    loop {
        match file.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => bytes += n as u64,
            Err(e) if e.kind() == std::io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(Pass {
        bytes,
        wall: start.elapsed(),
    })
}

/// Reads `extents` of the file in order: one seek to each extent's start, then `read` calls of at most [`CHUNK`]
/// bytes into one buffer. An extent past the end of the file is an error.
pub fn read_extents(path: &Path, extents: &[Range<u64>]) -> std::io::Result<Pass> {
    let mut buf = vec![0u8; CHUNK];
    let start = Instant::now();
    let mut file = File::open(path)?;
    let mut bytes = 0u64;
    for extent in extents {
        file.seek(SeekFrom::Start(extent.start))?;
        let mut at = extent.start;
        while at < extent.end {
            let len = (extent.end - at).min(CHUNK as u64) as usize;
            file.read_exact(&mut buf[..len])?;
            at += len as u64;
            bytes += len as u64;
        }
    }
    Ok(Pass {
        bytes,
        wall: start.elapsed(),
    })
}

/// The file's data extents (everything that is not a hole), in order. Where the system cannot tell holes, the
/// whole file is one extent.
pub fn data_extents(path: &Path) -> std::io::Result<Vec<Range<u64>>> {
    let file = File::open(path)?;
    let len = file.metadata()?.len();
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let fd = file.as_raw_fd();
        let seek = |offset: u64, whence: libc::c_int| -> std::io::Result<Option<u64>> {
            let offset = libc::off_t::try_from(offset).map_err(std::io::Error::other)?;
            // SAFETY: `fd` is an open descriptor owned by `file`, which lives until the end of this function;
            // lseek only moves that descriptor's offset.
            let at = unsafe { libc::lseek(fd, offset, whence) };
            if at < 0 {
                let error = std::io::Error::last_os_error();
                return if error.raw_os_error() == Some(libc::ENXIO) {
                    Ok(None)
                } else {
                    Err(error)
                };
            }
            Ok(u64::try_from(at).ok())
        };
        let mut extents = Vec::new();
        let mut at = 0u64;
        while at < len {
            let Some(start) = seek(at, libc::SEEK_DATA)? else {
                break;
            };
            let end = seek(start, libc::SEEK_HOLE)?.unwrap_or(len).min(len);
            if end <= start {
                break;
            }
            extents.push(start..end);
            at = end;
        }
        Ok(extents)
    }
    #[cfg(not(target_os = "linux"))]
    {
        Ok(vec![0..len])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn data_extents_skip_the_holes_and_both_passes_read_what_they_cover() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("sparse");
        let mut file = File::create(&path).unwrap();
        file.set_len(8 << 20).unwrap();
        file.write_all(&[0xAA; 4096]).unwrap();
        file.seek(SeekFrom::Start(4 << 20)).unwrap();
        file.write_all(&vec![0x55; 3 << 20]).unwrap();
        file.sync_all().unwrap();
        drop(file);

        let extents = data_extents(&path).unwrap();
        let covers = |r: Range<u64>| extents.iter().any(|e| e.start <= r.start && r.end <= e.end);
        assert!(covers(0..4096), "{extents:x?}");
        assert!(covers((4 << 20)..(7 << 20)), "{extents:x?}");
        let data: u64 = extents.iter().map(|e| e.end - e.start).sum();
        // The filesystem rounds to its blocks; a file system without holes would report all 8 MiB.
        assert!(data < (3 << 20) + (1 << 20), "{extents:x?}");

        assert_eq!(read_whole(&path).unwrap().bytes, 8 << 20);
        assert_eq!(read_extents(&path, &extents).unwrap().bytes, data);
        let past_end = read_extents(&path, &[data..data + 1, (8 << 20) - 16..(8 << 20) + 16]);
        assert!(past_end.is_err(), "a read past the end of the file fails");
    }
}
