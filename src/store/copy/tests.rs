use super::*;

fn memory(name: &str) -> Store {
    Store {
        inner: Arc::new(object_store::memory::InMemory::new()),
        display: format!("memory://{name}"),
        backend: super::super::Backend::Memory,
        uploads: None,
    }
}

/// A copy throttled at 1000 B/s whose limiter is raised to 1 MB/s after 5 s finishes soon
/// after; on the paused clock the timing is exact, not measured.
#[tokio::test(start_paused = true)]
async fn set_rate_changes_a_running_copy() {
    let (src, dst) = (memory("a"), memory("b"));
    for i in 0..20 {
        src.put(&format!("o{i:02}"), Bytes::from(vec![b'x'; 1000]))
            .await
            .unwrap();
    }
    let limiter = Arc::new(Limiter::new(Some(1000.0), Some(1000.0)));
    let opts = CopyOptions {
        concurrency: 1,
        throttle: Some(limiter.clone()),
        ..CopyOptions::default()
    };
    let start = tokio::time::Instant::now();
    let job = tokio::spawn({
        let (src, dst) = (src.clone(), dst.clone());
        async move { copy_prefix(&src, &dst, None, opts, CancellationToken::new()).await }
    });
    tokio::time::sleep(std::time::Duration::from_secs(5)).await;
    let copied_at_5s = dst.list(None).unwrap().count().await;
    assert!(
        (4..=7).contains(&copied_at_5s),
        "{copied_at_5s} objects after 5 s at 1000 B/s"
    );
    limiter.set_rate(Some(1_000_000.0));
    let report = job.await.unwrap().unwrap();
    assert_eq!(report.copied, 20);
    let secs = start.elapsed().as_secs_f64();
    assert!(
        secs < 6.5,
        "finished at {secs}s; without set_rate it takes 19 s"
    );
}

#[test]
fn shards_are_stable_and_cover_every_key() {
    assert_eq!(shard_of("repo/abc", 4), shard_of("repo/abc", 4));
    let mut counts = [0u32; 4];
    for i in 0..10_000 {
        counts[shard_of(&format!("k/{i}"), 4) as usize] += 1;
    }
    assert_eq!(counts.iter().sum::<u32>(), 10_000);
    assert!(counts.iter().all(|c| *c > 2000), "{counts:?}");
}
