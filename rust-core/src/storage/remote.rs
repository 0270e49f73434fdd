//! Object stores through `object_store`, behind a blocking API.

use std::io::Write;
use std::ops::Range;
use std::sync::{Arc, OnceLock};
use std::time::Duration;

use bytes::Bytes;
use object_store::path::Path as ObjectPath;
use object_store::{
    GetOptions, ObjectStore, ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion,
    WriteMultipart,
};

use super::options::StorageOptions;
use super::version::DatasetVersion;
use crate::{Error, Result};

/// Part size of multipart uploads; S3 requires at least 5 MiB for every
/// part but the last.
const PART_BYTES: usize = 8 << 20;
/// Parts of one upload in flight at once.
const PARTS_IN_FLIGHT: usize = 4;

/// The one runtime that drives every object-store call.
fn runtime() -> Result<&'static tokio::runtime::Runtime> {
    static RUNTIME: OnceLock<std::result::Result<tokio::runtime::Runtime, String>> =
        OnceLock::new();
    RUNTIME
        .get_or_init(|| {
            tokio::runtime::Builder::new_multi_thread()
                .worker_threads(4)
                .thread_name("mosaicrs-storage")
                .enable_all()
                .build()
                .map_err(|e| e.to_string())
        })
        .as_ref()
        .map_err(|e| Error::Internal(format!("cannot start the storage runtime: {e}")))
}

/// Runs `fut` to completion on the storage runtime.
pub(crate) fn block_on<F: std::future::Future>(fut: F) -> Result<F::Output> {
    Ok(runtime()?.block_on(fut))
}

/// A URL without user info, query or fragment: what may appear in messages.
pub(crate) fn redact_url_str(url: &str) -> String {
    match url::Url::parse(url) {
        Ok(u) => redact_url(&u),
        Err(_) => url.split(['?', '#']).next().unwrap_or_default().to_string(),
    }
}

fn redact_url(url: &url::Url) -> String {
    let mut u = url.clone();
    let _ = u.set_username("");
    let _ = u.set_password(None);
    u.set_query(None);
    u.set_fragment(None);
    u.to_string().trim_end_matches('/').to_string()
}

/// A dataset prefix in an object store.
#[derive(Clone)]
pub struct RemoteStore {
    url: String,
    store: Arc<dyn ObjectStore>,
    prefix: ObjectPath,
}

impl RemoteStore {
    /// Connects to the store that `url` names, with `options` over the
    /// environment's settings.
    // Without cloud features every arm but the refusal is compiled out.
    #[cfg_attr(
        not(any(feature = "aws", feature = "gcp", feature = "azure", feature = "http")),
        allow(unused_variables, unreachable_code)
    )]
    pub fn open(url: &url::Url, options: &StorageOptions) -> Result<Self> {
        let shown = redact_url(url);
        let bad = |e: String| Error::InvalidArgument(format!("cannot open {shown}: {e}"));
        let (scheme, prefix) =
            object_store::ObjectStoreScheme::parse(url).map_err(|e| bad(e.to_string()))?;
        let store: Arc<dyn ObjectStore> = match scheme {
            #[cfg(feature = "aws")]
            object_store::ObjectStoreScheme::AmazonS3 => {
                let mut b = object_store::aws::AmazonS3Builder::from_env().with_url(url.as_str());
                for (k, v) in options.iter() {
                    let key = k
                        .parse()
                        .map_err(|_| bad(format!("unknown S3 option {k:?}")))?;
                    b = b.with_config(key, v);
                }
                Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
            }
            #[cfg(feature = "gcp")]
            object_store::ObjectStoreScheme::GoogleCloudStorage => {
                let mut b =
                    object_store::gcp::GoogleCloudStorageBuilder::from_env().with_url(url.as_str());
                for (k, v) in options.iter() {
                    let key = k
                        .parse()
                        .map_err(|_| bad(format!("unknown GCS option {k:?}")))?;
                    b = b.with_config(key, v);
                }
                Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
            }
            #[cfg(feature = "azure")]
            object_store::ObjectStoreScheme::MicrosoftAzure => {
                let mut b =
                    object_store::azure::MicrosoftAzureBuilder::from_env().with_url(url.as_str());
                for (k, v) in options.iter() {
                    let key = k
                        .parse()
                        .map_err(|_| bad(format!("unknown Azure option {k:?}")))?;
                    b = b.with_config(key, v);
                }
                Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
            }
            #[cfg(feature = "http")]
            object_store::ObjectStoreScheme::Http => {
                let base = &url[..url::Position::BeforePath];
                let mut b = object_store::http::HttpBuilder::new().with_url(base);
                for (k, v) in options.iter() {
                    let key = k
                        .parse()
                        .map_err(|_| bad(format!("unknown HTTP option {k:?}")))?;
                    b = b.with_config(key, v);
                }
                Arc::new(b.build().map_err(|e| bad(e.to_string()))?)
            }
            other => {
                return Err(bad(format!(
                    "{other:?} is not supported by this build of mosaicrs \
                     (enable the aws, gcp, azure or http feature)"
                )))
            }
        };
        Ok(RemoteStore {
            url: shown,
            store,
            prefix,
        })
    }

    /// The dataset's URL, without credentials.
    pub fn url(&self) -> &str {
        &self.url
    }

    /// The URL of object `name` inside the dataset.
    pub fn url_of(&self, name: &str) -> String {
        format!("{}/{name}", self.url)
    }

    /// The object of `name`, a file name or `folder/name` inside the dataset.
    fn object(&self, name: &str) -> ObjectPath {
        name.split('/')
            .fold(self.prefix.clone(), |path, part| path.join(part))
    }

    fn err(&self, name: &str, e: object_store::Error) -> Error {
        Error::Storage {
            location: self.url_of(name),
            message: e.to_string(),
        }
    }

    /// Reads a whole object with its version; `None` if absent.
    pub(crate) fn get_versioned(&self, name: &str) -> Result<Option<(Bytes, DatasetVersion)>> {
        let path = self.object(name);
        let result = block_on(async {
            let r = self.store.get_opts(&path, GetOptions::default()).await?;
            let version = DatasetVersion::Index {
                e_tag: r.meta.e_tag.clone(),
                version: r.meta.version.clone(),
            };
            Ok::<_, object_store::Error>((r.bytes().await?, version))
        })?;
        match result {
            Ok(found) => Ok(Some(found)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(name, e)),
        }
    }

    /// Reads a whole object; `None` if it is absent.
    pub fn get(&self, name: &str) -> Result<Option<Bytes>> {
        Ok(self.get_versioned(name)?.map(|(bytes, _)| bytes))
    }

    /// Writes `bytes` to `name` only if the object is still at `expected`
    /// (absent, or that e-tag/version). Returns false when another writer
    /// got there first.
    pub(crate) fn put_if(
        &self,
        name: &str,
        bytes: Vec<u8>,
        expected: &DatasetVersion,
    ) -> Result<bool> {
        let mode = match expected {
            DatasetVersion::Absent => PutMode::Create,
            DatasetVersion::Index { e_tag, version } => PutMode::Update(UpdateVersion {
                e_tag: e_tag.clone(),
                version: version.clone(),
            }),
        };
        let path = self.object(name);
        let opts = PutOptions {
            mode,
            ..Default::default()
        };
        match block_on(self.store.put_opts(&path, PutPayload::from(bytes), opts))? {
            Ok(_) => Ok(true),
            Err(
                object_store::Error::AlreadyExists { .. }
                | object_store::Error::Precondition { .. },
            ) => Ok(false),
            Err(e) => Err(self.err(name, e)),
        }
    }

    /// The size of object `name`, or `None` if absent.
    pub fn size_of(&self, name: &str) -> Result<Option<u64>> {
        match block_on(self.store.head(&self.object(name)))? {
            Ok(meta) => Ok(Some(meta.size)),
            Err(object_store::Error::NotFound { .. }) => Ok(None),
            Err(e) => Err(self.err(name, e)),
        }
    }

    /// Several ranges of one object at once (the downloads of a shard).
    pub(crate) fn get_ranges_parallel(
        &self,
        name: &str,
        ranges: Vec<Range<u64>>,
        deadline: Duration,
    ) -> Result<Vec<Result<Bytes>>> {
        let path = self.object(name);
        let futures = ranges.into_iter().map(|range| {
            let path = path.clone();
            async move {
                match tokio::time::timeout(deadline, self.store.get_range(&path, range)).await {
                    Ok(Ok(bytes)) => Ok(bytes),
                    Ok(Err(e)) => Err(self.err(name, e)),
                    Err(_) => Err(Error::Storage {
                        location: self.url_of(name),
                        message: format!("no reply within {deadline:?}"),
                    }),
                }
            }
        });
        block_on(futures_util::future::join_all(futures))
    }

    /// Deletes object `name`; absent is fine.
    pub fn delete(&self, name: &str) -> Result<()> {
        match block_on(self.store.delete(&self.object(name)))? {
            Ok(()) | Err(object_store::Error::NotFound { .. }) => Ok(()),
            Err(e) => Err(self.err(name, e)),
        }
    }

    /// Objects directly inside the dataset prefix: (name, size, age).
    pub fn list(&self) -> Result<Vec<(String, u64, Duration)>> {
        self.list_in("")
    }

    /// Objects directly inside `folder` of the dataset (`""`: the dataset
    /// prefix itself): (file name, size, age).
    pub fn list_in(&self, folder: &str) -> Result<Vec<(String, u64, Duration)>> {
        let prefix = if folder.is_empty() {
            self.prefix.clone()
        } else {
            self.object(folder)
        };
        let listing = block_on(self.store.list_with_delimiter(Some(&prefix)))?
            .map_err(|e| self.err(folder, e))?;
        let now = chrono_now_ms();
        Ok(listing
            .objects
            .into_iter()
            .filter_map(|meta| {
                let name = meta.location.filename()?.to_string();
                let age_ms =
                    now.saturating_sub(meta.last_modified.timestamp_millis().max(0) as u64);
                Some((name, meta.size, Duration::from_millis(age_ms)))
            })
            .collect())
    }

    /// Starts writing object `name`; it becomes visible only when
    /// [`RemoteFile::finish`] completes the upload.
    pub fn create(&self, name: &str) -> RemoteFile {
        RemoteFile {
            store: self.clone(),
            name: name.to_string(),
            buffer: Vec::new(),
            upload: None,
        }
    }
}

fn chrono_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// An object being uploaded: one PUT when it stays under one part,
/// otherwise a multipart upload with a few parts in flight. Nothing reaches
/// a local disk.
pub struct RemoteFile {
    store: RemoteStore,
    name: String,
    buffer: Vec<u8>,
    upload: Option<WriteMultipart>,
}

impl RemoteFile {
    /// Completes the upload, publishing the object.
    pub fn finish(mut self) -> Result<()> {
        let path = self.store.object(&self.name);
        let result = match self.upload.take() {
            None => {
                let bytes = std::mem::take(&mut self.buffer);
                block_on(self.store.store.put(&path, PutPayload::from(bytes)))?.map(|_| ())
            }
            Some(mut upload) => {
                let rest = std::mem::take(&mut self.buffer);
                let rt = runtime()?;
                let _entered = rt.enter();
                upload.write(&rest);
                rt.block_on(upload.finish()).map(|_| ())
            }
        };
        result.map_err(|e| self.store.err(&self.name, e))
    }

    /// Abandons the upload; nothing becomes visible.
    pub fn abort(mut self) -> Result<()> {
        if let Some(upload) = self.upload.take() {
            block_on(upload.abort())?.map_err(|e| self.store.err(&self.name, e))?;
        }
        Ok(())
    }

    fn flush_parts(&mut self) -> Result<()> {
        if self.buffer.len() < PART_BYTES {
            return Ok(());
        }
        let rt = runtime()?;
        if self.upload.is_none() {
            let path = self.store.object(&self.name);
            let upload = rt
                .block_on(self.store.store.put_multipart(&path))
                .map_err(|e| self.store.err(&self.name, e))?;
            self.upload = Some(WriteMultipart::new_with_chunk_size(upload, PART_BYTES));
        }
        let Some(upload) = self.upload.as_mut() else {
            return Err(Error::Internal("multipart upload missing".into()));
        };
        rt.block_on(upload.wait_for_capacity(PARTS_IN_FLIGHT))
            .map_err(|e| self.store.err(&self.name, e))?;
        // `write` spawns the part uploads onto the runtime.
        let _entered = rt.enter();
        upload.write(&self.buffer);
        self.buffer.clear();
        Ok(())
    }
}

impl Write for RemoteFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.buffer.extend_from_slice(buf);
        self.flush_parts().map_err(std::io::Error::other)?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for RemoteFile {
    fn drop(&mut self) {
        // An upload dropped without finish must not linger as parts.
        if let Some(upload) = self.upload.take() {
            let _ = block_on(upload.abort());
        }
    }
}
