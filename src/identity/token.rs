//! Where a request carries its token: `Authorization: Bearer <token>` (RFC 6750), or, on the
//! WebSocket upgrade only, `?access_token=<token>`, since browsers cannot set headers on a
//! WebSocket.

use actix_web::http::header::{AUTHORIZATION, HeaderMap};
use actix_web::web;
use serde::Deserialize;

use super::Refused;

const NOT_BEARER: Refused =
    Refused::Malformed("the Authorization header is not \"Bearer <token>\"");

/// The bearer token of a request; None when it has no `Authorization` header.
pub fn bearer(headers: &HeaderMap) -> Result<Option<&str>, Refused> {
    let Some(value) = headers.get(AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| NOT_BEARER)?;
    let (scheme, token) = value.trim().split_once(' ').ok_or(NOT_BEARER)?;
    let token = token.trim();
    if !scheme.eq_ignore_ascii_case("bearer") || token.is_empty() {
        return Err(NOT_BEARER);
    }
    Ok(Some(token))
}

#[derive(Deserialize)]
struct UpgradeQuery {
    access_token: Option<String>,
}

/// The token of a WebSocket upgrade: its bearer header, else its `access_token` parameter.
pub fn upgrade_token(headers: &HeaderMap, query: &str) -> Result<Option<String>, Refused> {
    if let Some(token) = bearer(headers)? {
        return Ok(Some(token.to_owned()));
    }
    let query = web::Query::<UpgradeQuery>::from_query(query)
        .map_err(|_| Refused::Malformed("the query string cannot be read"))?;
    Ok(query
        .into_inner()
        .access_token
        .filter(|token| !token.is_empty()))
}

#[cfg(test)]
mod tests {
    use actix_web::http::header::HeaderValue;

    use super::*;

    fn with_authorization(value: &'static str) -> HeaderMap {
        let mut headers = HeaderMap::new();
        headers.insert(AUTHORIZATION, HeaderValue::from_static(value));
        headers
    }

    #[test]
    fn a_bearer_header_gives_its_token_whatever_the_scheme_case() {
        assert_eq!(
            bearer(&with_authorization("Bearer abc.def")),
            Ok(Some("abc.def"))
        );
        assert_eq!(bearer(&with_authorization("bearer  x ")), Ok(Some("x")));
        assert_eq!(bearer(&HeaderMap::new()), Ok(None));
    }

    #[test]
    fn any_other_authorization_is_malformed() {
        for value in ["Basic dXNlcjpwdw==", "Bearer", "Bearer ", "abc.def.ghi", ""] {
            assert_eq!(
                bearer(&with_authorization(value)),
                Err(NOT_BEARER),
                "{value:?}"
            );
        }
    }

    #[test]
    fn an_upgrade_takes_the_header_first_then_the_query() {
        let header = with_authorization("Bearer from-header");
        let both = upgrade_token(&header, "access_token=from-query");
        assert_eq!(both, Ok(Some("from-header".to_owned())));
        let none = HeaderMap::new();
        let query = upgrade_token(&none, "access_token=a%2Eb");
        assert_eq!(query, Ok(Some("a.b".to_owned())));
        assert_eq!(upgrade_token(&none, "access_token="), Ok(None));
    }
}
