//! Shuffle quality measured with statistics, with fixed seeds and thresholds
//! that an unshuffled order fails.

use mosaicrs::format::Compression;
use mosaicrs::loader::{Loader, ShuffleMode};
use mosaicrs::testing::{config, write_dataset};

const ROWS: u64 = 20_000;
const SHARDS: u64 = 10;

fn order(mode: ShuffleMode, epoch: u64) -> Vec<u64> {
    let dir = tempfile::tempdir().unwrap();
    let dataset = write_dataset(dir.path(), ROWS, SHARDS, 1_000, Compression::None);
    let mut cfg = config(32, 1, 0, 1);
    cfg.shuffle = mode;
    Loader::new(dataset, cfg).unwrap().order(epoch)
}

/// Spearman rank correlation between position and row (both are ranks).
fn spearman(order: &[u64]) -> f64 {
    let n = order.len() as f64;
    let d2: f64 = order
        .iter()
        .enumerate()
        .map(|(p, &r)| (p as f64 - r as f64).powi(2))
        .sum();
    1.0 - 6.0 * d2 / (n * (n * n - 1.0))
}

/// Chi-square of the 10x10 table (decile of position, decile of row): a
/// uniform permutation spreads every row decile evenly over the positions.
/// 81 degrees of freedom; the 0.999 quantile is 126.1.
fn decile_chi_square(order: &[u64]) -> f64 {
    let n = order.len();
    let mut table = [[0u32; 10]; 10];
    for (p, &r) in order.iter().enumerate() {
        table[p * 10 / n][(r as usize) * 10 / n] += 1;
    }
    let expected = n as f64 / 100.0;
    table
        .iter()
        .flatten()
        .map(|&c| (f64::from(c) - expected).powi(2) / expected)
        .sum()
}

const CHI2_999_DF81: f64 = 126.1;
/// About four standard deviations of Spearman's rho under independence (1/sqrt(n)).
const RHO_LIMIT: f64 = 0.03;

#[test]
fn global_shuffle_passes_and_sequential_fails() {
    let global = order(ShuffleMode::Global, 0);
    let rho = spearman(&global);
    let chi = decile_chi_square(&global);
    assert!(rho.abs() < RHO_LIMIT, "rho {rho}");
    assert!(chi < CHI2_999_DF81, "chi-square {chi}");

    let sequential = order(ShuffleMode::Sequential, 0);
    assert!(spearman(&sequential) > 0.99);
    assert!(decile_chi_square(&sequential) > 10.0 * CHI2_999_DF81);
}

#[test]
fn successive_epochs_are_independent_permutations() {
    let e0 = order(ShuffleMode::Global, 0);
    let e1 = order(ShuffleMode::Global, 1);
    // Position of each row in epoch 1, listed in epoch 0 order.
    let mut pos1 = vec![0u64; e1.len()];
    for (p, &r) in e1.iter().enumerate() {
        pos1[r as usize] = p as u64;
    }
    let relabeled: Vec<u64> = e0.iter().map(|&r| pos1[r as usize]).collect();
    let rho = spearman(&relabeled);
    assert!(rho.abs() < RHO_LIMIT, "epochs correlate: rho {rho}");
}

#[test]
fn block_local_mixes_within_blocks_and_trades_global_randomness() {
    let block = order(
        ShuffleMode::BlockLocal {
            shards_per_block: 2,
        },
        0,
    );
    // Within each block of 2 shards (4,000 samples) the rows are well mixed.
    for chunk in block.chunks(4_000) {
        let min = *chunk.iter().min().unwrap();
        let mut ranks: Vec<u64> = chunk.to_vec();
        ranks.sort_unstable();
        let rank_of = |r: u64| ranks.binary_search(&r).unwrap() as u64;
        let local: Vec<u64> = chunk.iter().map(|&r| rank_of(r)).collect();
        let rho = spearman(&local);
        assert!(
            rho.abs() < 2.0 * RHO_LIMIT,
            "block starting at row {min}: rho {rho}"
        );
    }
    // Globally it is visibly less random than a full shuffle: the decile
    // table is far from uniform, because a decile of positions holds only
    // rows of one or two shards.
    let chi = decile_chi_square(&block);
    assert!(
        chi > CHI2_999_DF81,
        "block-local looked globally uniform: {chi}"
    );
}
