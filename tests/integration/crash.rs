//! Crash safety: `clipsight index` (and `serve --watch`) killed with SIGKILL at seeded random
//! moments — during decoding, RocksDB batch commits (records, embeddings and thumbnails are one
//! batch), and the HNSW graph's persistence — must leave a library that reopens, resumes, passes
//! `clipsight check`, and ends equal to one built in a single clean run.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use crate::common::*;
use serde_json::Value;

/// Scenes generated once; trials copy them.
fn corpus() -> &'static (tempfile::TempDir, PathBuf) {
    static CORPUS: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("scenes");
        scenes(&dir, 260, 777);
        std::fs::remove_file(dir.join("manifest.json")).unwrap();
        (tmp, dir)
    })
}

/// The scene files, sorted.
fn files() -> Vec<PathBuf> {
    let mut f: Vec<PathBuf> = std::fs::read_dir(&corpus().1).unwrap().map(|e| e.unwrap().path()).collect();
    f.sort();
    f
}

/// A small tag vocabulary keeps each trial fast (the built-in one costs 1,200 text encodings).
fn tags_file(dir: &Path) -> PathBuf {
    let p = dir.join("tags.txt");
    std::fs::write(&p, "red\nblue\ngreen\ncircle\nsquare\nstar\n").unwrap();
    p
}

/// `clipsight` with the graph threshold lowered so a 100-image library has a persisted graph.
fn cmd(data: &Path) -> Command {
    let mut c = clipsight(data);
    c.env("CLIPSIGHT_EXACT_BELOW", "50");
    c
}

/// One trial's library: 100 images indexed cleanly with a persisted graph, then 160 more
/// copied in and 20 of the first deleted, ready for the run that gets killed.
struct Trial {
    tmp: tempfile::TempDir,
    photos: PathBuf,
    data: PathBuf,
    tags: PathBuf,
}

fn prepare() -> Trial {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    let data = tmp.path().join("data");
    std::fs::create_dir_all(&photos).unwrap();
    let tags = tags_file(tmp.path());
    let all = files();
    for f in &all[..100] {
        std::fs::copy(f, photos.join(f.file_name().unwrap())).unwrap();
    }
    json_of(cmd(&data).args(["--json", "index", "--tags"]).arg(&tags).arg(&photos));
    // A search builds and saves the graph; the next index run patches it.
    json_of(cmd(&data).args(["--json", "search", "a red circle", "--mode", "vector"]));
    for f in &all[100..] {
        std::fs::copy(f, photos.join(f.file_name().unwrap())).unwrap();
    }
    for f in &all[..20] {
        std::fs::remove_file(photos.join(f.file_name().unwrap())).unwrap();
    }
    Trial { tmp, photos, data, tags }
}

/// What must equal the clean run: relative paths, and the top scores of a few queries.
#[derive(Debug, PartialEq)]
struct Outcome {
    paths: Vec<String>,
    scores: Vec<Vec<i64>>,
}

fn outcome(t: &Trial) -> Outcome {
    let report = json_of(cmd(&t.data).args(["--json", "check"]));
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
    assert_eq!(report["files"], 240, "{report}");
    assert_eq!(report["embeddings"], 240, "{report}");
    assert_eq!(report["thumbnails"], 240, "{report}");
    assert_eq!(report["interrupted_run"], false, "{report}");
    let listing = json_of(cmd(&t.data).args(["--json", "search", "", "-k", "1000", "--mode", "vector"]));
    let prefix = std::fs::canonicalize(&t.photos).unwrap();
    let mut paths: Vec<String> = listing["results"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| Path::new(r["path"].as_str().unwrap()).strip_prefix(&prefix).unwrap().display().to_string())
        .collect();
    paths.sort();
    let mut scores = Vec::new();
    for q in ["a red circle", "a blue square on the left", "a small green star"] {
        let v = json_of(cmd(&t.data).args(["--json", "search", q, "-k", "5", "--mode", "vector"]));
        // Scores rounded to 1e-4: the same embeddings give the same ranking, whatever the batches.
        scores.push(v["results"].as_array().unwrap().iter().map(|r| (r["score"].as_f64().unwrap() * 1e4).round() as i64).collect());
    }
    // The graph is now fresh (rebuilt by the searches if the crash left it stale).
    let after = json_of(cmd(&t.data).args(["--json", "check"]));
    assert_eq!(after["graph"], "fresh", "{after}");
    Outcome { paths, scores }
}

fn index_cmd(t: &Trial) -> Command {
    let mut c = cmd(&t.data);
    c.args(["index", "--tags"]).arg(&t.tags).arg(&t.photos).stdout(Stdio::null()).stderr(Stdio::null());
    c
}

/// The clean run's outcome and duration.
fn reference() -> &'static (Outcome, Duration) {
    static REF: OnceLock<(Outcome, Duration)> = OnceLock::new();
    REF.get_or_init(|| {
        let t = prepare();
        let started = Instant::now();
        assert!(index_cmd(&t).status().unwrap().success());
        let took = started.elapsed();
        eprintln!("clean run: {:.0} ms", took.as_secs_f64() * 1000.0);
        (outcome(&t), took)
    })
}

/// A seeded generator of kill delays (SplitMix64).
fn delays(seed: u64, n: usize, max: Duration) -> Vec<Duration> {
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s.wrapping_add(0x9E37_79B9_7F4A_7C15);
            let mut z = s;
            z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
            z ^= z >> 31;
            max.mul_f64((z >> 11) as f64 / (1u64 << 53) as f64)
        })
        .collect()
}

/// Runs `trials` kills of `index` at seeded moments within the clean run's duration.
fn kill_index_trials(seed: u64, trials: usize) {
    let (clean, took) = reference();
    for (i, delay) in delays(seed, trials, took.mul_f64(1.1)).into_iter().enumerate() {
        let t = prepare();
        let mut child = index_cmd(&t).spawn().unwrap();
        std::thread::sleep(delay);
        let finished_first = child.try_wait().unwrap().is_some();
        let _ = child.kill();
        let _ = child.wait();
        eprintln!("trial {seed}/{i}: SIGKILL after {:.0} ms{}", delay.as_secs_f64() * 1000.0, if finished_first { " (the run had already finished)" } else { "" });
        // Reopen and resume.
        assert!(index_cmd(&t).status().unwrap().success(), "the resumed run succeeds (trial {seed}/{i})");
        assert_eq!(&outcome(&t), clean, "trial {seed}/{i} ends equal to the clean run");
        drop(t.tmp);
    }
}

#[test]
fn index_killed_at_random_moments_resumes_to_the_clean_result_a() {
    kill_index_trials(1, 6);
}

#[test]
fn index_killed_at_random_moments_resumes_to_the_clean_result_b() {
    kill_index_trials(2, 6);
}

#[test]
fn index_killed_at_random_moments_resumes_to_the_clean_result_c() {
    kill_index_trials(3, 6);
}

#[test]
fn index_killed_at_random_moments_resumes_to_the_clean_result_d() {
    kill_index_trials(4, 6);
}

#[test]
fn serve_watch_killed_while_indexing_resumes_to_the_clean_result() {
    let (clean, took) = reference();
    for (i, delay) in delays(99, 5, took.mul_f64(1.5)).into_iter().enumerate() {
        let t = prepare();
        let server = Server::start(&t.data, &["--watch", t.photos.to_str().unwrap(), "--tags", t.tags.to_str().unwrap()]);
        std::thread::sleep(delay);
        let pid = server.pid();
        signal(pid, "KILL");
        drop(server);
        eprintln!("serve trial {i}: SIGKILL after {:.0} ms", delay.as_secs_f64() * 1000.0);
        assert!(index_cmd(&t).status().unwrap().success(), "the resumed run succeeds (serve trial {i})");
        assert_eq!(&outcome(&t), clean, "serve trial {i} ends equal to the clean run");
    }
}

#[test]
fn a_second_writer_is_refused_while_readers_keep_working() {
    let t = prepare();
    let server = Server::start(&t.data, &[]);
    let out = index_cmd(&t).stderr(Stdio::piped()).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("in use by pid") && err.contains(&server.pid().to_string()), "{err}");
    let v: Value = json_of(cmd(&t.data).args(["--json", "search", "a red circle", "-k", "3"]));
    assert_eq!(v["results"].as_array().unwrap().len(), 3, "a reader works beside the writer");
}

/// A folder of videos and photos, made once: tests/reference/make_videos.py's videos (the broken
/// ones refused, the ten-hour one included) beside 20 scenes, one with an XMP sidecar, and three
/// camera-RAW DNGs (tests/reference/make_raw.py, the cut-off one refused) with their references.
/// The DNGs are named like three of the scenes (`000001.dng` beside `000001.png`), so each is
/// listed with its scene as a RAW+still pair.
fn video_corpus() -> &'static (tempfile::TempDir, PathBuf) {
    static CORPUS: OnceLock<(tempfile::TempDir, PathBuf)> = OnceLock::new();
    CORPUS.get_or_init(|| {
        let tmp = tempfile::tempdir().unwrap();
        let (scenes_dir, media) = (tmp.path().join("scenes"), tmp.path().join("media"));
        scenes(&scenes_dir, 80, 777);
        run_python(&["tests/reference/make_videos.py", scenes_dir.to_str().unwrap(), media.to_str().unwrap()]);
        for f in &files()[..20] {
            std::fs::copy(f, media.join(f.file_name().unwrap())).unwrap();
        }
        let sidecar = media.join(files()[0].file_name().unwrap()).with_extension("xmp");
        std::fs::write(sidecar, r#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"><dc:subject><rdf:Bag><rdf:li>harbour</rdf:li></rdf:Bag></dc:subject></rdf:Description></rdf:RDF></x:xmpmeta>"#).unwrap();
        let raw_scenes = tmp.path().join("raw-scenes");
        scenes(&raw_scenes, 3, 778);
        run_python(&["tests/reference/make_raw.py", raw_scenes.to_str().unwrap(), media.to_str().unwrap(), media.join("raw-reference").to_str().unwrap()]);
        (tmp, media)
    })
}

/// What must equal the clean run of a library with videos: the check's counts, the videos
/// "a red circle" finds with their moments, and the stills listed with a RAW.
fn video_outcome(data: &Path) -> (Value, Vec<(String, String, i64)>) {
    let mut report = json_of(cmd(data).args(["--json", "check"]));
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
    assert_eq!(report["interrupted_run"], false, "{report}");
    report.as_object_mut().unwrap().remove("graph");
    let found = json_of(cmd(data).args(["--json", "search", "a red circle type:video", "-k", "10", "--mode", "vector"]));
    let mut hits: Vec<(String, String, i64)> = found["results"].as_array().unwrap().iter().map(|r| (r["name"].as_str().unwrap().to_string(), r["moments"].to_string(), (r["score"].as_f64().unwrap() * 1e4).round() as i64)).collect();
    let paired = json_of(cmd(data).args(["--json", "search", "type:dng", "-k", "10"]));
    let names = |r: &Value| r["companions"].as_array().unwrap().iter().map(|c| c["name"].as_str().unwrap().to_string()).collect::<Vec<_>>().join(",");
    hits.extend(paired["results"].as_array().unwrap().iter().map(|r| (r["name"].as_str().unwrap().to_string(), names(r), 0)));
    (report, hits)
}

#[test]
fn index_of_videos_killed_at_random_moments_resumes_to_the_clean_result() {
    let media = &video_corpus().1;
    let run = |data: &Path| {
        let mut c = cmd(data);
        c.args(["index"]).arg(media).stdout(Stdio::null()).stderr(Stdio::null());
        c
    };
    let clean_dir = tempfile::tempdir().unwrap();
    let started = Instant::now();
    assert!(run(clean_dir.path()).status().unwrap().success());
    let took = started.elapsed();
    let clean = video_outcome(clean_dir.path());
    assert_eq!((clean.0["videos"].as_u64(), clean.1.len()), (Some(5), 4 + 3), "five videos, four with moments to find; three stills with their RAW: {clean:?}");
    for (i, delay) in delays(7, 4, took.mul_f64(1.1)).into_iter().enumerate() {
        let data = tempfile::tempdir().unwrap();
        let mut child = run(data.path()).spawn().unwrap();
        std::thread::sleep(delay);
        let _ = child.kill();
        let _ = child.wait();
        eprintln!("video trial {i}: SIGKILL after {:.0} ms", delay.as_secs_f64() * 1000.0);
        assert!(run(data.path()).status().unwrap().success(), "the resumed run succeeds (video trial {i})");
        assert_eq!(video_outcome(data.path()), clean, "video trial {i} ends equal to the clean run");
    }
}
