//! `mosaicrs head`.

use std::path::Path;
use std::process::ExitCode;

use anyhow::Result;
use arrow::util::pretty::pretty_format_batches;
use mosaicrs::reader::Dataset;

pub fn run(path: &Path, rows: u64, columns: &[String]) -> Result<ExitCode> {
    let dataset = Dataset::open(path)?;
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
