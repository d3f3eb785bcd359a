//! A test server loop on its own thread and tokio runtime, so it keeps serving while a plain
//! `#[test]` waits on a `ferry` subprocess.

use std::time::Duration;

/// A server loop on its own thread and tokio runtime; stopped (and joined) by [`Background::stop`].
pub struct Background {
    shutdown: Option<tokio::sync::oneshot::Sender<()>>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Background {
    pub fn spawn<F, Fut>(name: &str, listener: std::net::TcpListener, serve: F) -> Background
    where
        F: FnOnce(tokio::net::TcpListener) -> Fut + Send + 'static,
        Fut: std::future::Future<Output = ()> + 'static,
    {
        let (tx, rx) = tokio::sync::oneshot::channel::<()>();
        let worker = format!("{name}-worker");
        let thread = std::thread::Builder::new()
            .name(name.to_string())
            .spawn(move || {
                let rt = tokio::runtime::Builder::new_multi_thread()
                    .worker_threads(2)
                    .thread_name(worker)
                    .enable_all()
                    .build()
                    .expect("test server runtime");
                rt.block_on(async move {
                    let listener =
                        tokio::net::TcpListener::from_std(listener).expect("tokio listener");
                    tokio::select! {
                        () = serve(listener) => {}
                        _ = rx => {}
                    }
                });
                rt.shutdown_timeout(Duration::from_secs(2));
            })
            .expect("spawn test server thread");
        Background {
            shutdown: Some(tx),
            thread: Some(thread),
        }
    }

    pub fn stop(mut self) {
        if let Some(tx) = self.shutdown.take() {
            let _ = tx.send(());
        }
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}
