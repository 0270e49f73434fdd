//! Choosing feature columns, splitting off held-out rows, and the statistics
//! pass (feature means and deviations, number of classes).

use anyhow::{bail, Result};
use arrow::datatypes::{DataType, Schema};
use mosaicrs::assemble::{is_numeric, is_numeric_list, ElementKind, FeatureLayout};
use mosaicrs::format::column_index;
use mosaicrs::loader::{mix64, Loader, LoaderConfig, ShuffleMode, TailPolicy};
use mosaicrs::reader::DataSource;
use mosaicrs_tch::{feature_input, TensorAssembler};
use tch::{Device, Kind, Tensor};

/// True for column types that can be features.
fn is_feature(data_type: &DataType) -> bool {
    is_numeric(data_type) || is_numeric_list(data_type)
}

/// The feature columns: the ones named (each must exist and be numeric or a
/// list of numbers), or by default every such column except the label.
pub fn resolve_features(schema: &Schema, named: &[String], label: &str) -> Result<Vec<String>> {
    let label_field = schema.field(column_index(schema, label)?);
    if !label_field.data_type().is_integer() {
        bail!(mosaicrs::Error::UnsupportedColumn {
            name: label.to_string(),
            data_type: label_field.data_type().to_string(),
            reason: "the label must be an integer class id".into(),
        });
    }
    if named.is_empty() {
        let features: Vec<String> = schema
            .fields()
            .iter()
            .filter(|f| f.name() != label && is_feature(f.data_type()))
            .map(|f| f.name().clone())
            .collect();
        if features.is_empty() {
            bail!("the dataset has no numeric columns besides the label {label:?}");
        }
        return Ok(features);
    }
    for name in named {
        let field = schema.field(column_index(schema, name)?);
        if !is_feature(field.data_type()) {
            bail!(mosaicrs::Error::UnsupportedColumn {
                name: name.clone(),
                data_type: field.data_type().to_string(),
                reason: "feature columns must be numeric or lists of numbers".into(),
            });
        }
        if name == label {
            bail!("the label column {label:?} cannot also be a feature");
        }
    }
    Ok(named.to_vec())
}

/// Splits rows `0..rows` into (train, holdout): row `r` is held out when a
/// hash of (seed, r) falls below `fraction`. Deterministic, independent of
/// shard layout and of any sample order.
pub fn split_rows(rows: u64, fraction: f64, seed: u64) -> Result<(Vec<u64>, Vec<u64>)> {
    if !(0.0..1.0).contains(&fraction) {
        bail!("--holdout must be in [0, 1), got {fraction}");
    }
    // Fraction of the u64 range; exact enough for a split.
    let threshold = (fraction * 2f64.powi(64)) as u64;
    let salt = mix64(seed ^ 0x0068_6f6c_646f_7574); // "holdout"
    Ok((0..rows).partition(|&r| mix64(salt ^ r) >= threshold))
}

/// What the statistics pass finds over the training rows.
#[derive(Debug, Clone)]
pub struct Stats {
    pub mean: Vec<f64>,
    pub std: Vec<f64>,
    pub classes: i64,
}

/// One sequential pass over `rows`: per-feature mean and standard deviation
/// (for standardising) and the number of classes (max label + 1).
pub fn statistics(
    dataset: &DataSource,
    rows: &[u64],
    features: &[String],
    layout: &FeatureLayout,
    label: &str,
) -> Result<Stats> {
    let mut columns = features.to_vec();
    columns.push(label.to_string());
    let config = LoaderConfig {
        batch_size: pass_batch_size(dataset, rows.len(), 4096),
        shuffle: ShuffleMode::Sequential,
        tail: TailPolicy::Pad,
        columns: Some(columns),
        rows: Some(rows.to_vec().into()),
        ..LoaderConfig::default()
    };
    let mut loader = Loader::new(dataset, config)?;
    let assembler = TensorAssembler::new(
        loader.schema(),
        &layout.spec(ElementKind::F64, label),
        Device::Cpu,
    )?;
    let f = layout.width();
    let mut sum = vec![0f64; f];
    let mut sum_sq = vec![0f64; f];
    let mut n = 0f64;
    let (mut min_label, mut max_label) = (i64::MAX, i64::MIN);
    for batch in loader.epoch_with(move |g| assembler.assemble(g))? {
        let batch = batch?;
        let real = (batch.rows.len() - batch.padding) as i64;
        let x = feature_input(layout, &batch.data, Kind::Double)?.f_narrow(0, 0, real)?;
        let y = batch.data.tensor(label)?.f_narrow(0, 0, real)?;
        let s = Vec::<f64>::try_from(x.f_sum_dim_intlist(0, false, Kind::Double)?)?;
        let s2 = Vec::<f64>::try_from(x.f_square()?.f_sum_dim_intlist(0, false, Kind::Double)?)?;
        for j in 0..f {
            sum[j] += s[j];
            sum_sq[j] += s2[j];
        }
        n += real as f64;
        if real > 0 {
            min_label = min_label.min(y.f_min()?.f_int64_value(&[])?);
            max_label = max_label.max(y.f_max()?.f_int64_value(&[])?);
        }
    }
    if n == 0.0 {
        bail!("no training rows (is the dataset empty, or --holdout too large?)");
    }
    if min_label < 0 {
        bail!("label column {label:?} has negative class id {min_label}; labels must be 0..C-1");
    }
    let mean: Vec<f64> = sum.iter().map(|s| s / n).collect();
    let std = sum_sq
        .iter()
        .zip(&mean)
        .map(|(s2, m)| (s2 / n - m * m).max(0.0).sqrt())
        // Constant columns: divide by 1 instead of 0.
        .map(|s| if s > 1e-12 { s } else { 1.0 })
        .collect();
    Ok(Stats {
        mean,
        std,
        classes: max_label + 1,
    })
}

/// `x` standardised with `stats` (on `x`'s device).
pub fn standardise(x: &Tensor, mean: &Tensor, std: &Tensor) -> Result<Tensor> {
    Ok(x.f_sub(mean)?.f_div(std)?)
}

/// Rows per batch of a sequential pass over `rows` of the data: `wanted`,
/// or, when the dataset streams through the cache (where the shards of one
/// batch must fit), about the rows of one shard the pass visits.
pub fn pass_batch_size(dataset: &DataSource, rows: usize, wanted: usize) -> usize {
    if dataset.is_streamed() {
        let shards = dataset.index().shards.len().max(1);
        wanted.min(rows / shards).max(1)
    } else {
        wanted
    }
}
