//! Bearer tokens: [`Admin`] (writes) and [`Read`] (reads, evaluation, OFREP) as extractors.
//!
//! `Authorization: Bearer <token>`. The admin token may do everything. A scope whose token is
//! not configured is open (the configuration only allows that on loopback or with
//! `--insecure`). No token where one is needed: 401; a token that is not good enough: 403.
//! Tokens are compared as SHA-1 digests in constant time, so neither their content nor their
//! length leaks through timing.

use axum::extract::FromRequestParts;
use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;
use sha1::{Digest, Sha1};
use subtle::ConstantTimeEq;

use crate::error::ApiError;
use crate::state::AppState;

type TokenDigest = [u8; 20];

fn digest(token: &str) -> TokenDigest {
    Sha1::digest(token.as_bytes()).into()
}

/// The configured tokens, as digests.
#[derive(Debug, Clone)]
pub(crate) struct Tokens {
    admin: Option<TokenDigest>,
    sdk: Option<TokenDigest>,
}

/// What a request may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Scope {
    Read,
    Write,
}

impl Tokens {
    pub(crate) fn new(admin: Option<&str>, sdk: Option<&str>) -> Self {
        Self {
            admin: admin.map(digest),
            sdk: sdk.map(digest),
        }
    }

    fn check(&self, scope: Scope, presented: Option<&str>) -> Result<(), ApiError> {
        let required = match scope {
            Scope::Write => self.admin.is_some(),
            Scope::Read => self.sdk.is_some(),
        };
        if !required {
            return Ok(());
        }
        let Some(presented) = presented else {
            return Err(ApiError::unauthorized());
        };
        let presented = digest(presented);
        let matches =
            |t: &Option<TokenDigest>| t.as_ref().is_some_and(|t| bool::from(t.ct_eq(&presented)));
        // Both comparisons always run.
        let (admin, sdk) = (matches(&self.admin), matches(&self.sdk));
        let allowed = match scope {
            Scope::Write => admin,
            Scope::Read => admin | sdk,
        };
        if allowed {
            Ok(())
        } else {
            Err(ApiError::forbidden(scope == Scope::Write && sdk))
        }
    }
}

/// The token in `Authorization: Bearer <token>`, if there is one.
fn bearer(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

/// Proof that the request may write (the admin token, or no admin token configured).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Admin;

/// Proof that the request may read and evaluate (the SDK or admin token, or no SDK token
/// configured).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Read;

impl FromRequestParts<AppState> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        state
            .tokens()
            .check(Scope::Write, bearer(&parts.headers))
            .map(|()| Self)
    }
}

impl Read {
    /// Checks the request's headers for read access (the extractor's check, for code that
    /// has the headers rather than an axum request).
    pub(crate) fn check(state: &AppState, headers: &HeaderMap) -> Result<Self, ApiError> {
        state
            .tokens()
            .check(Scope::Read, bearer(headers))
            .map(|()| Self)
    }
}

impl FromRequestParts<AppState> for Read {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        Self::check(state, &parts.headers)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes() {
        let both = Tokens::new(Some("adm"), Some("sdk"));
        let code = |r: Result<(), ApiError>| r.map_or_else(|e| e.status().as_u16(), |()| 200);
        assert_eq!(code(both.check(Scope::Write, None)), 401);
        assert_eq!(code(both.check(Scope::Write, Some("sdk"))), 403);
        assert_eq!(code(both.check(Scope::Write, Some("nope"))), 403);
        assert_eq!(code(both.check(Scope::Write, Some("adm"))), 200);
        assert_eq!(code(both.check(Scope::Read, None)), 401);
        assert_eq!(code(both.check(Scope::Read, Some("sdk"))), 200);
        assert_eq!(code(both.check(Scope::Read, Some("adm"))), 200);
        assert_eq!(code(both.check(Scope::Read, Some("ad"))), 403);
        let open = Tokens::new(None, None);
        assert_eq!(code(open.check(Scope::Write, None)), 200);
        let admin_only = Tokens::new(Some("adm"), None);
        assert_eq!(code(admin_only.check(Scope::Read, None)), 200);
        assert_eq!(code(admin_only.check(Scope::Write, None)), 401);
    }
}
