//! Locating pooltag.txt / localtag.txt with an injected environment and real temporary folders.

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers unwrap too.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use pooltop_pooltag::{Env, FoundVia, OsFamily, PoolTagError, locate_with};

fn unix_env() -> Env {
    Env::from_lookup(OsFamily::Unix, |_| None)
}

fn windows_env() -> Env {
    Env::from_lookup(OsFamily::Windows, |_| None)
}

fn put(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
    std::fs::write(path, text).expect("write");
}

#[test]
fn from_lookup_reads_the_named_variables_and_ignores_empty_ones() {
    let env = Env::from_lookup(OsFamily::Windows, |name| match name {
        "POOLTOP_POOLTAG" => Some(OsString::from("/x/pooltag.txt")),
        "ProgramFiles(x86)" => Some(OsString::from("C:\\PF86")),
        "ProgramFiles" => Some(OsString::from("")),
        "APPDATA" => Some(OsString::from("C:\\AD")),
        _ => None,
    });
    assert_eq!(env.pooltop_pooltag, Some(OsString::from("/x/pooltag.txt")));
    assert_eq!(env.program_files_x86, Some(OsString::from("C:\\PF86")));
    assert_eq!(env.program_files, None);
    assert_eq!(env.appdata, Some(OsString::from("C:\\AD")));
    assert_eq!(env.home, None);
}

#[test]
fn windows_debugger_install_paths_in_order() {
    let mut env = windows_env();
    env.program_files_x86 = Some("PF86".into());
    env.program_files = Some("PF".into());
    let kits = |v: &str, a: &str| -> PathBuf {
        [
            "PF86",
            "Windows Kits",
            v,
            "Debuggers",
            a,
            "triage",
            "pooltag.txt",
        ]
        .iter()
        .collect()
    };
    let expected = vec![
        kits("10", "x64"),
        kits("10", "x86"),
        kits("8.1", "x64"),
        kits("8.1", "x86"),
        kits("8.0", "x64"),
        [
            "PF",
            "Debugging Tools for Windows (x64)",
            "triage",
            "pooltag.txt",
        ]
        .iter()
        .collect(),
    ];
    assert_eq!(env.debugger_install_paths(), expected);
    assert!(unix_env().debugger_install_paths().is_empty());
}

#[test]
fn explicit_file_wins_and_must_exist() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("my.txt");
    put(&file, "Abcd - a.sys - x\n");
    let mut env = unix_env();
    env.pooltop_pooltag = Some(dir.path().join("other.txt").into());
    let got = locate_with(Some(&file), &env).expect("found");
    assert_eq!(got.not_found_hint(), None);
    assert_eq!(got.searched, std::slice::from_ref(&file));
    let found = got.pooltag.expect("found");
    assert_eq!(found.path, file);
    assert_eq!(found.via, FoundVia::Explicit);

    let missing = dir.path().join("missing.txt");
    let err = locate_with(Some(&missing), &env).expect_err("missing explicit file");
    assert!(matches!(
        err,
        PoolTagError::NotFound {
            given_by: "--pooltag",
            ..
        }
    ));
    assert_eq!(
        err.to_string(),
        format!("{}: no such file (given by --pooltag)", missing.display())
    );
}

#[test]
fn env_var_is_used_and_must_exist() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("pt.txt");
    put(&file, "Abcd - a.sys - x\n");
    let mut env = unix_env();
    env.pooltop_pooltag = Some(file.clone().into());
    let found = locate_with(None, &env).expect("ok").pooltag.expect("found");
    assert_eq!((found.path, found.via), (file, FoundVia::EnvVar));

    env.pooltop_pooltag = Some(dir.path().join("gone.txt").into());
    let err = locate_with(None, &env).expect_err("missing");
    assert!(matches!(
        err,
        PoolTagError::NotFound {
            given_by: "POOLTOP_POOLTAG",
            ..
        }
    ));
}

#[test]
fn windows_kits_then_appdata() {
    let dir = tempfile::tempdir().expect("tempdir");
    let pf86 = dir.path().join("pf86");
    let appdata = dir.path().join("appdata");
    let mut env = windows_env();
    env.program_files_x86 = Some(pf86.clone().into());
    env.appdata = Some(appdata.clone().into());

    let user = appdata.join("pooltop").join("pooltag.txt");
    put(&user, "Abcd - a.sys - x\n");
    let got = locate_with(None, &env).expect("ok");
    assert_eq!(
        got.pooltag.as_ref().map(|f| f.via),
        Some(FoundVia::UserConfig)
    );
    assert_eq!(
        got.searched.len(),
        6,
        "5 Windows Kits paths, then the user config"
    );
    assert_eq!(got.searched.last(), Some(&user));

    let x86 = pf86.join("Windows Kits/10/Debuggers/x86/triage/pooltag.txt");
    put(&x86, "Abcd - b.sys - x\n");
    let got = locate_with(None, &env).expect("ok");
    let found = got.pooltag.expect("found");
    assert_eq!(
        (found.path, found.via),
        (x86.clone(), FoundVia::DebuggerInstall)
    );
    assert_eq!(got.searched.len(), 2);
    assert_eq!(got.searched[1], x86);
}

#[test]
fn xdg_config_home_then_home() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let xdg = dir.path().join("xdg");
    let mut env = unix_env();
    env.home = Some(home.clone().into());
    let home_file = home.join(".config/pooltop/pooltag.txt");
    put(&home_file, "Abcd - a.sys - x\n");
    let found = locate_with(None, &env).expect("ok").pooltag.expect("found");
    assert_eq!(
        (found.path, found.via),
        (home_file.clone(), FoundVia::UserConfig)
    );

    // A relative XDG_CONFIG_HOME is invalid per the XDG spec and ignored.
    env.xdg_config_home = Some("relative/dir".into());
    let found = locate_with(None, &env).expect("ok").pooltag.expect("found");
    assert_eq!(found.path, home_file);

    env.xdg_config_home = Some(xdg.clone().into());
    let got = locate_with(None, &env).expect("ok");
    assert!(
        got.pooltag.is_none(),
        "XDG folder has no file; HOME is not consulted"
    );
    assert_eq!(got.searched, [xdg.join("pooltop/pooltag.txt")]);
}

#[test]
fn nothing_found_gives_a_one_line_hint() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut env = unix_env();
    env.home = Some(dir.path().into());
    let got = locate_with(None, &env).expect("ok");
    assert_eq!(got.pooltag, None);
    assert_eq!(got.localtag, None);
    let expected_place = dir.path().join(".config/pooltop/pooltag.txt");
    assert_eq!(
        got.not_found_hint().expect("hint"),
        format!(
            "no pooltag.txt found (searched: {}); descriptions show UNKNOWN; pass --pooltag FILE or set POOLTOP_POOLTAG",
            expected_place.display()
        )
    );
    let db = got.load().expect("loading nothing gives an empty database");
    assert!(db.is_empty());

    let got = locate_with(None, &unix_env()).expect("ok");
    assert!(got.searched.is_empty());
    assert!(
        got.not_found_hint()
            .expect("hint")
            .contains("searched: nowhere")
    );
}

#[test]
fn localtag_next_to_pooltag_then_user_config_and_load_merges_it() {
    let dir = tempfile::tempdir().expect("tempdir");
    let home = dir.path().join("home");
    let mut env = unix_env();
    env.home = Some(home.clone().into());
    let pt = dir.path().join("dbg/pooltag.txt");
    put(&pt, "Abcd - a.sys - pooltag text\n");
    let user_local = home.join(".config/pooltop/localtag.txt");
    put(&user_local, "Abcd   -     userdrv\n");

    let got = locate_with(Some(&pt), &env).expect("ok");
    assert_eq!(got.localtag.as_ref(), Some(&user_local));
    assert_eq!(
        got.searched_localtag,
        [dir.path().join("dbg/localtag.txt"), user_local.clone()]
    );
    assert_eq!(
        got.load().expect("load").windbg_description(*b"Abcd"),
        "localtag.txt , Binary: userdrv"
    );

    let beside = dir.path().join("dbg/localtag.txt");
    put(&beside, "Abcd   -     besidedrv\n");
    let got = locate_with(Some(&pt), &env).expect("ok");
    assert_eq!(got.localtag.as_ref(), Some(&beside));
    assert_eq!(
        got.load().expect("load").windbg_description(*b"Abcd"),
        "localtag.txt , Binary: besidedrv"
    );

    // Without any pooltag.txt the user's localtag.txt is still used.
    let got = locate_with(None, &env).expect("ok");
    assert_eq!(got.pooltag, None);
    assert_eq!(got.localtag.as_ref(), Some(&user_local));
    assert_eq!(
        got.load().expect("load").windbg_description(*b"Abcd"),
        "localtag.txt , Binary: userdrv"
    );
}
