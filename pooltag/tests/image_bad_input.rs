//! Hostile and damaged images: truncations and byte flips of the real drivers, patched headers, and mapped
//! inputs with odd missing ranges. Every case ends in a one-line `ImageError` or a scan, never a panic, and
//! in bounded time.

#![allow(clippy::unwrap_used)] // Tests fail loudly; helpers unwrap too.

mod image_support;

use std::ops::Range;
use std::time::{Duration, Instant};

use image_support::*;
use pooltop_pooltag::image::{
    ImageError, ImageInput, ImageLayout, ImageScan, ScanOptions, scan_image, scan_image_with,
};

fn scan(
    bytes: &[u8],
    layout: ImageLayout,
    missing: &[Range<u32>],
) -> Result<ImageScan, ImageError> {
    scan_image(&ImageInput {
        bytes,
        layout,
        missing,
    })
}

fn scan_as_file(bytes: &[u8]) -> Result<ImageScan, ImageError> {
    scan(bytes, ImageLayout::File, &[])
}

fn assert_one_line(error: &ImageError) {
    let text = error.to_string();
    assert!(!text.contains('\n') && !text.is_empty(), "{text:?}");
}

/// End of the furthest section content in the file (`PointerToRawData + min(SizeOfRawData, VirtualSize)`).
fn end_of_section_data(file: &[u8]) -> usize {
    sections(file)
        .iter()
        .map(|s| (s.raw_pointer + s.raw_size.min(s.virtual_size)) as usize)
        .max()
        .unwrap()
}

#[test]
fn not_a_pe_image() {
    for bytes in [
        &b""[..],
        b"MZ",
        b"hello, world: this is a text file and not a driver at all......",
    ] {
        let error = scan_as_file(bytes).unwrap_err();
        assert!(
            matches!(error, ImageError::NotPe(_) | ImageError::Truncated { .. }),
            "{error:?}"
        );
        assert_one_line(&error);
    }
    let mut bytes = driver("kprocesshacker_amd64.sys");
    bytes[0] = b'X';
    assert!(matches!(scan_as_file(&bytes), Err(ImageError::NotPe(_))));
    let mut bytes = driver("kprocesshacker_amd64.sys");
    let nt = nt_offset(&bytes);
    bytes[nt] = b'X';
    let error = scan_as_file(&bytes).unwrap_err();
    assert!(error.to_string().contains(&format!("0x{nt:x}")), "{error}");
    // e_lfanew past the end.
    let mut bytes = driver("kprocesshacker_amd64.sys");
    bytes[0x3c..0x40].copy_from_slice(&0xffff_fff0u32.to_le_bytes());
    assert!(matches!(
        scan_as_file(&bytes),
        Err(ImageError::Truncated { .. })
    ));
}

#[test]
fn wrong_machine_and_wrong_optional_header() {
    let original = driver("winpmem_x64.sys");
    let nt = nt_offset(&original);
    let mut bytes = original.clone();
    bytes[nt + 4..nt + 6].copy_from_slice(&0x014cu16.to_le_bytes()); // i386
    let error = scan_as_file(&bytes).unwrap_err();
    assert_eq!(error, ImageError::WrongMachine { machine: 0x14c });
    assert!(error.to_string().contains("0x014c"), "{error}");

    let mut bytes = original.clone();
    bytes[nt + 24..nt + 26].copy_from_slice(&0x10bu16.to_le_bytes()); // PE32 magic
    assert!(matches!(scan_as_file(&bytes), Err(ImageError::Malformed(m)) if m.contains("PE32+")));

    let mut bytes = original.clone();
    bytes[nt + 20..nt + 22].copy_from_slice(&16u16.to_le_bytes()); // optional header too small
    assert!(matches!(
        scan_as_file(&bytes),
        Err(ImageError::Malformed(_))
    ));

    let mut bytes = original;
    bytes[nt + 6..nt + 8].copy_from_slice(&0xffffu16.to_le_bytes()); // 65,535 sections
    let error = scan_as_file(&bytes).unwrap_err();
    assert!(
        matches!(error, ImageError::Malformed(ref m) if m.contains("65535 sections")),
        "{error}"
    );
}

#[test]
fn section_data_past_the_end_is_an_error_naming_the_section() {
    let mut bytes = driver("kprocesshacker_amd64.sys");
    let text = &sections(&bytes)[0];
    assert_eq!(text.name, ".text");
    let at = text.header_offset + 20;
    bytes[at..at + 4].copy_from_slice(&0xffff_ff00u32.to_le_bytes());
    let error = scan_as_file(&bytes).unwrap_err();
    assert!(
        matches!(error, ImageError::Truncated { ref what, .. } if what.contains(".text")),
        "{error}"
    );
    assert_one_line(&error);

    // A section that wraps past 4 GiB of RVAs.
    let mut bytes = driver("kprocesshacker_amd64.sys");
    let at = sections(&bytes)[1].header_offset + 12;
    bytes[at..at + 4].copy_from_slice(&0xffff_ff00u32.to_le_bytes());
    assert!(matches!(scan_as_file(&bytes), Err(ImageError::Malformed(m)) if m.contains("wraps")));
}

#[test]
fn a_damaged_import_directory_is_an_error_for_files_and_a_warning_for_mapped_images() {
    let file = driver("kprocesshacker_amd64.sys");
    let at = optional_offset(&file) + 112 + 8;
    let mut bytes = file.clone();
    bytes[at..at + 4].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
    let error = scan_as_file(&bytes).unwrap_err();
    assert!(
        matches!(error, ImageError::Malformed(ref m) if m.contains("import descriptor")),
        "{error}"
    );
    assert_one_line(&error);

    let mut image = mapped(&file);
    image[at..at + 4].copy_from_slice(&0x7fff_0000u32.to_le_bytes());
    let result = scan(&image, ImageLayout::Mapped, &[]).unwrap();
    assert!(result.allocator_imports.is_empty());
    assert_eq!(result.warnings.len(), 1, "{:?}", result.warnings);

    // A lookup table whose name RVA points at garbage without a NUL: error, not an endless read.
    let (dir, _) = directory(&file, 1);
    let lookup = u32_at(&file, file_offset(&file, dir)) as usize;
    let mut bytes = file.clone();
    let thunk = file_offset(&file, lookup as u32);
    bytes[thunk..thunk + 8].copy_from_slice(&0x7000_0000u64.to_le_bytes());
    assert!(matches!(
        scan_as_file(&bytes),
        Err(ImageError::Malformed(_))
    ));
}

#[test]
fn every_truncation_of_the_real_files_is_an_error_or_a_scan() {
    let started = Instant::now();
    for name in DRIVERS {
        let file = driver(name);
        let data_end = end_of_section_data(&file);
        let headers_end = sections(&file).last().unwrap().header_offset + 40;
        let cuts = (0..headers_end + 64).chain((headers_end..file.len()).step_by(97));
        for cut in cuts {
            match scan_as_file(&file[..cut]) {
                Ok(_) => assert!(
                    cut >= data_end,
                    "{name}: cut at {cut} before the end of section data"
                ),
                Err(error) => {
                    assert!(cut < data_end, "{name}: cut at {cut}: {error}");
                    assert_one_line(&error);
                }
            }
        }
        // The signed file's certificate table lies after the section data: cutting it off still scans.
        assert!(scan_as_file(&file[..data_end]).is_ok(), "{name}");
    }
    assert!(started.elapsed() < Duration::from_secs(120));
}

#[test]
fn truncated_mapped_images_report_their_missing_code() {
    let file = driver("kprocesshacker_amd64.sys");
    let image = mapped(&file);
    let code: Vec<Range<u32>> = sections(&file)
        .iter()
        .filter(|s| s.characteristics & 0x2000_0020 != 0)
        .map(|s| s.virtual_address..s.virtual_address + s.virtual_size)
        .collect();
    for cut in (0..image.len()).step_by(251) {
        match scan(&image[..cut], ImageLayout::Mapped, &[]) {
            Ok(result) => {
                // Whatever code lies past the cut is reported missing, and nothing there was found.
                let lost: Vec<Range<u32>> = code
                    .iter()
                    .filter(|r| r.end as usize > cut)
                    .map(|r| r.start.max(cut as u32)..r.end)
                    .collect();
                assert_eq!(result.missing_code, lost, "cut at {cut}");
                assert!(result.findings.iter().all(|f| (f.rva as usize) < cut));
            }
            Err(error) => {
                assert_one_line(&error);
                let headers_end = sections(&file).last().unwrap().header_offset + 40;
                assert!(cut < headers_end, "cut at {cut}: {error}");
            }
        }
    }
}

#[test]
fn byte_flips_never_panic() {
    let started = Instant::now();
    for name in DRIVERS {
        let file = driver(name);
        let headers_end = sections(&file).last().unwrap().header_offset + 40;
        // kprocesshacker: every header byte; the others every 7th. Then a spread over the rest of the file.
        let header_step = if name == "kprocesshacker_amd64.sys" {
            1
        } else {
            7
        };
        let offsets = (0..headers_end)
            .step_by(header_step)
            .chain((headers_end..file.len()).step_by(401));
        for at in offsets {
            let mut bytes = file.clone();
            bytes[at] ^= 0xff;
            if let Err(error) = scan_as_file(&bytes) {
                assert_one_line(&error);
            }
        }
    }
    // The mapped layout reads directories at RVAs instead of file offsets: flip its header bytes too.
    let image = mapped(&driver("kprocesshacker_amd64.sys"));
    for at in (0..0x300).step_by(12) {
        for value in [0x00, 0xff] {
            let mut bytes = image.clone();
            bytes[at] = value;
            if let Err(error) = scan(&bytes, ImageLayout::Mapped, &[]) {
                assert_one_line(&error);
            }
        }
    }
    assert!(started.elapsed() < Duration::from_secs(120));
}

#[test]
fn odd_missing_ranges_are_harmless() {
    let image = mapped(&driver("winpmem_x64.sys"));
    // Even the headers are missing: nothing can be read.
    for missing in [0..u32::MAX, 0..1, 0x200..0x201] {
        let error = scan(&image, ImageLayout::Mapped, std::slice::from_ref(&missing)).unwrap_err();
        assert!(
            matches!(error, ImageError::HeadersMissing { .. }),
            "{error:?}"
        );
        assert_one_line(&error);
    }

    let cases: Vec<Vec<Range<u32>>> = vec![
        vec![0x1000..u32::MAX],
        // Reversed and empty ranges, as a careless caller might pass them.
        vec![
            Range { start: 5, end: 3 },
            Range {
                start: 0x2000,
                end: 0x1000,
            },
            0x1000..0x1000,
        ],
        vec![0x1000..0x1001; 1000],
        (0..4000)
            .map(|i| 0x1000 + i * 16..0x1008 + i * 16)
            .rev()
            .collect(),
    ];
    for missing in &cases {
        let result = scan(&image, ImageLayout::Mapped, missing).unwrap();
        for f in &result.findings {
            assert!(
                missing
                    .iter()
                    .all(|m| m.start >= m.end || !m.contains(&f.rva)),
                "finding at 0x{:x} inside a missing range",
                f.rva
            );
        }
    }
    let result = scan(&image, ImageLayout::Mapped, &cases[0]).unwrap();
    assert!(result.findings.is_empty());
    assert!(!result.missing_code.is_empty());
}

#[test]
fn a_zero_filled_missing_header_page_is_reported_as_missing() {
    // A dump reader fills absent pages with zeros; the scanner must say the headers are missing rather than
    // judge the zeros (no PE signature, machine 0, optional header magic 0).
    let image = mapped(&driver("winpmem_x64.sys"));
    let nt = nt_offset(&image);
    let optional = optional_offset(&image);
    for (at, len) in [(nt, 4), (nt + 4, 20), (optional, 2)] {
        let mut damaged = image.clone();
        damaged[at..at + len].fill(0);
        let missing = at as u32..(at + len) as u32;
        let error = scan(
            &damaged,
            ImageLayout::Mapped,
            std::slice::from_ref(&missing),
        )
        .unwrap_err();
        assert_eq!(
            error,
            ImageError::HeadersMissing { rva: at as u32 },
            "zeroed and missing at 0x{at:x}"
        );
        assert_one_line(&error);
    }
}

/// A small image built here: headers, one executable section of `code` at RVA 0x1000, nothing else.
fn tiny_image(code: &[u8], section_count_patch: Option<u16>) -> Vec<u8> {
    let mut file = driver("kprocesshacker_amd64.sys")[..0x400].to_vec();
    let nt = nt_offset(&file);
    let optional = optional_offset(&file);
    if let Some(count) = section_count_patch {
        file[nt + 6..nt + 8].copy_from_slice(&count.to_le_bytes());
    } else {
        file[nt + 6..nt + 8].copy_from_slice(&1u16.to_le_bytes());
    }
    // No data directories.
    for d in 0..16 {
        let at = optional + 112 + 8 * d;
        file[at..at + 8].fill(0);
    }
    let header = sections(&driver("kprocesshacker_amd64.sys"))[0].header_offset;
    let mut section = [0u8; 40];
    section[..5].copy_from_slice(b".text");
    section[8..12].copy_from_slice(&(code.len() as u32).to_le_bytes());
    section[12..16].copy_from_slice(&0x1000u32.to_le_bytes());
    section[16..20].copy_from_slice(&(code.len() as u32).to_le_bytes());
    section[20..24].copy_from_slice(&0x400u32.to_le_bytes());
    section[36..40].copy_from_slice(&0x6000_0020u32.to_le_bytes());
    file[header..header + 40].copy_from_slice(&section);
    file.extend_from_slice(code);
    file
}

#[test]
fn large_hostile_code_scans_in_bounded_time() {
    // 4 MiB of code made of forward jumps, conditional jumps, moves of tag-like constants and garbage.
    let mut code = Vec::with_capacity(4 << 20);
    let mut state = 0x1234_5678u32;
    while code.len() < (4 << 20) - 16 {
        state = state.wrapping_mul(1_664_525).wrapping_add(1_013_904_223);
        match state >> 29 {
            0 => code.extend([0x74, (state >> 8) as u8 & 0x7f]), // je forward
            1 => code.extend([0x0f, 0x85, 0x00, 0x10, 0x00, 0x00]), // jne +0x1000
            2 => code.extend([0x41, 0xb8, b'T', b'a', b'g', b'1']), // mov r8d, 'Tag1'
            3 => code.extend([0xff, 0x15, 0, 0, 0, 0]),          // call [rip+0]
            4 => code.push(0xc3),                                // ret
            _ => code.extend(state.to_le_bytes()),
        }
    }
    let file = tiny_image(&code, None);
    let started = Instant::now();
    let result = scan_as_file(&file).unwrap();
    assert!(started.elapsed() < Duration::from_secs(60));
    // No imports, so no call sites; the tag-like immediate is a constant candidate.
    assert!(result.findings.iter().all(|f| f.allocator.is_none()));
    assert!(result.tags().contains_key(b"Tag1"));

    // 96 sections (the most the format allows) all over the same 4 MiB: scanned once, not 96 times.
    let file = tiny_image(&code, Some(96));
    let nt = nt_offset(&file);
    let table =
        optional_offset(&file) + u16::from_le_bytes([file[nt + 20], file[nt + 21]]) as usize;
    let mut file = file;
    let first: [u8; 40] = file[table..table + 40].try_into().unwrap();
    // Move the code after a 96-entry section table and copy the header 96 times.
    let code_at = 0x2000usize;
    file.truncate(table + 40);
    file.resize(code_at, 0);
    file.extend_from_slice(&code);
    for i in 0..96 {
        let at = table + 40 * i;
        file[at..at + 40].copy_from_slice(&first);
        file[at + 20..at + 24].copy_from_slice(&(code_at as u32).to_le_bytes());
    }
    let started = Instant::now();
    let _ = scan_as_file(&file);
    assert!(started.elapsed() < Duration::from_secs(60));

    // Options do not change bounds.
    let image = mapped(&driver("kprocesshacker_amd64.sys"));
    let options = ScanOptions {
        allocator_addresses: (0..10_000)
            .map(|i| (pooltop_pooltag::image::Allocator::ExAllocatePool2, i))
            .collect(),
        skip_discardable: true,
    };
    let input = ImageInput {
        bytes: &image,
        layout: ImageLayout::Mapped,
        missing: &[],
    };
    assert!(scan_image_with(&input, &options).is_ok());
}
