//! One analysed dump: the opened file, its module list, the kernel and its symbols, and the pool counters.

use std::path::Path;

use crate::dump::{DumpError, DumpHeader, KernelDump, VirtualMemory};
use crate::kernel::{KernelError, KernelSymbols, SymbolSource};
use crate::modules::{LoadedModule, ModuleList, kernel_from_kdbg, walk_loaded_modules};
use crate::pool::{PoolUsage, TrackerError, read_pool_usage, read_single_table};
use crate::symbols::SymbolPath;

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
    pub symbols: SymbolSource,
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

/// An opened dump with its kernel resolved.
pub struct DumpAnalysis {
    dump: KernelDump,
    modules: ModuleList,
    kernel: LoadedModule,
    symbols: KernelSymbols,
    warnings: Vec<String>,
}

impl DumpAnalysis {
    /// Opens `path`, walks the module list, finds the kernel and resolves its symbols along `symbol_path`.
    pub fn open(path: &Path, symbol_path: &SymbolPath) -> Result<Self, AnalysisError> {
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
        let symbols = KernelSymbols::resolve(&mem, kernel.base, symbol_path).map_err(|source| {
            AnalysisError::Kernel {
                path: shown.clone(),
                source,
            }
        })?;
        if let Some(Ok(build)) = symbols.build_number(&mem)
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
            symbols,
            warnings,
        })
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

    /// Kernel symbols.
    pub fn symbols(&self) -> &KernelSymbols {
        &self.symbols
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
            symbols: self.symbols.source.clone(),
        }
    }

    fn shown(&self) -> String {
        self.dump.path().display().to_string()
    }

    /// Sums the system pool tracker tables (global, per-processor, expansion).
    pub fn pool_usage(&self) -> Result<PoolUsage, AnalysisError> {
        let tracker = self
            .symbols
            .tracker_symbols()
            .map_err(|source| AnalysisError::Kernel {
                path: self.shown(),
                source,
            })?;
        read_pool_usage(
            &self.dump.memory(),
            &tracker,
            &self.symbols.tracker_layout,
            self.dump.header().number_processors,
        )
        .map_err(|source| AnalysisError::Tracker {
            path: self.shown(),
            source,
        })
    }

    /// Reads the session pool tracker (`!poolused 8`) in the dump's current address space.
    pub fn session_pool_usage(&self) -> Result<PoolUsage, AnalysisError> {
        let session = |reason: String| AnalysisError::Session {
            path: self.shown(),
            reason,
        };
        let (Some(table_var), Some(size_var)) = (
            self.symbols.va("ExpSessionPoolTrackTable"),
            self.symbols.va("ExpSessionPoolTrackTableSize"),
        ) else {
            return Err(session(format!(
                "this kernel (build {}) has no nt!ExpSessionPoolTrackTable; Windows 11 and later keep session trackers in MmSessionSpace->PoolTags, which pooltop does not read yet",
                self.dump.header().build
            )));
        };
        let mem = self.dump.memory();
        let table = mem
            .read_u64(table_var)
            .map_err(|f| session(format!("cannot read nt!ExpSessionPoolTrackTable: {f}")))?;
        let entries = mem
            .read_u64(size_var)
            .map_err(|f| session(format!("cannot read nt!ExpSessionPoolTrackTableSize: {f}")))?;
        if table == 0 {
            return Err(session(
                "nt!ExpSessionPoolTrackTable is NULL: no session pool in this dump".to_string(),
            ));
        }
        read_single_table(&mem, "the session pool tracker (ExpSessionPoolTrackTable)", table, entries, &self.symbols.tracker_layout)
            .map_err(|source| match source {
                TrackerError::TableMissing { va, .. } => session(format!(
                    "the table at {va:#x} is session space, not mapped in the dump's current address space (DTB {:#x}); the dump was taken in a process without a session",
                    self.dump.header().directory_table_base
                )),
                other => AnalysisError::Tracker { path: self.shown(), source: other },
            })
    }
}
