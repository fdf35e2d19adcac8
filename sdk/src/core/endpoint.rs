//! The endpoint URL rule: [`Config::url`](super::Config::url) must be a `ws://` or `wss://`
//! URL; the URL a connection opens is it with its fragment dropped and the token as its
//! one `token` query parameter (any `token=` already there replaced, other parameters kept
//! in order, form-urlencoded, the token last).
//!
//! One rule, two parsers of the WHATWG URL standard, chosen by target:
//! - in the browser (`wasm32` with feature `web`): the browser's own `URL` and its
//!   `searchParams`, the parser `new WebSocket(url)` uses on the same string. The `url`
//!   crate's IDNA and Unicode tables would be over half of the npm package, and the small
//!   parser of our own it replaces (2.5 KB of the gzipped package) only approximated it;
//! - elsewhere: the `url` crate (IDNA included).
//!
//! `tests/web_client.rs` checks in Chromium that the browser's URLs are the `url` crate's (one
//! known difference: Chromium takes a space in a host, see `endpoint_vectors.rs`).

use super::ConfigError;

/// Check `url` (see the module docs).
pub(crate) fn check(url: &str) -> Result<(), ConfigError> {
    imp::connect_url(url, "").map(drop)
}

/// The URL to open for `url` with `token` (see the module docs).
pub(crate) fn connect_url(url: &str, token: &str) -> Result<String, ConfigError> {
    imp::connect_url(url, token)
}

#[cfg(all(target_arch = "wasm32", feature = "web"))]
mod imp {
    use super::ConfigError;

    pub(super) fn connect_url(url: &str, token: &str) -> Result<String, ConfigError> {
        let parsed = web_sys::Url::new(url).map_err(|_| ConfigError::InvalidUrl {
            url: url.to_owned(),
            reason: String::from("not a valid URL"),
        })?;
        let protocol = parsed.protocol();
        match protocol.as_str() {
            "ws:" | "wss:" => {}
            other => {
                let scheme = other.strip_suffix(':').unwrap_or(other);
                return Err(ConfigError::UnsupportedScheme(scheme.to_owned()));
            }
        }
        // Meaningless to a WebSocket.
        parsed.set_hash("");
        // `searchParams` keeps the other parameters in order and writes the query back
        // form-urlencoded, as the `url` crate's `query_pairs_mut` does.
        let query = parsed.search_params();
        query.delete("token");
        query.append("token", token);
        Ok(parsed.href())
    }
}

/// The rule by the `url` crate: the native implementation, and in the browser the oracle
/// its tests compare the browser's `URL` with (`tests/web_client.rs`; left out of the
/// package by the linker).
#[doc(hidden)]
pub mod by_url_crate {
    use super::ConfigError;

    /// See the module docs of `core::endpoint`.
    pub fn connect_url(url: &str, token: &str) -> Result<String, ConfigError> {
        let mut parsed = url::Url::parse(url).map_err(|e| ConfigError::InvalidUrl {
            url: url.to_owned(),
            reason: e.to_string(),
        })?;
        match parsed.scheme() {
            "ws" | "wss" => {}
            other => return Err(ConfigError::UnsupportedScheme(other.to_owned())),
        }
        // Meaningless to a WebSocket.
        parsed.set_fragment(None);
        let kept: Vec<(String, String)> = parsed
            .query_pairs()
            .filter(|(k, _)| k != "token")
            .map(|(k, v)| (k.into_owned(), v.into_owned()))
            .collect();
        parsed.set_query(None);
        {
            let mut query = parsed.query_pairs_mut();
            for (k, v) in &kept {
                query.append_pair(k, v);
            }
            query.append_pair("token", token);
        }
        Ok(parsed.into())
    }
}

#[cfg(not(all(target_arch = "wasm32", feature = "web")))]
use by_url_crate as imp;

#[cfg(test)]
mod tests {
    use super::*;

    // `OK`, `BAD` and `SCHEMES`: shared with the browser's check in `tests/web_client.rs`.
    include!("endpoint_vectors.rs");

    #[test]
    fn every_ws_url_opens_with_the_token_last() {
        for input in OK {
            for token in TOKENS {
                let url = imp::connect_url(input, token).expect(input);
                let parsed = url::Url::parse(&url).expect(&url);
                assert_eq!(parsed.fragment(), None, "{input:?}");
                let last = parsed
                    .query_pairs()
                    .last()
                    .map(|(k, v)| (k.into_owned(), v.into_owned()));
                assert_eq!(last, Some(("token".into(), (*token).into())), "{input:?}");
                assert_eq!(
                    parsed.query_pairs().filter(|(k, _)| k == "token").count(),
                    1
                );
            }
        }
    }

    #[test]
    fn bad_urls_and_other_schemes_are_refused() {
        for input in BAD.iter().chain(BAD_BUT_CHROMIUM_TAKES) {
            assert!(
                matches!(
                    imp::connect_url(input, "t"),
                    Err(ConfigError::InvalidUrl { .. })
                ),
                "{input:?}"
            );
        }
        for (input, scheme) in SCHEMES {
            assert_eq!(
                imp::connect_url(input, "t"),
                Err(ConfigError::UnsupportedScheme((*scheme).into())),
                "{input:?}"
            );
        }
    }

    #[test]
    fn token_is_percent_encoded_and_replaces_an_old_one() {
        for (input, token, url) in ENCODED {
            assert_eq!(imp::connect_url(input, token).unwrap(), *url);
        }
    }
}
