//! A `Read + Seek` wrapper that hides two header fields from kdmp-parser.
//!
//! kdmp-parser 0.8.2 walks `PsLoadedModuleList` (header offset 0x20) while opening, without a step bound (a
//! cycle that avoids the head hangs forever) and fails the whole open on one bad module name; it also follows
//! `KdDebuggerDataBlock` (0x80) to find user modules. pooltop parses the header itself and walks the module list
//! with a bound, so it shows kdmp-parser zeros at those two places and the crate skips both walks.

use std::io::{self, Read, Seek, SeekFrom};
use std::ops::Range;

const HIDDEN: [Range<u64>; 2] = [0x20..0x28, 0x80..0x88];

/// Forwards reads and seeks, zeroing the bytes of [`HIDDEN`] ranges in what it returns.
#[derive(Debug)]
pub struct HeaderHidingReader<R> {
    inner: R,
    position: u64,
}

impl<R: Read + Seek> HeaderHidingReader<R> {
    /// Wraps `inner`, which must be positioned at the start of the file.
    pub fn new(inner: R) -> Self {
        Self { inner, position: 0 }
    }
}

impl<R: Read> Read for HeaderHidingReader<R> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.inner.read(buf)?;
        let start = self.position;
        let end = start + n as u64;
        for hidden in &HIDDEN {
            let from = hidden.start.max(start);
            let to = hidden.end.min(end);
            if from < to {
                buf[(from - start) as usize..(to - start) as usize].fill(0);
            }
        }
        self.position = end;
        Ok(n)
    }
}

impl<R: Seek> Seek for HeaderHidingReader<R> {
    fn seek(&mut self, pos: SeekFrom) -> io::Result<u64> {
        self.position = self.inner.seek(pos)?;
        Ok(self.position)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Cursor;

    #[test]
    fn zeroes_only_the_hidden_fields_across_split_reads() {
        let data: Vec<u8> = (0..0x100u32).map(|i| (i as u8) | 1).collect();
        let mut reader = HeaderHidingReader::new(Cursor::new(data.clone()));
        let mut out = vec![0u8; 0x100];
        // Read in odd-sized pieces so that hidden ranges are split between reads.
        let mut filled = 0;
        while filled < out.len() {
            let end = (filled + 7).min(out.len());
            filled += reader.read(&mut out[filled..end]).unwrap();
        }
        for (i, (&got, &orig)) in out.iter().zip(&data).enumerate() {
            let hidden = (0x20..0x28).contains(&i) || (0x80..0x88).contains(&i);
            assert_eq!(got, if hidden { 0 } else { orig }, "byte {i:#x}");
        }
        reader.seek(SeekFrom::Start(0x84)).unwrap();
        let mut four = [0xFFu8; 8];
        reader.read_exact(&mut four).unwrap();
        assert_eq!(
            four,
            [0, 0, 0, 0, data[0x88], data[0x89], data[0x8a], data[0x8b]]
        );
    }
}
