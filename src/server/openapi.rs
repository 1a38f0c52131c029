//! The OpenAPI document: generated from the same registration the server uses, then made exact
//! about what every route shares (the extractors' 4xx answers, security as configured), so it
//! cannot drift from the routes. It also answers which methods a path allows (405 + `Allow`).

use actix_web::http::{header, StatusCode};
use actix_web::{App, HttpResponse, ResponseError};
use utoipa::openapi::path::{Operation, ParameterIn, PathItem};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::{Content, OpenApi, Ref, RefOr, Response};
use utoipa_actix_web::{scope, AppExt};

use super::error::ApiError;
use super::routes;

/// The document of every `/api` route for a server that does (`token_required`) or does not
/// require a bearer token on its mutating routes.
pub fn document(token_required: bool) -> OpenApi {
    let (_, mut doc) = App::new().into_utoipa_app().service(scope("/api").configure(routes::api)).split_for_parts();
    doc.info.title = "clipsight".into();
    doc.info.version = env!("CARGO_PKG_VERSION").into();
    doc.info.description = Some(
        "Cross-modal image/text search over a photo library (CLIP). Errors are {\"error\":{\"code\",\"message\"}}. \
         A method a path does not define is answered 405 with an Allow header."
            .into(),
    );
    for operation in operations_mut(&mut doc.paths.paths) {
        document_extractor_errors(operation);
        if !token_required && operation.security.take().is_some() {
            // Without --token nothing is checked: say so rather than promise a 401.
            operation.responses.responses.retain(|status, _| status != "401" && status != "403");
        }
    }
    if token_required {
        let components = doc.components.get_or_insert_with(Default::default);
        components.add_security_scheme("bearer", SecurityScheme::Http(HttpBuilder::new().scheme(HttpAuthScheme::Bearer).build()));
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
fn operations(item: &PathItem) -> impl Iterator<Item = (&'static str, &Operation)> {
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

/// Every operation of every path, to amend.
fn operations_mut(paths: &mut std::collections::BTreeMap<String, PathItem>) -> impl Iterator<Item = &mut Operation> {
    paths.values_mut().flat_map(|item| {
        [&mut item.get, &mut item.put, &mut item.post, &mut item.delete, &mut item.options, &mut item.head, &mut item.patch, &mut item.trace]
            .into_iter()
            .flatten()
    })
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
        let doc = document(false);
        assert_eq!(allowed_methods(&doc, "/api/images/7"), ["GET"]);
        assert_eq!(allowed_methods(&doc, "/api/search"), ["GET", "POST"]);
        assert!(allowed_methods(&doc, "/api/images/7/nope").is_empty());
        assert!(allowed_methods(&doc, "/api/images/").is_empty(), "an empty id is no id");
        assert!(allowed_methods(&doc, "/api/search/").is_empty(), "a trailing slash is another path (404)");
    }

    #[test]
    fn security_is_declared_only_when_a_token_is_required() {
        let index = |doc: &OpenApi| doc.paths.paths["/api/index"].post.clone().unwrap();
        let open = document(false);
        assert!(index(&open).security.is_none() && !index(&open).responses.responses.contains_key("401"));
        let locked = document(true);
        assert!(index(&locked).security.is_some() && index(&locked).responses.responses.contains_key("401"));
        let file = open.paths.paths["/api/images/{id}/file"].get.clone().unwrap();
        assert!(file.responses.responses.contains_key("403"), "a 403 that is not about the token stays");
    }

    #[test]
    fn every_route_with_an_id_documents_the_400_of_a_bad_one() {
        let doc = document(false);
        for (path, item) in &doc.paths.paths {
            for (method, op) in operations(item) {
                if path.contains('{') {
                    assert!(op.responses.responses.contains_key("400"), "{method} {path}");
                }
            }
        }
    }
}
