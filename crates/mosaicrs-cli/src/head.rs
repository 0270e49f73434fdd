//! `mosaicrs head`.

use std::process::ExitCode;

use anyhow::Result;
use arrow::util::pretty::pretty_format_batches;
use mosaicrs::reader::Dataset;

use crate::store::StoreArgs;

pub fn run(path: &str, rows: u64, columns: &[String], store: &StoreArgs) -> Result<ExitCode> {
    let dataset = Dataset::open_at(&store.location(path)?, &store.cache()?)?;
    let n = rows.min(dataset.num_rows());
    let mut batch = dataset.slice(0, n)?;
    if !columns.is_empty() {
        let names: Vec<&str> = columns.iter().map(String::as_str).collect();
        batch = batch.project(&dataset.column_indices(&names)?)?;
    }
    println!("{}", pretty_format_batches(&[batch])?);
    println!("({n} of {} rows)", dataset.num_rows());
    Ok(ExitCode::SUCCESS)
}
