//! Lays a PE file out as the Windows loader maps it: headers at offset 0, each section's raw data at its
//! `VirtualAddress`, the rest zero. The scenario maps the fake kernel this way; tests use it to build mapped
//! images of real drivers.

use object::LittleEndian as LE;
use object::read::pe::PeFile64;

/// Why a PE file cannot be mapped.
#[derive(Debug, thiserror::Error)]
#[error("cannot map PE image: {0}")]
pub struct MapError(String);

/// Returns the `SizeOfImage` bytes of the mapped image of the PE32+ file `file`.
pub fn mapped_image(file: &[u8]) -> Result<Vec<u8>, MapError> {
    let pe = PeFile64::parse(file).map_err(|e| MapError(e.to_string()))?;
    let optional = &pe.nt_headers().optional_header;
    let mut image = vec![0u8; optional.size_of_image.get(LE) as usize];
    let headers = optional.size_of_headers.get(LE) as usize;
    copy(&mut image, 0, file, 0, headers)?;
    for section in pe.section_table().iter() {
        let va = section.virtual_address.get(LE) as usize;
        let raw = section.pointer_to_raw_data.get(LE) as usize;
        let len = section
            .size_of_raw_data
            .get(LE)
            .min(section.virtual_size.get(LE)) as usize;
        copy(&mut image, va, file, raw, len)?;
    }
    Ok(image)
}

fn copy(image: &mut [u8], at: usize, file: &[u8], from: usize, len: usize) -> Result<(), MapError> {
    let source = file
        .get(from..from + len)
        .ok_or_else(|| MapError(format!("file range {from:#x}+{len:#x} is past the end")))?;
    image
        .get_mut(at..at + len)
        .ok_or_else(|| MapError(format!("RVA {at:#x}+{len:#x} is past SizeOfImage")))?
        .copy_from_slice(source);
    Ok(())
}
