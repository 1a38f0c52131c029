//! Who may see what, in process: every route of the OpenAPI document (and the pages outside it)
//! × every kind of credential → the documented status; sign-in, sign-out, cookies, the
//! cross-site check, the loopback-only rule and the brute-force lockout.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use actix_web::dev::{Service, ServiceResponse};
use actix_web::http::Method;
use actix_web::test;

use super::*;
use crate::auth::{AccessSettings, Role};

const ALICE: (&str, &str) = ("alice", "correct horse battery");
const CLIENT: &str = "198.51.100.20:5555";

/// A library of two images, writable, with the credential file holding a write user, a read
/// user, a read token and a write token. Returns the temp dirs, the library and the tokens
/// (read, write).
fn library_with_credentials() -> (tempfile::TempDir, tempfile::TempDir, Arc<Library>, String, String) {
    let (photos, data, library) = crate::library::test_support::library_of_colours(&[("red.png", [220, 10, 10]), ("blue.png", [10, 10, 220])], true);
    let file = CredentialFile::of_library(data.path());
    file.add_user(ALICE.0, ALICE.1, Role::Write).unwrap();
    file.add_user("reader", "just looking around", Role::Read).unwrap();
    let read = file.add_token("ro", Role::Read).unwrap();
    let write = file.add_token("rw", Role::Write).unwrap();
    (photos, data, Arc::new(library), read, write)
}

fn access(library: &Library, settings: AccessSettings, loopback: bool) -> AccessControl {
    AccessControl::open(Some(CredentialFile::of_library(library.store().dir())), settings, loopback).unwrap()
}

fn options() -> ServeOptions {
    ServeOptions { bind: "127.0.0.1:0".parse().unwrap(), access: AccessSettings::default(), upload_limit: 1 << 20, watch: Vec::new(), workers: 1 }
}

fn request(method: &Method, uri: &str) -> test::TestRequest {
    let req = test::TestRequest::default().method(method.clone()).uri(uri).peer_addr(CLIENT.parse::<SocketAddr>().unwrap());
    if *method == Method::POST { req.insert_header(("content-type", "application/json")).set_payload("{}") } else { req }
}

async fn sign_in<S, B>(app: &S, user: (&str, &str), headers: &[(&str, &str)]) -> ServiceResponse<B>
where
    S: Service<actix_http::Request, Response = ServiceResponse<B>, Error = actix_web::Error>,
{
    let mut req = request(&Method::POST, "/api/session").set_json(serde_json::json!({"user": user.0, "passphrase": user.1}));
    for h in headers {
        req = req.insert_header(*h);
    }
    test::call_service(app, req.to_request()).await
}

/// The session cookie a response set (`name=value`).
fn cookie_of<B>(res: &ServiceResponse<B>) -> String {
    let set = res.headers().get("set-cookie").expect("a cookie is set").to_str().unwrap();
    set.split(';').next().unwrap().to_string()
}

#[actix_web::test]
async fn every_route_answers_each_kind_of_caller_as_documented() {
    let (_photos, _data, library, read_token, write_token) = library_with_credentials();
    let settings = AccessSettings { session_ttl: Duration::from_secs(3600), ..Default::default() };
    let server = test::init_service(app(&Shared::new(library.clone(), &options(), access(&library, settings, false)))).await;
    let short = AccessSettings { session_ttl: Duration::from_millis(300), ..Default::default() };
    let other = test::init_service(app(&Shared::new(library.clone(), &options(), access(&library, short, false)))).await;
    let expired = cookie_of(&sign_in(&other, ALICE, &[]).await);
    tokio::time::sleep(Duration::from_millis(400)).await;
    let res = test::call_service(&other, request(&Method::GET, "/api/stats").insert_header(("cookie", expired.as_str())).to_request()).await;
    assert_eq!(res.status().as_u16(), 401, "the cookie has expired on the server that issued it");
    let from_other_instance = cookie_of(&sign_in(&other, ALICE, &[]).await);

    let doc = openapi::document(Anonymous::Nothing);
    let mut routes: Vec<(Method, String)> = Vec::new();
    for (path, item) in &doc.paths.paths {
        for (method, _) in openapi::operations(item) {
            routes.push((method.parse().unwrap(), path.replace("{id}", "1")));
        }
    }
    for extra in ["/metrics", "/", "/index.html", "/app.js", "/signin", "/no-such-page", "/api/no-such-route"] {
        routes.push((Method::GET, extra.to_string()));
    }
    assert!(routes.len() >= 20, "{routes:?}");

    let bearer = |t: &str| format!("Bearer {t}");
    for (method, uri) in &routes {
        let public = auth::is_public(method, uri);
        let page = *method == Method::GET && (uri == "/" || uri == "/index.html");
        let writes = uri == "/api/index";
        let refused = |status: u16| matches!(status, 401 | 403 | 303);
        let anonymous_status = if page { 303 } else { 401 };
        let fresh = cookie_of(&sign_in(&server, ALICE, &[]).await);
        let cases: [Case; 7] = [
            ("no credentials", vec![], Some(anonymous_status)),
            ("a wrong token", vec![("authorization", bearer("cs_wrong"))], Some(403)),
            ("a read-only token", vec![("authorization", bearer(&read_token))], writes.then_some(403)),
            ("a write token", vec![("authorization", bearer(&write_token))], None),
            ("a valid cookie", vec![("cookie", fresh)], None),
            ("an expired cookie", vec![("cookie", expired.clone())], Some(anonymous_status)),
            ("another instance's cookie", vec![("cookie", from_other_instance.clone())], Some(anonymous_status)),
        ];
        for (what, headers, expected) in cases {
            let mut req = request(method, uri);
            for (k, v) in &headers {
                req = req.insert_header((*k, v.as_str()));
            }
            let res = test::call_service(&server, req.to_request()).await;
            let status = res.status().as_u16();
            match expected.filter(|_| !public) {
                Some(code) => assert_eq!(status, code, "{method} {uri} with {what}"),
                None => assert!(!refused(status), "{method} {uri} with {what} → {status}"),
            }
            if status == 303 {
                assert!(res.headers().get("location").unwrap().to_str().unwrap().starts_with("/signin?next="), "{method} {uri}");
            } else if !public && matches!(status, 401 | 403) {
                if status == 401 {
                    assert_eq!(res.headers().get("www-authenticate").map(|v| v.to_str().unwrap()), Some("Bearer realm=\"clipsight\""), "{method} {uri} with {what}");
                }
                let body: serde_json::Value = test::read_body_json(res).await;
                assert!(body["error"]["code"].is_string(), "{method} {uri} with {what}: {body}");
            }
        }
    }
}

/// A credential case of the route matrix: what is sent, the headers, the status expected
/// (`None`: admitted).
type Case = (&'static str, Vec<(&'static str, String)>, Option<u16>);

#[actix_web::test]
async fn a_sign_in_sets_a_strict_http_only_cookie_and_signing_out_ends_it() {
    let (_photos, _data, library, _, _) = library_with_credentials();
    let server = test::init_service(app(&Shared::new(library.clone(), &options(), access(&library, AccessSettings::default(), false)))).await;

    let wrong = sign_in(&server, (ALICE.0, "not the passphrase"), &[]).await;
    assert_eq!(wrong.status().as_u16(), 401);
    assert!(wrong.headers().get("set-cookie").is_none());

    let res = sign_in(&server, ALICE, &[]).await;
    assert_eq!(res.status().as_u16(), 200);
    let set = res.headers().get("set-cookie").unwrap().to_str().unwrap().to_string();
    for attribute in ["HttpOnly", "SameSite=Strict", "Path=/", "Max-Age=604800"] {
        assert!(set.contains(attribute), "{attribute} in {set}");
    }
    assert!(!set.contains("Secure"), "plain HTTP: no Secure flag ({set})");
    let cookie = cookie_of(&res);
    let me: serde_json::Value = test::read_body_json(res).await;
    assert_eq!((me["user"].as_str(), me["role"].as_str(), me["via"].as_str()), (Some("alice"), Some("write"), Some("session")), "{me}");
    assert!(me["expires_at"].as_u64().is_some());

    let behind_tls = sign_in(&server, ALICE, &[("x-forwarded-proto", "https")]).await;
    assert!(behind_tls.headers().get("set-cookie").unwrap().to_str().unwrap().contains("Secure"), "behind a TLS proxy the cookie is Secure");

    let me: serde_json::Value = test::call_and_read_body_json(&server, request(&Method::GET, "/api/session").insert_header(("cookie", cookie.as_str())).to_request()).await;
    assert_eq!(me["user"], "alice");
    let out = test::call_service(&server, request(&Method::DELETE, "/api/session").insert_header(("cookie", cookie.as_str())).to_request()).await;
    assert_eq!(out.status().as_u16(), 204);
    assert!(out.headers().get("set-cookie").unwrap().to_str().unwrap().contains("Max-Age=0"), "the cookie is removed");
    let after = test::call_service(&server, request(&Method::GET, "/api/stats").insert_header(("cookie", cookie.as_str())).to_request()).await;
    assert_eq!(after.status().as_u16(), 401, "a signed-out session is gone");
    let page = test::call_service(&server, request(&Method::GET, "/?q=red").insert_header(("cookie", cookie.as_str())).to_request()).await;
    assert_eq!(page.status().as_u16(), 303);
    assert_eq!(page.headers().get("location").unwrap().to_str().unwrap(), "/signin?next=%2F%3Fq%3Dred", "back to the same search after signing in");
}

#[actix_web::test]
async fn a_cross_site_request_cannot_use_the_session() {
    let (_photos, _data, library, _, _) = library_with_credentials();
    let server = test::init_service(app(&Shared::new(library.clone(), &options(), access(&library, AccessSettings::default(), false)))).await;
    let cookie = cookie_of(&sign_in(&server, ALICE, &[]).await);
    let post_index = |headers: Vec<(&'static str, &'static str)>| {
        let mut req = request(&Method::POST, "/api/index").insert_header(("cookie", cookie.clone()));
        for h in headers {
            req = req.insert_header(h);
        }
        req.to_request()
    };
    for (what, headers) in [
        ("Sec-Fetch-Site: cross-site", vec![("sec-fetch-site", "cross-site")]),
        ("Sec-Fetch-Site: same-site", vec![("sec-fetch-site", "same-site")]),
        ("a foreign Origin", vec![("origin", "http://evil.example")]),
        ("Origin: null", vec![("origin", "null")]),
    ] {
        let res = test::call_service(&server, post_index(headers)).await;
        assert_eq!(res.status().as_u16(), 403, "{what}");
        let body: serde_json::Value = test::read_body_json(res).await;
        assert_eq!(body["error"]["code"], "cross_site", "{what}: {body}");
    }
    let own = test::call_service(&server, post_index(vec![("sec-fetch-site", "same-origin"), ("origin", "http://localhost:8080")])).await;
    assert_eq!(own.status().as_u16(), 202, "the UI's own request starts the job");
    let own_origin = test::call_service(&server, post_index(vec![("origin", "http://localhost:8080"), ("host", "localhost:8080")])).await;
    assert_eq!(own_origin.status().as_u16(), 202, "an old browser's same-origin request");
    let forged = sign_in(&server, ALICE, &[("sec-fetch-site", "cross-site")]).await;
    assert_eq!(forged.status().as_u16(), 403, "no sign-in from another site's form");
    // A form on another site posting without the cookie (what SameSite=Strict makes of it).
    let bare = test::call_service(&server, request(&Method::POST, "/api/index").insert_header(("sec-fetch-site", "cross-site")).to_request()).await;
    assert_eq!(bare.status().as_u16(), 401);
}

#[actix_web::test]
async fn a_public_server_lets_anyone_read_and_only_writers_write() {
    let (_photos, _data, library, read_token, write_token) = library_with_credentials();
    let settings = AccessSettings { public: true, ..Default::default() };
    let server = test::init_service(app(&Shared::new(library.clone(), &options(), access(&library, settings, false)))).await;
    let status = |res: ServiceResponse<_>| res.status().as_u16();
    assert_eq!(status(test::call_service(&server, request(&Method::GET, "/api/search?q=&k=5").to_request()).await), 200);
    assert_eq!(status(test::call_service(&server, request(&Method::GET, "/").to_request()).await), 200);
    assert_eq!(status(test::call_service(&server, request(&Method::POST, "/api/index").to_request()).await), 401);
    let read = format!("Bearer {read_token}");
    assert_eq!(status(test::call_service(&server, request(&Method::POST, "/api/index").insert_header(("authorization", read.as_str())).to_request()).await), 403);
    let write = format!("Bearer {write_token}");
    assert_eq!(status(test::call_service(&server, request(&Method::POST, "/api/index").insert_header(("authorization", write.as_str())).to_request()).await), 202);
    let me: serde_json::Value = test::call_and_read_body_json(&server, request(&Method::GET, "/api/session").to_request()).await;
    assert_eq!((me["via"].as_str(), me["role"].as_str()), (Some("anonymous"), Some("read")), "{me}");
}

#[actix_web::test]
async fn without_credentials_a_loopback_server_answers_only_this_machine() {
    let (_photos, _data, library) = crate::library::test_support::library_of_colours(&[("red.png", [220, 10, 10])], true);
    let library = Arc::new(library);
    let server = test::init_service(app(&Shared::new(library.clone(), &options(), access(&library, AccessSettings::default(), true)))).await;
    let call = |headers: Vec<(&'static str, &'static str)>| {
        let mut req = test::TestRequest::get().uri("/api/stats").peer_addr("127.0.0.1:4000".parse().unwrap());
        for h in headers {
            req = req.insert_header(h);
        }
        req.to_request()
    };
    for host in ["127.0.0.1:8080", "localhost:8080", "[::1]:8080"] {
        assert_eq!(test::call_service(&server, call(vec![("host", host)])).await.status().as_u16(), 200, "{host}");
    }
    for (what, headers) in [
        ("a rebound domain", vec![("host", "evil.example:8080")]),
        ("a LAN address", vec![("host", "192.168.1.20:8080")]),
        ("a reverse proxy", vec![("host", "127.0.0.1:8080"), ("x-forwarded-for", "203.0.113.9")]),
    ] {
        let res = test::call_service(&server, call(headers)).await;
        assert_eq!(res.status().as_u16(), 403, "{what}");
        let body: serde_json::Value = test::read_body_json(res).await;
        assert_eq!(body["error"]["code"], "local_only", "{what}: {body}");
    }
    let index = test::call_service(&server, test::TestRequest::post().uri("/api/index").insert_header(("host", "127.0.0.1:8080")).to_request()).await;
    assert_eq!(index.status().as_u16(), 202, "as before: on loopback without credentials, everything is open");
}

#[actix_web::test]
async fn two_hundred_wrong_passphrases_are_slowed_and_locked_out_and_the_right_one_works_after() {
    let (_photos, _data, library, _, _) = library_with_credentials();
    let settings = AccessSettings { first_lockout: Duration::from_secs(1), ..Default::default() };
    let server = test::init_service(app(&Shared::new(library.clone(), &options(), access(&library, settings, false)))).await;
    let mut statuses = std::collections::BTreeMap::<u16, usize>::new();
    let mut retry_after = 0;
    let started = std::time::Instant::now();
    for i in 0..200 {
        let res = sign_in(&server, (ALICE.0, &format!("guess number {i}")), &[]).await;
        if let Some(wait) = res.headers().get("retry-after") {
            retry_after = wait.to_str().unwrap().parse::<u64>().unwrap();
        }
        *statuses.entry(res.status().as_u16()).or_default() += 1;
    }
    let took = started.elapsed();
    assert_eq!(statuses.get(&401), Some(&(crate::auth::FREE_ATTEMPTS as usize - 1)), "{statuses:?}");
    assert_eq!(statuses.values().sum::<usize>(), 200);
    assert!(statuses.get(&429).copied().unwrap_or(0) >= 190, "locked out: {statuses:?} in {took:?}");
    assert!(retry_after >= 1);
    let locked = sign_in(&server, ALICE, &[]).await;
    assert_eq!(locked.status().as_u16(), 429, "the right passphrase waits for the lock too");
    let wait: u64 = locked.headers().get("retry-after").unwrap().to_str().unwrap().parse().unwrap();
    let other_client = {
        let req = test::TestRequest::post().uri("/api/session").peer_addr("198.51.100.99:1".parse().unwrap()).set_json(serde_json::json!({"user": ALICE.0, "passphrase": ALICE.1}));
        test::call_service(&server, req.to_request()).await
    };
    assert_eq!(other_client.status().as_u16(), 200, "another client is not locked out");
    tokio::time::sleep(Duration::from_secs(wait) + Duration::from_millis(200)).await;
    let after = sign_in(&server, ALICE, &[]).await;
    assert_eq!(after.status().as_u16(), 200, "after the lock the right passphrase works");
}
