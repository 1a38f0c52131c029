//! Photo formats beyond JPEG/PNG/WebP (issue 15): HEIC and AVIF made on this machine by
//! maintained encoders (tests/reference/make_heif.py: pillow-heif, Pillow), indexed by content,
//! upright, with their EXIF, embedded from the same pixels the reference decoder sees, searchable,
//! previewed for browsers, and refused cleanly when broken. Camera RAW: DNGs written by PiDNG
//! (tests/reference/make_raw.py) and by dnglab's writer (with an embedded preview).

use crate::common::*;

/// Every indexed image of the library by file name: id and record.
fn records(s: &impl Http) -> std::collections::HashMap<String, serde_json::Value> {
    let (_, v) = s.json("GET", "/api/search?q=&k=1000&mode=vector", None);
    v["results"].as_array().unwrap().iter().map(|r| (r["name"].as_str().unwrap().to_string(), r.clone())).collect()
}

/// Decodes JPEG bytes the server sent.
fn jpeg(bytes: &[u8]) -> image::RgbImage {
    image::load_from_memory_with_format(bytes, image::ImageFormat::Jpeg).expect("a JPEG").to_rgb8()
}

#[test]
fn heic_and_avif_photos_are_indexed_upright_with_exif_and_the_reference_pixels() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, photos) = (tmp.path().join("scenes"), tmp.path().join("photos"));
    scenes(&src, 4, 1_000_200);
    run_python(&["tests/reference/make_heif.py", src.to_str().unwrap(), photos.to_str().unwrap(), photos.join("reference").to_str().unwrap()]);
    let data = tmp.path().join("data");
    let summary = json_of(clipsight(&data).args(["--json", "index"]).arg(&photos));
    // 4 HEIC + 4 AVIF + their 8 reference PNGs + the turned HEIC; the cut-off one is reported.
    assert_eq!((summary["indexed"].as_u64(), summary["failed"].as_u64()), (Some(17), Some(1)), "{summary}");
    let error = &summary["errors"][0];
    assert!(error["path"].as_str().unwrap().ends_with("broken.heic") && error["error"].as_str().unwrap().contains("HEIF"), "{error}");

    let s = InProcess::read_only(&data);
    let all = records(&s);
    for (filter, format, count) in [("type:heic", "heic", 5), ("type:heif", "heic", 5), ("type:avif", "avif", 4)] {
        let (status, v) = s.json("GET", &format!("/api/search?q={filter}&k=100"), None);
        assert_eq!(status, 200, "{v}");
        let results = v["results"].as_array().unwrap();
        assert_eq!(results.len(), count, "{filter}: {v}");
        assert!(results.iter().all(|r| r["format"] == format), "{filter}: {v}");
    }

    for (name, hit) in all.iter().filter(|(n, _)| (n.ends_with(".heic") || n.ends_with(".avif")) && n.as_str() != "turned.heic") {
        // The same pixels as the reference decoder: the embeddings agree.
        let (_, similar) = s.json("GET", &format!("/api/images/{}/similar?k=20", hit["id"]), None);
        let reference = similar["results"].as_array().unwrap().iter().find(|r| r["name"] == format!("{name}.png").as_str()).unwrap_or_else(|| panic!("{name}'s reference among its neighbours: {similar}"));
        let cosine = reference["score"].as_f64().unwrap();
        assert!(cosine >= 0.999, "{name}: cosine {cosine} with the reference decoder's pixels");
        // The EXIF the encoder wrote.
        let (_, record) = s.json("GET", &format!("/api/images/{}", hit["id"]), None);
        assert_eq!(record["date_taken"], "2024-05-06 07:08:09", "{name}: {record}");
        assert!(record["camera"].as_str().is_some_and(|c| c.contains("iPhone 15")), "{name}: {record}");
        assert_eq!((record["width"].as_u64(), record["height"].as_u64()), (Some(256), Some(256)), "{name}");
    }

    // Turned by the file's `irot` (from EXIF Orientation 6), once: upright is 200x300, blue on top.
    let turned = &all["turned.heic"];
    assert_eq!((turned["width"].as_u64(), turned["height"].as_u64()), (Some(200), Some(300)), "{turned}");
    let (status, thumb, _) = s.call("GET", &format!("/api/images/{}/thumbnail", turned["id"]), None, &[]);
    assert_eq!(status, 200);
    let thumb = jpeg(&thumb);
    let (top, bottom) = (thumb.get_pixel(thumb.width() / 2, 4), thumb.get_pixel(thumb.width() / 2, thumb.height() - 5));
    assert!(top[2] > 150 && top[0] < 80, "blue on top: {top:?}");
    assert!(bottom[0] > 150 && bottom[2] < 80, "red below: {bottom:?}");

    // Browsers cannot show HEIC: the preview is a JPEG of the upright picture; the original stays.
    let (status, preview, content_type) = s.call("GET", &format!("/api/images/{}/preview", turned["id"]), None, &[]);
    assert_eq!((status, content_type.as_str()), (200, "image/jpeg"));
    assert_eq!(jpeg(&preview).dimensions(), (200, 300));
    let (status, original, _) = s.call("GET", &format!("/api/images/{}/file", turned["id"]), None, &[]);
    assert_eq!((status, original), (200, std::fs::read(photos.join("turned.heic")).unwrap()));

    // An uploaded HEIC finds its twins.
    let heic = all.keys().find(|n| n.ends_with(".heic") && n.as_str() != "turned.heic").unwrap().clone();
    let (content_type, body) = multipart(&[("image", Some("upload.heic"), &std::fs::read(photos.join(&heic)).unwrap())]);
    let (status, found, _) = s.call("POST", "/api/search/image?k=3", Some((&content_type, &body)), &[]);
    let found: serde_json::Value = serde_json::from_slice(&found).unwrap();
    assert_eq!(status, 200, "{found}");
    let stem = heic.trim_end_matches(".heic");
    assert!(found["results"].as_array().unwrap().iter().all(|r| r["name"].as_str().unwrap().starts_with(stem)), "{heic} → {found}");
}

/// `source` (a DNG without a preview) rewritten by dnglab's DNG writer, which embeds a preview
/// (1024 px) and a thumbnail, as cameras and converters do.
fn dng_with_preview(source: &std::path::Path, target: &std::path::Path) {
    let mut out = std::io::BufWriter::new(std::fs::File::create(target).unwrap());
    let params = rawler::dng::convert::ConvertParams { embedded: false, ..Default::default() };
    rawler::dng::convert::convert_raw_file(source, &mut out, &params).expect("dnglab converts the DNG");
}

#[test]
fn raw_photos_are_developed_or_previewed_with_their_exif_and_found_like_their_pictures() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, photos) = (tmp.path().join("scenes"), tmp.path().join("photos"));
    scenes(&src, 4, 1_000_300);
    run_python(&["tests/reference/make_raw.py", src.to_str().unwrap(), photos.to_str().unwrap(), photos.join("reference").to_str().unwrap()]);
    let first = std::fs::read_dir(&photos).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "dng") && !p.ends_with("broken.dng")).min().unwrap();
    let previewed = photos.join("previewed.dng");
    dng_with_preview(&first, &previewed);
    let data = tmp.path().join("data");
    let summary = json_of(clipsight(&data).args(["--json", "index"]).arg(&photos));
    // 4 DNGs + their 4 reference PNGs + the previewed DNG; the cut-off one is reported.
    assert_eq!((summary["indexed"].as_u64(), summary["failed"].as_u64()), (Some(9), Some(1)), "{summary}");
    let error = &summary["errors"][0];
    assert!(error["path"].as_str().unwrap().ends_with("broken.dng") && error["error"].as_str().unwrap().contains("RAW"), "{error}");

    let s = InProcess::read_only(&data);
    let all = records(&s);
    let (status, v) = s.json("GET", "/api/search?q=type:dng&k=100", None);
    assert_eq!(status, 200, "{v}");
    let dngs = v["results"].as_array().unwrap();
    assert_eq!(dngs.len(), 5, "{v}");
    assert!(dngs.iter().all(|r| r["format"] == "dng" && r["kind"] == "photo"), "{v}");

    let cosine_to = |id: &serde_json::Value, name: &str| {
        let (_, similar) = s.json("GET", &format!("/api/images/{id}/similar?k=20"), None);
        let found = similar["results"].as_array().unwrap().iter().find(|r| r["name"] == name).unwrap_or_else(|| panic!("{name} among the neighbours of {id}: {similar}"));
        found["score"].as_f64().unwrap()
    };
    for (name, hit) in all.iter().filter(|(n, _)| n.ends_with(".dng") && n.as_str() != "previewed.dng") {
        // Developed from the sensor data by rawler: embedded like LibRaw's development of it.
        let cosine = cosine_to(&hit["id"], &format!("{name}.png"));
        println!("{name}: cosine {cosine:.4} to LibRaw's development");
        assert!(cosine >= 0.98, "{name}: cosine {cosine} with LibRaw's development of the same file");
        let (_, record) = s.json("GET", &format!("/api/images/{}", hit["id"]), None);
        assert_eq!(record["date_taken"], "2023-04-05 06:07:08", "{name}: {record}");
        assert!(record["camera"].as_str().is_some_and(|c| c.contains("Fixture") && c.contains("RawCam")), "{name}: {record}");
        assert_eq!((record["width"].as_u64(), record["height"].as_u64()), (Some(256), Some(256)), "{name}");
    }
    // Its embedded preview is large enough for the model: decoded instead of the sensor data, at
    // this cost in embedding (stated in the README).
    let source = first.file_name().unwrap().to_str().unwrap();
    let cosine = cosine_to(&all["previewed.dng"]["id"], source);
    println!("previewed.dng: cosine {cosine:.4} between its embedded preview and its developed sensor data");
    assert!(cosine >= 0.98, "preview vs development: cosine {cosine}");

    // Browsers cannot show RAW: the preview route renders it; the original stays downloadable.
    let id = &all[source]["id"];
    let (status, preview, content_type) = s.call("GET", &format!("/api/images/{id}/preview"), None, &[]);
    assert_eq!((status, content_type.as_str()), (200, "image/jpeg"));
    assert_eq!(jpeg(&preview).dimensions(), (256, 256));
    let (status, original, _) = s.call("GET", &format!("/api/images/{id}/file"), None, &[]);
    assert_eq!((status, original), (200, std::fs::read(&first).unwrap()));
}

/// Runs Debian's ExifTool (the reference metadata writer) on `file`.
fn exiftool(args: &[&str], file: &std::path::Path) {
    let out = std::process::Command::new("exiftool").args(["-q", "-overwrite_original", "-charset", "iptc=UTF8", "-IPTC:CodedCharacterSet=UTF8"]).args(args).arg(file).output().expect("exiftool runs (scripts/setup.sh installs it)");
    assert!(out.status.success(), "exiftool {args:?}: {}", String::from_utf8_lossy(&out.stderr));
}

/// An XMP sidecar as darktable and Lightroom write them, with these keywords.
fn sidecar(keywords: &[&str], title: &str) -> String {
    let items: String = keywords.iter().map(|k| format!("<rdf:li>{k}</rdf:li>")).collect();
    format!(
        r#"<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/" xmlns:lr="http://ns.adobe.com/lightroom/1.0/">
<dc:title><rdf:Alt><rdf:li xml:lang="x-default">{title}</rdf:li></rdf:Alt></dc:title><dc:subject><rdf:Bag>{items}</rdf:Bag></dc:subject>
<lr:hierarchicalSubject><rdf:Bag><rdf:li>Places|Portugal|Lisbon</rdf:li></rdf:Bag></lr:hierarchicalSubject></rdf:Description></rdf:RDF></x:xmpmeta><?xpacket end="w"?>"#
    )
}

#[test]
fn keywords_titles_and_descriptions_people_wrote_are_searched_and_shown_and_follow_sidecar_edits() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, photos) = (tmp.path().join("scenes"), tmp.path().join("photos"));
    scenes(&src, 4, 1_000_400);
    std::fs::create_dir_all(&photos).unwrap();
    let pngs: Vec<_> = std::fs::read_dir(&src).unwrap().map(|e| e.unwrap().path()).filter(|p| p.extension().is_some_and(|e| e == "png")).collect();
    let as_jpeg = |png: &std::path::Path, name: &str| {
        let target = photos.join(name);
        image::open(png).unwrap().to_rgb8().save(&target).unwrap();
        target
    };
    // Embedded: IPTC keywords and XMP title/description, as a camera app or Photo Mechanic writes.
    let tagged = as_jpeg(&pngs[0], "tagged.jpg");
    exiftool(&["-IPTC:Keywords=lighthouse", "-IPTC:Keywords=生日派对", "-XMP-dc:Title=Cabo da Roca", "-XMP-dc:Description=The westernmost cape at dusk"], &tagged);
    // Sidecars: darktable's name (photo.jpg.xmp) and Lightroom's (photo.xmp).
    let darktable = as_jpeg(&pngs[1], "darktable.jpg");
    std::fs::write(photos.join("darktable.jpg.xmp"), sidecar(&["harbour"], "Boats")).unwrap();
    as_jpeg(&pngs[2], "lightroom.jpg");
    std::fs::write(photos.join("lightroom.xmp"), sidecar(&["tram"], "Line 28")).unwrap();
    as_jpeg(&pngs[3], "broken-sidecar.jpg");
    std::fs::write(photos.join("broken-sidecar.xmp"), "<x:xmpmeta><rdf:RDF").unwrap();

    let data = tmp.path().join("data");
    let summary = json_of(clipsight(&data).args(["--json", "index"]).arg(&photos));
    assert_eq!((summary["indexed"].as_u64(), summary["failed"].as_u64()), (Some(4), Some(0)), "{summary}");
    let warned = summary["warnings"].as_array().unwrap().iter().any(|w| w["path"].as_str().unwrap().ends_with("broken-sidecar.jpg") && w["warning"].as_str().unwrap().contains("sidecar"));
    assert!(warned, "the unreadable sidecar is reported, its photo indexed: {summary}");

    let found = |q: &str, mode: &str| -> Vec<String> {
        let s = InProcess::read_only(&data);
        let (status, v) = s.json("GET", &format!("/api/search?q={}&k=10&mode={mode}", urlencode(q)), None);
        assert_eq!(status, 200, "{v}");
        v["results"].as_array().unwrap().iter().map(|r| r["name"].as_str().unwrap().to_string()).collect()
    };
    for (query, name) in [("lighthouse", "tagged.jpg"), ("生日派对", "tagged.jpg"), ("westernmost", "tagged.jpg"), ("Roca", "tagged.jpg"), ("harbour", "darktable.jpg"), ("tram", "lightroom.jpg"), ("Lisbon", "darktable.jpg")] {
        let names = found(query, "keyword");
        assert!(names.contains(&name.to_string()), "{query} finds {name}: {names:?}");
        // They count in hybrid ranking: a photo annotated with the word comes first.
        let first = found(query, "hybrid").first().cloned().unwrap_or_default();
        assert!(names.contains(&first), "{query} (hybrid): {first} first, annotated: {names:?}");
    }
    assert_eq!(found("Lisbon", "keyword").len(), 2, "both sidecars' hierarchical keywords");

    let s = InProcess::read_only(&data);
    let all = records(&s);
    let (_, record) = s.json("GET", &format!("/api/images/{}", all["tagged.jpg"]["id"]), None);
    assert_eq!((record["title"].as_str(), record["description"].as_str()), (Some("Cabo da Roca"), Some("The westernmost cape at dusk")), "{record}");
    assert_eq!(record["keywords"], serde_json::json!(["lighthouse", "生日派对"]), "{record}");
    let (_, record) = s.json("GET", &format!("/api/images/{}", all["lightroom.jpg"]["id"]), None);
    assert_eq!(record["keywords"], serde_json::json!(["tram", "Places", "Portugal", "Lisbon"]), "{record}");
    drop(s);

    // Editing a sidecar is a change of its photo: the new keywords replace the old, nothing is re-embedded.
    std::thread::sleep(std::time::Duration::from_millis(20));
    std::fs::write(photos.join("darktable.jpg.xmp"), sidecar(&["quay"], "Boats")).unwrap();
    let summary = json_of(clipsight(&data).args(["--json", "index"]).arg(&photos));
    assert_eq!((summary["indexed"].as_u64(), summary["unchanged"].as_u64()), (Some(0), Some(4)), "{summary}");
    assert!(found("quay", "keyword").contains(&"darktable.jpg".to_string()));
    assert!(!found("harbour", "keyword").contains(&"darktable.jpg".to_string()), "the old keyword is gone");
    // Deleting it leaves the photo without them.
    std::fs::remove_file(photos.join("darktable.jpg.xmp")).unwrap();
    json_of(clipsight(&data).args(["--json", "index"]).arg(&photos));
    assert!(!found("quay", "keyword").contains(&"darktable.jpg".to_string()), "a deleted sidecar's keywords are gone");
    assert!(darktable.exists());
    // A deleted photo takes its annotations with it: the library checks clean.
    std::fs::remove_file(&tagged).unwrap();
    let summary = json_of(clipsight(&data).args(["--json", "index"]).arg(&photos));
    assert_eq!(summary["removed"].as_u64(), Some(1), "{summary}");
    assert!(found("lighthouse", "keyword").is_empty());
    let report = json_of(clipsight(&data).args(["--json", "check"]));
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
}

/// The names and companions of a library's items, by name (`role:name` for each companion).
fn items_with_companions(s: &impl Http) -> std::collections::BTreeMap<String, Vec<String>> {
    records(s)
        .into_iter()
        .map(|(name, hit)| {
            let listed = hit["companions"].as_array().map(|c| c.iter().map(|c| format!("{}:{}", c["role"].as_str().unwrap(), c["name"].as_str().unwrap())).collect()).unwrap_or_default();
            (name, listed)
        })
        .collect()
}

#[test]
fn a_raw_and_its_jpeg_twin_are_one_item_listing_both_files_unless_asked_otherwise() {
    let tmp = tempfile::tempdir().unwrap();
    let (src, photos) = (tmp.path().join("scenes"), tmp.path().join("photos"));
    scenes(&src, 2, 1_000_500);
    let reference = tmp.path().join("reference");
    run_python(&["tests/reference/make_raw.py", src.to_str().unwrap(), photos.to_str().unwrap(), reference.to_str().unwrap()]);
    std::fs::remove_file(photos.join("broken.dng")).unwrap();
    // The camera's JPEG of each shot, beside its RAW, named alike (upper case, as cameras do).
    let mut twins = Vec::new();
    for dng in std::fs::read_dir(&photos).unwrap().map(|e| e.unwrap().path()) {
        let stem = dng.file_stem().unwrap().to_str().unwrap().to_string();
        let developed = reference.join(format!("{stem}.dng.png"));
        image::open(&developed).unwrap().to_rgb8().save_with_format(photos.join(format!("{stem}.JPG")), image::ImageFormat::Jpeg).unwrap();
        twins.push(stem);
    }
    twins.sort();
    let data = tmp.path().join("data");
    let summary = json_of(clipsight(&data).args(["--json", "index"]).arg(&photos));
    assert_eq!((summary["scanned"].as_u64(), summary["indexed"].as_u64(), summary["companions"].as_u64(), summary["failed"].as_u64()), (Some(4), Some(2), Some(2), Some(0)), "{summary}");

    let s = InProcess::read_only(&data);
    let expected: std::collections::BTreeMap<String, Vec<String>> = twins.iter().map(|t| (format!("{t}.JPG"), vec![format!("raw:{t}.dng")])).collect();
    assert_eq!(items_with_companions(&s), expected, "one item per shot: the JPEG, its RAW listed");
    // The CLI's text output names the RAW after its JPEG.
    let out = clipsight(&data).args(["search", "type:dng", "-k", "1"]).output().unwrap();
    let line = String::from_utf8_lossy(&out.stdout).trim().to_string();
    assert!(line.contains(".JPG  + ") && line.ends_with(".dng"), "{line}");
    // Found by the RAW's format too; the item is the JPEG (decoded fast, shown by browsers).
    let (_, v) = s.json("GET", "/api/search?q=type:dng&k=10", None);
    assert_eq!(v["results"].as_array().unwrap().len(), 2, "{v}");
    assert!(v["results"].as_array().unwrap().iter().all(|r| r["format"] == "jpeg"), "{v}");
    let id = s.id_of(&format!("{}.JPG", twins[0]));
    let (_, record) = s.json("GET", &format!("/api/images/{id}"), None);
    let companion = &record["companions"][0];
    assert_eq!((companion["format"].as_str(), companion["role"].as_str()), (Some("dng"), Some("raw")), "{record}");
    let raw = std::fs::read(photos.join(format!("{}.dng", twins[0]))).unwrap();
    assert_eq!(companion["size"].as_u64(), Some(raw.len() as u64));
    // The RAW downloads from the item, whole or by ranges; a companion it does not have is 404.
    let (status, bytes, _) = s.call("GET", companion["file"].as_str().unwrap(), None, &[]);
    assert_eq!((status, bytes == raw), (200, true));
    let (status, bytes, _) = s.call("GET", companion["file"].as_str().unwrap(), None, &[("Range", "bytes=10-19")]);
    assert_eq!((status, bytes.as_slice()), (206, &raw[10..20]));
    let (status, v) = s.json("GET", &format!("/api/images/{id}/companions/1/file"), None);
    assert_eq!((status, v["error"]["code"].as_str()), (404, Some("not_found")), "{v}");
    drop(s);

    // --pairs separate: each file is an item; back together, the RAWs' items go, their ids with them.
    let summary = json_of(clipsight(&data).args(["--json", "index", "--pairs", "separate"]).arg(&photos));
    assert_eq!((summary["indexed"].as_u64(), summary["unchanged"].as_u64(), summary["companions"].as_u64()), (Some(2), Some(2), Some(0)), "{summary}");
    let s = InProcess::read_only(&data);
    assert!(items_with_companions(&s).values().all(Vec::is_empty));
    assert_eq!(items_with_companions(&s).len(), 4);
    drop(s);
    let summary = json_of(clipsight(&data).args(["--json", "index"]).arg(&photos));
    assert_eq!((summary["removed"].as_u64(), summary["unchanged"].as_u64(), summary["companions"].as_u64()), (Some(2), Some(2), Some(2)), "{summary}");
    assert_eq!(items_with_companions(&InProcess::read_only(&data)), expected);
    // Deleting a RAW leaves its JPEG alone in the library.
    std::fs::remove_file(photos.join(format!("{}.dng", twins[0]))).unwrap();
    json_of(clipsight(&data).args(["--json", "index"]).arg(&photos));
    let items = items_with_companions(&InProcess::read_only(&data));
    assert_eq!(items[&format!("{}.JPG", twins[0])], Vec::<String>::new(), "{items:?}");
    let report = json_of(clipsight(&data).args(["--json", "check"]));
    assert_eq!(report["problems"], serde_json::json!([]), "{report}");
}
