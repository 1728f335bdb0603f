//! Shared facts of the real kprocesshacker PDB (`../shared/data/drivers/`), used by several symbol tests.
#![allow(dead_code, clippy::unwrap_used)]

use std::path::Path;

use pooltop_analyzer::symbols::PdbId;
use uuid::Uuid;

/// Its symbol-store key (GUID + DBI age 2), as `GROUND_TRUTH.md` gives it.
pub const KEY: &str = "7F458D92CC6E4B9B9D2A87403D20D4C12";
/// Its file name.
pub const NAME: &str = "kprocesshacker.pdb";

/// The PDB's bytes.
pub fn real_pdb() -> Vec<u8> {
    std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../shared/data/drivers/kprocesshacker_amd64.pdb"),
    )
    .unwrap()
}

/// Its identity as the driver's RSDS record gives it.
pub fn kph_id() -> PdbId {
    PdbId {
        name: NAME.to_string(),
        guid: Uuid::parse_str("7F458D92-CC6E-4B9B-9D2A-87403D20D4C1").unwrap(),
        age: 2,
    }
}
