//! Device choice and double-buffered, non-blocking copies to the device.

use tch::{Cuda, Device};

use super::TensorBatch;
use mosaicrs::loader::LoadedBatch;
use mosaicrs::{Error, Result};

/// Parses `auto` (CUDA when available, else CPU), `cpu`, `cuda` or `cuda:N`.
/// Asking for CUDA where none is available is an error, not a silent CPU run.
///
/// ```no_run
/// let device = mosaicrs_tch::choose_device("auto").unwrap();
/// assert!(device == tch::Device::Cpu || device.is_cuda());
/// ```
pub fn choose_device(choice: &str) -> Result<Device> {
    let lower = choice.trim().to_ascii_lowercase();
    let cuda = |index: usize| {
        let count = usize::try_from(Cuda::device_count()).unwrap_or(0);
        if index < count {
            Ok(Device::Cuda(index))
        } else {
            Err(Error::InvalidArgument(format!(
                "device {choice:?}: {count} CUDA device(s) available (is libtorch_cuda \
                 linked and a GPU present?); use --device cpu or auto"
            )))
        }
    };
    match lower.as_str() {
        "auto" => Ok(Device::cuda_if_available()),
        "cpu" => Ok(Device::Cpu),
        "cuda" | "gpu" => cuda(0),
        _ => match lower.strip_prefix("cuda:").map(str::parse::<usize>) {
            Some(Ok(index)) => cuda(index),
            _ => Err(Error::InvalidArgument(format!(
                "device {choice:?} is not one of auto, cpu, cuda, cuda:N"
            ))),
        },
    }
}

/// Moves loader batches to `device`, one batch ahead: while the consumer
/// works on batch `i`, the non-blocking copy of batch `i + 1` (from pinned
/// host memory) is already queued. On the CPU it passes batches through.
pub struct DeviceFeeder<I> {
    inner: I,
    device: Device,
    ahead: Option<Result<LoadedBatch<TensorBatch>>>,
    started: bool,
}

impl<I> DeviceFeeder<I>
where
    I: Iterator<Item = Result<LoadedBatch<TensorBatch>>>,
{
    /// Wraps a loader epoch whose batches were assembled for `device`.
    pub fn new(inner: I, device: Device) -> Self {
        DeviceFeeder {
            inner,
            device,
            ahead: None,
            started: false,
        }
    }

    fn fetch(&mut self) -> Option<Result<LoadedBatch<TensorBatch>>> {
        let batch = self.inner.next()?;
        Some(batch.and_then(|mut b| {
            if self.device != Device::Cpu {
                b.data = b.data.f_to_device(self.device, true)?;
            }
            Ok(b)
        }))
    }
}

impl<I> Iterator for DeviceFeeder<I>
where
    I: Iterator<Item = Result<LoadedBatch<TensorBatch>>>,
{
    type Item = Result<LoadedBatch<TensorBatch>>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.device == Device::Cpu {
            return self.inner.next();
        }
        if !self.started {
            self.started = true;
            self.ahead = self.fetch();
        }
        let current = self.ahead.take()?;
        if current.is_ok() {
            self.ahead = self.fetch();
        }
        Some(current)
    }
}
