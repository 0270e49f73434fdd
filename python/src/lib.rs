//! The `mosaicrs._native` extension module behind the `mosaicrs` Python
//! package. The Python sources (`python/mosaicrs/`) wrap it; see the
//! README's Python section and `docs/LOADER.md`.
//!
//! ```python
//! import mosaicrs, pyarrow as pa
//! table = pa.table(mosaicrs.Dataset("train.mosaicrs"))
//! ```
//!
//! Every call that reads, writes or waits runs with the GIL released
//! (`Python::detach`).

mod dataset;
mod errors;
mod fork;
mod history;
mod loader;
mod location;
mod tensor_probe;
mod tokens;
mod writer;

use pyo3::prelude::*;

#[pymodule]
fn _native(m: &Bound<'_, PyModule>) -> PyResult<()> {
    fork::install();
    m.add("__version__", env!("CARGO_PKG_VERSION"))?;
    m.add_class::<dataset::PyDataset>()?;
    errors::register(m)?;
    m.add_class::<writer::PartitionWriter>()?;
    m.add_class::<writer::PyColumnLayout>()?;
    m.add_class::<writer::WriteResult>()?;
    m.add_class::<loader::NativeLoader>()?;
    m.add_class::<loader::DenseBatches>()?;
    m.add_class::<loader::DenseEpoch>()?;
    m.add_class::<tokens::NativeTokenLoader>()?;
    m.add_function(wrap_pyfunction!(writer::write_stream, m)?)?;
    m.add_function(wrap_pyfunction!(writer::commit, m)?)?;
    m.add_function(wrap_pyfunction!(writer::abort_write, m)?)?;
    m.add_function(wrap_pyfunction!(writer::check_save_mode, m)?)?;
    m.add_function(wrap_pyfunction!(writer::write_id, m)?)?;
    m.add_function(wrap_pyfunction!(writer::spark_batch_rows, m)?)?;
    m.add_function(wrap_pyfunction!(writer::stored_schema, m)?)?;
    m.add_function(wrap_pyfunction!(fork::fork_generation, m)?)?;
    m.add_function(wrap_pyfunction!(history::log, m)?)?;
    Ok(())
}
