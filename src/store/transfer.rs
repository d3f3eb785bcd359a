//! Moving whole objects between a store and local files: `get_file` and `put_file` of a store
//! handle (the Lua side only converts arguments, in `store/lua`).

use std::path::PathBuf;

use futures::StreamExt;
use object_store::{ObjectStoreExt, PutPayload, WriteMultipart};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::Store;
use crate::runtime::error::{FerryError, Result};

/// Streams an object into a local file through a temporary file and a rename. The temporary file
/// is unique in the destination folder (`.NAME.XXXXXX.ferry-part`: downloads of `x.zip` and
/// `x.json` side by side never share it) and is removed when the download fails.
pub async fn download(store: &Store, key: &str, path: &std::path::Path) -> Result<u64> {
    let p = store.path(key)?;
    let r = store
        .inner
        .get(&p)
        .await
        .map_err(|e| store.error("reading", key, e))?;
    let dir = match path.parent() {
        Some(d) if !d.as_os_str().is_empty() => d.to_path_buf(),
        _ => PathBuf::from("."),
    };
    tokio::fs::create_dir_all(&dir)
        .await
        .map_err(|e| FerryError::io(format!("creating {}", dir.display()), &e))?;
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let (file, tmp) = tempfile::Builder::new()
        .prefix(&format!(".{name}."))
        .suffix(".ferry-part")
        .tempfile_in(&dir)
        .map_err(|e| FerryError::io(format!("writing a temporary file in {}", dir.display()), &e))?
        .into_parts();
    let shown = tmp.display().to_string();
    let mut f = tokio::fs::File::from_std(file);
    let mut n = 0u64;
    let mut stream = r.into_stream();
    while let Some(chunk) = stream.next().await {
        let chunk = chunk.map_err(|e| store.error("reading", key, e))?;
        n += chunk.len() as u64;
        f.write_all(&chunk)
            .await
            .map_err(|e| FerryError::io(format!("writing {shown}"), &e))?;
    }
    f.sync_all()
        .await
        .map_err(|e| FerryError::io(format!("writing {shown}"), &e))?;
    drop(f);
    // A rename in one folder: metadata only, fine on the async thread.
    tmp.persist(path)
        .map_err(|e| FerryError::io(format!("renaming into {}", path.display()), &e.error))?;
    Ok(n)
}

/// Uploads a local file: one PUT up to `threshold`, a streamed multipart upload above it.
pub async fn upload(
    store: &Store,
    path: &std::path::Path,
    key: &str,
    threshold: u64,
) -> Result<u64> {
    let dst = store.path(key)?;
    let mut f = tokio::fs::File::open(path)
        .await
        .map_err(|e| FerryError::io(format!("reading {}", path.display()), &e))?;
    let len = f
        .metadata()
        .await
        .map_err(|e| FerryError::io(format!("reading {}", path.display()), &e))?
        .len();
    if len <= threshold {
        let mut buf = Vec::with_capacity(len as usize);
        f.read_to_end(&mut buf)
            .await
            .map_err(|e| FerryError::io(format!("reading {}", path.display()), &e))?;
        store
            .inner
            .put(&dst, PutPayload::from(buf))
            .await
            .map_err(|e| store.error("writing", key, e))?;
        return Ok(len);
    }
    let up = store
        .inner
        .put_multipart(&dst)
        .await
        .map_err(|e| store.error("starting upload of", key, e))?;
    let mut w = WriteMultipart::new_with_chunk_size(up, 8 << 20);
    let mut buf = vec![0u8; 1 << 20];
    let r: Result<()> = async {
        loop {
            let n = f
                .read(&mut buf)
                .await
                .map_err(|e| FerryError::io(format!("reading {}", path.display()), &e))?;
            if n == 0 {
                break;
            }
            w.wait_for_capacity(4)
                .await
                .map_err(|e| store.error("uploading", key, e))?;
            w.write(&buf[..n]);
        }
        Ok(())
    }
    .await;
    if let Err(e) = r {
        let _ = w.abort().await;
        return Err(e);
    }
    w.finish()
        .await
        .map_err(|e| store.error("completing upload of", key, e))?;
    Ok(len)
}
