//! Search in other languages (issue 16) with the multilingual fixture
//! (`tests/fixtures/models/clipsight-tiny-multilingual`, M-CLIP's export layout: its text tower
//! takes `input_ids` and `attention_mask`, read from the graph): Chinese and Spanish queries find
//! what English ones do, through the CLI and REST; its tokenisation and embeddings equal the
//! Python reference's; a caption corpus in three languages describes an image in each.

use clipsight_indexer::clip::{Clip, Language, RuntimeOptions, Tokens};
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

/// Asserts that `model` tokenises `texts` written in `language` into the Python reference's ids
/// and masks and embeds each within cosine 0.99999 of it; returns our tokens and embeddings.
fn assert_text_parity(model: &std::path::Path, texts: &[&str], language: Option<Language>) -> (Vec<Tokens>, Vec<clipsight_indexer::Embedding>) {
    let clip = Clip::open(model, RuntimeOptions::default()).unwrap();
    let ours = clip.encode_texts_in(texts, language).unwrap();
    let mut args = vec!["tests/reference/reference.py", "texts", "--model", model.to_str().unwrap()];
    if let Some(language) = &language {
        args.extend(["--lang-code", language.code()]);
    }
    args.extend(texts.iter().copied());
    let reference: serde_json::Value = serde_json::from_str(&run_python(&args)).unwrap();
    let mut tokens = Vec::new();
    for (i, text) in texts.iter().enumerate() {
        let t = clip.tokenizer().encode(text, language).unwrap();
        let ids: Vec<u32> = serde_json::from_value(reference["ids"][i].clone()).unwrap();
        let masks: Vec<u32> = serde_json::from_value(reference["masks"][i].clone()).unwrap();
        assert_eq!((&t.ids, &t.mask), (&ids, &masks), "{language:?} {text:?}");
        let r: Vec<f64> = serde_json::from_value(reference["embeddings"][i].clone()).unwrap();
        let cos: f64 = ours[i].as_slice().iter().zip(&r).map(|(a, b)| *a as f64 * b).sum();
        eprintln!("text parity {} {language:?} {text:?}: cosine {cos:.8}", model.display());
        assert!(cos >= 0.99999, "{text:?}: cosine {cos}");
        tokens.push(t);
    }
    (tokens, ours)
}

#[test]
fn multilingual_ids_masks_and_embeddings_equal_the_python_reference() {
    let long = "palabra ".repeat(120);
    let texts = ["红色的圆", "un círculo rojo", "a red circle", "一个小的蓝色的正方形在左边和一个大的黄色的星星在右边", "¿Dónde está el CORAZÓN? 🙂", "", &long];
    let (tokens, _) = assert_text_parity(&multilingual_model(), &texts, None);
    for (text, t) in texts.iter().zip(&tokens) {
        assert_eq!((t.ids[0], t.ids.len()), (0, 77), "<s> first, 77 long: {text:?}");
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

/// `model info`'s JSON for `model`.
fn model_info(model: &std::path::Path) -> serde_json::Value {
    json_of(clipsight_with(std::path::Path::new("unused-data"), model).args(["--json", "model", "info"]))
}

#[test]
fn nllb_reads_the_language_code_of_the_cli_rest_and_env() {
    let info = model_info(&nllb_model());
    assert_eq!((info["family"].as_str(), info["text_inputs"].clone()), (Some("NLLB-CLIP"), serde_json::json!(["text:int32"])), "{info}");
    let lib = scene_library();
    let data = scene_library_with(&nllb_model());
    let top = |args: &[&str]| -> serde_json::Value { json_of(clipsight_with(data, &nllb_model()).env_remove("CLIPSIGHT_LANG").args(["--json"]).args(args)) };
    for (lang, query) in [("zh-CN", "红色的圆"), ("es", "un círculo rojo"), ("en-US", "a red circle")] {
        let v = top(&["--lang", lang, "search", query, "-k", "2"]);
        for hit in v["results"].as_array().unwrap() {
            assert!(lib.caption_of(hit["path"].as_str().unwrap()).contains("red circle"), "{lang} {query}: {v}");
        }
    }
    let v = json_of(clipsight_with(data, &nllb_model()).env("CLIPSIGHT_LANG", "zh_CN.UTF-8").args(["--json", "search", "蓝色的正方形", "-k", "1"]));
    assert!(lib.caption_of(v["results"][0]["path"].as_str().unwrap()).contains("blue square"), "{v}");
    assert_eq!(v["lang"], "zho_Hans", "the code used is reported: {v}");
    let s = InProcess::read_only_with(data, &nllb_model());
    let (status, v) = s.json("GET", &format!("/api/search?q={}&k=2&lang=zh-CN", urlencode("红色的圆")), None);
    assert_eq!((status, v["lang"].as_str()), (200, Some("zho_Hans")), "{v}");
    for hit in v["results"].as_array().unwrap() {
        assert!(lib.caption_of(hit["path"].as_str().unwrap()).contains("red circle"), "{v}");
    }
    let (_, v) = s.json("POST", "/api/search", Some(serde_json::json!({"q": "una estrella verde", "k": 1, "lang": "es-ES"})));
    assert_eq!(v["lang"], "spa_Latn", "{v}");
    assert!(lib.caption_of(v["results"][0]["path"].as_str().unwrap()).contains("green star"), "{v}");
    // An unknown language is English (as Immich does), with a warning on the command line; no
    // language, no code (as Immich does).
    let out = clipsight_with(data, &nllb_model()).args(["--json", "--lang", "tlh", "search", "red", "-k", "1"]).output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success() && stderr.contains("unknown language \"tlh\""), "{stderr}");
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(v["lang"], "eng_Latn", "{v}");
    let (_, v) = s.json("GET", "/api/search?q=red&k=1&lang=tlh", None);
    assert_eq!(v["lang"], "eng_Latn", "{v}");
    let (_, v) = s.json("GET", "/api/search?q=red&k=1", None);
    assert!(v.get("lang").is_none(), "{v}");
    let (status, v) = s.json("GET", &format!("/api/search?q=red&lang={}", "x".repeat(65)), None);
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("bad_parameter")), "{v}");
    // A model that reads no language ignores it, and says nothing.
    let m = InProcess::read_only_with(multilingual_library(), &multilingual_model());
    let (_, v) = m.json("GET", &format!("/api/search?q={}&k=1&lang=zh-CN", urlencode("红色的圆")), None);
    assert!(v.get("lang").is_none(), "{v}");
}

#[test]
fn nllb_ids_and_embeddings_with_language_codes_equal_the_python_reference() {
    let model = nllb_model();
    let clip = Clip::open(&model, RuntimeOptions::default()).unwrap();
    for (tag, code, texts) in [
        ("zh-CN", "zho_Hans", vec!["红色的圆", "一个小的蓝色的正方形在左边和一个大的黄色的星星在右边", ""]),
        ("es", "spa_Latn", vec!["un círculo rojo", "¿Dónde está el CORAZÓN? 🙂"]),
        ("en", "eng_Latn", vec!["a red circle", &"word ".repeat(120)]),
    ] {
        let language = Language::resolve(tag).language;
        assert_eq!(language.code(), code, "{tag}");
        let (tokens, _) = assert_text_parity(&model, &texts, Some(language));
        for (text, t) in texts.iter().zip(&tokens) {
            assert_ne!(t.ids, clip.tokenizer().encode(text, None).unwrap().ids, "the code is in the ids: {text:?}");
        }
    }
}

#[test]
fn siglip_classify_gives_independent_sigmoid_probabilities_equal_to_the_python_reference() {
    let model = siglip_model();
    let info = model_info(&model);
    assert_eq!((info["family"].as_str(), info["scoring"].as_str(), info["canonicalize"].as_bool()), (Some("SigLIP"), Some("sigmoid"), Some(true)), "{info}");
    assert!(info["scoring_origin"].as_str().unwrap().contains("config.json logit_bias"), "{info}");
    let lib = scene_library();
    // At the model's own 64×64, so that no resizing happens and the preprocessing is the same in
    // both (resampling filters are compared by the image parity tests).
    let data = tempfile::tempdir().unwrap();
    let image = data.path().join("red-circle-64.png");
    image::open(lib.photos.join(lib.single("red", "circle"))).unwrap().resize_exact(64, 64, image::imageops::FilterType::Triangle).save(&image).unwrap();
    let circle = lib.single("red", "circle");
    let caption = lib.caption_of(&circle);
    // The caption twice (once as a person might write it), and three false ones.
    let shouted = format!("{}!", caption.to_uppercase());
    let labels = [caption.as_str(), shouted.as_str(), "a small blue square at the top", "a large green star on the left", "a photo of a cat"];
    let ours = json_of(clipsight_with(data.path(), &model).args(["--json", "classify"]).arg(&image).args(["--labels", &labels.join(",")]));
    assert_eq!(ours["scoring"], "sigmoid", "{ours}");
    let mut args = vec!["tests/reference/reference.py", "classify", "--model", model.to_str().unwrap(), "--image", image.to_str().unwrap()];
    args.extend(labels);
    let reference: serde_json::Value = serde_json::from_str(&run_python(&args)).unwrap();
    assert_eq!(reference["scoring"], "sigmoid");
    let probs: Vec<f64> = ours["labels"].as_array().unwrap().iter().map(|l| l["prob"].as_f64().unwrap()).collect();
    for (i, label) in labels.iter().enumerate() {
        let r = reference["probs"][i].as_f64().unwrap();
        eprintln!("SigLIP classify {label:?}: ours {:.6} reference {r:.6}", probs[i]);
        assert!((probs[i] - r).abs() <= 1e-4, "{label}: {} vs {r}", probs[i]);
    }
    // The image's caption is likely however it is written, the others are not, and the
    // probabilities do not share one unit (a softmax would give the two true labels half each):
    // each label is scored on its own, so a label more or less changes no other.
    assert!(probs[0] > 0.5 && probs[1] == probs[0] && probs[2..].iter().all(|p| *p < 0.05), "{probs:?}");
    assert!(probs.iter().sum::<f64>() > 1.5, "{probs:?}");
    let fewer = json_of(clipsight_with(data.path(), &model).args(["--json", "classify"]).arg(&image).args(["--labels", &labels[..2].join(",")]));
    for i in 0..2 {
        assert_eq!(fewer["labels"][i]["prob"], ours["labels"][i]["prob"], "{fewer} vs {ours}");
    }
    let s = InProcess::read_only_with(scene_library_with(&model), &model);
    let bytes = std::fs::read(&image).unwrap();
    let (ct, body) = multipart(&[("image", Some("q.png"), &bytes), ("labels", None, labels.join(",").as_bytes())]);
    let (status, out, _) = s.call("POST", "/api/classify", Some((&ct, &body)), &[]);
    let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
    assert_eq!((status, v["scoring"].as_str(), v["best"].clone()), (200, Some("sigmoid"), ours["best"].clone()), "{v}");
}

#[test]
fn siglip_texts_are_canonicalized_and_images_squashed_as_the_reference_does() {
    let model = siglip_model();
    let clip = Clip::open(&model, RuntimeOptions::default()).unwrap();
    let long = "word ".repeat(80);
    let texts = ["A RED Circle!!!", "a red circle", "“Quoted”, (parenthesised) & hyphen-ated", "ΣΟΦΊΑ Straße", &long];
    let (_, ours) = assert_text_parity(&model, &texts, None);
    assert_eq!(ours[0], ours[1], "punctuation and case are cleaned away");
    assert_eq!(clip.tokenizer().context_length(), 64);
    // Images of every shape, squashed (not cropped) to the model's square.
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path().join("img");
    run_python(&["tests/reference/make_images.py", dir.to_str().unwrap()]);
    let mut files: Vec<std::path::PathBuf> = std::fs::read_dir(&dir).unwrap().map(|e| e.unwrap().path()).collect();
    files.sort();
    let ours = clipsight::library::embed_files(&clip, &files).unwrap();
    let mut args = vec!["tests/reference/reference.py", "images", "--model", model.to_str().unwrap()];
    args.extend(files.iter().map(|f| f.to_str().unwrap()));
    let reference: serde_json::Value = serde_json::from_str(&run_python(&args)).unwrap();
    for (i, file) in files.iter().enumerate() {
        let r: Vec<f64> = serde_json::from_value(reference["embeddings"][i].clone()).unwrap();
        let cos: f64 = ours[i].as_slice().iter().zip(&r).map(|(a, b)| *a as f64 * b).sum();
        eprintln!("SigLIP image parity {}: cosine {cos:.6}", file.display());
        assert!(cos >= 0.999, "{}: cosine {cos}", file.display());
    }
}

#[test]
fn siglip_search_and_tags_work_with_its_sigmoid() {
    let model = siglip_model();
    let data = scene_library_with(&model);
    let lib = scene_library();
    let circle = lib.single("red", "circle");
    let caption = lib.caption_of(&circle);
    // Written as a person might: capitals and punctuation, cleaned away as the model was trained.
    let query = format!("{}!", caption.to_uppercase().replacen(' ', ", ", 2));
    let v = json_of(clipsight_with(data, &model).args(["--json", "search", &query, "-k", "1"]));
    assert_eq!(lib.caption_of(v["results"][0]["path"].as_str().unwrap()), caption, "{query}: {v}");
    let image = lib.photos.join(circle);
    let described = json_of(clipsight_with(data, &model).args(["--json", "describe"]).arg(&image).args(["-k", "5"]));
    let tags = described["tags"].as_array().unwrap();
    let p: Vec<f64> = tags.iter().map(|t| t["score"].as_f64().unwrap()).collect();
    assert!(p.windows(2).all(|w| w[0] >= w[1]), "{described}");
    assert!(p.iter().all(|p| (0.0..=1.0).contains(p)), "sigmoid probabilities: {described}");
}

#[test]
fn bench_query_times_the_text_encoder_of_each_family_in_one_run() {
    let work = tempfile::tempdir().unwrap();
    let models = [multilingual_model(), nllb_model(), siglip_model()];
    let list = models.iter().map(|m| m.to_str().unwrap()).collect::<Vec<_>>().join(",");
    let r = json_of(clipsight_with(work.path(), &fixture_model()).args(["--json", "bench", "query", "--n", "300", "--samples", "3", "--clients", "1", "--seconds", "1", "--text-models", &list]).arg("--work").arg(work.path().join("lib")));
    let families: Vec<&str> = r["text_encoders"].as_array().unwrap().iter().map(|t| t["family"].as_str().unwrap()).collect();
    assert_eq!(families, ["CLIP (OpenAI/open_clip)", "M-CLIP", "NLLB-CLIP", "SigLIP"], "{r}");
    for t in r["text_encoders"].as_array().unwrap() {
        assert!(t["latency"]["p50_ms"].as_f64().unwrap() > 0.0, "{t}");
    }
    assert_eq!(r["cold"], false);
}
