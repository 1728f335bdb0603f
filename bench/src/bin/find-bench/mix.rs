//! The pool blocks find-bench plants, and how many of them fill a given share of physical memory.
//!
//! Two mixes of block sizes:
//!
//! - [`Mix::Default`]: `PoolBlocksSpec::large()`'s 40 tags `Bk00`…`Bk39`, mostly small blocks (about 330 bytes on
//!   average on the classic eras), the mix of the find tests;
//! - [`Mix::LargeBlocks`]: the same generator with 400 candidate tags `L000`…`L399`, of which only the 40 whose
//!   blocks are largest on average get a weight. The fixture gives each tag a "home" block size (70 % of its blocks)
//!   drawn from its general distribution, so these 40 tags have home sizes from about 0.5 to 4 KiB and the mix
//!   fills memory about three times faster per block. It exists because the fixture plans at most
//!   [`MAX_BLOCKS`] blocks, which the default mix turns into about 1.6 GB of classic pool.

use std::collections::HashMap;

use pooltop_synth::scenario::pool_blocks::{BlockTag, PoolBlocksSpec};
use pooltop_synth::scenario::{BlockTruth, Scenario};

/// Most blocks the fixture plans (`pooltop_synth`'s `check_spec`).
pub const MAX_BLOCKS: usize = 5_000_000;
/// Candidate tags of [`Mix::LargeBlocks`].
pub const LARGE_CANDIDATES: usize = 400;
/// Tags kept in either mix.
pub const TAGS_KEPT: usize = 40;
/// Blocks planned to measure the candidates' average sizes (about 100 per candidate).
const SIZE_SAMPLE_BLOCKS: usize = 40_000;

/// A mix of tags and block sizes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Mix {
    /// `PoolBlocksSpec::large()`: 40 tags, mostly small blocks.
    Default,
    /// 40 tags whose blocks are largest on average, chosen among 400.
    LargeBlocks,
}

impl Mix {
    /// The name used on the command line and in the tables.
    pub fn name(self) -> &'static str {
        match self {
            Mix::Default => "default",
            Mix::LargeBlocks => "large-blocks",
        }
    }

    /// The glob that matches every tag of the mix.
    pub fn all_tags_pattern(self) -> &'static str {
        match self {
            Mix::Default => "Bk*",
            Mix::LargeBlocks => "L*",
        }
    }

    /// The spec of this mix (its `blocks` still to be set), planned on `scenario`'s kernel for the large-block
    /// choice; errors are the fixture's.
    pub fn spec(self, scenario: &Scenario) -> Result<PoolBlocksSpec, String> {
        match self {
            Mix::Default => Ok(PoolBlocksSpec::large()),
            Mix::LargeBlocks => {
                let mut sample = scenario.clone();
                let mut spec = candidate_spec(&vec![1; LARGE_CANDIDATES]);
                spec.blocks = SIZE_SAMPLE_BLOCKS;
                sample.pool_blocks = Some(spec.clone());
                let built = sample.build().map_err(|e| e.to_string())?;
                let means = mean_sizes(&spec.tags, &built.placed.blocks);
                let kept = largest(&means, TAGS_KEPT);
                let mut weights = vec![0; LARGE_CANDIDATES];
                for (rank, &index) in kept.iter().enumerate() {
                    weights[index] = 1 + (rank as u32 * 7) % 13;
                }
                Ok(candidate_spec(&weights))
            }
        }
    }
}

/// `PoolBlocksSpec::large()` with the candidate tags `L000`… weighted by `weights` (one per tag).
fn candidate_spec(weights: &[u32]) -> PoolBlocksSpec {
    let mut spec = PoolBlocksSpec::large();
    spec.tags = weights
        .iter()
        .enumerate()
        .map(|(i, &weight)| {
            let digits = format!("{:03}", i % 1000);
            let name = [
                b'L',
                digits.as_bytes()[0],
                digits.as_bytes()[1],
                digits.as_bytes()[2],
            ];
            BlockTag::new(&name, weight)
        })
        .collect();
    spec
}

/// Average planted block size of each tag of `tags`, by index (`None` for a tag without blocks).
pub fn mean_sizes(tags: &[BlockTag], blocks: &[BlockTruth]) -> Vec<Option<f64>> {
    let index: HashMap<[u8; 4], usize> = tags.iter().enumerate().map(|(i, t)| (t.tag, i)).collect();
    let mut sums = vec![(0u64, 0u64); tags.len()];
    for block in blocks {
        if let Some(&i) = index.get(&block.tag) {
            sums[i].0 += block.size;
            sums[i].1 += 1;
        }
    }
    sums.into_iter()
        .map(|(bytes, count)| (count > 0).then(|| bytes as f64 / count as f64))
        .collect()
}

/// Indices of the `count` largest means (ties: lower index first), in increasing index order.
pub fn largest(means: &[Option<f64>], count: usize) -> Vec<usize> {
    let mut order: Vec<(usize, f64)> = means
        .iter()
        .enumerate()
        .filter_map(|(i, m)| m.map(|m| (i, m)))
        .collect();
    order.sort_by(|a, b| b.1.total_cmp(&a.1).then(a.0.cmp(&b.0)));
    let mut kept: Vec<usize> = order.into_iter().take(count).map(|(i, _)| i).collect();
    kept.sort_unstable();
    kept
}

/// Blocks to plan so that about `share` of `physical_pages` holds pool, given the pages one block takes, capped at
/// [`MAX_BLOCKS`]; the flag says whether the cap applied.
pub fn blocks_for_share(physical_pages: u64, share: f64, pages_per_block: f64) -> (usize, bool) {
    let wanted = (physical_pages as f64 * share / pages_per_block).ceil();
    if wanted >= MAX_BLOCKS as f64 {
        (MAX_BLOCKS, true)
    } else {
        ((wanted as usize).max(1), false)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use pooltop_synth::kernels;

    #[test]
    fn block_count_follows_the_share_and_stops_at_the_fixture_limit() {
        // 1 GiB = 262,144 pages; half of it at 0.08 pages per block = 1,638,400 blocks.
        assert_eq!(blocks_for_share(262_144, 0.5, 0.08), (1_638_400, false));
        // 4 GiB at 1/2 would need 6,553,600 blocks of the same mix: capped.
        assert_eq!(blocks_for_share(1_048_576, 0.5, 0.08), (5_000_000, true));
        assert_eq!(blocks_for_share(1, 1e-9, 1.0), (1, false));
    }

    #[test]
    fn the_largest_means_are_kept_in_index_order() {
        let means = [
            Some(100.0),
            None,
            Some(900.0),
            Some(300.0),
            Some(900.0),
            Some(50.0),
        ];
        assert_eq!(largest(&means, 3), vec![2, 3, 4]);
        assert_eq!(largest(&means, 1), vec![2]);
        assert_eq!(largest(&means, 10), vec![0, 2, 3, 4, 5]);
    }

    #[test]
    fn large_block_mix_plants_only_its_40_tags_with_larger_blocks() {
        let kernel = kernels::by_era("w7-sp1").unwrap();
        let scenario = Scenario::new(kernel);
        let mean_of = |spec: PoolBlocksSpec| {
            let mut s = scenario.clone();
            let mut spec = spec;
            spec.blocks = 20_000;
            s.pool_blocks = Some(spec);
            let built = s.build().unwrap();
            let blocks = &built.placed.blocks;
            let tags: std::collections::BTreeSet<[u8; 4]> = blocks.iter().map(|b| b.tag).collect();
            let mean = blocks.iter().map(|b| b.size).sum::<u64>() as f64 / blocks.len() as f64;
            (tags, mean)
        };
        let (default_tags, default_mean) = mean_of(Mix::Default.spec(&scenario).unwrap());
        let large = Mix::LargeBlocks.spec(&scenario).unwrap();
        assert_eq!(large.tags.len(), LARGE_CANDIDATES);
        let weighted: Vec<[u8; 4]> = large
            .tags
            .iter()
            .filter(|t| t.weight > 0)
            .map(|t| t.tag)
            .collect();
        assert_eq!(weighted.len(), TAGS_KEPT);
        let (large_tags, large_mean) = mean_of(large);
        assert_eq!(default_tags.len(), 40);
        assert!(default_tags.iter().all(|t| t.starts_with(b"Bk")));
        assert!(
            large_tags.iter().all(|t| weighted.contains(t)),
            "{large_tags:?}"
        );
        assert!(
            large_mean > 2.0 * default_mean,
            "large-block mix {large_mean:.0} B vs default {default_mean:.0} B"
        );
    }
}

/// Parses `--share`: one share for every size, or one per size (`"0.5,0.5,0.25"`); each in (0, 1].
pub fn parse_shares(text: &str, sizes: usize) -> Result<Vec<f64>, String> {
    let shares = text
        .split(',')
        .map(str::trim)
        .map(|entry| match entry.parse::<f64>() {
            Ok(share) if share > 0.0 && share <= 1.0 => Ok(share),
            _ => Err(format!(
                "--share entry {entry:?}: not a share of memory in (0, 1]"
            )),
        })
        .collect::<Result<Vec<f64>, String>>()?;
    match shares.len() {
        1 => Ok(vec![shares[0]; sizes]),
        n if n == sizes => Ok(shares),
        n => Err(format!(
            "--share has {n} entries for {sizes} sizes: give one, or one per size"
        )),
    }
}

#[cfg(test)]
mod share_tests {
    use super::parse_shares;

    #[test]
    fn shares_are_one_for_all_or_one_per_size() {
        assert_eq!(parse_shares("0.5", 3).unwrap(), vec![0.5, 0.5, 0.5]);
        assert_eq!(
            parse_shares("0.5, 0.5,0.25", 3).unwrap(),
            vec![0.5, 0.5, 0.25]
        );
        assert!(
            parse_shares("0.5,0.25", 3)
                .unwrap_err()
                .contains("2 entries for 3 sizes")
        );
        assert!(parse_shares("0", 1).unwrap_err().contains("\"0\""));
        assert!(parse_shares("1.5", 1).is_err());
        assert!(parse_shares("half", 1).is_err());
    }
}
