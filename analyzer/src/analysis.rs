//! One analysed dump: the opened file, its module list, the kernel and its symbols, and the pool counters.

use std::path::Path;

use crate::dump::{DumpError, DumpHeader, KernelDump, VirtualMemory};
use crate::heuristics::heuristic_symbols;
use crate::kernel::{KernelError, KernelSymbols, SourceKind, SymbolSource};
use crate::modules::{LoadedModule, ModuleList, kernel_from_kdbg, walk_loaded_modules};
use crate::pool::{PoolUsage, TrackerError, read_pool_usage, read_single_table};
use crate::processes::{
    ASSUMED_POOL_TAGS_OFFSET, ASSUMED_SESSION_ID_OFFSET, Process, ProcessLayout,
    session_representatives, walk_processes,
};
use crate::symbols::known::{KnownKernel, find_known};
use crate::symbols::{PdbId, SymbolPath, pdb_id_from_mapped_image};

/// Any failure of an analysis, with a one-line message.
#[derive(Debug, thiserror::Error)]
pub enum AnalysisError {
    /// The dump file.
    #[error("{path}: {source}")]
    Dump {
        /// The dump.
        path: String,
        /// Why.
        source: DumpError,
    },
    /// The kernel image could not be located.
    #[error("{path}: cannot find the kernel image: {reason}")]
    NoKernel {
        /// The dump.
        path: String,
        /// What was tried.
        reason: String,
    },
    /// No source gave the kernel's symbols.
    #[error("{path}: {reason}")]
    NoSymbols {
        /// The dump.
        path: String,
        /// Every source tried and why it failed.
        reason: String,
    },
    /// Symbols.
    #[error("{path}: {source}")]
    Kernel {
        /// The dump.
        path: String,
        /// Why.
        source: KernelError,
    },
    /// Tracker tables.
    #[error("{path}: {source}")]
    Tracker {
        /// The dump.
        path: String,
        /// Why.
        source: TrackerError,
    },
    /// Session pool cannot be read.
    #[error("{path}: session pool: {reason}")]
    Session {
        /// The dump.
        path: String,
        /// Why.
        reason: String,
    },
}

/// Facts about the dump and its symbols for reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct ReportContext {
    /// The dump file and header facts.
    pub dump: DumpFacts,
    /// Where the symbols came from.
    pub symbols: Option<SymbolSource>,
}

/// Dump facts shown in reports.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DumpFacts {
    /// Path as given.
    pub path: String,
    /// Dump kind.
    pub kind: crate::dump::DumpKind,
    /// Windows build number.
    pub build: u32,
    /// Processors (dump header).
    pub processors: u32,
    /// Bug check code.
    pub bug_check_code: u32,
    /// Physical pages in the dump.
    pub present_pages: usize,
    /// Kernel image base.
    pub kernel_base: u64,
}

/// What the analysis may use to find the kernel's symbols, tried in this order: the kernel's PDB on the symbol
/// path (local stores, then downloads), then further sources as they are enabled.
#[derive(Debug, Clone, Default)]
pub struct SymbolOptions {
    /// Where to look for `ntkrnlmp.pdb`.
    pub path: SymbolPath,
    /// Known kernels (PDB GUID+age → RVAs and layouts), used when the PDB is not found.
    pub known: &'static [KnownKernel],
}

/// One symbol source that was tried.
#[derive(Debug, Clone, serde::Serialize)]
pub struct SymbolAttempt {
    /// The source.
    pub source: SourceKind,
    /// Whether it gave the symbols.
    pub ok: bool,
    /// Where they came from, or why the source could not give them.
    pub detail: String,
}

/// The outcome of resolving the kernel's symbols.
#[derive(Debug, Clone, Default)]
pub struct SymbolResolution {
    /// The kernel's PDB identity from its in-memory image, or why it could not be read.
    pub pdb_id: Option<PdbId>,
    /// The symbols, if any source gave them.
    pub symbols: Option<KernelSymbols>,
    /// Every source tried, in order.
    pub attempts: Vec<SymbolAttempt>,
    /// What the chosen source wants the reader to know (heuristics always say so).
    pub warnings: Vec<String>,
}

/// An opened dump with its kernel located and its symbols resolved (or the reasons they are not).
pub struct DumpAnalysis {
    dump: KernelDump,
    modules: ModuleList,
    kernel: LoadedModule,
    resolution: SymbolResolution,
    warnings: Vec<String>,
}

impl DumpAnalysis {
    /// Opens `path`, walks the module list, finds the kernel and resolves its symbols with `options`.
    ///
    /// Fails when the dump cannot be read or the kernel image cannot be found; missing symbols are not an error
    /// here (see [`DumpAnalysis::symbols`] and [`DumpAnalysis::resolution`]).
    pub fn open(path: &Path, options: &SymbolOptions) -> Result<Self, AnalysisError> {
        let shown = path.display().to_string();
        let dump = KernelDump::open(path).map_err(|source| AnalysisError::Dump {
            path: shown.clone(),
            source,
        })?;
        let header = dump.header().clone();
        let mem = dump.memory();
        let mut warnings = Vec::new();
        let (modules, list_problem) = match walk_loaded_modules(&mem, header.ps_loaded_module_list)
        {
            Ok(list) => {
                let problem = format!(
                    "no ntoskrnl.exe among the {} modules of PsLoadedModuleList at {:#x}",
                    list.modules.len(),
                    header.ps_loaded_module_list
                );
                (list, problem)
            }
            Err(fault) => (
                ModuleList::default(),
                format!(
                    "PsLoadedModuleList head at {:#x} (dump header offset 0x20) is unreadable: {fault}",
                    header.ps_loaded_module_list
                ),
            ),
        };
        let kernel = match modules.kernel().cloned() {
            Some(kernel) => kernel,
            None => match kernel_from_kdbg(&mem, header.kd_debugger_data_block) {
                Ok(kernel) => {
                    warnings.push(format!("{list_problem}; found the kernel through KDDEBUGGER_DATA64.KernBase instead"));
                    kernel
                }
                Err(kdbg_problem) => {
                    let mut reason = list_problem;
                    for w in &modules.warnings {
                        reason.push_str("; ");
                        reason.push_str(w);
                    }
                    reason.push_str("; ");
                    reason.push_str(&kdbg_problem);
                    return Err(AnalysisError::NoKernel {
                        path: shown,
                        reason,
                    });
                }
            },
        };
        warnings.extend(modules.warnings.iter().cloned());
        let resolution = resolve_symbols(&mem, &header, &kernel, options);
        warnings.extend(resolution.warnings.iter().cloned());
        if let Some(symbols) = &resolution.symbols
            && let Some(Ok(build)) = symbols.build_number(&mem)
            && build != header.build
        {
            warnings.push(format!(
                "NtBuildNumber says build {build} but the dump header says {}",
                header.build
            ));
        }
        Ok(Self {
            dump,
            modules,
            kernel,
            resolution,
            warnings,
        })
    }

    /// The opened dump.
    pub fn dump(&self) -> &KernelDump {
        &self.dump
    }

    /// The kernel address space of the dump.
    pub fn memory(&self) -> crate::dump::DumpMemory<'_> {
        self.dump.memory()
    }

    /// The dump header.
    pub fn header(&self) -> &DumpHeader {
        self.dump.header()
    }

    /// Loaded modules.
    pub fn modules(&self) -> &ModuleList {
        &self.modules
    }

    /// The kernel module.
    pub fn kernel(&self) -> &LoadedModule {
        &self.kernel
    }

    /// Kernel symbols, or one line saying every source that was tried and why it failed.
    pub fn symbols(&self) -> Result<&KernelSymbols, AnalysisError> {
        self.resolution
            .symbols
            .as_ref()
            .ok_or_else(|| AnalysisError::NoSymbols {
                path: self.shown(),
                reason: self
                    .resolution
                    .attempts
                    .iter()
                    .map(|a| a.detail.as_str())
                    .collect::<Vec<_>>()
                    .join("; "),
            })
    }

    /// How the symbols were resolved: the PDB identity and every source tried.
    pub fn resolution(&self) -> &SymbolResolution {
        &self.resolution
    }

    /// Warnings gathered while opening.
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Facts for reports.
    pub fn context(&self) -> ReportContext {
        let h = self.dump.header();
        ReportContext {
            dump: DumpFacts {
                path: self.dump.path().display().to_string(),
                kind: h.kind,
                build: h.build,
                processors: h.number_processors,
                bug_check_code: h.bug_check_code,
                present_pages: self.dump.present_pages(),
                kernel_base: self.kernel.base,
            },
            symbols: self.resolution.symbols.as_ref().map(|s| s.source.clone()),
        }
    }

    fn shown(&self) -> String {
        self.dump.path().display().to_string()
    }

    /// Sums the system pool tracker tables (global, per-processor, expansion).
    pub fn pool_usage(&self) -> Result<PoolUsage, AnalysisError> {
        let symbols = self.symbols()?;
        let tracker = symbols
            .tracker_symbols()
            .map_err(|source| AnalysisError::Kernel {
                path: self.shown(),
                source,
            })?;
        read_pool_usage(
            &self.dump.memory(),
            &tracker,
            &symbols.tracker_layout,
            self.dump.header().number_processors,
        )
        .map_err(|source| AnalysisError::Tracker {
            path: self.shown(),
            source,
        })
    }

    /// Reads a session's pool tracker (`!poolused 8`) through the page tables of a process of that session.
    ///
    /// `wanted` picks the session; by default the session of the dump's current process, else the lowest
    /// session id above 0, else session 0. Up to 20348 the table is `nt!ExpSessionPoolTrackTable`; from 22000
    /// it is `_MM_SESSION_SPACE.PoolTags` of the process's session.
    pub fn session_pool_usage(
        &self,
        wanted: Option<u32>,
    ) -> Result<(PoolUsage, Process), AnalysisError> {
        let symbols = self.symbols()?;
        let header = self.dump.header();
        let session = |reason: String| AnalysisError::Session {
            path: self.shown(),
            reason,
        };
        let layout = ProcessLayout::from_layouts(
            symbols.layouts.get("_EPROCESS"),
            symbols.layouts.get("_KPROCESS"),
            symbols.layouts.get("_MM_SESSION_SPACE"),
        )
        .map_err(|e| {
            session(format!(
                "needs process layouts from the kernel's PDB: {e} (symbols came from {})",
                symbols.source.kind
            ))
        })?;
        let mem = self.dump.memory();
        let head = symbols
            .va("PsActiveProcessHead")
            .unwrap_or(header.ps_active_process_head);
        let (processes, problem) = walk_processes(&mem, head, &layout, |dtb, va, buf| {
            self.dump.memory_with_dtb(dtb).read_virt(va, buf)
        })
        .map_err(|f| session(format!("cannot read PsActiveProcessHead: {f}")))?;
        let sessions = session_representatives(&processes);
        let current_dtb = header.directory_table_base & !0xFFF;
        let current = processes
            .iter()
            .find(|p| p.dtb == current_dtb && p.session_id.is_some());
        let chosen = match wanted {
            Some(id) => sessions.get(&id).copied().ok_or_else(|| {
                session(format!(
                    "no process of session {id} in the dump (sessions: {:?})",
                    sessions.keys().collect::<Vec<_>>()
                ))
            })?,
            None => current
                .or_else(|| sessions.range(1..).next().map(|(_, p)| *p))
                .or_else(|| sessions.values().next().copied())
                .ok_or_else(|| {
                    let mut reason = format!(
                        "none of the {} processes of PsActiveProcessHead has a session",
                        processes.len()
                    );
                    if let Some(problem) = &problem {
                        reason.push_str("; ");
                        reason.push_str(problem);
                    }
                    session(reason)
                })?,
        };
        let session_id = chosen.session_id.unwrap_or_default();
        let size_var = symbols
            .va("ExpSessionPoolTrackTableSize")
            .ok_or_else(|| session("no nt!ExpSessionPoolTrackTableSize symbol".to_string()))?;
        let entries = mem
            .read_u64(size_var)
            .map_err(|f| session(format!("cannot read nt!ExpSessionPoolTrackTableSize: {f}")))?;
        let process_mem = self.dump.memory_with_dtb(chosen.dtb);
        let (table, what) = match symbols.va("ExpSessionPoolTrackTable") {
            Some(var) => (
                mem.read_u64(var).map_err(|f| {
                    session(format!("cannot read nt!ExpSessionPoolTrackTable: {f}"))
                })?,
                "nt!ExpSessionPoolTrackTable",
            ),
            None => {
                let offset = layout.pool_tags_pointer.ok_or_else(|| {
                    session(format!(
                        "this kernel (build {}) has neither nt!ExpSessionPoolTrackTable nor a PoolTags pointer in _MM_SESSION_SPACE",
                        header.build
                    ))
                })?;
                let at = chosen.session_space + offset;
                (
                    process_mem.read_u64(at).map_err(|f| {
                        session(format!(
                            "cannot read _MM_SESSION_SPACE.PoolTags at {at:#x}: {f}"
                        ))
                    })?,
                    "_MM_SESSION_SPACE.PoolTags",
                )
            }
        };
        if table == 0 {
            return Err(session(format!(
                "{what} of session {session_id} is NULL: no session pool tracker in this dump"
            )));
        }
        let name = format!(
            "the session {session_id} pool tracker ({what}, read through {} pid {})",
            chosen.name, chosen.pid
        );
        let mut usage =
            read_single_table(&process_mem, &name, table, entries, &symbols.tracker_layout)
                .map_err(|source| match source {
                    TrackerError::TableMissing { va, fault, .. } => session(format!(
                        "{name}: the table at {va:#x} is not in the dump ({fault})"
                    )),
                    other => AnalysisError::Tracker {
                        path: self.shown(),
                        source: other,
                    },
                })?;
        if layout.session_assumed {
            usage.warnings.push(format!(
                "the PDB has no _MM_SESSION_SPACE: assumed SessionId at {ASSUMED_SESSION_ID_OFFSET:#x} and PoolTags at {ASSUMED_POOL_TAGS_OFFSET:#x}"
            ));
        }
        if let Some(problem) = problem {
            usage.warnings.push(problem);
        }
        Ok((usage, chosen.clone()))
    }
}

/// Tries the symbol sources in order and records each attempt.
fn resolve_symbols(
    mem: &impl VirtualMemory,
    header: &DumpHeader,
    kernel: &LoadedModule,
    options: &SymbolOptions,
) -> SymbolResolution {
    let mut resolution = SymbolResolution::default();
    let pdb_id = match pdb_id_from_mapped_image(|rva, buf: &mut [u8]| {
        mem.read_virt(kernel.base.wrapping_add(u64::from(rva)), buf)
            .map_err(Box::new)
    }) {
        Ok(id) => id,
        Err(error) => {
            resolution.attempts.push(SymbolAttempt {
                source: SourceKind::Pdb,
                ok: false,
                detail: format!(
                    "no PDB identity: kernel image at {:#x}: {error}",
                    kernel.base
                ),
            });
            return resolution;
        }
    };
    resolution.pdb_id = Some(pdb_id.clone());
    match KernelSymbols::resolve_pdb(kernel.base, pdb_id.clone(), &options.path) {
        Ok(symbols) => {
            resolution.attempts.push(SymbolAttempt {
                source: symbols.source.kind,
                ok: true,
                detail: symbols.source.location.clone(),
            });
            resolution.symbols = Some(symbols);
        }
        Err(error) => resolution.attempts.push(SymbolAttempt {
            source: SourceKind::Pdb,
            ok: false,
            detail: error.to_string(),
        }),
    }
    if resolution.symbols.is_some() {
        return resolution;
    }
    match find_known(options.known, &pdb_id) {
        Some(known) => match known.kernel_symbols(kernel.base, pdb_id.clone()) {
            Ok(symbols) => {
                resolution.attempts.push(SymbolAttempt {
                    source: SourceKind::Builtin,
                    ok: true,
                    detail: symbols.source.location.clone(),
                });
                resolution.symbols = Some(symbols);
            }
            Err(error) => resolution.attempts.push(SymbolAttempt {
                source: SourceKind::Builtin,
                ok: false,
                detail: format!("built-in table entry {}: {error}", known.version),
            }),
        },
        None => resolution.attempts.push(SymbolAttempt {
            source: SourceKind::Builtin,
            ok: false,
            detail: format!(
                "not among the {} kernels of the built-in table",
                options.known.len()
            ),
        }),
    }
    if resolution.symbols.is_some() {
        return resolution;
    }
    match heuristic_symbols(mem, header, kernel.base, pdb_id) {
        Ok(found) => {
            resolution.attempts.push(SymbolAttempt {
                source: SourceKind::Heuristic,
                ok: true,
                detail: found.symbols.source.location.clone(),
            });
            resolution.warnings.extend(found.warnings);
            resolution.symbols = Some(found.symbols);
        }
        Err(error) => resolution.attempts.push(SymbolAttempt {
            source: SourceKind::Heuristic,
            ok: false,
            detail: format!("heuristics: {error}"),
        }),
    }
    resolution
}
