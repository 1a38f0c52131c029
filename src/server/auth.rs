//! Bearer-token protection of mutating routes: an extractor that a handler takes to require it.

use std::future::{ready, Ready};

use actix_web::http::{header, StatusCode};
use actix_web::{web, FromRequest, HttpRequest};
use subtle::ConstantTimeEq;

use super::error::ApiError;

/// The token mutating routes require (`--token`); `None` leaves them open.
#[derive(Clone)]
pub struct Token(pub Option<String>);

/// Proof that the request may mutate: it carried the right bearer token, or none is set.
pub struct Authorized;

impl FromRequest for Authorized {
    type Error = ApiError;
    type Future = Ready<Result<Self, ApiError>>;

    fn from_request(req: &HttpRequest, _: &mut actix_web::dev::Payload) -> Self::Future {
        let expected = req.app_data::<web::Data<Token>>().and_then(|t| t.0.clone());
        ready(check(expected.as_deref(), req.headers().get(header::AUTHORIZATION).and_then(|v| v.to_str().ok())))
    }
}

/// 401 without credentials, 403 with wrong ones; the comparison takes constant time.
fn check(expected: Option<&str>, header: Option<&str>) -> Result<Authorized, ApiError> {
    let Some(expected) = expected else { return Ok(Authorized) };
    let Some(given) = header.and_then(|h| h.strip_prefix("Bearer ")) else {
        return Err(ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", "this route needs `Authorization: Bearer TOKEN` (the server's --token)"));
    };
    if bool::from(given.as_bytes().ct_eq(expected.as_bytes())) {
        Ok(Authorized)
    } else {
        Err(ApiError::new(StatusCode::FORBIDDEN, "forbidden", "wrong token"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_a_token_everything_is_allowed() {
        assert!(check(None, None).is_ok());
    }

    #[test]
    fn a_missing_token_is_401_and_a_wrong_one_403() {
        assert_eq!(check(Some("s3cret"), None).err().unwrap().code(), "unauthorized");
        assert_eq!(check(Some("s3cret"), Some("Basic s3cret")).err().unwrap().code(), "unauthorized");
        assert_eq!(check(Some("s3cret"), Some("Bearer s3cre")).err().unwrap().code(), "forbidden");
        assert_eq!(check(Some("s3cret"), Some("Bearer s3cret!")).err().unwrap().code(), "forbidden");
        assert!(check(Some("s3cret"), Some("Bearer s3cret")).is_ok());
    }
}
