//! The OpenAPI document: generated from the same registration the server uses, then made exact
//! about what every route shares (the extractors' 4xx answers, security as configured), so it
//! cannot drift from the routes. It also answers which methods a path allows (405 + `Allow`).

use actix_web::http::{header, StatusCode};
use actix_web::{App, HttpResponse, ResponseError};
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::security::{ApiKey, ApiKeyValue, HttpAuthScheme, HttpBuilder, SecurityRequirement, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Response};
use utoipa_actix_web::{scope, AppExt};

use super::auth;
use super::error::ApiError;
use crate::auth::Anonymous;
use super::routes;

/// The document for each way a server may treat anonymous callers (which can change while it
/// runs, as users and tokens are added or removed): built once, picked per request.
pub struct Documents {
    everything: OpenApi,
    read: OpenApi,
    nothing: OpenApi,
}

impl Documents {
    /// The three documents.
    pub fn new() -> Self {
        Self { everything: document(Anonymous::Everything), read: document(Anonymous::Read), nothing: document(Anonymous::Nothing) }
    }

    /// The document of a server whose anonymous callers may do `anonymous`.
    pub fn get(&self, anonymous: Anonymous) -> &OpenApi {
        match anonymous {
            Anonymous::Everything => &self.everything,
            Anonymous::Read => &self.read,
            Anonymous::Nothing => &self.nothing,
        }
    }
}

impl Default for Documents {
    fn default() -> Self {
        Self::new()
    }
}

/// The document of every `/api` route for a server whose anonymous callers may do `anonymous`.
/// A route's own `security` marks it as a write route; this declares, per access, which routes
/// need credentials (bearer or session cookie) and their 401/403 answers.
pub fn document(anonymous: Anonymous) -> OpenApi {
    let (_, mut doc) = App::new().into_utoipa_app().service(scope("/api").configure(routes::api)).split_for_parts();
    doc.info.title = "clipsight".into();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc.info.description = Some(
        "Cross-modal image/text search over a photo library (CLIP). Errors are {\"error\":{\"code\",\"message\"}}. \
         A method a path does not define is answered 405 with an Allow header. \
         Authentication: a bearer token (`clipsight token add`, `--token`) or the session cookie of a sign-in (POST /api/session)."
            .into(),
    );
    let mut protected_any = false;
    for (path, item) in doc.paths.paths.iter_mut() {
        for (method, operation) in operations_mut(item) {
            document_extractor_errors(operation);
            let writes = operation.security.take().is_some();
            let public = auth::PUBLIC_OPERATIONS.contains(&(method, path.as_str()));
            let protected = !public
                && match anonymous {
                    Anonymous::Everything => false,
                    Anonymous::Read => writes,
                    Anonymous::Nothing => true,
                };
            if protected {
                protected_any = true;
                operation.security = Some(vec![SecurityRequirement::new("bearer", Vec::<String>::new()), SecurityRequirement::new("session", Vec::<String>::new())]);
                add_error(operation, "401", "No credentials, or a session that has ended (`unauthorized`)");
                let forbidden = if writes { "A wrong token, read-only credentials, or a cross-site request" } else { "A wrong token, or a cross-site request" };
                add_error(operation, "403", forbidden);
            } else if writes {
                // Nothing is checked: say so rather than promise a 401.
                operation.responses.responses.retain(|status, _| status != "401" && status != "403");
            }
            if anonymous == Anonymous::Everything && !public {
                add_error(operation, "403", "A request that did not come from this machine (`local_only`): this server has no users or tokens");
            }
        }
    }
    if protected_any {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
        components.add_security_scheme("session", SecurityScheme::ApiKey(ApiKey::Cookie(ApiKeyValue::new(auth::COOKIE))));
    }
    doc
}

/// The methods `doc` defines for a concrete request path (`/api/images/7` matches
/// `/api/images/{id}`), upper-case; empty when no path matches.
pub fn allowed_methods(doc: &OpenApi, path: &str) -> Vec<&'static str> {
    let segments: Vec<&str> = path.split('/').collect();
    let mut methods = Vec::new();
    for (template, item) in &doc.paths.paths {
        let pattern: Vec<&str> = template.split('/').collect();
        let matches = pattern.len() == segments.len()
            && pattern.iter().zip(&segments).all(|(p, s)| p == s || (p.starts_with('{') && p.ends_with('}') && !s.is_empty()));
        if matches {
            methods.extend(operations(item).map(|(method, _)| method));
        }
    }
    methods
}

/// Answers a request no route took: 405 with `Allow` when the document defines its path with
/// other methods, else 404.
pub fn unrouted(doc: &OpenApi, method: &actix_web::http::Method, path: &str) -> HttpResponse {
    let allowed = allowed_methods(doc, path).join(", ");
    if allowed.is_empty() {
        return ApiError::new(StatusCode::NOT_FOUND, "no_route", format!("no route for {method} {path}")).error_response();
    }
    let message = format!("{method} is not allowed on {path}; use {allowed}");
    let mut response = ApiError::new(StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed", message).error_response();
    response.headers_mut().insert(header::ALLOW, header::HeaderValue::from_str(&allowed).expect("method names are header-safe"));
    response
}

/// Every operation of a path item, with its method.
pub(crate) fn operations(item: &PathItem) -> impl Iterator<Item = (&'static str, &Operation)> {
    [
        ("GET", &item.get),
        ("PUT", &item.put),
        ("POST", &item.post),
        ("DELETE", &item.delete),
        ("OPTIONS", &item.options),
        ("HEAD", &item.head),
        ("PATCH", &item.patch),
        ("TRACE", &item.trace),
    ]
    .into_iter()
    .filter_map(|(method, op)| op.as_ref().map(|op| (method, op)))
}

/// Every operation of a path item, with its method, to amend.
fn operations_mut(item: &mut PathItem) -> impl Iterator<Item = (&'static str, &mut Operation)> {
    [
        ("GET", &mut item.get),
        ("PUT", &mut item.put),
        ("POST", &mut item.post),
        ("DELETE", &mut item.delete),
        ("OPTIONS", &mut item.options),
        ("HEAD", &mut item.head),
        ("PATCH", &mut item.patch),
        ("TRACE", &mut item.trace),
    ]
    .into_iter()
    .filter_map(|(method, op)| op.as_mut().map(|op| (method, op)))
}

/// Adds the answers the server's extractors give before a handler runs (see `serve`'s
/// `PathConfig`, `QueryConfig` and `JsonConfig`), where the route does not already list them.
fn document_extractor_errors(operation: &mut Operation) {
    let params = operation.parameters.as_deref().unwrap_or_default();
    let has = |place: ParameterIn| params.iter().any(|p| p.parameter_in == place);
    let mut bad_request = Vec::new();
    if has(ParameterIn::Path) {
        bad_request.push("a path parameter is not a non-negative integer (`bad_path`)");
    }
    if has(ParameterIn::Query) {
        bad_request.push("a query parameter is malformed or out of range (`bad_parameter`)");
    }
    let json_body = operation.request_body.as_ref().is_some_and(|b| b.content.contains_key("application/json"));
    if json_body {
        bad_request.push("the body is not JSON of the documented shape (`bad_json`)");
    }
    if !bad_request.is_empty() {
        add_error(operation, "400", &format!("Bad request: {}", bad_request.join("; ")));
    }
    if json_body {
        add_error(operation, "413", "The JSON body is larger than 1 MiB");
        add_error(operation, "415", "The body is not `application/json`");
    }
}

fn add_error(operation: &mut Operation, status: &str, description: &str) {
    let error = Response::builder().description(description).content("application/json", Content::new(Some(Ref::from_schema_name("ErrorBody")))).build();
    operation.responses.responses.entry(status.to_string()).or_insert(RefOr::T(error));
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn concrete_paths_match_templates_segment_by_segment() {
        let doc = document(Anonymous::Nothing);
        assert_eq!(allowed_methods(&doc, "/api/images/7"), ["GET"]);
        assert_eq!(allowed_methods(&doc, "/api/search"), ["GET", "POST"]);
        assert!(allowed_methods(&doc, "/api/images/7/nope").is_empty());
        assert!(allowed_methods(&doc, "/api/images/").is_empty(), "an empty id is no id");
        assert!(allowed_methods(&doc, "/api/search/").is_empty(), "a trailing slash is another path (404)");
    }

    #[test]
    fn security_is_declared_where_it_is_enforced() {
        let op = |doc: &OpenApi, path: &str, method: &str| operations(&doc.paths.paths[path]).find(|(m, _)| *m == method).unwrap().1.clone();
        let needs = |doc: &OpenApi, path: &str, method: &str| {
            let o = op(doc, path, method);
            if !auth::PUBLIC_OPERATIONS.contains(&(method, path)) {
                assert_eq!(o.security.is_some(), o.responses.responses.contains_key("401"), "{method} {path}");
            }
            o.security.is_some()
        };
        let open = document(Anonymous::Everything);
        assert!(!needs(&open, "/api/index", "POST") && !needs(&open, "/api/search", "GET"));
        assert!(op(&open, "/api/images/{id}/file", "GET").responses.responses.contains_key("403"), "a 403 that is not about credentials stays");
        let public = document(Anonymous::Read);
        assert!(needs(&public, "/api/index", "POST") && !needs(&public, "/api/search", "GET"));
        let private = document(Anonymous::Nothing);
        for (path, item) in &private.paths.paths {
            for (method, _) in operations(item) {
                assert_eq!(needs(&private, path, method), !auth::PUBLIC_OPERATIONS.contains(&(method, path.as_str())), "{method} {path}");
            }
        }
        let schemes = &private.components.as_ref().unwrap().security_schemes;
        assert!(schemes.contains_key("bearer") && schemes.contains_key("session"));
    }

    #[test]
    fn every_route_with_an_id_documents_the_400_of_a_bad_one() {
        let doc = document(Anonymous::Nothing);
        for (path, item) in &doc.paths.paths {
            for (method, op) in operations(item) {
                if path.contains('{') {
                    assert!(op.responses.responses.contains_key("400"), "{method} {path}");
                }
            }
        }
    }
}
