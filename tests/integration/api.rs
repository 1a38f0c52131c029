//! The REST API, route by route, with the trained fixture model: results, error shapes
//! (`{"error":{"code","message"}}` with the right status), limits, the bearer token, the OpenAPI
//! document — in process ([`InProcess`]) — and, with a real `clipsight serve` ([`Server`]),
//! `--watch`, indexing jobs, a second server, signals and clean shutdown.

use clipsight::server::ServeOptions;

use crate::common::*;
use serde_json::{json, Value};

/// The app in process over the shared library, read-only (several may run at once).
fn server() -> InProcess {
    InProcess::read_only(&scene_library().data)
}

fn caption_of(path: &str) -> String {
    scene_library().caption_of(path)
}

fn single(colour: &str, shape: &str) -> String {
    scene_library().single(colour, shape)
}

/// Asserts the error shape and code of a response.
fn assert_error(status: u16, body: &Value, want_status: u16, want_code: &str) {
    assert_eq!(status, want_status, "{body}");
    assert_eq!(body["error"]["code"], want_code, "{body}");
    assert!(!body["error"]["message"].as_str().unwrap_or("").is_empty(), "an error has a message: {body}");
}

#[test]
fn get_search_ranks_a_red_circle_first_with_hit_metadata() {
    let s = server();
    let (status, v) = s.json("GET", "/api/search?q=a%20red%20circle&k=5&mode=vector", None);
    assert_eq!(status, 200, "{v}");
    let results = v["results"].as_array().unwrap();
    assert_eq!(results.len(), 5);
    assert!(caption_of(results[0]["path"].as_str().unwrap()).contains("red circle"), "{}", results[0]);
    let first = &results[0];
    assert_eq!(first["thumbnail"], format!("/api/images/{}/thumbnail", first["id"]));
    assert!(first["width"].as_u64().unwrap() > 0 && first["height"].as_u64().unwrap() > 0);
    assert_eq!(first["format"], "png");
    assert!(first["path"].as_str().unwrap().ends_with(first["name"].as_str().unwrap()));
    assert_eq!(v["total_images"], 300);
    assert!(v["took_ms"].as_f64().unwrap() >= 0.0);
}

#[test]
fn get_search_pages_with_offset_and_defaults_to_hybrid() {
    let s = server();
    let (_, all) = s.json("GET", "/api/search?q=a%20green%20star&k=6", None);
    let (_, page) = s.json("GET", "/api/search?q=a%20green%20star&k=3&offset=3", None);
    let ids = |v: &Value| v["results"].as_array().unwrap().iter().map(|r| r["id"].as_u64().unwrap()).collect::<Vec<_>>();
    assert_eq!(ids(&all)[3..], ids(&page)[..]);
}

#[test]
fn malformed_queries_and_parameters_are_400_with_a_json_error() {
    let s = server();
    let (status, v) = s.json("GET", "/api/search?q=%22unclosed", None);
    assert_error(status, &v, 400, "bad_query");
    assert!(v["error"]["message"].as_str().unwrap().contains("column"), "the message points at the token: {v}");
    let (status, v) = s.json("GET", "/api/search?q=x&k=0", None);
    assert_error(status, &v, 400, "bad_parameter");
    let (status, v) = s.json("GET", "/api/search?q=x&k=abc", None);
    assert_error(status, &v, 400, "bad_parameter");
    let (status, v) = s.json("GET", "/api/search?q=x&mode=telepathy", None);
    assert_error(status, &v, 400, "bad_parameter");
    let (status, v) = s.json("GET", "/api/search?q=%2Bfile:/etc/passwd", None);
    assert_error(status, &v, 400, "bad_query");
}

#[test]
fn post_search_combines_the_query_language_with_weighted_terms() {
    let s = server();
    let (status, v) = s.json("POST", "/api/search", Some(json!({"terms": [{"text": "a red circle"}], "k": 3, "mode": "vector"})));
    assert_eq!(status, 200, "{v}");
    assert!(caption_of(v["results"][0]["path"].as_str().unwrap()).contains("red circle"));
    let id = v["results"][0]["id"].as_u64().unwrap();
    let (status, v) = s.json("POST", "/api/search", Some(json!({"q": "type:png", "terms": [{"image": id, "weight": 2.0}], "k": 1, "mode": "vector"})));
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["results"][0]["id"].as_u64(), Some(id), "an image term finds the image itself first");
    let (status, v) = s.json("POST", "/api/search", Some(json!({"terms": [{"image": 999999}]})));
    assert_error(status, &v, 404, "not_found");
    let (status, v) = s.json("POST", "/api/search", Some(json!({"terms": [{"text": "a", "image": 1}]})));
    assert_error(status, &v, 400, "bad_json");
    assert!(v["error"]["message"].as_str().unwrap().contains("exactly one of \"text\" and \"image\""), "{v}");
    let (status, v) = s.json("POST", "/api/search", Some(json!({"terms": [{"text": "  "}]})));
    assert_error(status, &v, 400, "bad_query");
    let (status, v) = s.json("POST", "/api/search", Some(json!({"terms": [{"image": 1.0, "weight": 2}], "k": 2.0})));
    assert_eq!(status, 200, "JSON Schema integers may be written 1.0: {v}");
    let (status, v) = s.json("POST", "/api/search", Some(json!({"query": "typo in the field name"})));
    assert_error(status, &v, 400, "bad_json");
    let (status, body, _) = s.call("POST", "/api/search", Some(("application/json", b"{not json")), &[]);
    assert_error(status, &serde_json::from_slice(&body).unwrap(), 400, "bad_json");
}

#[test]
fn uploading_an_image_finds_it_and_bad_uploads_get_4xx() {
    let s = server();
    let file = single("blue", "square");
    let bytes = std::fs::read(scene_library().photos.join(&file)).unwrap();
    let (ct, body) = multipart(&[("image", Some("query.png"), &bytes)]);
    let (status, out, _) = s.call("POST", "/api/search/image?k=5", Some((&ct, &body)), &[]);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(status, 200, "{v}");
    assert!(v["results"][0]["path"].as_str().unwrap().ends_with(&file), "the same picture ranks first: {v}");
    assert!(v["results"][0]["score"].as_f64().unwrap() > 0.999);

    let cases: Vec<(Vec<u8>, &str, u16, &str)> = vec![
        (b"just some text, not an image".to_vec(), "image", 415, "not_an_image"),
        (bytes[..bytes.len() / 3].to_vec(), "image", 422, "corrupt_image"),
        (bytes.clone(), "picture", 400, "unknown_field"),
    ];
    for (data, field, want_status, want_code) in cases {
        let (ct, body) = multipart(&[(field, Some("x.png"), &data)]);
        let (status, out, _) = s.call("POST", "/api/search/image", Some((&ct, &body)), &[]);
        assert_error(status, &serde_json::from_slice(&out).unwrap(), want_status, want_code);
    }
    let (status, out, _) = s.call("POST", "/api/search/image", Some(("application/json", b"{}")), &[]);
    assert_error(status, &serde_json::from_slice(&out).unwrap(), 415, "not_multipart");
    let (status, out, _) = s.call("POST", "/api/search/image?q=cats", Some((&ct, &body)), &[]);
    assert_error(status, &serde_json::from_slice(&out).unwrap(), 400, "bad_query");
}

#[test]
fn uploads_over_the_limit_are_413_and_pixel_bombs_are_refused() {
    let s = InProcess::serve(open_library(&scene_library().data, false), ServeOptions { upload_limit: 1_000_000, ..serve_options() });
    let big = vec![0xffu8; 1_500_000];
    let (ct, body) = multipart(&[("image", Some("big.jpg"), &big)]);
    let (status, out, _) = s.call("POST", "/api/search/image", Some((&ct, &body)), &[]);
    assert_error(status, &serde_json::from_slice(&out).unwrap(), 413, "payload_too_large");
    // A valid PNG header claiming 100000×100000 pixels.
    let bomb = png_header(100_000, 100_000);
    let (ct, body) = multipart(&[("image", Some("bomb.png"), &bomb)]);
    let (status, out, _) = s.call("POST", "/api/search/image", Some((&ct, &body)), &[]);
    assert_error(status, &serde_json::from_slice(&out).unwrap(), 413, "image_too_large");
}

/// The signature and IHDR chunk of a PNG of `w`×`h` RGB pixels, with no data.
fn png_header(w: u32, h: u32) -> Vec<u8> {
    let mut ihdr = b"IHDR".to_vec();
    ihdr.extend_from_slice(&w.to_be_bytes());
    ihdr.extend_from_slice(&h.to_be_bytes());
    ihdr.extend_from_slice(&[8, 2, 0, 0, 0]);
    let crc = crc32(&ihdr);
    let mut out = b"\x89PNG\r\n\x1a\n".to_vec();
    out.extend_from_slice(&13u32.to_be_bytes());
    out.extend_from_slice(&ihdr);
    out.extend_from_slice(&crc.to_be_bytes());
    out
}

fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xffff_ffffu32;
    for b in bytes {
        crc ^= u32::from(*b);
        for _ in 0..8 {
            crc = if crc & 1 == 1 { (crc >> 1) ^ 0xedb8_8320 } else { crc >> 1 };
        }
    }
    !crc
}

#[test]
fn image_routes_return_metadata_thumbnail_original_similar_and_description() {
    let s = server();
    let file = single("red", "circle");
    let id = s.id_of(&file);
    let (status, v) = s.json("GET", &format!("/api/images/{id}"), None);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["id"], id);
    assert_eq!(v["name"], file.as_str());
    assert_eq!(v["format"], "png");
    assert!(v["tags"].is_array() && v["size"].as_u64().unwrap() > 0);

    let (status, thumb, ct) = s.call("GET", &format!("/api/images/{id}/thumbnail"), None, &[]);
    assert_eq!((status, ct.as_str()), (200, "image/jpeg"));
    assert_eq!(&thumb[..3], b"\xff\xd8\xff", "a JPEG");

    let (status, original, ct) = s.call("GET", &format!("/api/images/{id}/file"), None, &[]);
    assert_eq!((status, ct.as_str()), (200, "image/png"));
    assert_eq!(original, std::fs::read(scene_library().photos.join(&file)).unwrap(), "the original's bytes");

    let (status, v) = s.json("GET", &format!("/api/images/{id}/similar?k=4"), None);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["results"][0]["id"], id, "the image itself is most similar");
    assert_eq!(v["results"].as_array().unwrap().len(), 4);

    let (status, v) = s.json("GET", &format!("/api/images/{id}/describe?k=3"), None);
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["tags"].as_array().unwrap().len(), 3);
    assert!(v["captions"].is_array());

    for path in ["/api/images/999999", "/api/images/999999/thumbnail", "/api/images/999999/preview", "/api/images/999999/file", "/api/images/999999/similar", "/api/images/999999/describe"] {
        let (status, v) = s.json("GET", path, None);
        assert_error(status, &v, 404, "not_found");
    }
    let (status, v) = s.json("GET", "/api/images/abc", None);
    assert_error(status, &v, 400, "bad_path");
    let (status, v) = s.json("GET", &format!("/api/images/{id}/describe?k=0"), None);
    assert_error(status, &v, 400, "bad_parameter");
}

#[test]
fn originals_whose_files_resolve_outside_the_roots_are_refused() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    let outside = tmp.path().join("outside");
    std::fs::create_dir_all(&photos).unwrap();
    std::fs::create_dir_all(&outside).unwrap();
    let src = scene_library().photos.join(single("red", "circle"));
    std::fs::copy(&src, photos.join("inside.png")).unwrap();
    std::fs::copy(&src, outside.join("secret.png")).unwrap();
    let data = tmp.path().join("data");
    json_of(clipsight(&data).args(["--json", "index"]).arg(&photos));
    // After indexing, the file is replaced by a symlink that leads out of the root.
    std::fs::remove_file(photos.join("inside.png")).unwrap();
    std::os::unix::fs::symlink(outside.join("secret.png"), photos.join("inside.png")).unwrap();
    let s = InProcess::read_only(&data);
    let (_, v) = s.json("GET", "/api/search?q=&k=5", None);
    let id = v["results"][0]["id"].as_u64().unwrap();
    let (status, out, _) = s.call("GET", &format!("/api/images/{id}/file"), None, &[]);
    assert_error(status, &serde_json::from_slice(&out).unwrap(), 403, "outside_roots");
}

#[test]
fn classify_picks_the_shape_and_rejects_fewer_than_two_labels() {
    let s = server();
    let file = single("green", "triangle");
    let bytes = std::fs::read(scene_library().photos.join(&file)).unwrap();
    let labels = "a photo of a circle,a photo of a square,a photo of a triangle,a photo of a star";
    let (ct, body) = multipart(&[("image", Some("q.png"), &bytes), ("labels", None, labels.as_bytes())]);
    let (status, out, _) = s.call("POST", "/api/classify", Some((&ct, &body)), &[]);
    let v: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(status, 200, "{v}");
    assert_eq!(v["best"], "a photo of a triangle", "{v}");
    let p = v["labels"][2]["prob"].as_f64().unwrap();
    assert!(p > 0.5, "{v}");
    let (ct, body) = multipart(&[("image", Some("q.png"), &bytes), ("labels", None, b"just one")]);
    let (status, out, _) = s.call("POST", "/api/classify", Some((&ct, &body)), &[]);
    assert_error(status, &serde_json::from_slice(&out).unwrap(), 400, "bad_labels");
}

#[test]
fn matrix_scores_indexed_images_against_texts() {
    let s = server();
    let red = s.id_of(&single("red", "circle"));
    let blue = s.id_of(&single("blue", "square"));
    let (status, v) = s.json("POST", "/api/matrix", Some(json!({"images": [red, blue], "texts": ["a red circle", "a blue square"]})));
    assert_eq!(status, 200, "{v}");
    let m: Vec<Vec<f64>> = serde_json::from_value(v["similarity"].clone()).unwrap();
    assert!(m[0][0] > m[0][1] && m[1][1] > m[1][0], "matching pairs score higher: {m:?}");
    assert!(v["loss"].as_f64().is_some());
    let (status, v) = s.json("POST", "/api/matrix", Some(json!({"images": [], "texts": ["x"]})));
    assert_error(status, &v, 400, "bad_matrix");
    let (status, v) = s.json("POST", "/api/matrix", Some(json!({"images": [999999], "texts": ["x"]})));
    assert_error(status, &v, 404, "not_found");
}

#[test]
fn stats_facets_health_and_metrics_describe_the_library() {
    let s = server();
    let (status, mut v) = s.json("GET", "/api/stats", None);
    assert_eq!(status, 200, "{v}");
    while v["graph"] == "loading" {
        std::thread::sleep(std::time::Duration::from_millis(100));
        v = s.json("GET", "/api/stats", None).1;
    }
    assert_eq!(v["images"], 300);
    assert_eq!(v["model"].as_str().unwrap().len(), 32);
    assert_eq!(v["graph"], "exact", "300 images are scanned exactly");
    let (_, v) = s.json("GET", "/api/facets", None);
    assert_eq!(v["types"], json!(["png"]));
    let (status, v) = s.json("GET", "/api/health", None);
    assert_eq!((status, v["status"].as_str()), (200, Some("ok")));
    s.json("GET", "/api/search?q=a%20cat", None);
    let (status, text, _) = s.call("GET", "/metrics", None, &[]);
    let text = String::from_utf8(text).unwrap();
    assert_eq!(status, 200);
    assert!(text.contains("clipsight_images 300"), "{text}");
    assert!(text.contains("route=\"/api/search\""), "{text}");
    assert!(text.contains("clipsight_http_request_duration_seconds_bucket"), "{text}");
}

#[test]
fn unknown_routes_get_a_json_404_and_undocumented_methods_a_405_with_allow() {
    let s = server();
    for (method, path) in [("GET", "/api/nope"), ("GET", "/nope.js"), ("GET", "/api/images/1/nope")] {
        let (status, v) = s.json(method, path, None);
        assert_eq!(status, 404, "{method} {path}: {v}");
        assert!(v["error"]["code"].is_string(), "{v}");
    }
    for (method, path, allow) in [("DELETE", "/api/search", "GET, POST"), ("PUT", "/api/images/1", "GET"), ("GET", "/api/index", "POST")] {
        let response = ureq::request(method, &format!("{}{path}", s.base())).call();
        let Err(ureq::Error::Status(status, response)) = response else { panic!("{method} {path} succeeded") };
        assert_eq!((status, response.header("allow")), (405, Some(allow)), "{method} {path}");
        let v: Value = serde_json::from_str(&response.into_string().unwrap()).unwrap();
        assert_eq!(v["error"]["code"], "method_not_allowed", "{v}");
    }
}

#[test]
fn the_openapi_document_lists_every_route_and_every_listed_route_is_served() {
    let s = server();
    let (status, doc) = s.json("GET", "/api/openapi.json", None);
    assert_eq!(status, 200);
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    let paths = doc["paths"].as_object().unwrap();
    let expected = [
        ("get", "/api/search"),
        ("post", "/api/search"),
        ("post", "/api/search/image"),
        ("get", "/api/images/{id}"),
        ("get", "/api/images/{id}/thumbnail"),
        ("get", "/api/images/{id}/file"),
        ("get", "/api/images/{id}/companions/{n}/file"),
        ("get", "/api/images/{id}/preview"),
        ("get", "/api/images/{id}/similar"),
        ("get", "/api/images/{id}/describe"),
        ("post", "/api/classify"),
        ("post", "/api/matrix"),
        ("post", "/api/index"),
        ("get", "/api/jobs/{id}"),
        ("get", "/api/stats"),
        ("get", "/api/facets"),
        ("get", "/api/health"),
        ("get", "/api/openapi.json"),
        ("post", "/api/session"),
        ("get", "/api/session"),
        ("delete", "/api/session"),
    ];
    let mut listed = Vec::new();
    for (path, item) in paths {
        for method in item.as_object().unwrap().keys().filter(|m| ["get", "post", "put", "delete", "patch"].contains(&m.as_str())) {
            listed.push((method.clone(), path.clone()));
        }
    }
    listed.sort();
    let mut want: Vec<(String, String)> = expected.iter().map(|(m, p)| (m.to_string(), p.to_string())).collect();
    want.sort();
    assert_eq!(listed, want, "the document lists exactly the routes");
    // Every documented route is routed: whatever it answers, it is not the router's 404/405.
    for (method, path) in &listed {
        let concrete = path.replace("{id}", "1").replace("{n}", "0");
        let (status, body, _) = s.call(&method.to_uppercase(), &concrete, if method == "post" { Some(("application/json", b"{}")) } else { None }, &[]);
        let text = String::from_utf8_lossy(&body);
        assert!(status != 405 && !text.contains("\"no_route\""), "{method} {concrete} is not routed: {status} {text}");
    }
}

#[test]
fn with_a_token_every_route_needs_it_and_indexing_over_http_picks_up_new_files() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let src = &scene_library().photos;
    let files = [single("red", "circle"), single("blue", "square"), single("green", "triangle")];
    std::fs::copy(src.join(&files[0]), photos.join(&files[0])).unwrap();
    let data = tmp.path().join("data");
    json_of(clipsight(&data).args(["--json", "index"]).arg(&photos));
    let s = Server::start(&data, &["--token", "s3cret"]);
    for (method, path) in [("POST", "/api/index"), ("GET", "/api/stats"), ("GET", "/api/search?q=red"), ("GET", "/api/images/1/file")] {
        let (status, out, _) = s.anonymous().call(method, path, None, &[]);
        assert_error(status, &serde_json::from_slice(&out).unwrap(), 401, "unauthorized");
        let (status, out, _) = s.call(method, path, None, &[("Authorization", "Bearer wrong")]);
        assert_error(status, &serde_json::from_slice(&out).unwrap(), 403, "forbidden");
    }
    let (status, _) = s.anonymous().json("GET", "/api/health", None);
    assert_eq!(status, 200, "the health check needs no credentials");

    std::fs::copy(src.join(&files[1]), photos.join(&files[1])).unwrap();
    std::fs::copy(src.join(&files[2]), photos.join(&files[2])).unwrap();
    let (status, out, _) = s.call("POST", "/api/index", None, &[("Authorization", "Bearer s3cret")]);
    let job: Value = serde_json::from_slice(&out).unwrap();
    assert_eq!(status, 202, "{job}");
    let id = job["id"].as_u64().unwrap();
    s.wait_idle();
    let (status, job) = s.json("GET", &format!("/api/jobs/{id}"), None);
    assert_eq!(status, 200);
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(job["summary"]["indexed"], 2, "{job}");
    let (_, stats) = s.json("GET", "/api/stats", None);
    assert_eq!(stats["images"], 3);
    let (_, v) = s.json("GET", "/api/search?q=a%20blue%20square&k=1&mode=vector", None);
    assert!(v["results"][0]["path"].as_str().unwrap().ends_with(&files[1]), "the new file is searchable: {v}");
    let (status, v) = s.json("GET", "/api/jobs/424242", None);
    assert_error(status, &v, 404, "not_found");
}

/// How many indexing jobs the server has run or queued (ids count up from 1).
fn job_count(s: &Server) -> u64 {
    (1..).find(|id| s.json("GET", &format!("/api/jobs/{id}"), None).0 == 404).unwrap() - 1
}

/// Waits until `GET /api/stats` reports `images`, then for the watcher's debounce and any job it
/// queues to settle, and returns how many jobs have run.
fn settle(s: &Server, images: u64, what: &str) -> u64 {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    while s.json("GET", "/api/stats", None).1["images"] != images {
        assert!(std::time::Instant::now() < deadline, "{what} was not picked up");
        std::thread::sleep(std::time::Duration::from_millis(200));
    }
    std::thread::sleep(std::time::Duration::from_secs(4));
    s.wait_idle();
    job_count(s)
}

#[test]
fn watch_indexes_an_idle_folder_once_and_each_change_with_one_job() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(photos.join("trip")).unwrap();
    let src = &scene_library().photos;
    let names: Vec<String> = [("red", "circle"), ("green", "circle"), ("blue", "circle"), ("green", "square")].iter().map(|(c, s)| single(c, s)).collect();
    for (i, name) in names.iter().enumerate() {
        let folder = if i % 2 == 0 { photos.clone() } else { photos.join("trip") };
        std::fs::copy(src.join(name), folder.join(name)).unwrap();
    }
    let data = tmp.path().join("data");
    let s = Server::start(&data, &["--watch", photos.to_str().unwrap()]);
    assert_eq!(s.wait_idle()["images"], 4, "the watched folder is indexed at start");
    // Indexing opens every folder and file it reads; reads are not changes. The old watcher
    // queued a job for them, whose own reads queued the next, without end.
    std::thread::sleep(std::time::Duration::from_secs(6));
    assert_eq!(job_count(&s), 1, "an idle folder causes no job after the first");

    // A copy in place is several events (create, attributes, data, close); the debouncer used
    // to report it twice ("still changing", then "settled"), queueing two jobs.
    let square = single("blue", "square");
    std::fs::copy(src.join(&square), photos.join("trip").join(&square)).unwrap();
    assert_eq!(settle(&s, 5, "a new file"), 2, "one job for a new file");
    std::fs::rename(photos.join("trip").join(&square), photos.join("moved.png")).unwrap();
    assert_eq!(settle(&s, 5, "a rename"), 3, "one job for a rename");
    let (_, v) = s.json("GET", "/api/search?q=a%20blue%20square&k=1&mode=vector", None);
    assert!(v["results"][0]["path"].as_str().unwrap().ends_with("moved.png"), "the renamed file is found at its new path: {v}");
    std::fs::remove_file(photos.join(&names[0])).unwrap();
    assert_eq!(settle(&s, 4, "a deletion"), 4, "one job for a deletion");
    let (_, v) = s.json("GET", "/api/search?q=&k=10", None);
    assert!(v["results"].as_array().unwrap().iter().all(|r| !r["path"].as_str().unwrap().ends_with(&names[0])), "{v}");
}

#[test]
fn sigterm_stops_the_server_cleanly_and_the_library_reopens() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    std::fs::copy(scene_library().photos.join(single("red", "circle")), photos.join("a.png")).unwrap();
    let data = tmp.path().join("data");
    let s = Server::start(&data, &["--watch", photos.to_str().unwrap()]);
    s.wait_idle();
    let status = s.terminate();
    assert!(status.success(), "exit status {status}");
    let stats = json_of(clipsight(&data).args(["--json", "stats"]));
    assert_eq!(stats["images"], 1);
    assert_eq!(stats["interrupted_run"], false);
}

#[test]
fn a_stop_signal_as_soon_as_the_address_is_printed_stops_cleanly_and_indexing_resumes() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    let names: Vec<String> = ["red", "green", "blue"].iter().map(|c| single(c, "circle")).collect();
    for name in &names {
        std::fs::copy(scene_library().photos.join(name), photos.join(name)).unwrap();
    }
    let data = tmp.path().join("data");
    // The watched folder is being indexed when the signal arrives.
    for (name, signal) in [("TERM", libc::SIGTERM), ("INT", libc::SIGINT), ("TERM", libc::SIGTERM)] {
        let status = Server::start(&data, &["--watch", photos.to_str().unwrap()]).stop_with(signal);
        assert!(status.success(), "SIG{name}: exit status {status}");
    }
    let s = Server::start(&data, &["--watch", photos.to_str().unwrap()]);
    assert_eq!(s.wait_idle()["images"], names.len(), "the next start finishes the indexing");
}

#[test]
fn a_second_server_on_a_library_in_use_serves_read_only() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    std::fs::copy(scene_library().photos.join(single("red", "circle")), photos.join("a.png")).unwrap();
    let data = tmp.path().join("data");
    let first = Server::start(&data, &["--watch", photos.to_str().unwrap()]);
    first.wait_idle();
    let second = Server::start(&data, &[]);
    let (_, stats) = second.json("GET", "/api/stats", None);
    assert_eq!((stats["writable"].as_bool(), stats["images"].as_u64()), (Some(false), Some(1)), "{stats}");
    let (status, v) = second.json("POST", "/api/index", None);
    assert_error(status, &v, 409, "read_only");
    let (status, _) = second.json("GET", "/api/search?q=a%20red%20circle", None);
    assert_eq!(status, 200, "readers keep working");
}

/// Sends one raw HTTP/1.1 request line (no client-side path normalisation) → (status, body).
fn raw_get(base: &str, target: &str) -> (u16, Vec<u8>) {
    use std::io::{Read, Write};
    let addr = base.trim_start_matches("http://");
    let mut stream = std::net::TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    write!(stream, "GET {target} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n\r\n").unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let text = String::from_utf8_lossy(&response);
    let status = text.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0);
    let body = match response.windows(4).position(|w| w == b"\r\n\r\n") {
        Some(i) => response[i + 4..].to_vec(),
        None => Vec::new(),
    };
    (status, body)
}

#[test]
fn path_traversal_attempts_never_escape() {
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    std::fs::copy(scene_library().photos.join(single("red", "circle")), photos.join("a.png")).unwrap();
    let secret = tmp.path().join("secret.txt");
    std::fs::write(&secret, "TOP-SECRET-CONTENT").unwrap();
    let data = tmp.path().join("data");
    json_of(clipsight(&data).args(["--json", "index"]).arg(&photos));
    let s = InProcess::read_only(&data);
    let secret_abs = secret.to_str().unwrap().to_string();
    let attempts: Vec<String> = vec![
        "/../../../../etc/passwd".into(),
        "/..%2f..%2f..%2f..%2fetc%2fpasswd".into(),
        "/%2e%2e/%2e%2e/%2e%2e/etc/passwd".into(),
        "/%252e%252e%252f%252e%252e%252fetc%252fpasswd".into(),
        "/..%5c..%5c..%5cetc%5cpasswd".into(),
        "/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd".into(),
        "//etc/passwd".into(),
        "/%2fetc%2fpasswd".into(),
        "/etc/passwd".into(),
        "/Cargo.toml".into(),
        "/../Cargo.toml".into(),
        "/web/../Cargo.toml".into(),
        "/index.html/../../Cargo.toml".into(),
        "/.git/config".into(),
        "/src/main.rs".into(),
        "/app.js%00.png".into(),
        "/app.js/../../../../etc/passwd".into(),
        "/api/../Cargo.toml".into(),
        "/api/images/1/../../../../../etc/passwd".into(),
        "/api/images/..%2f..%2f..%2fetc%2fpasswd/file".into(),
        "/api/images/%2e%2e%2f1/file".into(),
        "/api/images/1%00/file".into(),
        "/api/images/1/file/../../../../etc/passwd".into(),
        "/api/images/1/file?path=/etc/passwd".into(),
        "/api/images/-1/file".into(),
        "/api/images/18446744073709551616/file".into(),
        "/api/images/0x1/file".into(),
        "/api/images/1/thumbnail/..%2f..%2f..%2fCargo.toml".into(),
        format!("/api/images/{}/file", secret_abs.replace('/', "%2f")),
        format!("/api/images/1/file{secret_abs}"),
        format!("/{}", secret_abs.trim_start_matches('/')),
        format!("/api/search?q=%2Bfile:{secret_abs}"),
        "/api/search?q=%2Bfile:/etc/passwd".into(),
        "/api/search?q=folder:../../etc".into(),
        "/%00/etc/passwd".into(),
        "/api/images/1/file%2f..%2f..%2fetc%2fpasswd".into(),
    ];
    assert!(attempts.len() >= 30);
    let mut escapes = Vec::new();
    for target in &attempts {
        let (status, body) = raw_get(s.base(), target);
        let text = String::from_utf8_lossy(&body);
        let leaked = text.contains("root:x:0:0") || text.contains("TOP-SECRET-CONTENT") || text.contains("[workspace]") || text.contains("[core]") || text.contains("fn main()");
        // The only file a traversal-looking request may get is a legitimate one (image 1 itself).
        if leaked || status == 0 {
            escapes.push(format!("{target} → {status}"));
        }
    }
    eprintln!("{} traversal attempts, {} escapes", attempts.len(), escapes.len());
    assert!(escapes.is_empty(), "escapes: {escapes:?}");
}

/// Fuzzing: every REST input answers 200 or a 4xx with a JSON error — never a 5xx or a dropped
/// connection. Cases are generated by proptest against one server per test.
mod fuzz {
    use super::*;
    use proptest::prelude::*;
    use proptest::test_runner::{Config, TestRunner};

    fn is_json_error(status: u16, body: &[u8]) -> bool {
        (400..500).contains(&status)
            && serde_json::from_slice::<Value>(body).is_ok_and(|v| v["error"]["code"].is_string() && v["error"]["message"].is_string())
    }

    fn runner(cases: u32) -> TestRunner {
        TestRunner::new(Config { cases, failure_persistence: None, ..Config::default() })
    }

    #[test]
    fn search_parameters_are_answered_or_refused_cleanly() {
        let s = server();
        let strategy = ("\\PC{0,40}", "[0-9a-z-]{0,6}", "[0-9-]{0,7}", "(hybrid|vector|keyword|[a-z]{0,6})");
        runner(200)
            .run(&strategy, |(q, k, offset, mode)| {
                let target = format!("/api/search?q={}&k={}&offset={}&mode={}", urlencode(&q), urlencode(&k), urlencode(&offset), urlencode(&mode));
                let (status, body) = raw_get(s.base(), &target);
                prop_assert!(status == 200 || is_json_error(status, &body), "{} → {} {}", target, status, String::from_utf8_lossy(&body));
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn json_bodies_are_answered_or_refused_cleanly() {
        let s = server();
        let strategy = "\\{(\"(q|terms|k|offset|mode|images|texts|min_score|x)\": ?(-?[0-9]{1,3}|\"[a-z ]{0,8}\"|\\[[0-9, ]{0,8}\\]|null|true|\\[\\{\"(text|image|weight)\": ?(\"[a-z]{0,4}\"|[0-9]{1,2})\\}\\]),? ?){0,4}\\}|\\PC{0,20}";
        runner(200)
            .run(&strategy, |body| {
                for route in ["/api/search", "/api/matrix"] {
                    let (status, out, _) = s.call("POST", route, Some(("application/json", body.as_bytes())), &[]);
                    prop_assert!(status == 200 || is_json_error(status, &out), "{} {} → {} {}", route, body, status, String::from_utf8_lossy(&out));
                }
                Ok(())
            })
            .unwrap();
    }

    #[test]
    fn arbitrary_uploads_are_answered_or_refused_cleanly() {
        let s = server();
        let prefixes: [&'static [u8]; 4] = [b"", b"\x89PNG\r\n\x1a\n", b"\xff\xd8\xff", b"GIF89a"];
        let strategy = (proptest::collection::vec(any::<u8>(), 0..2048), proptest::sample::select(prefixes.to_vec()));
        runner(100)
            .run(&strategy, |(bytes, prefix)| {
                let mut data = prefix.to_vec();
                data.extend_from_slice(&bytes);
                let (ct, body) = multipart(&[("image", Some("x"), &data), ("labels", None, b"a,b")]);
                for route in ["/api/search/image", "/api/classify"] {
                    let (status, out, _) = s.call("POST", route, Some((&ct, &body)), &[]);
                    prop_assert!(status == 200 || is_json_error(status, &out), "{} → {} {}", route, status, String::from_utf8_lossy(&out));
                    let (status, out, _) = s.call("POST", route, Some((&ct, &data)), &[]);
                    prop_assert!(status == 200 || is_json_error(status, &out), "{} raw → {} {}", route, status, String::from_utf8_lossy(&out));
                }
                Ok(())
            })
            .unwrap();
    }
}

#[test]
fn oversized_bodies_and_headers_are_refused_and_slow_clients_are_cut_off() {
    use std::io::{Read, Write};
    let s = server();
    // A JSON body over the 1 MB limit.
    let big = format!("{{\"q\": \"{}\"}}", "a".repeat(1_100_000));
    let (status, out, _) = s.call("POST", "/api/search", Some(("application/json", big.as_bytes())), &[]);
    assert_error(status, &serde_json::from_slice(&out).unwrap(), 413, "bad_json");
    // A 64 KiB header.
    let addr = s.base().trim_start_matches("http://").to_string();
    let mut stream = std::net::TcpStream::connect(&addr).unwrap();
    stream.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    write!(stream, "GET /api/health HTTP/1.1\r\nHost: {addr}\r\nX-Big: {}\r\n\r\n", "b".repeat(64 * 1024)).unwrap();
    let mut response = Vec::new();
    let _ = stream.read_to_end(&mut response);
    let head = String::from_utf8_lossy(&response[..response.len().min(64)]).to_string();
    assert!(head.starts_with("HTTP/1.1 431"), "an oversized header is refused: {head:?}");
    // A client that sends half a request line and stalls is answered 408 and disconnected.
    let started = std::time::Instant::now();
    let mut slow = std::net::TcpStream::connect(&addr).unwrap();
    slow.set_read_timeout(Some(std::time::Duration::from_secs(30))).unwrap();
    slow.write_all(b"GET /api/hea").unwrap();
    let mut response = Vec::new();
    let _ = slow.read_to_end(&mut response);
    let waited = started.elapsed();
    assert!(waited < std::time::Duration::from_secs(20), "the slow client was cut off after {waited:?}");
    let head = String::from_utf8_lossy(&response);
    assert!(head.is_empty() || head.starts_with("HTTP/1.1 408"), "{head:?}");
    let (status, _) = s.json("GET", "/api/health", None);
    assert_eq!(status, 200, "the server still answers");
}

#[test]
fn beyond_loopback_the_server_refuses_to_start_without_a_way_to_authenticate() {
    let out = clipsight(&scene_library().data).args(["serve", "--bind", "0.0.0.0:0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("refusing to serve beyond loopback") && stderr.contains("clipsight user add") && stderr.contains("--public"), "{stderr}");

    let served = |extra: &[&str]| {
        let mut child = clipsight(&scene_library().data)
            .args(["serve", "--bind", "0.0.0.0:0"])
            .args(extra)
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let mut line = String::new();
        std::io::BufRead::read_line(&mut std::io::BufReader::new(child.stdout.take().unwrap()), &mut line).unwrap();
        assert!(line.contains("http://0.0.0.0:"), "{extra:?}: {line}");
        let port = line.split("http://0.0.0.0:").nth(1).unwrap().split('/').next().unwrap().to_string();
        let (status, _, _) = Anonymous::at(&format!("http://127.0.0.1:{port}")).call("GET", "/api/stats", None, &[]);
        signal(child.id(), "TERM");
        let out = child.wait_with_output().unwrap();
        (status, String::from_utf8_lossy(&out.stderr).to_string())
    };
    let (status, stderr) = served(&["--public"]);
    assert_eq!(status, 200, "--public: anyone may read");
    assert!(stderr.contains("--public: anyone who can reach"), "{stderr}");
    let tmp = tempfile::tempdir().unwrap();
    let token_file = tmp.path().join("token");
    std::fs::write(&token_file, "from-a-secrets-manager\n").unwrap();
    let (status, _) = served(&["--token-file", token_file.to_str().unwrap()]);
    assert_eq!(status, 401, "with a token file, anonymous callers are refused");
}

/// The OpenAPI document and the server agree, as an independent tester sees it: schemathesis
/// (pinned in scripts/requirements.txt) runs every check with its default phases against a
/// library of real files, one of them with broken EXIF text, with and without `--token`.
/// tests/schemathesis.toml turns off, by name and operation, only the checks whose expectation
/// is wrong for us (the README says why).
#[test]
fn schemathesis_finds_no_failure_and_no_schema_error() {
    use std::io::Write;
    let _heavy = heavy();
    let tool = python().parent().unwrap().join("schemathesis");
    assert!(tool.exists(), "{} is missing: scripts/setup.sh installs it into .venv", tool.display());
    let tmp = tempfile::tempdir().unwrap();
    let photos = tmp.path().join("photos");
    std::fs::create_dir_all(photos.join("trips")).unwrap();
    for (i, name) in scene_library().manifest["images"].as_array().unwrap().iter().take(20).enumerate() {
        let name = name["file"].as_str().unwrap();
        let folder = if i % 2 == 0 { photos.clone() } else { photos.join("trips") };
        std::fs::copy(scene_library().photos.join(name), folder.join(name)).unwrap();
    }
    let odd = [(exif::Tag::DateTimeOriginal, "2019:06:0é 10:00:00".as_bytes().to_vec()), (exif::Tag::Make, b"Ca\xffnon".to_vec())];
    std::fs::write(photos.join("odd-exif.jpg"), jpeg_with_exif([200, 30, 30], &odd)).unwrap();
    let data = tmp.path().join("data");
    json_of(clipsight(&data).args(["--json", "index"]).arg(&photos));
    for token in [None, Some("s3cret")] {
        let extra: Vec<&str> = token.map(|t| vec!["--token", t]).unwrap_or_default();
        let server = Server::start(&data, &extra);
        let mut cmd = std::process::Command::new(&tool);
        cmd.arg("--config-file")
            .arg(root().join("tests/schemathesis.toml"))
            .args(["--no-color", "run"])
            .arg(format!("{}/api/openapi.json", server.base()))
            .args(["--checks", "all", "--seed", "1"])
            .current_dir(tmp.path());
        if let Some(t) = token {
            cmd.args(["-H", &format!("Authorization: Bearer {t}")]);
        }
        let out = cmd.output().expect("schemathesis runs");
        let report = String::from_utf8_lossy(&out.stdout);
        // The summary goes to the test log even when the test passes (libtest captures only
        // the print macros).
        let summary: String = report.lines().skip_while(|l| !l.contains("SUMMARY")).collect::<Vec<_>>().join("\n");
        let _ = writeln!(std::io::stderr(), "schemathesis (token: {}):\n{summary}", token.is_some());
        assert!(out.status.success(), "schemathesis found problems (token: {}):\n{report}\n{}", token.is_some(), String::from_utf8_lossy(&out.stderr));
    }
}
