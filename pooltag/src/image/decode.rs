//! Linear x64 decoding of executable bytes with iced-x86, and the import thunks among them.

use std::collections::BTreeMap;

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

/// The allocator behind an import thunk at `target`: `jmp qword ptr [rip+disp32]` (`FF 25`, or `48 FF 25`)
/// into an allocator's IAT slot. A `call rel32` to such an address is an allocator call. `code` is sorted by
/// RVA.
pub(crate) fn import_thunk_at(
    code: &[Chunk<'_>],
    slots: &BTreeMap<u32, Allocator>,
    target: u32,
) -> Option<Allocator> {
    let chunk = code[..code.partition_point(|c| c.rva <= target)].last()?;
    let at = (target - chunk.rva) as usize;
    let bytes = chunk.bytes.get(at..)?;
    let (disp, length) = match bytes {
        [0xff, 0x25, d0, d1, d2, d3, ..] => ([*d0, *d1, *d2, *d3], 6u64),
        [0x48, 0xff, 0x25, d0, d1, d2, d3, ..] => ([*d0, *d1, *d2, *d3], 7),
        _ => return None,
    };
    let slot =
        (u64::from(target) + length).wrapping_add_signed(i64::from(i32::from_le_bytes(disp)));
    slots.get(&u32::try_from(slot).ok()?).copied()
}
