//! `mosaicrs head`.

use std::io::Write;
use std::process::ExitCode;

use anyhow::Result;
use arrow::util::pretty::pretty_format_batches;
use mosaicrs::format::VersionSpec;
use mosaicrs::reader::{Dataset, ReadOptions};

use crate::store::StoreArgs;

/// Rows per printed table: memory stays bounded whatever `-n` is.
const ROWS_PER_TABLE: usize = 1024;

pub fn run(
    path: &str,
    rows: u64,
    columns: &[String],
    version: &VersionSpec,
    store: &StoreArgs,
    options: &ReadOptions,
) -> Result<ExitCode> {
    let dataset = Dataset::open_version(&store.location(path)?, &store.cache()?, options, version)?;
    let n = rows.min(dataset.num_rows());
    let names: Vec<String> = if columns.is_empty() {
        let schema = dataset.schema();
        schema.fields().iter().map(|f| f.name().clone()).collect()
    } else {
        columns.to_vec()
    };
    let names: Vec<&str> = names.iter().map(String::as_str).collect();
    let mut out = std::io::stdout().lock();
    let mut printed = 0u64;
    let mut empty = true;
    // Batch by batch, projected before anything is printed or copied.
    for batch in dataset.batches_projected(&names)? {
        if printed >= n {
            break;
        }
        let batch = batch?;
        let take = (batch.num_rows() as u64).min(n - printed) as usize;
        let mut at = 0;
        while at < take {
            let len = ROWS_PER_TABLE.min(take - at);
            writeln!(out, "{}", pretty_format_batches(&[batch.slice(at, len)])?)?;
            empty = false;
            at += len;
        }
        printed += take as u64;
    }
    if empty {
        let schema = dataset.schema().project(&dataset.column_indices(&names)?)?;
        let none = arrow::record_batch::RecordBatch::new_empty(std::sync::Arc::new(schema));
        writeln!(out, "{}", pretty_format_batches(&[none])?)?;
    }
    writeln!(out, "({n} of {} rows)", dataset.num_rows())?;
    Ok(ExitCode::SUCCESS)
}
