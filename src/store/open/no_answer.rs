//! Timeouts that say where they happened. object_store's reqwest client strips the URL from its
//! transport errors (it names the request in its retry error, but not a body read cut by the
//! timeout), so a stalled server would end in "HTTP error: error sending request". This wrapper
//! around the store's [`HttpConnector`] gives every timeout of a request or of its answer's body
//! the host and port it was waiting for and the limits in force, keeping the error's kind
//! (`HttpErrorKind::Timeout`: retried when repeating the request is safe, and mapped to ferry's
//! `timeout` kind by [`crate::store::map_error`]). No query or path is shown: a SAS lives in the
//! query.

use std::time::Duration;

use http_body_util::BodyExt;
use object_store::ClientOptions;
use object_store::client::{
    HttpClient, HttpConnector, HttpError, HttpErrorKind, HttpRequest, HttpResponse,
    HttpResponseBody, HttpService,
};

/// The request limits, as shown in the message.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limits {
    pub connect: Duration,
    pub request: Duration,
}

/// Wraps the clients `C` makes with [`NoAnswerService`].
#[derive(Debug)]
pub(crate) struct NoAnswerConnector<C> {
    pub inner: C,
    pub limits: Limits,
}

impl<C: HttpConnector> HttpConnector for NoAnswerConnector<C> {
    fn connect(&self, options: &ClientOptions) -> object_store::Result<HttpClient> {
        Ok(HttpClient::new(NoAnswerService {
            inner: self.inner.connect(options)?,
            limits: self.limits,
        }))
    }
}

#[derive(Debug)]
pub(crate) struct NoAnswerService {
    inner: HttpClient,
    limits: Limits,
}

/// A timeout naming the host.
#[derive(Debug, thiserror::Error)]
#[error("timed out: no answer from {host} {what}")]
pub struct NoAnswer {
    host: String,
    what: String,
    #[source]
    source: HttpError,
}

fn named(host: &str, limits: Limits, e: HttpError) -> HttpError {
    if e.kind() != HttpErrorKind::Timeout {
        return e;
    }
    let connecting = std::error::Error::source(&e)
        .and_then(|s| s.downcast_ref::<reqwest::Error>())
        .is_some_and(reqwest::Error::is_connect);
    let what = if connecting {
        format!("within connect_timeout {:?}", limits.connect)
    } else {
        format!("within timeout {:?} (the whole request)", limits.request)
    };
    HttpError::new(
        HttpErrorKind::Timeout,
        NoAnswer {
            host: host.to_string(),
            what,
            source: e,
        },
    )
}

#[async_trait::async_trait]
impl HttpService for NoAnswerService {
    async fn call(&self, req: HttpRequest) -> Result<HttpResponse, HttpError> {
        let uri = req.uri();
        let host = match (uri.host(), uri.port_u16()) {
            (Some(h), Some(p)) => format!("{h}:{p}"),
            (Some(h), None) => h.to_string(),
            _ => "the server".to_string(),
        };
        let limits = self.limits;
        match self.inner.execute(req).await {
            Ok(r) => {
                let (parts, body) = r.into_parts();
                let body = HttpResponseBody::new(body.map_err(move |e| named(&host, limits, e)));
                Ok(HttpResponse::from_parts(parts, body))
            }
            Err(e) => Err(named(&host, limits, e)),
        }
    }
}
