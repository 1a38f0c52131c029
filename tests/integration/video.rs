//! Videos (issue 15): made on this machine by Debian's FFmpeg from the fixture's scenes
//! (tests/reference/make_videos.py), indexed as moments beside photos, found at the moment that
//! matches — by text and by an uploaded picture — with their date, camera and place, previewed
//! at any second, served with ranges for seeking, re-indexed only when they change, and refused
//! one by one, with reasons, when broken.

use crate::common::*;

/// The hits of a `search --json` run, by file name.
fn hits_by_name(v: &serde_json::Value) -> std::collections::HashMap<String, serde_json::Value> {
    v["results"].as_array().unwrap().iter().map(|r| (r["name"].as_str().unwrap().to_string(), r.clone())).collect()
}

/// The red circle is on screen from second 12 to second 15 of the moment videos.
fn inside_the_circle(moment_s: &serde_json::Value) -> bool {
    moment_s.as_f64().is_some_and(|t| (12.0..15.0).contains(&t))
}

#[test]
fn videos_are_found_at_the_moment_that_matches_beside_photos() {
    let tmp = tempfile::tempdir().unwrap();
    let (scenes_dir, media) = (tmp.path().join("scenes"), tmp.path().join("media"));
    scenes(&scenes_dir, 80, 777);
    let used: serde_json::Value = serde_json::from_str(&run_python(&["tests/reference/make_videos.py", scenes_dir.to_str().unwrap(), media.to_str().unwrap()])).unwrap();
    // Photos beside the videos: the scenes themselves, but for the red circle.
    let photos = media.join("photos");
    std::fs::create_dir_all(&photos).unwrap();
    for i in 1..=20 {
        let name = format!("{i:06}.png");
        if name != used["circle"] {
            std::fs::copy(scenes_dir.join(&name), photos.join(&name)).unwrap();
        }
    }
    let data = tmp.path().join("data");
    let summary = json_of(clipsight(&data).args(["--json", "index"]).arg(&media));
    // 19 photos + moment.{mp4,webm,mov}, black.mp4, long.mkv; three refused with their reasons.
    assert_eq!((summary["indexed"].as_u64(), summary["failed"].as_u64()), (Some(24), Some(3)), "{summary}");
    let reason = |file: &str| summary["errors"].as_array().unwrap().iter().find(|e| e["path"].as_str().unwrap().ends_with(file)).map(|e| e["error"].as_str().unwrap().to_string());
    assert_eq!(reason("audio.mp4").as_deref(), Some("the file has no video stream"));
    assert!(reason("zero.mp4").is_some_and(|r| r.contains("no video stream") || r.contains("no frame")), "{summary}");
    assert!(reason("broken.mp4").is_some_and(|r| r.starts_with("corrupt video") && r.contains("moov atom not found")), "{summary}");
    let warned = |file: &str| summary["warnings"].as_array().unwrap().iter().any(|w| w["path"].as_str().unwrap().ends_with(file));
    assert!(warned("black.mp4"), "a video that is all black is listed with a warning: {summary}");

    // Text → the moment: each moment video comes back once, at a second inside the window.
    let found = json_of(clipsight(&data).args(["--json", "search", "a red circle", "-k", "30"]));
    let hits = hits_by_name(&found);
    for name in ["moment.mp4", "moment.webm", "moment.mov"] {
        let hit = &hits[name];
        assert_eq!(hit["kind"], "video", "{hit}");
        assert!(inside_the_circle(&hit["moment_s"]), "{name} found at {} (the circle shows from 12 to 15 s): {hit}", hit["moment_s"]);
        let moments = hit["moments"].as_array().unwrap();
        assert_eq!(moments[0]["moment_s"], hit["moment_s"], "the best moment comes first: {hit}");
        assert_eq!(moments[0]["score"], hit["score"], "a video scores as its best moment: {hit}");
        assert!(moments.iter().all(|m| m["score"].as_f64() <= hit["score"].as_f64()), "{hit}");
        assert_eq!(hit["duration_s"], 30.0);
        assert!(hit["frame"].as_str().unwrap().contains("/preview?t="), "{hit}");
    }
    assert_eq!(found["results"].as_array().unwrap().iter().filter(|r| r["name"] == "moment.mp4").count(), 1, "one result per video");
    // The text output says where in the video.
    let out = clipsight(&data).args(["search", "a red circle type:mp4", "-k", "1"]).output().unwrap();
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(line.ends_with("moment.mp4 @ 0:12") || line.ends_with("moment.mp4 @ 0:13") || line.ends_with("moment.mp4 @ 0:14"), "{line}");
    assert!(!hits.contains_key("black.mp4"), "black frames are never a match: {found}");
    let photo = found["results"].as_array().unwrap().iter().find(|r| r["kind"] == "photo").expect("photos rank among videos");
    assert!(photo.get("moment_s").is_none() && photo.get("moments").is_none(), "{photo}");

    let s = InProcess::read_only(&data);
    let id = |name: &str| s.id_of(name);
    let (_, stats) = s.json("GET", "/api/stats", None);
    assert_eq!((stats["images"].as_u64(), stats["videos"].as_u64()), (Some(24), Some(5)), "{stats}");
    // type:video and type:photo split the library (the black video is listed, never matched);
    // type:mov picks the format.
    for (query, kind, count) in [("a red circle type:video", "video", 4), ("a red circle type:photo", "photo", 19), ("type:mov", "video", 1), ("type:video", "video", 5)] {
        let (status, v) = s.json("GET", &format!("/api/search?q={}&k=100", query.replace(' ', "%20")), None);
        assert_eq!(status, 200, "{v}");
        let results = v["results"].as_array().unwrap();
        assert!(results.iter().all(|r| r["kind"] == kind), "{query}: {v}");
        assert_eq!(results.len(), count, "{query}: {v}");
    }
    // REST carries the same contract.
    let (_, rest) = s.json("GET", "/api/search?q=a%20red%20circle&k=30", None);
    assert!(inside_the_circle(&hits_by_name(&rest)["moment.mp4"]["moment_s"]), "{rest}");

    // A picture → the moment: the red-circle scene finds the videos where it shows.
    let circle = std::fs::read(scenes_dir.join(used["circle"].as_str().unwrap())).unwrap();
    let (content_type, body) = multipart(&[("image", Some("circle.png"), &circle)]);
    let (status, similar, _) = s.call("POST", "/api/search/image?k=3", Some((&content_type, &body)), &[]);
    let similar: serde_json::Value = serde_json::from_slice(&similar).unwrap();
    assert_eq!(status, 200, "{similar}");
    for hit in similar["results"].as_array().unwrap() {
        assert!(hit["name"].as_str().unwrap().starts_with("moment.") && inside_the_circle(&hit["moment_s"]), "the three videos, at the circle: {similar}");
    }

    // A video is not a picture to find similar ones by: a documented 415.
    let (content_type, body) = multipart(&[("image", Some("clip.mp4"), &std::fs::read(media.join("moment.mp4")).unwrap())]);
    let (status, refused, _) = s.call("POST", "/api/search/image?k=3", Some((&content_type, &body)), &[]);
    let refused: serde_json::Value = serde_json::from_slice(&refused).unwrap();
    assert_eq!((status, refused["error"]["code"].as_str()), (415, Some("not_an_image")), "{refused}");

    // Date, camera and place from the containers.
    let (_, mov) = s.json("GET", &format!("/api/images/{}", id("moment.mov")), None);
    assert_eq!((mov["kind"].as_str(), mov["date_taken"].as_str(), mov["camera"].as_str()), (Some("video"), Some("2024-05-01 12:34:56"), Some("Apple iPhone 15")), "{mov}");
    assert_eq!(mov["gps"], serde_json::json!([-33.8568, 151.2153]));
    let (_, mp4) = s.json("GET", &format!("/api/images/{}", id("moment.mp4")), None);
    assert_eq!((mp4["date_taken"].as_str(), mp4["width"].as_u64(), mp4["height"].as_u64()), (Some("2023-07-14 18:30:00"), Some(640), Some(360)), "{mp4}");
    assert_eq!(mp4["gps"], serde_json::json!([48.8584, 2.2945]));
    // near: finds what was filmed there.
    for (near, names) in [("near:48.8584,2.2945,1", vec!["moment.mp4"]), ("near:-33.86,151.21,5", vec!["moment.mov"]), ("near:0,0,100", vec![])] {
        let (status, v) = s.json("GET", &format!("/api/search?q={near}&k=50"), None);
        assert_eq!(status, 200, "{v}");
        let found: Vec<&str> = v["results"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap()).collect();
        assert_eq!(found, names, "{near}");
    }
    let (status, v) = s.json("GET", "/api/search?q=near:48.8,2.3", None);
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("bad_query")), "{v}");
    let times: Vec<f64> = mp4["moments_s"].as_array().unwrap().iter().map(|t| t.as_f64().unwrap()).collect();
    assert!(times.windows(2).all(|w| w[1] - w[0] <= 5.0 + 1e-9), "at most 5 s between moments: {times:?}");
    assert!(times.iter().any(|t| (12.0..13.0).contains(t)) && times.iter().any(|t| (15.0..16.0).contains(t)), "the cuts at 12 s and 15 s are moments: {times:?}");
    // Ten hours: sampled sparsely, within the cap.
    let (_, long) = s.json("GET", &format!("/api/images/{}", id("long.mkv")), None);
    let long_moments = long["moments_s"].as_array().unwrap().len();
    assert_eq!(long["duration_s"], 36000.0);
    assert!((100..=240).contains(&long_moments), "{long_moments} moments in 10 hours");

    // The frame at any second, as a JPEG, and the original with ranges (how browsers seek).
    let frame = |t: &str| {
        let (status, bytes, content_type) = s.call("GET", &format!("/api/images/{}/preview?t={t}", id("moment.mp4")), None, &[]);
        assert_eq!((status, content_type.as_str()), (200, "image/jpeg"), "t={t}");
        image::load_from_memory(&bytes).unwrap().to_rgb8()
    };
    let (at_13, at_5) = (frame("13"), frame("5"));
    assert_eq!(at_13.dimensions(), (640, 360));
    let reddish = |img: &image::RgbImage| img.pixels().filter(|p| p[0] > 150 && p[1] < 90 && p[2] < 90).count();
    assert!(reddish(&at_13) > reddish(&at_5) + 500, "the circle shows at 13 s and not at 5 s");
    let (status, v) = s.json("GET", &format!("/api/images/{}/preview?t=-1", id("moment.mp4")), None);
    assert_eq!((status, v["error"]["code"].as_str()), (400, Some("bad_parameter")), "{v}");
    let original = std::fs::read(media.join("moment.mp4")).unwrap();
    let (status, part, _) = s.call("GET", &format!("/api/images/{}/file", id("moment.mp4")), None, &[("Range", "bytes=1000-1999")]);
    assert_eq!((status, part.as_slice()), (206, &original[1000..2000]));
    drop(s);

    // Incremental: nothing is re-sampled; a moved video keeps its id and moments.
    let again = json_of(clipsight(&data).args(["--json", "index"]).arg(&media));
    assert_eq!((again["indexed"].as_u64(), again["unchanged"].as_u64()), (Some(0), Some(24)), "{again}");
    let before = InProcess::read_only(&data).id_of("moment.mp4");
    std::fs::create_dir_all(media.join("trip")).unwrap();
    std::fs::rename(media.join("moment.mp4"), media.join("trip/moment.mp4")).unwrap();
    let moved = json_of(clipsight(&data).args(["--json", "index"]).arg(&media));
    assert_eq!((moved["moved"].as_u64(), moved["indexed"].as_u64()), (Some(1), Some(0)), "{moved}");
    let s = InProcess::read_only(&data);
    assert_eq!(s.id_of("moment.mp4"), before);
    let (_, rest) = s.json("GET", "/api/search?q=a%20red%20circle%20folder:trip&k=5", None);
    assert!(inside_the_circle(&rest["results"][0]["moment_s"]), "{rest}");
}

/// A still-picture scene as a short H.264 QuickTime movie, as an iPhone's Live Photo motion is.
fn motion_of(scene: &std::path::Path, target: &std::path::Path) {
    ffmpeg(&["-loop", "1", "-i", scene.to_str().unwrap(), "-t", "3", "-r", "15", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-f", "mov", target.to_str().unwrap()]);
}

#[test]
fn a_live_photo_is_its_still_with_its_motion_listed_and_playable() {
    let tmp = tempfile::tempdir().unwrap();
    let (scenes_dir, made, media) = (tmp.path().join("scenes"), tmp.path().join("made"), tmp.path().join("media"));
    scenes(&scenes_dir, 2, 1_000_600);
    run_python(&["tests/reference/make_heif.py", scenes_dir.to_str().unwrap(), made.to_str().unwrap(), made.join("reference").to_str().unwrap()]);
    let pngs: Vec<_> = {
        let mut p: Vec<_> = std::fs::read_dir(&scenes_dir).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "png")).collect();
        p.sort();
        p
    };
    // An iPhone's Live Photo: IMG_0001.HEIC and IMG_0001.MOV; beside it a video of its own.
    std::fs::create_dir_all(&media).unwrap();
    std::fs::copy(made.join(format!("{}.heic", pngs[0].file_stem().unwrap().to_str().unwrap())), media.join("IMG_0001.HEIC")).unwrap();
    motion_of(&pngs[0], &media.join("IMG_0001.MOV"));
    motion_of(&pngs[1], &media.join("walk.mov"));
    let data = tmp.path().join("data");
    let summary = json_of(clipsight(&data).args(["--json", "index"]).arg(&media));
    assert_eq!((summary["indexed"].as_u64(), summary["companions"].as_u64(), summary["failed"].as_u64()), (Some(2), Some(1), Some(0)), "{summary}");

    let s = InProcess::read_only(&data);
    let (_, v) = s.json("GET", "/api/search?q=&k=10&mode=vector", None);
    let hits = hits_by_name(&v);
    assert_eq!(hits.len(), 2, "{v}");
    let live = &hits["IMG_0001.HEIC"];
    assert_eq!(live["kind"], "photo", "{live}");
    let motion = &live["companions"][0];
    assert_eq!((motion["name"].as_str(), motion["role"].as_str(), motion["format"].as_str()), (Some("IMG_0001.MOV"), Some("motion"), Some("mov")), "{live}");
    assert!(hits["walk.mov"].get("companions").is_none(), "a video of its own stays one: {v}");
    // The motion is not a video of the library: type:video finds the other one only.
    let (_, videos) = s.json("GET", "/api/search?q=type:video&k=10", None);
    assert_eq!(hits_by_name(&videos).keys().collect::<Vec<_>>(), vec!["walk.mov"], "{videos}");
    // It is served with ranges, so a browser plays it.
    let bytes = std::fs::read(media.join("IMG_0001.MOV")).unwrap();
    let (status, part, content_type) = s.call("GET", motion["file"].as_str().unwrap(), None, &[("Range", "bytes=0-99")]);
    assert_eq!((status, part.as_slice(), content_type.as_str()), (206, &bytes[..100], "video/quicktime"));
    let (_, record) = s.json("GET", &format!("/api/images/{}", live["id"]), None);
    assert_eq!(record["companions"], serde_json::json!([motion]), "{record}");
    drop(s);

    // Separate: the motion is a video of its own, with its moments.
    let summary = json_of(clipsight(&data).args(["--json", "index", "--pairs", "separate"]).arg(&media));
    assert_eq!((summary["indexed"].as_u64(), summary["companions"].as_u64()), (Some(1), Some(0)), "{summary}");
    let (_, videos) = InProcess::read_only(&data).json("GET", "/api/search?q=type:video&k=10", None);
    assert_eq!(videos["results"].as_array().unwrap().len(), 2, "{videos}");
}
