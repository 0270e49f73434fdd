//! A keyed pseudo-random permutation of `0..n`, computed one position at a
//! time in constant memory.
//!
//! A stored Fisher-Yates permutation costs 8 bytes per sample, which grows
//! with the dataset (1.1 GiB for 149 M samples). This permutation is a
//! function instead: [`Permutation::apply`] maps a position to a sample with
//! a few multiplications, so an epoch's order needs no memory at all and any
//! rank or worker can compute any part of it.
//!
//! Construction: a Feistel network over the mixed-radix domain `a × b` with
//! `a = ⌈√n⌉` and `b = ⌈n / a⌉`, the generalisation that format-preserving
//! encryption uses for arbitrary domains (Black and Rogaway, "Ciphers with
//! Arbitrary Finite Domains", CT-RSA 2002, "generalized Feistel"). A value
//! `x < a·b` is the pair `(x / b, x mod b)`; each round maps `(L, R)` to
//! `(R, (L + F_k(R)) mod |L|)`, swapping the two radices, so an even number
//! of rounds returns to the `a × b` shape. Each round is invertible, so the
//! network is a bijection of `0..a·b`. The few values of `n..a·b` (fewer than
//! `a`) are skipped by cycle-walking: apply again until the value is below
//! `n`, which keeps it a bijection of `0..n`. The round function is
//! SplitMix64's finaliser of the round key and `R`, reduced with Lemire's
//! multiply-shift. Six rounds: four already give a pseudo-random permutation
//! for a random round function (Luby and Rackoff); the two extra ones are
//! margin, at a cost of a few nanoseconds.
//!
//! Short lengths (up to [`TABLE_LEN`]) are a stored Fisher-Yates shuffle
//! instead: a Feistel network over a few values reaches the permutations
//! unevenly (on 2 × 2 its key space is a power of two, never a multiple of
//! 4! = 24), while a table of at most 4,096 two-byte entries costs 8 KiB.

use strength_reduce::StrengthReducedU64;

use super::rng::{mix64, SplitMix64};

/// Feistel rounds. Even, so the shape returns to `a × b`.
const ROUNDS: usize = 6;

/// The longest permutation stored as a table (exactly uniform).
pub const TABLE_LEN: u64 = 4096;

/// A pseudo-random bijection of `0..len`, a pure function of its key.
///
/// ```
/// use mosaicrs::loader::{Permutation, SplitMix64};
/// let p = Permutation::new(10, &mut SplitMix64::new(7));
/// let mut image: Vec<u64> = (0..10).map(|i| p.apply(i)).collect();
/// image.sort_unstable();
/// assert_eq!(image, (0..10).collect::<Vec<u64>>());
/// ```
#[derive(Debug, Clone)]
pub struct Permutation {
    len: u64,
    kind: Kind,
}

#[derive(Debug, Clone)]
enum Kind {
    /// A Fisher-Yates shuffle of `0..len` (`len <= TABLE_LEN`).
    Table(Box<[u16]>),
    Feistel(Feistel),
}

#[derive(Debug, Clone)]
struct Feistel {
    /// Radix of the high part (`⌈√len⌉`).
    a: u64,
    /// Radix of the low part (`⌈len / a⌉`), so `a * b >= len`.
    b: u64,
    /// `b` as a precomputed divisor: the split of each position is then a
    /// multiply instead of a 64-bit division, with the same results.
    b_div: StrengthReducedU64,
    keys: [u64; ROUNDS],
}

impl Permutation {
    /// The permutation of `0..len` keyed by the next draws of `rng`.
    pub fn new(len: u64, rng: &mut SplitMix64) -> Self {
        let kind = if len <= TABLE_LEN {
            // `len <= 4096`, so every value fits in u16.
            let mut table: Vec<u16> = (0..len).map(|i| i as u16).collect();
            rng.shuffle(&mut table);
            Kind::Table(table.into_boxed_slice())
        } else {
            // `a * b - 1`, the largest value of the network, fits in u64
            // for every `len` (see `largest_value_fits`), and `b >= 1`.
            let a = ceil_sqrt(len).max(1);
            let b = len.div_ceil(a).max(1);
            let mut keys = [0u64; ROUNDS];
            for key in &mut keys {
                *key = rng.next_u64();
            }
            Kind::Feistel(Feistel {
                a,
                b,
                b_div: StrengthReducedU64::new(b),
                keys,
            })
        };
        Permutation { len, kind }
    }

    /// Number of elements permuted.
    pub fn len(&self) -> u64 {
        self.len
    }

    /// True for the permutation of no elements.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The image of `position` (`position < len`; larger positions are
    /// returned unchanged).
    #[inline]
    pub fn apply(&self, position: u64) -> u64 {
        if position >= self.len {
            return position;
        }
        match &self.kind {
            // `position < len == table.len()`.
            Kind::Table(table) => u64::from(table[position as usize]),
            Kind::Feistel(network) => {
                let mut x = network.apply(position);
                // Cycle-walking: `x` stays on `position`'s cycle of the
                // network, which returns to `position < len` at the latest,
                // so this ends; fewer than `a` of the `a * b` values lie
                // outside `0..len`.
                while x >= self.len {
                    x = network.apply(x);
                }
                x
            }
        }
    }
}

impl Feistel {
    /// One pass of the network over `0..a*b`.
    #[inline]
    fn apply(&self, x: u64) -> u64 {
        let (mut left, mut right) = StrengthReducedU64::div_rem(x, self.b_div);
        // `left < radix_left` and `right < radix_right` hold throughout.
        let (mut radix_left, mut radix_right) = (self.a, self.b);
        for &key in &self.keys {
            let f = reduce(mix64(key ^ right), radix_left);
            let mixed = left + f;
            let mixed = if mixed >= radix_left {
                mixed - radix_left
            } else {
                mixed
            };
            left = right;
            right = mixed;
            std::mem::swap(&mut radix_left, &mut radix_right);
        }
        // After an even number of rounds the radices are back to (a, b).
        left * self.b + right
    }
}

/// `hash` scaled into `0..bound` (Lemire's multiply-shift; `bound > 0`).
#[inline]
fn reduce(hash: u64, bound: u64) -> u64 {
    // The high 64 bits of a 64x64 product are below `bound`.
    ((u128::from(hash) * u128::from(bound)) >> 64) as u64
}

/// The smallest `r` with `r * r >= n`.
fn ceil_sqrt(n: u64) -> u64 {
    // Start from the float estimate and correct it exactly; in u128 the
    // squares cannot overflow (`r <= 2^32`).
    let n = u128::from(n);
    let mut r = (n as f64).sqrt() as u128;
    while r * r > n {
        r -= 1;
    }
    while r * r < n {
        r += 1;
    }
    // `r <= 2^32` because `n < 2^64`.
    r as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn image(len: u64, seed: u64) -> Vec<u64> {
        let p = Permutation::new(len, &mut SplitMix64::new(seed));
        (0..len).map(|i| p.apply(i)).collect()
    }

    #[test]
    fn is_a_bijection_for_every_small_length() {
        for len in 0..300 {
            for seed in 0..4 {
                let mut got = image(len, seed);
                got.sort_unstable();
                assert_eq!(got, (0..len).collect::<Vec<_>>(), "len {len} seed {seed}");
            }
        }
        for len in [
            TABLE_LEN,
            TABLE_LEN + 1,
            4_225,
            65_535,
            65_536,
            65_537,
            1_000_003,
        ] {
            let mut got = image(len, 3);
            got.sort_unstable();
            assert!(got.iter().copied().eq(0..len), "len {len}");
        }
    }

    #[test]
    fn images_never_change() {
        // Sample orders must reproduce forever: these pin the algorithm.
        assert_eq!(image(10, 42), PINNED_10);
        let p = Permutation::new(5_000, &mut SplitMix64::new(8));
        let got: Vec<u64> = (0..6).map(|i| p.apply(i)).collect();
        assert_eq!(got, PINNED_5000);
        let p = Permutation::new(1_000_000_007, &mut SplitMix64::new(9));
        let got: Vec<u64> = [0, 1, 999_999_999, 1_000_000_006]
            .iter()
            .map(|&i| p.apply(i))
            .collect();
        assert_eq!(got, PINNED_LARGE);
    }

    const PINNED_10: [u64; 10] = [8, 3, 6, 5, 4, 0, 9, 2, 1, 7];
    const PINNED_LARGE: [u64; 4] = [427_507_985, 427_485_311, 792_473_446, 127_512_543];
    const PINNED_5000: [u64; 6] = [2329, 3069, 908, 736, 3038, 2856];

    #[test]
    fn ceil_sqrt_is_exact() {
        for n in 0..10_000u64 {
            let r = ceil_sqrt(n);
            assert!(
                r * r >= n && (r == 0 || (r - 1) * (r - 1) < n),
                "n {n} r {r}"
            );
        }
        assert_eq!(ceil_sqrt(u64::MAX), 1 << 32);
        assert_eq!(ceil_sqrt((1 << 32) * (1 << 30)), 1 << 31);
    }

    #[test]
    fn strength_reduced_split_equals_division() {
        let mut rng = SplitMix64::new(21);
        let mut divisors = vec![
            1,
            2,
            3,
            7,
            (1 << 32) - 1,
            1 << 32,
            (1 << 32) + 1,
            1 << 63,
            (1 << 63) + 1,
            u64::MAX - 1,
            u64::MAX,
        ];
        divisors.extend((0..64).map(|_| rng.next_u64() >> (rng.next_u64() % 64)));
        for b in divisors.into_iter().filter(|&b| b > 0) {
            let div = StrengthReducedU64::new(b);
            let mut xs = vec![
                0,
                1,
                b - 1,
                b,
                b.saturating_add(1),
                u64::MAX - b,
                u64::MAX - 1,
                u64::MAX,
            ];
            xs.extend((0..64).map(|_| rng.next_u64()));
            for x in xs {
                assert_eq!(
                    StrengthReducedU64::div_rem(x, div),
                    (x / b, x % b),
                    "{x} / {b}"
                );
            }
        }
    }

    #[test]
    fn images_equal_the_division_based_network() {
        // Computed with the network that split a position with `/` and `%`:
        // (len, seed, FNV-1a-style fold of the whole image, first six).
        const WHOLE: [(u64, u64, u64, [u64; 6]); 8] = [
            (
                4097,
                1,
                0xe58e2d9e531d8993,
                [1543, 455, 1695, 705, 3931, 2066],
            ),
            (
                4097,
                2,
                0x720be999a977deaf,
                [2639, 1125, 3367, 2884, 3468, 3400],
            ),
            (
                4225,
                1,
                0x2c6d82b614f2b731,
                [1451, 706, 2794, 2901, 714, 3646],
            ),
            (
                4225,
                2,
                0xd8504977d668966b,
                [1798, 2567, 2580, 2929, 1342, 417],
            ),
            (
                65537,
                1,
                0x67b0624e954854c5,
                [21246, 58894, 6012, 54095, 34806, 48621],
            ),
            (
                65537,
                2,
                0xf152f7dd768f91d5,
                [60159, 33572, 57013, 42730, 39883, 2322],
            ),
            (
                1000003,
                1,
                0x5c37329d5ea03922,
                [379859, 90068, 749485, 424494, 461309, 372430],
            ),
            (
                1000003,
                2,
                0x1c6a3cdc4e1286ce,
                [406897, 347570, 678688, 861856, 973086, 4850],
            ),
        ];
        for (len, seed, fold, first) in WHOLE {
            let p = Permutation::new(len, &mut SplitMix64::new(seed));
            let got = (0..len).fold(0xcbf2_9ce4_8422_2325u64, |h, i| {
                (h ^ p.apply(i)).wrapping_mul(0x0100_0000_01b3)
            });
            assert_eq!(got, fold, "len {len} seed {seed}");
            let got: Vec<u64> = (0..6).map(|i| p.apply(i)).collect();
            assert_eq!(got, first, "len {len} seed {seed}");
        }
        // Positions 0, 1, len / 2 and len - 1.
        const SPOTS: [(u64, u64, [u64; 4]); 8] = [
            (
                4294967297,
                3,
                [3073259858, 3879304698, 3638351411, 2160945041],
            ),
            (
                4294967297,
                4,
                [1996203179, 3667554619, 1712489572, 2859117848],
            ),
            (
                1000000000007,
                3,
                [258380668583, 20968919545, 596495984543, 259987646444],
            ),
            (
                1000000000007,
                4,
                [180768077249, 792795218282, 997985626995, 368647823627],
            ),
            (
                u64::MAX - 5,
                3,
                [
                    2004197496822572749,
                    1475107693536753086,
                    1303366317249907611,
                    16620842586228385357,
                ],
            ),
            (
                u64::MAX - 5,
                4,
                [
                    14418920860324872048,
                    9311048921859183103,
                    8147845234366870140,
                    15613219092060951025,
                ],
            ),
            (
                u64::MAX,
                3,
                [
                    2004197496822572749,
                    1475107693536753086,
                    170655475396215310,
                    17811823240651878702,
                ],
            ),
            (
                u64::MAX,
                4,
                [
                    14418920860324872048,
                    9311048921859183103,
                    9021142335984952245,
                    3988138345912384810,
                ],
            ),
        ];
        for (len, seed, spots) in SPOTS {
            let p = Permutation::new(len, &mut SplitMix64::new(seed));
            let got: Vec<u64> = [0, 1, len / 2, len - 1]
                .iter()
                .map(|&i| p.apply(i))
                .collect();
            assert_eq!(got, spots, "len {len} seed {seed}");
        }
    }

    #[test]
    fn largest_value_fits() {
        // The network's values run up to `a * b - 1`, which must fit in u64
        // even where `a * b` itself is 2^64 (len = u64::MAX: a = b = 2^32).
        let edge = ((1u64 << 32) - 1) * ((1u64 << 32) - 1);
        for len in [
            u64::MAX,
            u64::MAX - 1,
            1 << 63,
            edge - 1,
            edge,
            edge + 1,
            TABLE_LEN + 1,
        ] {
            let Kind::Feistel(f) = Permutation::new(len, &mut SplitMix64::new(2)).kind else {
                panic!("len {len} is a Feistel network");
            };
            let product = u128::from(f.a) * u128::from(f.b);
            assert!(product >= u128::from(len) && product - 1 <= u128::from(u64::MAX));
            // Tests run with overflow checks: the last values of the domain
            // go through every round without overflow.
            for x in [product - 1, product - 2, u128::from(len) - 1] {
                let x = x as u64;
                let y = f.apply(x);
                assert!(u128::from(y) < product, "len {len} x {x} y {y}");
            }
        }
    }

    #[test]
    fn huge_lengths_stay_in_range() {
        let len = u64::MAX - 5;
        let p = Permutation::new(len, &mut SplitMix64::new(1));
        for i in [0, 1, len / 2, len - 1] {
            assert!(p.apply(i) < len);
        }
    }

    #[test]
    fn small_permutations_are_close_to_uniform() {
        // Every one of the 24 orders of 4 elements, over 24,000 keys.
        let mut counts = std::collections::HashMap::new();
        let mut rng = SplitMix64::new(11);
        for _ in 0..24_000 {
            let p = Permutation::new(4, &mut rng);
            let key: Vec<u64> = (0..4).map(|i| p.apply(i)).collect();
            *counts.entry(key).or_insert(0u32) += 1;
        }
        assert_eq!(counts.len(), 24);
        // Chi-square, 23 degrees of freedom; 49.7 is the 0.999 quantile.
        let chi2: f64 = counts
            .values()
            .map(|&c| (f64::from(c) - 1_000.0).powi(2) / 1_000.0)
            .sum();
        assert!(chi2 < 49.7, "chi2 {chi2}: {counts:?}");
    }

    #[test]
    fn every_position_is_equally_likely_for_every_sample() {
        // Where the first and the last sample land (in 17 buckets of
        // positions), over 20,000 keys of the Feistel network's smallest
        // length (not a square, so cycle-walking is exercised).
        let len = TABLE_LEN + 1;
        let mut rng = SplitMix64::new(5);
        let mut lands = [[0u32; 17]; 2];
        for _ in 0..20_000 {
            let p = Permutation::new(len, &mut rng);
            lands[0][(p.apply(0) * 17 / len) as usize] += 1;
            lands[1][(p.apply(len - 1) * 17 / len) as usize] += 1;
        }
        let expected = 20_000.0 / 17.0;
        for row in lands {
            // 16 degrees of freedom; 39.3 is the 0.999 quantile.
            let chi2: f64 = row
                .iter()
                .map(|&c| (f64::from(c) - expected).powi(2) / expected)
                .sum();
            assert!(chi2 < 39.3, "chi2 {chi2}: {row:?}");
        }
    }
}
