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

/// One entry of a zip read the way `java.util.zip.ZipInputStream` reads it.
#[derive(Debug, Clone)]
pub struct ZipEntryCheck {
    pub name: String,
    pub size: u64,
    pub crc: u32,
}

/// A `Read` over chunks handed in by the async side (the object's body).
struct ChannelReader {
    rx: mpsc::Receiver<std::io::Result<Bytes>>,
    cur: Bytes,
}

impl std::io::Read for ChannelReader {
    fn read(&mut self, out: &mut [u8]) -> std::io::Result<usize> {
        while self.cur.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(b)) => self.cur = b,
                Some(Err(e)) => return Err(e),
                None => return Ok(0),
            }
        }
        let n = out.len().min(self.cur.len());
        out[..n].copy_from_slice(&self.cur[..n]);
        self.cur = self.cur.slice(n..);
        Ok(n)
    }
}

fn le16(b: &[u8]) -> u64 {
    u16::from_le_bytes([b[0], b[1]]) as u64
}
fn le32(b: &[u8]) -> u64 {
    u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as u64
}
fn le64(b: &[u8]) -> u64 {
    u64::from_le_bytes([b[0], b[1], b[2], b[3], b[4], b[5], b[6], b[7]])
}

const LOCSIG: u64 = 0x04034b50;
const EXTSIG: u64 = 0x08074b50;
const ZIP64_MAGIC: u64 = 0xFFFF_FFFF;

/// Reads a zip from the start, entry by entry, with the checks of the JDK's
/// `java/util/zip/ZipInputStream.java` (which Druid's S3 and GCS pullers use through
/// `CompressionUtils.unzip(InputStream, File)`): `readLOC` (a non-LOC signature ends the
/// entries; encrypted entries and data descriptors after STORED data are refused; ZIP64 sizes
/// from the 0x0001 extra field when the header says 0xFFFFFFFF), `read` (STORED: exactly
/// `size` bytes; DEFLATED: raw inflate to the end of the stream) and `readEnd` (the data
/// descriptor, with or without its signature, 8-byte sizes past 4 GiB; then size, compressed
/// size and CRC must match). No central directory is read.
pub fn read_like_zip_input_stream<R: std::io::Read>(
    r: R,
) -> std::result::Result<Vec<ZipEntryCheck>, String> {
    use std::io::{BufReader, Read};
    let mut r = BufReader::with_capacity(1 << 16, r);
    let mut out = Vec::new();
    loop {
        let mut loc = [0u8; 30];
        // ZipInputStream.readLOC: EOF or another signature is the end of the entries.
        match r.read_exact(&mut loc[..4]) {
            Ok(()) => {}
            Err(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => break,
            Err(e) => return Err(e.to_string()),
        }
        if le32(&loc) != LOCSIG {
            break;
        }
        r.read_exact(&mut loc[4..])
            .map_err(|e| format!("truncated local header: {e}"))?;
        let flag = le16(&loc[6..]);
        let method = le16(&loc[8..]);
        let mut name = vec![0u8; le16(&loc[26..]) as usize];
        let mut extra = vec![0u8; le16(&loc[28..]) as usize];
        r.read_exact(&mut name).map_err(|e| e.to_string())?;
        r.read_exact(&mut extra).map_err(|e| e.to_string())?;
        let name = String::from_utf8_lossy(&name).into_owned();
        if flag & 1 == 1 {
            return Err(format!("{name}: encrypted ZIP entry not supported"));
        }
        let descriptor = flag & 8 == 8;
        let (mut crc, mut csize, mut size) = (le32(&loc[14..]), le32(&loc[18..]), le32(&loc[22..]));
        if descriptor {
            if method != 8 {
                return Err(format!(
                    "{name}: only DEFLATED entries can have EXT descriptor"
                ));
            }
        } else if csize == ZIP64_MAGIC || size == ZIP64_MAGIC {
            // ZipEntry.setExtra0: the ZIP64 extra field holds size, then csize, as needed.
            let mut i = 0;
            while i + 4 <= extra.len() {
                let (tag, len) = (le16(&extra[i..]), le16(&extra[i + 2..]) as usize);
                let data = extra
                    .get(i + 4..i + 4 + len)
                    .ok_or(format!("{name}: bad extra field"))?;
                if tag == 1 {
                    let mut off = 0;
                    if size == ZIP64_MAGIC && data.len() >= off + 8 {
                        size = le64(&data[off..]);
                        off += 8;
                    }
                    if csize == ZIP64_MAGIC && data.len() >= off + 8 {
                        csize = le64(&data[off..]);
                    }
                }
                i += 4 + len;
            }
        }
        let mut hasher = flate2::Crc::new();
        let mut buf = vec![0u8; 1 << 16];
        let (written, read) = match method {
            0 => {
                if csize != size {
                    return Err(format!(
                        "{name}: invalid entry size (STORED csize {csize} != size {size})"
                    ));
                }
                let mut take = (&mut r).take(size);
                let mut n_total = 0u64;
                loop {
                    let n = take.read(&mut buf).map_err(|e| e.to_string())?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                    n_total += n as u64;
                }
                if n_total != size {
                    return Err(format!(
                        "{name}: unexpected EOF after {n_total} of {size} bytes"
                    ));
                }
                (size, size)
            }
            8 => {
                let mut inf = flate2::bufread::DeflateDecoder::new(&mut r);
                let mut n_total = 0u64;
                loop {
                    let n = inf.read(&mut buf).map_err(|e| format!("{name}: {e}"))?;
                    if n == 0 {
                        break;
                    }
                    hasher.update(&buf[..n]);
                    n_total += n as u64;
                }
                (n_total, inf.total_in())
            }
            m => return Err(format!("{name}: invalid compression method {m}")),
        };
        if descriptor {
            // ZipInputStream.readEnd.
            let zip64 = written > ZIP64_MAGIC || read > ZIP64_MAGIC;
            let mut d = [0u8; 24];
            let n = if zip64 { 24 } else { 16 };
            r.read_exact(&mut d[..4])
                .map_err(|e| format!("{name}: no data descriptor: {e}"))?;
            let with_sig = le32(&d) == EXTSIG;
            let rest = if with_sig { n - 4 } else { n - 8 };
            // The first 4 bytes are the signature, or already the CRC; the rest follows them.
            r.read_exact(&mut d[4..4 + rest])
                .map_err(|e| format!("{name}: short data descriptor: {e}"))?;
            let b = if with_sig { &d[4..] } else { &d[..] };
            crc = le32(b);
            if zip64 {
                csize = le64(&b[4..]);
                size = le64(&b[12..]);
            } else {
                csize = le32(&b[4..]);
                size = le32(&b[8..]);
            }
        }
        if size != written {
            return Err(format!(
                "{name}: invalid entry size (expected {size} but got {written} bytes)"
            ));
        }
        if csize != read {
            return Err(format!(
                "{name}: invalid entry compressed size (expected {csize} but got {read} bytes)"
            ));
        }
        let got = hasher.sum();
        if crc != got as u64 {
            return Err(format!(
                "{name}: invalid entry CRC (expected 0x{crc:x} but got 0x{got:x})"
            ));
        }
        out.push(ZipEntryCheck {
            name,
            size,
            crc: got,
        });
    }
    if out.is_empty() {
        return Err("no zip entry at the start of the object".into());
    }
    Ok(out)
}

/// Streams object `key` of `store` through [`read_like_zip_input_stream`]: nothing is kept but
/// one chunk at a time.
pub async fn check_zip(store: &Store, key: &str) -> Result<Vec<ZipEntryCheck>> {
    use futures::StreamExt;
    let p = store.path(key)?;
    let got = store
        .inner
        .get(&p)
        .await
        .map_err(|e| store.error("reading", key, e))?;
    let mut body = got.into_stream();
    let (tx, rx) = mpsc::channel::<std::io::Result<Bytes>>(4);
    let reader = tokio::task::spawn_blocking(move || {
        read_like_zip_input_stream(ChannelReader {
            rx,
            cur: Bytes::new(),
        })
    });
    while let Some(chunk) = body.next().await {
        let item = chunk.map_err(|e| std::io::Error::other(e.to_string()));
        if tx.send(item).await.is_err() {
            break; // the reader stopped (an error, or the end of the entries)
        }
    }
    drop(tx);
    let checked = reader
        .await
        .map_err(|e| FerryError::new(ErrorKind::Internal, e.to_string()))?;
    checked.map_err(|m| {
        FerryError::new(
            ErrorKind::InvalidInput,
            format!(
                "{}/{key} is not a zip Druid can read (java.util.zip.ZipInputStream): {m}",
                store.display
            ),
        )
    })
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
            uploads: None,
        };
        let r = put_zip(&store, src.path(), "seg/index.zip", 6)
            .await
            .unwrap();
        assert_eq!(r.files, 2);
        let zipped = std::fs::read(out.path().join("seg/index.zip")).unwrap();
        assert_eq!(zipped.len() as u64, r.bytes);
        let mut archive = zip::ZipArchive::new(std::io::Cursor::new(zipped.clone())).unwrap();
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
        // The streaming reader (ZipInputStream's rules) reads it too, and checks.
        let entries = read_like_zip_input_stream(&zipped[..]).unwrap();
        let names: Vec<_> = entries.iter().map(|e| (e.name.as_str(), e.size)).collect();
        assert_eq!(
            names,
            vec![("meta.smoosh", 16), ("sub/00000.smoosh", 9 << 20)]
        );
        let mut bad = zipped.clone();
        let at = bad.len() / 2;
        bad[at] ^= 0x55;
        assert!(read_like_zip_input_stream(&bad[..]).is_err());
    }

    #[test]
    fn stored_entries_with_descriptors_are_refused_like_the_jdk() {
        let mut zw = zip::ZipWriter::new_stream(Vec::new());
        let opts = zip::write::SimpleFileOptions::default()
            .compression_method(zip::CompressionMethod::Stored);
        zw.start_file("a", opts).unwrap();
        zw.write_all(b"hello").unwrap();
        let data = zw.finish().unwrap().into_inner();
        let err = read_like_zip_input_stream(&data[..]).unwrap_err();
        assert!(
            err.contains("only DEFLATED entries can have EXT descriptor"),
            "{err}"
        );
        // STORED without a descriptor (sizes up front) is fine.
        let mut zw = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
        zw.start_file("a", opts).unwrap();
        zw.write_all(b"hello").unwrap();
        let data = zw.finish().unwrap().into_inner();
        let e = read_like_zip_input_stream(&data[..]).unwrap();
        assert_eq!((e[0].name.as_str(), e[0].size), ("a", 5));
    }
}
