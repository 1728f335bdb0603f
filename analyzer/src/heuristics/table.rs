//! The key column of a tracker table read without knowing its length, and what makes a key look like a tag.

use crate::dump::{PAGE_SIZE, ReadFault, VirtualMemory};

/// Share of non-zero keys that must look like tags for a range of slots to count as tracker entries (90 %).
const TAG_LIKE_PERCENT: u64 = 90;

/// Whether a `Key` looks like a pool tag: two printable ASCII characters (the first not a space), then
/// printable characters or trailing NULs; the top bit of the last byte may be set (the old `PROTECTED_POOL`
/// flag). Small integers (counters read at a wrong stride) do not qualify.
pub fn is_tag_like(key: u32) -> bool {
    let b = key.to_le_bytes();
    let printable = |c: u8| (0x20..=0x7E).contains(&c);
    if !printable(b[0]) || b[0] == b' ' || !printable(b[1]) {
        return false;
    }
    match (b[2], b[3] & 0x7F) {
        (0, 0) => true,
        (0, _) => false,
        (c, 0) => printable(c),
        (c, d) => printable(c) && printable(d),
    }
}

/// Counts of non-zero and tag-like keys in a range of slots.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct KeyStats {
    /// Slots with a non-zero key.
    pub nonzero: u64,
    /// Slots whose key looks like a tag.
    pub tag_like: u64,
}

impl KeyStats {
    /// Counts `keys`.
    pub fn of(keys: &[u32]) -> Self {
        keys.iter().fold(Self::default(), |mut s, &k| {
            s.nonzero += u64::from(k != 0);
            s.tag_like += u64::from(is_tag_like(k));
            s
        })
    }

    /// At least one tag, and at least 90 % of the non-zero keys look like tags.
    pub fn looks_like_entries(&self) -> bool {
        self.tag_like > 0 && self.tag_like * 100 >= self.nonzero * TAG_LIKE_PERCENT
    }
}

/// The `Key` of every slot of a table from its start up to the first page missing from the dump, and which
/// other 8-byte aligned fields of each entry hold values that look like tags.
#[derive(Debug, Clone)]
pub struct KeyColumn {
    /// Table VA.
    pub table: u64,
    /// Entry size.
    pub entry_size: u64,
    /// Keys of slots `0..keys.len()`.
    pub keys: Vec<u32>,
    /// Per slot, bit `i` set when the u32 at entry offset `8 * i` (i ≥ 1) looks like a tag.
    field_tags: Vec<u16>,
    /// Bytes readable from the table start without a gap (up to the requested length).
    pub readable_bytes: u64,
}

impl KeyColumn {
    /// Reads up to `slots` entries of `entry_size` bytes at `table` (8-byte aligned, `entry_size` a multiple of
    /// 8, so that no key crosses a page), stopping at the first page not in the dump. Fails only when the first
    /// page is not in the dump.
    pub fn read(
        mem: &impl VirtualMemory,
        table: u64,
        entry_size: u64,
        slots: u64,
    ) -> Result<Self, ReadFault> {
        let limit = slots.saturating_mul(entry_size);
        let mut column = Self {
            table,
            entry_size,
            keys: Vec::new(),
            field_tags: Vec::new(),
            readable_bytes: 0,
        };
        let mut offset = 0u64;
        let mut page = vec![0u8; PAGE_SIZE as usize];
        while offset < limit {
            let at = table.wrapping_add(offset);
            let chunk = (PAGE_SIZE - (at & (PAGE_SIZE - 1))).min(limit - offset);
            let buf = &mut page[..chunk as usize];
            if let Err(fault) = mem.read_virt(at, buf) {
                if offset == 0 {
                    return Err(fault);
                }
                break;
            }
            for (i, word) in buf.chunks_exact(8).enumerate() {
                let value = u32::from_le_bytes([word[0], word[1], word[2], word[3]]);
                let rel = offset + i as u64 * 8;
                let (slot, field) = (rel / entry_size, rel % entry_size);
                if field == 0 {
                    column.keys.push(value);
                    column.field_tags.push(0);
                } else if is_tag_like(value)
                    && field / 8 < 16
                    && let Some(bits) = usize::try_from(slot)
                        .ok()
                        .and_then(|s| column.field_tags.get_mut(s))
                {
                    *bits |= 1 << (field / 8);
                }
            }
            offset += chunk;
        }
        column.readable_bytes = offset;
        Ok(column)
    }

    /// The entry offset (other than the key's) whose value looks like a tag in the most of the first `n`
    /// entries, with that count.
    pub fn most_tag_like_field(&self, n: u64) -> Option<(u64, u64)> {
        let n = (n as usize).min(self.field_tags.len());
        (1..16u64)
            .map(|bit| {
                let count = self.field_tags[..n]
                    .iter()
                    .filter(|&&bits| bits & (1 << bit) != 0)
                    .count() as u64;
                (bit * 8, count)
            })
            .filter(|&(_, count)| count > 0)
            .max_by_key(|&(_, count)| count)
    }

    /// Whether the first `n` entries are wholly readable.
    pub fn covers(&self, n: u64) -> bool {
        n.checked_mul(self.entry_size)
            .is_some_and(|bytes| bytes <= self.readable_bytes)
            && (n as usize) <= self.keys.len()
    }

    /// The keys of slots `from..to` (clipped to what was read).
    pub fn slots(&self, from: u64, to: u64) -> &[u32] {
        let len = self.keys.len() as u64;
        let (from, to) = (from.min(len), to.min(len));
        &self.keys[from as usize..to.max(from) as usize]
    }

    /// The key of `slot`, if read.
    pub fn key(&self, slot: u64) -> Option<u32> {
        usize::try_from(slot)
            .ok()
            .and_then(|i| self.keys.get(i))
            .copied()
    }

    /// Up to `max` slots in `from..to` whose key looks like a tag.
    pub fn tag_slots(&self, from: u64, to: u64, max: usize) -> Vec<(u64, u32)> {
        self.slots(from, to)
            .iter()
            .enumerate()
            .filter(|&(_, &k)| is_tag_like(k))
            .take(max)
            .map(|(i, &k)| (from + i as u64, k))
            .collect()
    }
}

/// `'Abcd'` for messages (non-printable bytes as `\xNN`).
pub fn show_key(key: u32) -> String {
    let mut s = String::from("'");
    for b in key.to_le_bytes() {
        if (0x20..=0x7E).contains(&b) {
            s.push(char::from(b));
        } else {
            s.push_str(&format!("\\x{b:02x}"));
        }
    }
    s.push('\'');
    s
}

/// How many of `slots` (slot, key) hold the same key in the table at `table`; `None` if any is unreadable.
pub fn matching_keys(
    mem: &impl VirtualMemory,
    table: u64,
    entry_size: u64,
    slots: &[(u64, u32)],
) -> Option<usize> {
    let mut matched = 0;
    for &(slot, key) in slots {
        let va = table.wrapping_add(slot.wrapping_mul(entry_size));
        matched += usize::from(mem.read_u32(va).ok()? == key);
    }
    Some(matched)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(tag: &[u8; 4]) -> u32 {
        u32::from_le_bytes(*tag)
    }

    #[test]
    fn tags_look_like_tags_and_counters_do_not() {
        for tag in [b"Proc", b"Io  ", b"CM31", b"Ab\0\0", b"Abc\0", b"Vad "] {
            assert!(is_tag_like(key(tag)), "{tag:?}");
        }
        assert!(is_tag_like(key(b"Proc") | 0x8000_0000));
        for value in [0u32, 1, 0x41, 0x141, 0x6FF3_0000, 0x001C_2BD1, 0xFFFF_FFFF] {
            assert!(!is_tag_like(value), "{value:#x}");
        }
        assert!(!is_tag_like(key(b" abc")));
        assert!(!is_tag_like(key(b"Ab\0c")));
    }

    #[test]
    fn stats_need_nine_tenths_tags() {
        let tags = [key(b"Proc"); 9];
        let mut keys = tags.to_vec();
        keys.extend([0, 0, 7]);
        assert!(KeyStats::of(&keys).looks_like_entries());
        keys.push(9);
        assert!(!KeyStats::of(&keys).looks_like_entries());
        assert!(!KeyStats::of(&[0, 0, 0]).looks_like_entries());
    }
}
