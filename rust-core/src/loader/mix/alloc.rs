//! Which source fills how many positions of each mix block.
//!
//! The epoch's `N` positions are cut into blocks of `B` (the global batch of
//! the loader that started the run). Each source's samples of the whole
//! blocks are laid end to end on a line of `K·B` slots (`K` whole blocks)
//! and slot `t` goes to column `t mod K` (McNaughton's wrap-around rule):
//! every column gets exactly `B` slots, and source `i`, with `m_i` samples
//! in the whole blocks, gets `⌊m_i/K⌋` or `⌈m_i/K⌉` of them. Block `k` takes
//! column `π(k) = (g·k + h) mod K`, with `g` coprime to `K` near `K/φ` (so
//! the columns with an extra sample of a source are spread evenly over the
//! epoch) and `h` drawn from the seed and epoch. How many samples of source
//! `i` come before block `k` is then a sum of floors, computed by
//! [`floor_sum`] in `O(log K)`: no walk from the start of the epoch. The
//! counts of one block take no division: source `i`'s run ends at
//! `q·K + r`, so column `c` holds `q + [c < r]` slots before that end.
//! A reader that goes through the blocks in order steps from one block's
//! counts to a later one's by adding the counts of the blocks between
//! ([`Allocation::advance`]).
//!
//! The last, partial block (`R = N - K·B` positions) takes the largest
//! remainder of `R·n_i/N` per source (ties to the lower source index).

use super::super::rng::mix64;

/// `Σ_{i<n} ⌊(a·i + b) / m⌋` for `m > 0` (any sign of `a`, `b`).
pub(crate) fn floor_sum(n: i128, m: i128, a: i128, b: i128) -> i128 {
    if n <= 0 {
        return 0;
    }
    let mut ans = 0i128;
    let (mut a, mut b) = (a, b);
    if a < 0 {
        let a2 = a.rem_euclid(m);
        ans -= n * (n - 1) / 2 * ((a2 - a) / m);
        a = a2;
    }
    if b < 0 {
        let b2 = b.rem_euclid(m);
        ans -= n * ((b2 - b) / m);
        b = b2;
    }
    ans + floor_sum_unsigned(n, m, a, b)
}

/// The non-negative case (the AtCoder Library's iteration), in `u64` when
/// every step fits (the usual case: 128-bit division costs several times
/// more, and a batch of a mix computes a few of these sums), else in `i128`.
fn floor_sum_unsigned(n: i128, m: i128, a: i128, b: i128) -> i128 {
    if let (Ok(n64), Ok(m64), Ok(a64), Ok(b64)) = (
        u64::try_from(n),
        u64::try_from(m),
        u64::try_from(a),
        u64::try_from(b),
    ) {
        if let Some(sum) = floor_sum_u64(n64, m64, a64, b64) {
            return i128::from(sum);
        }
    }
    floor_sum_wide(n, m, a, b)
}

/// [`floor_sum_unsigned`] in `u64`; `None` when a step would overflow.
fn floor_sum_u64(mut n: u64, mut m: u64, mut a: u64, mut b: u64) -> Option<u64> {
    let mut ans = 0u64;
    loop {
        if a >= m {
            let pairs = if n == 0 { 0 } else { n.checked_mul(n - 1)? / 2 };
            ans = ans.checked_add(pairs.checked_mul(a / m)?)?;
            a %= m;
        }
        if b >= m {
            ans = ans.checked_add(n.checked_mul(b / m)?)?;
            b %= m;
        }
        let y_max = a.checked_mul(n)?.checked_add(b)?;
        if y_max < m {
            return Some(ans);
        }
        n = y_max / m;
        b = y_max % m;
        std::mem::swap(&mut m, &mut a);
    }
}

fn floor_sum_wide(mut n: i128, mut m: i128, mut a: i128, mut b: i128) -> i128 {
    let mut ans = 0;
    loop {
        if a >= m {
            ans += n * (n - 1) / 2 * (a / m);
            a %= m;
        }
        if b >= m {
            ans += n * (b / m);
            b %= m;
        }
        let y_max = a * n + b;
        if y_max < m {
            return ans;
        }
        n = y_max / m;
        b = y_max % m;
        std::mem::swap(&mut m, &mut a);
    }
}

fn gcd(mut a: u64, mut b: u64) -> u64 {
    while b != 0 {
        (a, b) = (b, a % b);
    }
    a
}

/// A stride coprime to `len` near `len / φ`: `i ↦ (stride·i + offset) mod len`
/// is then a permutation of `0..len` that spreads any run of values evenly
/// (the three-distance theorem).
pub(crate) fn golden_stride(len: u64) -> u64 {
    if len <= 2 {
        return 1 % len.max(1);
    }
    // 1/φ = 0.618...; the f64 product is only a starting point.
    let mut g = ((len as f64) * 0.618_033_988_749_894_9) as u64;
    g = g.clamp(1, len - 1);
    while gcd(g, len) != 1 {
        g += 1;
    }
    g
}

/// The per-block counts of one epoch of a mix. See the [module docs](self).
#[derive(Debug, Clone)]
pub(crate) struct Allocation {
    /// Block length `B`.
    block: u64,
    /// Whole blocks `K`.
    whole: u64,
    /// Samples of each source in the whole blocks, `m_i`.
    in_whole: Vec<u64>,
    /// Where each source's run starts on the line, `L_i`.
    line_start: Vec<u64>,
    /// Samples of each source in the partial last block.
    tail: Vec<u64>,
    /// `(⌊e/K⌋, e mod K)` of where each source's run ends, `e = L_i + m_i`.
    run_ends: Vec<(u64, u64)>,
    stride: u64,
    offset: u64,
}

/// What one block holds: its length, each source's count in it and before it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct BlockCounts {
    pub(crate) len: u64,
    pub(crate) counts: Vec<u64>,
    pub(crate) before: Vec<u64>,
}

impl Allocation {
    /// The allocation of `counts` (samples per source in the epoch) in
    /// blocks of `block` (at least 1), keyed by `key` (seed and epoch).
    pub(crate) fn new(counts: &[u64], block: u64, key: u64) -> Self {
        let block = block.max(1);
        let total: u64 = counts.iter().sum();
        let whole = total / block;
        let rest = total - whole * block;
        let tail = largest_remainder(counts, total, rest);
        let in_whole: Vec<u64> = counts.iter().zip(&tail).map(|(n, r)| n - r).collect();
        let mut line_start = Vec::with_capacity(counts.len());
        let mut at = 0u64;
        for m in &in_whole {
            line_start.push(at);
            at += m;
        }
        let stride = golden_stride(whole);
        let offset = if whole == 0 { 0 } else { mix64(key) % whole };
        let run_ends = line_start
            .iter()
            .zip(&in_whole)
            .map(|(&l, &m)| match whole {
                0 => (0, 0),
                k => ((l + m) / k, (l + m) % k),
            })
            .collect();
        Allocation {
            block,
            whole,
            in_whole,
            line_start,
            tail,
            run_ends,
            stride,
            offset,
        }
    }

    pub(crate) fn block(&self) -> u64 {
        self.block
    }

    /// Whole blocks in the epoch.
    pub(crate) fn whole_blocks(&self) -> u64 {
        self.whole
    }

    /// `G(x, k)`: slots `t < x` of the line whose column is one of blocks
    /// `0..k`'s columns.
    fn slots_before(&self, x: u64, k: u64) -> u64 {
        let (kk, g, h) = (
            i128::from(self.whole),
            i128::from(self.stride),
            i128::from(self.offset),
        );
        // F(x, c) = ⌊(x − c + K − 1)/K⌋ with c = g·k' + h − K·⌊(g·k' + h)/K⌋.
        let x = i128::from(x);
        let s =
            floor_sum(i128::from(k), kk, -g, x + kk - 1 - h) + floor_sum(i128::from(k), kk, g, h);
        // A count of slots: between 0 and x.
        s as u64
    }

    /// The column of whole block `k < K`: `(g·k + h) mod K`.
    fn column(&self, k: u64) -> u64 {
        let whole = self.whole.max(1);
        match self
            .stride
            .checked_mul(k)
            .and_then(|x| x.checked_add(self.offset))
        {
            Some(x) => x % whole,
            // u128: stride, offset and k are below K, a u64.
            None => {
                ((u128::from(self.stride) * u128::from(k) + u128::from(self.offset))
                    % u128::from(whole)) as u64
            }
        }
    }

    /// Each source's count in column `column` (of a whole block), into
    /// `counts`: slots of its run `[L_i, L_i + m_i)` in that column.
    fn column_counts(&self, column: u64, counts: &mut [u64]) {
        // Column `c` holds `q + [c < r]` slots below `q·K + r`; the run of
        // source `i` starts where source `i - 1`'s ends.
        let mut below_start = 0;
        for (count, &(q, r)) in counts.iter_mut().zip(&self.run_ends) {
            let below_end = q + u64::from(column < r);
            *count = below_end - below_start;
            below_start = below_end;
        }
    }

    /// The counts of block `k` (`k` whole blocks or the partial last one).
    pub(crate) fn block_counts(&self, k: u64) -> BlockCounts {
        if k >= self.whole {
            let len = self.tail.iter().sum();
            return BlockCounts {
                len,
                counts: self.tail.clone(),
                before: self.in_whole.clone(),
            };
        }
        // `G` at each run's end; the first run starts at slot 0 (`G = 0`),
        // and the last ends at `K·B` (`G = k·B`), so only the runs' inner
        // boundaries take floor sums.
        let sources = self.line_start.len();
        let mut before = Vec::with_capacity(sources);
        let mut below_start = 0;
        for (i, (&l, &m)) in self.line_start.iter().zip(&self.in_whole).enumerate() {
            let below_end = if i + 1 == sources {
                k * self.block
            } else {
                self.slots_before(l + m, k)
            };
            before.push(below_end - below_start);
            below_start = below_end;
        }
        let mut counts = vec![0; sources];
        self.column_counts(self.column(k), &mut counts);
        BlockCounts {
            len: self.block,
            counts,
            before,
        }
    }

    /// Moves `at`, the counts of block `from`, to those of block `to`:
    /// by adding the counts of the blocks between when they are few (a
    /// reader that goes through the epoch in order), else computed anew.
    pub(crate) fn advance(&self, at: &mut BlockCounts, from: u64, to: u64) {
        /// Blocks stepped over one by one before the floor sums are cheaper.
        const STEPS: u64 = 64;
        if to < from || to - from > STEPS || to >= self.whole {
            *at = self.block_counts(to);
            return;
        }
        for k in from..to {
            for (b, &c) in at.before.iter_mut().zip(&at.counts) {
                *b += c;
            }
            self.column_counts(self.column(k + 1), &mut at.counts);
        }
    }
}

/// Splits `amount` over sources in proportion to `counts` (of `total`):
/// floors first, then one more to the largest remainders, ties to the lower
/// index. Exact integer arithmetic.
pub(crate) fn largest_remainder(counts: &[u64], total: u64, amount: u64) -> Vec<u64> {
    if total == 0 {
        return vec![0; counts.len()];
    }
    let mut out = Vec::with_capacity(counts.len());
    let mut rems = Vec::with_capacity(counts.len());
    for (i, &n) in counts.iter().enumerate() {
        let q = u128::from(n) * u128::from(amount);
        out.push((q / u128::from(total)) as u64);
        rems.push((q % u128::from(total), i));
    }
    let short = amount - out.iter().sum::<u64>();
    rems.sort_by(|a, b| b.0.cmp(&a.0).then(a.1.cmp(&b.1)));
    for &(_, i) in rems.iter().take(short as usize) {
        out[i] += 1;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn floor_sum_matches_brute_force() {
        for n in 0..12i128 {
            for m in 1..7i128 {
                for a in -9..9i128 {
                    for b in -9..9i128 {
                        let brute: i128 = (0..n).map(|i| (a * i + b).div_euclid(m)).sum();
                        assert_eq!(floor_sum(n, m, a, b), brute, "{n} {m} {a} {b}");
                    }
                }
            }
        }
    }

    #[test]
    fn golden_stride_is_coprime() {
        for len in 1..500 {
            let g = golden_stride(len);
            let mut seen = vec![false; len as usize];
            for i in 0..len {
                seen[((g * i) % len) as usize] = true;
            }
            assert!(seen.iter().all(|&s| s), "{len}");
        }
    }

    /// Every block within one sample of its share, every source's total
    /// exact, and the counts before a block equal to the walked sums.
    fn check(counts: &[u64], block: u64, key: u64) {
        let a = Allocation::new(counts, block, key);
        let total: u64 = counts.iter().sum();
        let blocks = total.div_ceil(block);
        let mut walked = vec![0u64; counts.len()];
        for k in 0..blocks {
            let b = a.block_counts(k);
            assert_eq!(b.before, walked, "{counts:?} block {block} k {k}");
            assert_eq!(b.counts.iter().sum::<u64>(), b.len);
            for (i, &c) in b.counts.iter().enumerate() {
                let share = b.len as f64 * counts[i] as f64 / total as f64;
                assert!(
                    (c as f64 - share).abs() < 1.0 + 1.0 / (a.whole.max(1) as f64) + 1e-9,
                    "{counts:?} block {block} k {k} source {i}: {c} vs {share}"
                );
                if k < a.whole {
                    let m = a.in_whole[i];
                    assert!(c == m / a.whole || c == m.div_ceil(a.whole));
                }
                walked[i] += c;
            }
        }
        assert_eq!(walked, counts, "totals");
        // Stepping from block to block, by any stride, gives the same counts.
        for stride in [1, 2, 5, 70] {
            let mut at = a.block_counts(0);
            let mut k = 0;
            while k + stride < blocks {
                a.advance(&mut at, k, k + stride);
                k += stride;
                assert_eq!(at, a.block_counts(k), "{counts:?} block {block} k {k}");
            }
        }
    }

    #[test]
    fn blocks_hold_their_share() {
        for (counts, block) in [
            (vec![60, 30, 10], 10),
            (vec![600, 300, 100], 7),
            (vec![1000, 1], 16),
            (vec![100_000, 100], 64),
            (vec![5, 3, 1, 0, 2], 4),
            (vec![1, 1, 1], 1),
            (vec![7], 3),
            (vec![3, 2], 100),
            (vec![12_345, 6_789, 1_011, 3], 256),
        ] {
            for key in 0..3 {
                check(&counts, block, key);
            }
        }
    }

    #[test]
    fn largest_remainder_is_exact() {
        assert_eq!(largest_remainder(&[1, 1, 1], 3, 2), vec![1, 1, 0]);
        assert_eq!(largest_remainder(&[6, 3, 1], 10, 7), vec![4, 2, 1]);
        assert_eq!(largest_remainder(&[0, 5], 5, 3), vec![0, 3]);
    }
}
