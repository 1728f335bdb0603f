//! Source tag scanner: fixture trees written here (short snippets in the style of the ground-truth
//! drivers, not copies of their files), expected results written by hand from the MSVC/Rust byte-order
//! rules, and bad input that must not panic.

#![allow(clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use pooltop_pooltag::source::{
    Language, SourceError, SourceProblem, SourceScan, SourceScanOptions, SourceTag, TagKind,
    compare_source_and_binary, scan_source_text, scan_sources,
};

/// Write `files` (relative path, bytes) under `root`.
fn write_tree(root: &Path, files: &[(&str, &[u8])]) {
    for (rel, bytes) in files {
        let path = root.join(rel);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, bytes).unwrap();
    }
}

/// One tag as a line: `tag file:line:col literal kind name [calls]`, tag bytes escaped.
fn line_of(t: &SourceTag) -> String {
    let calls: Vec<String> = t
        .calls
        .iter()
        .map(|c| format!("{}@{}:{}:{}", c.function, c.file, c.line, c.column))
        .collect();
    format!(
        "{} {}:{}:{} {} {} {} [{}]",
        t.tag.escape_ascii(),
        t.file,
        t.line,
        t.column,
        t.literal,
        t.kind.name(),
        t.name.as_deref().unwrap_or("-"),
        calls.join(", ")
    )
}

fn lines(tags: &[SourceTag]) -> Vec<String> {
    tags.iter().map(line_of).collect()
}

// ---------------------------------------------------------------------------------------------------
// KProcessHacker-style C: 'ThpK' → KphT, defines, aliases, a macro wrapper, an unused 'UhpK'.

const KPH_DYNDATA_C: &str = r#"/* Fixture written for pooltop's tests; not copied from any project. */
#include "kph.h"

// 'FAKE' in a line comment is not a tag
/* 'BAD1' in a block comment,
   'BAD2' on its second line */
static const char *Message = "'STR1' in a string";
static const char Quote = '\'';

NTSTATUS KphDynDataInit(VOID)
{
    PVOID buffer = ExAllocatePoolWithTag(NonPagedPool, 64, 'ThpK');
    if (!buffer) return STATUS_NO_MEMORY;
    ExFreePoolWithTag(buffer, 'ThpK');
    return STATUS_SUCCESS;
}
"#;

const KPH_H: &str = "#pragma once
#define KPH_TAG 'ThpK'
#define KPH_QUOTA_TAG ('QhpK')
#define KPH_OBJECT_TAG KPH_QUOTA_TAG
#define KPH_ALLOC(Size) ExAllocatePoolWithTag(NonPagedPool, (Size), 'bhpK')
#define ALIGNMENT 0x10
#define STAGE_COUNT 0x4
";

const KPH_MAIN_C: &str = "#include \"kph.h\"

VOID KphAllocateMain(VOID)
{
    PVOID p = KPH_ALLOC(16);
    PVOID q = ExAllocatePoolWithTag(PagedPool, 32, KPH_TAG);
    ExFreePoolWithTag(q, KPH_TAG);
    ExFreePoolWithTag(p, 'bhpK');
}
";

const KPH_OBJECT_C: &str = "#include \"kph.h\"

NTSTATUS KphQueryObject(SIZE_T Length)
{
    PVOID info = ExAllocatePoolWithQuotaTag(PagedPool, Length, KPH_OBJECT_TAG);
    ExFreePoolWithTag(info, KPH_QUOTA_TAG);
    return 0;
}
";

const KPH_UTIL_C: &str = "#include \"kph.h\"

PVOID KphAllocateUnused(SIZE_T Size)
{
    return ExAllocatePoolWithTag(PagedPool, Size, 'UhpK');
}
";

fn kph_tree() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    write_tree(
        dir.path(),
        &[
            ("dyndata.c", KPH_DYNDATA_C.as_bytes()),
            ("kph.h", KPH_H.as_bytes()),
            ("main.c", KPH_MAIN_C.as_bytes()),
            ("object.c", KPH_OBJECT_C.as_bytes()),
            ("util.c", KPH_UTIL_C.as_bytes()),
            // Build output and version control are not entered.
            ("bin/amd64/stale.c", b"ULONG t = 'PIKS';\n"),
            (".git/hooks/x.c", b"ULONG t = 'TIGx';\n"),
            ("objfre_win7_amd64/y.c", b"ULONG t = 'ERFO';\n"),
            // Not source.
            ("notes.txt", b"'ETON'\n"),
        ],
    );
    dir
}

#[test]
fn kprocesshacker_style_c_tags_are_reversed_and_linked_to_their_calls() {
    let dir = kph_tree();
    let scan = scan_sources(dir.path(), &SourceScanOptions::default()).unwrap();
    assert_eq!(scan.files_scanned, 5);
    assert_eq!(scan.warnings, []);
    assert_eq!(
        lines(&scan.tags),
        [
            "KphT dyndata.c:12:60 'ThpK' multi-char - [ExAllocatePoolWithTag@dyndata.c:12:20]",
            "KphT dyndata.c:14:31 'ThpK' multi-char - [ExFreePoolWithTag@dyndata.c:14:5]",
            "KphT kph.h:2:17 'ThpK' define KPH_TAG [ExAllocatePoolWithTag@main.c:6:15, ExFreePoolWithTag@main.c:7:5]",
            "KphQ kph.h:3:24 'QhpK' define KPH_QUOTA_TAG [ExAllocatePoolWithQuotaTag@object.c:5:18, ExFreePoolWithTag@object.c:6:5]",
            "Kphb kph.h:5:69 'bhpK' define KPH_ALLOC [ExAllocatePoolWithTag@kph.h:5:25]",
            "Kphb main.c:8:26 'bhpK' multi-char - [ExFreePoolWithTag@main.c:8:5]",
            "KphU util.c:5:51 'UhpK' multi-char - [ExAllocatePoolWithTag@util.c:5:12]",
        ]
    );
}

#[test]
fn ground_truth_style_lines_give_the_ground_truth_tags() {
    // The source lines GROUND_TRUTH.md names, written again as one-line snippets.
    let t = scan_source_text(
        "dyndata.c",
        Language::C,
        "    Buffer = ExAllocatePoolWithTag(PagedPool, Size, 'ThpK');\n",
    );
    assert_eq!(t.len(), 1);
    assert_eq!(&t[0].tag, b"KphT");
    assert_eq!(u32::from_le_bytes(t[0].tag), 0x5468_704B);

    let t = scan_source_text(
        "winpmem.h",
        Language::Cpp,
        "#define PMEM_POOL_TAG 0x4d454d50\n",
    );
    assert_eq!(t.len(), 1);
    assert_eq!(&t[0].tag, b"PMEM");
    assert_eq!(t[0].kind, TagKind::Define);
    assert_eq!(t[0].name.as_deref(), Some("PMEM_POOL_TAG"));

    let t = scan_source_text(
        "winpmem.c",
        Language::C,
        "  ULONG FastioTag = 0x54505346;\n",
    );
    assert_eq!(t.len(), 1);
    assert_eq!(&t[0].tag, b"FSPT");
    assert_eq!(t[0].kind, TagKind::HexConstant);
    assert_eq!(t[0].name.as_deref(), Some("FastioTag"));

    let t = scan_source_text(
        "driver.c",
        Language::C,
        "  p = ExAllocatePoolWithTag( NonPagedPool, ucode_size, 0x3184 );\n",
    );
    assert_eq!(t.len(), 1);
    assert_eq!(t[0].tag, [0x84, 0x31, 0, 0]);
}

// ---------------------------------------------------------------------------------------------------
// WinPmem-style: a hex #define in a header used from another file, a tag-named local variable.

const PMEM_H: &str = "#ifndef _WINPMEM_H
#define _WINPMEM_H

#define PMEM_POOL_TAG 0x4d454d50

#endif
";

const PMEM_KD_C: &str = "#include \"winpmem.h\"

static PVOID AllocateTwo(SIZE_T a, SIZE_T b)
{
    PVOID x = ExAllocatePoolWithTag(NonPagedPool, a, PMEM_POOL_TAG);
    PVOID y = ExAllocatePoolWithTag(NonPagedPool, b, PMEM_POOL_TAG);
    return x ? x : y;
}
";

const PMEM_C: &str = "#include \"winpmem.h\"

NTSTATUS SetupFastio(PDRIVER_OBJECT DriverObject)
{
    ULONG FastioTag = 0x54505346;
    PFAST_IO_DISPATCH fastio;
    ULONG Flags = 0x4d454d50;

    fastio = ExAllocatePoolWithTag(NonPagedPool, sizeof(FAST_IO_DISPATCH), FastioTag);
    if (fastio == NULL) return STATUS_NO_MEMORY;
    return 0;
}
";

#[test]
fn winpmem_style_hex_tags_from_defines_and_variables() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(
        dir.path(),
        &[
            ("src/winpmem.h", PMEM_H.as_bytes()),
            ("src/kd.c", PMEM_KD_C.as_bytes()),
            ("src/winpmem.c", PMEM_C.as_bytes()),
        ],
    );
    let scan = scan_sources(dir.path(), &SourceScanOptions::default()).unwrap();
    assert_eq!(
        lines(&scan.tags),
        [
            "FSPT src/winpmem.c:5:23 0x54505346 hex FastioTag [ExAllocatePoolWithTag@src/winpmem.c:9:14]",
            "PMEM src/winpmem.h:4:23 0x4d454d50 define PMEM_POOL_TAG [ExAllocatePoolWithTag@src/kd.c:5:15, ExAllocatePoolWithTag@src/kd.c:6:15]",
        ]
    );
}

// ---------------------------------------------------------------------------------------------------
// C++ edge cases.

const EDGE_CPP: &str = r#"// C++ edge cases for the tag scanner.
#define SHORT_TAG 'xy'
#define MY_POOL 0x6c6f6f50
#define STAGE_COUNT 0x4
#define ALIGNMENT 0x10
#error this isn't a 'TAG!' either
constexpr ULONG kPoolTag = 0x3170'6553;
const char *Raw = R"x(ExAllocatePoolWithTag(NonPagedPool, 1, 'RAW1'))x";
const wchar_t Wide = L'WD';

void Edge(char c)
{
    void *a = ExAllocatePool2(POOL_FLAG_NON_PAGED, 8, MY_POOL);
    void *b = ExAllocatePoolWithTag(NonPagedPool, 8, 'ab');
    void *d = ExAllocatePoolWithTag(NonPagedPool, 8, 's');
    void *e = ExAllocatePoolWithTag(NonPagedPool, 8, 0x3184);
    auto *f = new (NonPagedPoolNx, 'ppcC') Widget();
    switch (c) { case 'ab': break; }
    ULONG plain = 0x12345678;
    ExFreePoolWithTag(a, (ULONG)(MY_POOL));
}
"#;

#[test]
fn cpp_edge_cases_short_constants_latent_defines_raw_strings() {
    let tags = scan_source_text("edge.cpp", Language::Cpp, EDGE_CPP);
    assert_eq!(
        lines(&tags),
        [
            r"yx\x00\x00 edge.cpp:2:19 'xy' define SHORT_TAG []",
            "Pool edge.cpp:3:17 0x6c6f6f50 define MY_POOL [ExAllocatePool2@edge.cpp:13:15, ExFreePoolWithTag@edge.cpp:20:5]",
            "Sep1 edge.cpp:7:28 0x3170'6553 hex kPoolTag []",
            r"ba\x00\x00 edge.cpp:14:54 'ab' multi-char - [ExAllocatePoolWithTag@edge.cpp:14:15]",
            r"s\x00\x00\x00 edge.cpp:15:54 's' char - [ExAllocatePoolWithTag@edge.cpp:15:15]",
            r"\x841\x00\x00 edge.cpp:16:54 0x3184 hex - [ExAllocatePoolWithTag@edge.cpp:16:15]",
            "Ccpp edge.cpp:17:36 'ppcC' multi-char f []",
        ]
    );
}

#[test]
fn hex_named_like_a_tag_must_spell_four_characters_unless_it_feeds_an_allocator() {
    let text = "#define STATUS_IO_REPARSE_TAG_INVALID 0xC0000276
#define ASN1_TAG_SET 0x11
#define UCODE_TAG 0x3185
#define DRV_TAG 0x31765244
void f(void *p) { ExFreePoolWithTag(p, UCODE_TAG); }
";
    assert_eq!(
        lines(&scan_source_text("t.h", Language::Cpp, text)),
        [
            r"\x851\x00\x00 t.h:3:19 0x3185 define UCODE_TAG [ExFreePoolWithTag@t.h:5:19]",
            "DRv1 t.h:4:17 0x31765244 define DRV_TAG []",
        ]
    );
}

#[test]
fn raw_string_is_only_cpp() {
    // In C++ `R"x( " )x"` is one raw string. In C it is the identifier R, the string `"x( "`, and an
    // unterminated string that runs to the end of the line and hides the tag: the documented difference
    // between Language::C (.c) and Language::Cpp (.cpp, .h, …).
    let text = "const char *s = R\"x( \" )x\"; ULONG t = 'C2ab';\n";
    assert_eq!(scan_source_text("a.c", Language::C, text), []);
    assert_eq!(
        lines(&scan_source_text("a.cpp", Language::Cpp, text)),
        ["ba2C a.cpp:1:39 'C2ab' multi-char t []"]
    );
}

// ---------------------------------------------------------------------------------------------------
// Rust.

const RS_ALLOC: &str = r#"//! Global allocator fixture written for pooltop's tests.
use wdk_sys::{ntddk::{ExAllocatePool2, ExFreePool}, POOL_FLAG_NON_PAGED, SIZE_T};

/// Every allocation uses this tag ("rust" in pool listings); 'FAKE' in a doc comment is no tag.
pub const RUST_TAG: u32 = u32::from_ne_bytes(*b"rust");

unsafe impl GlobalAlloc for WdkAllocator {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        let ptr = unsafe { ExAllocatePool2(POOL_FLAG_NON_PAGED, layout.size() as SIZE_T, RUST_TAG) };
        ptr.cast()
    }
}
"#;

const RS_TAGS: &str = r##"/* outer /* nested 'NEST' */ still comment *b"nest" */
const LE: u32 = u32::from_le_bytes(*b"leTg");
const BE: u32 = u32::from_be_bytes(*b"gTeb");
const ARRAY: u32 = u32::from_le_bytes([b'A', b'r', b'r', b'y']);
const POOL_TAG: u32 = 0x7375_4852;
const RAW: &str = r#"u32::from_le_bytes(*b"raw!")"#;
const NOT_TAG: u64 = u64::from_le_bytes(*b"12345678");
const WIDE: u16 = u16::from_le_bytes(*b"ab");
static mut COUNTER: u32 = 0x10;
fn free(p: *mut u8) {
    unsafe { ExFreePool2(p.cast(), *b"Frre", core::ptr::null(), 0) };
}
fn short(size: u64) -> *mut u8 {
    let c = 's' as u32;
    unsafe { ExAllocatePool2(POOL_FLAG_PAGED, size, 'r' as u32) }.cast()
}
fn lifetimes<'a>(x: &'a str) -> &'a str { x }
"##;

#[test]
fn rust_from_bytes_byte_strings_and_the_wdk_alloc_tag() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(
        dir.path(),
        &[
            ("src/alloc.rs", RS_ALLOC.as_bytes()),
            ("src/tags.rs", RS_TAGS.as_bytes()),
            (
                "target/debug/build/gen.rs",
                b"const T: u32 = u32::from_le_bytes(*b\"TGT!\");\n",
            ),
        ],
    );
    let scan = scan_sources(dir.path(), &SourceScanOptions::default()).unwrap();
    assert_eq!(scan.files_scanned, 2);
    assert_eq!(
        lines(&scan.tags),
        [
            r#"rust src/alloc.rs:5:27 u32::from_ne_bytes(*b"rust") rust-bytes RUST_TAG [ExAllocatePool2@src/alloc.rs:9:28]"#,
            r#"leTg src/tags.rs:2:17 u32::from_le_bytes(*b"leTg") rust-bytes LE []"#,
            r#"beTg src/tags.rs:3:17 u32::from_be_bytes(*b"gTeb") rust-bytes BE []"#,
            r#"Arry src/tags.rs:4:20 u32::from_le_bytes([b'A', b'r', b'r', b'y']) rust-bytes ARRAY []"#,
            "RHus src/tags.rs:5:23 0x7375_4852 hex POOL_TAG []",
            r#"Frre src/tags.rs:11:37 b"Frre" rust-bytes - [ExFreePool2@src/tags.rs:11:14]"#,
            r"r\x00\x00\x00 src/tags.rs:15:53 'r' char - [ExAllocatePool2@src/tags.rs:15:14]",
        ]
    );
}

// ---------------------------------------------------------------------------------------------------
// Source versus binary.

#[test]
fn comparison_reports_kphu_only_in_source_and_library_tags_only_in_binary() {
    let dir = kph_tree();
    let scan = scan_sources(dir.path(), &SourceScanOptions::default()).unwrap();
    // The binary side as the ground truth gives it for kprocesshacker_amd64.sys (call sites), plus a
    // statically linked library tag and a zero count that must count as absent.
    let binary: BTreeMap<[u8; 4], usize> = [
        (*b"KphT", 6),
        (*b"KphC", 3),
        (*b"KphQ", 2),
        (*b"Kphb", 1),
        (*b"Kphv", 3),
        (*b"SeSd", 1),
        (*b"Zero", 0),
    ]
    .into_iter()
    .collect();
    let cmp = compare_source_and_binary(&scan, &binary);

    let only_source: Vec<(&[u8; 4], Vec<String>)> = cmp
        .only_in_source
        .iter()
        .map(|(tag, sites)| {
            (
                tag,
                sites
                    .iter()
                    .map(|s| format!("{}:{}", s.file, s.line))
                    .collect(),
            )
        })
        .collect();
    assert_eq!(only_source, [(b"KphU", vec!["util.c:5".to_string()])]);

    let only_binary: Vec<(&[u8; 4], usize)> =
        cmp.only_in_binary.iter().map(|(t, &n)| (t, n)).collect();
    assert_eq!(only_binary, [(b"KphC", 3), (b"Kphv", 3), (b"SeSd", 1)]);

    let both: Vec<(&[u8; 4], usize, usize)> = cmp
        .in_both
        .iter()
        .map(|(t, b)| (t, b.source.len(), b.binary_count))
        .collect();
    assert_eq!(both, [(b"KphQ", 1, 2), (b"KphT", 3, 6), (b"Kphb", 2, 1)]);
}

#[test]
fn comparison_of_empty_sides() {
    let cmp = compare_source_and_binary(&SourceScan::default(), &BTreeMap::new());
    assert!(
        cmp.only_in_source.is_empty() && cmp.only_in_binary.is_empty() && cmp.in_both.is_empty()
    );
}

// ---------------------------------------------------------------------------------------------------
// Files, options and errors.

#[test]
fn root_can_be_one_file_and_errors_name_the_root() {
    let dir = kph_tree();
    let one = scan_sources(&dir.path().join("util.c"), &SourceScanOptions::default()).unwrap();
    assert_eq!(
        lines(&one.tags),
        ["KphU util.c:5:51 'UhpK' multi-char - [ExAllocatePoolWithTag@util.c:5:12]"]
    );

    let missing = dir.path().join("nope");
    let err = scan_sources(&missing, &SourceScanOptions::default()).unwrap_err();
    assert!(matches!(err, SourceError::Root { .. }));
    assert!(
        err.to_string()
            .starts_with(&format!("{}: cannot open: ", missing.display()))
    );
    assert!(!err.to_string().contains('\n'));

    let txt = dir.path().join("notes.txt");
    let err = scan_sources(&txt, &SourceScanOptions::default()).unwrap_err();
    assert_eq!(
        err.to_string(),
        format!(
            "{}: not a C, C++ or Rust source file (.c .cpp .cc .cxx .h .hpp .hh .inl .rs)",
            txt.display()
        )
    );
}

/// Every warning of `scan` as (path relative to `root`, problem).
fn relative_problems(scan: &SourceScan, root: &Path) -> Vec<(String, SourceProblem)> {
    scan.warnings
        .iter()
        .map(|w| {
            let path = w.path.strip_prefix(root).unwrap();
            (path.display().to_string(), w.problem.clone())
        })
        .collect()
}

#[test]
fn size_limit_file_limit_and_depth_limit_are_warnings() {
    let dir = tempfile::tempdir().unwrap();
    let mut big = b"ULONG t = 'Big1';\n".to_vec();
    big.resize(2048, b' ');
    write_tree(
        dir.path(),
        &[
            ("a.c", b"ULONG t = 'aaaa';\n"),
            ("b.c", &big),
            ("c.c", b"ULONG t = 'cccc';\n"),
            ("d/e/f.c", b"ULONG t = 'ffff';\n"),
        ],
    );
    let options = SourceScanOptions {
        max_file_bytes: 1024,
        ..SourceScanOptions::default()
    };
    let scan = scan_sources(dir.path(), &options).unwrap();
    let tags: Vec<&[u8; 4]> = scan.tags.iter().map(|t| &t.tag).collect();
    assert_eq!(tags, [b"aaaa", b"cccc", b"ffff"]);
    assert_eq!(scan.files_scanned, 3);
    assert_eq!(scan.warnings.len(), 1);
    assert_eq!(scan.warnings[0].path, dir.path().join("b.c"));
    assert_eq!(
        scan.warnings[0].problem,
        SourceProblem::TooLarge {
            size: 2048,
            limit: 1024
        }
    );
    assert_eq!(
        scan.warnings[0].to_string(),
        format!(
            "{}: skipped: 2048 bytes is over the 1024-byte limit for a source file",
            dir.path().join("b.c").display()
        )
    );

    let options = SourceScanOptions {
        max_files: 2,
        max_depth: 1,
        ..SourceScanOptions::default()
    };
    let scan = scan_sources(dir.path(), &options).unwrap();
    assert_eq!(scan.files_scanned, 2);
    let problems = relative_problems(&scan, dir.path());
    assert_eq!(problems, [("c.c".to_string(), SourceProblem::FileLimit(2))]);

    let options = SourceScanOptions {
        max_depth: 1,
        ..SourceScanOptions::default()
    };
    let scan = scan_sources(dir.path(), &options).unwrap();
    assert_eq!(scan.files_scanned, 3);
    let problems = relative_problems(&scan, dir.path());
    assert_eq!(problems, [("d/e".to_string(), SourceProblem::TooDeep(1))]);
}

#[cfg(unix)]
#[test]
fn symbolic_links_are_not_followed() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(dir.path(), &[("real/a.c", b"ULONG t = 'aaaa';\n")]);
    std::os::unix::fs::symlink(dir.path().join("real"), dir.path().join("link")).unwrap();
    // A link back to the root would loop if followed.
    std::os::unix::fs::symlink(dir.path(), dir.path().join("real/loop")).unwrap();
    let scan = scan_sources(dir.path(), &SourceScanOptions::default()).unwrap();
    assert_eq!(scan.files_scanned, 1);
    let warned: Vec<&Path> = scan.warnings.iter().map(|w| w.path.as_path()).collect();
    assert_eq!(
        warned,
        [
            dir.path().join("link").as_path(),
            dir.path().join("real/loop").as_path()
        ]
    );
    assert!(
        scan.warnings
            .iter()
            .all(|w| w.problem == SourceProblem::Symlink)
    );
}

// ---------------------------------------------------------------------------------------------------
// Bad input: never a panic, bounded work.

#[test]
fn non_utf8_file_is_scanned_lossily_with_a_warning() {
    let dir = tempfile::tempdir().unwrap();
    write_tree(
        dir.path(),
        &[(
            "latin1.c",
            b"/* \xA9 1998 */\nULONG t = ExAllocatePoolWithTag(NonPagedPool, 1, 'Lat1'); /* \xE9 */\n",
        )],
    );
    let scan = scan_sources(dir.path(), &SourceScanOptions::default()).unwrap();
    assert_eq!(
        lines(&scan.tags),
        ["1taL latin1.c:2:50 'Lat1' multi-char - [ExAllocatePoolWithTag@latin1.c:2:11]"]
    );
    assert_eq!(scan.warnings.len(), 1);
    assert_eq!(scan.warnings[0].problem, SourceProblem::NotUtf8);
}

#[test]
fn utf16_file_with_bom_is_decoded() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes = vec![0xFF, 0xFE];
    for unit in "#define U16_TAG 'W61U'\r\n".encode_utf16() {
        bytes.extend_from_slice(&unit.to_le_bytes());
    }
    write_tree(dir.path(), &[("wide.h", &bytes)]);
    let scan = scan_sources(dir.path(), &SourceScanOptions::default()).unwrap();
    assert_eq!(
        lines(&scan.tags),
        ["U16W wide.h:1:17 'W61U' define U16_TAG []"]
    );
    assert_eq!(scan.warnings, []);
}

#[test]
fn unterminated_comment_char_and_string_at_end_of_file() {
    let c = scan_source_text("a.c", Language::C, "ULONG a = 'Tag1'; /* 'Tag2'");
    assert_eq!(lines(&c), ["1gaT a.c:1:11 'Tag1' multi-char a []"]);
    let c = scan_source_text("a.c", Language::C, "ULONG a = 'Tag1'; 'ab");
    assert_eq!(lines(&c), ["1gaT a.c:1:11 'Tag1' multi-char a []"]);
    let c = scan_source_text("a.c", Language::C, "ULONG a = 'ab\nULONG b = 'Tag3';");
    assert_eq!(lines(&c), ["3gaT a.c:2:11 'Tag3' multi-char b []"]);
    let c = scan_source_text("a.c", Language::C, "f(\"abc\n'Tag4'");
    assert_eq!(lines(&c), ["4gaT a.c:2:1 'Tag4' multi-char - []"]);
    let c = scan_source_text("a.c", Language::C, "'");
    assert_eq!(c, []);
    let c = scan_source_text("a.c", Language::C, "#define X \\");
    assert_eq!(c, []);
    let c = scan_source_text(
        "a.c",
        Language::C,
        "ExAllocatePoolWithTag(NonPagedPool, 1, 'Tag5'",
    );
    assert_eq!(lines(&c), ["5gaT a.c:1:40 'Tag5' multi-char - []"]);

    let r = scan_source_text(
        "a.rs",
        Language::Rust,
        "const A: u32 = u32::from_le_bytes(*b\"Tag1\"); /* /* */ *b\"Tag2\"",
    );
    assert_eq!(
        lines(&r),
        [r#"Tag1 a.rs:1:16 u32::from_le_bytes(*b"Tag1") rust-bytes A []"#]
    );
    let r = scan_source_text(
        "a.rs",
        Language::Rust,
        "let s = \"unterminated\nconst B: u32 = u32::from_le_bytes(*b\"Tag2\");",
    );
    assert_eq!(r, []);
    let r = scan_source_text(
        "a.rs",
        Language::Rust,
        "let s = r##\"x\"# u32::from_le_bytes(*b\"Tag3\")",
    );
    assert_eq!(r, []);
    for text in [
        "'",
        "b'",
        "b'\\",
        "'\\u{",
        "r#",
        "br##",
        "u32::from_le_bytes(",
        "0x",
    ] {
        assert_eq!(
            scan_source_text("a.rs", Language::Rust, text),
            [],
            "{text:?}"
        );
    }
}

#[test]
fn huge_line_is_scanned_in_bounded_time() {
    // 2 MiB of code on one line, then a tag: its column counts characters.
    let filler = "x+".repeat(1 << 20);
    let text = format!("int a = {filler}1; ULONG t = 'Hug1';\n");
    let started = std::time::Instant::now();
    let tags = scan_source_text("huge.c", Language::C, &text);
    assert_eq!(tags.len(), 1);
    assert_eq!(&tags[0].tag, b"1guH");
    assert_eq!(tags[0].line, 1);
    assert_eq!(
        tags[0].column as usize,
        "int a = ".len() + filler.len() + "1; ULONG t = ".len() + 1
    );
    // Many tags on one line.
    let many = "'abcd',".repeat(100_000);
    let tags = scan_source_text("many.c", Language::C, &many);
    assert_eq!(tags.len(), 100_000);
    assert_eq!(tags[99_999].column, 1 + 7 * 99_999);
    assert!(started.elapsed() < std::time::Duration::from_secs(30));
}

#[test]
fn deep_nesting_does_not_overflow() {
    let depth = 200_000;
    let text = format!("x = {}'Deep'{};", "(".repeat(depth), ")".repeat(depth));
    let tags = scan_source_text("deep.c", Language::C, &text);
    assert_eq!(
        lines(&tags),
        [format!(
            "peeD deep.c:1:{} 'Deep' multi-char x []",
            5 + depth
        )]
    );

    // Unbalanced: openers only, closers only, mismatched, an allocator call that never closes.
    let text = format!(
        "{}ExAllocatePoolWithTag(a, b, 'Ope1' {}{}",
        "{[(".repeat(depth / 3),
        "]".repeat(depth),
        ")}".repeat(depth / 2)
    );
    let tags = scan_source_text("unbalanced.c", Language::C, &text);
    assert_eq!(tags.len(), 1);
    assert_eq!(&tags[0].tag, b"1epO");

    // Rust block comments nested 200 000 deep.
    let text = format!(
        "{}'x'{}const T: u32 = u32::from_be_bytes(*b\"peeD\");",
        "/*".repeat(depth),
        "*/".repeat(depth)
    );
    let tags = scan_source_text("deep.rs", Language::Rust, &text);
    assert_eq!(tags.len(), 1);
    assert_eq!(&tags[0].tag, b"Deep");
}

#[test]
fn a_local_variable_is_not_seen_from_another_function() {
    let text = "void a(void) { ULONG Tag = 'aaaa'; }
PVOID Alloc(SIZE_T n, ULONG Tag) { return ExAllocatePoolWithTag(NonPagedPool, n, Tag); }
void b(void) { ULONG Tag = 'bbbb'; ExFreePoolWithTag(p, Tag); }
";
    assert_eq!(
        lines(&scan_source_text("scope.c", Language::C, text)),
        [
            "aaaa scope.c:1:28 'aaaa' multi-char Tag []",
            "bbbb scope.c:3:28 'bbbb' multi-char Tag [ExFreePoolWithTag@scope.c:3:36]",
        ]
    );
}

#[test]
fn alias_cycles_and_self_references_terminate() {
    let text = "#define A B\n#define B A\n#define C C\nvoid f(void) { ExAllocatePoolWithTag(p, n, A); ExFreePoolWithTag(p, C); }\n";
    assert_eq!(scan_source_text("cycle.c", Language::C, text), []);
}

/// Deterministic pseudo-random text made of the characters that drive the lexers.
fn noise(seed: u64, len: usize) -> String {
    const ALPHABET: &[&str] = &[
        "'",
        "\"",
        "/",
        "*",
        "\\",
        "\n",
        "#",
        "(",
        ")",
        "{",
        "}",
        "[",
        "]",
        ",",
        ";",
        "=",
        "r",
        "b",
        "R",
        "L",
        "x",
        "0x41",
        "'abcd'",
        "ExAllocatePoolWithTag",
        "from_le_bytes",
        "::",
        "u32",
        "define",
        " ",
        "é",
        "\r",
        "\u{0}",
        "TAG",
        "as",
    ];
    let mut state = seed;
    let mut out = String::new();
    for _ in 0..len {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let pick = (state >> 33) as usize % ALPHABET.len();
        out.push_str(ALPHABET[pick]);
    }
    out
}

#[test]
fn random_noise_never_panics_and_positions_stay_in_the_text() {
    for seed in 0..300u64 {
        let text = noise(seed, 400);
        let line_count = text.split('\n').count() as u32;
        for language in [Language::C, Language::Cpp, Language::Rust] {
            for tag in scan_source_text("noise", language, &text) {
                assert!(
                    tag.line >= 1 && tag.line <= line_count,
                    "seed {seed} {language:?}"
                );
                assert!(tag.column >= 1);
                for call in &tag.calls {
                    assert!(call.line >= 1 && call.line <= line_count);
                }
            }
        }
    }
}
