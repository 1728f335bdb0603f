//! Allocator call sites and the tag each one passes, found by following register values forward through one
//! linear decoding pass.
//!
//! # What is tracked
//!
//! For each of the 16 general registers the pass knows one of: nothing, a constant (from `mov reg, imm`,
//! `xor reg, reg`, or a `mov` between registers carrying a constant), "argument k of the current function"
//! (rcx, rdx, r8, r9 at a `.pdata` entry point), or "the address of allocator X" (loaded from its IAT slot).
//! Every other write to a register makes it unknown; a call makes the volatile registers (rax, rcx, rdx,
//! r8-r11) unknown.
//!
//! # Control flow
//!
//! Values flow along the fall-through path and along forward jumps: at a conditional or unconditional jump
//! to a later address, the register state is saved for the target, and on reaching the target the saved
//! states and the fall-through state (if the previous instruction falls through) are merged: a register keeps
//! its value only if every known path agrees. After `ret`, `jmp`, `int3` or undecodable bytes, code is reached
//! only through jumps, so the state is unknown unless a forward jump brought one. Backward jumps and indirect
//! jumps (switch tables) are not followed.
//!
//! # Confidence of a call site
//!
//! - High: the tag constant reaches the call along straight code or along merges where the fall-through path
//!   was one of the agreeing paths.
//! - Medium: the constant reaches the call only through a jump over code that does not fall through (every
//!   known path agrees, but a path the linear pass cannot see, such as a backward jump, could join there).
//!   Wrapper call sites (see below) are Medium too, with no allocator.
//!
//! # Wrappers
//!
//! A function whose allocator call passes its own argument k as the tag (e.g. `mov r8d, edx` at the top of
//! `MyAlloc(size, tag)`) is a wrapper; so is a function that passes its argument on to a wrapper in a
//! wrapper's tag position. Each direct call or tail jump to a wrapper with a constant in that argument register
//! is a call site with Medium confidence and allocator `None`.

use std::collections::{BTreeMap, HashSet};

use iced_x86::{
    Code, FlowControl, Instruction, InstructionInfoFactory, OpAccess, OpKind, Register,
};

use super::constants::looks_like_tag;
use super::decode::{for_each_instruction, import_thunk_at};
use super::pe::Chunk;
use super::{Allocator, Confidence, FindingKind, TagFinding, UnresolvedCall};

/// What the pass knows about one register. Constants keep their low 32 bits, the width of a tag.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Value {
    Unknown,
    Const { value: u32, via_jump: bool },
    Arg(u8),
    AllocatorAddress(Allocator),
}

type Registers = [Value; 16];

const UNKNOWN: Registers = [Value::Unknown; 16];
/// Register numbers (iced order: rax, rcx, rdx, rbx, rsp, rbp, rsi, rdi, r8..r15) of the x64 arguments.
const ARGUMENT_REGISTERS: [usize; 4] = [1, 2, 8, 9];
/// Registers a call may change (Microsoft x64 calling convention).
const VOLATILE_REGISTERS: [usize; 7] = [0, 1, 2, 8, 9, 10, 11];
/// Rounds of wrapper-of-wrapper discovery.
const MAX_WRAPPER_DEPTH: usize = 8;

/// The 64-bit general register that `register` is part of, as an index 0..16.
fn gpr_index(register: Register) -> Option<usize> {
    if !register.is_gpr() {
        return None;
    }
    let full = register.full_register();
    full.is_gpr64()
        .then(|| full as usize - Register::RAX as usize)
        .filter(|&i| i < 16)
}

fn merge(a: &Registers, b: &Registers) -> Registers {
    let mut out = UNKNOWN;
    for i in 0..16 {
        out[i] = match (a[i], b[i]) {
            (
                Value::Const {
                    value: x,
                    via_jump: jx,
                },
                Value::Const {
                    value: y,
                    via_jump: jy,
                },
            ) if x == y => Value::Const {
                value: x,
                via_jump: jx || jy,
            },
            (x, y) if x == y => x,
            _ => Value::Unknown,
        };
    }
    out
}

/// A direct call or tail jump with at least one argument register known, kept to find wrapper call sites.
#[derive(Debug)]
struct CallEvent {
    rva: u32,
    target: u32,
    function: Option<u32>,
    arguments: [Value; 4],
}

/// Results of the call-site pass.
#[derive(Debug, Default)]
pub(crate) struct CallSites {
    /// Call-site findings (direct allocator calls and wrapper calls).
    pub findings: Vec<TagFinding>,
    /// Allocator calls whose tag is not a constant.
    pub unresolved: Vec<UnresolvedCall>,
    /// Tag-like 32-bit immediates seen anywhere in the code.
    pub immediates: HashSet<[u8; 4]>,
}

/// The forward pass over the executable chunks of one image.
pub(crate) struct CallSiteTracker<'s> {
    slots: &'s BTreeMap<u32, Allocator>,
    code: &'s [Chunk<'s>],
    entries: &'s [u32],
    factory: InstructionInfoFactory,
    registers: Registers,
    reachable: bool,
    pending: BTreeMap<u32, Registers>,
    /// Smallest key of `pending` (`u32::MAX` when empty), so most instructions skip the map.
    pending_min: u32,
    chunk_end: u64,
    next_entry: usize,
    function: Option<u32>,
    wrappers: HashSet<(u32, u8)>,
    events: Vec<CallEvent>,
    out: CallSites,
}

impl<'s> CallSiteTracker<'s> {
    /// A tracker for an image with these allocator IAT slots, code chunks (sorted by RVA; import thunks are
    /// looked up there) and function entry points (sorted).
    pub fn new(
        slots: &'s BTreeMap<u32, Allocator>,
        code: &'s [Chunk<'s>],
        entries: &'s [u32],
    ) -> Self {
        CallSiteTracker {
            slots,
            code,
            entries,
            factory: InstructionInfoFactory::new(),
            registers: UNKNOWN,
            reachable: false,
            pending: BTreeMap::new(),
            pending_min: u32::MAX,
            chunk_end: 0,
            next_entry: 0,
            function: None,
            wrappers: HashSet::new(),
            events: Vec::new(),
            out: CallSites::default(),
        }
    }

    /// Decodes one run of present code. Nothing flows between chunks.
    pub fn scan_chunk(&mut self, chunk: Chunk<'_>) {
        self.registers = UNKNOWN;
        self.reachable = false;
        self.pending.clear();
        self.pending_min = u32::MAX;
        self.function = None;
        self.chunk_end = u64::from(chunk.rva) + chunk.bytes.len() as u64;
        self.next_entry = self.entries.partition_point(|&e| e < chunk.rva);
        for_each_instruction(chunk, |instruction| self.step(instruction));
    }

    /// Resolves wrapper calls and returns everything found.
    pub fn finish(mut self) -> CallSites {
        self.resolve_wrappers();
        self.out
    }

    fn step(&mut self, instruction: &Instruction) {
        let ip = instruction.ip() as u32;
        // Joins: drop saved states for addresses the decoder stepped over (a jump into the middle of an
        // instruction), then merge the ones for this address.
        let mut saved = None;
        if ip >= self.pending_min {
            while let Some(entry) = self.pending.first_entry() {
                match (*entry.key()).cmp(&ip) {
                    std::cmp::Ordering::Less => {
                        entry.remove();
                    }
                    std::cmp::Ordering::Equal => {
                        saved = Some(entry.remove());
                        break;
                    }
                    std::cmp::Ordering::Greater => break,
                }
            }
            self.pending_min = self.pending.first_key_value().map_or(u32::MAX, |(&k, _)| k);
        }
        let fell_through = self.reachable;
        match (&saved, fell_through) {
            (Some(saved), true) => self.registers = merge(&self.registers, saved),
            (Some(saved), false) => {
                self.registers = *saved;
                for value in &mut self.registers {
                    if let Value::Const { via_jump, .. } = value {
                        *via_jump = true;
                    }
                }
            }
            (None, true) => {}
            (None, false) => self.registers = UNKNOWN,
        }
        while self.entries.get(self.next_entry).is_some_and(|&e| e < ip) {
            self.next_entry += 1;
        }
        let at_entry = self.entries.get(self.next_entry) == Some(&ip);
        if at_entry {
            self.registers = UNKNOWN;
            for (k, &r) in ARGUMENT_REGISTERS.iter().enumerate() {
                self.registers[r] = Value::Arg(k as u8);
            }
            self.function = Some(ip);
        }
        // Code nobody falls or jumps into (as far as this pass knows): an import thunk lives there.
        let unentered = at_entry || (!fell_through && saved.is_none());
        self.reachable = true;
        self.collect_immediates(instruction);

        match instruction.flow_control() {
            FlowControl::Call => {
                let target = instruction.near_branch_target();
                if let Some(allocator) = u32::try_from(target).ok().and_then(|t| self.thunk_at(t)) {
                    self.allocator_call(allocator, ip);
                } else {
                    self.record_event(ip, target);
                }
                self.clobber_volatile();
            }
            FlowControl::IndirectCall => {
                if let Some(allocator) = self.indirect_allocator(instruction) {
                    self.allocator_call(allocator, ip);
                }
                self.clobber_volatile();
            }
            FlowControl::UnconditionalBranch => {
                let target = instruction.near_branch_target();
                if let Some(allocator) = u32::try_from(target).ok().and_then(|t| self.thunk_at(t)) {
                    self.allocator_call(allocator, ip);
                } else if u32::try_from(target)
                    .is_ok_and(|t| self.entries.binary_search(&t).is_ok())
                {
                    self.record_event(ip, target);
                } else {
                    self.save_for(ip, target);
                }
                self.reachable = false;
            }
            FlowControl::IndirectBranch => {
                if let Some(allocator) = self.indirect_allocator(instruction)
                    && !unentered
                {
                    self.allocator_call(allocator, ip);
                }
                self.reachable = false;
            }
            FlowControl::ConditionalBranch => {
                self.apply_writes(instruction);
                self.save_for(ip, instruction.near_branch_target());
            }
            FlowControl::Return | FlowControl::Interrupt | FlowControl::Exception => {
                self.reachable = false;
            }
            FlowControl::Next | FlowControl::XbeginXabortXend => self.apply_writes(instruction),
        }
    }

    fn thunk_at(&self, target: u32) -> Option<Allocator> {
        if self.slots.is_empty() {
            return None;
        }
        import_thunk_at(self.code, self.slots, target)
    }

    fn save_for(&mut self, ip: u32, target: u64) {
        if target > u64::from(ip) && target < self.chunk_end {
            let registers = self.registers;
            let target = target as u32;
            self.pending
                .entry(target)
                .and_modify(|saved| *saved = merge(saved, &registers))
                .or_insert(registers);
            self.pending_min = self.pending_min.min(target);
        }
    }

    fn clobber_volatile(&mut self) {
        for r in VOLATILE_REGISTERS {
            self.registers[r] = Value::Unknown;
        }
    }

    /// The allocator a `call/jmp [rip+slot]` or `call/jmp reg` goes to, if any.
    fn indirect_allocator(&self, instruction: &Instruction) -> Option<Allocator> {
        match instruction.op0_kind() {
            OpKind::Memory if instruction.is_ip_rel_memory_operand() => {
                let slot = u32::try_from(instruction.ip_rel_memory_address()).ok()?;
                self.slots.get(&slot).copied()
            }
            OpKind::Register => match self.registers[gpr_index(instruction.op0_register())?] {
                Value::AllocatorAddress(allocator) => Some(allocator),
                _ => None,
            },
            _ => None,
        }
    }

    fn allocator_call(&mut self, allocator: Allocator, ip: u32) {
        match self.registers[ARGUMENT_REGISTERS[allocator.tag_argument()]] {
            Value::Const { value, via_jump } => self.out.findings.push(TagFinding {
                tag: value.to_le_bytes(),
                kind: FindingKind::CallSite,
                confidence: if via_jump {
                    Confidence::Medium
                } else {
                    Confidence::High
                },
                rva: ip,
                allocator: Some(allocator),
            }),
            other => {
                if let (Value::Arg(k), Some(function)) = (other, self.function) {
                    self.wrappers.insert((function, k));
                }
                self.out
                    .unresolved
                    .push(UnresolvedCall { rva: ip, allocator });
            }
        }
    }

    fn record_event(&mut self, ip: u32, target: u64) {
        let Ok(target) = u32::try_from(target) else {
            return;
        };
        let arguments = ARGUMENT_REGISTERS.map(|r| self.registers[r]);
        if arguments
            .iter()
            .any(|v| matches!(v, Value::Const { .. } | Value::Arg(_)))
        {
            self.events.push(CallEvent {
                rva: ip,
                target,
                function: self.function,
                arguments,
            });
        }
    }

    /// Tag-like immediates of `mov r32, imm32`, `mov r/m32, imm32` and `mov r/m64, imm32`: the ways a tag
    /// reaches a register or a structure. Other instructions are left out because ASCII text decoded as code
    /// produces `imul`, `push` and `cmp` with text immediates; the `mov` opcodes (B8+r, C7) are not ASCII.
    fn collect_immediates(&mut self, instruction: &Instruction) {
        if matches!(
            instruction.code(),
            Code::Mov_r32_imm32 | Code::Mov_rm32_imm32 | Code::Mov_rm64_imm32
        ) {
            let bytes = (instruction.immediate(1) as u32).to_le_bytes();
            if looks_like_tag(bytes) {
                self.out.immediates.insert(bytes);
            }
        }
    }

    fn set(&mut self, register: Register, value: Value) {
        if let Some(i) = gpr_index(register) {
            self.registers[i] = value;
        }
    }

    fn get(&self, register: Register) -> Value {
        gpr_index(register).map_or(Value::Unknown, |i| self.registers[i])
    }

    /// Updates the registers an ordinary instruction writes.
    fn apply_writes(&mut self, instruction: &Instruction) {
        let both_registers = instruction.op_count() == 2
            && instruction.op0_kind() == OpKind::Register
            && instruction.op1_kind() == OpKind::Register;
        let constant = |value: u64| Value::Const {
            value: value as u32,
            via_jump: false,
        };
        match instruction.code() {
            Code::Mov_r32_imm32 | Code::Mov_r64_imm64 => {
                self.set(
                    instruction.op0_register(),
                    constant(instruction.immediate(1)),
                );
            }
            Code::Mov_rm32_imm32 | Code::Mov_rm64_imm32
                if instruction.op0_kind() == OpKind::Register =>
            {
                self.set(
                    instruction.op0_register(),
                    constant(instruction.immediate(1)),
                );
            }
            Code::Mov_r32_rm32 | Code::Mov_rm32_r32 if both_registers => {
                let value = match self.get(instruction.op1_register()) {
                    Value::AllocatorAddress(_) => Value::Unknown,
                    other => other,
                };
                self.set(instruction.op0_register(), value);
            }
            Code::Mov_r64_rm64 | Code::Mov_rm64_r64 if both_registers => {
                let value = self.get(instruction.op1_register());
                self.set(instruction.op0_register(), value);
            }
            Code::Mov_r64_rm64 if instruction.is_ip_rel_memory_operand() => {
                let value = u32::try_from(instruction.ip_rel_memory_address())
                    .ok()
                    .and_then(|slot| self.slots.get(&slot))
                    .map_or(Value::Unknown, |&a| Value::AllocatorAddress(a));
                self.set(instruction.op0_register(), value);
            }
            Code::Xor_r32_rm32
            | Code::Xor_rm32_r32
            | Code::Xor_r64_rm64
            | Code::Xor_rm64_r64
            | Code::Sub_r32_rm32
            | Code::Sub_rm32_r32
                if both_registers && instruction.op0_register() == instruction.op1_register() =>
            {
                self.set(instruction.op0_register(), constant(0));
            }
            _ if Self::writes_no_register(instruction) => {}
            _ if Self::writes_only_operand0(instruction) => {
                if instruction.op0_kind() == OpKind::Register {
                    self.set(instruction.op0_register(), Value::Unknown);
                }
            }
            _ => {
                let info = self.factory.info(instruction);
                for used in info.used_registers() {
                    if matches!(
                        used.access(),
                        OpAccess::Write
                            | OpAccess::CondWrite
                            | OpAccess::ReadWrite
                            | OpAccess::ReadCondWrite
                    ) && let Some(i) = gpr_index(used.register())
                    {
                        self.registers[i] = Value::Unknown;
                    }
                }
            }
        }
    }

    /// Whether `instruction` writes no general register (`rsp` of `push` aside).
    fn writes_no_register(instruction: &Instruction) -> bool {
        use iced_x86::Mnemonic::*;
        matches!(instruction.mnemonic(), Cmp | Test | Push | Nop | Bt)
    }

    /// Whether the only general register `instruction` can write is its first operand (when that is a
    /// register): common instructions with no implicit register outputs, checked here to spare the general
    /// (slower) instruction-info lookup. `rsp` changes of `push`/`pop` are ignored (never an argument).
    fn writes_only_operand0(instruction: &Instruction) -> bool {
        use iced_x86::Mnemonic::*;
        match instruction.mnemonic() {
            Lea | Mov | Movzx | Movsx | Movsxd | Add | Sub | And | Or | Xor | Adc | Sbb | Shl
            | Shr | Sar | Rol | Ror | Inc | Dec | Neg | Not | Pop | Cmova | Cmovae | Cmovb
            | Cmovbe | Cmove | Cmovg | Cmovge | Cmovl | Cmovle | Cmovne | Cmovno | Cmovnp
            | Cmovns | Cmovo | Cmovp | Cmovs | Seta | Setae | Setb | Setbe | Sete | Setg
            | Setge | Setl | Setle | Setne | Setno | Setnp | Setns | Seto | Setp | Sets | Bts
            | Btr | Btc | Movd | Movq | Movups | Movaps | Movdqu | Movdqa | Movss | Movsd
            | Xorps | Pxor => {
                // String forms (`movsd` without operands, `rep movs`) write rsi/rdi/rcx implicitly.
                instruction.op_count() >= 1
                    && !matches!(
                        instruction.op0_kind(),
                        OpKind::MemorySegRSI
                            | OpKind::MemorySegESI
                            | OpKind::MemorySegSI
                            | OpKind::MemoryESRDI
                            | OpKind::MemoryESEDI
                            | OpKind::MemoryESDI
                            | OpKind::MemorySegRDI
                            | OpKind::MemorySegEDI
                            | OpKind::MemorySegDI
                    )
            }
            // Two- and three-operand imul write only their destination; one-operand imul writes rdx:rax.
            Imul => instruction.op_count() >= 2,
            _ => false,
        }
    }

    fn resolve_wrappers(&mut self) {
        for _ in 0..MAX_WRAPPER_DEPTH {
            let mut grown = false;
            for event in &self.events {
                for k in 0..4u8 {
                    if !self.wrappers.contains(&(event.target, k)) {
                        continue;
                    }
                    if let (Value::Arg(j), Some(function)) =
                        (event.arguments[k as usize], event.function)
                    {
                        grown |= self.wrappers.insert((function, j));
                    }
                }
            }
            if !grown {
                break;
            }
        }
        for event in &self.events {
            for k in 0..4u8 {
                if let Value::Const { value, .. } = event.arguments[k as usize]
                    && self.wrappers.contains(&(event.target, k))
                {
                    self.out.findings.push(TagFinding {
                        tag: value.to_le_bytes(),
                        kind: FindingKind::CallSite,
                        confidence: Confidence::Medium,
                        rva: event.rva,
                        allocator: None,
                    });
                }
            }
        }
    }
}
