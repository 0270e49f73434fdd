//! How many samples each source gives an epoch of a mix, following the rules
//! of MosaicML Streaming's `Stream` (`streaming/base/stream.py`,
//! `Stream.apply_weights` and `validate_weights`, and the resampling of
//! `StreamingDataset._resample_streams`).

use super::alloc::largest_remainder;
use crate::{Error, Result};

/// How much of an epoch one source gives: at most one of a relative weight,
/// a multiple of its rows, or an absolute count (Streaming's `proportion`,
/// `repeat` and `choose`).
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub enum Weighting {
    /// None given: each row once per epoch, or (with an `epoch_size` and no
    /// other weighting) a share of the epoch in proportion to the rows.
    #[default]
    Natural,
    /// A relative share of the epoch (`weight / Σ weights`).
    Weight(f64),
    /// A multiple of the source's rows, fractional allowed: `0.5` takes a
    /// random half, `2.5` every row twice and a random half a third time.
    Repeat(f64),
    /// An absolute number of samples per epoch.
    Choose(u64),
}

/// What happens when a source's share of an epoch is more than its rows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Exhausted {
    /// Start the source over in a fresh permutation (upsampling, as
    /// Streaming does).
    #[default]
    Cycle,
    /// Never repeat a row within an epoch: with weights, the epoch ends
    /// when the first source runs out (it is shortened until every share
    /// fits its source); a `repeat` or `choose` above the rows is an error.
    Stop,
}

impl std::str::FromStr for Exhausted {
    type Err = Error;

    /// `cycle` or `stop`.
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "cycle" => Ok(Exhausted::Cycle),
            "stop" => Ok(Exhausted::Stop),
            _ => Err(Error::InvalidArgument(format!(
                "mix option exhausted {s:?} is not supported; use cycle or stop"
            ))),
        }
    }
}

fn check_weighting(i: usize, w: Weighting) -> Result<()> {
    let bad = |what: &str, v: f64| {
        Err(Error::InvalidArgument(format!(
            "mix source {i}: {what} must be a finite number >= 0, got {v}"
        )))
    };
    match w {
        Weighting::Weight(v) if !(v.is_finite() && v >= 0.0) => bad("weight", v),
        Weighting::Repeat(v) if !(v.is_finite() && v >= 0.0) => bad("repeat", v),
        _ => Ok(()),
    }
}

/// The samples each source gives one epoch, from the sources' weightings and
/// rows and the optional `epoch_size`:
///
/// - weights on every source (relative): the epoch has `epoch_size` samples
///   (default: all sources' rows together); source `i` gets
///   `⌊epoch_size · w_i / Σw⌋`, and the few left over go one each to the
///   largest remainders (Streaming gives them to randomly chosen sources);
/// - no weighting anywhere and an `epoch_size`: as weights proportional to
///   the rows;
/// - otherwise (absolute): `⌊repeat · rows⌋`, `choose`, or the rows once;
///   the epoch is their sum, and an `epoch_size` is an error.
///
/// Weights on some sources but not all, or a negative or non-finite weight,
/// is an error naming the source. With [`Exhausted::Stop`] no source gives
/// more samples than it has rows (see there).
///
/// ```
/// use mosaicrs::loader::mix::{sample_counts, Exhausted, Weighting};
/// let w = [Weighting::Weight(0.6), Weighting::Weight(0.3), Weighting::Weight(0.1)];
/// assert_eq!(sample_counts(&w, &[100, 100, 100], None, Exhausted::Cycle).unwrap(), vec![180, 90, 30]);
/// let w = [Weighting::Repeat(2.5), Weighting::Choose(7), Weighting::Natural];
/// assert_eq!(sample_counts(&w, &[10, 100, 3], None, Exhausted::Cycle).unwrap(), vec![25, 7, 3]);
/// ```
pub fn sample_counts(
    weightings: &[Weighting],
    rows: &[u64],
    epoch_size: Option<u64>,
    exhausted: Exhausted,
) -> Result<Vec<u64>> {
    if weightings.is_empty() {
        return Err(Error::InvalidArgument(
            "a mix needs at least one source".into(),
        ));
    }
    if weightings.len() != rows.len() {
        return Err(Error::Internal(format!(
            "{} weightings for {} sources",
            weightings.len(),
            rows.len()
        )));
    }
    for (i, &w) in weightings.iter().enumerate() {
        check_weighting(i, w)?;
    }
    let relative = matches!(weightings[0], Weighting::Weight(_));
    if let Some(i) = weightings
        .iter()
        .position(|w| matches!(w, Weighting::Weight(_)) != relative)
    {
        return Err(Error::InvalidArgument(format!(
            "mix source {i}: relative weights (weight) and absolute ones (repeat, choose, \
             none) cannot be mixed; give every source a weight or none"
        )));
    }
    let unspecified = weightings.iter().all(|w| *w == Weighting::Natural);
    let counts = if relative || (unspecified && epoch_size.is_some()) {
        let shares: Vec<f64> = weightings
            .iter()
            .zip(rows)
            .map(|(w, &r)| match w {
                Weighting::Weight(v) => *v,
                _ => r as f64,
            })
            .collect();
        let sum: f64 = shares.iter().sum();
        if sum <= 0.0 {
            return Err(Error::InvalidArgument(
                "mix weights must not all be zero".into(),
            ));
        }
        let size = epoch_size.unwrap_or_else(|| rows.iter().sum());
        let mut counts = relative_counts(&shares, sum, size);
        if exhausted == Exhausted::Stop {
            // The largest epoch where every share fits its source.
            let mut size = shares
                .iter()
                .zip(rows)
                .filter(|(&s, _)| s > 0.0)
                // One above the float estimate: the loop below settles it exactly.
                .map(|(&s, &r)| ((r as f64) * sum / s).floor() as u64 + 1)
                .min()
                .unwrap_or(0)
                .min(size);
            counts = relative_counts(&shares, sum, size);
            while counts.iter().zip(rows).any(|(c, r)| c > r) {
                size -= 1;
                counts = relative_counts(&shares, sum, size);
            }
        }
        counts
    } else {
        if epoch_size.is_some() {
            return Err(Error::InvalidArgument(
                "mix epoch_size applies to relative weights (or none); with repeat or choose \
                 the epoch is the sum of the sources' samples"
                    .into(),
            ));
        }
        let counts: Vec<u64> = weightings
            .iter()
            .zip(rows)
            .map(|(w, &r)| match *w {
                Weighting::Repeat(v) => (v * r as f64).floor() as u64,
                Weighting::Choose(n) => n,
                _ => r,
            })
            .collect();
        if exhausted == Exhausted::Stop {
            if let Some((i, (c, r))) = counts
                .iter()
                .zip(rows)
                .enumerate()
                .find(|(_, (c, r))| c > r)
            {
                return Err(Error::InvalidArgument(format!(
                    "mix source {i} asks for {c} samples per epoch but has {r} rows, and \
                     exhausted is stop; use cycle to repeat rows"
                )));
            }
        }
        counts
    };
    if let Some((i, c)) = counts
        .iter()
        .zip(rows)
        .enumerate()
        .find(|(_, (&c, &r))| c > 0 && r == 0)
        .map(|(i, (c, _))| (i, c))
    {
        return Err(Error::InvalidArgument(format!(
            "mix source {i} has no rows but its share of the epoch is {c} samples"
        )));
    }
    Ok(counts)
}

/// `size` split by `shares` (of `sum`): floors, then the largest remainders.
fn relative_counts(shares: &[f64], sum: f64, size: u64) -> Vec<u64> {
    // Shares as integers in units of 2^-32 of the total, so that the split
    // is exact integer arithmetic (ties broken the same on every machine).
    let scaled: Vec<u64> = shares
        .iter()
        .map(|s| ((s / sum) * (1u64 << 32) as f64).round() as u64)
        .collect();
    let total: u64 = scaled.iter().sum();
    largest_remainder(&scaled, total, size)
}

#[cfg(test)]
mod tests {
    use super::*;
    use Weighting::*;

    #[test]
    fn relative_weights_split_the_epoch() {
        let c = sample_counts(
            &[Weight(1.0), Weight(1.0), Weight(1.0)],
            &[10, 10, 10],
            Some(10),
            Exhausted::Cycle,
        )
        .unwrap();
        assert_eq!(c, vec![4, 3, 3]);
        let c = sample_counts(
            &[Weight(1000.0), Weight(1.0)],
            &[5000, 2],
            None,
            Exhausted::Cycle,
        )
        .unwrap();
        assert_eq!(c.iter().sum::<u64>(), 5002);
        assert_eq!(c, vec![4997, 5]);
    }

    #[test]
    fn natural_with_epoch_size_follows_rows() {
        let c =
            sample_counts(&[Natural, Natural], &[300, 100], Some(40), Exhausted::Cycle).unwrap();
        assert_eq!(c, vec![30, 10]);
        let c = sample_counts(&[Natural, Natural], &[300, 100], None, Exhausted::Cycle).unwrap();
        assert_eq!(c, vec![300, 100]);
    }

    #[test]
    fn repeat_and_choose_are_exact() {
        let c = sample_counts(
            &[Repeat(0.5), Repeat(2.5), Choose(17), Natural],
            &[11, 4, 3, 9],
            None,
            Exhausted::Cycle,
        )
        .unwrap();
        assert_eq!(c, vec![5, 10, 17, 9]);
    }

    #[test]
    fn stop_shortens_the_epoch_or_refuses() {
        // 50/50 of sources with 100 and 10 rows: the largest epoch whose
        // shares fit has 21 samples (the odd one to the first source).
        let c = sample_counts(
            &[Weight(1.0), Weight(1.0)],
            &[100, 10],
            None,
            Exhausted::Stop,
        )
        .unwrap();
        assert_eq!(c, vec![11, 10]);
        let c = sample_counts(
            &[Weight(0.6), Weight(0.3), Weight(0.1)],
            &[100, 100, 5],
            None,
            Exhausted::Stop,
        )
        .unwrap();
        assert!(c.iter().zip([100, 100, 5]).all(|(c, r)| *c <= r), "{c:?}");
        assert_eq!(c, vec![30, 15, 5]);
        let e = sample_counts(&[Repeat(2.0), Natural], &[3, 3], None, Exhausted::Stop).unwrap_err();
        assert!(e.to_string().contains("mix source 0"), "{e}");
    }

    #[test]
    fn bad_weightings_are_named() {
        for (w, needle) in [
            (vec![Weight(1.0), Repeat(1.0)], "mix source 1"),
            (vec![Natural, Weight(1.0)], "mix source 1"),
            (vec![Weight(-1.0), Weight(1.0)], "mix source 0: weight"),
            (vec![Repeat(f64::NAN), Natural], "mix source 0: repeat"),
            (vec![Weight(0.0), Weight(0.0)], "not all be zero"),
        ] {
            let e = sample_counts(&w, &[5, 5], None, Exhausted::Cycle).unwrap_err();
            assert!(e.to_string().contains(needle), "{w:?}: {e}");
        }
        let e =
            sample_counts(&[Choose(3), Natural], &[5, 5], Some(4), Exhausted::Cycle).unwrap_err();
        assert!(e.to_string().contains("epoch_size"), "{e}");
        let e = sample_counts(&[Choose(3), Natural], &[0, 5], None, Exhausted::Cycle).unwrap_err();
        assert!(e.to_string().contains("mix source 0 has no rows"), "{e}");
    }
}
