//! `mosaicrs inspect`.

use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::Result;
use serde_json::json;

use crate::store::StoreArgs;

pub fn run(path: &str, as_json: bool, list_shards: bool, store: &StoreArgs) -> Result<ExitCode> {
    let location = store.location(path)?;
    let index = location.load_index()?;
    let path = location.to_string();
    let compression: BTreeSet<String> = index
        .shards
        .iter()
        .map(|s| s.compression.to_string())
        .collect();
    if as_json {
        let mut out = json!({
            "path": path,
            "format_version": index.format_version,
            "rows": index.total_rows,
            "shards": index.shards.len(),
            "bytes": index.total_bytes,
            "compression": compression,
            "fields": index.fields,
            "writes": index.writes,
        });
        if list_shards {
            out["shard_list"] = json!(index.shards);
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("dataset      {path}");
    println!("format       mosaicrs v{}", index.format_version);
    println!("rows         {}", index.total_rows);
    println!("shards       {}", index.shards.len());
    println!(
        "bytes        {} ({:.1} MiB)",
        index.total_bytes,
        index.total_bytes as f64 / (1 << 20) as f64
    );
    let compression: Vec<_> = compression.into_iter().collect();
    println!(
        "compression  {}",
        if compression.is_empty() {
            "-".to_string()
        } else {
            compression.join(", ")
        }
    );
    println!("writes       {}", index.writes.len());
    println!("schema");
    for f in &index.fields {
        let null = if f.nullable { "" } else { " not null" };
        println!("  {}: {}{null}", f.name, f.data_type);
    }
    if list_shards {
        println!("shards");
        for s in &index.shards {
            println!(
                "  {}  rows={} bytes={} batches={} {} {}",
                s.path, s.rows, s.bytes, s.batches, s.compression, s.checksum
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
