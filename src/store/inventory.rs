//! What the destination already has, from one listing or from a list cache file, and the cache
//! writer that appends every copied key as it lands.
//!
//! List cache format: one key per line, optionally followed by a tab and the size in bytes. Lines
//! without a size are what Seafile's migrate.py writes (`repo_id/obj_id`); they count as "exists".
//! A cache is built under `PATH.partial` and renamed when the listing is complete, so an
//! interrupted listing never leaves a cache that looks whole.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use futures::StreamExt;

use super::Store;
use crate::runtime::error::{FerryError, Result};

#[derive(Debug, Clone, Default)]
pub struct Known {
    pub size: Option<u64>,
    pub etag: Option<String>,
}

/// Destination keys → what is known of them.
#[derive(Debug, Default)]
pub struct Inventory {
    pub objects: HashMap<String, Known>,
    /// Where it came from: "listing" or "cache".
    pub source: &'static str,
}

impl Inventory {
    pub fn get(&self, key: &str) -> Option<&Known> {
        self.objects.get(key)
    }
}

fn parse_line(line: &str) -> Option<(String, Option<u64>)> {
    let line = line.trim_end_matches(['\r', '\n']);
    if line.is_empty() {
        return None;
    }
    if let Some((k, s)) = line.rsplit_once('\t')
        && let Ok(size) = s.parse::<u64>()
    {
        return Some((k.to_string(), Some(size)));
    }
    Some((line.to_string(), None))
}

pub fn format_line(key: &str, size: Option<u64>) -> String {
    match size {
        Some(s) => format!("{key}\t{s}\n"),
        None => format!("{key}\n"),
    }
}

/// Reads a list cache; `None` when it does not exist or is empty.
pub fn read_cache(path: &Path) -> Result<Option<Inventory>> {
    let f = match std::fs::File::open(path) {
        Ok(f) => f,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => {
            return Err(FerryError::io(
                format!("reading list cache {}", path.display()),
                &e,
            ));
        }
    };
    let mut objects = HashMap::new();
    for line in BufReader::new(f).lines() {
        let line =
            line.map_err(|e| FerryError::io(format!("reading list cache {}", path.display()), &e))?;
        if let Some((k, size)) = parse_line(&line) {
            objects.insert(k, Known { size, etag: None });
        }
    }
    if objects.is_empty() {
        return Ok(None);
    }
    Ok(Some(Inventory {
        objects,
        source: "cache",
    }))
}

/// Lists the destination once (optionally below `prefix`), writing the cache when asked. ETags
/// are kept only with `etags` (a checksum comparison reads them) and only when they are an MD5:
/// at a million keys the others were a fifth of the inventory's memory.
pub async fn list_destination(
    dst: &Store,
    prefix: Option<&str>,
    cache: Option<(&Path, bool)>,
    etags: bool,
) -> Result<Inventory> {
    let mut partial = match cache {
        Some((path, _)) => {
            let p = partial_path(path);
            if let Some(dir) = p.parent() {
                std::fs::create_dir_all(dir)
                    .map_err(|e| FerryError::io(format!("creating {}", dir.display()), &e))?;
            }
            Some((
                std::io::BufWriter::new(
                    std::fs::File::create(&p)
                        .map_err(|e| FerryError::io(format!("writing {}", p.display()), &e))?,
                ),
                p,
            ))
        }
        None => None,
    };
    let with_sizes = cache.map(|(_, s)| s).unwrap_or(true);
    let mut objects = HashMap::new();
    let mut stream = parallel_listing(dst, prefix).await?;
    while let Some(entry) = stream.next().await {
        let e = entry?;
        if let Some((w, p)) = partial.as_mut() {
            w.write_all(format_line(&e.key, with_sizes.then_some(e.size)).as_bytes())
                .map_err(|err| FerryError::io(format!("writing {}", p.display()), &err))?;
        }
        objects.insert(
            e.key,
            Known {
                size: Some(e.size),
                etag: e.etag.filter(|t| etags && super::etag_md5(t).is_some()),
            },
        );
    }
    if let (Some((mut w, p)), Some((path, _))) = (partial, cache) {
        w.flush()
            .map_err(|e| FerryError::io(format!("writing {}", p.display()), &e))?;
        drop(w);
        std::fs::rename(&p, path).map_err(|e| {
            FerryError::io(
                format!("renaming {} to {}", p.display(), path.display()),
                &e,
            )
        })?;
    }
    Ok(Inventory {
        objects,
        source: "listing",
    })
}

/// Folders listed at once by [`parallel_listing`].
const LISTING_CONCURRENCY: usize = 16;

/// Every object below `prefix`, listed folder by folder in parallel: one delimiter listing of
/// the first level, then one recursive listing per folder, 16 at a time. Object stores answer a
/// listing one page (1,000 keys) at a time, so listing folders side by side is what makes
/// "nothing to copy" fast on large destinations (rclone lists per folder too).
pub async fn parallel_listing(
    store: &Store,
    prefix: Option<&str>,
) -> Result<futures::stream::BoxStream<'static, Result<super::Entry>>> {
    let (top, folders) = store.list_dir(prefix).await?;
    let store = store.clone();
    let folders = futures::stream::iter(folders)
        .map(move |f| {
            let store = store.clone();
            async move {
                match store.list(Some(&f)) {
                    Ok(s) => s.collect::<Vec<_>>().await,
                    Err(e) => vec![Err(e)],
                }
            }
        })
        .buffer_unordered(LISTING_CONCURRENCY)
        .flat_map(futures::stream::iter);
    Ok(futures::stream::iter(top.into_iter().map(Ok))
        .chain(folders)
        .boxed())
}

fn partial_path(path: &Path) -> PathBuf {
    let mut s = path.as_os_str().to_owned();
    s.push(".partial");
    PathBuf::from(s)
}

/// Appends copied keys to the cache, one flushed line per object, so a crash loses none.
pub struct CacheWriter {
    file: Mutex<std::fs::File>,
    path: PathBuf,
    sizes: bool,
}

impl CacheWriter {
    pub fn open(path: &Path, sizes: bool) -> Result<CacheWriter> {
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir)
                .map_err(|e| FerryError::io(format!("creating {}", dir.display()), &e))?;
        }
        let file = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(|e| FerryError::io(format!("opening list cache {}", path.display()), &e))?;
        Ok(CacheWriter {
            file: Mutex::new(file),
            path: path.to_path_buf(),
            sizes,
        })
    }

    pub fn append(&self, key: &str, size: u64) -> Result<()> {
        let line = format_line(key, self.sizes.then_some(size));
        let mut f = self.file.lock().map_err(|_| {
            FerryError::new(
                crate::runtime::error::ErrorKind::Internal,
                "cache lock poisoned",
            )
        })?;
        // One write(2) per line on an O_APPEND file: lines never interleave, and the data is in
        // the kernel (it survives kill -9 of ferry) as soon as this returns.
        // A full disk can take part of the line (a write(2) crossing a block boundary): cut
        // the file back so no torn line names a key that was never copied.
        let before = f.metadata().map(|m| m.len());
        f.write_all(line.as_bytes()).map_err(|e| {
            if let Ok(len) = before {
                let _ = f.set_len(len);
            }
            FerryError::io(format!("appending to {}", self.path.display()), &e)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_with_and_without_sizes() {
        assert_eq!(
            parse_line("repo/abc\t42"),
            Some(("repo/abc".into(), Some(42)))
        );
        assert_eq!(
            parse_line("4c731e5c/0123abcd\n"),
            Some(("4c731e5c/0123abcd".into(), None))
        );
        assert_eq!(parse_line(""), None);
        assert_eq!(format_line("k", Some(1)), "k\t1\n");
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("cache");
        assert!(read_cache(&p).unwrap().is_none());
        let w = CacheWriter::open(&p, true).unwrap();
        w.append("a/b", 3).unwrap();
        w.append("c", 0).unwrap();
        let inv = read_cache(&p).unwrap().unwrap();
        assert_eq!(inv.get("a/b").unwrap().size, Some(3));
        assert_eq!(inv.objects.len(), 2);
    }
}
