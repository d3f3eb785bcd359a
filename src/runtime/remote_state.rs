//! State on an object store (`--state s3://bucket/prefix`, `gs://`, `az://`, `memory://`), so the
//! pods of a sharded run share nothing but a bucket. The journal machinery stays local: the run
//! works in a private local mirror, pulled from the store at the start and pushed back (changed
//! files, each as one whole object: a PUT is atomic, so the store never holds a half-written
//! journal) at every step boundary, at checkpoints (at most every few seconds) and at the end.
//! A run killed between two pushes re-does at most the work since the last one; the journal's
//! resume rules make that safe. `file://` URLs and plain folders are used in place, as before.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use bytes::Bytes;
use futures::TryStreamExt;

use super::error::{ErrorKind, FerryError, Result};
use super::journal::JOURNAL_FILE;
use super::lease::{self, Lease};
use super::state::write_atomic;
use crate::store::{OpenOptions, Store};

/// Checkpoints push at most this often; step boundaries always push.
const CHECKPOINT_PUSH_EVERY: Duration = Duration::from_secs(5);

/// Whether `--state` names an object store (pulled and pushed) rather than a local folder.
pub fn is_remote(state: &str) -> bool {
    state.contains("://") && !state.starts_with("file://")
}

/// A `file:///abs` state URL as a local folder (other text is already a folder).
pub fn local_folder(state: &str) -> PathBuf {
    PathBuf::from(state.strip_prefix("file://").unwrap_or(state))
}

type Job = Box<dyn FnOnce(&tokio::runtime::Runtime, &Store) + Send>;

/// A state location on an object store and its local mirror.
pub struct RemoteState {
    pub url: String,
    /// The private local mirror (removed when the run ends).
    pub local_root: PathBuf,
    jobs: Mutex<mpsc::Sender<Job>>,
    /// What was pushed last: file -> (size, mtime).
    pushed: Mutex<HashMap<PathBuf, (u64, SystemTime)>>,
    last_push: Mutex<Instant>,
    /// This run's lease on its state folder, renewed by the sync thread.
    lease: Arc<Mutex<Option<Lease>>>,
    /// Set by the sync thread when another run took the lease over.
    lost: Arc<Mutex<Option<FerryError>>>,
    /// Warnings from before logging starts (a lease taken over), for the run to log.
    pub notes: Mutex<Vec<String>>,
}

impl std::fmt::Debug for RemoteState {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "RemoteState({})", self.url)
    }
}

impl RemoteState {
    /// Opens the store on a thread of its own (with its own tokio runtime, so pushes work from
    /// the synchronous journal code of a running step) and creates the local mirror.
    pub fn open(url: &str) -> Result<RemoteState> {
        let (tx, rx) = mpsc::channel::<Job>();
        let (ready_tx, ready_rx) = mpsc::channel::<Result<()>>();
        let url_owned = url.to_string();
        let lease: Arc<Mutex<Option<Lease>>> = Arc::default();
        let lost: Arc<Mutex<Option<FerryError>>> = Arc::default();
        let (lease_t, lost_t) = (lease.clone(), lost.clone());
        std::thread::Builder::new()
            .name("ferry-state-sync".into())
            .spawn(move || {
                let rt = match tokio::runtime::Builder::new_current_thread()
                    .enable_all()
                    .build()
                {
                    Ok(rt) => rt,
                    Err(e) => {
                        let _ = ready_tx.send(Err(FerryError::new(
                            ErrorKind::Internal,
                            format!("state sync runtime: {e}"),
                        )));
                        return;
                    }
                };
                let store =
                    match rt.block_on(crate::store::open(&url_owned, &OpenOptions::default())) {
                        Ok(s) => s,
                        Err(e) => {
                            let _ = ready_tx.send(Err(e));
                            return;
                        }
                    };
                let _ = ready_tx.send(Ok(()));
                let mut renewed = Instant::now();
                loop {
                    let every = lease_t
                        .lock()
                        .ok()
                        .and_then(|l| l.as_ref().map(Lease::renew_every))
                        .unwrap_or(Duration::from_secs(3600));
                    // Woken at least 4 times a second, so a lease taken after the thread
                    // went to sleep is renewed in time too.
                    let wait = every
                        .saturating_sub(renewed.elapsed())
                        .min(Duration::from_millis(250));
                    match rx.recv_timeout(wait) {
                        Ok(job) => job(&rt, &store),
                        Err(mpsc::RecvTimeoutError::Timeout) => {}
                        Err(mpsc::RecvTimeoutError::Disconnected) => break,
                    }
                    if renewed.elapsed() >= every {
                        renewed = Instant::now();
                        renew_lease(&rt, &store, &lease_t, &lost_t);
                    }
                }
            })
            .map_err(|e| FerryError::io("starting the state sync thread", &e))?;
        ready_rx
            .recv()
            .map_err(|_| FerryError::new(ErrorKind::Internal, "state sync thread ended"))?
            .map_err(|mut e| {
                e.message = format!("--state {url}: {}", e.message);
                e
            })?;
        remove_stale_mirrors();
        let local_root = std::env::temp_dir().join(format!(
            "ferry-state-{}-{}",
            std::process::id(),
            uuid::Uuid::now_v7().simple()
        ));
        std::fs::create_dir_all(&local_root)
            .map_err(|e| FerryError::io(format!("creating {}", local_root.display()), &e))?;
        Ok(RemoteState {
            url: url.to_string(),
            local_root,
            jobs: Mutex::new(tx),
            pushed: Mutex::new(HashMap::new()),
            last_push: Mutex::new(Instant::now()),
            lease,
            lost,
            notes: Mutex::new(Vec::new()),
        })
    }

    /// Takes the lease of `folder` (see `lease.rs`) before this run reads its state, or refuses
    /// because another run holds it. Kept (renewed) until `release`.
    pub fn take_lease(&self, folder: &str) -> Result<()> {
        let folder = folder.to_string();
        let shown = self.url.clone();
        let (l, note) =
            self.call(move |rt, store| rt.block_on(Lease::acquire(store, &folder, &shown)))?;
        self.notes.lock().expect("notes").extend(note);
        *self.lease.lock().expect("lease") = Some(l);
        Ok(())
    }

    /// Gives the lease up (the end of the run).
    pub fn release(&self) {
        let Some(l) = self.lease.lock().expect("lease").take() else {
            return;
        };
        let _ = self.call(move |rt, store| {
            rt.block_on(l.release(store));
            Ok(())
        });
    }

    /// Runs `f` on the sync thread and waits for its result.
    fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&tokio::runtime::Runtime, &Store) -> Result<R> + Send + 'static,
    ) -> Result<R> {
        let (tx, rx) = mpsc::channel();
        let job: Job = Box::new(move |rt, store| {
            let _ = tx.send(f(rt, store));
        });
        self.jobs
            .lock()
            .map_err(|_| FerryError::new(ErrorKind::Internal, "state sync lock poisoned"))?
            .send(job)
            .map_err(|_| FerryError::new(ErrorKind::Internal, "state sync thread ended"))?;
        rx.recv()
            .map_err(|_| FerryError::new(ErrorKind::Internal, "state sync thread ended"))?
    }

    /// Downloads every object under `sub/` (the state root's own files when `sub` is empty) into
    /// the mirror. Returns how many objects there were.
    pub fn pull(&self, sub: &str) -> Result<usize> {
        let sub = sub.to_string();
        let root = self.local_root.clone();
        let files = self.call(move |rt, store| {
            rt.block_on(async {
                let mut entries: Vec<crate::store::Entry> = if sub.is_empty() {
                    store.list(None)?.try_collect().await?
                } else {
                    store.list(Some(&sub))?.try_collect().await?
                };
                // The root's own files: not those of the shards and the finalize run below it.
                entries.retain(|e| !sub.is_empty() || !is_shard_folder(first_segment(&e.key)));
                entries.retain(|e| !lease::is_lease_key(&e.key));
                let mut out = Vec::new();
                for e in entries {
                    let bytes = store.get(&e.key).await?;
                    out.push((e.key, bytes));
                }
                Ok::<_, FerryError>(out)
            })
        })?;
        let n = files.len();
        let mut pushed = self.pushed.lock().expect("pushed map");
        for (key, bytes) in files {
            let path = root.join(&key);
            write_atomic(&path, &bytes)?;
            if let Some(stamp) = stamp_of(&path) {
                pushed.insert(path, stamp);
            }
        }
        Ok(n)
    }

    /// Uploads the files of `sub/` changed since the last push. `force` is false for checkpoints,
    /// which push at most every few seconds.
    pub fn push(&self, sub: &str, force: bool) -> Result<()> {
        if let Some(e) = self.lost.lock().expect("lease").clone() {
            return Err(e);
        }
        {
            let mut last = self.last_push.lock().expect("push clock");
            if !force && last.elapsed() < CHECKPOINT_PUSH_EVERY {
                return Ok(());
            }
            *last = Instant::now();
        }
        let dir = if sub.is_empty() {
            self.local_root.clone()
        } else {
            self.local_root.join(sub)
        };
        let mut changed = Vec::new();
        {
            let pushed = self.pushed.lock().expect("pushed map");
            let mut files = Vec::new();
            collect_files(&dir, sub.is_empty(), &mut files);
            for path in files {
                let Some(stamp) = stamp_of(&path) else {
                    continue;
                };
                if pushed.get(&path) != Some(&stamp) {
                    changed.push((path, stamp));
                }
            }
        }
        // The journal goes last: whatever it says is done has its files in the store already.
        changed.sort_by_key(|(p, _)| p.file_name().is_some_and(|n| n == JOURNAL_FILE));
        for (path, stamp) in changed {
            let bytes = std::fs::read(&path)
                .map_err(|e| FerryError::io(format!("reading {}", path.display()), &e))?;
            let key = path
                .strip_prefix(&self.local_root)
                .unwrap_or(&path)
                .to_string_lossy()
                .into_owned();
            let k = key.clone();
            self.call(move |rt, store| rt.block_on(store.put(&k, Bytes::from(bytes))))
                .map_err(|mut e| {
                    e.message = format!("saving the state to {}: {}", self.url, e.message);
                    e
                })?;
            self.pushed.lock().expect("pushed map").insert(path, stamp);
        }
        Ok(())
    }

    /// The names of the shard folders in the store (`shard-I-of-N`, `finalize`).
    pub fn subdirs(&self) -> Result<Vec<String>> {
        self.call(|rt, store| {
            rt.block_on(async {
                let (_, dirs) = store.list_dir(None).await?;
                Ok(dirs
                    .into_iter()
                    .map(|d| {
                        d.trim_end_matches('/')
                            .rsplit('/')
                            .next()
                            .unwrap_or_default()
                            .to_string()
                    })
                    .collect())
            })
        })
    }
}

impl Drop for RemoteState {
    fn drop(&mut self) {
        self.release();
        let _ = std::fs::remove_dir_all(&self.local_root);
    }
}

/// Renews the lease on the sync thread; a lease taken over is recorded for the next push.
fn renew_lease(
    rt: &tokio::runtime::Runtime,
    store: &Store,
    lease: &Mutex<Option<Lease>>,
    lost: &Mutex<Option<FerryError>>,
) {
    let Ok(mut slot) = lease.lock() else {
        return;
    };
    let Some(l) = slot.as_mut() else {
        return;
    };
    match rt.block_on(l.renew(store)) {
        Ok(()) => {}
        Err(e) if e.kind == ErrorKind::Conflict => {
            tracing::error!("{}", e.message);
            *slot = None;
            if let Ok(mut lost) = lost.lock() {
                *lost = Some(e);
            }
        }
        // Unreachable for a moment: the next renewal tries again (the lease lasts 4 periods).
        Err(e) => tracing::warn!("renewing the run lease: {}", e.one_line()),
    }
}

/// Mirrors left behind by runs that were killed (their process is gone).
fn remove_stale_mirrors() {
    let Ok(rd) = std::fs::read_dir(std::env::temp_dir()) else {
        return;
    };
    for e in rd.flatten() {
        let name = e.file_name().to_string_lossy().into_owned();
        let Some(pid) = name
            .strip_prefix("ferry-state-")
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if cfg!(target_os = "linux") && !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

fn stamp_of(path: &Path) -> Option<(u64, SystemTime)> {
    let m = std::fs::metadata(path).ok()?;
    Some((m.len(), m.modified().ok()?))
}

fn first_segment(key: &str) -> &str {
    key.split('/').next().unwrap_or_default()
}

fn is_shard_folder(name: &str) -> bool {
    name == super::shard::FINALIZE_DIR || super::shard::parse_shard_dir(name).is_some()
}

/// Regular files under `dir`, recursively, without the lock file and temporaries (and, for the
/// state root, without the shard folders below it).
fn collect_files(dir: &Path, root: bool, out: &mut Vec<PathBuf>) {
    let Ok(rd) = std::fs::read_dir(dir) else {
        return;
    };
    for e in rd.flatten() {
        let p = e.path();
        let name = e.file_name().to_string_lossy().into_owned();
        if name == "lock" || name.starts_with('.') || (root && is_shard_folder(&name)) {
            continue;
        }
        match e.file_type() {
            Ok(t) if t.is_dir() => collect_files(&p, false, out),
            Ok(t) if t.is_file() => out.push(p),
            _ => {}
        }
    }
}

/// Every journal of a state location on an object store, for `ferry status`.
pub fn read_journals(url: &str) -> Result<Vec<super::shard::JournalView>> {
    let remote = RemoteState::open(url)?;
    let mut subs = vec![String::new()];
    subs.extend(remote.subdirs()?);
    let mut out = Vec::new();
    for sub in subs {
        let key = if sub.is_empty() {
            JOURNAL_FILE.to_string()
        } else {
            format!("{sub}/{JOURNAL_FILE}")
        };
        let k = key.clone();
        let bytes = remote.call(move |rt, store| {
            rt.block_on(async {
                match store.head(&k).await? {
                    None => Ok(None),
                    Some(_) => Ok(Some(store.get(&k).await?)),
                }
            })
        })?;
        if let Some(b) = bytes {
            let entries = String::from_utf8_lossy(&b)
                .lines()
                .filter_map(|l| serde_json::from_str(l).ok())
                .collect();
            out.push(super::shard::JournalView { name: sub, entries });
        }
    }
    Ok(out)
}
