//! The README's internet deployment, for real: the sample site config
//! (`scripts/deploy/nginx-clipsight.conf`) in Debian's nginx over TLS (a self-signed certificate
//! made with openssl, which curl is told to trust) in front of a `clipsight serve` on loopback.
//! Only the listen ports, the upstream port and the certificate paths of the sample are replaced.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::common::*;

const SAMPLE: &str = "scripts/deploy/nginx-clipsight.conf";
const PASSPHRASE: &str = "correct horse battery staple";

/// nginx in the foreground (`daemon off`) on two free loopback ports, stopped on drop.
struct Nginx {
    child: Child,
    dir: PathBuf,
    cert: PathBuf,
    http: u16,
    https: u16,
}

impl Drop for Nginx {
    fn drop(&mut self) {
        signal(self.child.id(), "TERM");
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

/// `text` with each `(from, to)` replaced; each `from` must occur in it exactly once, so that
/// this test notices when the sample changes shape.
fn replaced(text: &str, edits: &[(&str, &str)]) -> String {
    edits.iter().fold(text.to_string(), |text, (from, to)| {
        assert_eq!(text.matches(from).count(), 1, "{SAMPLE} should hold {from:?} once");
        text.replace(from, to)
    })
}

impl Nginx {
    /// A self-signed certificate for 127.0.0.1, the sample site proxying to `upstream`
    /// (`127.0.0.1:PORT`), and nginx serving it from `dir`.
    fn start(dir: &Path, upstream: &str) -> Nginx {
        let nginx = Path::new("/usr/sbin/nginx");
        assert!(nginx.exists(), "nginx not found: the proxy test needs Debian's nginx, openssl and curl (scripts/setup.sh --browser, which scripts/test.sh runs)");
        // nginx's workers run as `nobody` when the tests run as root: they must reach the
        // temporary files under `dir`.
        std::fs::set_permissions(dir, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
        let (cert, key) = (dir.join("cert.pem"), dir.join("key.pem"));
        let out = Command::new("openssl")
            .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2", "-subj", "/CN=127.0.0.1"])
            .args(["-addext", "subjectAltName=IP:127.0.0.1", "-keyout"])
            .arg(&key)
            .arg("-out")
            .arg(&cert)
            .output()
            .expect("openssl runs");
        assert_success(&out);
        let (http, https) = (free_port(), free_port());
        let sample = std::fs::read_to_string(root().join(SAMPLE)).unwrap();
        let site = replaced(
            &sample,
            &[
                ("server 127.0.0.1:8080;", &format!("server {upstream};")),
                ("listen 80;", &format!("listen 127.0.0.1:{http};")),
                ("listen 443 ssl http2;", &format!("listen 127.0.0.1:{https} ssl http2;")),
                ("/etc/letsencrypt/live/photos.example.org/fullchain.pem", cert.to_str().unwrap()),
                ("/etc/letsencrypt/live/photos.example.org/privkey.pem", key.to_str().unwrap()),
            ],
        );
        std::fs::write(dir.join("site.conf"), site).unwrap();
        // What Debian's /etc/nginx/nginx.conf provides around a site, kept inside `dir`.
        let main = format!(
            "daemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{ worker_connections 64; }}\n\
             http {{\n  access_log {d}/access.log;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  \
             fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  include {d}/site.conf;\n}}\n",
            d = dir.display()
        );
        std::fs::write(dir.join("nginx.conf"), main).unwrap();
        let child = Command::new(nginx)
            .arg("-p")
            .arg(dir)
            .arg("-e")
            .arg(dir.join("error.log"))
            .arg("-c")
            .arg(dir.join("nginx.conf"))
            .stdout(Stdio::null())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("nginx starts");
        let proxy = Nginx { child, dir: dir.to_path_buf(), cert, http, https };
        let deadline = Instant::now() + Duration::from_secs(20);
        while std::net::TcpStream::connect(("127.0.0.1", https)).is_err() {
            assert!(Instant::now() < deadline, "nginx did not listen: {}", std::fs::read_to_string(dir.join("error.log")).unwrap_or_default());
            std::thread::sleep(Duration::from_millis(50));
        }
        proxy
    }

    /// The address a browser would use.
    fn origin(&self) -> String {
        format!("https://127.0.0.1:{}", self.https)
    }

    /// One request with curl (trusting only the test certificate); `args` are curl's.
    fn curl(&self, url: &str, args: &[&str]) -> Reply {
        let (headers, body) = (self.dir.join("reply.headers"), self.dir.join("reply.body"));
        let out = Command::new("curl")
            .args(["-sS", "--max-time", "60", "--cacert"])
            .arg(&self.cert)
            .arg("-D")
            .arg(&headers)
            .arg("-o")
            .arg(&body)
            .args(args)
            .arg(url)
            .output()
            .expect("curl runs");
        assert_success(&out);
        let headers = std::fs::read_to_string(&headers).unwrap();
        let mut lines = headers.lines();
        let status = lines.next().and_then(|l| l.split_whitespace().nth(1)).and_then(|s| s.parse().ok()).expect("a status line");
        let headers = lines.filter_map(|l| l.split_once(':')).map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_string())).collect();
        Reply { status, headers, body: std::fs::read(&body).unwrap() }
    }

    /// `path` on the HTTPS side.
    fn get(&self, path: &str, args: &[&str]) -> Reply {
        self.curl(&format!("{}{path}", self.origin()), args)
    }

    /// `POST /api/session` with a JSON sign-in and extra curl `args`.
    fn sign_in(&self, passphrase: &str, args: &[&str]) -> Reply {
        let body = serde_json::json!({"user": "ada", "passphrase": passphrase}).to_string();
        let mut all = vec!["-X", "POST", "-H", "Content-Type: application/json", "--data-binary", &body];
        all.extend_from_slice(args);
        self.get("/api/session", &all)
    }
}

/// What curl received.
struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: Vec<u8>,
}

impl Reply {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }

    /// The JSON error code of an error reply.
    fn code(&self) -> String {
        let v: serde_json::Value = serde_json::from_slice(&self.body).unwrap_or_else(|_| panic!("{} is not JSON: {}", self.status, String::from_utf8_lossy(&self.body)));
        v["error"]["code"].as_str().unwrap_or_default().to_string()
    }
}

/// `clipsight user add ada` with [`PASSPHRASE`] on stdin.
fn add_user(data: &Path) {
    use std::io::Write;
    let mut add = clipsight(data).args(["user", "add", "ada"]).stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
    add.stdin.take().unwrap().write_all(format!("{PASSPHRASE}\n").as_bytes()).unwrap();
    assert_success(&add.wait_with_output().unwrap());
}

#[test]
fn behind_the_sample_nginx_site_over_tls_only_a_signed_in_client_sees_photos() {
    let lib = SceneLibrary::index(8, 21);
    let server = Server::start(&lib.data, &[]);
    let tmp = tempfile::tempdir().unwrap();
    let proxy = Nginx::start(tmp.path(), server.base().trim_start_matches("http://"));

    // No user yet: the server is open to this machine only, and a proxied request is not that.
    let open = proxy.get("/api/search?q=red", &[]);
    assert_eq!((open.status, open.code().as_str()), (403, "local_only"));
    assert_eq!(proxy.get("/api/health", &[]).status, 200, "health stays public");

    // A user: the running server re-reads its credentials, and anonymous callers get nothing.
    add_user(&lib.data);
    let anonymous = proxy.get("/api/search?q=red", &[]);
    assert_eq!((anonymous.status, anonymous.code().as_str()), (401, "unauthorized"));
    let page = proxy.get("/?q=red", &[]);
    assert_eq!((page.status, page.header("location")), (303, Some("/signin?next=%2F%3Fq%3Dred")));
    assert_eq!(proxy.get("/signin", &[]).status, 200);
    let plain = proxy.curl(&format!("http://127.0.0.1:{}/?q=red", proxy.http), &[]);
    assert_eq!((plain.status, plain.header("location")), (301, Some("https://127.0.0.1/?q=red")), "plain HTTP only redirects");

    // Signing in from another site is refused, even with a made-up forwarded host.
    let evil = proxy.sign_in(PASSPHRASE, &["-H", "Origin: https://evil.example"]);
    assert_eq!((evil.status, evil.code().as_str()), (403, "cross_site"));
    let spoofed = proxy.sign_in(PASSPHRASE, &["-H", "Origin: https://evil.example", "-H", "X-Forwarded-Host: evil.example"]);
    assert_eq!((spoofed.status, spoofed.code().as_str()), (403, "cross_site"), "the proxy replaces X-Forwarded-Host");
    let own = format!("Origin: {}", proxy.origin());
    let wrong = proxy.sign_in("not the passphrase", &["-H", &own]);
    assert_eq!((wrong.status, wrong.code().as_str()), (401, "wrong_credentials"));

    // From the server's own origin: a Secure (TLS at the proxy), HttpOnly, strict cookie.
    let signed_in = proxy.sign_in(PASSPHRASE, &["-H", &own]);
    assert_eq!(signed_in.status, 200, "{}", String::from_utf8_lossy(&signed_in.body));
    let set_cookie = signed_in.header("set-cookie").expect("a session cookie");
    for attribute in ["Secure", "HttpOnly", "SameSite=Strict", "Path=/"] {
        assert!(set_cookie.split(';').any(|a| a.trim() == attribute), "{attribute} in {set_cookie}");
    }
    let cookie = format!("Cookie: {}", set_cookie.split(';').next().unwrap());

    // Signed in: results, an original byte for byte, and an upload over nginx's default 1 MB limit.
    let found = proxy.get("/api/search?q=a+red+circle&k=3", &["-H", &cookie]);
    assert_eq!(found.status, 200);
    let found: serde_json::Value = serde_json::from_slice(&found.body).unwrap();
    let best = &found["results"][0];
    let original = proxy.get(&format!("/api/images/{}/file", best["id"]), &["-H", &cookie]);
    assert_eq!(original.status, 200);
    assert!(original.header("content-type").unwrap().starts_with("image/"));
    assert_eq!(original.body, std::fs::read(best["path"].as_str().unwrap()).unwrap(), "the original, unchanged");
    let large = tmp.path().join("noise.png");
    run_python(&["-c", "import os, sys; from PIL import Image; Image.frombytes('RGB', (800, 800), os.urandom(800 * 800 * 3)).save(sys.argv[1])", large.to_str().unwrap()]);
    assert!(std::fs::metadata(&large).unwrap().len() > 1 << 20, "precondition: the upload is over 1 MB");
    let upload = proxy.get("/api/search/image?k=2", &["-H", &cookie, "-F", &format!("image=@{}", large.display())]);
    assert_eq!(upload.status, 200, "{}", String::from_utf8_lossy(&upload.body));

    // The sign-in lockout counts the client nginx saw: a made-up X-Forwarded-For does not dodge it.
    let statuses: Vec<u16> = (0..6).map(|i| proxy.sign_in("guess", &["-H", &own, "-H", &format!("X-Forwarded-For: 10.0.0.{i}")]).status).collect();
    assert_eq!(statuses.last(), Some(&429), "locked out after repeated failures: {statuses:?}");
    let locked = proxy.sign_in(PASSPHRASE, &["-H", &own]);
    assert_eq!((locked.status, locked.code().as_str()), (429, "locked_out"));
    assert!(locked.header("retry-after").is_some());
    // The passphrase never reached nginx's log (it travels in the body, not the URL).
    assert!(!std::fs::read_to_string(tmp.path().join("access.log")).unwrap().contains("horse"));
}
