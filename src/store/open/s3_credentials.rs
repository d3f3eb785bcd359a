//! S3 credentials that can be replaced while a store is in use.
//!
//! object_store asks its credential provider for a credential on every request it signs
//! (object_store `aws/client.rs`: `S3Client::request` -> `config.get_session_credential()`), so
//! a store built on this provider signs each later request, including the remaining parts and the
//! CompleteMultipartUpload of an upload already under way, with whatever was set last. That is
//! what short-lived credentials (STS session tokens, the one-hour keys of Astra's migration
//! bucket) need: a store opened once outlives them, and `store:set_credentials{...}` hands it the
//! fresh ones without restarting uploads.

use std::sync::{Arc, RwLock};

use object_store::CredentialProvider;
use object_store::aws::AwsCredential;

use crate::runtime::redact::add_secret;

/// The credentials of one S3 store, shared by every request it signs.
#[derive(Debug)]
pub struct UpdatableAwsCredentials {
    current: RwLock<Arc<AwsCredential>>,
}

impl UpdatableAwsCredentials {
    pub fn new(key_id: &str, secret_key: &str, token: Option<&str>) -> Arc<Self> {
        Arc::new(Self {
            current: RwLock::new(credential(key_id, secret_key, token)),
        })
    }

    /// Replaces the credentials: requests signed from now on use these. The secret and token are
    /// masked in every output from now on.
    pub fn set(&self, key_id: &str, secret_key: &str, token: Option<&str>) {
        let fresh = credential(key_id, secret_key, token);
        // A poisoned lock only means a panic elsewhere while holding it: the value is whole.
        let mut cur = self.current.write().unwrap_or_else(|e| e.into_inner());
        *cur = fresh;
    }

    /// The access key id in use (not secret; for messages and tests).
    pub fn key_id(&self) -> String {
        let cur = self.current.read().unwrap_or_else(|e| e.into_inner());
        cur.key_id.clone()
    }
}

fn credential(key_id: &str, secret_key: &str, token: Option<&str>) -> Arc<AwsCredential> {
    add_secret(secret_key);
    if let Some(t) = token {
        add_secret(t);
    }
    Arc::new(AwsCredential {
        key_id: key_id.to_string(),
        secret_key: secret_key.to_string(),
        token: token.map(str::to_string),
    })
}

#[async_trait::async_trait]
impl CredentialProvider for UpdatableAwsCredentials {
    type Credential = AwsCredential;

    async fn get_credential(&self) -> object_store::Result<Arc<AwsCredential>> {
        let cur = self.current.read().unwrap_or_else(|e| e.into_inner());
        Ok(cur.clone())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn set_replaces_what_the_next_request_gets() {
        let c = UpdatableAwsCredentials::new("AKIA1", "s1", Some("t1"));
        let shared: object_store::aws::AwsCredentialProvider = c.clone();
        assert_eq!(shared.get_credential().await.unwrap().key_id, "AKIA1");
        c.set("AKIA2", "s2", None);
        let now = shared.get_credential().await.unwrap();
        assert_eq!(
            (
                now.key_id.as_str(),
                now.secret_key.as_str(),
                now.token.clone()
            ),
            ("AKIA2", "s2", None)
        );
        assert_eq!(c.key_id(), "AKIA2");
    }
}
