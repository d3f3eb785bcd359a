//! `ObjectStore` for [`GcsJson`]: listing, reads, writes, copies and deletes through the JSON API.

use super::*;

impl GcsJson {
    fn list_stream(
        &self,
        prefix: Option<&Path>,
        offset: Option<&Path>,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        let inner = self.inner.clone();
        let prefix = prefix.map(|p| format!("{p}/")).unwrap_or_default();
        let offset = offset.map(|o| o.to_string());
        // State: (next page token, first page?)
        stream::try_unfold((None::<String>, true), move |(token, first)| {
            let inner = inner.clone();
            let prefix = prefix.clone();
            let offset = offset.clone();
            async move {
                if !first && token.is_none() {
                    return Ok::<_, object_store::Error>(None);
                }
                let page = inner
                    .list_page(&prefix, false, token.as_deref(), offset.as_deref())
                    .await
                    .map_err(|e| list_err(&inner.bucket, e))?;
                let mut metas = Vec::new();
                for item in page
                    .get("items")
                    .and_then(Value::as_array)
                    .into_iter()
                    .flatten()
                {
                    let m = object_meta(item).map_err(|e| to_os(&prefix, e))?;
                    // startOffset is inclusive; object_store's offset is exclusive.
                    if offset.as_deref() != Some(m.location.as_ref()) {
                        metas.push(Ok(m));
                    }
                }
                let next = string_field(&page, "nextPageToken").filter(|t| !t.is_empty());
                Ok(Some((stream::iter(metas), (next, false))))
            }
        })
        .try_flatten()
        .boxed()
    }
}

/// A `multipart/related` upload body: the object resource (its name) and the bytes.
fn multipart_related(name: &str, data: &[u8]) -> (String, Bytes) {
    let boundary = format!("ferry-{}", uuid::Uuid::new_v4().simple());
    let meta = serde_json::json!({ "name": name }).to_string();
    let mut b = Vec::with_capacity(data.len() + meta.len() + 200);
    b.extend_from_slice(
        format!("--{boundary}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{meta}\r\n--{boundary}\r\nContent-Type: application/octet-stream\r\n\r\n")
            .as_bytes(),
    );
    b.extend_from_slice(data);
    b.extend_from_slice(format!("\r\n--{boundary}--\r\n").as_bytes());
    (
        format!("multipart/related; boundary={boundary}"),
        Bytes::from(b),
    )
}

#[async_trait]
impl ObjectStore for GcsJson {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        let gen_match = generation_match(location, &opts.mode)?;
        let mut url = url::Url::parse(&self.inner.upload_url()).map_err(|e| {
            object_store::Error::Generic {
                store: STORE,
                source: Box::new(e),
            }
        })?;
        let data: Bytes = payload.into();
        // Conditional writes go as a multipart upload (metadata + media in one request): real
        // GCS honours `ifGenerationMatch` on both, fake-gcs-server only on multipart (its media
        // handler ignores preconditions), and the run lease depends on it.
        let (content_type, body) = match &gen_match {
            None => {
                url.query_pairs_mut()
                    .append_pair("uploadType", "media")
                    .append_pair("name", location.as_ref());
                ("application/octet-stream".to_string(), data)
            }
            Some(g) => {
                url.query_pairs_mut()
                    .append_pair("uploadType", "multipart")
                    .append_pair("ifGenerationMatch", g);
                multipart_related(location.as_ref(), &data)
            }
        };
        let url = url.to_string();
        let i = &self.inner;
        let v = i
            .send_json(gen_match.is_none(), || {
                i.http
                    .post(&url)
                    .header(reqwest::header::CONTENT_TYPE, content_type.clone())
                    .header(reqwest::header::CONTENT_LENGTH, body.len())
                    .body(body.clone())
            })
            .await
            .map_err(|e| match (to_os(location.as_ref(), e), &opts.mode) {
                (object_store::Error::Precondition { path, source }, PutMode::Create) => {
                    object_store::Error::AlreadyExists { path, source }
                }
                (other, _) => other,
            })?;
        Ok(put_result(&v))
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        _opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        let up = crate::store::gcs_upload::Resumable::start(self.inner.clone(), location).await?;
        Ok(Box::new(up))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        let i = &self.inner;
        let meta = match &options.version {
            None => i.metadata(location.as_ref()).await,
            Some(g) => {
                let url = format!(
                    "{}?generation={}",
                    i.object_url(location.as_ref()),
                    encode(g)
                );
                i.send_json(true, || i.http.get(&url))
                    .await
                    .and_then(|v| object_meta(&v))
            }
        }
        .map_err(|e| to_os(location.as_ref(), e))?;
        options.check_preconditions(&meta)?;
        let range = match &options.range {
            Some(r) => r
                .as_range(meta.size)
                .map_err(|e| object_store::Error::Generic {
                    store: STORE,
                    source: Box::new(e),
                })?,
            None => 0..meta.size,
        };
        if options.head || range.is_empty() {
            return Ok(GetResult {
                payload: GetResultPayload::Stream(stream::empty().boxed()),
                meta,
                range,
                attributes: Default::default(),
                extensions: Default::default(),
            });
        }
        // Read the generation just described, so a concurrent overwrite cannot mix two versions.
        let generation = meta.version.clone().unwrap_or_default();
        let mut url = format!("{}?alt=media", i.object_url(location.as_ref()));
        if !generation.is_empty() {
            url.push_str(&format!("&generation={}", encode(&generation)));
        }
        let body = i
            .media_stream(url, range.clone(), meta.size, location.to_string())
            .await?;
        Ok(GetResult {
            payload: GetResultPayload::Stream(body),
            meta,
            range,
            attributes: Default::default(),
            extensions: Default::default(),
        })
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let inner = self.inner.clone();
        locations
            .map(move |p| {
                let inner = inner.clone();
                async move {
                    let p = p?;
                    let url = inner.object_url(p.as_ref());
                    inner
                        .send(true, || inner.http.delete(&url))
                        .await
                        .map_err(|e| to_os(p.as_ref(), e))?;
                    Ok(p)
                }
            })
            .buffered(16)
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        self.list_stream(prefix, None)
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        self.list_stream(prefix, Some(offset))
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        let prefix = prefix.map(|p| format!("{p}/")).unwrap_or_default();
        let (mut objects, mut common_prefixes) = (Vec::new(), Vec::new());
        let mut token: Option<String> = None;
        loop {
            let page = self
                .inner
                .list_page(&prefix, true, token.as_deref(), None)
                .await
                .map_err(|e| list_err(&self.inner.bucket, e))?;
            for item in page
                .get("items")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                objects.push(object_meta(item).map_err(|e| to_os(&prefix, e))?);
            }
            for p in page
                .get("prefixes")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
            {
                if let Some(s) = p.as_str() {
                    common_prefixes.push(Path::parse(s.trim_end_matches('/'))?);
                }
            }
            token = string_field(&page, "nextPageToken").filter(|t| !t.is_empty());
            if token.is_none() {
                break;
            }
        }
        Ok(ListResult {
            common_prefixes,
            objects,
            extensions: Default::default(),
        })
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        let i = &self.inner;
        let create = matches!(options.mode, CopyMode::Create);
        let base = format!(
            "{}/rewriteTo/b/{}/o/{}",
            i.object_url(from.as_ref()),
            encode(&i.bucket),
            encode(to.as_ref())
        );
        let mut token: Option<String> = None;
        loop {
            let mut url = url::Url::parse(&base).map_err(|e| object_store::Error::Generic {
                store: STORE,
                source: Box::new(e),
            })?;
            if create {
                url.query_pairs_mut().append_pair("ifGenerationMatch", "0");
            }
            if let Some(t) = &token {
                url.query_pairs_mut().append_pair("rewriteToken", t);
            }
            let url = url.to_string();
            let v = i
                .send_json(!create, || {
                    i.http
                        .post(&url)
                        .header(reqwest::header::CONTENT_LENGTH, 0)
                        .body(Bytes::new())
                })
                .await
                .map_err(|e| match to_os(from.as_ref(), e) {
                    object_store::Error::Precondition { source, .. } if create => {
                        object_store::Error::AlreadyExists {
                            path: to.to_string(),
                            source,
                        }
                    }
                    other => other,
                })?;
            if v.get("done").and_then(Value::as_bool).unwrap_or(false) {
                return Ok(());
            }
            token = string_field(&v, "rewriteToken");
            if token.is_none() {
                return Err(object_store::Error::Generic {
                    store: STORE,
                    source: format!(
                        "copying {from} -> {to}: GCS said not done but gave no rewriteToken"
                    )
                    .into(),
                });
            }
        }
    }
}
