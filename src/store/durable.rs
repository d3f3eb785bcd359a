//! A local folder store whose new files get a fixed permission mode (the `file_mode` option of
//! `file://` stores) and, with `fsync`, are flushed (file, then its folder, then any folder
//! created for it) before a write returns, so a key recorded afterwards (a list cache line)
//! names an object that survives a crash.
//!
//! This follows seaf-server's filesystem backend (haiwen/seafile-server
//! `common/obj-backend-fs.c`): `save_obj_contents` writes a `g_mkstemp` temp file (mode 0600)
//! beside the object, `fsync_obj_contents` flushes it, and `rename_and_sync` renames it into
//! place and fsyncs the parent folder. seafobj writes 0600 files too
//! (`seafobj/backends/filesystem.py` `write_obj`: `NamedTemporaryFile`, then `os.rename`).
//! Temp files are named `<file>#<digits>`, which object_store's local listing skips
//! (`is_valid_file_path`) and Seafile's name filter rejects (not 40 hex digits).
//!
//! A temp file is locked (`flock`) from its creation until it is renamed into place. A run
//! killed mid-write leaves its temp file behind, unlocked (the kernel drops the lock with the
//! process); the next write of the same key (the resume copies it again, since it never
//! landed) finds it, takes the lock and removes it, so kills leave no files beside the objects.
//! A temp file still locked belongs to a live writer and is left alone.

use std::fs::{File, OpenOptions};
use std::io::Write;
use std::ops::Range;
use std::os::unix::fs::{FileExt, OpenOptionsExt};
use std::path::{Path as FsPath, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use object_store::local::LocalFileSystem;
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, GetResultPayload, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMode, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions,
    Result, UploadPart,
};

#[derive(Debug)]
pub struct ModeLocal {
    inner: LocalFileSystem,
    mode: u32,
    fsync: bool,
}

impl std::fmt::Display for ModeLocal {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        if self.mode == DEFAULT_MODE {
            return write!(f, "{}", self.inner);
        }
        write!(f, "ModeLocal({:o}, {})", self.mode, self.inner)
    }
}

/// The mode of new files when `file_mode` is not given: 0666 less the umask, as `open(2)` and
/// object_store's own local store create them.
pub const DEFAULT_MODE: u32 = 0o666;

impl ModeLocal {
    pub fn new(inner: LocalFileSystem, mode: u32, fsync: bool) -> Self {
        ModeLocal { inner, mode, fsync }
    }
}

fn io_err(what: &str, path: &FsPath, e: std::io::Error) -> object_store::Error {
    object_store::Error::Generic {
        store: "LocalFileSystem",
        source: format!("{what} {}: {e}", path.display()).into(),
    }
}

fn fsync_dir(dir: &FsPath) -> std::io::Result<()> {
    File::open(dir)?.sync_all()
}

/// Bytes per blocking read of a local file in [`read_stream`].
pub const LOCAL_READ_CHUNK: usize = 1 << 20;

/// The content of a `get`, as a stream of chunks. object_store's `GetResult::into_stream` reads a
/// local file in 8 KiB pieces, each one a `spawn_blocking` round trip (524,288 of them for
/// 4 GiB; the scheduler and futex wake-ups were about a third of a large copy's CPU in `perf`).
/// A local file is read here `chunk` bytes per blocking call instead; other stores stream as
/// they come.
pub fn read_stream(r: GetResult, chunk: usize) -> BoxStream<'static, Result<Bytes>> {
    use futures::StreamExt;
    use std::io::{Read, Seek, SeekFrom};
    let (start, end) = (r.range.start, r.range.end);
    match r.payload {
        GetResultPayload::File(file, path) => {
            let chunk = chunk.max(1) as u64;
            futures::stream::try_unfold((Some((file, path)), start), move |(fp, at)| async move {
                let Some((mut file, path)) = fp else {
                    return Ok(None);
                };
                if at >= end {
                    return Ok(None);
                }
                let want = (end - at).min(chunk);
                let (buf, file, path) = tokio::task::spawn_blocking(move || {
                    let mut buf = Vec::with_capacity(want as usize);
                    file.seek(SeekFrom::Start(at))
                        .and_then(|_| (&mut file).take(want).read_to_end(&mut buf))
                        .map_err(|e| io_err("reading", &path, e))?;
                    if buf.is_empty() {
                        return Err(io_err(
                            "reading",
                            &path,
                            std::io::Error::new(
                                std::io::ErrorKind::UnexpectedEof,
                                format!("file ends at {at}, before byte {end} of its listing"),
                            ),
                        ));
                    }
                    Ok((buf, file, path))
                })
                .await
                .map_err(|e| object_store::Error::Generic {
                    store: "LocalFileSystem",
                    source: Box::new(e),
                })??;
                let next = at + buf.len() as u64;
                Ok(Some((Bytes::from(buf), (Some((file, path)), next))))
            })
            .boxed()
        }
        GetResultPayload::Stream(s) => s,
    }
}

/// Creates the parent folders of `path`; with `fsync`, flushes every folder whose entries
/// changed (each new folder's parent, up to the first folder that existed).
fn make_parents(path: &FsPath, fsync: bool) -> std::io::Result<()> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    if parent.is_dir() {
        return Ok(());
    }
    let mut missing = Vec::new();
    let mut p = parent;
    while !p.is_dir() {
        missing.push(p.to_path_buf());
        match p.parent() {
            Some(up) => p = up,
            None => break,
        }
    }
    std::fs::create_dir_all(parent)?;
    if fsync {
        for dir in missing.iter() {
            if let Some(up) = dir.parent() {
                fsync_dir(up)?;
            }
        }
    }
    Ok(())
}

/// The temp file `<dest>#<n>`.
fn staging_path(dest: &FsPath, n: u64) -> PathBuf {
    let mut p = dest.as_os_str().to_owned();
    p.push(format!("#{n}"));
    PathBuf::from(p)
}

/// Removes the temp file at `p` when no live writer holds it (its lock is free: the run that
/// made it was killed, or failed before cleaning up). True when `p` is gone afterwards.
fn remove_if_abandoned(p: &FsPath) -> bool {
    match OpenOptions::new().write(true).open(p) {
        Ok(f) => f.try_lock().is_ok() && std::fs::remove_file(p).is_ok(),
        Err(e) => e.kind() == std::io::ErrorKind::NotFound,
    }
}

/// A new temp file `<dest>#<n>` created with `mode` and locked until it is published or
/// dropped; abandoned temp files of `dest` found on the way are removed.
fn staged(dest: &FsPath, mode: u32, fsync: bool) -> std::io::Result<(File, PathBuf)> {
    make_parents(dest, fsync)?;
    let mut n = 1;
    loop {
        let p = staging_path(dest, n);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(mode)
            .open(&p)
        {
            // Another writer may have taken the new file for abandoned between its creation
            // and the lock (and removed it): then take the next name.
            Ok(f) if f.try_lock().is_ok() => return Ok((f, p)),
            Ok(_) => n += 1,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                if !remove_if_abandoned(&p) {
                    n += 1;
                }
            }
            Err(e) => return Err(e),
        }
    }
}

/// Flushes the temp file (when asked), renames it into place and flushes the folder. The file
/// (and its lock) is closed only after the rename, so no other writer takes it for abandoned.
fn publish(file: File, staged: &FsPath, dest: &FsPath, fsync: bool) -> std::io::Result<()> {
    if fsync {
        file.sync_all()?;
    }
    std::fs::rename(staged, dest)?;
    drop(file);
    if fsync && let Some(parent) = dest.parent() {
        fsync_dir(parent)?;
    }
    Ok(())
}

fn write_file(dest: PathBuf, payload: PutPayload, mode: u32, fsync: bool) -> Result<PutResult> {
    let (mut file, tmp) = staged(&dest, mode, fsync).map_err(|e| io_err("creating", &dest, e))?;
    let written: std::io::Result<()> = payload.iter().try_for_each(|c| file.write_all(c));
    let done = written.and_then(|_| publish(file, &tmp, &dest, fsync));
    if let Err(e) = done {
        let _ = std::fs::remove_file(&tmp);
        return Err(io_err("writing", &dest, e));
    }
    Ok(PutResult {
        e_tag: None,
        version: None,
        extensions: Default::default(),
    })
}

#[async_trait]
impl ObjectStore for ModeLocal {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        if !matches!(opts.mode, PutMode::Overwrite) {
            return self.inner.put_opts(location, payload, opts).await;
        }
        let dest = self.inner.path_to_filesystem(location)?;
        let (mode, fsync) = (self.mode, self.fsync);
        tokio::task::spawn_blocking(move || write_file(dest, payload, mode, fsync))
            .await
            .map_err(|e| object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(e),
            })?
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        _opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        let dest = self.inner.path_to_filesystem(location)?;
        let (mode, fsync) = (self.mode, self.fsync);
        let d = dest.clone();
        let (file, tmp) = tokio::task::spawn_blocking(move || staged(&d, mode, fsync))
            .await
            .map_err(|e| object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(e),
            })?
            .map_err(|e| io_err("creating", &dest, e))?;
        Ok(Box::new(Upload {
            file: Some(Arc::new(file)),
            tmp,
            dest,
            offset: 0,
            fsync,
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner.get_opts(location, options).await
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(location, ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        self.inner.delete_stream(locations)
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list_with_offset(prefix, offset)
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner.list_with_delimiter(prefix).await
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner.copy_opts(from, to, options).await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner.rename_opts(from, to, options).await
    }
}

/// A multipart upload into one temp file; parts are written at their offsets as they come.
#[derive(Debug)]
struct Upload {
    file: Option<Arc<File>>,
    tmp: PathBuf,
    dest: PathBuf,
    offset: u64,
    fsync: bool,
}

#[async_trait]
impl MultipartUpload for Upload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let offset = self.offset;
        self.offset += data.content_length() as u64;
        let file = self.file.clone();
        let dest = self.dest.clone();
        Box::pin(async move {
            let Some(file) = file else {
                return Err(io_err(
                    "writing",
                    &dest,
                    std::io::Error::other("upload already finished"),
                ));
            };
            tokio::task::spawn_blocking(move || {
                let mut at = offset;
                for chunk in data.iter() {
                    file.write_all_at(chunk, at)
                        .map_err(|e| io_err("writing", &dest, e))?;
                    at += chunk.len() as u64;
                }
                Ok(())
            })
            .await
            .map_err(|e| object_store::Error::Generic {
                store: "LocalFileSystem",
                source: Box::new(e),
            })?
        })
    }

    async fn complete(&mut self) -> Result<PutResult> {
        let file = self.file.take();
        let (tmp, dest, fsync) = (self.tmp.clone(), self.dest.clone(), self.fsync);
        tokio::task::spawn_blocking(move || {
            let file = file.and_then(|f| Arc::try_unwrap(f).ok()).ok_or_else(|| {
                io_err(
                    "completing",
                    &dest,
                    std::io::Error::other("parts still being written"),
                )
            })?;
            if let Err(e) = publish(file, &tmp, &dest, fsync) {
                let _ = std::fs::remove_file(&tmp);
                return Err(io_err("completing", &dest, e));
            }
            Ok(PutResult {
                e_tag: None,
                version: None,
                extensions: Default::default(),
            })
        })
        .await
        .map_err(|e| object_store::Error::Generic {
            store: "LocalFileSystem",
            source: Box::new(e),
        })?
    }

    async fn abort(&mut self) -> Result<()> {
        self.file = None;
        let _ = std::fs::remove_file(&self.tmp);
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use object_store::ObjectStoreExt;
    use std::os::unix::fs::PermissionsExt;

    #[tokio::test]
    async fn files_get_the_mode_and_no_temp_file_is_left() {
        let dir = tempfile::tempdir().unwrap();
        let s = ModeLocal::new(
            LocalFileSystem::new_with_prefix(dir.path()).unwrap(),
            0o600,
            true,
        );
        s.put(&Path::from("r/ab/cd"), PutPayload::from("x"))
            .await
            .unwrap();
        let mut up = s.put_multipart(&Path::from("r/ab/big")).await.unwrap();
        up.put_part(PutPayload::from("12")).await.unwrap();
        up.put_part(PutPayload::from("34")).await.unwrap();
        up.complete().await.unwrap();
        for (f, want) in [("cd", "x"), ("big", "1234")] {
            let p = dir.path().join("r/ab").join(f);
            assert_eq!(std::fs::read_to_string(&p).unwrap(), want);
            let mode = std::fs::metadata(&p).unwrap().permissions().mode() & 0o777;
            assert_eq!(mode, 0o600, "{f}");
        }
        assert_eq!(
            std::fs::read_dir(dir.path().join("r/ab")).unwrap().count(),
            2
        );
    }

    #[tokio::test]
    async fn a_killed_writers_temp_file_is_removed_by_the_next_write_a_live_ones_kept() {
        let dir = tempfile::tempdir().unwrap();
        let folder = dir.path().join("r");
        std::fs::create_dir_all(&folder).unwrap();
        // `#1`: left by a killed run (no lock); `#2`: a live writer's (locked).
        std::fs::write(folder.join("obj#1"), "torn").unwrap();
        let live = File::create(folder.join("obj#2")).unwrap();
        live.lock().unwrap();
        let s = ModeLocal::new(
            LocalFileSystem::new_with_prefix(dir.path()).unwrap(),
            DEFAULT_MODE,
            false,
        );
        s.put(&Path::from("r/obj"), PutPayload::from("whole"))
            .await
            .unwrap();
        let mut names: Vec<String> = std::fs::read_dir(&folder)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        names.sort();
        assert_eq!(names, ["obj", "obj#2"]);
        assert_eq!(
            std::fs::read_to_string(folder.join("obj")).unwrap(),
            "whole"
        );
    }
}
