//! Zipping a local folder straight into a store object: the zip is written on a blocking thread
//! in streaming mode (data descriptors, deflate) and handed over in chunks to a multipart upload,
//! so a segment of any size never sits in memory or in a temporary file. Druid 26+ keeps local
//! segments as folders; its S3, GCS and Azure loaders want one `index.zip`.
//!
//! Every entry is DEFLATED. A streaming writer does not know an entry's size and CRC before its
//! data, so it writes them in a data descriptor after it; Java's `ZipInputStream`, which Druid's
//! S3 and GCS pullers read through (apache/druid processing/.../utils/CompressionUtils.java,
//! `unzip(InputStream, File)`), accepts a data descriptor only after DEFLATED data and refuses a
//! STORED entry with one ("only DEFLATED entries can have EXT descriptor", JDK
//! `java/util/zip/ZipInputStream.java`, `readLOC`). So level 0 (STORED) is refused rather than
//! written in a form Druid cannot read; level 1 costs little on segment files.

use std::io::Write;
use std::path::{Path, PathBuf};

use bytes::Bytes;
use object_store::{ObjectStoreExt, WriteMultipart};
use tokio::sync::mpsc;

use super::Store;
use crate::runtime::error::{ErrorKind, FerryError, Result};

const CHUNK: usize = 4 << 20;

/// A `Write` that hands full chunks to the async side.
struct ChannelWriter {
    tx: mpsc::Sender<Bytes>,
    buf: Vec<u8>,
}

impl ChannelWriter {
    fn send(&mut self) -> std::io::Result<()> {
        if self.buf.is_empty() {
            return Ok(());
        }
        let chunk = Bytes::from(std::mem::replace(&mut self.buf, Vec::with_capacity(CHUNK)));
        self.tx
            .blocking_send(chunk)
            .map_err(|_| std::io::Error::other("the upload stopped"))
    }
}

impl Write for ChannelWriter {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        if self.buf.len() >= CHUNK {
            self.send()?;
        }
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for ChannelWriter {
    fn drop(&mut self) {
        let _ = self.send();
    }
}

#[derive(Debug, Clone, Copy, Default)]
pub struct ZipReport {
    /// Size of the zip object.
    pub bytes: u64,
    pub files: u64,
}

fn files_below(dir: &Path) -> std::io::Result<Vec<(PathBuf, String, u64)>> {
    let mut out = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        for e in std::fs::read_dir(&d)? {
            let e = e?;
            let p = e.path();
            let meta = e.metadata()?;
            if meta.is_dir() {
                stack.push(p);
            } else {
                let rel = p
                    .strip_prefix(dir)
                    .unwrap_or(&p)
                    .to_string_lossy()
                    .replace('\\', "/");
                out.push((p, rel, meta.len()));
            }
        }
    }
    out.sort_by(|a, b| a.1.cmp(&b.1));
    Ok(out)
}

/// Zips the files below `dir` (paths relative to it) into `key` of `store`.
pub async fn put_zip(store: &Store, dir: &Path, key: &str, level: i64) -> Result<ZipReport> {
    if !(1..=9).contains(&level) {
        return Err(FerryError::new(
            ErrorKind::InvalidInput,
            format!(
                "zip level {level} is not supported: use 1 (fastest) to 9 (smallest). Level 0 would \
                 write STORED entries with data descriptors, which Java's ZipInputStream (Druid's \
                 S3 and GCS segment pullers) refuses"
            ),
        ));
    }
    let files = files_below(dir)
        .map_err(|e| FerryError::io(format!("reading folder {}", dir.display()), &e))?;
    if files.is_empty() {
        return Err(FerryError::new(
            ErrorKind::InvalidInput,
            format!("{} has no files to zip", dir.display()),
        ));
    }
    let n = files.len() as u64;
    let (tx, mut rx) = mpsc::channel::<Bytes>(2);
    let shown = dir.display().to_string();
    let zipper = tokio::task::spawn_blocking(move || -> std::result::Result<(), String> {
        let mut zw = zip::ZipWriter::new_stream(ChannelWriter {
            tx,
            buf: Vec::with_capacity(CHUNK),
        });
        for (path, rel, size) in files {
            let opts = zip::write::SimpleFileOptions::default()
                .compression_method(zip::CompressionMethod::Deflated)
                .compression_level(Some(level))
                .large_file(size >= u32::MAX as u64);
            zw.start_file(rel.as_str(), opts)
                .map_err(|e| format!("zipping {rel}: {e}"))?;
            let mut f = std::fs::File::open(&path)
                .map_err(|e| format!("reading {}: {e}", path.display()))?;
            std::io::copy(&mut f, &mut zw)
                .map_err(|e| format!("zipping {}: {e}", path.display()))?;
        }
        zw.finish().map_err(|e| format!("finishing the zip: {e}"))?;
        Ok(())
    });
    let dst = store.path(key)?;
    let upload = store
        .inner
        .put_multipart(&dst)
        .await
        .map_err(|e| store.error("starting upload of", key, e))?;
    let mut writer = WriteMultipart::new_with_chunk_size(upload, 8 << 20);
    let mut bytes = 0u64;
    let mut upload_error = None;
    while let Some(chunk) = rx.recv().await {
        bytes += chunk.len() as u64;
        if let Err(e) = writer.wait_for_capacity(4).await {
            upload_error = Some(store.error("uploading", key, e));
            break;
        }
        writer.put(chunk);
    }
    drop(rx);
    let zipped = zipper
        .await
        .map_err(|e| FerryError::new(ErrorKind::Internal, e.to_string()))?;
    if let Some(e) = upload_error {
        let _ = writer.abort().await;
        return Err(e);
    }
    if let Err(m) = zipped {
        let _ = writer.abort().await;
        return Err(FerryError::new(ErrorKind::Io, format!("{shown}: {m}")));
    }
    writer
        .finish()
        .await
        .map_err(|e| store.error("completing upload of", key, e))?;
    Ok(ZipReport { bytes, files: n })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[tokio::test]
    async fn a_folder_becomes_a_readable_zip() {
        let src = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(src.path().join("sub")).unwrap();
        std::fs::write(src.path().join("meta.smoosh"), b"v1,2147483647,1\n").unwrap();
        let big: Vec<u8> = (0..9u32 << 20).map(|i| (i % 251) as u8).collect();
        std::fs::write(src.path().join("sub/00000.smoosh"), &big).unwrap();
        let out = tempfile::tempdir().unwrap();
        let store = Store {
            inner: std::sync::Arc::new(
                object_store::local::LocalFileSystem::new_with_prefix(out.path()).unwrap(),
            ),
            display: "file:///out".into(),
            backend: super::super::Backend::File,
        };
        let r = put_zip(&store, src.path(), "seg/index.zip", 6)
            .await
            .unwrap();
        assert_eq!(r.files, 2);
        let zipped = std::fs::read(out.path().join("seg/index.zip")).unwrap();
        assert_eq!(zipped.len() as u64, r.bytes);
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zipped)).unwrap();
        let mut content = Vec::new();
        archive
            .by_name("sub/00000.smoosh")
            .unwrap()
            .read_to_end(&mut content)
            .unwrap();
        assert_eq!(content, big);
        let mut meta = String::new();
        archive
            .by_name("meta.smoosh")
            .unwrap()
            .read_to_string(&mut meta)
            .unwrap();
        assert_eq!(meta, "v1,2147483647,1\n");
    }
}
