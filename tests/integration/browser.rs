//! The web UI in headless Chromium (Debian's chromium + chromedriver, installed by
//! scripts/setup.sh --browser), driven over WebDriver: search as you type, upload for similar
//! images, the large view, the back button, a phone-width viewport, and signing in and out of a
//! private server. Screenshots are saved under
//! `$CARGO_TARGET_TMPDIR/screenshots/` for people to look at.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;
use fantoccini::{Client, ClientBuilder, Locator};
use serde_json::{json, Value};

/// chromedriver on a free port, killed on drop.
struct Driver {
    child: Child,
    url: String,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn chromedriver() -> Driver {
    let bin = ["/usr/bin/chromedriver", "/usr/lib/chromium/chromedriver"].into_iter().find(|p| Path::new(p).exists()).expect(
        "chromedriver not found: the browser tests need Debian's chromium and chromium-driver (scripts/setup.sh --browser, which scripts/test.sh runs)",
    );
    let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
    let child = Command::new(bin).arg(format!("--port={port}")).stdout(Stdio::null()).stderr(Stdio::null()).spawn().expect("chromedriver starts");
    let url = format!("http://127.0.0.1:{port}");
    let deadline = Instant::now() + Duration::from_secs(20);
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(Instant::now() < deadline, "chromedriver did not listen");
        std::thread::sleep(Duration::from_millis(100));
    }
    Driver { child, url }
}

async fn browser(driver: &Driver) -> Client {
    browser_in(driver, "en-US").await
}

/// A Chromium whose language (`navigator.language`, Accept-Language) is `language`.
async fn browser_in(driver: &Driver, language: &str) -> Client {
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": "/usr/bin/chromium",
               "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900", format!("--lang={language}")],
               "prefs": {"intl.accept_languages": language}}),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    ClientBuilder::new(connector).capabilities(caps).connect(&driver.url).await.expect("a Chromium session")
}

/// Polls a JavaScript expression until it is truthy; returns its value.
async fn until(client: &Client, what: &str, expression: &str) -> Value {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v = client.execute(&format!("return ({expression});"), vec![]).await.expect("script runs");
        if !(v.is_null() || v == json!(false) || v == json!("") || v == json!(0)) {
            return v;
        }
        if Instant::now() > deadline {
            let url = client.current_url().await.map(|u| u.to_string()).unwrap_or_default();
            panic!("timed out waiting for {what} ({expression}) at {url}");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn screenshot(client: &Client, name: &str) {
    let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join(format!("{name}.png"));
    std::fs::write(&path, client.screenshot().await.expect("screenshot")).unwrap();
    eprintln!("screenshot: {}", path.display());
}

/// The id of the first result in the grid.
async fn first_result(client: &Client) -> u64 {
    until(client, "results", "document.querySelector('#results .result')").await;
    let id = until(client, "first id", "document.querySelector('#results .result').dataset.id").await;
    id.as_str().unwrap().parse().unwrap()
}

/// All flows in one browser session (starting Chromium costs seconds on 2 cores).
#[tokio::test(flavor = "current_thread")]
#[allow(clippy::await_holding_lock)] // the guard serialises whole tests; one thread runs this one
async fn the_web_ui_searches_uploads_opens_details_and_goes_back() {
    let _heavy = heavy();
    let lib = scene_library();
    let server = Server::start(&lib.data, &[]);
    let driver = chromedriver();
    let client = browser(&driver).await;
    // The engine's best match for the query the test types is one of the library's red circles.
    let (_, best) = server.json("GET", "/api/search?q=a%20red%20circle&k=1", None);
    let red_circle_file = best["results"][0]["path"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
    assert!(lib.singles("red", "circle").contains(&red_circle_file), "best match {:?}", lib.caption_of(&red_circle_file));
    let red_circle = best["results"][0]["id"].as_u64().unwrap();

    // Type a query: results appear as you type, a red circle first (default, hybrid ranking).
    client.goto(server.base()).await.unwrap();
    let q = client.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("#q")).await.unwrap();
    q.send_keys("a red circle").await.unwrap();
    until(&client, "the URL to hold the query", "new URLSearchParams(location.search).get('q') === 'a red circle'").await;
    until(&client, "results of the query", &format!("document.querySelector('#results .result') && document.querySelector('#results .result').dataset.id === '{red_circle}'")).await;
    assert_eq!(first_result(&client).await, red_circle);
    let status = until(&client, "the status line", "document.querySelector('#status').textContent").await;
    assert!(status.as_str().unwrap().contains("result"), "{status}");
    screenshot(&client, "1-search-red-circle").await;

    // Open the first result: the large view shows its metadata.
    client.find(Locator::Css("#results .result")).await.unwrap().click().await.unwrap();
    until(&client, "the details view", &format!("(() => {{ const d = document.querySelector('#details'); return d && d.dataset.id === '{red_circle}' && d.offsetParent !== null && d.getBoundingClientRect().width > 0; }})()")).await;
    let text = client.find(Locator::Css("#details")).await.unwrap().text().await.unwrap();
    assert!(text.contains(&red_circle_file), "the details name the file: {text}");
    until(&client, "the image id in the URL", &format!("new URLSearchParams(location.search).get('image') === '{red_circle}'")).await;
    screenshot(&client, "2-details").await;

    // Back: the view closes and the previous search is still there.
    client.back().await.unwrap();
    until(&client, "the details to close", "(() => { const d = document.querySelector('#details'); return !d || d.offsetParent === null || d.hidden || d.getAttribute('aria-hidden') === 'true' || !d.open && d.tagName === 'DIALOG'; })()").await;
    let value = client.execute("return document.querySelector('#q').value;", vec![]).await.unwrap();
    assert_eq!(value, json!("a red circle"));
    assert_eq!(first_result(&client).await, red_circle);
    screenshot(&client, "3-back-to-results").await;

    // A second search, then Back restores the first one.
    client.goto(&format!("{}/?q=a+blue+square", server.base())).await.unwrap();
    let blue_square = server.id_of(&lib.single("blue", "square"));
    until(&client, "blue results", "document.querySelector('#results .result')").await;
    client.back().await.unwrap();
    until(&client, "the first search restored", "document.querySelector('#q') && document.querySelector('#q').value === 'a red circle'").await;
    until(&client, "its results", &format!("document.querySelector('#results .result') && document.querySelector('#results .result').dataset.id === '{red_circle}'")).await;

    // Upload an image: similar images, itself first.
    let upload = lib.photos.join(lib.single("blue", "square"));
    client.execute("const u = document.querySelector('#upload'); u.style.display = 'block'; u.hidden = false;", vec![]).await.unwrap();
    let input = client.find(Locator::Css("#upload")).await.unwrap();
    input.send_keys(upload.to_str().unwrap()).await.unwrap();
    until(&client, "similar results", &format!("document.querySelector('#results .result') && document.querySelector('#results .result').dataset.id === '{blue_square}'")).await;
    screenshot(&client, "4-similar-by-upload").await;

    // A phone's width: nothing sticks out sideways (the page does not scroll horizontally) and
    // every filter stays on screen.
    client.set_window_size(420, 900).await.unwrap();
    client.goto(&format!("{}/?q=a+red+circle", server.base())).await.unwrap();
    until(&client, "results at 420 px", "document.querySelector('#results .result')").await;
    until(&client, "a 420 px viewport", "window.innerWidth <= 420").await;
    let overflow = client
        .execute(
            "const w = document.documentElement.clientWidth;
             const out = [...document.querySelectorAll('body *')].filter(e => { const r = e.getBoundingClientRect(); return r.width > 0 && r.right > w + 0.5 && !e.closest('#results'); });
             return {scroll: document.documentElement.scrollWidth, width: w, out: out.map(e => e.tagName + '#' + e.id + '.' + e.className)};",
            vec![],
        )
        .await
        .unwrap();
    screenshot(&client, "5-narrow-420px").await;
    assert!(overflow["scroll"].as_u64() <= overflow["width"].as_u64(), "the page scrolls sideways at 420 px: {overflow}");
    assert_eq!(overflow["out"], json!([]), "elements past the right edge at 420 px: {overflow}");

    client.close().await.unwrap();
    drop(server);
}

/// The value of a promise the page computes, read back once it has settled (WebDriver scripts
/// return synchronously): `expression` is a promise, its result lands in `window[slot]`.
async fn settled(client: &Client, slot: &str, expression: &str) -> Value {
    client.execute(&format!("window.{slot} = undefined; Promise.resolve({expression}).then(v => window.{slot} = v, e => window.{slot} = String(e));"), vec![]).await.unwrap();
    until(client, slot, &format!("window.{slot} !== undefined && String(window.{slot})")).await;
    client.execute(&format!("return window.{slot};"), vec![]).await.unwrap()
}

/// A private library (a user exists, so anonymous callers get nothing even on loopback): the
/// browser is sent to the sign-in page, a wrong passphrase is refused there, the right one brings
/// it back to the search it asked for, the header names the user, a photo opens and its original
/// downloads with the session cookie alone; signing out returns to the sign-in page and the
/// photos are refused again.
#[tokio::test(flavor = "current_thread")]
#[allow(clippy::await_holding_lock)] // the guard serialises whole tests; one thread runs this one
async fn signing_in_searches_opens_a_photo_and_signing_out_returns_to_the_sign_in_page() {
    use std::io::Write;
    let _heavy = heavy();
    let lib = SceneLibrary::index(24, 7);
    let mut add = clipsight(&lib.data).args(["user", "add", "ada"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    add.stdin.take().unwrap().write_all(b"correct horse battery staple\n").unwrap();
    assert_success(&add.wait_with_output().unwrap());
    let server = Server::start(&lib.data, &[]);
    let driver = chromedriver();
    let client = browser(&driver).await;

    // Anonymous: the search page sends the browser to sign in, remembering the search.
    client.goto(&format!("{}/?q=a+red+circle", server.base())).await.unwrap();
    until(&client, "the sign-in page", "location.pathname === '/signin' && document.querySelector('#signin')").await;
    let next = client.execute("return new URLSearchParams(location.search).get('next');", vec![]).await.unwrap();
    assert_eq!(next, json!("/?q=a+red+circle"));
    let status = settled(&client, "anonymousSearch", "fetch('/api/search?q=red').then(r => r.status)").await;
    assert_eq!(status, json!(401), "no results without signing in");

    // A wrong passphrase: an error on the page, still signed out.
    client.find(Locator::Css("#user")).await.unwrap().send_keys("ada").await.unwrap();
    client.find(Locator::Css("#passphrase")).await.unwrap().send_keys("not the passphrase").await.unwrap();
    client.find(Locator::Css("#signin-submit")).await.unwrap().click().await.unwrap();
    let error = until(&client, "the sign-in error", "!document.querySelector('#signin-error').hidden && document.querySelector('#signin-error').textContent").await;
    assert!(error.as_str().unwrap().contains("wrong user or passphrase"), "{error}");
    assert_eq!(client.execute("return document.querySelector('#passphrase').value;", vec![]).await.unwrap(), json!(""), "the wrong passphrase is cleared");
    screenshot(&client, "6-sign-in-refused").await;

    // The right one: back to the search, results, the user's name and a sign-out button.
    client.find(Locator::Css("#passphrase")).await.unwrap().send_keys("correct horse battery staple").await.unwrap();
    client.find(Locator::Css("#signin-submit")).await.unwrap().click().await.unwrap();
    until(&client, "the search page again", "location.pathname === '/' && new URLSearchParams(location.search).get('q') === 'a red circle'").await;
    let first = first_result(&client).await;
    until(&client, "the signed-in user", "!document.querySelector('#account').hidden && document.querySelector('#account-name').textContent === 'ada'").await;
    let cookie = client.execute("return document.cookie;", vec![]).await.unwrap();
    assert_eq!(cookie, json!(""), "the session cookie is HttpOnly: scripts cannot read it");
    screenshot(&client, "7-signed-in").await;

    // A photo opens: its large view loads, and the original downloads with the cookie alone.
    client.find(Locator::Css("#results .result")).await.unwrap().click().await.unwrap();
    until(&client, "the photo", &format!("document.querySelector('#details').dataset.id === '{first}' && document.querySelector('#details-image').complete && document.querySelector('#details-image').naturalWidth > 0")).await;
    let original = settled(&client, "original", "fetch(document.querySelector('#details-original').href).then(r => r.status + ' ' + r.headers.get('content-type'))").await;
    assert!(original.as_str().unwrap().starts_with("200 image/"), "{original}");
    client.find(Locator::Css("#details-close")).await.unwrap().click().await.unwrap();

    // Sign out: back at the sign-in page, and the photos are refused again.
    client.find(Locator::Css("#sign-out")).await.unwrap().click().await.unwrap();
    until(&client, "the sign-in page after signing out", "location.pathname === '/signin' && document.querySelector('#signin')").await;
    screenshot(&client, "8-signed-out").await;
    let after = settled(&client, "afterSignOut", &format!("fetch('/api/images/{first}/file').then(r => r.status)")).await;
    assert_eq!(after, json!(401), "the photo is refused once signed out");
    client.goto(server.base()).await.unwrap();
    until(&client, "the sign-in page for the search page", "location.pathname === '/signin'").await;

    client.close().await.unwrap();
    drop(server);
}

/// A HEIC photo, which Chromium cannot display: the large view falls back to the server's JPEG
/// preview of it, upright (200x300). It is a Live Photo: its motion (a MOV named alike) is
/// listed with it and plays over the still, which comes back when the motion ends.
#[tokio::test(flavor = "current_thread")]
#[allow(clippy::await_holding_lock)] // the guard serialises whole tests; one thread runs this one
async fn a_photo_the_browser_cannot_show_opens_as_the_servers_preview() {
    let _heavy = heavy();
    let tmp = tempfile::tempdir().unwrap();
    let (src, photos, data) = (tmp.path().join("scenes"), tmp.path().join("photos"), tmp.path().join("data"));
    std::fs::create_dir_all(&src).unwrap();
    run_python(&["tests/reference/make_heif.py", src.to_str().unwrap(), photos.to_str().unwrap(), tmp.path().join("reference").to_str().unwrap()]);
    ffmpeg(&["-f", "lavfi", "-i", "color=c=blue:s=200x300:r=15", "-t", "2", "-c:v", "libx264", "-pix_fmt", "yuv420p", "-f", "mov", photos.join("turned.MOV").to_str().unwrap()]);
    json_of(clipsight(&data).args(["--json", "index"]).arg(&photos));
    let server = Server::start(&data, &[]);
    let (_, found) = server.json("GET", "/api/search?q=type:heic&k=1", None);
    let id = found["results"][0]["id"].as_u64().unwrap();
    let driver = chromedriver();
    let client = browser(&driver).await;
    client.goto(&format!("{}/?image={id}", server.base())).await.unwrap();
    let shown = until(
        &client,
        "the preview in the large view",
        "(() => { const i = document.querySelector('#details-image'); return i && i.complete && i.naturalWidth > 0 && i.currentSrc.endsWith('/preview') && [i.naturalWidth, i.naturalHeight]; })()",
    )
    .await;
    assert_eq!(shown, json!([200, 300]));
    screenshot(&client, "9-heic-preview").await;
    let listed = until(&client, "the Live Photo's motion listed", "document.querySelector('#details-companions .companion')?.textContent").await;
    assert!(listed.as_str().unwrap().contains("turned.MOV"), "{listed}");
    client.find(Locator::Css("#details-companions .companion-play")).await.unwrap().click().await.unwrap();
    until(
        &client,
        "the motion playing over the still",
        "(() => { const v = document.querySelector('#details-video'); return !v.hidden && !v.paused && v.readyState >= 2 && v.currentTime > 0 && document.querySelector('#details-image').hidden; })()",
    )
    .await;
    screenshot(&client, "9b-live-photo-playing").await;
    until(&client, "the still back when the motion ends", "(() => { const i = document.querySelector('#details-image'); return document.querySelector('#details-video').hidden && !i.hidden && i.complete && i.naturalWidth > 0; })()").await;
    client.close().await.unwrap();
    drop(server);
}


/// A video found by text plays from its best moment: the grid shows that moment's frame with
/// its time, the large view plays the video from inside the window where the red circle is
/// (12–15 s), and a moment button seeks.
#[tokio::test(flavor = "current_thread")]
#[allow(clippy::await_holding_lock)] // the guard serialises whole tests; one thread runs this one
async fn a_video_found_by_text_plays_from_its_moment() {
    let _heavy = heavy();
    let tmp = tempfile::tempdir().unwrap();
    let (scenes_dir, media, data) = (tmp.path().join("scenes"), tmp.path().join("media"), tmp.path().join("data"));
    scenes(&scenes_dir, 80, 777);
    run_python(&["tests/reference/make_videos.py", scenes_dir.to_str().unwrap(), media.to_str().unwrap()]);
    json_of(clipsight(&data).args(["--json", "index"]).arg(&media));
    let server = Server::start(&data, &[]);
    let driver = chromedriver();
    let client = browser(&driver).await;
    client.goto(&format!("{}/?q=a%20red%20circle%20type:mp4", server.base())).await.unwrap();
    let badge = until(&client, "a video tile with its moment", "document.querySelector('#results .result .video-badge')?.textContent").await;
    assert!(badge.as_str().unwrap().starts_with("▶ 0:1"), "the badge shows the moment: {badge}");
    let frame = until(&client, "the moment's frame in the tile", "(() => { const i = document.querySelector('#results .result img'); return i.complete && i.naturalWidth > 0 && i.currentSrc; })()").await;
    assert!(frame.as_str().unwrap().contains("/preview?t=1"), "{frame}");
    screenshot(&client, "10-video-results").await;
    client.find(Locator::Css("#results .result")).await.unwrap().click().await.unwrap();
    let playing = until(
        &client,
        "the video playing from its moment",
        "(() => { const v = document.querySelector('#details-video'); return v && !v.hidden && !v.paused && v.readyState >= 2 && v.currentTime >= 12 && v.currentTime < 15 && v.currentTime; })()",
    )
    .await;
    tokio::time::sleep(Duration::from_millis(1200)).await;
    let later = client.execute("return document.querySelector('#details-video').currentTime;", vec![]).await.unwrap();
    assert!(later.as_f64().unwrap() > playing.as_f64().unwrap(), "it plays on: {playing} → {later}");
    screenshot(&client, "11-video-playing").await;
    // A moment button seeks there.
    let seek_to = until(&client, "moment buttons", "document.querySelector('#details-moments .moment')?.textContent").await;
    assert!(seek_to.as_str().unwrap().starts_with("0:1"), "{seek_to}");
    client.execute("document.querySelector('#details-video').currentTime = 25;", vec![]).await.unwrap();
    client.find(Locator::Css("#details-moments .moment")).await.unwrap().click().await.unwrap();
    until(&client, "back at the moment", "(() => { const t = document.querySelector('#details-video').currentTime; return t >= 12 && t < 15.5; })()").await;
    client.close().await.unwrap();
    drop(server);
}

/// A Chinese query typed in the search box, against a library indexed with the multilingual
/// model: the first tile is a red circle, the engine's best match.
#[tokio::test(flavor = "current_thread")]
#[allow(clippy::await_holding_lock)] // the guard serialises whole tests; one thread runs this one
async fn a_chinese_query_finds_red_circles_first() {
    let _heavy = heavy();
    let lib = scene_library();
    let server = Server::start_with(multilingual_library(), &multilingual_model(), &[]);
    let (_, best) = server.json("GET", &format!("/api/search?q={}&k=1", urlencode("红色的圆")), None);
    let file = best["results"][0]["path"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
    assert!(lib.singles("red", "circle").contains(&file), "best match {:?}", lib.caption_of(&file));
    let id = best["results"][0]["id"].as_u64().unwrap();
    let driver = chromedriver();
    let client = browser(&driver).await;
    client.goto(server.base()).await.unwrap();
    let q = client.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("#q")).await.unwrap();
    q.send_keys("红色的圆").await.unwrap();
    until(&client, "the URL to hold the query", "new URLSearchParams(location.search).get('q') === '红色的圆'").await;
    until(&client, "the red circle first", &format!("document.querySelector('#results .result')?.dataset.id === '{id}'")).await;
    screenshot(&client, "12-chinese-query").await;
    client.close().await.unwrap();
    drop(server);
}

/// A Chinese browser against an NLLB-CLIP library: the UI sends the browser's language with the
/// query, and the model reads its FLORES-200 code.
#[tokio::test]
#[allow(clippy::await_holding_lock)] // the guard serialises whole tests; one thread runs this one
async fn an_nllb_model_reads_the_browsers_language() {
    let _heavy = heavy();
    let lib = scene_library();
    let server = Server::start_with(scene_library_with(&nllb_model()), &nllb_model(), &[]);
    let (_, best) = server.json("GET", &format!("/api/search?q={}&k=1&lang=zh-CN", urlencode("红色的圆")), None);
    let file = best["results"][0]["path"].as_str().unwrap().rsplit('/').next().unwrap().to_string();
    assert!(lib.singles("red", "circle").contains(&file), "best match {:?}", lib.caption_of(&file));
    let id = best["results"][0]["id"].as_u64().unwrap();
    let driver = chromedriver();
    let client = browser_in(&driver, "zh-CN").await;
    client.goto(server.base()).await.unwrap();
    assert_eq!(client.execute("return navigator.language;", vec![]).await.unwrap(), json!("zh-CN"), "precondition: a Chinese browser");
    let q = client.wait().at_most(Duration::from_secs(20)).for_element(Locator::Css("#q")).await.unwrap();
    q.send_keys("红色的圆").await.unwrap();
    until(&client, "a search sent with the browser's language", "performance.getEntriesByType('resource').some(e => e.name.includes('/api/search?') && e.name.includes('lang=zh-CN') && e.name.includes('q=%E7%BA%A2'))").await;
    until(&client, "the red circle first", &format!("document.querySelector('#results .result')?.dataset.id === '{id}'")).await;
    screenshot(&client, "13-nllb-chinese-browser").await;
    client.close().await.unwrap();
    drop(server);
}

/// The relevance cutoff and the date order in the grid: the status line counts the relevant
/// photos, a divider sits right after them, and the order menu sorts them by date, kept in the
/// URL across a reload.
#[tokio::test(flavor = "current_thread")]
#[allow(clippy::await_holding_lock)] // the guard serialises whole tests; one thread runs this one
async fn the_grid_divides_relevant_photos_from_the_rest_and_sorts_them_by_date() {
    let _heavy = heavy();
    let tmp = tempfile::tempdir().unwrap();
    let (photos, _, _) = dated_library(tmp.path());
    let data = tmp.path().join("data");
    assert_eq!(json_of(clipsight(&data).args(["--json", "index"]).arg(&photos))["indexed"], 61);
    let server = Server::start(&data, &[]);
    let ids = |v: &Value| v["results"].as_array().unwrap().iter().filter(|h| h["relevant"] == true).map(|h| h["id"].as_u64().unwrap().to_string()).collect::<Vec<_>>();
    let (_, by_score) = server.json("GET", "/api/search?q=red&mode=vector&k=60", None);
    let (_, oldest) = server.json("GET", "/api/search?q=red&mode=vector&k=60&sort=date&order=oldest", None);
    let relevant = by_score["relevant_count"].as_u64().unwrap();
    assert!((2..60).contains(&relevant), "precondition: some red scenes, fewer than a page ({relevant})");

    let driver = chromedriver();
    let client = browser(&driver).await;
    client.goto(&format!("{}/?q=red&mode=vector", server.base())).await.unwrap();
    let status = until(&client, "the relevant count", "document.querySelector('#status').textContent.includes('relevant') && document.querySelector('#status').textContent").await;
    assert!(status.as_str().unwrap().starts_with(&format!("{relevant} relevant")), "{status}");
    let tiles_before_divider = "[...document.querySelectorAll('#results > *')].slice(0, [...document.querySelectorAll('#results > *')].findIndex(e => e.classList.contains('relevance-divider'))).map(e => e.dataset.id)";
    let shown = until(&client, "the divider", &format!("document.querySelector('#results .relevance-divider') && {tiles_before_divider}")).await;
    assert_eq!(shown, json!(ids(&by_score)), "the relevant photos, best first, then the divider");
    screenshot(&client, "14-relevance-divider").await;

    // Oldest first: the URL says so, the relevant photos come by date, and a reload keeps it.
    let menu = client.find(Locator::Css("#sort")).await.unwrap();
    menu.select_by_value("oldest").await.unwrap();
    until(&client, "the order in the URL", "new URLSearchParams(location.search).get('sort') === 'date' && new URLSearchParams(location.search).get('order') === 'oldest'").await;
    let expected = json!(ids(&oldest));
    until(&client, "the relevant photos by date", &format!("JSON.stringify({tiles_before_divider}) === '{expected}'")).await;
    client.refresh().await.unwrap();
    until(&client, "the order menu after a reload", "document.querySelector('#sort')?.value === 'oldest'").await;
    until(&client, "the same order after a reload", &format!("document.querySelector('#results .relevance-divider') && JSON.stringify({tiles_before_divider}) === '{expected}'")).await;
    screenshot(&client, "15-relevant-oldest-first").await;
    client.close().await.unwrap();
    drop(server);
}
