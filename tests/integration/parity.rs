//! Parity with the Python reference (open_clip preprocessing, Immich tokenisation, plain ONNX
//! Runtime): the same model must give the same tensors, ids and embeddings in clipsight.

use std::path::{Path, PathBuf};

use clipsight_indexer::clip::{Clip, RuntimeOptions};
use clipsight_indexer::decode::decode;
use clipsight_indexer::Embedding;
use crate::common::*;

fn parity_images(dir: &Path) -> Vec<PathBuf> {
    run_python(&["tests/reference/make_images.py", dir.to_str().unwrap()]);
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    files
}

fn cosine(a: &[f32], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| *x as f64 * y).sum()
}

fn reference_embeddings(command: &str, model: &Path, items: &[String]) -> serde_json::Value {
    let mut args = vec!["tests/reference/reference.py", command, "--model", model.to_str().unwrap()];
    args.extend(items.iter().map(String::as_str));
    serde_json::from_str(&run_python(&args)).unwrap()
}

#[test]
fn preprocessing_matches_pil_reference_on_real_size_images() {
    let tmp = tempfile::tempdir().unwrap();
    let images = parity_images(&tmp.path().join("img"));
    let model = fixture_model();
    let clip = Clip::open(&model, RuntimeOptions::default()).unwrap();
    // A 224-px config as well as the model's own size, so the real-size path is covered.
    let mut configs = vec![clip.preprocess().clone()];
    let mut big = clip.preprocess().clone();
    big.size = (224, 224);
    configs.push(big);
    let paths: Vec<String> = images.iter().map(|p| p.display().to_string()).collect();
    for pre in configs {
        let model_dir = tmp.path().join(format!("cfg{}", pre.size.0));
        std::fs::create_dir_all(model_dir.join("visual")).unwrap();
        let cfg = serde_json::json!({"size": [pre.size.0, pre.size.1], "mode": "RGB", "mean": pre.mean,
            "std": pre.std, "interpolation": "bicubic", "resize_mode": "shortest", "fill_color": 0});
        std::fs::write(model_dir.join("visual/preprocess_cfg.json"), cfg.to_string()).unwrap();
        let out = tmp.path().join(format!("tensors{}", pre.size.0));
        let mut args = vec!["tests/reference/reference.py", "tensor", "--model", model_dir.to_str().unwrap(), "--out", out.to_str().unwrap()];
        args.extend(paths.iter().map(String::as_str));
        run_python(&args);
        let plane = (pre.size.0 * pre.size.1) as usize;
        for (i, path) in images.iter().enumerate() {
            let decoded = decode(&std::fs::read(path).unwrap()).unwrap();
            let prepared = pre.prepare(&decoded.image).unwrap();
            let mut ours = vec![0f32; 3 * plane];
            pre.normalize_into(&prepared, &mut ours);
            let bytes = std::fs::read(out.join(format!("{i}.bin"))).unwrap();
            let reference: Vec<f32> = bytes.chunks_exact(4).map(|c| f32::from_le_bytes(c.try_into().unwrap())).collect();
            assert_eq!(reference.len(), ours.len(), "{}", path.display());
            let mean_diff = ours.iter().zip(&reference).map(|(a, b)| (a - b).abs() as f64).sum::<f64>() / ours.len() as f64;
            eprintln!("tensor parity {}px {}: mean |diff| = {mean_diff:.5}", pre.size.0, path.file_name().unwrap().to_string_lossy());
            assert!(mean_diff <= 0.01, "{}: mean |diff| {mean_diff} > 0.01", path.display());
        }
    }
}

#[test]
fn image_embeddings_match_reference_onnxruntime() {
    let tmp = tempfile::tempdir().unwrap();
    let images = parity_images(tmp.path());
    let clip = Clip::open(fixture_model(), RuntimeOptions::default()).unwrap();
    let prepared: Vec<_> = images
        .iter()
        .map(|p| clip.preprocess().prepare(&decode(&std::fs::read(p).unwrap()).unwrap().image).unwrap())
        .collect();
    let ours = clip.encode_images(&prepared).unwrap();
    let paths: Vec<String> = images.iter().map(|p| p.display().to_string()).collect();
    let reference = reference_embeddings("images", &fixture_model(), &paths);
    for (i, (e, r)) in ours.iter().zip(reference["embeddings"].as_array().unwrap()).enumerate() {
        let r: Vec<f64> = serde_json::from_value(r.clone()).unwrap();
        let cos = cosine(e.as_slice(), &r);
        eprintln!("image parity {}: cosine {cos:.6}", images[i].file_name().unwrap().to_string_lossy());
        assert!(cos >= 0.999, "{}: cosine {cos}", images[i].display());
    }
}

/// The texts of the recorded fixture (tests/reference/make_token_fixture.py): plain, punctuation,
/// unicode, emoji, empty and a 200-word text.
fn fixture_cases() -> Vec<serde_json::Value> {
    let fixture: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(root().join("tests/fixtures/tokenizer_ids.json")).unwrap()).unwrap();
    fixture["cases"].as_array().unwrap().clone()
}

#[test]
fn token_ids_equal_the_recorded_reference_fixture() {
    let clip = Clip::open(fixture_model(), RuntimeOptions::default()).unwrap();
    let cases = fixture_cases();
    assert!(cases.len() >= 8);
    let mut longest = 0;
    for case in &cases {
        let text = case["text"].as_str().unwrap();
        let expected: Vec<u32> = serde_json::from_value(case["ids"].clone()).unwrap();
        let ids = clip.tokenizer().encode(text, None).unwrap().ids;
        assert_eq!(ids, expected, "ids of {text:?}");
        assert_eq!(ids.len(), 77);
        assert_eq!(ids[0], 49406, "starts with <|startoftext|>");
        assert!(ids.contains(&49407), "ends with <|endoftext|>");
        longest = longest.max(text.split_whitespace().count());
        if text.split_whitespace().count() >= 200 {
            assert_eq!(ids[76], 49407, "a truncated text still ends with end-of-text");
        }
    }
    assert!(longest >= 200, "the fixture has a 200-word text");
}

#[test]
fn text_embeddings_match_reference_onnxruntime() {
    let clip = Clip::open(fixture_model(), RuntimeOptions::default()).unwrap();
    let texts: Vec<String> = fixture_cases().iter().map(|c| c["text"].as_str().unwrap().to_string()).collect();
    let ours = clip.encode_texts(&texts).unwrap();
    let reference = reference_embeddings("texts", &fixture_model(), &texts);
    for (i, (e, r)) in ours.iter().zip(reference["embeddings"].as_array().unwrap()).enumerate() {
        let r: Vec<f64> = serde_json::from_value(r.clone()).unwrap();
        let cos = cosine(e.as_slice(), &r);
        eprintln!("text parity {:?}: cosine {cos:.8}", texts[i]);
        assert!(cos >= 0.99999, "{:?}: cosine {cos}", texts[i]);
        let ids: Vec<u32> = serde_json::from_value(reference["ids"][i].clone()).unwrap();
        assert_eq!(clip.tokenizer().encode(&texts[i], None).unwrap().ids, ids);
    }
}

/// Rewrites a text tower to take int64 ids (cast to int32 inside).
const INT64_IDS: &str = r#"
import sys, onnx
from onnx import TensorProto, helper
m = onnx.load(sys.argv[1]); g = m.graph; name = g.input[0].name
g.input[0].type.tensor_type.elem_type = TensorProto.INT64
for node in g.node:
    node.input[:] = [name + "_i32" if i == name else i for i in node.input]
g.node.insert(0, helper.make_node("Cast", [name], [name + "_i32"], to=TensorProto.INT32))
onnx.save(m, sys.argv[1])
"#;

/// The true ViT-B/32 size (random weights): loads, embeds, and agrees with the Python reference.
#[test]
fn a_vit_b_32_size_model_matches_the_reference() {
    let Some(tool) = shared_model_tool() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let model = tmp.path().join("vitb32");
    run_python(&[tool.to_str().unwrap(), "--preset", "vit-b-32", "--out", model.to_str().unwrap()]);
    let images = parity_images(&tmp.path().join("img"));
    let picked: Vec<PathBuf> = images.iter().filter(|p| p.to_string_lossy().contains("photo_4000")).cloned().collect();
    let clip = Clip::open(&model, RuntimeOptions::default()).unwrap();
    let prepared: Vec<_> = picked
        .iter()
        .map(|p| clip.preprocess().prepare(&decode(&std::fs::read(p).unwrap()).unwrap().image).unwrap())
        .collect();
    let ours = clip.encode_images(&prepared).unwrap();
    let reference = reference_embeddings("images", &model, &picked.iter().map(|p| p.display().to_string()).collect::<Vec<_>>());
    let r: Vec<f64> = serde_json::from_value(reference["embeddings"][0].clone()).unwrap();
    let cos = cosine(ours[0].as_slice(), &r);
    eprintln!("ViT-B/32 image parity: cosine {cos:.6}");
    assert!(cos >= 0.999);
    let text = clip.encode_texts(&["a photo of a dog"]).unwrap();
    let reference = reference_embeddings("texts", &model, &["a photo of a dog".to_string()]);
    let r: Vec<f64> = serde_json::from_value(reference["embeddings"][0].clone()).unwrap();
    assert!(cosine(text[0].as_slice(), &r) >= 0.99999);
    assert_eq!(clip.dim(), 512);
}

/// Variants Immich and other exporters produce: the engine reads the contract from the graph.
#[test]
fn model_variants_from_the_shared_tool_load_and_agree() {
    let Some(tool) = shared_model_tool() else { return };
    let tmp = tempfile::tempdir().unwrap();
    let base = tmp.path().join("base");
    make_variant(&tool, &base, &["--image-size", "64"]);
    let nhwc = tmp.path().join("nhwc");
    make_variant(&tool, &nhwc, &["--image-size", "64", "--image-input", "uint8-nhwc"]);
    let fixed = tmp.path().join("fixed");
    make_variant(&tool, &fixed, &["--image-size", "64", "--static-batch", "1"]);
    // int64 token ids (plain torch exports): the same graph behind a Cast.
    let int64 = tmp.path().join("int64");
    make_variant(&tool, &int64, &["--image-size", "64"]);
    run_python(&["-c", INT64_IDS, int64.join("textual/model.onnx").to_str().unwrap()]);
    assert_eq!(Clip::open(&int64, RuntimeOptions::default()).unwrap().id_type().unwrap(), clipsight_indexer::clip::IdType::Int64);
    let images = parity_images(&tmp.path().join("img"));
    let embed = |dir: &Path| -> Vec<Embedding> {
        let clip = Clip::open(dir, RuntimeOptions::default()).unwrap();
        let prepared: Vec<_> = images[..4]
            .iter()
            .map(|p| clip.preprocess().prepare(&decode(&std::fs::read(p).unwrap()).unwrap().image).unwrap())
            .collect();
        let mut out = clip.encode_images(&prepared).unwrap();
        out.extend(clip.encode_texts(&["a dog", "a cat", "a bird"]).unwrap());
        out
    };
    let reference = embed(&base);
    for variant in [&nhwc, &fixed, &int64] {
        for (a, b) in reference.iter().zip(embed(variant)) {
            // uint8 NHWC folds normalisation into the graph: same weights, same result up to rounding.
            assert!(a.cosine(&b) >= 0.999, "{}: cosine {}", variant.display(), a.cosine(&b));
        }
    }
}

#[test]
fn broken_model_directories_get_errors_naming_the_file() {
    let tmp = tempfile::tempdir().unwrap();
    let copy = tmp.path().join("m");
    copy_dir(&fixture_model(), &copy);
    std::fs::remove_file(copy.join("textual/tokenizer.json")).unwrap();
    let err = Clip::open(&copy, RuntimeOptions::default()).err().expect("must fail").to_string();
    assert!(err.contains("textual/tokenizer.json"), "{err}");

    copy_dir(&fixture_model(), &copy);
    let mut cfg: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(copy.join("config.json")).unwrap()).unwrap();
    cfg["embed_dim"] = serde_json::json!(7);
    std::fs::write(copy.join("config.json"), cfg.to_string()).unwrap();
    let err = Clip::load(&copy, RuntimeOptions::default()).err().expect("must fail").to_string();
    assert!(err.contains("embed_dim") && err.contains("model.onnx"), "{err}");

    copy_dir(&fixture_model(), &copy);
    std::fs::copy(copy.join("textual/model.onnx"), copy.join("visual/model.onnx")).unwrap();
    let err = Clip::load(&copy, RuntimeOptions::default()).err().expect("must fail").to_string();
    assert!(err.contains("visual/model.onnx") && err.contains("expected float32"), "{err}");
}

fn copy_dir(from: &Path, to: &Path) {
    let _ = std::fs::remove_dir_all(to);
    for entry in walkdir_files(from) {
        let rel = entry.strip_prefix(from).unwrap();
        std::fs::create_dir_all(to.join(rel).parent().unwrap()).unwrap();
        std::fs::copy(&entry, to.join(rel)).unwrap();
    }
}

fn walkdir_files(dir: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).unwrap() {
        let p = e.unwrap().path();
        if p.is_dir() {
            out.extend(walkdir_files(&p));
        } else {
            out.push(p);
        }
    }
    out
}

#[test]
fn a_released_image_tower_loads_again_and_embeds_the_same() {
    let tmp = tempfile::tempdir().unwrap();
    let images = parity_images(&tmp.path().join("img"));
    let clip = Clip::open(fixture_model(), RuntimeOptions::default()).unwrap();
    let before = clipsight::library::embed_files(&clip, &images[..2]).unwrap();
    clip.release_image_tower();
    clip.release_image_tower(); // twice, or with nothing loaded: nothing happens
    let after = clipsight::library::embed_files(&clip, &images[..2]).unwrap();
    assert_eq!(before, after);
}
