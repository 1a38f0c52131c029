//! Bad input: a generated corpus of broken, odd and hostile files (tests/reference/
//! make_bad_inputs.py plus links, names and depths made here). Each bad file is reported with a
//! reason, valid oddities are indexed, the run never stops, and a fixed file is picked up by the
//! next run.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use crate::common::*;
use serde_json::Value;

/// The corpus and what should happen to each file (relative path → "indexed" | "reported" | "ignored").
fn corpus(dir: &Path) -> BTreeMap<String, String> {
    let out = run_python(&["tests/reference/make_bad_inputs.py", dir.to_str().unwrap()]);
    let mut expect: BTreeMap<String, String> = serde_json::from_str(&out).unwrap();
    let good = dir.join("one-pixel.png");
    // A symlink loop, a link to a file that no longer exists (a file gone between listing and
    // reading), a non-UTF-8 name and a very deep path.
    std::os::unix::fs::symlink(dir, dir.join("loop")).unwrap();
    std::os::unix::fs::symlink(dir.join("vanished.png"), dir.join("gone.png")).unwrap();
    expect.insert("gone.png".into(), "reported".into());
    let odd = std::ffi::OsStr::from_bytes(b"caf\xe9-\xff.png");
    std::fs::copy(&good, dir.join(odd)).unwrap();
    let mut deep = dir.to_path_buf();
    let mut rel = PathBuf::new();
    for i in 0..120 {
        let part = format!("level-{i:03}-of-a-deep-tree");
        deep.push(&part);
        rel.push(&part);
    }
    std::fs::create_dir_all(&deep).unwrap();
    std::fs::copy(&good, deep.join("deep.png")).unwrap();
    expect.insert(rel.join("deep.png").display().to_string(), "indexed".into());
    expect
}

use std::os::unix::ffi::OsStrExt;

fn errors_by_file(summary: &Value, root: &Path) -> BTreeMap<String, String> {
    let root = std::fs::canonicalize(root).unwrap();
    summary["errors"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| {
            let path = PathBuf::from(e["path"].as_str().unwrap());
            let rel = path.strip_prefix(&root).map(Path::to_path_buf).unwrap_or(path);
            (rel.display().to_string(), e["error"].as_str().unwrap().to_string())
        })
        .collect()
}

#[test]
fn every_bad_input_is_reported_with_a_reason_and_the_run_continues() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    let expect = corpus(&photos);
    let data = tmp.path().join("data");
    let summary = json_of(clipsight(&data).args(["--json", "index"]).arg(&photos));
    let errors = errors_by_file(&summary, &photos);
    eprintln!("{} cases; reported: {errors:#?}", expect.len() + 2);
    for (file, outcome) in &expect {
        match outcome.as_str() {
            "reported" => assert!(errors.get(file).is_some_and(|e| !e.is_empty()), "{file} is reported with a reason: {errors:?}"),
            _ => assert!(!errors.contains_key(file), "{file} is not an error: {:?}", errors.get(file)),
        }
    }
    assert!(errors.keys().any(|k| k.starts_with("loop")), "the symlink loop is reported: {errors:?}");
    let bomb = &errors["bomb.png"];
    assert!(bomb.contains("too large"), "the decompression bomb is refused by the limits: {bomb}");
    // Indexed: the valid oddities, the non-UTF-8 name and the deep path.
    let indexed = expect.values().filter(|o| *o == "indexed").count() + 1;
    assert_eq!(summary["indexed"].as_u64().unwrap() as usize, indexed, "{summary}");
    let check = json_of(clipsight(&data).args(["--json", "check"]));
    assert_eq!(check["problems"], serde_json::json!([]), "{check}");
    let listing = json_of(clipsight(&data).args(["--json", "search", "", "-k", "100"]));
    assert!(
        listing["results"].as_array().unwrap().iter().any(|r| r["path"].as_str().unwrap().contains("caf\u{fffd}-\u{fffd}.png")),
        "the non-UTF-8 name is indexed and shown lossily: {listing}"
    );

    // Fix two files; the next run picks them up and still reports the rest.
    std::fs::copy(photos.join("one-pixel.png"), photos.join("corrupt.png")).unwrap();
    std::fs::copy(photos.join("cmyk.jpg"), photos.join("text-named.jpg")).unwrap();
    let again = json_of(clipsight(&data).args(["--json", "index"]).arg(&photos));
    assert_eq!(again["indexed"], 2, "{again}");
    let errors = errors_by_file(&again, &photos);
    assert!(!errors.contains_key("corrupt.png") && !errors.contains_key("text-named.jpg"));
    assert!(errors.contains_key("bomb.png"));
}

#[test]
fn an_unreadable_file_is_reported_and_the_rest_indexed() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    let expect = corpus(&photos);
    let _ = expect;
    std::fs::copy(photos.join("one-pixel.png"), photos.join("locked.png")).unwrap();
    set_mode(&photos.join("locked.png"), 0o000);
    let data = tmp.path().join("data");
    let summary = if running_as_root() {
        // Root reads anything: run the indexer as `nobody` instead, with everything it needs
        // (binary, model, photos, data dir) reachable by that user.
        for p in [tmp.path(), &photos] {
            set_mode(p, 0o755);
        }
        let bin = tmp.path().join("clipsight");
        std::fs::copy(env!("CARGO_BIN_EXE_clipsight"), &bin).unwrap();
        set_mode(&bin, 0o755);
        std::fs::create_dir_all(&data).unwrap();
        chown_nobody(&data);
        let out = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups", "--"])
            .arg(&bin)
            .arg("--data")
            .arg(&data)
            .arg("--model")
            .arg(fixture_model())
            .args(["--json", "index"])
            .arg(&photos)
            .env("HOME", tmp.path())
            .output()
            .unwrap();
        assert_success(&out);
        serde_json::from_slice::<Value>(&out.stdout).unwrap()
    } else {
        json_of(clipsight(&data).args(["--json", "index"]).arg(&photos))
    };
    let errors = errors_by_file(&summary, &photos);
    let locked = errors.get("locked.png").unwrap_or_else(|| panic!("the unreadable file is reported: {errors:?}"));
    assert!(locked.contains("ermission denied"), "{locked}");
    assert!(summary["indexed"].as_u64().unwrap() >= 6, "the rest is indexed: {summary}");
}

fn running_as_root() -> bool {
    std::process::Command::new("id").arg("-u").output().map(|o| o.stdout.starts_with(b"0\n")).unwrap_or(false)
}

fn set_mode(path: &Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn chown_nobody(path: &Path) {
    assert!(std::process::Command::new("chown").args(["65534:65534"]).arg(path).status().unwrap().success());
}

#[test]
fn files_that_change_or_vanish_during_a_run_leave_a_consistent_library() {
    use std::sync::atomic::{AtomicBool, Ordering};
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    scenes(&photos, 40, 5);
    let a = std::fs::read(photos.join("000001.png")).unwrap();
    let b = std::fs::read(photos.join("000002.png")).unwrap();
    let data = tmp.path().join("data");
    // While the run lists, reads and decodes, one file keeps changing content and another keeps
    // disappearing and coming back.
    let stop = std::sync::Arc::new(AtomicBool::new(false));
    let churn = {
        let (stop, photos, a, b) = (stop.clone(), photos.clone(), a.clone(), b.clone());
        std::thread::spawn(move || {
            let mut i = 0u64;
            while !stop.load(Ordering::Relaxed) {
                std::fs::write(photos.join("changing.png"), if i.is_multiple_of(2) { &a } else { &b }).unwrap();
                if i.is_multiple_of(2) {
                    let _ = std::fs::remove_file(photos.join("vanishing.png"));
                } else {
                    std::fs::write(photos.join("vanishing.png"), &a[..]).unwrap();
                }
                i += 1;
                std::thread::sleep(std::time::Duration::from_millis(3));
            }
        })
    };
    let first = json_of(clipsight(&data).args(["--json", "index"]).arg(&photos));
    stop.store(true, Ordering::Relaxed);
    churn.join().unwrap();
    assert!(first["indexed"].as_u64().unwrap() >= 40, "the run went on: {first}");
    // Settle: the last content of the changing file is `b` or `a`; the next run must match it.
    std::fs::write(photos.join("changing.png"), &b).unwrap();
    std::fs::write(photos.join("vanishing.png"), &a).unwrap();
    json_of(clipsight(&data).args(["--json", "index"]).arg(&photos));
    let check = json_of(clipsight(&data).args(["--json", "check"]));
    assert_eq!(check["problems"], serde_json::json!([]), "{check}");
    assert_eq!(check["files"], 42, "{check}");
    // The stored embedding of the changing file is that of its final content.
    let query = format!("+file:{}", photos.join("000002.png").display());
    let hits = json_of(clipsight(&data).args(["--json", "search", &query, "-k", "3", "--mode", "vector"]));
    let top: Vec<&str> = hits["results"].as_array().unwrap().iter().take(2).map(|r| r["path"].as_str().unwrap()).collect();
    assert!(top.iter().any(|p| p.ends_with("changing.png")) && top.iter().any(|p| p.ends_with("000002.png")), "{hits}");
}

/// One photo's EXIF text as written: the date's bytes (and the day it means, when it is one),
/// and arbitrary bytes for the camera make and model.
#[derive(Debug, Clone)]
struct OddExif {
    date: Vec<u8>,
    day: Option<String>,
    make: Vec<u8>,
    model: Vec<u8>,
}

fn odd_exif() -> impl proptest::strategy::Strategy<Value = OddExif> {
    use proptest::prelude::*;
    let valid = (1990u32..2030, 1u32..=12, 1u32..=28, 0u32..24, 0u32..60).prop_map(|(y, m, d, h, s)| {
        (format!("{y:04}:{m:02}:{d:02} {h:02}:{s:02}:{s:02}").into_bytes(), Some(format!("{y:04}-{m:02}-{d:02}")))
    });
    // A date cut short by a byte that is not ASCII (as "2019:06:0" + UTF-8 "é"), then anything.
    let broken = (0x80u8..=0xFF, proptest::collection::vec(any::<u8>(), 0..12)).prop_map(|(first, rest)| {
        ([b"2019:06:0".as_slice(), &[first], &rest].concat(), None)
    });
    let bytes = || proptest::collection::vec(any::<u8>(), 0..24);
    (prop_oneof![valid, broken], bytes(), bytes()).prop_map(|((date, day), make, model)| OddExif { date, day, make, model })
}

proptest::proptest! {
    #![proptest_config(proptest::prelude::ProptestConfig { cases: 4, failure_persistence: None, ..Default::default() })]

    /// EXIF text of any bytes is indexed; unparseable dates are reported and mean "no date";
    /// facets and every filter keep answering, with the right photos.
    #[test]
    fn exif_text_of_any_bytes_never_breaks_facets_or_filters(photos in proptest::collection::vec(odd_exif(), 6)) {
        use exif::Tag;
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("photos");
        std::fs::create_dir_all(&dir).unwrap();
        let mut photos = photos;
        // One photo with a known camera and date, so every filter has something to find; its
        // DateTimeOriginal is broken, so its date comes from DateTime (and a warning says so).
        photos.push(OddExif { date: b"2020:02:2\xff 12:00:00".to_vec(), day: Some("2020-02-29".into()), make: b"Canon".to_vec(), model: b"EOS \xff".to_vec() });
        let canon = photos.len() - 1;
        for (i, p) in photos.iter().enumerate() {
            let mut fields = vec![(Tag::DateTimeOriginal, p.date.clone()), (Tag::Make, p.make.clone()), (Tag::Model, p.model.clone())];
            if i == canon {
                fields.push((Tag::DateTime, b"2020:02:29 12:00:00".to_vec()));
            }
            std::fs::write(dir.join(format!("{i}.jpg")), jpeg_with_exif([(i * 40) as u8, 90, 160], &fields)).unwrap();
        }
        let data = tmp.path().join("data");
        let summary = json_of(clipsight(&data).args(["--json", "index"]).arg(&dir));
        proptest::prop_assert_eq!(summary["indexed"].as_u64(), Some(photos.len() as u64), "{}", summary);
        let mut warned: Vec<String> = summary["warnings"].as_array().unwrap().iter().map(|w| w["path"].as_str().unwrap().rsplit('/').next().unwrap().to_string()).collect();
        warned.sort();
        let mut broken: Vec<String> = (0..photos.len()).filter(|i| photos[*i].day.is_none() || *i == canon).map(|i| format!("{i}.jpg")).collect();
        broken.sort();
        proptest::prop_assert_eq!(&warned, &broken, "each unparseable date is reported: {}", summary);

        let server = Server::start(&data, &[]);
        let (status, facets) = server.json("GET", "/api/facets", None);
        proptest::prop_assert_eq!(status, 200, "{}", facets);
        let days: std::collections::BTreeSet<&str> = photos.iter().filter_map(|p| p.day.as_deref()).collect();
        proptest::prop_assert_eq!(facets["date_min"].as_str(), days.first().copied());
        proptest::prop_assert_eq!(facets["date_max"].as_str(), days.last().copied());
        let found = |q: &str| -> Vec<String> {
            let (status, v) = server.json("GET", &format!("/api/search?k=100&q={}", q.replace(' ', "%20")), None);
            assert_eq!(status, 200, "{q}: {v}");
            let mut names: Vec<String> = v["results"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_string()).collect();
            names.sort();
            names
        };
        let named = |keep: &dyn Fn(&OddExif) -> bool| -> Vec<String> {
            let mut names: Vec<String> = photos.iter().enumerate().filter(|(_, p)| keep(p)).map(|(i, _)| format!("{i}.jpg")).collect();
            names.sort();
            names
        };
        proptest::prop_assert_eq!(found("after:2020-02-29"), named(&|p| p.day.as_deref().is_some_and(|d| d >= "2020-02-29")));
        proptest::prop_assert_eq!(found("before:2020-02-29"), named(&|p| p.day.as_deref().is_some_and(|d| d < "2020-02-29")));
        proptest::prop_assert!(found("camera:canon").contains(&format!("{canon}.jpg")), "the Canon photo is found");
        for name in found("camera:canon") {
            let i: usize = name.trim_end_matches(".jpg").parse().unwrap();
            let camera = String::from_utf8_lossy(&[photos[i].make.as_slice(), b" ", &photos[i].model].concat()).to_lowercase();
            proptest::prop_assert!(camera.contains("canon"), "{} has camera {:?}", name, camera);
        }
    }
}
