//! `mosaicrs inspect`.

use std::collections::BTreeSet;
use std::process::ExitCode;

use anyhow::Result;
use arrow::datatypes::DataType;
use mosaicrs::format::VersionSpec;
use mosaicrs::writer::packed_columns;
use serde_json::{json, Value};

use crate::store::StoreArgs;

pub fn run(
    path: &str,
    as_json: bool,
    list_shards: bool,
    version: &VersionSpec,
    store: &StoreArgs,
) -> Result<ExitCode> {
    let location = store.location(path)?;
    let index = location.load_index_at(version)?;
    let path = location.to_string();
    let compression: BTreeSet<String> = index
        .shards
        .iter()
        .map(|s| s.compression.to_string())
        .collect();
    let layout = column_layout(&*index.arrow_schema()?);
    if as_json {
        let mut out = json!({
            "path": path,
            "format_version": index.format_version,
            "version": index.version,
            "commit": index.commit,
            "rows": index.total_rows,
            "shards": index.shards.len(),
            "bytes": index.total_bytes,
            "compression": compression,
            "fields": index.fields,
            "writes": index.writes,
            "layout": layout,
        });
        if list_shards {
            out["shard_list"] = json!(index.shards);
        }
        println!("{}", serde_json::to_string_pretty(&out)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!("dataset      {path}");
    println!("format       mosaicrs v{}", index.format_version);
    println!("version      {}", index.version);
    if let Some(commit) = &index.commit {
        println!(
            "committed    {} ({})",
            crate::history::format_time(commit.committed_at_ms),
            commit.operation
        );
    }
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
    if let Some(columns) = layout.as_object().filter(|c| !c.is_empty()) {
        println!("layout");
        for (name, l) in columns {
            let (width, item) = (&l["width"], l["type"].as_str().unwrap_or("?"));
            match l["columns"].as_array() {
                Some(packed) => {
                    let names: Vec<&str> = packed.iter().filter_map(Value::as_str).collect();
                    println!(
                        "  {name}: packed row-major, {width} x {item}: {}",
                        names.join(", ")
                    );
                }
                None => println!("  {name}: fixed-size list, {width} x {item}"),
            }
        }
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

/// The columns stored as fixed-size lists, packed (with the columns they
/// hold) or declared; the other columns are columnar.
fn column_layout(schema: &arrow::datatypes::Schema) -> Value {
    let mut out = serde_json::Map::new();
    for field in schema.fields() {
        if let DataType::FixedSizeList(item, width) = field.data_type() {
            let mut l = json!({"width": width, "type": item.data_type().to_string()});
            if let Some(columns) = packed_columns(field) {
                l["columns"] = json!(columns);
            }
            out.insert(field.name().clone(), l);
        }
    }
    Value::Object(out)
}
