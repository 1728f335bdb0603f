//! Symbol-path parsing and PDB lookup in symbol stores and directories built by each test in a temp dir
//! (servers appear only as loopback ports where nothing listens; downloads are in `symbols_download.rs`),
//! holding the real `kprocesshacker_amd64.pdb` (key `7F458D92CC6E4B9B9D2A87403D20D4C12`, GROUND_TRUTH.md)
//! or copies of it with the GUID or DBI age rewritten in the MSF streams.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions unwrap too

mod common;
use common::{KEY, NAME, kph_id, real_pdb};
use std::fs;
use std::io::{Cursor, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use pooltop_analyzer::symbols::{
    DownloadOptions, Downloader, PdbFile, SilentReporter, SymbolEnv, SymbolError, SymbolLocation,
    SymbolPath, find_pdb, find_pdb_with,
};

fn env_with_home(home: &Path) -> SymbolEnv {
    SymbolEnv {
        home: Some(home.to_path_buf()),
        ..SymbolEnv::default()
    }
}

fn put(path: &Path, bytes: &[u8]) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, bytes).unwrap();
}

/// File offset of byte `offset` (< block size) of MSF stream `stream`, by walking the MSF 7.00 superblock
/// and stream directory (layout in symbols.md §7.3).
fn msf_stream_offset(pdb: &[u8], stream: usize, offset: usize) -> usize {
    let u32_at = |at: usize| u32::from_le_bytes(pdb[at..at + 4].try_into().unwrap()) as usize;
    let block_size = u32_at(32);
    let dir_bytes = u32_at(44);
    let block_map = u32_at(52) * block_size;
    let dir_blocks = dir_bytes.div_ceil(block_size);
    let mut dir = Vec::new();
    for i in 0..dir_blocks {
        let block = u32_at(block_map + 4 * i);
        dir.extend_from_slice(&pdb[block * block_size..(block + 1) * block_size]);
    }
    let d = |i: usize| u32::from_le_bytes(dir[4 * i..4 * i + 4].try_into().unwrap()) as usize;
    let streams = d(0);
    let blocks_of = |i: usize| {
        let size = d(1 + i);
        if size == 0xFFFF_FFFF {
            0
        } else {
            size.div_ceil(block_size)
        }
    };
    let first_block_entry = 1 + streams + (0..stream).map(blocks_of).sum::<usize>();
    d(first_block_entry) * block_size + offset
}

/// The real PDB with another GUID (PDB stream, GUID @12): an "other build".
fn pdb_with_other_guid() -> Vec<u8> {
    let mut pdb = real_pdb();
    let at = msf_stream_offset(&pdb, 1, 12);
    pdb[at] ^= 0x55;
    pdb
}

fn cab_of(members: &[(&str, &[u8])]) -> Vec<u8> {
    let mut builder = cab::CabinetBuilder::new();
    {
        let folder = builder.add_folder(cab::CompressionType::MsZip);
        for (name, _) in members {
            folder.add_file(*name);
        }
    }
    let mut writer = builder.build(Cursor::new(Vec::new())).unwrap();
    let mut index = 0;
    while let Some(mut file) = writer.next_file().unwrap() {
        file.write_all(members[index].1).unwrap();
        index += 1;
    }
    writer.finish().unwrap().into_inner()
}

/// A port on 127.0.0.1 where nothing listens (bound, then released).
fn closed_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A downloader that reports nothing.
fn quiet() -> Downloader {
    Downloader::new(DownloadOptions::default(), Arc::new(SilentReporter))
}

fn store_path(dir: &Path) -> SymbolPath {
    SymbolPath::parse(&format!("srv*{}", dir.display()), &SymbolEnv::default())
}

// ---------------------------------------------------------------------------------------------------------
// Symbol-path parsing

#[test]
fn srv_cache_and_plain_elements() {
    let env = env_with_home(Path::new("/home/u"));
    let default = PathBuf::from("/home/u/.cache/pooltop/sym");
    let path = SymbolPath::parse(
        "SRV*/a*/b*https://symbols.example.com/download/symbols; srv**https://x.example/s ;\
         symsrv*symsrv.dll*/c*http://y.example;cache*/d;cache*;C:\\sym;;/plain;SrV*",
        &env,
    );
    assert_eq!(
        path.locations,
        vec![
            SymbolLocation::Store("/a".into()),
            SymbolLocation::Store("/b".into()),
            SymbolLocation::Http {
                url: "https://symbols.example.com/download/symbols".into(),
                downstream: vec!["/a".into(), "/b".into()],
            },
            SymbolLocation::Store(default.clone()),
            SymbolLocation::Http {
                url: "https://x.example/s".into(),
                downstream: vec![default.clone()],
            },
            SymbolLocation::Store("/c".into()),
            SymbolLocation::Http {
                url: "http://y.example".into(),
                downstream: vec!["/c".into()],
            },
            SymbolLocation::Store("/d".into()),
            SymbolLocation::Store(default.clone()),
            SymbolLocation::Directory("C:\\sym".into()),
            SymbolLocation::Directory("/plain".into()),
            SymbolLocation::Store(default),
        ]
    );
}

#[test]
fn default_downstream_store_from_xdg_or_home() {
    let env = SymbolEnv {
        xdg_cache_home: Some("/xdg".into()),
        home: Some("/home/u".into()),
        ..SymbolEnv::default()
    };
    assert_eq!(
        env.default_downstream_store(),
        Some(PathBuf::from("/xdg/pooltop/sym"))
    );
    // A relative XDG_CACHE_HOME is ignored (XDG base directory rules).
    let env = SymbolEnv {
        xdg_cache_home: Some("rel".into()),
        home: Some("/home/u".into()),
        ..SymbolEnv::default()
    };
    assert_eq!(
        env.default_downstream_store(),
        Some(PathBuf::from("/home/u/.cache/pooltop/sym"))
    );
    // Without a default downstream store, a server with no other downstream store is used uncached.
    let path = SymbolPath::parse("srv**https://x.example", &SymbolEnv::default());
    assert_eq!(
        path.locations,
        vec![
            SymbolLocation::Unavailable {
                element: "srv**https://x.example".into(),
                reason: "default downstream store unknown (neither XDG_CACHE_HOME nor HOME is set)"
                    .into(),
            },
            SymbolLocation::Http {
                url: "https://x.example".into(),
                downstream: vec![],
            },
        ]
    );
}

#[test]
fn chains_caches_and_bare_urls() {
    let env = env_with_home(Path::new("/home/u"));
    let default = PathBuf::from("/home/u/.cache/pooltop/sym");
    // A server first in its chain (or a bare URL) without a cache* before it: the default store is searched
    // first and receives the downloads.
    assert_eq!(
        SymbolPath::parse("srv*https://s.example;https://t.example", &env).locations,
        vec![
            SymbolLocation::Store(default.clone()),
            SymbolLocation::Http {
                url: "https://s.example".into(),
                downstream: vec![default.clone()],
            },
            SymbolLocation::Store(default.clone()),
            SymbolLocation::Http {
                url: "https://t.example".into(),
                downstream: vec![default.clone()],
            },
        ]
    );
    // cache* applies to every server to its right, after the chain's own stores, without duplicates; a store
    // to the right of a server is searched but is not its downstream store.
    assert_eq!(
        SymbolPath::parse(
            "cache*/c;/flat;srv*/a*https://s.example*/z;cache*;srv*/a*https://t.example",
            &env
        )
        .locations,
        vec![
            SymbolLocation::Store("/c".into()),
            SymbolLocation::Directory("/flat".into()),
            SymbolLocation::Store("/a".into()),
            SymbolLocation::Http {
                url: "https://s.example".into(),
                downstream: vec!["/a".into(), "/c".into()],
            },
            SymbolLocation::Store("/z".into()),
            SymbolLocation::Store(default.clone()),
            SymbolLocation::Store("/a".into()),
            SymbolLocation::Http {
                url: "https://t.example".into(),
                downstream: vec!["/a".into(), "/c".into(), default.clone()],
            },
        ]
    );
    // A cache must be a directory.
    assert_eq!(
        SymbolPath::parse("cache*https://s.example", &env).locations,
        vec![SymbolLocation::Unavailable {
            element: "cache*https://s.example".into(),
            reason: "a cache must be a local directory, not a URL".into(),
        }]
    );
}

#[test]
fn cli_then_alt_then_nt_symbol_path() {
    let env = SymbolEnv {
        nt_alt_symbol_path: Some("/alt1;srv*/alt2".into()),
        nt_symbol_path: Some("srv*/nt*https://nt.example".into()),
        ..SymbolEnv::default()
    };
    let path = SymbolPath::from_sources(Some("cache*/cli"), &env);
    // The `cache*` of --symbol-path also caches downloads from a server named in _NT_SYMBOL_PATH.
    assert_eq!(
        path.locations,
        vec![
            SymbolLocation::Store("/cli".into()),
            SymbolLocation::Directory("/alt1".into()),
            SymbolLocation::Store("/alt2".into()),
            SymbolLocation::Store("/nt".into()),
            SymbolLocation::Http {
                url: "https://nt.example".into(),
                downstream: vec!["/nt".into(), "/cli".into()],
            },
        ]
    );
    assert!(SymbolPath::from_sources(None, &SymbolEnv::default()).is_empty());
}

// ---------------------------------------------------------------------------------------------------------
// Store lookups

#[test]
fn plain_store() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join(NAME).join(KEY).join(NAME);
    put(&file, &real_pdb());
    let found = find_pdb(&store_path(tmp.path()), &kph_id()).unwrap();
    assert_eq!(found.found_at, file.display().to_string());
    assert_eq!(found.pdb.store_key(), KEY);
    assert!(found.searched.is_empty());
}

#[test]
fn case_insensitive_components() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp
        .path()
        .join("KProcessHacker.PDB")
        .join(KEY.to_lowercase())
        .join("KPROCESSHACKER.pdb");
    put(&file, &real_pdb());
    let found = find_pdb(&store_path(tmp.path()), &kph_id()).unwrap();
    assert_eq!(found.found_at, file.display().to_string());
}

#[test]
fn two_tier_store_needs_index2() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("kp").join(NAME).join(KEY).join(NAME);
    put(&file, &real_pdb());
    // Without index2.txt the store is one-tier and the file is not where a one-tier store keeps it.
    let err = find_pdb(&store_path(tmp.path()), &kph_id()).unwrap_err();
    assert!(matches!(err, SymbolError::PdbNotFound { .. }));
    fs::write(tmp.path().join("index2.txt"), "").unwrap();
    let found = find_pdb(&store_path(tmp.path()), &kph_id()).unwrap();
    assert_eq!(found.found_at, file.display().to_string());
}

#[test]
fn compressed_pd_underscore() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join(NAME).join(KEY).join("kprocesshacker.pd_");
    let cab = cab_of(&[(NAME, &real_pdb())]);
    assert_eq!(&cab[..4], b"MSCF");
    assert!(cab.len() < real_pdb().len(), "MSZIP did not compress");
    put(&file, &cab);
    let found = find_pdb(&store_path(tmp.path()), &kph_id()).unwrap();
    assert_eq!(found.found_at, file.display().to_string());
    assert_eq!(found.pdb.bytes(), real_pdb().as_slice());
}

#[test]
fn bad_cab_members_are_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join(NAME).join(KEY).join("kprocesshacker.pd_");
    put(&file, &cab_of(&[("a.pdb", b"x"), ("b.pdb", b"y")]));
    let err = find_pdb(&store_path(tmp.path()), &kph_id())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "{}: bad CAB archive: no member named kprocesshacker.pdb among 2 members (a.pdb, b.pdb)",
            file.display()
        )),
        "{err}"
    );
}

#[test]
fn oversized_files_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join(NAME).join(KEY).join(NAME);
    fs::create_dir_all(file.parent().unwrap()).unwrap();
    // Sparse: no disk space used, but the size is over the 2 GiB limit.
    fs::File::create(&file)
        .unwrap()
        .set_len((2 << 30) + 1)
        .unwrap();
    let err = find_pdb(&store_path(tmp.path()), &kph_id())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "{}: 2147483649 bytes is over the limit of 2147483648 bytes",
            file.display()
        )),
        "{err}"
    );

    // A CAB whose member header claims 3 GiB: CFHEADER.coffFiles (u32 @16) points at the first CFFILE,
    // whose first field is cbFile.
    let mut cab = cab_of(&[(NAME, b"tiny")]);
    let cffile = u32::from_le_bytes(cab[16..20].try_into().unwrap()) as usize;
    cab[cffile..cffile + 4].copy_from_slice(&0xC000_0000u32.to_le_bytes());
    let pd_ = tmp.path().join(NAME).join(KEY).join("kprocesshacker.pd_");
    put(&pd_, &cab);
    let err = find_pdb(&store_path(tmp.path()), &kph_id())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "{} (member kprocesshacker.pdb): 3221225472 bytes is over the limit of 2147483648 bytes",
            pd_.display()
        )),
        "{err}"
    );
}

#[test]
fn file_ptr_forms() {
    let tmp = tempfile::tempdir().unwrap();
    let real = tmp.path().join("elsewhere").join("real.pdb");
    put(&real, &real_pdb());
    let ptr = tmp
        .path()
        .join("store")
        .join(NAME)
        .join(KEY)
        .join("file.ptr");

    // Absolute path.
    put(&ptr, format!("{}\r\n", real.display()).as_bytes());
    let store = tmp.path().join("store");
    let found = find_pdb(&store_path(&store), &kph_id()).unwrap();
    assert_eq!(
        found.found_at,
        format!("{} -> {}", ptr.display(), real.display())
    );

    // `PATH:` prefix and a path relative to the store root.
    let relative = store.join("shared").join("kph.pdb");
    put(&relative, &real_pdb());
    put(&ptr, b"PATH:shared/kph.pdb");
    let found = find_pdb(&store_path(&store), &kph_id()).unwrap();
    assert_eq!(
        found.found_at,
        format!("{} -> {}", ptr.display(), relative.display())
    );

    // `MSG:` means not available.
    put(&ptr, b"MSG: withdrawn by publisher");
    let err = find_pdb(&store_path(&store), &kph_id())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "{}: not available (withdrawn by publisher)",
            ptr.display()
        )),
        "{err}"
    );
}

#[test]
fn plain_directory_forms() {
    for layout in ["symbols/sys", "SYS", "dll", ""] {
        let tmp = tempfile::tempdir().unwrap();
        let dir = if layout.is_empty() {
            tmp.path().to_path_buf()
        } else {
            tmp.path().join(layout)
        };
        let file = dir.join(NAME);
        put(&file, &real_pdb());
        let path = SymbolPath::parse(&tmp.path().display().to_string(), &SymbolEnv::default());
        assert!(matches!(path.locations[0], SymbolLocation::Directory(_)));
        let found = find_pdb(&path, &kph_id()).unwrap();
        assert_eq!(found.found_at, file.display().to_string(), "{layout}");
    }
}

#[test]
fn mismatched_candidate_is_skipped() {
    let tmp = tempfile::tempdir().unwrap();
    let wrong = tmp.path().join("a").join(NAME).join(KEY).join(NAME);
    put(&wrong, &pdb_with_other_guid());
    let right = tmp.path().join("b").join(NAME).join(KEY).join(NAME);
    put(&right, &real_pdb());
    let other_key = PdbFile::from_bytes(pdb_with_other_guid(), "x")
        .unwrap()
        .store_key();
    assert_ne!(other_key, KEY);

    let path = SymbolPath::parse(
        &format!(
            "srv*{}*{}",
            tmp.path().join("a").display(),
            tmp.path().join("b").display()
        ),
        &SymbolEnv::default(),
    );
    let found = find_pdb(&path, &kph_id()).unwrap();
    assert_eq!(found.found_at, right.display().to_string());
    assert_eq!(
        found.searched,
        vec![format!(
            "{}: GUID/age mismatch (has {other_key}, want {KEY})",
            wrong.display()
        )]
    );
}

#[test]
fn dbi_age_decides_the_match() {
    // Rewrite the DBI age (stream 3, @8) to 1, keeping the PDB-stream age 2, as post-processing does.
    let mut bytes = real_pdb();
    let at = msf_stream_offset(&bytes, 3, 8);
    assert_eq!(&bytes[at..at + 4], &2u32.to_le_bytes());
    bytes[at..at + 4].copy_from_slice(&1u32.to_le_bytes());
    let pdb = PdbFile::from_bytes(bytes.clone(), "aged.pdb").unwrap();
    assert_eq!(pdb.pdb_stream_age(), 2);
    assert_eq!(pdb.dbi_age(), Some(1));
    let mut id = kph_id();
    id.age = 1;
    assert!(pdb.matches(&id));
    assert!(!pdb.matches(&kph_id()));

    // The store lookup follows: under the age-1 key the file is accepted.
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join(NAME).join(id.store_key()).join(NAME);
    put(&file, &bytes);
    assert_eq!(id.store_key(), "7F458D92CC6E4B9B9D2A87403D20D4C11");
    assert!(find_pdb(&store_path(tmp.path()), &id).is_ok());
}

#[test]
fn corrupt_pdb_then_valid_cab_in_same_key_dir() {
    let tmp = tempfile::tempdir().unwrap();
    let key_dir = tmp.path().join(NAME).join(KEY);
    let broken = key_dir.join(NAME);
    put(&broken, &real_pdb()[..5000]);
    put(
        &key_dir.join("kprocesshacker.pd_"),
        &cab_of(&[(NAME, &real_pdb())]),
    );
    let found = find_pdb(&store_path(tmp.path()), &kph_id()).unwrap();
    assert!(found.found_at.ends_with("kprocesshacker.pd_"));
    assert_eq!(found.searched.len(), 1);
    assert!(
        found.searched[0].starts_with(&format!("{}: not a usable PDB: ", broken.display())),
        "{:?}",
        found.searched
    );
}

#[test]
fn msfz_copy_is_reported() {
    let tmp = tempfile::tempdir().unwrap();
    let msfz = tmp.path().join(NAME).join(KEY).join("msfz0").join(NAME);
    put(&msfz, b"Microsoft MSFZ Container\r\n\x1aALD\0\0");
    let err = find_pdb(&store_path(tmp.path()), &kph_id())
        .unwrap_err()
        .to_string();
    assert!(
        err.contains(&format!(
            "{}: compressed MSFZ PDB: not supported yet; convert it with `pdbtool pdz-decode`",
            msfz.display()
        )),
        "{err}"
    );
}

#[test]
fn cache_dir_is_searched() {
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let file = cache.join(NAME).join(KEY).join(NAME);
    put(&file, &real_pdb());
    // The server is a loopback port where nothing listens: the cache must answer first.
    let path = SymbolPath::parse(
        &format!(
            "cache*{};srv*http://127.0.0.1:{}/symbols",
            cache.display(),
            closed_port()
        ),
        &SymbolEnv::default(),
    );
    let found = find_pdb_with(&path, &kph_id(), &quiet()).unwrap();
    assert_eq!(found.found_at, file.display().to_string());
    assert!(!found.downloaded());
}

#[test]
fn not_found_lists_every_place() {
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    fs::create_dir_all(&store).unwrap();
    let key_dir = store.join(NAME).join(KEY);
    fs::create_dir_all(&key_dir).unwrap();
    let missing = tmp.path().join("missing");
    let flat = tmp.path().join("flat");
    fs::create_dir_all(&flat).unwrap();
    let empty = tmp.path().join("empty");
    fs::create_dir_all(&empty).unwrap();

    let port = closed_port();
    let text = format!(
        "srv*{}*{}*http://127.0.0.1:{port}/symbols;{}",
        empty.display(),
        store.display(),
        flat.display()
    );
    let env = SymbolEnv {
        nt_symbol_path: Some(format!("cache*{}", missing.display())),
        ..SymbolEnv::default()
    };
    let path = SymbolPath::from_sources(Some(&text), &env);
    let err = find_pdb_with(&path, &kph_id(), &quiet()).unwrap_err();
    let (e, s, f, m) = (
        empty.display(),
        store.display(),
        flat.display(),
        missing.display(),
    );
    assert_eq!(
        err.to_string(),
        format!(
            "kprocesshacker.pdb (GUID/age {KEY}) not found; searched: \
             {e}/kprocesshacker.pdb/{KEY}/{{kprocesshacker.pdb,kprocesshacker.pd_,file.ptr}}, \
             {s}/kprocesshacker.pdb/{KEY}/{{kprocesshacker.pdb,kprocesshacker.pd_,file.ptr}}, \
             http://127.0.0.1:{port}/symbols/kprocesshacker.pdb/{KEY}/kprocesshacker.pdb: \
             cannot connect (Connection refused (os error 111)), \
             {f}/symbols/{{exe,dll,sys}}/kprocesshacker.pdb, {f}/{{exe,dll,sys}}/kprocesshacker.pdb, \
             {f}/kprocesshacker.pdb, \
             {m} (no such store directory); \
             set --symbol-path or _NT_SYMBOL_PATH"
        )
    );
    assert!(!err.to_string().contains('\n'));

    let err = find_pdb(&SymbolPath::default(), &kph_id()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "kprocesshacker.pdb (GUID/age {KEY}) not found; searched: nothing (the symbol path is empty); \
             set --symbol-path or _NT_SYMBOL_PATH"
        )
    );
}
