//! Linear x64 decoding of executable bytes with iced-x86, and the import thunks found in them.

use std::collections::{BTreeMap, HashMap};

use iced_x86::{Decoder, DecoderOptions, Instruction};

use super::Allocator;
use super::pe::Chunk;

/// Decodes `chunk` from its first byte to its end, calling `visit` for every instruction (invalid bytes come
/// out as instructions whose code is `Code::INVALID`). Instruction pointers are RVAs, so RIP-relative operands
/// and branch targets are RVAs too.
pub(crate) fn for_each_instruction(chunk: Chunk<'_>, mut visit: impl FnMut(&Instruction)) {
    let mut decoder = Decoder::with_ip(64, chunk.bytes, u64::from(chunk.rva), DecoderOptions::NONE);
    let mut instruction = Instruction::default();
    while decoder.can_decode() {
        decoder.decode_out(&mut instruction);
        visit(&instruction);
    }
}

/// Import thunks: `jmp qword ptr [rip+disp32]` (`FF 25`) whose target is an allocator's IAT slot. A
/// `call rel32` to such an address is an allocator call. Found by a byte scan, so thunks are known before
/// the decoding pass reaches the calls that use them.
pub(crate) fn find_import_thunks(
    chunks: &[Chunk<'_>],
    slots: &BTreeMap<u32, Allocator>,
) -> HashMap<u32, Allocator> {
    let mut thunks = HashMap::new();
    if slots.is_empty() {
        return thunks;
    }
    for chunk in chunks {
        let bytes = chunk.bytes;
        for at in memchr_all(0xff, bytes) {
            if bytes.get(at + 1) != Some(&0x25) {
                continue;
            }
            let Some(disp) = bytes.get(at + 2..at + 6) else {
                continue;
            };
            let disp = i32::from_le_bytes([disp[0], disp[1], disp[2], disp[3]]);
            let next = u64::from(chunk.rva) + at as u64 + 6;
            let target = next.wrapping_add_signed(i64::from(disp));
            if let Ok(target) = u32::try_from(target)
                && let Some(&allocator) = slots.get(&target)
            {
                thunks.insert(chunk.rva + at as u32, allocator);
            }
        }
    }
    thunks
}

fn memchr_all(needle: u8, bytes: &[u8]) -> impl Iterator<Item = usize> + '_ {
    bytes
        .iter()
        .enumerate()
        .filter(move |&(_, &b)| b == needle)
        .map(|(i, _)| i)
}
