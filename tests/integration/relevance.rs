//! Results you can trust: every hit says whether it is relevant to the query (a cutoff of the
//! query's own, see `src/search/relevance.rs`), the relevant ones can be asked for alone and
//! ordered by capture date, short queries are ensembled over prompt templates, and
//! `clipsight eval` measures the cutoff on held-out scenes against a fixed threshold and the
//! per-query oracle.

use std::collections::HashSet;
use std::path::Path;

use crate::common::*;
use serde_json::Value;

/// The files the generator says are relevant to `text` (one of its relevance queries).
fn truth(manifest: &Value, text: &str) -> HashSet<String> {
    let query = manifest["queries"].as_array().unwrap().iter().find(|q| q["text"] == text).unwrap_or_else(|| panic!("{text:?} is a manifest query"));
    query["relevant"].as_array().unwrap().iter().map(|f| f.as_str().unwrap().to_string()).collect()
}

fn file_name(hit: &Value) -> String {
    Path::new(hit["path"].as_str().unwrap()).file_name().unwrap().to_str().unwrap().to_string()
}

fn relevant_files(response: &Value) -> Vec<String> {
    response["results"].as_array().unwrap().iter().filter(|h| h["relevant"] == true).map(file_name).collect()
}

/// Relevant hits come first in a score order: once a hit is less relevant, all after it are.
fn assert_relevant_first(response: &Value) {
    let flags: Vec<bool> = response["results"].as_array().unwrap().iter().map(|h| h["relevant"].as_bool().unwrap()).collect();
    assert!(flags.windows(2).all(|w| w[0] || !w[1]), "a relevant hit after a less relevant one: {flags:?}");
}

#[test]
fn every_hit_says_whether_it_is_relevant_and_the_response_counts_them() {
    let lib = scene_library();
    let mut f1s = Vec::new();
    for query in ["red", "circle", "red circle", "a small blue square", "a green star on the left"] {
        // Hybrid ranking (the default) interleaves keyword matches: the relevant still come first.
        assert_relevant_first(&json_of(clipsight(&lib.data).args(["--json", "search", query, "-k", "300"])));
        let response = json_of(clipsight(&lib.data).args(["--json", "search", query, "-k", "300", "--mode", "vector"]));
        assert_relevant_first(&response);
        let relevant = relevant_files(&response);
        assert_eq!(response["relevant_count"], relevant.len(), "{query}: relevant_count counts the relevant hits");
        assert_eq!(response["relevant_more"], false);
        assert!(!relevant.is_empty(), "{query}: the best hit is relevant");
        let truth = truth(&lib.manifest, query);
        let correct = relevant.iter().filter(|f| truth.contains(*f)).count();
        let (precision, recall) = (correct as f64 / relevant.len() as f64, correct as f64 / truth.len().max(1) as f64);
        let f1 = if correct == 0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
        eprintln!("{query:28} judged {:3}, truly {:3}: precision {precision:.2} recall {recall:.2} F1 {f1:.2}", relevant.len(), truth.len());
        f1s.push(f1);
    }
    // What `clipsight eval` measures over 264 queries, on five: better than chance on each, and
    // about half right on average (the held-out mean F1 is 0.53).
    assert!(f1s.iter().all(|&f| f > 0.2), "{f1s:?}");
    assert!(f1s.iter().sum::<f64>() / f1s.len() as f64 >= 0.45, "{f1s:?}");
}

#[test]
fn relevant_only_pages_through_exactly_the_relevant_hits() {
    let lib = scene_library();
    let all = json_of(clipsight(&lib.data).args(["--json", "search", "red", "-k", "300", "--mode", "vector"]));
    let relevant = relevant_files(&all);
    assert!(relevant.len() > 10, "precondition: more relevant hits than a page ({})", relevant.len());
    let mut paged = Vec::new();
    for offset in (0..relevant.len() + 10).step_by(10) {
        let page = json_of(clipsight(&lib.data).args(["--json", "search", "red", "-k", "10", "--mode", "vector", "--relevant-only", "--offset", &offset.to_string()]));
        assert_eq!(page["relevant_count"], relevant.len(), "every page counts them all");
        assert!(page["results"].as_array().unwrap().iter().all(|h| h["relevant"] == true));
        paged.extend(page["results"].as_array().unwrap().iter().map(file_name));
    }
    assert_eq!(paged, relevant, "the pages hold the relevant hits, in order, once each");
}

#[test]
fn image_and_mixed_queries_are_judged_on_their_own_scores() {
    let lib = scene_library();
    let blue_square = lib.single("blue", "square");
    let similar = json_of(clipsight(&lib.data).args(["--json", "similar", "-k", "300"]).arg(lib.photos.join(&blue_square)));
    assert_relevant_first(&similar);
    assert_eq!(file_name(&similar["results"][0]), blue_square, "the image itself ranks first");
    assert_eq!(similar["results"][0]["relevant"], true);
    let count = similar["relevant_count"].as_u64().unwrap();
    assert!((1..300).contains(&count), "some, not all, images are like it: {count}");

    // Text and image together: "a red circle" plus a stored red circle.
    let server = InProcess::read_only(&lib.data);
    let red_circle = server.id_of(&lib.single("red", "circle"));
    let (status, mixed) = server.json("GET", &format!("/api/search?k=300&mode=vector&q={}", urlencode(&format!("a red circle +img:{red_circle}"))), None);
    assert_eq!(status, 200, "{mixed}");
    assert_relevant_first(&mixed);
    let relevant = relevant_files(&mixed);
    let truth = truth(&lib.manifest, "red circle");
    let correct = relevant.iter().filter(|f| truth.contains(*f)).count();
    assert!(correct * 2 >= relevant.len(), "most of the mixed query's relevant hits are red circles: {correct} of {}", relevant.len());
}

#[test]
fn the_relevant_hits_can_be_ordered_by_capture_date_newest_or_oldest_first() {
    let tmp = tempfile::tempdir().unwrap();
    let (photos, _, undated) = dated_library(tmp.path());
    let data = tmp.path().join("data");
    let summary = json_of(clipsight(&data).args(["--json", "index"]).arg(&photos));
    assert_eq!(summary["indexed"], 61, "{summary}");
    let by_score = json_of(clipsight(&data).args(["--json", "search", "red", "-k", "61", "--mode", "vector"]));
    let relevant: HashSet<String> = relevant_files(&by_score).into_iter().collect();
    assert!(relevant.len() >= 3, "precondition: a few red scenes ({})", relevant.len());
    assert!(relevant.contains(&undated), "precondition: the undated red scene is relevant");

    let dates = |response: &Value| -> Vec<Option<String>> {
        response["results"].as_array().unwrap().iter().filter(|h| h["relevant"] == true).map(|h| h["date_taken"].as_str().map(String::from)).collect()
    };
    for (flags, newest_first) in [(&["--sort", "date"][..], true), (&["--sort", "date", "--oldest-first"], false)] {
        let response = json_of(clipsight(&data).args(["--json", "search", "red", "-k", "61", "--mode", "vector"]).args(flags));
        assert_relevant_first(&response);
        assert_eq!(response["relevant_count"], relevant.len());
        let got: HashSet<String> = relevant_files(&response).into_iter().collect();
        assert_eq!(got, relevant, "the same relevant hits, reordered");
        let dated: Vec<String> = dates(&response).into_iter().flatten().collect();
        let mut sorted = dated.clone();
        sorted.sort();
        if newest_first {
            sorted.reverse();
        }
        assert_eq!(dated, sorted, "{flags:?}: relevant hits by date");
        assert_eq!(relevant_files(&response).last(), Some(&undated), "the undated hit follows the dated ones");
        // The less relevant rest keeps its score order.
        let rest: Vec<f64> = response["results"].as_array().unwrap().iter().filter(|h| h["relevant"] == false).map(|h| h["score"].as_f64().unwrap()).collect();
        assert!(rest.windows(2).all(|w| w[0] >= w[1]), "the rest by score");
    }

    for flags in [&["--oldest-first"][..], &["--sort", "score", "--oldest-first"]] {
        let out = clipsight(&data).args(["search", "red"]).args(flags).output().unwrap();
        assert_eq!(out.status.code(), Some(2), "{flags:?} is a usage error: {}", String::from_utf8_lossy(&out.stderr));
    }

    // Over REST: relevant=true with sort=date&order=oldest, paged; bad values are 400s.
    let server = InProcess::read_only(&data);
    let (status, oldest) = server.json("GET", "/api/search?q=red&mode=vector&relevant=true&sort=date&order=oldest&k=61", None);
    assert_eq!(status, 200, "{oldest}");
    let cli = json_of(clipsight(&data).args(["--json", "search", "red", "-k", "61", "--mode", "vector", "--sort", "date", "--oldest-first", "--relevant-only"]));
    let ids = |v: &Value| v["results"].as_array().unwrap().iter().map(|h| h["id"].as_u64().unwrap()).collect::<Vec<_>>();
    assert_eq!(ids(&oldest), ids(&cli), "REST and CLI agree");
    assert_eq!(ids(&oldest).len(), relevant.len());
    let (_, second) = server.json("GET", "/api/search?q=red&mode=vector&relevant=true&sort=date&order=oldest&k=2&offset=1", None);
    assert_eq!(ids(&second), ids(&oldest)[1..3.min(ids(&oldest).len())].to_vec(), "pages of the date order");
    for bad in ["sort=oldest", "order=backwards", "relevant=maybe"] {
        let (status, body) = server.json("GET", &format!("/api/search?q=red&{bad}"), None);
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body["error"]["message"].is_string(), "{bad}: {body}");
    }
    let (status, body) = server.json("POST", "/api/search", Some(serde_json::json!({"q": "red", "relevant": true, "sort": "date", "order": "newest", "k": 61})));
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["results"].as_array().unwrap().len(), relevant.len());
}

/// The figures of the README, on 1,500 held-out scenes (seed 1000002; training used seeds below
/// 1000000 and the cutoff's fraction was chosen on seed 1000001):
/// every query with relevant images keeps at least one, the per-query cutoff does at least as
/// well as the best fixed threshold chosen on the other queries (the target of 5 F1
/// points above it and half the gap to the oracle is not reached, and lies above even a cut at
/// each query's true number of relevant images: see the README), and ensembling short queries does not lose recall.
#[test]
fn on_held_out_scenes_the_per_query_cutoff_is_measured_against_a_fixed_threshold_and_the_oracle() {
    let _heavy = heavy();
    let tmp = tempfile::tempdir().unwrap();
    let eval_dir = tmp.path().join("eval");
    scenes(&eval_dir, 1500, 1_000_002);
    let report = json_of(clipsight(&tmp.path().join("data")).args(["--json", "eval"]).arg(&eval_dir));
    let r = &report["relevance"];
    eprintln!("{}", serde_json::to_string_pretty(r).unwrap());
    let f1 = |path: &str| r[path]["f1"].as_f64().unwrap();
    assert_eq!(r["queries"], 264);
    assert!(f1("per_query") >= f1("fixed") - 0.01, "per-query F1 {} vs fixed {}", f1("per_query"), f1("fixed"));
    assert!(r["oracle_f1"].as_f64().unwrap() >= f1("per_query"));
    // The oracle's lead is mostly hindsight: cutting each ranking at its true number of relevant
    // images, which no cutoff knows, stays well below it.
    let known = r["known_count_f1"].as_f64().unwrap();
    assert!(known < r["oracle_f1"].as_f64().unwrap() - 0.05, "cut at the true count {known}: {r}");
    assert!(r["none_relevant"].as_f64().unwrap() <= 0.05, "queries left without relevant hits {}", r["none_relevant"]);
    let e = &r["ensembling"];
    assert_eq!(e["queries"], 80, "the one- and two-word queries");
    assert!(e["recall_at_10_ensembled"].as_f64() >= e["recall_at_10_as_typed"].as_f64(), "{e}");
}

/// In hybrid mode an image whose metadata matches the words is relevant, whatever its cosine:
/// a file searched by its name comes first and counts.
#[test]
fn a_keyword_match_is_relevant_in_hybrid_mode() {
    let lib = scene_library();
    let name = lib.single("blue", "square");
    let stem = name.trim_end_matches(".png");
    let response = json_of(clipsight(&lib.data).args(["--json", "search", stem, "-k", "20"]));
    assert_relevant_first(&response);
    let hit = response["results"].as_array().unwrap().iter().find(|h| file_name(h) == name).expect("the named file is found");
    assert_eq!(hit["relevant"], true, "{response}");
}
