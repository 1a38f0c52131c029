//! End-to-end behaviour of the `clipsight` CLI with the trained fixture model: real retrieval on
//! generated scenes, zero-shot classification, incremental re-indexing and bad input.

use std::path::Path;

use crate::common::*;
use serde_json::Value;

#[test]
fn text_search_ranks_a_red_circle_first() {
    let lib = scene_library();
    assert!(!lib.singles("red", "circle").is_empty(), "precondition: the scene seed contains a red circle");
    // The default (hybrid) ranking: no file name or folder mentions red circles, so CLIP decides.
    let v = json_of(clipsight(&lib.data).args(["--json", "search", "a red circle", "-k", "5"]));
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    assert!(v["took_ms"].as_f64().unwrap() >= 0.0);
    let top = lib.caption_of(results[0]["path"].as_str().unwrap());
    assert!(top.contains("red circle"), "top result is {top:?}");
    let scores: Vec<f64> = results.iter().map(|r| r["score"].as_f64().unwrap()).collect();
    assert!(scores.windows(2).all(|w| w[0] >= w[1]), "scores descend: {scores:?}");
    assert!(results[0]["id"].as_u64().is_some());
}

#[test]
fn search_pages_with_offset() {
    let lib = scene_library();
    let all = json_of(clipsight(&lib.data).args(["--json", "search", "a green star", "-k", "6"]));
    let page = json_of(clipsight(&lib.data).args(["--json", "search", "a green star", "-k", "3", "--offset", "3"]));
    assert_eq!(all["results"].as_array().unwrap()[3..].to_vec(), *page["results"].as_array().unwrap());
}

#[test]
fn classify_picks_the_right_shape_with_probability_above_half() {
    let lib = scene_library();
    let shapes = ["circle", "square", "triangle", "star", "cross", "heart", "hexagon", "diamond"];
    let labels = shapes.iter().map(|s| format!("a photo of a {s}")).collect::<Vec<_>>().join(",");
    let cases: Vec<(String, String)> = lib.manifest["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|i| Some((i["file"].as_str()?.to_string(), i["labels"]["shape"].as_str()?.to_string())))
        .take(10)
        .collect();
    let mut correct = 0;
    for (file, shape) in &cases {
        let v = json_of(clipsight(&lib.data).args(["--json", "classify"]).arg(lib.photos.join(file)).args(["--labels", &labels]));
        let probs: Vec<f64> = v["labels"].as_array().unwrap().iter().map(|l| l["prob"].as_f64().unwrap()).collect();
        assert!((probs.iter().sum::<f64>() - 1.0).abs() < 1e-4, "probabilities sum to 1");
        assert_eq!(v["labels"][0]["label"], "a photo of a circle", "labels keep their order");
        let best = v["best"].as_str().unwrap();
        let p = v["labels"].as_array().unwrap().iter().find(|l| l["label"] == best).unwrap()["prob"].as_f64().unwrap();
        if best == format!("a photo of a {shape}") && p > 0.5 {
            correct += 1;
        }
    }
    assert!(correct >= 9, "{correct}/10 single-object scenes classified right with p > 0.5");
}

/// Every single blue square of the library, used as the query, comes back first itself, then
/// images that share its colour or its shape, the library's other single blue squares among them.
#[test]
fn similar_on_a_blue_square_returns_blue_squares_first() {
    let lib = scene_library();
    let squares = lib.singles("blue", "square");
    assert!(squares.len() >= 2, "precondition: the scene seed contains two single blue squares");
    for query in &squares {
        let v = json_of(clipsight(&lib.data).args(["--json", "similar"]).arg(lib.photos.join(query)).args(["-k", "10"]));
        let files: Vec<String> =
            v["results"].as_array().unwrap().iter().map(|r| r["path"].as_str().unwrap().rsplit('/').next().unwrap().to_string()).collect();
        let captions: Vec<String> = files.iter().map(|f| lib.caption_of(f)).collect();
        assert_eq!(&files[0], query, "the image itself comes first: {captions:?}");
        assert!(v["results"][0]["score"].as_f64().unwrap() > 0.999);
        // Most of its neighbours share its colour or its shape, the other blue squares among them.
        let alike = captions[1..].iter().filter(|c| c.contains("blue") || c.contains("square")).count();
        assert!(alike * 3 >= (captions.len() - 1) * 2, "{alike} alike: {captions:?}");
        for other in squares.iter().filter(|s| *s != query) {
            assert!(files.contains(other), "{other} among the nearest: {captions:?}");
        }
    }
}

#[test]
fn embed_prints_unit_vectors_of_the_model_dimension() {
    let lib = scene_library();
    let v = json_of(clipsight(&lib.data).args(["--json", "embed", "--text", "a red circle", "--text", "a blue square"]));
    let dim = v["dim"].as_u64().unwrap() as usize;
    assert_eq!(v["model"].as_str().unwrap().len(), 32);
    for row in v["embeddings"].as_array().unwrap() {
        let row: Vec<f64> = serde_json::from_value(row.clone()).unwrap();
        assert_eq!(row.len(), dim);
        assert!((row.iter().map(|x| x * x).sum::<f64>() - 1.0).abs() < 1e-4);
    }
}

#[test]
fn embed_and_matrix_take_several_files_after_one_flag_as_a_shell_glob_gives_them() {
    let lib = scene_library();
    let files: Vec<std::path::PathBuf> =
        lib.manifest["images"].as_array().unwrap()[..3].iter().map(|i| lib.photos.join(i["file"].as_str().unwrap())).collect();
    // `--image photos/*.png` reaches clipsight as one flag followed by every file.
    let mut glob = clipsight(&lib.data);
    glob.args(["--json", "embed", "--image"]).args(&files);
    let one_flag = json_of(&mut glob);
    let mut repeated = clipsight(&lib.data);
    repeated.args(["--json", "embed"]);
    for f in &files {
        repeated.arg("--image").arg(f);
    }
    assert_eq!(one_flag["embeddings"].as_array().unwrap().len(), 3);
    assert_eq!(one_flag["embeddings"], json_of(&mut repeated)["embeddings"], "both spellings embed the same files");
    let texts = json_of(clipsight(&lib.data).args(["--json", "embed", "--text", "a red circle", "a blue square"]));
    assert_eq!(texts["embeddings"].as_array().unwrap().len(), 2);
    let mut matrix = clipsight(&lib.data);
    matrix.args(["--json", "matrix", "--image"]).args(&files).args(["--text", "a red circle", "a blue square"]);
    let sim: Vec<Vec<f64>> = serde_json::from_value(json_of(&mut matrix)["similarity"].clone()).unwrap();
    assert_eq!((sim.len(), sim[0].len()), (3, 2));
}

#[test]
fn matrix_prints_similarities_and_the_infonce_loss_of_matched_pairs() {
    let lib = scene_library();
    let imgs = lib.manifest["images"].as_array().unwrap()[..3].to_vec();
    let mut cmd = clipsight(&lib.data);
    cmd.args(["--json", "matrix"]);
    for i in &imgs {
        cmd.arg("--image").arg(lib.photos.join(i["file"].as_str().unwrap()));
    }
    for i in &imgs {
        cmd.arg("--text").arg(i["caption"].as_str().unwrap());
    }
    let v = json_of(&mut cmd);
    let sim: Vec<Vec<f64>> = serde_json::from_value(v["similarity"].clone()).unwrap();
    assert_eq!((sim.len(), sim[0].len()), (3, 3));
    // Matched captions score highest in their row for a trained model.
    for (i, row) in sim.iter().enumerate() {
        assert!(row.iter().all(|s| *s >= -1.0 && *s <= 1.0));
        assert_eq!(row.iter().enumerate().max_by(|a, b| a.1.total_cmp(b.1)).unwrap().0, i, "row {i}: {row:?}");
    }
    // The loss equals the symmetric InfoNCE recomputed here with the model's logit scale.
    let cfg: Value = serde_json::from_str(&std::fs::read_to_string(fixture_model().join("config.json")).unwrap()).unwrap();
    let scale = cfg["logit_scale"].as_f64().unwrap_or(100.0);
    let ce = |logits: Vec<f64>, t: usize| {
        let m = logits.iter().cloned().fold(f64::MIN, f64::max);
        let z: f64 = logits.iter().map(|l| (l - m).exp()).sum();
        -((logits[t] - m) - z.ln())
    };
    let rows: f64 = (0..3).map(|i| ce(sim[i].iter().map(|s| s * scale).collect(), i)).sum();
    let cols: f64 = (0..3).map(|j| ce((0..3).map(|i| sim[i][j] * scale).collect(), j)).sum();
    let expected = (rows + cols) / 6.0;
    assert!((v["loss"].as_f64().unwrap() - expected).abs() < 1e-3, "{} vs {expected}", v["loss"]);
}

#[test]
fn stats_report_no_missing_embeddings_after_indexing() {
    let lib = scene_library();
    let v = json_of(clipsight(&lib.data).args(["--json", "stats"]));
    assert_eq!(v["images"], 300);
    assert_eq!(v["missing_embeddings"], 0);
    assert_eq!(v["interrupted_run"], false);
}

#[test]
fn stats_read_the_store_without_a_model() {
    let home = tempfile::tempdir().unwrap(); // no default model here
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_clipsight"))
        .arg("--data")
        .arg(&scene_library().data)
        .args(["--json", "stats"])
        .env_remove("CLIPSIGHT_MODEL")
        .env("HOME", home.path())
        .env("XDG_CACHE_HOME", home.path())
        .env("XDG_DATA_HOME", home.path())
        .output()
        .unwrap();
    assert_success(&out);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((v["images"].as_u64(), v["missing_embeddings"].as_u64()), (Some(300), Some(0)), "{v}");
    assert_eq!((v["model"].is_null(), v["graph"].as_str()), (true, Some("unloaded")), "{v}");
    assert_eq!(v["active_model"].as_str().map(str::len), Some(32), "{v}");
}

fn index(data: &Path, photos: &Path) -> Value {
    json_of(clipsight(data).args(["--json", "index"]).arg(photos))
}

#[test]
fn reindexing_skips_unchanged_recognises_moves_and_removes_deleted_files() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    let data = tmp.path().join("data");
    scenes(&photos, 12, 77);
    std::fs::remove_file(photos.join("manifest.json")).unwrap();
    let first = index(&data, &photos);
    assert_eq!((first["scanned"].as_u64(), first["indexed"].as_u64()), (Some(12), Some(12)));

    let again = index(&data, &photos);
    assert_eq!((again["unchanged"].as_u64(), again["indexed"].as_u64()), (Some(12), Some(0)), "{again}");

    std::fs::create_dir(photos.join("moved")).unwrap();
    std::fs::rename(photos.join("000001.png"), photos.join("moved/renamed.png")).unwrap();
    std::fs::remove_file(photos.join("000002.png")).unwrap();
    std::fs::copy(photos.join("000004.png"), photos.join("000003.png")).unwrap();
    let third = index(&data, &photos);
    assert_eq!(third["moved"], 1, "{third}");
    assert_eq!(third["removed"], 1, "{third}");
    assert_eq!(third["indexed"], 1, "the overwritten file is re-indexed: {third}");
    assert_eq!(third["unchanged"], 9, "{third}");

    // The moved file keeps being found, under its new path.
    let v = json_of(clipsight(&data).args(["--json", "similar"]).arg(photos.join("moved/renamed.png")).args(["-k", "1"]));
    assert!(v["results"][0]["path"].as_str().unwrap().ends_with("moved/renamed.png"));
    let stats = json_of(clipsight(&data).args(["--json", "stats"]));
    assert_eq!(stats["images"], 11);
}

#[test]
fn a_corrupt_file_is_reported_and_skipped_and_picked_up_once_fixed() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    let data = tmp.path().join("data");
    scenes(&photos, 4, 99);
    let good = std::fs::read(photos.join("000001.png")).unwrap();
    std::fs::write(photos.join("broken.png"), &good[..good.len() / 3]).unwrap();
    std::fs::write(photos.join("empty.jpg"), b"").unwrap();
    std::fs::write(photos.join("notes.jpg"), b"not an image at all").unwrap();
    let v = index(&data, &photos);
    assert_eq!(v["indexed"], 4, "{v}");
    assert_eq!(v["failed"], 3, "{v}");
    let reason = |v: &Value, name: &str| -> String {
        let errors = v["errors"].as_array().unwrap();
        errors.iter().find(|e| e["path"].as_str().unwrap().ends_with(name)).map(|e| e["error"].as_str().unwrap().to_string()).unwrap_or_default()
    };
    assert!(reason(&v, "broken.png").contains("corrupt"), "{v}");
    assert!(reason(&v, "empty.jpg").contains("empty file"), "{v}");
    assert!(reason(&v, "notes.jpg").contains("not a supported image"), "{v}");

    std::fs::write(photos.join("broken.png"), &good).unwrap();
    let fixed = index(&data, &photos);
    assert_eq!((fixed["indexed"].as_u64(), fixed["failed"].as_u64()), (Some(1), Some(2)), "{fixed}");
    assert_eq!(reason(&fixed, "broken.png"), "", "the fixed file is no longer reported");
}

#[test]
fn a_second_writer_is_refused_while_the_library_is_open() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    scenes(&photos, 2, 5);
    let _writer = clipsight::store::Store::open(&tmp.path().join("data"), clipsight::store::OpenMode::ReadWrite).unwrap();
    let out = clipsight(&tmp.path().join("data")).arg("index").arg(&photos).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("in use by pid {}", std::process::id())), "{err}");
}

#[test]
fn searching_a_missing_library_explains_how_to_create_one() {
    let tmp = tempfile::tempdir().unwrap();
    let out = clipsight(&tmp.path().join("nothing")).args(["search", "cat"]).output().unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("clipsight index"));
}

#[test]
fn model_info_describes_the_fixture_model() {
    let tmp = tempfile::tempdir().unwrap();
    let v = json_of(clipsight(tmp.path()).args(["--json", "model", "info"]));
    assert_eq!(v["image_input"], "Float32Nchw");
    assert_eq!(v["text_ids"], "Int32");
    assert_eq!(v["device"], "Cpu");
    assert_eq!(v["context_length"], 77);
    assert_eq!((v["family"].as_str(), v["text_inputs"].clone()), (Some("CLIP (OpenAI/open_clip)"), serde_json::json!(["text:int32"])), "{v}");
}

#[test]
fn asking_for_cuda_without_it_falls_back_to_cpu_with_one_log_line() {
    let tmp = tempfile::tempdir().unwrap();
    let out = clipsight(tmp.path()).args(["--json", "--device", "cuda", "model", "info"]).output().unwrap();
    assert_success(&out);
    let v: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["device"], "Cpu");
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(err.matches("falling back to CPU").count(), 1, "{err}");
}

#[test]
fn exif_metadata_and_orientation_are_recorded() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let script = r#"
import sys
from PIL import Image
img = Image.new("RGB", (300, 200), (200, 40, 40))
exif = img.getexif()
exif[0x010F] = "Canon"; exif[0x0110] = "EOS 5D"; exif[0x0112] = 6
exif.get_ifd(0x8769)[0x9003] = "2019:06:01 10:20:30"
gps = exif.get_ifd(0x8825)
gps[1] = "N"; gps[2] = (48.0, 51.0, 30.0); gps[3] = "W"; gps[4] = (2.0, 21.0, 0.0)
img.save(sys.argv[1], quality=90, exif=exif)
"#;
    let target = photos.join("camera.jpg");
    run_python(&["-c", script, target.to_str().unwrap()]);
    let data = tmp.path().join("data");
    index(&data, &photos);
    let store = clipsight::store::Store::open(&data, clipsight::store::OpenMode::ReadOnly).unwrap();
    let (_, record) = store.files().next().unwrap().unwrap();
    assert_eq!((record.width, record.height), (200, 300), "orientation 6 turns the image upright");
    assert_eq!(record.format, "jpeg");
    assert_eq!(record.exif.make.as_deref(), Some("Canon"));
    assert_eq!(record.exif.model.as_deref(), Some("EOS 5D"));
    assert_eq!(record.exif.date_taken.map(|d| d.to_string()).as_deref(), Some("2019-06-01 10:20:30"));
    let (lat, lon) = record.exif.gps.unwrap();
    assert!((lat - 48.858333).abs() < 1e-4 && (lon + 2.35).abs() < 1e-4, "{lat} {lon}");
    let v = json_of(clipsight(&data).args(["--json", "search", "camera:canon after:2019-01-01 type:jpg"]));
    assert_eq!(v["results"].as_array().unwrap().len(), 1);
}

#[test]
fn query_language_combines_images_negatives_and_filters() {
    let lib = scene_library();
    // +img:ID finds the image itself first.
    let first = json_of(clipsight(&lib.data).args(["--json", "search", "a blue square", "-k", "1"]));
    let id = first["results"][0]["id"].as_u64().unwrap();
    let by_id = json_of(clipsight(&lib.data).args(["--json", "search", &format!("+img:{id}"), "-k", "1"]));
    assert_eq!(by_id["results"][0]["id"].as_u64(), Some(id));
    // Subtracting "blue" moves blue squares out of the squares' top 10.
    let blue_singles = |v: &Value| {
        v["results"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| lib.caption_of(r["path"].as_str().unwrap()))
            .filter(|c| c.contains("blue") && !c.contains(" and "))
            .count()
    };
    let plain = json_of(clipsight(&lib.data).args(["--json", "search", "a square", "-k", "10"]));
    let minus = json_of(clipsight(&lib.data).args(["--json", "search", "a square -blue", "-k", "10"]));
    assert!(blue_singles(&plain) >= 1, "precondition: a blue square among the squares' top 10");
    assert_eq!(blue_singles(&minus), 0, "{minus}");
    // A score threshold drops weak results.
    let strict = json_of(clipsight(&lib.data).args(["--json", "search", "a red circle", "-k", "50", "--min-score", "0.6"]));
    assert!(strict["results"].as_array().unwrap().iter().all(|r| r["score"].as_f64().unwrap() >= 0.6));
}

#[test]
fn folder_filters_apply_inside_the_ranking_and_still_fill_k() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    scenes(&photos.join("trips/2019"), 8, 11);
    scenes(&photos.join("home"), 8, 12);
    let data = tmp.path().join("data");
    index(&data, &photos);
    let v = json_of(clipsight(&data).args(["--json", "search", "a red circle folder:trips/2019", "-k", "5"]));
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 5, "k results although most of the best matches may be elsewhere");
    assert!(results.iter().all(|r| r["path"].as_str().unwrap().contains("/trips/2019/")));
    let none = json_of(clipsight(&data).args(["--json", "search", "a red circle type:jpeg"]));
    assert!(none["results"].as_array().unwrap().is_empty(), "all scenes are PNG");
}

#[test]
fn a_malformed_query_is_an_error_pointing_at_the_token() {
    let lib = scene_library();
    let out = clipsight(&lib.data).args(["search", "dog after:2019-13-01"]).output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("column 5") && err.contains("after:2019-13-01"), "{err}");
}

#[test]
fn an_index_run_killed_midway_leaves_a_library_that_reopens_and_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    let data = tmp.path().join("data");
    scenes(&photos, 120, 31);
    std::fs::remove_file(photos.join("manifest.json")).unwrap();
    let mut child = clipsight(&data).args(["index", "--batch-size", "8"]).arg(&photos).spawn().unwrap();
    // Wait until some batches are committed (a reader sees them), then SIGKILL: no clean-up.
    let started = std::time::Instant::now();
    while started.elapsed().as_secs() < 60 {
        std::thread::sleep(std::time::Duration::from_millis(100));
        let out = clipsight(&data).args(["--json", "stats"]).output().unwrap();
        let images = serde_json::from_slice::<Value>(&out.stdout).ok().and_then(|v| v["images"].as_u64()).unwrap_or(0);
        if images >= 8 {
            break;
        }
    }
    child.kill().unwrap();
    child.wait().unwrap();
    let stats = json_of(clipsight(&data).args(["--json", "stats"]));
    let partial = stats["images"].as_u64().unwrap();
    eprintln!("killed after {partial} committed images; interrupted_run = {}", stats["interrupted_run"]);
    let resumed = index(&data, &photos);
    assert_eq!(resumed["unchanged"].as_u64().unwrap(), partial, "committed work is kept: {resumed}");
    assert_eq!(resumed["indexed"].as_u64().unwrap() + partial, 120, "{resumed}");
    let stats = json_of(clipsight(&data).args(["--json", "stats"]));
    assert_eq!((stats["images"].as_u64(), stats["missing_embeddings"].as_u64()), (Some(120), Some(0)));
    assert_eq!(stats["interrupted_run"], false);
}

#[test]
fn hybrid_search_fuses_file_name_keywords_with_clip_similarity() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    let manifest = scenes(&photos.join("misc"), 20, 21);
    // Name one unremarkable scene after what a user would type.
    let plain = manifest["images"].as_array().unwrap().iter().find(|i| !i["caption"].as_str().unwrap().contains("red")).unwrap();
    std::fs::rename(photos.join("misc").join(plain["file"].as_str().unwrap()), photos.join("misc/birthday_party.png")).unwrap();
    let data = tmp.path().join("data");
    index(&data, &photos);
    let keyword = json_of(clipsight(&data).args(["--json", "search", "birthday", "--mode", "keyword"]));
    assert_eq!(keyword["results"].as_array().unwrap().len(), 1);
    assert!(keyword["results"][0]["path"].as_str().unwrap().ends_with("birthday_party.png"));
    let hybrid = json_of(clipsight(&data).args(["--json", "search", "birthday", "-k", "5"]));
    assert!(hybrid["results"][0]["path"].as_str().unwrap().ends_with("birthday_party.png"), "{hybrid}");
    assert_eq!(hybrid["results"].as_array().unwrap().len(), 5, "vector results fill the page");
    let vector = json_of(clipsight(&data).args(["--json", "search", "a red circle", "--mode", "vector", "-k", "3"]));
    let hybrid = json_of(clipsight(&data).args(["--json", "search", "a red circle", "-k", "3"]));
    assert_eq!(vector["results"], hybrid["results"], "no keyword match: hybrid is the vector ranking");
}

#[test]
fn describe_returns_the_scenes_own_caption_from_an_added_corpus() {
    let lib = scene_library();
    let tmp = tempfile::tempdir().unwrap();
    // A private copy of the library: adding texts writes to it.
    let data = tmp.path().join("data");
    index(&data, &lib.photos);
    let captions: Vec<&str> = lib.manifest["images"].as_array().unwrap().iter().map(|i| i["caption"].as_str().unwrap()).collect();
    std::fs::write(tmp.path().join("captions.txt"), captions.join("\n")).unwrap();
    let added = json_of(clipsight(&data).args(["--json", "texts", "add"]).arg(tmp.path().join("captions.txt")));
    assert!(added["added"].as_u64().unwrap() > 200);
    let mut right = 0;
    for image in &lib.manifest["images"].as_array().unwrap()[..10] {
        let file = lib.photos.join(image["file"].as_str().unwrap());
        let v = json_of(clipsight(&data).args(["--json", "describe"]).arg(&file).args(["-k", "3"]));
        assert_eq!(v["captions"].as_array().unwrap().len(), 3);
        assert_eq!(v["tags"].as_array().unwrap().len(), 3);
        if v["captions"][0]["text"] == image["caption"] {
            right += 1;
        }
    }
    assert!(right >= 8, "{right}/10 images described by their own caption");
    // An indexed image can be described by id.
    let id = json_of(clipsight(&data).args(["--json", "search", "a red circle", "-k", "1"]))["results"][0]["id"].as_u64().unwrap();
    let by_id = json_of(clipsight(&data).args(["--json", "describe", &id.to_string()]));
    assert!(by_id["captions"][0]["text"].as_str().unwrap().contains("red"));
}

#[test]
fn automatic_tags_from_a_vocabulary_make_images_keyword_searchable() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    let manifest = scenes(&photos, 60, 8);
    let shapes = "circle\nsquare\ntriangle\nstar\ncross\nheart\nhexagon\ndiamond\n";
    std::fs::write(tmp.path().join("tags.txt"), shapes).unwrap();
    let data = tmp.path().join("data");
    json_of(clipsight(&data).args(["--json", "index", "--tags"]).arg(tmp.path().join("tags.txt")).arg(&photos));
    let stars: Vec<&str> = manifest["images"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|i| i["labels"]["shape"] == "star")
        .map(|i| i["file"].as_str().unwrap())
        .collect();
    assert!(!stars.is_empty(), "precondition: the seed has single stars");
    let v = json_of(clipsight(&data).args(["--json", "search", "star", "--mode", "keyword", "-k", "60"]));
    let found: Vec<String> = v["results"].as_array().unwrap().iter().map(|r| r["path"].as_str().unwrap().to_string()).collect();
    let tagged = stars.iter().filter(|s| found.iter().any(|f| f.ends_with(*s))).count();
    assert!(tagged * 10 >= stars.len() * 8, "{tagged}/{} single stars tagged 'star'", stars.len());
    // Hybrid ranking fuses file system and EXIF words only: the tags (CLIP's own opinion, coarser)
    // leave the vector ranking as it is.
    let vector = json_of(clipsight(&data).args(["--json", "search", "a star", "--mode", "vector", "-k", "10"]));
    let hybrid = json_of(clipsight(&data).args(["--json", "search", "a star", "-k", "10"]));
    assert_eq!(vector["results"], hybrid["results"]);
}

#[test]
fn duplicates_groups_identical_and_near_identical_images() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    scenes(&photos, 10, 3);
    std::fs::copy(photos.join("000004.png"), photos.join("copy_of_4.png")).unwrap();
    run_python(&[
        "-c",
        "import sys; from PIL import Image; Image.open(sys.argv[1]).save(sys.argv[2], quality=85)",
        photos.join("000007.png").to_str().unwrap(),
        photos.join("recompressed_7.jpg").to_str().unwrap(),
    ]);
    let data = tmp.path().join("data");
    index(&data, &photos);
    let v = json_of(clipsight(&data).args(["--json", "duplicates", "--threshold", "0.97"]));
    let groups: Vec<Vec<String>> = v["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let mut names: Vec<String> = g.as_array().unwrap().iter().map(|i| {
                Path::new(i["path"].as_str().unwrap()).file_name().unwrap().to_string_lossy().into_owned()
            }).collect();
            names.sort();
            names
        })
        .collect();
    assert!(groups.contains(&vec!["000004.png".to_string(), "copy_of_4.png".to_string()]), "{groups:?}");
    assert!(groups.contains(&vec!["000007.png".to_string(), "recompressed_7.jpg".to_string()]), "{groups:?}");
}

/// A library with a persisted graph keeps a flat copy of its vectors beside it; a one-shot
/// `search` maps that copy instead of loading the graph, and ranks exactly as a scan of the
/// store does.
#[test]
fn one_shot_searches_scan_the_graphs_flat_vectors_and_rank_like_the_store() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    scenes(&photos, 40, 77);
    let data = tmp.path().join("data");
    let run = |args: &[&str]| {
        let mut cmd = clipsight(&data);
        cmd.env("CLIPSIGHT_EXACT_BELOW", "10").args(args);
        json_of(&mut cmd)
    };
    let ranking = |v: &Value| -> Vec<(u64, f64)> {
        v["results"].as_array().unwrap().iter().map(|r| (r["id"].as_u64().unwrap(), r["score"].as_f64().unwrap())).collect()
    };
    run(&["--json", "index", photos.to_str().unwrap()]);
    let built = run(&["--json", "search", "a red circle", "-k", "40", "--mode", "vector"]);
    let ann = data.join("ann");
    let graph_dir = std::fs::read_dir(&ann).unwrap().next().unwrap().unwrap().path();
    assert!(graph_dir.join("vectors.f32").is_file(), "the graph was saved with its flat vectors");
    let flat = run(&["--json", "search", "a red circle", "-k", "40", "--mode", "vector"]);
    std::fs::remove_dir_all(&ann).unwrap();
    let store = run(&["--json", "search", "a red circle", "-k", "40", "--mode", "vector", "--exact"]);
    assert!(!ann.exists(), "--exact scans the store without building a graph");
    let (flat, store, built) = (ranking(&flat), ranking(&store), ranking(&built));
    assert_eq!(flat.len(), 40);
    for ((a, s), (b, t)) in flat.iter().zip(&store) {
        assert_eq!(a, b, "same order: {flat:?} vs {store:?}");
        assert!((s - t).abs() < 1e-6);
    }
    assert_eq!(built.iter().map(|h| h.0).collect::<Vec<_>>()[..10], store.iter().map(|h| h.0).collect::<Vec<_>>()[..10], "the graph agrees on the top 10");
}

/// A large library's graph is saved with a two-bit sketch of its vectors; a one-shot search
/// scans the sketch and re-ranks its candidates exactly (here every image is a candidate, so the
/// ranking is the store scan's, scores included).
#[test]
fn one_shot_searches_of_a_large_library_scan_the_sketch_and_rerank_exactly() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    scenes(&photos, 40, 78);
    let data = tmp.path().join("data");
    let run = |args: &[&str]| {
        let mut cmd = clipsight(&data);
        cmd.env("CLIPSIGHT_EXACT_BELOW", "10").env("CLIPSIGHT_SKETCH_FROM", "10").args(args);
        json_of(&mut cmd)
    };
    let ranking = |v: &Value| -> Vec<(u64, f64)> {
        v["results"].as_array().unwrap().iter().map(|r| (r["id"].as_u64().unwrap(), r["score"].as_f64().unwrap())).collect()
    };
    run(&["--json", "index", photos.to_str().unwrap()]);
    run(&["--json", "search", "a blue square", "-k", "5", "--mode", "vector"]);
    let graph_dir = std::fs::read_dir(data.join("ann")).unwrap().next().unwrap().unwrap().path();
    assert!(graph_dir.join("vectors.sketch").is_file(), "the graph was saved with its sketch");
    let sketched = ranking(&run(&["--json", "search", "a blue square", "-k", "20", "--mode", "vector"]));
    let exact = ranking(&run(&["--json", "search", "a blue square", "-k", "20", "--mode", "vector", "--exact"]));
    assert_eq!(sketched.len(), 20);
    for ((a, s), (b, t)) in sketched.iter().zip(&exact) {
        assert_eq!(a, b, "same order: {sketched:?} vs {exact:?}");
        assert!((s - t).abs() < 1e-6, "exact scores");
    }
}

#[test]
fn output_into_a_closed_pipe_ends_quietly_as_unix_tools_do() {
    use std::os::unix::process::ExitStatusExt;
    let mut child = clipsight(&scene_library().data)
        .args(["--json", "search", "a red circle", "-k", "200"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // `| head -c 0`: the reader is gone before the first line
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!stderr.contains("panicked"), "{stderr}");
    assert_eq!(out.status.signal(), Some(libc::SIGPIPE), "{stderr}");
}

/// `bench query --disk-mbps` starts the server cold in a throttled cgroup, and asks it vector
/// queries while its graph loads (answered from the sketch here), each compared with an exact
/// scan. Needs root and the blkio (or io) cgroup controller, as CI's machines have.
#[test]
fn bench_query_starts_the_server_on_a_throttled_disk_and_checks_its_early_answers() {
    let work = tempfile::tempdir().unwrap();
    let mut cmd = clipsight_with(work.path(), &fixture_model());
    cmd.env("CLIPSIGHT_EXACT_BELOW", "100").env("CLIPSIGHT_SKETCH_FROM", "100");
    cmd.args(["--json", "bench", "query", "--n", "300", "--samples", "3", "--clients", "1", "--seconds", "1", "--disk-mbps", "300"]).arg("--work").arg(work.path().join("lib"));
    let out = cmd.output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    if !out.status.success() && stderr.contains("it needs root") {
        return eprintln!("SKIPPED: no cgroup throttle here ({stderr})");
    }
    assert!(out.status.success(), "{stderr}");
    let r: Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!((r["cold"].as_bool(), r["disk"]["mb_per_s"].as_u64()), (Some(true), Some(300)), "{r}");
    assert!(r["graph"].as_bool().unwrap(), "300 vectors are above CLIPSIGHT_EXACT_BELOW: a graph loads");
    let early = &r["early"];
    assert_eq!(early["probes"], 3, "{r}");
    let answered = early["answered"].as_u64().unwrap();
    // The graph of 300 vectors may be in use before the probes arrive; those answered earlier
    // came from the sketch, and every candidate was re-ranked exactly.
    assert!(answered <= 3);
    if answered > 0 {
        assert_eq!(early["recall_at_10"].as_f64().unwrap(), 1.0, "{r}");
    }
    assert!(r["serve_start"]["first_answer_s"].as_f64().unwrap() > 0.0);
    assert!(r["serve_rss_file_mb"].as_f64().unwrap() > 0.0);
}
