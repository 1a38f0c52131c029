//! The web UI in headless Chromium (Debian's chromium + chromedriver, installed by
//! scripts/setup.sh --browser), driven over WebDriver: search as you type, upload for similar
//! images, the large view, the back button, and a phone-width viewport. Screenshots are saved under
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
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({"binary": "/usr/bin/chromium", "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"]}),
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
    client.goto(&server.base()).await.unwrap();
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
