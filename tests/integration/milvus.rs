//! A library on Milvus (`--store milvus://HOST:PORT/COLLECTION`), against a real Milvus 2.3.5
//! standalone server started for each test (scripts/milvus.py: the PyPI wheel's server, on free
//! loopback ports, its data in a temp dir, stopped with SIGTERM and then SIGKILL): the same
//! answers as the local index with every filter pushed down, pushes that send only what
//! changed, deletions that reach the collection, a checked copy and a pull back, and the
//! outages — a front end answering 503 and recovering, an indexer waiting for the server and
//! losing nothing, a front end killed under load.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

/// A Milvus standalone server with its data in a directory.
struct MilvusServer {
    child: Option<Child>,
    dir: PathBuf,
    grpc: u16,
}

impl MilvusServer {
    /// Starts a server on `dir` (the same ports as before when `dir` held one) and waits until
    /// it is healthy.
    fn start(dir: &Path) -> Self {
        let mut child = Command::new("python3").arg(root().join("scripts/milvus.py")).arg("run").arg(dir).stdout(Stdio::piped()).spawn().expect("python3 runs scripts/milvus.py");
        let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
        let mut port = |name: &str| -> u16 {
            let line = lines.next().unwrap().unwrap();
            line.strip_prefix(name).and_then(|p| p.trim().parse().ok()).unwrap_or_else(|| panic!("milvus.py printed {line:?}"))
        };
        let (grpc, metrics) = (port("grpc"), port("metrics"));
        // Owned from here on: a failed wait below still stops the server (on drop).
        let mut server = Self { child: Some(child), dir: dir.to_path_buf(), grpc };
        let deadline = Instant::now() + Duration::from_secs(120);
        loop {
            let healthy = ureq::get(&format!("http://127.0.0.1:{metrics}/healthz")).timeout(Duration::from_secs(2)).call().ok().and_then(|r| r.into_string().ok()).is_some_and(|body| body.contains("OK"));
            if healthy {
                return server;
            }
            assert!(server.child.as_mut().unwrap().try_wait().unwrap().is_none(), "Milvus exited; see {}/logs/milvus.log", dir.display());
            assert!(Instant::now() < deadline, "Milvus was not healthy within 120 s; see {}/logs/milvus.log", dir.display());
            std::thread::sleep(Duration::from_millis(250));
        }
    }

    /// `milvus://127.0.0.1:PORT/collection`.
    fn address(&self, collection: &str) -> String {
        format!("milvus://127.0.0.1:{}/{collection}", self.grpc)
    }

    /// Stops the server: SIGTERM, then SIGKILL after 5 s (its SIGTERM can hang in a retry loop).
    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            unsafe {
                libc::kill(child.id() as i32, libc::SIGTERM);
            }
            let deadline = Instant::now() + Duration::from_secs(5);
            while child.try_wait().unwrap().is_none() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(100));
            }
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// Stops and starts the server again on the same data and ports.
    fn restart(&mut self) {
        self.stop();
        *self = Self::start(&self.dir.clone());
    }
}

impl Drop for MilvusServer {
    fn drop(&mut self) {
        self.stop();
    }
}

/// `count` PNG scenes of `seed` written into `to` (without their manifest).
fn png_scenes(to: &Path, count: usize, seed: u64) {
    let pool = tempfile::tempdir().unwrap();
    let pool = pool.path();
    scenes(pool, count, seed);
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(pool).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "png") {
            std::fs::copy(&path, to.join(path.file_name().unwrap())).unwrap();
        }
    }
}

/// A library folder: 61 dated JPEGs, 30 PNG scenes in `png/sub/`, and 6 JPEGs from a Canon.
fn photos(dir: &Path) -> PathBuf {
    let (photos, _, _) = dated_library(dir);
    png_scenes(&photos.join("png/sub"), 30, 4242);
    let canon = photos.join("canon");
    std::fs::create_dir_all(&canon).unwrap();
    let mut jpegs: Vec<PathBuf> = std::fs::read_dir(&photos).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "jpg")).collect();
    jpegs.sort();
    for (i, jpeg) in jpegs.iter().take(6).enumerate() {
        let bytes = with_exif(&std::fs::read(jpeg).unwrap(), &[(exif::Tag::Make, b"Canon".to_vec()), (exif::Tag::Model, b"EOS 5D".to_vec())]);
        std::fs::write(canon.join(format!("c{i}.jpg")), bytes).unwrap();
    }
    photos
}

/// A Milvus server and a library of [`photos`] indexed onto it: (server, photos, data, address).
fn indexed_on_milvus(tmp: &Path) -> (MilvusServer, PathBuf, PathBuf, String) {
    let milvus = MilvusServer::start(&tmp.join("milvus"));
    let photos = photos(tmp);
    let data = tmp.join("data");
    let store = milvus.address("photos");
    assert_success(&clipsight(&data).args(["--store", &store, "index"]).arg(&photos).output().unwrap());
    (milvus, photos, data, store)
}

fn search(data: &Path, store: &str, query: &str) -> Vec<(String, f64)> {
    let answer = json_of(clipsight(data).args(["--store", store, "--json", "search", query, "-k", "12"]));
    answer["results"].as_array().unwrap().iter().map(|r| (r["path"].as_str().unwrap().to_string(), r["score"].as_f64().unwrap())).collect()
}

fn same_answers(local: &[(String, f64)], remote: &[(String, f64)], query: &str) {
    let paths = |a: &[(String, f64)]| a.iter().map(|(p, _)| p.clone()).collect::<Vec<_>>();
    assert_eq!(paths(remote), paths(local), "{query}");
    for ((_, a), (_, b)) in local.iter().zip(remote) {
        assert!((a - b).abs() < 1e-4, "{query}: score {a} here, {b} from Milvus");
    }
}

fn push(data: &Path, to: &str) -> serde_json::Value {
    json_of(clipsight(data).args(["--json", "store", "push", to]))
}

#[test]
fn a_library_on_milvus_answers_as_its_local_index_does_with_every_filter_pushed_down() {
    let _heavy = heavy();
    let tmp = tempfile::tempdir().unwrap();
    let (_milvus, _, data, store) = indexed_on_milvus(tmp.path());
    let mut filtered = 0;
    for query in ["red", "a blue square", "green star"] {
        for filter in ["", "folder:sub", "folder:png/sub", "type:png", "type:jpeg", "after:2021-02-01", "before:2021-02-01 type:jpeg", "camera:canon", "camera:eos 5", "folder:nowhere", "folder:\"su\nb\"", "camera:\"eos\t5\""] {
            let query = format!("{query} {filter}");
            let local = search(&data, "local", &query);
            let remote = search(&data, &store, &query);
            same_answers(&local, &remote, &query);
            filtered += usize::from(!filter.is_empty() && !local.is_empty() && local.len() < 12);
        }
    }
    assert!(filtered >= 6, "the filters narrowed the answers ({filtered} filtered queries had fewer than k hits)");
}

#[test]
fn pushes_send_only_what_changed_deletions_reach_the_collection_and_the_copy_is_checked() {
    let _heavy = heavy();
    let tmp = tempfile::tempdir().unwrap();
    let milvus = MilvusServer::start(&tmp.path().join("milvus"));
    let photos = photos(tmp.path());
    let data = tmp.path().join("data");
    assert_success(&clipsight(&data).arg("index").arg(&photos).output().unwrap());
    let to = milvus.address("copy");

    let first = push(&data, &to);
    assert_eq!(first["pushed"]["sent"], 97, "{first}");
    assert_eq!(first["check"], serde_json::json!({"local": 97, "remote": 97, "skipped": 0, "sampled": 64, "equal": 64}));
    let again = push(&data, &to);
    assert_eq!(again["pushed"], serde_json::json!({"sent": 0, "removed": 0, "unchanged": 97}), "a repeated push sends nothing");

    // Three photos deleted and one moved: the indexer's own push (after its run) removes
    // their rows and replaces the moved one's.
    let sub = photos.join("png/sub");
    let mut pngs: Vec<PathBuf> = std::fs::read_dir(&sub).unwrap().map(|e| e.unwrap().path()).collect();
    pngs.sort();
    for p in &pngs[..3] {
        std::fs::remove_file(p).unwrap();
    }
    std::fs::rename(&pngs[3], photos.join("moved.png")).unwrap();
    assert_success(&clipsight(&data).args(["--store", &to, "index"]).output().unwrap());
    let after = push(&data, &to);
    assert_eq!(after["pushed"], serde_json::json!({"sent": 0, "removed": 0, "unchanged": 94}), "{after}");
    assert_eq!(after["check"]["remote"], 94, "{after}");
    let local = search(&data, "local", "red");
    same_answers(&local, &search(&data, &to, "red"), "red after the changes");

    // Pulled back into an embedded library of its own: the same answers, from its own graph.
    let pulled = tmp.path().join("pulled");
    let pull = |data: &Path| json_of(clipsight(data).args(["--json", "store", "pull", &to]));
    let first = pull(&pulled);
    assert_eq!(first["pulled"], serde_json::json!({"copied": 94, "unchanged": 0, "skipped": 0, "removed": 0}), "{first}");
    assert_eq!(first["check"], serde_json::json!({"local": 94, "remote": 94, "skipped": 0, "sampled": 64, "equal": 64}));
    // Ties (the Canon copies score as their originals) are ordered by image id, which a pulled
    // library takes from the row keys: equal up to the order of equal scores.
    let by_score_then_path = |mut answer: Vec<(String, f64)>| {
        answer.sort_by(|a, b| b.1.total_cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
        answer
    };
    for query in ["red", "a blue square type:png", "green star after:2021-02-01"] {
        let (here, pulled) = (by_score_then_path(search(&data, "local", query)), by_score_then_path(search(&pulled, "local", query)));
        same_answers(&here, &pulled, &format!("{query}, pulled"));
    }
    let again = pull(&pulled);
    assert_eq!(again["pulled"], serde_json::json!({"copied": 0, "unchanged": 94, "skipped": 0, "removed": 0}), "a repeated pull reads nothing");
    std::fs::remove_file(&pngs[4]).unwrap();
    std::thread::sleep(Duration::from_millis(20));
    std::fs::write(&pngs[5], std::fs::read(&pngs[5]).unwrap()).unwrap(); // a new mtime: a changed record
    assert_success(&clipsight(&data).args(["--store", &to, "index"]).output().unwrap());
    let after = pull(&pulled);
    assert_eq!(after["pulled"], serde_json::json!({"copied": 1, "unchanged": 92, "skipped": 0, "removed": 1}), "a row gone there goes here, a changed one is copied again: {after}");
    assert_eq!(after["check"]["local"], 93, "{after}");
    // A row whose record is too long to keep in the collection (a camera make of 20,000 bytes)
    // cannot be pulled: it is skipped, the older copy of it goes, and the check holds.
    let canon = photos.join("canon/c0.jpg");
    std::fs::write(&canon, with_exif(&std::fs::read(&canon).unwrap(), &[(exif::Tag::Make, vec![b'x'; 20_000])])).unwrap();
    assert_success(&clipsight(&data).args(["--store", &to, "index"]).output().unwrap());
    let long = pull(&pulled);
    assert_eq!(long["pulled"], serde_json::json!({"copied": 0, "unchanged": 92, "skipped": 1, "removed": 0}), "{long}");
    assert_eq!(long["check"]["local"], 92, "{long}");
    assert_eq!(long["check"]["skipped"], 1, "{long}");
    assert_eq!(long["ok"], true, "{long}");
    let refused = clipsight(&data).args(["store", "pull", &to]).output().unwrap();
    assert!(!refused.status.success() && String::from_utf8_lossy(&refused.stderr).contains("folders of its own"), "an indexing library is not overwritten");
}

#[test]
fn a_front_end_answers_503_while_milvus_is_away_and_recovers_without_a_restart() {
    let _heavy = heavy();
    let tmp = tempfile::tempdir().unwrap();
    let (mut milvus, _, data, store) = indexed_on_milvus(tmp.path());
    let server = Server::start(&data, &["--store", &store]);
    let (status, before) = server.json("GET", "/api/search?q=red&k=5", None);
    assert_eq!(status, 200, "{before}");

    milvus.stop();
    let started = Instant::now();
    let (status, error) = server.json("GET", "/api/search?q=red&k=5", None);
    assert_eq!(status, 503, "{error}");
    assert_eq!(error["error"]["code"], "store_unavailable", "{error}");
    assert!(started.elapsed() < Duration::from_secs(15), "the 503 came after {:?}", started.elapsed());

    milvus = MilvusServer::start(&tmp.path().join("milvus"));
    let deadline = Instant::now() + Duration::from_secs(90);
    let after = loop {
        let (status, body) = server.json("GET", "/api/search?q=red&k=5", None);
        if status == 200 {
            break body;
        }
        assert_eq!(status, 503, "{body}");
        assert!(Instant::now() < deadline, "no answer 90 s after Milvus came back: {body}");
        std::thread::sleep(Duration::from_millis(500));
    };
    assert_eq!(after["results"], before["results"], "the same answer once Milvus is back");
    drop(milvus);
}

#[test]
fn an_indexer_waits_for_milvus_and_finishes_without_loss_or_duplicates() {
    let _heavy = heavy();
    let tmp = tempfile::tempdir().unwrap();
    // A first run pushes the library; then the server goes away, and ten photos are added and
    // two removed while it is away.
    let (mut milvus, photos, data, store) = indexed_on_milvus(tmp.path());
    milvus.stop();
    png_scenes(&photos.join("new"), 10, 777);
    for i in 0..2 {
        std::fs::remove_file(photos.join(format!("canon/c{i}.jpg"))).unwrap();
    }

    let mut indexer = clipsight(&data).args(["--store", &store, "-v", "index"]).arg(&photos).env("CLIPSIGHT_MILVUS_PATIENCE_S", "180").stdout(Stdio::null()).stderr(Stdio::piped()).spawn().unwrap();
    // The server comes back once the indexer has said it is retrying.
    let (tx, retrying) = std::sync::mpsc::channel();
    let stderr = BufReader::new(indexer.stderr.take().unwrap());
    let log = std::thread::spawn(move || {
        let mut log = String::new();
        for line in stderr.lines().map_while(Result::ok) {
            if line.contains("retrying in") {
                let _ = tx.send(());
            }
            log.push_str(&line);
            log.push('\n');
        }
        log
    });
    let reported = retrying.recv_timeout(Duration::from_secs(120)).is_ok();
    milvus.restart();
    let status = indexer.wait().unwrap();
    let log = log.join().unwrap();
    assert!(reported, "the indexer reported the outage and retried:\n{log}");
    assert!(status.success(), "the indexer finished once Milvus was back:\n{log}");

    let check = push(&data, &store);
    assert_eq!(check["pushed"]["sent"], 0, "the indexer's own push had sent everything: {check}");
    assert_eq!(check["check"]["remote"], 105, "no row lost, none twice: {check}");
    assert_eq!(check["ok"], true, "{check}");
    // Equal to a clean run: a fresh library pushed to a fresh collection gives the same answers.
    let clean = tmp.path().join("clean");
    assert_success(&clipsight(&clean).arg("index").arg(&photos).output().unwrap());
    push(&clean, &milvus.address("clean"));
    for query in ["red", "a blue square type:png"] {
        same_answers(&search(&clean, &milvus.address("clean"), query), &search(&data, &store, query), query);
    }
}

#[test]
fn two_indexers_feed_one_collection_and_front_ends_that_never_indexed_answer_alike() {
    let _heavy = heavy();
    let tmp = tempfile::tempdir().unwrap();
    let milvus = MilvusServer::start(&tmp.path().join("milvus"));
    let store = milvus.address("shared");
    for (name, seed) in [("a", 11), ("b", 12)] {
        let photos = tmp.path().join(format!("photos-{name}"));
        png_scenes(&photos, 40, seed);
        assert_success(&clipsight(&tmp.path().join(format!("indexer-{name}"))).args(["--store", &store, "index"]).arg(&photos).output().unwrap());
    }
    // A third folder split between two more indexers: each takes its half, none twice.
    let big = tmp.path().join("photos-c");
    png_scenes(&big, 30, 13);
    let halves: Vec<u64> = ["0/2", "1/2"]
        .iter()
        .enumerate()
        .map(|(i, shard)| {
            let summary = json_of(clipsight(&tmp.path().join(format!("indexer-c{i}"))).args(["--store", &store, "--json", "index", "--shard", shard]).arg(&big));
            summary["indexed"].as_u64().unwrap()
        })
        .collect();
    assert_eq!(halves.iter().sum::<u64>(), 30, "the shards cover the folder once: {halves:?}");
    assert!(halves.iter().all(|&n| n >= 3), "both shards took a part: {halves:?}");
    // Two front ends on fresh libraries of their own: nothing indexed there, no photo on disk
    // they could read (the photos are moved away).
    for name in ["a", "b", "c"] {
        std::fs::rename(tmp.path().join(format!("photos-{name}")), tmp.path().join(format!("gone-{name}"))).unwrap();
    }
    let fronts = ["front-1", "front-2"].map(|name| Server::start_env(&tmp.path().join(name), &["--store", &store], &[("CLIPSIGHT_MILVUS_MIRROR_S", "1")]));
    // Each mirrors every row's record once it has started (its facets then name every folder):
    // from then on keyword search and the relevance background read the same rows on both.
    for front in &fronts {
        let deadline = Instant::now() + Duration::from_secs(60);
        loop {
            let (_, facets) = front.json("GET", "/api/facets", None);
            let folders = facets["folders"].to_string();
            if ["photos-a", "photos-b", "photos-c"].iter().all(|f| folders.contains(f)) {
                break;
            }
            assert!(Instant::now() < deadline, "no mirror of every row within 60 s: {facets}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    for query in ["red", "a blue square", "green star folder:photos-b", "a large yellow heart"] {
        let path = format!("/api/search?q={}&k=20", urlencode(query));
        let answers: Vec<serde_json::Value> = fronts.iter().map(|f| f.json("GET", &path, None)).map(|(status, body)| {
            assert_eq!(status, 200, "{query}: {body}");
            body
        }).collect();
        assert_eq!(answers[0]["results"], answers[1]["results"], "{query}: two front ends, one answer");
        assert_eq!(answers[0]["total_images"], 110, "{query}: every indexer's rows are counted");
        let paths: Vec<&str> = answers[0]["results"].as_array().unwrap().iter().map(|r| r["path"].as_str().unwrap()).collect();
        assert_eq!(paths.len(), 20, "{query}");
        if query.contains("folder:") {
            assert!(paths.iter().all(|p| p.contains("/photos-b/")), "{query}: {paths:?}");
        } else {
            assert!(paths.iter().any(|p| p.contains("/photos-a/")) && paths.iter().any(|p| p.contains("/photos-b/")), "{query}: rows of both indexers: {paths:?}");
        }
    }
    // Thumbnails and similar-by-id come from the collection too.
    let (_, answer) = fronts[0].json("GET", "/api/search?q=red&k=1", None);
    let id = answer["results"][0]["id"].as_u64().unwrap();
    let (status, thumbnail, content_type) = fronts[1].call("GET", &format!("/api/images/{id}/thumbnail"), None, &[]);
    assert_eq!((status, content_type.as_str()), (200, "image/jpeg"));
    assert!(image::load_from_memory(&thumbnail).is_ok(), "a JPEG thumbnail");
    let (status, similar) = fronts[1].json("GET", &format!("/api/images/{id}/similar?k=3"), None);
    assert_eq!(status, 200, "{similar}");
    assert_eq!(similar["results"].as_array().unwrap().len(), 3, "{similar}");

    // Keywords and facets: each front end mirrors every row's record, and follows new ones.
    // One of them has a sidecar (a title and a keyword), and this indexer tags its photos with
    // a vocabulary of colours and shapes: both travel in the rows.
    let lighthouse = tmp.path().join("lighthouse");
    png_scenes(&lighthouse, 5, 14);
    let mut lighthouse_files: Vec<PathBuf> = std::fs::read_dir(&lighthouse).unwrap().map(|e| e.unwrap().path()).collect();
    lighthouse_files.sort();
    std::fs::write(
        lighthouse_files[0].with_extension("xmp"),
        r#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:title><rdf:Alt><rdf:li xml:lang="x-default">Cape St. Vincent</rdf:li></rdf:Alt></dc:title><dc:subject><rdf:Bag><rdf:li>Sagres</rdf:li></rdf:Bag></dc:subject></rdf:Description></rdf:RDF></x:xmpmeta>"#,
    )
    .unwrap();
    let vocabulary = ["red", "green", "blue", "yellow", "circle", "square", "triangle", "star", "heart"];
    std::fs::write(tmp.path().join("tags.txt"), vocabulary.join("\n")).unwrap();
    let indexer_d = tmp.path().join("indexer-d");
    assert_success(&clipsight(&indexer_d).args(["--store", &store, "index", "--tags"]).arg(tmp.path().join("tags.txt")).arg(&lighthouse).output().unwrap());
    let sorted_paths = |answer: &serde_json::Value| -> Vec<String> {
        let mut paths: Vec<String> = answer["results"].as_array().unwrap().iter().map(|r| r["path"].as_str().unwrap().to_string()).collect();
        paths.sort();
        paths
    };
    // What each tag finds in the indexer's own library.
    let tagged: Vec<(&str, Vec<String>)> = vocabulary
        .iter()
        .map(|&tag| (tag, sorted_paths(&json_of(clipsight(&indexer_d).args(["--store", "local", "--json", "search", tag, "--mode", "keyword", "-k", "50"])))))
        .collect();
    assert!(tagged.iter().any(|(_, own)| !own.is_empty()), "the vocabulary tagged some photo");
    for front in &fronts {
        let deadline = Instant::now() + Duration::from_secs(60);
        let found = loop {
            let (status, answer) = front.json("GET", "/api/search?q=lighthouse&mode=keyword&k=50", None);
            assert_eq!(status, 200, "{answer}");
            let found = answer["results"].as_array().unwrap().clone();
            if found.len() == 5 || Instant::now() > deadline {
                break found;
            }
            std::thread::sleep(Duration::from_millis(500));
        };
        assert_eq!(found.len(), 5, "the new folder's photos are found by keyword within the mirror's interval");
        for hit in &found {
            assert!(hit["path"].as_str().unwrap().contains("/lighthouse/"), "{hit}");
            let (status, thumbnail, _) = front.call("GET", &format!("/api/images/{}/thumbnail", hit["id"]), None, &[]);
            assert!(status == 200 && image::load_from_memory(&thumbnail).is_ok(), "the thumbnail of a row found by keyword: {hit}");
        }
        let (_, hybrid) = front.json("GET", "/api/search?q=lighthouse&mode=hybrid&k=10", None);
        let paths: Vec<&str> = hybrid["results"].as_array().unwrap().iter().map(|r| r["path"].as_str().unwrap()).collect();
        assert!(paths[..5].iter().all(|p| p.contains("/lighthouse/")), "hybrid ranks the keyword matches first: {paths:?}");
        let (_, browsed) = front.json("GET", "/api/search?q=folder:lighthouse&k=50", None);
        assert_eq!(browsed["results"].as_array().unwrap().len(), 5, "filters alone browse every row: {browsed}");
        let (_, sagres) = front.json("GET", "/api/search?q=sagres&mode=keyword&k=10", None);
        let hits = sagres["results"].as_array().unwrap();
        assert_eq!(hits.len(), 1, "a sidecar's keyword finds its photo on a front end: {sagres}");
        assert!(hits[0]["path"].as_str().unwrap().ends_with(lighthouse_files[0].file_name().unwrap().to_str().unwrap()), "{sagres}");
        let (_, view) = front.json("GET", &format!("/api/images/{}", hits[0]["id"]), None);
        assert_eq!((view["title"].as_str(), view["keywords"].clone()), (Some("Cape St. Vincent"), serde_json::json!(["Sagres"])), "{view}");
        // Each automatic tag finds on the front end what it finds in the indexer's own library.
        for (tag, own) in &tagged {
            let (_, there) = front.json("GET", &format!("/api/search?q={tag}&mode=keyword&k=200"), None);
            // (The other indexers' rows carry their own tags, from the built-in vocabulary.)
            let there: Vec<String> = sorted_paths(&there).into_iter().filter(|p| p.contains("/lighthouse/")).collect();
            assert_eq!(&there, own, "tag {tag}");
        }
        let (status, facets) = front.json("GET", "/api/facets", None);
        assert_eq!(status, 200, "{facets}");
        assert_eq!(facets["types"], serde_json::json!(["png"]), "{facets}");
        let folders: Vec<&str> = facets["folders"].as_array().unwrap().iter().map(|f| f.as_str().unwrap()).collect();
        for name in ["photos-a", "photos-b", "photos-c", "lighthouse"] {
            assert!(folders.iter().any(|f| f.ends_with(name)), "{name} in {folders:?}");
        }
    }

    // Similar by upload: a photo neither front end has, two answers alike.
    let upload = std::fs::read_dir(&lighthouse).unwrap().map(|e| e.unwrap().path()).find(|p| p.extension().is_some_and(|e| e == "png")).unwrap();
    let (content_type, body) = multipart(&[("image", Some("query.png"), &std::fs::read(&upload).unwrap())]);
    let answers: Vec<serde_json::Value> = fronts
        .iter()
        .map(|f| {
            let (status, out, _) = f.call("POST", "/api/search/image?k=5", Some((&content_type, &body)), &[]);
            assert_eq!(status, 200, "{}", String::from_utf8_lossy(&out));
            serde_json::from_slice(&out).unwrap()
        })
        .collect();
    assert_eq!(answers[0]["results"], answers[1]["results"], "similar by upload, two front ends");
    assert!(answers[0]["results"][0]["path"].as_str().unwrap().ends_with(&format!("/lighthouse/{}", upload.file_name().unwrap().to_string_lossy())), "the uploaded photo's own row first: {}", answers[0]);

    // A front end killed under load (searches copying rows it had not shown yet) loses
    // nothing: restarted on its library, it answers as the other one does.
    let [killed, other] = fronts;
    let queries = ["purple", "a small cyan triangle", "orange circle at the top", "white star folder:photos-c", "a pink square"];
    let answered = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let load: Vec<_> = queries
        .iter()
        .map(|q| {
            let url = format!("{}/api/search?q={}&k=40", killed.base(), urlencode(q));
            let answered = answered.clone();
            std::thread::spawn(move || loop {
                match ureq::get(&url).timeout(Duration::from_secs(30)).call() {
                    Ok(_) => {
                        answered.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    }
                    Err(ureq::Error::Status(status, r)) => panic!("{url}: {status} {}", r.into_string().unwrap_or_default()),
                    Err(ureq::Error::Transport(_)) => return,
                }
            })
        })
        .collect();
    // Killed once the load is well under way (as many answers as clients), not before.
    let deadline = Instant::now() + Duration::from_secs(60);
    while answered.load(std::sync::atomic::Ordering::SeqCst) < queries.len() {
        assert!(Instant::now() < deadline, "the front end answered {} searches in 60 s", answered.load(std::sync::atomic::Ordering::SeqCst));
        std::thread::sleep(Duration::from_millis(50));
    }
    killed.stop_with(libc::SIGKILL);
    load.into_iter().for_each(|t| t.join().unwrap());
    let restarted = Server::start(&tmp.path().join("front-1"), &["--store", &store]);
    for query in queries.iter().chain(&["red", "a large yellow heart"]) {
        let path = format!("/api/search?q={}&k=40", urlencode(query));
        let (status, answer) = restarted.json("GET", &path, None);
        assert_eq!(status, 200, "{query}: {answer}");
        assert_eq!(answer["results"], other.json("GET", &path, None).1["results"], "{query}: the restarted front end answers as the other");
        for hit in answer["results"].as_array().unwrap() {
            let (status, thumbnail, _) = restarted.call("GET", &format!("/api/images/{}/thumbnail", hit["id"]), None, &[]);
            assert!(status == 200 && image::load_from_memory(&thumbnail).is_ok(), "{query}: the thumbnail of {}", hit["path"]);
        }
    }
}
