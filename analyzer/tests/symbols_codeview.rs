//! CodeView (RSDS) and export-name reading from real PE files, their mapped layout, and broken images.
//!
//! Expected values come from `llvm-readobj-19 --coff-debug-directory kprocesshacker_amd64.sys` and
//! `../shared/data/drivers/GROUND_TRUTH.md`:
//! `Type: CodeView (0x2)`, `SizeOfData: 0x5F`, `AddressOfRawData: 0x22CC`, `PointerToRawData: 0x16CC`,
//! GUID {7F458D92-CC6E-4B9B-9D2A-87403D20D4C1}, age 2,
//! `PDBFileName: d:\projects\processhacker2\kprocesshacker\bin\amd64\kprocesshacker.pdb`.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions unwrap too

use std::path::{Path, PathBuf};

use pooltop_analyzer::symbols::{
    PdbId, SymbolError, export_name_from_mapped_image, pdb_id_from_mapped_image,
    pdb_id_from_pe_bytes, pdb_id_from_pe_file,
};
use uuid::Uuid;

fn drivers() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared/data/drivers")
}

fn kph_sys() -> Vec<u8> {
    std::fs::read(drivers().join("kprocesshacker_amd64.sys")).unwrap()
}

fn expected_kph() -> PdbId {
    PdbId {
        name: "kprocesshacker.pdb".to_string(),
        guid: Uuid::parse_str("7F458D92-CC6E-4B9B-9D2A-87403D20D4C1").unwrap(),
        age: 2,
    }
}

fn map_image(file: &[u8]) -> Vec<u8> {
    pooltop_synth::pe::mapped_image(file).unwrap()
}

/// A reader over a mapped image that fails outside it.
fn reader(image: &[u8]) -> impl FnMut(u32, &mut [u8]) -> Result<(), String> + '_ {
    move |rva, buf| {
        let start = rva as usize;
        let end = start + buf.len();
        if end > image.len() {
            return Err(format!("RVA {rva:#x}+{:#x} is not mapped", buf.len()));
        }
        buf.copy_from_slice(&image[start..end]);
        Ok(())
    }
}

/// File offset of the CodeView debug directory entry, found by its field values from llvm-readobj
/// (Type 2, SizeOfData 0x5F, AddressOfRawData 0x22CC, PointerToRawData 0x16CC).
fn codeview_entry_offset(file: &[u8]) -> usize {
    let mut pattern = Vec::new();
    for v in [2u32, 0x5F, 0x22CC, 0x16CC] {
        pattern.extend_from_slice(&v.to_le_bytes());
    }
    let pos = file
        .windows(16)
        .position(|w| w == pattern.as_slice())
        .unwrap();
    pos - 12 // Characteristics, TimeDateStamp, Major/MinorVersion precede Type.
}

#[test]
fn store_key_and_display_follow_symsrv_format() {
    let id = expected_kph();
    assert_eq!(id.store_key(), "7F458D92CC6E4B9B9D2A87403D20D4C12");
    assert_eq!(
        id.to_string(),
        "kprocesshacker.pdb 7F458D92-CC6E-4B9B-9D2A-87403D20D4C1 age 2"
    );
    // Age in hex without leading zeros, GUID leading zeros kept (symbols.md §2).
    let id = PdbId {
        name: "ntkrnlmp.pdb".to_string(),
        guid: Uuid::parse_str("00ab0001-0002-0003-0405-060708090a0b").unwrap(),
        age: 0x1A,
    };
    assert_eq!(id.store_key(), "00AB0001000200030405060708090A0B1A");
}

#[test]
fn rsds_from_unsigned_and_signed_files() {
    let id = pdb_id_from_pe_file(&drivers().join("kprocesshacker_amd64.sys")).unwrap();
    assert_eq!(id, expected_kph());
    let signed = pdb_id_from_pe_file(&drivers().join("kprocesshacker_signed_amd64.sys")).unwrap();
    assert_eq!(signed, expected_kph());
}

#[test]
fn rsds_from_other_real_drivers() {
    // GROUND_TRUTH.md: winpmem_x64_test.sys → 918F33D1-2D98-4C30-B72E-7A347B3783EE age 2, winpmem.pdb.
    let id = pdb_id_from_pe_file(&drivers().join("winpmem_x64_test.sys")).unwrap();
    assert_eq!(id.name, "winpmem.pdb");
    assert_eq!(id.store_key(), "918F33D12D984C30B72E7A347B3783EE2");
    let id = pdb_id_from_pe_file(&drivers().join("chipsec_hlpr_win7_amd64.sys")).unwrap();
    assert_eq!(id.name, "chipsec_hlpr.pdb");
    assert_eq!(id.store_key(), "E7FEC819D4E84C69B328474C03BF3A471");
}

#[test]
fn rsds_from_mapped_image_through_reader() {
    let image = map_image(&kph_sys());
    let mut reads = Vec::new();
    let mut read = reader(&image);
    let id = pdb_id_from_mapped_image(|rva, buf: &mut [u8]| {
        reads.push((rva, buf.len()));
        read(rva, buf)
    })
    .unwrap();
    assert_eq!(id, expected_kph());
    // Targeted reads only, the last one the 0x5F-byte record at AddressOfRawData.
    assert!(reads.len() <= 6, "{reads:?}");
    assert_eq!(reads.last(), Some(&(0x22CC, 0x5F)));
    // The mapped layout really differs from the file: the record is not at its RVA in the file.
    let file = kph_sys();
    assert_ne!(&file[0x22CC..0x22D0], b"RSDS");
    assert_eq!(&image[0x22CC..0x22D0], b"RSDS");
}

#[test]
fn export_name_of_mapped_image() {
    let mut image = map_image(&kph_sys());
    // The driver has no export directory.
    assert_eq!(export_name_from_mapped_image(reader(&image)).unwrap(), None);

    // Give it one: an IMAGE_EXPORT_DIRECTORY at RVA 0x800 (unused header space) whose Name field points to
    // "ntoskrnl.exe" placed across the 0x1000 page boundary.
    let name_rva = 0xFFAu32;
    image[name_rva as usize..name_rva as usize + 13].copy_from_slice(b"ntoskrnl.exe\0");
    let dir_rva = 0x800usize;
    image[dir_rva..dir_rva + 40].fill(0);
    image[dir_rva + 12..dir_rva + 16].copy_from_slice(&name_rva.to_le_bytes());
    let e_lfanew = u32::from_le_bytes(image[0x3C..0x40].try_into().unwrap()) as usize;
    let export_dd = e_lfanew + 24 + 112; // data directory 0
    image[export_dd..export_dd + 4].copy_from_slice(&(dir_rva as u32).to_le_bytes());
    image[export_dd + 4..export_dd + 8].copy_from_slice(&40u32.to_le_bytes());

    // A reader that, like a dump, refuses reads crossing a page boundary.
    let mut inner = reader(&image);
    let page_checked = |rva: u32, buf: &mut [u8]| {
        if buf.len() > 1 && (rva as usize & !0xFFF) != ((rva as usize + buf.len() - 1) & !0xFFF) {
            return Err(format!("read at {rva:#x} crosses a page"));
        }
        inner(rva, buf)
    };
    assert_eq!(
        export_name_from_mapped_image(page_checked)
            .unwrap()
            .as_deref(),
        Some("ntoskrnl.exe")
    );
}

#[test]
fn debug_entry_outside_the_image_is_reported() {
    let file = kph_sys();
    let entry = codeview_entry_offset(&file);
    let mut image = map_image(&file);
    // Header bytes are identical in both layouts, so the entry sits at the same place if it is in the
    // headers; otherwise find it again in the mapped image.
    let entry_in_image = codeview_entry_offset(&image);
    image[entry_in_image + 20..entry_in_image + 24].copy_from_slice(&0x00FF_0000u32.to_le_bytes());
    let err = pdb_id_from_mapped_image(reader(&image)).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, SymbolError::BadImage { .. }), "{err:?}");
    assert!(
        text.contains("debug directory entry 0 points outside the image (RVA 0xff0000 + 0x5f > SizeOfImage 0xb000)"),
        "{text}"
    );
    assert!(text.starts_with("image at RVA 0x"), "{text}");

    let mut bad_file = file.clone();
    bad_file[entry + 24..entry + 28].copy_from_slice(&0x00FF_0000u32.to_le_bytes());
    let text = pdb_id_from_pe_bytes(&bad_file, "bad.sys")
        .unwrap_err()
        .to_string();
    assert!(
        text.starts_with("bad.sys at RVA 0x")
            && text.contains("debug directory entry 0 points outside the file"),
        "{text}"
    );
}

#[test]
fn non_pe_and_wrong_machine_are_rejected() {
    let pdb = std::fs::read(drivers().join("kprocesshacker_amd64.pdb")).unwrap();
    let text = pdb_id_from_pe_bytes(&pdb, "kph.pdb")
        .unwrap_err()
        .to_string();
    assert_eq!(
        text,
        "kph.pdb at RVA 0x0: not a PE image: no MZ signature (found 0x694d)"
    );

    let text = pdb_id_from_pe_bytes(b"MZ", "tiny").unwrap_err().to_string();
    assert!(
        text.starts_with("tiny at RVA 0x0: cannot read 64 bytes of the DOS header"),
        "{text}"
    );

    let mut file = kph_sys();
    let e_lfanew = u32::from_le_bytes(file[0x3C..0x40].try_into().unwrap()) as usize;
    file[e_lfanew + 4..e_lfanew + 6].copy_from_slice(&0x014Cu16.to_le_bytes());
    let text = pdb_id_from_pe_bytes(&file, "x86.sys")
        .unwrap_err()
        .to_string();
    assert!(
        text.ends_with("machine 0x014c is not x64 (0x8664)"),
        "{text}"
    );

    // A reader error is passed through with what was being read.
    let image = map_image(&kph_sys());
    let failing = |rva: u32, buf: &mut [u8]| {
        if rva >= 0x2000 {
            Err(std::io::Error::other("page not present"))
        } else {
            buf.copy_from_slice(&image[rva as usize..rva as usize + buf.len()]);
            Ok(())
        }
    };
    let text = pdb_id_from_mapped_image(failing).unwrap_err().to_string();
    assert!(
        text.contains("cannot read") && text.contains("page not present"),
        "{text}"
    );
}

#[test]
fn rsds_signature_and_termination_are_checked() {
    let file = kph_sys();
    let mut bad = file.clone();
    bad[0x16CC..0x16D0].copy_from_slice(b"NB10");
    let text = pdb_id_from_pe_bytes(&bad, "nb10.sys")
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("CodeView record is not RSDS (found \"NB10\")"),
        "{text}"
    );

    // Replace the name's NUL (at 0x16CC + 0x5F - 1) so the name runs to the end of the record.
    let mut bad = file;
    bad[0x16CC + 0x5E] = b'x';
    let text = pdb_id_from_pe_bytes(&bad, "nonul.sys")
        .unwrap_err()
        .to_string();
    assert!(
        text.contains("RSDS PDB name is not NUL-terminated"),
        "{text}"
    );
}
