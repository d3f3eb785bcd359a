//! Key layouts: a store wrapper that presents keys stored as `dir/ab/cdef...` (the first two
//! characters of the last segment as a folder, Seafile's filesystem backend) as `dir/abcdef...`,
//! the layout of Seafile's S3, OSS and Swift backends and of migrate.py's object list files. With
//! it, both sides of a copy, the list cache and verification all speak one key form.

use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;
use futures::stream::BoxStream;
use futures::{StreamExt, TryStreamExt};
use object_store::path::Path;
use object_store::{
    CopyOptions, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta, ObjectStore,
    PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
};

/// `repo/abcdef` (logical) <-> `repo/ab/cdef` (stored).
#[derive(Debug)]
pub struct Split2<T> {
    inner: T,
}

impl<T> Split2<T> {
    pub fn new(inner: T) -> Self {
        Split2 { inner }
    }
}

impl<T> std::fmt::Display for Split2<T>
where
    T: std::fmt::Display,
{
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Split2({})", self.inner)
    }
}

/// The stored path of a logical key.
pub fn to_stored(p: &Path) -> Path {
    let s = p.as_ref();
    let (dir, name) = match s.rsplit_once('/') {
        Some((d, n)) => (Some(d), n),
        None => (None, s),
    };
    if name.len() <= 2 || !name.is_char_boundary(2) {
        return p.clone();
    }
    let split = format!("{}/{}", &name[..2], &name[2..]);
    Path::from_iter(
        dir.into_iter()
            .flat_map(|d| d.split('/'))
            .chain(split.split('/'))
            .map(str::to_string)
            .collect::<Vec<_>>(),
    )
}

/// The logical key of a stored path (unchanged when it does not have the split form).
pub fn to_logical(p: Path) -> Path {
    let s = p.as_ref();
    let parts: Vec<&str> = s.split('/').collect();
    if parts.len() < 2 || parts[parts.len() - 2].len() != 2 {
        return p;
    }
    let n = parts.len();
    let joined = format!("{}{}", parts[n - 2], parts[n - 1]);
    Path::from_iter(
        parts[..n - 2]
            .iter()
            .map(|x| x.to_string())
            .chain(std::iter::once(joined)),
    )
}

fn logical_meta(m: ObjectMeta) -> ObjectMeta {
    ObjectMeta {
        location: to_logical(m.location),
        ..m
    }
}

#[async_trait]
impl<T: ObjectStore> ObjectStore for Split2<T> {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner
            .put_opts(&to_stored(location), payload, opts)
            .await
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        self.inner
            .put_multipart_opts(&to_stored(location), opts)
            .await
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let mut r = self.inner.get_opts(&to_stored(location), options).await?;
        r.meta = logical_meta(r.meta);
        Ok(r)
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner.get_ranges(&to_stored(location), ranges).await
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let stored = locations.map_ok(|p| to_stored(&p)).boxed();
        self.inner.delete_stream(stored).map_ok(to_logical).boxed()
    }

    /// Prefixes are folder-level (`repo_id`), above the split.
    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner.list(prefix).map_ok(logical_meta).boxed()
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.inner
            .list_with_offset(prefix, &to_stored(offset))
            .map_ok(logical_meta)
            .boxed()
    }

    /// One level of the logical view: the objects directly below `prefix` are the contents of
    /// its two-character folders.
    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let level = self.inner.list_with_delimiter(prefix).await?;
        let mut objects: Vec<ObjectMeta> = level.objects.into_iter().map(logical_meta).collect();
        let mut common_prefixes = Vec::new();
        for p in level.common_prefixes {
            let is_split = p.filename().is_some_and(|n| n.len() == 2);
            if is_split {
                let inner = self.inner.list_with_delimiter(Some(&p)).await?;
                objects.extend(inner.objects.into_iter().map(logical_meta));
            } else {
                common_prefixes.push(p);
            }
        }
        Ok(ListResult {
            common_prefixes,
            objects,
            extensions: level.extensions,
        })
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner
            .copy_opts(&to_stored(from), &to_stored(to), options)
            .await
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner
            .rename_opts(&to_stored(from), &to_stored(to), options)
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_map_both_ways() {
        let logical = Path::from(
            "3f9e4aa5-d6ba-4066-a1d6-81824f422af1/0ae2c82d9ebd7e166ca0e24d52bba31fd64e3c8d",
        );
        let stored = to_stored(&logical);
        assert_eq!(
            stored.as_ref(),
            "3f9e4aa5-d6ba-4066-a1d6-81824f422af1/0a/e2c82d9ebd7e166ca0e24d52bba31fd64e3c8d"
        );
        assert_eq!(to_logical(stored), logical);
        // Names that are not in the split form pass through.
        assert_eq!(
            to_logical(Path::from("repo/tmpXyZ")).as_ref(),
            "repo/tmpXyZ"
        );
    }

    #[tokio::test]
    async fn lists_and_reads_the_logical_view() {
        use object_store::ObjectStoreExt;
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(dir.path().join("repo/ab")).unwrap();
        std::fs::write(dir.path().join("repo/ab/cdef"), b"x").unwrap();
        let s =
            Split2::new(object_store::local::LocalFileSystem::new_with_prefix(dir.path()).unwrap());
        let keys: Vec<String> = s
            .list(None)
            .map_ok(|m| m.location.to_string())
            .try_collect()
            .await
            .unwrap();
        assert_eq!(keys, vec!["repo/abcdef"]);
        assert_eq!(
            s.get(&Path::from("repo/abcdef"))
                .await
                .unwrap()
                .bytes()
                .await
                .unwrap(),
            "x"
        );
        s.put(&Path::from("repo/12345"), PutPayload::from("y"))
            .await
            .unwrap();
        assert!(dir.path().join("repo/12/345").exists());
        let level = s
            .list_with_delimiter(Some(&Path::from("repo")))
            .await
            .unwrap();
        assert_eq!(level.objects.len(), 2);
    }
}
