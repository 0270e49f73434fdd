//! The loader's own pseudo-random generator: SplitMix64.
//!
//! Sample orders must be reproducible forever: a checkpoint written today has
//! to resume into the same order after any dependency upgrade. So the stream
//! is defined here, in a few lines, instead of borrowed from a crate whose
//! output may change between versions.
//!
//! - Generator: SplitMix64 (Steele, Lea, Flood, "Fast splittable pseudorandom
//!   number generators", OOPSLA 2014; the constants of Vigna's public-domain
//!   `splitmix64.c`). It passes BigCrush and is plenty for shuffling.
//! - Bounded integers: Lemire's multiply-shift with rejection ("Fast random
//!   integer generation in an interval", 2019), which is exactly uniform.
//! - Shuffles: Fisher-Yates, from the last element down.
//!
//! Changing any of these changes every sample order; `ORDER_ALGORITHM` in
//! the loader state records the version so that old states are refused
//! instead of silently resumed into a different order.

/// The golden-ratio increment of SplitMix64.
const GAMMA: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function (a 64-bit finaliser, also usable as a hash).
///
/// ```
/// use mosaicrs::loader::mix64;
/// assert_ne!(mix64(1), mix64(2));
/// ```
pub fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A SplitMix64 stream.
///
/// ```
/// use mosaicrs::loader::SplitMix64;
/// let mut rng = SplitMix64::new(0);
/// assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF); // reference value of splitmix64.c
/// ```
#[derive(Debug, Clone)]
pub struct SplitMix64 {
    state: u64,
}

impl SplitMix64 {
    /// A stream starting from `seed`.
    pub fn new(seed: u64) -> Self {
        SplitMix64 { state: seed }
    }

    /// A stream whose seed is derived from several words (seed, epoch, ...),
    /// each mixed in so that nearby inputs give unrelated streams.
    pub fn from_words(words: &[u64]) -> Self {
        let seed = words
            .iter()
            .fold(0x6D6F_7361_6963_7273_u64, |acc, &w| mix64(acc ^ mix64(w)));
        SplitMix64::new(seed)
    }

    /// The next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        self.state = self.state.wrapping_add(GAMMA);
        mix64(self.state)
    }

    /// A uniform integer in `0..bound` (`bound > 0`), without modulo bias.
    pub fn below(&mut self, bound: u64) -> u64 {
        debug_assert!(bound > 0);
        let mut m = u128::from(self.next_u64()) * u128::from(bound);
        // Truncation intended: the low 64 bits of the product.
        if (m as u64) < bound {
            let threshold = bound.wrapping_neg() % bound;
            while (m as u64) < threshold {
                m = u128::from(self.next_u64()) * u128::from(bound);
            }
        }
        (m >> 64) as u64
    }

    /// Shuffles `items` in place (Fisher-Yates).
    pub fn shuffle<T>(&mut self, items: &mut [T]) {
        for i in (1..items.len()).rev() {
            // `i + 1` fits in u64 and the result is at most `i`, so both casts are lossless.
            let j = self.below(i as u64 + 1) as usize;
            items.swap(i, j);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_reference_splitmix64_stream() {
        // First outputs of splitmix64.c seeded with 0 and with 1234567.
        let mut rng = SplitMix64::new(0);
        assert_eq!(rng.next_u64(), 0xE220_A839_7B1D_CDAF);
        assert_eq!(rng.next_u64(), 0x6E78_9E6A_A1B9_65F4);
        assert_eq!(rng.next_u64(), 0x06C4_5D18_8009_454F);
        let mut rng = SplitMix64::new(1_234_567);
        assert_eq!(rng.next_u64(), 6_457_827_717_110_365_317);
        assert_eq!(rng.next_u64(), 3_203_168_211_198_807_973);
    }

    #[test]
    fn below_is_in_range_and_roughly_uniform() {
        let mut rng = SplitMix64::new(7);
        let mut counts = [0u32; 10];
        for _ in 0..100_000 {
            let v = rng.below(10);
            counts[v as usize] += 1;
        }
        // Chi-square with 9 degrees of freedom; 27.9 is the 0.999 quantile.
        let chi2: f64 = counts
            .iter()
            .map(|&c| (f64::from(c) - 10_000.0).powi(2) / 10_000.0)
            .sum();
        assert!(chi2 < 27.9, "chi2 {chi2}, counts {counts:?}");
    }

    #[test]
    fn shuffle_is_a_permutation_and_reproducible() {
        let mut a: Vec<u32> = (0..1000).collect();
        let mut b = a.clone();
        SplitMix64::new(42).shuffle(&mut a);
        SplitMix64::new(42).shuffle(&mut b);
        assert_eq!(a, b);
        assert_ne!(a, (0..1000).collect::<Vec<_>>());
        a.sort_unstable();
        assert_eq!(a, (0..1000).collect::<Vec<_>>());
    }
}
