//! DUMP_HEADER64 (0x2000 bytes) with its CONTEXT and EXCEPTION_RECORD64, filled as a real Windows x64 dump would be.
//!
//! Layouts are written here from the published offsets (`dump-format.md` §5), on purpose independent of any
//! reader's structure definitions, so a reader's layout mistake cannot hide behind a shared definition. Every
//! byte that no field covers holds the 'PAGE' fill that real dump headers carry.

use std::ops::Range;

use super::error::{DumpError, Result};

/// Size of DUMP_HEADER64.
pub const HEADER_SIZE: u64 = 0x2000;
/// The most physical-memory runs a type 1 header holds: (700 − 16) / 16.
pub const MAX_FULL_DUMP_RUNS: usize = 42;

/// `Signature`: 'PAGE'.
const SIGNATURE: &[u8; 4] = b"PAGE";
/// `ValidDump` of 64-bit dumps: 'DU64'.
const VALID_DUMP_64: &[u8; 4] = b"DU64";

// DUMP_HEADER64 field offsets.
const OFF_SIGNATURE: usize = 0x000;
const OFF_VALID_DUMP: usize = 0x004;
const OFF_MAJOR_VERSION: usize = 0x008;
const OFF_MINOR_VERSION: usize = 0x00C;
const OFF_DIRECTORY_TABLE_BASE: usize = 0x010;
const OFF_PFN_DATABASE: usize = 0x018;
const OFF_PS_LOADED_MODULE_LIST: usize = 0x020;
const OFF_PS_ACTIVE_PROCESS_HEAD: usize = 0x028;
const OFF_MACHINE_IMAGE_TYPE: usize = 0x030;
const OFF_NUMBER_PROCESSORS: usize = 0x034;
const OFF_BUG_CHECK_CODE: usize = 0x038;
const OFF_BUG_CHECK_PARAMETERS: usize = 0x040;
const OFF_VERSION_USER: usize = 0x060;
const VERSION_USER_SIZE: usize = 32;
const OFF_KD_DEBUGGER_DATA_BLOCK: usize = 0x080;
const OFF_PHYSICAL_MEMORY_BLOCK: usize = 0x088;
const OFF_CONTEXT_RECORD: usize = 0x348;
const OFF_EXCEPTION: usize = 0xF00;
const OFF_DUMP_TYPE: usize = 0xF98;
const OFF_REQUIRED_DUMP_SPACE: usize = 0xFA0;
const OFF_SYSTEM_TIME: usize = 0xFA8;
const OFF_COMMENT: usize = 0xFB0;
const COMMENT_SIZE: usize = 128;
const OFF_SYSTEM_UP_TIME: usize = 0x1030;
const OFF_MINI_DUMP_FIELDS: usize = 0x1038;
const OFF_SECONDARY_DATA_STATE: usize = 0x103C;
const OFF_PRODUCT_TYPE: usize = 0x1040;
const OFF_SUITE_MASK: usize = 0x1044;
const OFF_WRITER_STATUS: usize = 0x1048;
const OFF_UNUSED1: usize = 0x104C;
const OFF_KD_SECONDARY_VERSION: usize = 0x104D;
const OFF_UNUSED2: usize = 0x104E;
const OFF_ATTRIBUTES: usize = 0x1050;
const OFF_BOOT_ID: usize = 0x1054;

// PHYSICAL_MEMORY_DESCRIPTOR64 (relative to OFF_PHYSICAL_MEMORY_BLOCK).
const PMD_NUMBER_OF_RUNS: usize = 0x00;
const PMD_PADDING: usize = 0x04;
const PMD_NUMBER_OF_PAGES: usize = 0x08;
const PMD_RUNS: usize = 0x10;
const PMD_RUN_SIZE: usize = 0x10;

// AMD64 CONTEXT (relative to OFF_CONTEXT_RECORD).
const CONTEXT_SIZE: usize = 0x4D0;
const CTX_CONTEXT_FLAGS: usize = 0x30;
const CTX_MXCSR: usize = 0x34;
const CTX_SEG_CS: usize = 0x38;
const CTX_SEG_DS: usize = 0x3A;
const CTX_SEG_ES: usize = 0x3C;
const CTX_SEG_FS: usize = 0x3E;
const CTX_SEG_GS: usize = 0x40;
const CTX_SEG_SS: usize = 0x42;
const CTX_EFLAGS: usize = 0x44;
/// Rax, Rcx, Rdx, Rbx, Rsp, Rbp, Rsi, Rdi, R8 … R15, Rip: consecutive u64 from here.
const CTX_RAX: usize = 0x78;
const CTX_FLT_CONTROL_WORD: usize = 0x100;
const CTX_FLT_MXCSR: usize = 0x118;
const CTX_FLT_MXCSR_MASK: usize = 0x11C;

// EXCEPTION_RECORD64 (relative to OFF_EXCEPTION).
const EXCEPTION_RECORD_SIZE: usize = 0x98;
const EXC_CODE: usize = 0x00;
const EXC_FLAGS: usize = 0x04;
const EXC_RECORD: usize = 0x08;
const EXC_ADDRESS: usize = 0x10;
const EXC_NUMBER_PARAMETERS: usize = 0x18;
const EXC_INFORMATION: usize = 0x20;
/// Maximum number of exception parameters (EXCEPTION_MAXIMUM_PARAMETERS).
pub const EXCEPTION_MAXIMUM_PARAMETERS: usize = 15;

/// The processor state stored in the header's CONTEXT record (AMD64 layout).
///
/// `mxcsr` is written both to `CONTEXT.MxCsr` and to `CONTEXT.FltSave.MxCsr`, as every real dump has them equal
/// (the C++ kdmp-parser refuses a dump where they differ).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuContext {
    /// `ContextFlags`; the default 0x10001F is CONTEXT_AMD64 | CONTROL | INTEGER | SEGMENTS | FLOATING_POINT |
    /// DEBUG_REGISTERS.
    pub context_flags: u32,
    /// `MxCsr` (and `FltSave.MxCsr`).
    pub mxcsr: u32,
    /// Code segment selector.
    pub seg_cs: u16,
    /// Data segment selector.
    pub seg_ds: u16,
    /// Extra segment selector.
    pub seg_es: u16,
    /// FS selector.
    pub seg_fs: u16,
    /// GS selector.
    pub seg_gs: u16,
    /// Stack segment selector.
    pub seg_ss: u16,
    /// Flags register.
    pub eflags: u32,
    /// `Rax`.
    pub rax: u64,
    /// `Rcx`.
    pub rcx: u64,
    /// `Rdx`.
    pub rdx: u64,
    /// `Rbx`.
    pub rbx: u64,
    /// `Rsp`.
    pub rsp: u64,
    /// `Rbp`.
    pub rbp: u64,
    /// `Rsi`.
    pub rsi: u64,
    /// `Rdi`.
    pub rdi: u64,
    /// `R8`.
    pub r8: u64,
    /// `R9`.
    pub r9: u64,
    /// `R10`.
    pub r10: u64,
    /// `R11`.
    pub r11: u64,
    /// `R12`.
    pub r12: u64,
    /// `R13`.
    pub r13: u64,
    /// `R14`.
    pub r14: u64,
    /// `R15`.
    pub r15: u64,
    /// `Rip`.
    pub rip: u64,
}

impl CpuContext {
    /// Rax … R15 and Rip in CONTEXT order (consecutive u64 from CONTEXT offset 0x78).
    fn integer_registers(&self) -> [u64; 17] {
        [
            self.rax, self.rcx, self.rdx, self.rbx, self.rsp, self.rbp, self.rsi, self.rdi,
            self.r8, self.r9, self.r10, self.r11, self.r12, self.r13, self.r14, self.r15, self.rip,
        ]
    }
}

impl Default for CpuContext {
    /// A kernel-mode context as KeBugCheckEx leaves it: kernel selectors, interrupts enabled, MxCsr 0x1F80.
    fn default() -> Self {
        Self {
            context_flags: 0x0010_001F,
            mxcsr: 0x1F80,
            seg_cs: 0x10,
            seg_ds: 0x2B,
            seg_es: 0x2B,
            seg_fs: 0x53,
            seg_gs: 0x2B,
            seg_ss: 0x18,
            eflags: 0x0004_0246,
            rax: 0,
            rcx: 0,
            rdx: 0,
            rbx: 0,
            rsp: 0xFFFF_F806_2D26_F8B8,
            rbp: 0,
            rsi: 0,
            rdi: 0,
            r8: 0,
            r9: 0,
            r10: 0,
            r11: 0,
            r12: 0,
            r13: 0,
            r14: 0,
            r15: 0,
            rip: 0xFFFF_F806_2A1F_B5A0,
        }
    }
}

/// The header's EXCEPTION_RECORD64.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ExceptionRecord {
    /// `ExceptionCode`; the default is 0x80000003 (STATUS_BREAKPOINT).
    pub code: u32,
    /// `ExceptionFlags`.
    pub flags: u32,
    /// `ExceptionRecord` (address of a chained record).
    pub record: u64,
    /// `ExceptionAddress` (the default equals the default `CpuContext::rip`; set both when changing either).
    pub address: u64,
    /// `NumberParameters` (at most [`EXCEPTION_MAXIMUM_PARAMETERS`]; larger values are written as given).
    pub number_parameters: u32,
    /// `ExceptionInformation`.
    pub information: [u64; EXCEPTION_MAXIMUM_PARAMETERS],
}

impl Default for ExceptionRecord {
    fn default() -> Self {
        Self {
            code: 0x8000_0003,
            flags: 0,
            record: 0,
            address: CpuContext::default().rip,
            number_parameters: 0,
            information: [0; EXCEPTION_MAXIMUM_PARAMETERS],
        }
    }
}

/// Every settable DUMP_HEADER64 field. The directory table base, dump type, physical-memory descriptor and
/// required dump space come from the dump itself and are not settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderSettings {
    /// `MajorVersion`: 0xF for a free build, 0xC for a checked build.
    pub major_version: u32,
    /// `MinorVersion`: the Windows build number (default 19041).
    pub build_number: u32,
    /// `PfnDataBase`: VA of the PFN database.
    pub pfn_database: u64,
    /// `PsLoadedModuleList`: VA of the loaded-module list head (0 leaves module walks out).
    pub ps_loaded_module_list: u64,
    /// `PsActiveProcessHead`: VA of the process list head.
    pub ps_active_process_head: u64,
    /// `MachineImageType`: 0x8664 for x64 (0xAA64 for ARM64).
    pub machine_image_type: u32,
    /// `NumberProcessors`.
    pub number_processors: u32,
    /// `BugCheckCode` (default 0xE2, MANUALLY_INITIATED_CRASH).
    pub bug_check_code: u32,
    /// `BugCheckParameter1..4`.
    pub bug_check_parameters: [u64; 4],
    /// `KdDebuggerDataBlock`: VA of KDDEBUGGER_DATA64 (0 when absent).
    pub kd_debugger_data_block: u64,
    /// The CONTEXT record.
    pub context: CpuContext,
    /// The EXCEPTION_RECORD64.
    pub exception: ExceptionRecord,
    /// `SystemTime` as a FILETIME (100 ns since 1601-01-01 UTC).
    pub system_time: i64,
    /// `SystemUpTime` in 100 ns units.
    pub system_up_time: i64,
    /// `Comment` (at most 127 bytes; empty leaves the field 'PAGE'-filled as in real dumps).
    pub comment: String,
    /// `ProductType`: 1 = workstation, 2 = domain controller, 3 = server.
    pub product_type: u32,
    /// `SuiteMask`.
    pub suite_mask: u32,
    /// `KdSecondaryVersion`.
    pub kd_secondary_version: u8,
    /// `Attributes`.
    pub attributes: u32,
    /// `BootId`.
    pub boot_id: u32,
}

impl Default for HeaderSettings {
    fn default() -> Self {
        Self {
            major_version: 0xF,
            build_number: 19041,
            pfn_database: 0xFFFF_FA80_0000_0000,
            ps_loaded_module_list: 0,
            ps_active_process_head: 0,
            machine_image_type: 0x8664,
            number_processors: 2,
            bug_check_code: 0xE2,
            bug_check_parameters: [0; 4],
            kd_debugger_data_block: 0,
            context: CpuContext::default(),
            exception: ExceptionRecord::default(),
            // 2024-01-01 00:00:00 UTC.
            system_time: 133_485_408_000_000_000,
            // One hour.
            system_up_time: 36_000_000_000,
            comment: String::new(),
            product_type: 1,
            suite_mask: 0x110,
            kd_secondary_version: 0,
            attributes: 0,
            boot_id: 0,
        }
    }
}

/// The values of a header that come from the dump being written rather than from [`HeaderSettings`].
#[derive(Debug, Clone)]
pub(crate) struct DumpFacts<'a> {
    /// `DumpType`: 1 (full) or 5 (bitmap).
    pub(crate) dump_type: u32,
    /// `DirectoryTableBase`.
    pub(crate) directory_table_base: u64,
    /// `RequiredDumpSpace`: the file size.
    pub(crate) required_dump_space: u64,
    /// The runs written to PHYSICAL_MEMORY_DESCRIPTOR64 (at most [`MAX_FULL_DUMP_RUNS`]).
    pub(crate) memory_runs: &'a [Range<u64>],
}

/// Little-endian writes into a byte buffer at fixed offsets.
struct Fields<'a>(&'a mut [u8]);

impl Fields<'_> {
    fn bytes(&mut self, offset: usize, bytes: &[u8]) {
        self.0[offset..offset + bytes.len()].copy_from_slice(bytes);
    }
    fn zeros(&mut self, offset: usize, len: usize) {
        self.0[offset..offset + len].fill(0);
    }
    fn u8(&mut self, offset: usize, value: u8) {
        self.0[offset] = value;
    }
    fn u16(&mut self, offset: usize, value: u16) {
        self.bytes(offset, &value.to_le_bytes());
    }
    fn u32(&mut self, offset: usize, value: u32) {
        self.bytes(offset, &value.to_le_bytes());
    }
    fn u64(&mut self, offset: usize, value: u64) {
        self.bytes(offset, &value.to_le_bytes());
    }
    fn i64(&mut self, offset: usize, value: i64) {
        self.bytes(offset, &value.to_le_bytes());
    }
}

/// Encodes the 0x2000-byte DUMP_HEADER64.
pub(crate) fn encode_header(settings: &HeaderSettings, facts: &DumpFacts<'_>) -> Result<Vec<u8>> {
    if facts.memory_runs.len() > MAX_FULL_DUMP_RUNS {
        return Err(DumpError::TooManyRuns {
            runs: facts.memory_runs.len(),
            max: MAX_FULL_DUMP_RUNS,
        });
    }
    if settings.comment.len() >= COMMENT_SIZE {
        return Err(DumpError::CommentTooLong {
            len: settings.comment.len(),
        });
    }

    let mut header: Vec<u8> = SIGNATURE
        .iter()
        .copied()
        .cycle()
        .take(HEADER_SIZE as usize)
        .collect();
    let mut f = Fields(&mut header);

    f.bytes(OFF_SIGNATURE, SIGNATURE);
    f.bytes(OFF_VALID_DUMP, VALID_DUMP_64);
    f.u32(OFF_MAJOR_VERSION, settings.major_version);
    f.u32(OFF_MINOR_VERSION, settings.build_number);
    f.u64(OFF_DIRECTORY_TABLE_BASE, facts.directory_table_base);
    f.u64(OFF_PFN_DATABASE, settings.pfn_database);
    f.u64(OFF_PS_LOADED_MODULE_LIST, settings.ps_loaded_module_list);
    f.u64(OFF_PS_ACTIVE_PROCESS_HEAD, settings.ps_active_process_head);
    f.u32(OFF_MACHINE_IMAGE_TYPE, settings.machine_image_type);
    f.u32(OFF_NUMBER_PROCESSORS, settings.number_processors);
    f.u32(OFF_BUG_CHECK_CODE, settings.bug_check_code);
    for (i, &parameter) in settings.bug_check_parameters.iter().enumerate() {
        f.u64(OFF_BUG_CHECK_PARAMETERS + 8 * i, parameter);
    }
    f.zeros(OFF_VERSION_USER, VERSION_USER_SIZE);
    f.u64(OFF_KD_DEBUGGER_DATA_BLOCK, settings.kd_debugger_data_block);

    let pmd = OFF_PHYSICAL_MEMORY_BLOCK;
    let run_count = u32::try_from(facts.memory_runs.len()).unwrap_or(u32::MAX);
    let page_count: u64 = facts
        .memory_runs
        .iter()
        .map(|run| run.end - run.start)
        .sum();
    f.u32(pmd + PMD_NUMBER_OF_RUNS, run_count);
    f.u32(pmd + PMD_PADDING, 0);
    f.u64(pmd + PMD_NUMBER_OF_PAGES, page_count);
    for (i, run) in facts.memory_runs.iter().enumerate() {
        let at = pmd + PMD_RUNS + i * PMD_RUN_SIZE;
        f.u64(at, run.start);
        f.u64(at + 8, run.end - run.start);
    }

    let ctx = OFF_CONTEXT_RECORD;
    let context = &settings.context;
    f.zeros(ctx, CONTEXT_SIZE);
    f.u32(ctx + CTX_CONTEXT_FLAGS, context.context_flags);
    f.u32(ctx + CTX_MXCSR, context.mxcsr);
    f.u16(ctx + CTX_SEG_CS, context.seg_cs);
    f.u16(ctx + CTX_SEG_DS, context.seg_ds);
    f.u16(ctx + CTX_SEG_ES, context.seg_es);
    f.u16(ctx + CTX_SEG_FS, context.seg_fs);
    f.u16(ctx + CTX_SEG_GS, context.seg_gs);
    f.u16(ctx + CTX_SEG_SS, context.seg_ss);
    f.u32(ctx + CTX_EFLAGS, context.eflags);
    for (i, register) in context.integer_registers().into_iter().enumerate() {
        f.u64(ctx + CTX_RAX + 8 * i, register);
    }
    // FXSAVE defaults: x87 control word 0x27F, MXCSR mask of SSE2+ processors.
    f.u16(ctx + CTX_FLT_CONTROL_WORD, 0x27F);
    f.u32(ctx + CTX_FLT_MXCSR, context.mxcsr);
    f.u32(ctx + CTX_FLT_MXCSR_MASK, 0xFFFF);

    let exc = OFF_EXCEPTION;
    let exception = &settings.exception;
    f.zeros(exc, EXCEPTION_RECORD_SIZE);
    f.u32(exc + EXC_CODE, exception.code);
    f.u32(exc + EXC_FLAGS, exception.flags);
    f.u64(exc + EXC_RECORD, exception.record);
    f.u64(exc + EXC_ADDRESS, exception.address);
    f.u32(exc + EXC_NUMBER_PARAMETERS, exception.number_parameters);
    for (i, &information) in exception.information.iter().enumerate() {
        f.u64(exc + EXC_INFORMATION + 8 * i, information);
    }

    f.u32(OFF_DUMP_TYPE, facts.dump_type);
    f.i64(
        OFF_REQUIRED_DUMP_SPACE,
        i64::try_from(facts.required_dump_space).unwrap_or(i64::MAX),
    );
    f.i64(OFF_SYSTEM_TIME, settings.system_time);
    if !settings.comment.is_empty() {
        f.zeros(OFF_COMMENT, COMMENT_SIZE);
        f.bytes(OFF_COMMENT, settings.comment.as_bytes());
    }
    f.i64(OFF_SYSTEM_UP_TIME, settings.system_up_time);
    f.u32(OFF_MINI_DUMP_FIELDS, 0);
    f.u32(OFF_SECONDARY_DATA_STATE, 0);
    f.u32(OFF_PRODUCT_TYPE, settings.product_type);
    f.u32(OFF_SUITE_MASK, settings.suite_mask);
    f.u32(OFF_WRITER_STATUS, 0);
    f.u8(OFF_UNUSED1, 0);
    f.u8(OFF_KD_SECONDARY_VERSION, settings.kd_secondary_version);
    f.u16(OFF_UNUSED2, 0);
    f.u32(OFF_ATTRIBUTES, settings.attributes);
    f.u32(OFF_BOOT_ID, settings.boot_id);

    Ok(header)
}
