//! Load: 64 concurrent connections of mixed search / similar / thumbnail traffic on 127.0.0.1
//! for 60 s (CLIPSIGHT_LOAD_SECONDS to change), the first half while `--watch` indexing doubles
//! the library → no errors, no timeouts, and memory that stops growing once the library does.
//! Prints the request count, p50/p99 latency and the RSS at each stage.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::common::*;

fn rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)).and_then(|v| v.parse().ok()).unwrap()
}

/// The highest RSS seen over two seconds: a single reading lands anywhere between a request's
/// allocations and their release, which moves it by several MiB under this load.
fn peak_rss_kib(pid: u32) -> u64 {
    (0..8)
        .map(|_| {
            std::thread::sleep(Duration::from_millis(250));
            rss_kib(pid)
        })
        .max()
        .unwrap()
}

#[test]
fn mixed_traffic_at_64_connections_while_indexing_has_no_errors_and_bounded_memory() {
    let _heavy = heavy();
    let seconds: u64 = std::env::var("CLIPSIGHT_LOAD_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(60);
    let tmp = tempfile::tempdir().unwrap();
    let pool = tmp.path().join("pool");
    scenes(&pool, 400, 9001);
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let mut files: Vec<_> = std::fs::read_dir(&pool).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "png")).collect();
    files.sort();
    for f in &files[..200] {
        std::fs::copy(f, photos.join(f.file_name().unwrap())).unwrap();
    }
    let data = tmp.path().join("data");
    let server = Server::start(&data, &["--watch", photos.to_str().unwrap()]);
    server.wait_idle();
    let (_, listing) = server.json("GET", "/api/search?q=&k=200", None);
    let ids: Vec<u64> = listing["results"].as_array().unwrap().iter().map(|r| r["id"].as_u64().unwrap()).collect();
    assert_eq!(ids.len(), 200);

    // Keep the indexer busy: feed the other 200 files in, a few at a time, during the run.
    let feeder = {
        let (photos, rest) = (photos.clone(), files[200..].to_vec());
        std::thread::spawn(move || {
            for chunk in rest.chunks(10) {
                for f in chunk {
                    std::fs::copy(f, photos.join(f.file_name().unwrap())).unwrap();
                }
                std::thread::sleep(Duration::from_millis(1500));
            }
        })
    };

    let queries = ["a red circle", "a small blue square on the left", "green star", "a large yellow heart", "two shapes", "purple triangle at the top"];
    let latencies = Arc::new(Mutex::new(Vec::<f64>::new()));
    let errors = Arc::new(Mutex::new(Vec::<String>::new()));
    let done = Arc::new(AtomicBool::new(false));
    let started = Instant::now();
    let clients: Vec<_> = (0..64)
        .map(|c| {
            let (base, ids, latencies, errors, done) = (server.base().to_string(), ids.clone(), latencies.clone(), errors.clone(), done.clone());
            std::thread::spawn(move || {
                let agent = ureq::AgentBuilder::new().timeout(Duration::from_secs(10)).build();
                let mut n = c;
                while !done.load(Ordering::Relaxed) {
                    n += 64;
                    let id = ids[n % ids.len()];
                    let url = match n % 3 {
                        0 => format!("{base}/api/search?q={}&k=20", queries[n % queries.len()].replace(' ', "%20")),
                        1 => format!("{base}/api/images/{id}/similar?k=20"),
                        _ => format!("{base}/api/images/{id}/thumbnail"),
                    };
                    let t = Instant::now();
                    match agent.get(&url).call() {
                        Ok(r) => {
                            let mut sink = Vec::new();
                            let _ = std::io::Read::read_to_end(&mut r.into_reader(), &mut sink);
                            latencies.lock().unwrap().push(t.elapsed().as_secs_f64() * 1000.0);
                        }
                        Err(e) => errors.lock().unwrap().push(format!("{url}: {e}")),
                    }
                }
            })
        })
        .collect();

    // Memory follows the library while it grows (the store's write buffers, the graph, the
    // keyword index); what must not grow is memory under traffic alone. So the baseline is read
    // once the indexer has caught up with the feeder, and compared with the end of the run.
    let rss_start = peak_rss_kib(server.pid());
    feeder.join().unwrap();
    let caught_up = Instant::now() + Duration::from_secs(120);
    loop {
        let (_, stats) = server.json("GET", "/api/stats", None);
        if stats["images"] == 400 && stats["indexing"] == false {
            break;
        }
        assert!(Instant::now() < caught_up, "indexing under load did not finish: {stats}");
        std::thread::sleep(Duration::from_millis(200));
    }
    let indexed_after = started.elapsed();
    let rss_indexed = peak_rss_kib(server.pid());
    std::thread::sleep(Duration::from_secs(seconds).saturating_sub(started.elapsed()).max(Duration::from_secs(20)));
    let rss_end = peak_rss_kib(server.pid());
    done.store(true, Ordering::Relaxed);
    for c in clients {
        c.join().unwrap();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let (_, stats) = server.json("GET", "/api/stats", None);

    let mut lat = latencies.lock().unwrap().clone();
    lat.sort_by(f64::total_cmp);
    let pct = |p: f64| lat[((lat.len() as f64 - 1.0) * p) as usize];
    let errors = errors.lock().unwrap();
    let growth = rss_end as f64 / rss_indexed as f64 - 1.0;
    eprintln!(
        "load: {} requests in {elapsed:.0}s ({:.0}/s) at 64 connections, {} errors; p50 {:.1} ms, p99 {:.1} ms; 200 → {} images indexed under load in {:.0}s; peak RSS {} MiB at the start, {} MiB once indexed, {} MiB at the end ({:+.1}% under traffic alone)",
        lat.len(),
        lat.len() as f64 / elapsed,
        errors.len(),
        pct(0.5),
        pct(0.99),
        stats["images"],
        indexed_after.as_secs_f64(),
        rss_start / 1024,
        rss_indexed / 1024,
        rss_end / 1024,
        growth * 100.0,
    );
    assert!(errors.is_empty(), "{} errors, e.g. {:?}", errors.len(), &errors[..errors.len().min(5)]);
    assert!(growth < 0.10, "RSS grew {:.1}% under traffic once indexing had finished ({rss_indexed} → {rss_end} KiB)", growth * 100.0);
}
