//! Local filesystem operations with errors that name the path. Writes are atomic (temporary file
//! and rename) so an interrupted run never leaves a half-written file.

pub mod lua;

use std::path::{Path, PathBuf};

use sha2::{Digest, Sha256};
use tokio::io::AsyncReadExt;

use crate::runtime::error::{FerryError, Result};

#[derive(Debug, Clone)]
pub struct Entry {
    pub path: PathBuf,
    /// Path relative to the walked root, with `/` separators.
    pub rel: String,
    pub size: u64,
    pub is_dir: bool,
}

pub async fn read(path: &Path) -> Result<Vec<u8>> {
    tokio::fs::read(path).await.map_err(|e| {
        FerryError::io(format!("reading {}", path.display()), &e).with("path", path.display())
    })
}

pub async fn write(path: &Path, data: &[u8], append: bool) -> Result<()> {
    if append {
        use tokio::io::AsyncWriteExt;
        let mut f = tokio::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .await
            .map_err(|e| FerryError::io(format!("opening {}", path.display()), &e))?;
        f.write_all(data)
            .await
            .map_err(|e| FerryError::io(format!("appending to {}", path.display()), &e))?;
        return Ok(());
    }
    let path = path.to_path_buf();
    let data = data.to_vec();
    tokio::task::spawn_blocking(move || crate::runtime::state::write_atomic(&path, &data))
        .await
        .map_err(|e| FerryError::new(crate::runtime::error::ErrorKind::Internal, e.to_string()))?
}

pub async fn walk(root: &Path) -> Result<Vec<Entry>> {
    let root = root.to_path_buf();
    tokio::task::spawn_blocking(move || {
        let mut out = Vec::new();
        let mut stack = vec![root.clone()];
        while let Some(dir) = stack.pop() {
            let rd = std::fs::read_dir(&dir)
                .map_err(|e| FerryError::io(format!("listing {}", dir.display()), &e))?;
            for ent in rd {
                let ent =
                    ent.map_err(|e| FerryError::io(format!("listing {}", dir.display()), &e))?;
                let path = ent.path();
                let meta = ent
                    .metadata()
                    .map_err(|e| FerryError::io(format!("stat {}", path.display()), &e))?;
                let rel = path
                    .strip_prefix(&root)
                    .unwrap_or(&path)
                    .to_string_lossy()
                    .replace('\\', "/");
                if meta.is_dir() {
                    stack.push(path.clone());
                }
                out.push(Entry {
                    path,
                    rel,
                    size: if meta.is_dir() { 0 } else { meta.len() },
                    is_dir: meta.is_dir(),
                });
            }
        }
        out.sort_by(|a, b| a.rel.cmp(&b.rel));
        Ok(out)
    })
    .await
    .map_err(|e| FerryError::new(crate::runtime::error::ErrorKind::Internal, e.to_string()))?
}

pub async fn sha256(path: &Path) -> Result<String> {
    let mut f = tokio::fs::File::open(path)
        .await
        .map_err(|e| FerryError::io(format!("opening {}", path.display()), &e))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        let n = f
            .read(&mut buf)
            .await
            .map_err(|e| FerryError::io(format!("reading {}", path.display()), &e))?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex::encode(h.finalize()))
}

/// Copies a file through a temporary name in the destination folder and a rename.
pub async fn copy(src: &Path, dst: &Path) -> Result<u64> {
    if let Some(dir) = dst.parent() {
        tokio::fs::create_dir_all(dir)
            .await
            .map_err(|e| FerryError::io(format!("creating {}", dir.display()), &e))?;
    }
    let tmp = dst.with_file_name(format!(
        ".{}.ferry-tmp",
        dst.file_name().and_then(|n| n.to_str()).unwrap_or("file")
    ));
    let n = tokio::fs::copy(src, &tmp).await.map_err(|e| {
        FerryError::io(
            format!("copying {} to {}", src.display(), dst.display()),
            &e,
        )
    })?;
    tokio::fs::rename(&tmp, dst)
        .await
        .map_err(|e| FerryError::io(format!("renaming into {}", dst.display()), &e))?;
    Ok(n)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn write_walk_copy_hash() {
        let d = tempfile::tempdir().unwrap();
        let a = d.path().join("a/b/c.txt");
        tokio::fs::create_dir_all(a.parent().unwrap())
            .await
            .unwrap();
        write(&a, b"hello", false).await.unwrap();
        write(&a, b" world", true).await.unwrap();
        assert_eq!(read(&a).await.unwrap(), b"hello world");
        let entries = walk(d.path()).await.unwrap();
        let rels: Vec<&str> = entries.iter().map(|e| e.rel.as_str()).collect();
        assert_eq!(rels, vec!["a", "a/b", "a/b/c.txt"]);
        let copy_to = d.path().join("x/y.txt");
        assert_eq!(copy(&a, &copy_to).await.unwrap(), 11);
        assert_eq!(sha256(&a).await.unwrap(), sha256(&copy_to).await.unwrap());
        let missing = read(&d.path().join("nope")).await.unwrap_err();
        assert_eq!(missing.kind, crate::runtime::error::ErrorKind::NotFound);
        assert!(missing.message.contains("nope"));
    }
}
