//! Shared helpers of the integration tests: generated dumps with their symbol store, and running the binary.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pooltop_synth::dump::DumpFormat;
use pooltop_synth::scenario::{BuiltScenario, Scenario};

/// `../shared/data` beside the checkout.
pub fn shared_data() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared/data")
}

/// The real pooltag.txt.
pub fn real_pooltag() -> PathBuf {
    shared_data().join("pooltag.txt")
}

/// A generated dump on disk with the symbol store of its kernel.
pub struct DumpOnDisk {
    /// Keeps the folder alive.
    pub dir: tempfile::TempDir,
    /// The dump file.
    pub path: PathBuf,
    /// `srv*<store>`.
    pub symbol_path: String,
    /// What was built.
    pub built: BuiltScenario,
}

/// Builds `scenario`, writes it as `format` and lays out the kernel's symbol store.
pub fn write_dump(scenario: &Scenario, format: DumpFormat) -> DumpOnDisk {
    let built = scenario.build().expect("scenario builds");
    write_built(built, format)
}

/// Writes an already built (possibly edited) scenario.
pub fn write_built(built: BuiltScenario, format: DumpFormat) -> DumpOnDisk {
    let dir = tempfile::tempdir().expect("temp dir");
    let store = dir.path().join("symbols");
    built
        .scenario
        .kernel
        .write_symbol_store(&store)
        .expect("symbol store");
    let path = dir.path().join("MEMORY.DMP");
    built.write_file(format, &path).expect("dump written");
    DumpOnDisk {
        symbol_path: format!("srv*{}", store.display()),
        dir,
        path,
        built,
    }
}

/// Runs the pooltop binary with a clean symbol environment.
pub fn pooltop(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_pooltop"))
        .args(args)
        .env_remove("_NT_SYMBOL_PATH")
        .env_remove("_NT_ALT_SYMBOL_PATH")
        .env_remove("POOLTOP_POOLTAG")
        .env("XDG_CONFIG_HOME", "/nonexistent-pooltop-config")
        .output()
        .expect("pooltop runs")
}

/// `pooltop dump` on a generated dump with the real pooltag.txt.
pub fn pooltop_dump(dump: &DumpOnDisk, extra: &[&str]) -> Output {
    let path = dump.path.display().to_string();
    let pooltag = real_pooltag().display().to_string();
    let mut args = vec![
        "dump",
        path.as_str(),
        "--symbol-path",
        dump.symbol_path.as_str(),
        "--pooltag",
        pooltag.as_str(),
    ];
    args.extend_from_slice(extra);
    pooltop(&args)
}

/// stdout as text, asserting success.
pub fn stdout_ok(output: &Output) -> String {
    assert!(
        output.status.success(),
        "pooltop failed ({:?}): {}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    String::from_utf8(output.stdout.clone()).expect("utf-8 output")
}
