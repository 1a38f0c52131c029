//! Search in other languages (issue 16) with the multilingual fixture
//! (`tests/fixtures/models/clipsight-tiny-multilingual`, M-CLIP's export layout: its text tower
//! takes `input_ids` and `attention_mask`, read from the graph): Chinese and Spanish queries find
//! what English ones do, through the CLI and REST; its tokenisation and embeddings equal the
//! Python reference's; a caption corpus in three languages describes an image in each.

use clipsight_indexer::clip::{Clip, RuntimeOptions};
use crate::common::*;

/// The captions of the top `k` results of a CLI search.
fn top_captions(query: &str, k: usize) -> Vec<String> {
    let v = json_of(clipsight_with(multilingual_library(), &multilingual_model()).args(["--json", "search", query, "-k", &k.to_string()]));
    v["results"].as_array().unwrap().iter().map(|r| scene_library().caption_of(r["path"].as_str().unwrap())).collect()
}

#[test]
fn chinese_spanish_and_english_queries_put_red_circles_first_in_the_cli_and_rest() {
    let lib = scene_library();
    assert!(lib.singles("red", "circle").len() >= 2, "precondition: red circles among the scenes");
    for query in ["红色的圆", "un círculo rojo", "a red circle"] {
        let top = top_captions(query, 2);
        assert!(top.iter().all(|c| c.contains("red circle")), "{query}: {top:?}");
    }
    for (query, wanted) in [("蓝色的正方形", "blue square"), ("una estrella verde", "green star"), ("黄色的三角形", "yellow triangle")] {
        let top = top_captions(query, 1);
        assert!(top[0].contains(wanted), "{query}: {top:?}");
    }
    let s = InProcess::read_only_with(multilingual_library(), &multilingual_model());
    let (status, v) = s.json("GET", &format!("/api/search?q={}&k=2", urlencode("红色的圆")), None);
    assert_eq!(status, 200, "{v}");
    for hit in v["results"].as_array().unwrap() {
        assert!(lib.caption_of(hit["path"].as_str().unwrap()).contains("red circle"), "{v}");
    }
    let info = json_of(clipsight_with(multilingual_library(), &multilingual_model()).args(["--json", "model", "info"]));
    assert_eq!(info["text_inputs"], serde_json::json!(["input_ids:int32", "attention_mask:int32"]), "read from the graph: {info}");
    assert_eq!(info["family"], "M-CLIP", "{info}");
}

#[test]
fn multilingual_ids_masks_and_embeddings_equal_the_python_reference() {
    let model = multilingual_model();
    let clip = Clip::open(&model, RuntimeOptions::default()).unwrap();
    let texts: Vec<String> = ["红色的圆", "un círculo rojo", "a red circle", "一个小的蓝色的正方形在左边和一个大的黄色的星星在右边", "¿Dónde está el CORAZÓN? 🙂", "", &"palabra ".repeat(120)]
        .iter()
        .map(|t| t.to_string())
        .collect();
    let ours = clip.encode_texts(&texts).unwrap();
    let mut args = vec!["tests/reference/reference.py", "texts", "--model", model.to_str().unwrap()];
    args.extend(texts.iter().map(String::as_str));
    let reference: serde_json::Value = serde_json::from_str(&run_python(&args)).unwrap();
    for (i, text) in texts.iter().enumerate() {
        let tokens = clip.tokenizer().encode(text).unwrap();
        let ids: Vec<u32> = serde_json::from_value(reference["ids"][i].clone()).unwrap();
        let masks: Vec<u32> = serde_json::from_value(reference["masks"][i].clone()).unwrap();
        assert_eq!((&tokens.ids, &tokens.mask), (&ids, &masks), "{text:?}");
        assert_eq!((tokens.ids[0], tokens.ids.len()), (0, 77), "<s> first, 77 long: {text:?}");
        let r: Vec<f64> = serde_json::from_value(reference["embeddings"][i].clone()).unwrap();
        let cos: f64 = ours[i].as_slice().iter().zip(&r).map(|(a, b)| *a as f64 * b).sum();
        eprintln!("multilingual text parity {text:?}: cosine {cos:.8}");
        assert!(cos >= 0.99999, "{text:?}: cosine {cos}");
    }
}

#[test]
fn a_caption_corpus_in_three_languages_describes_an_image_in_each() {
    let tmp = tempfile::tempdir().unwrap();
    let data = tmp.path().join("data");
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let lib = scene_library();
    let circle = lib.single("red", "circle");
    std::fs::copy(lib.photos.join(&circle), photos.join(&circle)).unwrap();
    let cli = || clipsight_with(&data, &multilingual_model());
    json_of(cli().args(["--json", "index"]).arg(&photos));
    let corpus = tmp.path().join("captions.txt");
    let captions = [
        ("en", "a red circle", true), ("en", "a blue square", false), ("en", "a green star", false),
        ("zh", "红色的圆", true), ("zh", "蓝色的正方形", false), ("zh", "绿色的星星", false),
        ("es", "un círculo rojo", true), ("es", "un cuadrado azul", false), ("es", "una estrella verde", false),
    ];
    std::fs::write(&corpus, captions.iter().map(|(_, c, _)| format!("{c}\n")).collect::<String>()).unwrap();
    json_of(cli().args(["--json", "texts", "add"]).arg(&corpus));
    let described = json_of(cli().args(["--json", "describe"]).arg(photos.join(&circle)).args(["-k", "9"]));
    let ranked: Vec<&str> = described["captions"].as_array().unwrap().iter().map(|c| c["text"].as_str().unwrap()).collect();
    for lang in ["en", "zh", "es"] {
        let best = ranked.iter().find(|text| captions.iter().any(|(l, c, _)| *l == lang && c == *text)).unwrap();
        let right = captions.iter().find(|(l, _, right)| *l == lang && *right).unwrap().1;
        assert_eq!(*best, right, "{lang}: {ranked:?}");
    }
}

#[test]
fn keywords_in_chinese_japanese_and_korean_names_are_found_by_their_words() {
    let tmp = tempfile::tempdir().unwrap();
    let (photos, data) = (tmp.path().join("照片"), tmp.path().join("data"));
    std::fs::create_dir_all(photos.join("东京旅行")).unwrap();
    let lib = scene_library();
    let names = ["生日派对.jpg", "海边日落.jpg", "誕生日パーティー.jpg", "생일 파티.jpg", "东京旅行/夜景.jpg", "beach-party.jpg"];
    for (i, name) in names.iter().enumerate() {
        let source = lib.photos.join(format!("{:06}.png", i + 1));
        image::open(source).unwrap().to_rgb8().save_with_format(photos.join(name), image::ImageFormat::Jpeg).unwrap();
    }
    json_of(clipsight(&data).args(["--json", "index"]).arg(&photos));
    let s = InProcess::read_only(&data);
    let found = |q: &str| -> Vec<String> {
        let (status, v) = s.json("GET", &format!("/api/search?q={}&mode=keyword&k=10", urlencode(q)), None);
        assert_eq!(status, 200, "{v}");
        v["results"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_string()).collect()
    };
    // 誕生日 (Japanese: birthday) holds 生日 too.
    assert_eq!(found("生日"), vec!["生日派对.jpg".to_string(), "誕生日パーティー.jpg".to_string()]);
    for (query, name) in [("派对", "生日派对.jpg"), ("生日派对", "生日派对.jpg"), ("日落", "海边日落.jpg"), ("东京", "夜景.jpg"),
        ("パーティー", "誕生日パーティー.jpg"), ("생일", "생일 파티.jpg"), ("beach", "beach-party.jpg"), ("party", "beach-party.jpg")] {
        assert_eq!(found(query), vec![name.to_string()], "{query}");
    }
}
