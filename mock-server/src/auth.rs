//! JWT (HS256) authentication: verifying the tokens clients present and minting dev tokens.
//!
//! A token carries the user in `userId` (a number) or `sub` (a numeric string), `exp`
//! (required), and optionally `role: "admin"` and `username`. Only HS256 is accepted, so
//! `alg: none` and every other algorithm are refused. Token text never reaches the logs:
//! errors describe what is wrong, never the token.

use std::time::Duration;

use axum::http::HeaderMap;
use axum::http::header::AUTHORIZATION;
use jsonwebtoken::errors::ErrorKind;
use jsonwebtoken::{Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde_json::{Map, Value, json};

use crate::time::{unix_millis, unix_secs};

/// The last second of year 9999 (UTC): a later `exp` is refused as invalid. Nothing
/// legitimate expires later, and time arithmetic on such values overflows.
pub const MAX_EXP: u64 = 253_402_300_799;

/// Why a token was refused (or could not be minted).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AuthError {
    /// No token in `?token=` nor `Authorization: Bearer`.
    #[error("missing token")]
    Missing,
    /// Not a JWT (bad shape, base64 or JSON).
    #[error("malformed token")]
    Malformed,
    /// The signature does not match the server's secret.
    #[error("bad token signature")]
    BadSignature,
    /// Signed with something other than HS256 (including `none`).
    #[error("token algorithm not accepted (HS256 only)")]
    Algorithm,
    /// `exp` is in the past.
    #[error("token expired")]
    Expired,
    /// A required claim is missing or has the wrong type.
    #[error("token claim `{0}` missing or invalid")]
    Claim(String),
    /// The token could not be signed.
    #[error("could not mint token: {0}")]
    Mint(String),
}

/// The authenticated caller, from a verified token.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthUser {
    /// The user.
    pub user_id: u64,
    /// Whether the token has `role: "admin"`.
    pub admin: bool,
    /// The `username` claim, if any.
    pub username: Option<String>,
    /// The `exp` claim, Unix seconds.
    pub expires_at: u64,
    /// The `iat` claim, Unix seconds, if present.
    pub issued_at: Option<u64>,
    /// The `iatMs` claim (Unix milliseconds; tokens this server mints carry it), when present
    /// and in the `iat` second: it tells a token minted just after an `expire-token` fault
    /// from one minted just before it in the same second.
    pub issued_at_ms: Option<u64>,
}

/// Mint an HS256 token for `user_id`, valid for `ttl` (0 gives a token that is already expired).
pub fn mint_token(
    secret: &str,
    user_id: u64,
    admin: bool,
    ttl: Duration,
) -> Result<String, AuthError> {
    mint_named_token(secret, user_id, None, admin, ttl)
}

/// [`mint_token`] with a `username` claim.
pub fn mint_named_token(
    secret: &str,
    user_id: u64,
    username: Option<&str>,
    admin: bool,
    ttl: Duration,
) -> Result<String, AuthError> {
    let now_ms = unix_millis();
    let now = now_ms / 1000;
    // Whole seconds, rounded up, so that a 1.5 s ttl does not become 1 s.
    let ttl_secs = ttl.as_secs() + u64::from(ttl.subsec_nanos() > 0);
    let mut claims = json!({
        "userId": user_id,
        "sub": user_id.to_string(),
        "role": if admin { "admin" } else { "user" },
        "iat": now,
        "iatMs": now_ms,
        "exp": now + ttl_secs,
    });
    if let (Some(name), Some(map)) = (username, claims.as_object_mut()) {
        map.insert("username".into(), Value::from(name));
    }
    jsonwebtoken::encode(
        &Header::new(Algorithm::HS256),
        &claims,
        &EncodingKey::from_secret(secret.as_bytes()),
    )
    .map_err(|e| AuthError::Mint(e.to_string()))
}

/// Verify `token` against `secret`.
pub fn verify_token(secret: &str, token: &str) -> Result<AuthUser, AuthError> {
    let mut validation = Validation::new(Algorithm::HS256);
    // `exp` must be present, but we check it ourselves: without leeway, and with `exp == now`
    // already expired, so that a token minted with ttl 0 is refused at once.
    validation.validate_exp = false;
    validation.leeway = 0;
    validation.validate_aud = false;
    let data = jsonwebtoken::decode::<Map<String, Value>>(
        token,
        &DecodingKey::from_secret(secret.as_bytes()),
        &validation,
    )
    .map_err(|e| match e.kind() {
        ErrorKind::InvalidSignature => AuthError::BadSignature,
        ErrorKind::InvalidAlgorithm | ErrorKind::InvalidAlgorithmName => AuthError::Algorithm,
        ErrorKind::ExpiredSignature => AuthError::Expired,
        ErrorKind::MissingRequiredClaim(c) | ErrorKind::InvalidClaimFormat(c) => {
            AuthError::Claim(c.clone())
        }
        _ => AuthError::Malformed,
    })?;
    let claims = data.claims;
    let expires_at = claims
        .get("exp")
        .and_then(as_whole_number)
        .ok_or_else(|| AuthError::Claim("exp".into()))?;
    if expires_at > MAX_EXP {
        return Err(AuthError::Claim("exp".into()));
    }
    if expires_at <= unix_secs() {
        return Err(AuthError::Expired);
    }
    let user_id = claims
        .get("userId")
        .and_then(as_whole_number)
        .or_else(|| claims.get("sub").and_then(as_whole_number))
        .ok_or_else(|| AuthError::Claim("userId".into()))?;
    let issued_at = claims.get("iat").and_then(as_whole_number);
    Ok(AuthUser {
        user_id,
        admin: claims.get("role").and_then(Value::as_str) == Some("admin"),
        username: claims
            .get("username")
            .and_then(Value::as_str)
            .map(str::to_owned),
        expires_at,
        issued_at,
        issued_at_ms: claims
            .get("iatMs")
            .and_then(as_whole_number)
            .filter(|ms| issued_at == Some(ms / 1000)),
    })
}

/// A non-negative whole number, given as a JSON number or a numeric string (`sub` is a string).
fn as_whole_number(v: &Value) -> Option<u64> {
    match v {
        Value::Number(n) => n.as_u64().or_else(|| {
            n.as_f64()
                .filter(|f| f.fract() == 0.0 && *f >= 0.0 && *f < u64::MAX as f64)
                .map(|f| f as u64)
        }),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// The bearer token of `Authorization: Bearer <JWT>`, if any.
pub fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.split_once(' ')?;
    scheme
        .eq_ignore_ascii_case("bearer")
        .then(|| token.trim())
        .filter(|t| !t.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip() {
        let t = mint_named_token("k", 7, Some("ada"), true, Duration::from_secs(60)).unwrap();
        let u = verify_token("k", &t).unwrap();
        assert_eq!(u.user_id, 7);
        assert!(u.admin);
        assert_eq!(u.username.as_deref(), Some("ada"));
    }

    #[test]
    fn refusals() {
        let t = mint_token("k", 7, false, Duration::from_secs(60)).unwrap();
        assert_eq!(verify_token("other", &t), Err(AuthError::BadSignature));
        assert_eq!(verify_token("k", "not-a-jwt"), Err(AuthError::Malformed));
        let expired = mint_token("k", 7, false, Duration::ZERO).unwrap();
        assert_eq!(verify_token("k", &expired), Err(AuthError::Expired));
        // alg none: header {"alg":"none","typ":"JWT"}, no signature.
        let none = "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJ1c2VySWQiOjcsImV4cCI6OTk5OTk5OTk5OX0.";
        assert!(verify_token("k", none).is_err());
    }

    #[test]
    fn exp_beyond_year_9999_is_invalid() {
        let key = EncodingKey::from_secret(b"k");
        let h = Header::new(Algorithm::HS256);
        let t = jsonwebtoken::encode(&h, &json!({"userId": 1, "exp": 9.3e18}), &key).unwrap();
        assert_eq!(verify_token("k", &t), Err(AuthError::Claim("exp".into())));
        let t = jsonwebtoken::encode(&h, &json!({"userId": 1, "exp": MAX_EXP}), &key).unwrap();
        assert_eq!(verify_token("k", &t).unwrap().expires_at, MAX_EXP);
    }

    #[test]
    fn hs512_is_refused() {
        let claims = json!({"userId": 7, "exp": unix_secs() + 60});
        let t = jsonwebtoken::encode(
            &Header::new(Algorithm::HS512),
            &claims,
            &EncodingKey::from_secret(b"k"),
        )
        .unwrap();
        assert_eq!(verify_token("k", &t), Err(AuthError::Algorithm));
    }

    #[test]
    fn sub_is_accepted_and_exp_required() {
        let key = EncodingKey::from_secret(b"k");
        let h = Header::new(Algorithm::HS256);
        let t =
            jsonwebtoken::encode(&h, &json!({"sub": "12", "exp": unix_secs() + 60}), &key).unwrap();
        assert_eq!(verify_token("k", &t).unwrap().user_id, 12);
        let t = jsonwebtoken::encode(&h, &json!({"userId": 12}), &key).unwrap();
        assert!(matches!(verify_token("k", &t), Err(AuthError::Claim(_))));
    }
}
