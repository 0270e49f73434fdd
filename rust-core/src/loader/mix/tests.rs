//! The mixed order: shares per block, exact counts, own permutations, purity.

use std::collections::HashMap;
use std::sync::Arc;

use super::super::order::{OrderAlgorithm, ShuffleMode};
use super::super::space::SampleSpace;
use super::*;

/// A sample space of `rows` rows in shards of at most 7 rows, its
/// fingerprint made distinct by `tag`.
fn space(rows: u64, tag: u64) -> Arc<SampleSpace> {
    let mut shards = Vec::new();
    let mut left = rows;
    let mut i = 0;
    while left > 0 {
        let n = left.min(7);
        shards.push(crate::format::ShardEntry {
            path: format!("s{i}.arrow"),
            rows: n,
            bytes: 1,
            batches: 1,
            checksum: crate::format::Checksum(tag * 1000 + i),
            compression: crate::format::Compression::None,
            write_id: "w".into(),
            partition: 0,
            task_attempt: 0,
        });
        left -= n;
        i += 1;
    }
    Arc::new(SampleSpace::new(&shards, None).unwrap_or_else(|e| panic!("{e}")))
}

fn order(
    rows: &[u64],
    w: &[Weighting],
    epoch_size: Option<u64>,
    block: u64,
    epoch: u64,
) -> MixedOrder {
    let counts = sample_counts(w, rows, epoch_size, Exhausted::Cycle).unwrap();
    let sources = rows
        .iter()
        .zip(counts)
        .enumerate()
        .map(|(i, (&r, count))| MixSource {
            space: space(r, i as u64),
            shuffle: ShuffleMode::Global,
            count,
        })
        .collect();
    MixedOrder::new(sources, 11, epoch, block, OrderAlgorithm::CURRENT)
}

/// Each whole block within one sample of every source's share (plus the
/// `1/whole` that the partial last block moves), the epoch's counts exact,
/// and each source's rows repeated only as often as its count asks.
fn check(rows: &[u64], w: &[Weighting], epoch_size: Option<u64>, block: u64) {
    let o = order(rows, w, epoch_size, block, 3);
    let counts: Vec<u64> = o.sources().iter().map(|s| s.count).collect();
    let total = o.len();
    let picks = o.picks(0..total);
    assert_eq!(picks.len() as u64, total);
    for (k, chunk) in picks.chunks(block as usize).enumerate() {
        let mut per = vec![0u64; rows.len()];
        for &(s, _) in chunk {
            per[s] += 1;
        }
        assert_eq!(per, o.block_counts(k as u64));
        if (k as u64) < o.whole_blocks() {
            for (i, &c) in per.iter().enumerate() {
                let share = block as f64 * counts[i] as f64 / total as f64;
                let slack = 1.0 + 1.0 / o.whole_blocks() as f64;
                assert!(
                    (c as f64 - share).abs() < slack,
                    "{w:?} block {block} batch {k} source {i}: {c} samples, share {share}"
                );
            }
        }
    }
    for (i, &r) in rows.iter().enumerate() {
        let mut seen: HashMap<u64, u64> = HashMap::new();
        for &(s, row) in &picks {
            if s == i {
                assert!(row < r);
                *seen.entry(row).or_default() += 1;
            }
        }
        assert_eq!(seen.values().sum::<u64>(), counts[i], "source {i} count");
        // Whole passes, then a partial one: every row `⌊c/r⌋` or `⌈c/r⌉` times.
        let (lo, hi) = (counts[i] / r, counts[i].div_ceil(r));
        for row in 0..r {
            let n = seen.get(&row).copied().unwrap_or(0);
            assert!(n == lo || n == hi, "source {i} row {row} seen {n} times");
        }
    }
    // get agrees with picks, and from any position (no walk).
    for p in (0..total).rev().step_by(7) {
        assert_eq!(o.get(p), picks[p as usize]);
    }
    // Runs that start mid-block, or skip positions (a rank's slices of
    // each global batch), read the same order as single positions.
    let mid = (block / 2).min(total);
    assert_eq!(o.picks(mid..total), picks[mid as usize..]);
    let slices: Vec<u64> = (0..total).filter(|p| (p / 3) % 2 == 1).collect();
    let want: Vec<(usize, u64)> = slices.iter().map(|&p| o.get(p)).collect();
    assert_eq!(o.picks(slices.iter().copied()), want);
    // A worker keeps its cursor from block to block (every `stride`-th
    // block, then back to the start): the same order.
    for stride in [1, 3, 100] {
        let mut cursor = MixCursor::default();
        let starts = (0..total).step_by((block * stride) as usize).chain([0]);
        for start in starts {
            let end = (start + block).min(total);
            let (mut sources, mut rows) = (Vec::new(), Vec::new());
            o.picks_into(start..end, &mut cursor, &mut sources, &mut rows);
            let got: Vec<(usize, u64)> = sources.iter().map(|&s| s as usize).zip(rows).collect();
            assert_eq!(got, picks[start as usize..end as usize], "stride {stride}");
        }
    }
}

#[test]
fn every_batch_holds_each_share() {
    use Weighting::*;
    check(
        &[600, 300, 100],
        &[Weight(0.6), Weight(0.3), Weight(0.1)],
        None,
        10,
    );
    check(
        &[500, 500, 500],
        &[Weight(0.6), Weight(0.3), Weight(0.1)],
        None,
        32,
    );
    check(&[200, 3], &[Weight(1.0), Weight(1.0)], None, 8);
    check(&[5000, 7], &[Weight(1000.0), Weight(1.0)], None, 64);
    check(&[50, 2, 1], &[Natural, Natural, Natural], Some(300), 16);
    check(
        &[97, 13, 5, 1],
        &[Repeat(0.5), Repeat(2.5), Choose(40), Natural],
        None,
        12,
    );
    check(&[10, 10], &[Weight(0.5), Weight(0.5)], None, 1);
    check(&[9, 4], &[Weight(3.0), Weight(1.0)], None, 100);
}

#[test]
fn one_source_at_repeat_one_is_a_permutation_of_it() {
    let o = order(&[257], &[Weighting::Natural], None, 16, 0);
    let mut rows: Vec<u64> = o.picks(0..257).into_iter().map(|(_, r)| r).collect();
    rows.sort_unstable();
    assert_eq!(rows, (0..257).collect::<Vec<_>>());
}

#[test]
fn the_order_is_a_function_of_seed_epoch_and_block() {
    let w = [Weighting::Weight(2.0), Weighting::Weight(1.0)];
    let a = order(&[100, 100], &w, None, 8, 0).picks(0..200);
    assert_eq!(a, order(&[100, 100], &w, None, 8, 0).picks(0..200));
    assert_ne!(a, order(&[100, 100], &w, None, 8, 1).picks(0..200));
    assert_ne!(a, order(&[100, 100], &w, None, 16, 0).picks(0..200));
}

#[test]
fn upsampling_takes_fresh_permutations() {
    // 4 rows taken 12 times: three passes, each a permutation of its own.
    let o = order(
        &[4, 100],
        &[Weighting::Choose(12), Weighting::Natural],
        None,
        4,
        0,
    );
    let rows: Vec<u64> = o
        .picks(0..o.len())
        .into_iter()
        .filter(|&(s, _)| s == 0)
        .map(|(_, r)| r)
        .collect();
    assert_eq!(rows.len(), 12);
    let mut count = [0; 4];
    rows.iter().for_each(|&r| count[r as usize] += 1);
    assert_eq!(count, [3, 3, 3, 3]);
}

#[test]
fn fingerprints_name_the_mix() {
    let a = order(
        &[10, 10],
        &[Weighting::Natural, Weighting::Natural],
        None,
        4,
        0,
    );
    let b = order(
        &[10, 10],
        &[Weighting::Choose(5), Weighting::Natural],
        None,
        4,
        0,
    );
    assert_ne!(fingerprint(a.sources()), fingerprint(b.sources()));
    assert_eq!(fingerprint(a.sources()), fingerprint(a.sources()));
}
