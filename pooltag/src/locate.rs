//! Finding pooltag.txt and localtag.txt on disk.
//!
//! The environment is passed in as an [`Env`] value so tests can describe any machine (Windows paths
//! included) without touching the process environment; [`Env::from_process`] reads the real one.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::db::PoolTagDb;
use crate::entry::SourceKind;
use crate::error::PoolTagError;

/// Name of the environment variable that points at a pooltag.txt file.
pub const POOLTAG_ENV_VAR: &str = "POOLTOP_POOLTAG";

/// Which family of default locations to search.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OsFamily {
    /// WinDbg install folders under `%ProgramFiles(x86)%` / `%ProgramFiles%`, then `%APPDATA%\pooltop`.
    Windows,
    /// `$XDG_CONFIG_HOME/pooltop`, else `$HOME/.config/pooltop`.
    Unix,
}

/// The environment values [`locate_with`] uses. Empty values count as unset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Env {
    /// Which default locations apply.
    pub os: OsFamily,
    /// `POOLTOP_POOLTAG`: path of a pooltag.txt.
    pub pooltop_pooltag: Option<OsString>,
    /// `ProgramFiles(x86)` (Windows).
    pub program_files_x86: Option<OsString>,
    /// `ProgramFiles` (Windows).
    pub program_files: Option<OsString>,
    /// `APPDATA` (Windows).
    pub appdata: Option<OsString>,
    /// `XDG_CONFIG_HOME` (Unix; ignored unless absolute).
    pub xdg_config_home: Option<OsString>,
    /// `HOME` (Unix).
    pub home: Option<OsString>,
}

impl Env {
    /// Build from a variable-lookup function (e.g. `|name| std::env::var_os(name)`).
    pub fn from_lookup(os: OsFamily, mut var: impl FnMut(&str) -> Option<OsString>) -> Self {
        let mut get = |name: &str| var(name).filter(|v| !v.is_empty());
        Env {
            os,
            pooltop_pooltag: get(POOLTAG_ENV_VAR),
            program_files_x86: get("ProgramFiles(x86)"),
            program_files: get("ProgramFiles"),
            appdata: get("APPDATA"),
            xdg_config_home: get("XDG_CONFIG_HOME"),
            home: get("HOME"),
        }
    }

    /// The current process's environment, with the OS family this program was built for.
    pub fn from_process() -> Self {
        let os = if cfg!(windows) {
            OsFamily::Windows
        } else {
            OsFamily::Unix
        };
        Env::from_lookup(os, |name| std::env::var_os(name))
    }

    /// The per-user configuration folder `pooltop` (`%APPDATA%\pooltop`, `$XDG_CONFIG_HOME/pooltop` or
    /// `$HOME/.config/pooltop`), if the needed variables are set.
    pub fn user_config_dir(&self) -> Option<PathBuf> {
        match self.os {
            OsFamily::Windows => self.appdata.as_ref().map(|a| Path::new(a).join("pooltop")),
            OsFamily::Unix => {
                let xdg = self
                    .xdg_config_home
                    .as_ref()
                    .map(PathBuf::from)
                    .filter(|p| p.is_absolute());
                xdg.or_else(|| self.home.as_ref().map(|h| Path::new(h).join(".config")))
                    .map(|base| base.join("pooltop"))
            }
        }
    }

    /// The WinDbg / Debugging Tools install locations of `triage\pooltag.txt`, in search order (empty on
    /// Unix): Windows Kits 10 x64, x86; 8.1 x64, x86; 8.0 x64 (all under `%ProgramFiles(x86)%`, or
    /// `%ProgramFiles%` when that is unset); then `%ProgramFiles%\Debugging Tools for Windows (x64)`.
    pub fn debugger_install_paths(&self) -> Vec<PathBuf> {
        if self.os != OsFamily::Windows {
            return Vec::new();
        }
        let mut paths = Vec::new();
        if let Some(root) = self
            .program_files_x86
            .as_ref()
            .or(self.program_files.as_ref())
        {
            for (version, arch) in [
                ("10", "x64"),
                ("10", "x86"),
                ("8.1", "x64"),
                ("8.1", "x86"),
                ("8.0", "x64"),
            ] {
                paths.push(
                    Path::new(root)
                        .join("Windows Kits")
                        .join(version)
                        .join("Debuggers")
                        .join(arch)
                        .join("triage")
                        .join("pooltag.txt"),
                );
            }
        }
        if let Some(root) = &self.program_files {
            paths.push(
                Path::new(root)
                    .join("Debugging Tools for Windows (x64)")
                    .join("triage")
                    .join("pooltag.txt"),
            );
        }
        paths
    }
}

/// How the pooltag.txt in a [`Located`] was found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FoundVia {
    /// Given explicitly (`--pooltag FILE`).
    Explicit,
    /// From the `POOLTOP_POOLTAG` environment variable.
    EnvVar,
    /// A WinDbg / Debugging Tools for Windows install folder.
    DebuggerInstall,
    /// The per-user configuration folder.
    UserConfig,
}

/// A file that was found, and how.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Found {
    /// The file.
    pub path: PathBuf,
    /// How it was found.
    pub via: FoundVia,
}

/// The outcome of a search: which files were found and every place that was looked at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Located {
    /// The pooltag.txt to use, if any.
    pub pooltag: Option<Found>,
    /// The localtag.txt to overlay, if any (next to the pooltag.txt, else in the user config folder).
    pub localtag: Option<PathBuf>,
    /// Every pooltag.txt location checked, in order, up to and including the one found.
    pub searched: Vec<PathBuf>,
    /// Every localtag.txt location checked, in order.
    pub searched_localtag: Vec<PathBuf>,
}

impl Located {
    /// A one-line hint for stderr when no pooltag.txt was found; `None` when one was.
    pub fn not_found_hint(&self) -> Option<String> {
        if self.pooltag.is_some() {
            return None;
        }
        let searched = if self.searched.is_empty() {
            "nowhere: no candidate folder could be built from the environment".to_owned()
        } else {
            self.searched
                .iter()
                .map(|p| p.display().to_string())
                .collect::<Vec<_>>()
                .join(", ")
        };
        Some(format!(
            "no pooltag.txt found (searched: {searched}); descriptions show UNKNOWN; pass --pooltag FILE or set {POOLTAG_ENV_VAR}"
        ))
    }

    /// Load what was found: the pooltag.txt (or an empty database) overlaid with the localtag.txt.
    pub fn load(&self) -> Result<PoolTagDb, PoolTagError> {
        let mut db = match &self.pooltag {
            Some(found) => PoolTagDb::load(&found.path, SourceKind::PoolTagTxt)?,
            None => PoolTagDb::empty(),
        };
        if let Some(local) = &self.localtag {
            db.merge_local(PoolTagDb::load(local, SourceKind::LocalTagTxt)?);
        }
        Ok(db)
    }
}

/// Find pooltag.txt and localtag.txt using the process environment. See [`locate_with`].
pub fn locate(explicit: Option<&Path>) -> Result<Located, PoolTagError> {
    locate_with(explicit, &Env::from_process())
}

/// Find pooltag.txt, in this order, taking the first that is an existing file:
///
/// 1. `explicit` (`--pooltag FILE`): must exist, else [`PoolTagError::NotFound`];
/// 2. `POOLTOP_POOLTAG`: must exist when set, else [`PoolTagError::NotFound`];
/// 3. on Windows, the WinDbg install folders ([`Env::debugger_install_paths`]);
/// 4. the per-user config folder ([`Env::user_config_dir`]) + `pooltag.txt`.
///
/// Then localtag.txt: next to the found pooltag.txt, else in the per-user config folder. Finding nothing
/// is not an error: see [`Located::not_found_hint`].
pub fn locate_with(explicit: Option<&Path>, env: &Env) -> Result<Located, PoolTagError> {
    let mut searched = Vec::new();
    let pooltag = find_pooltag(explicit, env, &mut searched)?;

    let mut searched_localtag = Vec::new();
    if let Some(dir) = pooltag.as_ref().and_then(|f| f.path.parent()) {
        searched_localtag.push(dir.join(SourceKind::LocalTagTxt.file_name()));
    }
    if let Some(dir) = env.user_config_dir() {
        let candidate = dir.join(SourceKind::LocalTagTxt.file_name());
        if !searched_localtag.contains(&candidate) {
            searched_localtag.push(candidate);
        }
    }
    let localtag = searched_localtag.iter().find(|p| p.is_file()).cloned();

    Ok(Located {
        pooltag,
        localtag,
        searched,
        searched_localtag,
    })
}

fn find_pooltag(
    explicit: Option<&Path>,
    env: &Env,
    searched: &mut Vec<PathBuf>,
) -> Result<Option<Found>, PoolTagError> {
    let required = [
        (
            explicit.map(Path::to_path_buf),
            FoundVia::Explicit,
            "--pooltag",
        ),
        (
            env.pooltop_pooltag.as_ref().map(PathBuf::from),
            FoundVia::EnvVar,
            POOLTAG_ENV_VAR,
        ),
    ];
    for (path, via, given_by) in required {
        if let Some(path) = path {
            searched.push(path.clone());
            if path.is_file() {
                return Ok(Some(Found { path, via }));
            }
            return Err(PoolTagError::NotFound { path, given_by });
        }
    }

    let defaults = env
        .debugger_install_paths()
        .into_iter()
        .map(|p| (p, FoundVia::DebuggerInstall))
        .chain(env.user_config_dir().map(|d| {
            (
                d.join(SourceKind::PoolTagTxt.file_name()),
                FoundVia::UserConfig,
            )
        }));
    for (path, via) in defaults {
        searched.push(path.clone());
        if path.is_file() {
            return Ok(Some(Found { path, via }));
        }
    }
    Ok(None)
}
