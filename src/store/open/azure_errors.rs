//! Azure errors that say which account and container refused, and why, in one line.
//!
//! object_store's Azure client reports a refused request as `Generic MicrosoftAzure error: ...
//! Server returned non-2xx status code: 403 Forbidden: <?xml ...>`, and for SAS requests it leaves
//! the URL out (the SAS is in the query; `AzureConfig::sensitive_request` in
//! object_store 0.14 `src/azure/client.rs`). ferry keeps only an error's first line, which would
//! be the XML declaration, so the account, the container and the service's own reason were lost.
//! [`Named`] forwards every call to the Azure store and rewrites its errors as
//! `account A, container C: 403 Forbidden AuthenticationFailed: <Message> (<detail>)`, taking
//! `Code`, `Message` and `AuthenticationErrorDetail` from the error body Azure Storage (and
//! Azurite, `src/blob/errors/StorageErrorFactory.ts`) sends. The variant is kept, so ferry's kind
//! mapping (`store::map_error`) still sees `NotFound`, `Precondition`, `403` and so on.

use std::fmt;
use std::ops::Range;

use async_trait::async_trait;
use bytes::Bytes;
use futures::StreamExt;
use futures::stream::BoxStream;
use object_store::path::Path;
use object_store::{
    CopyOptions, Error, GetOptions, GetResult, ListResult, MultipartUpload, ObjectMeta,
    ObjectStore, PutMultipartOptions, PutOptions, PutPayload, PutResult, RenameOptions, Result,
    UploadPart,
};

/// An Azure store whose errors name the account and container.
#[derive(Debug)]
pub struct Named<T> {
    inner: T,
    place: String,
}

impl<T> Named<T> {
    pub fn new(inner: T, account: &str, container: &str) -> Named<T> {
        Named {
            inner,
            place: format!("account {account}, container {container}"),
        }
    }
}

impl<T: fmt::Display> fmt::Display for Named<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} ({})", self.inner, self.place)
    }
}

/// The text of `e` and its sources, with an Azure XML error body reduced to its fields.
fn describe(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        cur = err.source();
    }
    let mut joined = parts.join(": ");
    if joined.contains("invalid peer certificate") || joined.contains("certificate verify failed") {
        joined.push_str(
            " (the endpoint's TLS certificate is not trusted: give its CA with ca_file or \
             REQUESTS_CA_BUNDLE)",
        );
    }
    let Some(xml_at) = joined.find("<?xml") else {
        return joined.replace('\n', " ");
    };
    let (head, xml) = joined.split_at(xml_at);
    let field = |name: &str| {
        let open = format!("<{name}>");
        let close = format!("</{name}>");
        let start = xml.find(&open)? + open.len();
        let end = xml[start..].find(&close)? + start;
        let v = xml[start..end].split('\n').next().unwrap_or("").trim();
        (!v.is_empty()).then(|| v.to_string())
    };
    let mut out = head.trim_end().trim_end_matches(':').to_string();
    if let Some(code) = field("Code") {
        out.push_str(&format!(" {code}"));
    }
    if let Some(msg) = field("Message") {
        out.push_str(&format!(": {msg}"));
    }
    if let Some(detail) = field("AuthenticationErrorDetail") {
        out.push_str(&format!(" ({detail})"));
    }
    out
}

impl<T> Named<T> {
    fn err(&self, e: Error) -> Error {
        let wrap = |source: &(dyn std::error::Error + 'static)| -> Box<
            dyn std::error::Error + Send + Sync,
        > { format!("{}: {}", self.place, describe(source)).into() };
        match e {
            Error::Generic { store, source } => Error::Generic {
                store,
                source: wrap(source.as_ref()),
            },
            Error::PermissionDenied { path, source } => Error::PermissionDenied {
                path,
                source: wrap(source.as_ref()),
            },
            Error::Unauthenticated { path, source } => Error::Unauthenticated {
                path,
                source: wrap(source.as_ref()),
            },
            other => other,
        }
    }
}

#[async_trait]
#[deny(clippy::missing_trait_methods)]
impl<T: ObjectStore> ObjectStore for Named<T> {
    async fn put_opts(
        &self,
        location: &Path,
        payload: PutPayload,
        opts: PutOptions,
    ) -> Result<PutResult> {
        self.inner
            .put_opts(location, payload, opts)
            .await
            .map_err(|e| self.err(e))
    }

    async fn put_multipart_opts(
        &self,
        location: &Path,
        opts: PutMultipartOptions,
    ) -> Result<Box<dyn MultipartUpload>> {
        let up = self
            .inner
            .put_multipart_opts(location, opts)
            .await
            .map_err(|e| self.err(e))?;
        Ok(Box::new(NamedUpload {
            inner: up,
            place: self.place.clone(),
        }))
    }

    async fn get_opts(&self, location: &Path, options: GetOptions) -> Result<GetResult> {
        self.inner
            .get_opts(location, options)
            .await
            .map_err(|e| self.err(e))
    }

    async fn get_ranges(&self, location: &Path, ranges: &[Range<u64>]) -> Result<Vec<Bytes>> {
        self.inner
            .get_ranges(location, ranges)
            .await
            .map_err(|e| self.err(e))
    }

    fn delete_stream(
        &self,
        locations: BoxStream<'static, Result<Path>>,
    ) -> BoxStream<'static, Result<Path>> {
        let place = self.place.clone();
        self.inner
            .delete_stream(locations)
            .map(move |r| r.map_err(|e| rename(&place, e)))
            .boxed()
    }

    fn list(&self, prefix: Option<&Path>) -> BoxStream<'static, Result<ObjectMeta>> {
        let place = self.place.clone();
        self.inner
            .list(prefix)
            .map(move |r| r.map_err(|e| rename(&place, e)))
            .boxed()
    }

    fn list_with_offset(
        &self,
        prefix: Option<&Path>,
        offset: &Path,
    ) -> BoxStream<'static, Result<ObjectMeta>> {
        let place = self.place.clone();
        self.inner
            .list_with_offset(prefix, offset)
            .map(move |r| r.map_err(|e| rename(&place, e)))
            .boxed()
    }

    async fn list_with_delimiter(&self, prefix: Option<&Path>) -> Result<ListResult> {
        self.inner
            .list_with_delimiter(prefix)
            .await
            .map_err(|e| self.err(e))
    }

    async fn copy_opts(&self, from: &Path, to: &Path, options: CopyOptions) -> Result<()> {
        self.inner
            .copy_opts(from, to, options)
            .await
            .map_err(|e| self.err(e))
    }

    async fn rename_opts(&self, from: &Path, to: &Path, options: RenameOptions) -> Result<()> {
        self.inner
            .rename_opts(from, to, options)
            .await
            .map_err(|e| self.err(e))
    }
}

fn rename(place: &str, e: Error) -> Error {
    Named {
        inner: (),
        place: place.to_string(),
    }
    .err(e)
}

#[derive(Debug)]
struct NamedUpload {
    inner: Box<dyn MultipartUpload>,
    place: String,
}

#[async_trait]
impl MultipartUpload for NamedUpload {
    fn put_part(&mut self, data: PutPayload) -> UploadPart {
        let place = self.place.clone();
        let fut = self.inner.put_part(data);
        Box::pin(async move { fut.await.map_err(|e| rename(&place, e)) })
    }

    async fn complete(&mut self) -> Result<PutResult> {
        let r = self.inner.complete().await;
        r.map_err(|e| rename(&self.place, e))
    }

    async fn abort(&mut self) -> Result<()> {
        let r = self.inner.abort().await;
        r.map_err(|e| rename(&self.place, e))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_azure_error_body_becomes_one_line() {
        let body = "Error performing list request: Server returned non-2xx status code: 403 \
                    Forbidden: <?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"yes\"?>\n<Error>\
                    <Code>AuthenticationFailed</Code><Message>Server failed to authenticate the \
                    request.\nRequestId:1</Message><AuthenticationErrorDetail>Signed expiry time \
                    [x] must be after signed start time</AuthenticationErrorDetail></Error>";
        let e: Box<dyn std::error::Error + Send + Sync> = body.into();
        let n = Named::new((), "acct", "box");
        let out = n
            .err(Error::Generic {
                store: "MicrosoftAzure",
                source: e,
            })
            .to_string();
        assert!(
            out.contains("account acct, container box: Error performing list request"),
            "{out}"
        );
        assert!(out.contains("403 Forbidden AuthenticationFailed: Server failed to authenticate the request. (Signed expiry"), "{out}");
        assert!(!out.contains('\n') && !out.contains("<?xml"), "{out}");
    }
}
