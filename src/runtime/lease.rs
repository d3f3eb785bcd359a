//! The lease that keeps two runs off one state on an object store (`--state s3://...`).
//!
//! A local state dir has its `lock` file; a state on a bucket is mirrored privately by every run,
//! so two pods (or an operator's laptop and a pod) could both resume the same journal and both
//! push it back. Each run's state folder (the root, `shard-I-of-N/` or `finalize/`) therefore holds
//! a lease object, [`LEASE_FILE`], written with conditional requests: created only if absent
//! (`PutMode::Create`: `If-None-Match: *` on S3, `ifGenerationMatch=0` on GCS), renewed and taken
//! over only if unchanged since read (`PutMode::Update` with the ETag/generation read). So of two
//! runs that start together exactly one wins, and a run whose lease was taken over learns it at its
//! next renewal and stops before it pushes again.
//!
//! A lease names its holder (host, pid) and when it expires (`expires`, unix seconds, from
//! the holder's clock: hosts need roughly synchronised clocks, as for S3 signing anyway). It is
//! renewed every quarter of its lifetime while the run lives and deleted when the run ends. After a
//! kill -9 the next run takes it over at once when the holder ran on the same host and its
//! process is gone, otherwise once it has expired.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use object_store::{ObjectStoreExt, PutMode, PutOptions, PutPayload, UpdateVersion};
use serde::{Deserialize, Serialize};

use super::error::{ErrorKind, FerryError, Result};
use crate::store::Store;

/// The lease object's name inside a run's state folder.
pub const LEASE_FILE: &str = "ferry-lease.json";

/// How long a lease lasts without renewal (`FERRY_STATE_LEASE_SECS` changes it, for tests and
/// for sites whose runs pause for long: a stopped container, a suspended laptop).
pub fn lifetime() -> Duration {
    let secs = std::env::var("FERRY_STATE_LEASE_SECS")
        .ok()
        .and_then(|v| v.parse::<u64>().ok())
        .filter(|s| *s >= 2)
        .unwrap_or(60);
    Duration::from_secs(secs)
}

/// What a lease object holds.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Holder {
    pub host: String,
    pub pid: u32,
    /// Unix seconds.
    pub since: u64,
    /// Unix seconds; renewed while the run lives.
    pub expires: u64,
}

impl Holder {
    fn describe(&self) -> String {
        format!("host {}, pid {}", self.host, self.pid)
    }
}

/// A lease this run holds.
#[derive(Debug)]
pub struct Lease {
    key: String,
    holder: Holder,
    version: UpdateVersion,
    ttl: Duration,
    /// Whether the store could do conditional writes at all (if not: warned, nothing held).
    pub enforced: bool,
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

pub fn this_host() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .map(|h| h.trim().to_string())
        .filter(|h| !h.is_empty())
        .unwrap_or_else(|| "unknown-host".into())
}

fn process_gone(pid: u32) -> bool {
    cfg!(target_os = "linux") && !std::path::Path::new(&format!("/proc/{pid}")).exists()
}

fn key_in(folder: &str) -> String {
    if folder.is_empty() {
        LEASE_FILE.to_string()
    } else {
        format!("{}/{LEASE_FILE}", folder.trim_end_matches('/'))
    }
}

/// Whether `key` (relative to the state root) is a lease object (never mirrored).
pub fn is_lease_key(key: &str) -> bool {
    key == LEASE_FILE || key.ends_with(&format!("/{LEASE_FILE}"))
}

fn version_of(r: &object_store::PutResult) -> UpdateVersion {
    UpdateVersion {
        e_tag: r.e_tag.clone(),
        version: r.version.clone(),
    }
}

fn body(h: &Holder) -> PutPayload {
    PutPayload::from(serde_json::to_vec_pretty(h).unwrap_or_default())
}

impl Lease {
    /// Takes the lease of `folder` (the state root when empty) for this run, or refuses with who
    /// holds it and when it expires. `shown` is the state location as the user gave it. The
    /// second value is a warning for the run's log (logging has not started yet).
    pub async fn acquire(
        store: &Store,
        folder: &str,
        shown: &str,
    ) -> Result<(Lease, Option<String>)> {
        let key = key_in(folder);
        let path = store.path(&key)?;
        let ttl = lifetime();
        let t = now();
        let holder = Holder {
            host: this_host(),
            pid: std::process::id(),
            since: t,
            expires: t + ttl.as_secs(),
        };
        let lease = |version, enforced| Lease {
            key: key.clone(),
            holder: holder.clone(),
            version,
            ttl,
            enforced,
        };
        let created = store
            .inner
            .put_opts(&path, body(&holder), PutOptions::from(PutMode::Create))
            .await;
        match created {
            Ok(r) => return Ok((lease(version_of(&r), true), None)),
            Err(object_store::Error::AlreadyExists { .. }) => {}
            Err(object_store::Error::NotImplemented { .. }) => {
                let note = format!(
                    "--state {shown}: the store cannot write conditionally, so nothing keeps a \
                     second run off this state; make sure only one run uses it"
                );
                let none = UpdateVersion {
                    e_tag: None,
                    version: None,
                };
                return Ok((lease(none, false), Some(note)));
            }
            Err(e) => return Err(store.error("taking the run lease", &key, e)),
        }
        // Somebody holds it, or held it and was killed: read who, and when it ends.
        let got = store
            .inner
            .get(&path)
            .await
            .map_err(|e| store.error("reading the run lease", &key, e))?;
        let version = UpdateVersion {
            e_tag: got.meta.e_tag.clone(),
            version: got.meta.version.clone(),
        };
        let bytes = got
            .bytes()
            .await
            .map_err(|e| store.error("reading the run lease", &key, e))?;
        let old: Option<Holder> = serde_json::from_slice(&bytes).ok();
        let reason = match &old {
            None => Some("it is unreadable".to_string()),
            Some(h) if h.expires <= t => Some(format!("it expired {} s ago", t - h.expires)),
            Some(h) if h.host == holder.host && h.pid != holder.pid && process_gone(h.pid) => {
                Some(format!("process {} on this host is gone", h.pid))
            }
            Some(_) => None,
        };
        let Some(reason) = reason else {
            let h = old.expect("a live holder");
            return Err(FerryError::new(
                ErrorKind::Conflict,
                format!(
                    "another ferry run holds the state {shown}{} ({}, since {} s ago; its lease \
                     expires in {} s unless renewed): two runs on one state would both write its \
                     journal. Wait for that run to end; if it was killed on another host, run \
                     again after its lease has expired",
                    if folder.is_empty() {
                        String::new()
                    } else {
                        format!(" ({folder})")
                    },
                    h.describe(),
                    t.saturating_sub(h.since),
                    h.expires.saturating_sub(t),
                ),
            ));
        };
        let r = store
            .inner
            .put_opts(
                &path,
                body(&holder),
                PutOptions::from(PutMode::Update(version)),
            )
            .await
            .map_err(|e| match e {
                object_store::Error::Precondition { .. } => FerryError::new(
                    ErrorKind::Conflict,
                    format!(
                        "another ferry run took over the state {shown} at the same moment; \
                         wait for it to end"
                    ),
                ),
                e => store.error("taking over the run lease", &key, e),
            })?;
        let note = format!(
            "--state {shown}: took over the lease of an earlier run ({}) because {reason}",
            old.map(|h| h.describe())
                .unwrap_or_else(|| "unknown holder".into())
        );
        Ok((lease(version_of(&r), true), Some(note)))
    }

    /// How often to renew.
    pub fn renew_every(&self) -> Duration {
        self.ttl / 4
    }

    /// Extends the lease; fails (kind `conflict`) when another run has taken it over meanwhile.
    pub async fn renew(&mut self, store: &Store) -> Result<()> {
        if !self.enforced {
            return Ok(());
        }
        self.holder.expires = now() + self.ttl.as_secs();
        let path = store.path(&self.key)?;
        let r = store
            .inner
            .put_opts(
                &path,
                body(&self.holder),
                PutOptions::from(PutMode::Update(self.version.clone())),
            )
            .await;
        match r {
            Ok(r) => {
                self.version = version_of(&r);
                Ok(())
            }
            Err(object_store::Error::Precondition { .. })
            | Err(object_store::Error::NotFound { .. }) => Err(lost(&self.key)),
            Err(e) => Err(store.error("renewing the run lease", &self.key, e)),
        }
    }

    /// Gives the lease up at the end of the run (only if it is still this run's).
    pub async fn release(&self, store: &Store) {
        if !self.enforced {
            return;
        }
        let Ok(path) = store.path(&self.key) else {
            return;
        };
        let ours = match store.inner.get(&path).await {
            Ok(g) => g.meta.e_tag == self.version.e_tag || self.version.e_tag.is_none(),
            Err(_) => false,
        };
        if ours {
            let _ = store.inner.delete(&path).await;
        }
    }
}

/// The error of a run whose lease another run has taken over.
pub fn lost(key: &str) -> FerryError {
    FerryError::new(
        ErrorKind::Conflict,
        format!(
            "this run's lease on its state ({key}) was taken over by another ferry run (this run \
             could not renew it in time, or the other run broke it): stopping before this run \
             writes the state again. Check which run should go on; `ferry status` shows the \
             journal"
        ),
    )
}
