//! Which account a request belongs to.
//!
//! Idempotency keys and fault settings are scoped per account, so one user's
//! key never replays another user's response and parallel tests using distinct
//! accounts never see each other's injected faults.

use axum::extract::FromRequestParts;
use axum::http::header::COOKIE;
use axum::http::request::Parts;

use crate::error::ApiError;

/// The account used when a request names none.
const PUBLIC: &str = "public";
const HEADER: &str = "x-account";
const COOKIE_NAME: &str = "account";

/// The account a request belongs to: the `X-Account` header, else the
/// `account` cookie, else `"public"`. 1..=64 characters of `[A-Za-z0-9_.-]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(crate) struct Account(String);

impl Account {
    pub(crate) fn as_str(&self) -> &str {
        &self.0
    }

    fn parse(raw: &str) -> Result<Account, ApiError> {
        let valid = (1..=64).contains(&raw.len())
            && raw
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'.' | b'-'));
        if valid {
            Ok(Account(raw.to_owned()))
        } else {
            Err(ApiError::bad_request(
                "invalid_account",
                "the account must be 1 to 64 characters of [A-Za-z0-9_.-]",
            ))
        }
    }

    fn from_parts(parts: &Parts) -> Result<Account, ApiError> {
        if let Some(value) = parts.headers.get(HEADER) {
            let raw = value
                .to_str()
                .map_err(|_| ApiError::bad_request("invalid_account", "X-Account is not ASCII"))?;
            return Account::parse(raw.trim());
        }
        for header in parts.headers.get_all(COOKIE) {
            // A cookie header that is not ASCII cannot hold a valid account; skip it.
            let Ok(cookies) = header.to_str() else {
                continue;
            };
            for pair in cookies.split(';') {
                if let Some((name, value)) = pair.trim().split_once('=')
                    && name.trim() == COOKIE_NAME
                {
                    let value = value.trim();
                    let value = value
                        .strip_prefix('"')
                        .and_then(|v| v.strip_suffix('"'))
                        .unwrap_or(value);
                    return Account::parse(value);
                }
            }
        }
        Ok(Account(PUBLIC.to_owned()))
    }
}

impl<S: Send + Sync> FromRequestParts<S> for Account {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, Self::Rejection> {
        Account::from_parts(parts)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::Request;

    fn account(
        build: impl FnOnce(axum::http::request::Builder) -> axum::http::request::Builder,
    ) -> Result<Account, ApiError> {
        let (parts, ()) = build(Request::builder())
            .body(())
            .map_err(|e| ApiError::internal("test", &e))?
            .into_parts();
        Account::from_parts(&parts)
    }

    #[test]
    fn header_wins_over_cookie() {
        let a = account(|b| {
            b.header("x-account", "alice")
                .header("cookie", "account=bob")
        })
        .ok();
        assert_eq!(a.as_ref().map(Account::as_str), Some("alice"));
    }

    #[test]
    fn cookie_then_public() {
        let a = account(|b| b.header("cookie", "theme=dark; account=\"bob\"")).ok();
        assert_eq!(a.as_ref().map(Account::as_str), Some("bob"));
        let a = account(|b| b).ok();
        assert_eq!(a.as_ref().map(Account::as_str), Some("public"));
    }

    #[test]
    fn rejects_bad_names() {
        assert!(account(|b| b.header("x-account", "a b")).is_err());
        assert!(account(|b| b.header("x-account", "")).is_err());
        assert!(account(|b| b.header("x-account", "x".repeat(65))).is_err());
        assert!(account(|b| b.header("cookie", "account=a/b")).is_err());
    }
}
