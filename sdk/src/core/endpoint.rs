//! The endpoint URL rule: [`Config::url`](super::Config::url) must be a `ws://` or `wss://`
//! URL; the URL a connection opens is it with its fragment dropped and the token as its
//! one `token` query parameter (any `token=` already there replaced, other parameters kept
//! in order, form-urlencoded, the token last).
//!
//! One rule, two implementations chosen by target:
//! - native: the `url` crate (the WHATWG URL standard, IDNA included);
//! - `wasm32`: [`lite`], a small parser of `ws`/`wss` URLs. The `url` crate's IDNA and
//!   Unicode tables were over half of the browser package's size, and a browser normalises
//!   the URL (host, port, path, IDNA) itself when `new WebSocket(url)` parses it. `lite`
//!   checks what the core needs (scheme, a host, a port that fits), rewrites the query
//!   form-urlencoded as the `url` crate does (a small decoder and encoder of its own), and
//!   leaves the rest to the browser's parser. Its tests check it against the `url` crate.

use super::ConfigError;

/// Check `url` (see the module docs).
pub(crate) fn check(url: &str) -> Result<(), ConfigError> {
    imp::connect_url(url, "").map(drop)
}

/// The URL to open for `url` with `token` (see the module docs).
pub(crate) fn connect_url(url: &str, token: &str) -> Result<String, ConfigError> {
    imp::connect_url(url, token)
}

#[cfg(target_arch = "wasm32")]
use lite as imp;

#[cfg(not(target_arch = "wasm32"))]
mod imp {
    use super::ConfigError;

    pub(super) fn connect_url(url: &str, token: &str) -> Result<String, ConfigError> {
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

/// The `wasm32` implementation (built on the host for its tests only).
#[cfg(any(target_arch = "wasm32", test))]
pub(crate) mod lite {
    use super::ConfigError;

    fn invalid(url: &str, reason: &str) -> ConfigError {
        ConfigError::InvalidUrl {
            url: url.to_owned(),
            reason: reason.to_owned(),
        }
    }

    /// What the WHATWG parser does first: trim C0 controls and spaces, drop tabs and
    /// newlines anywhere.
    fn clean(url: &str) -> String {
        url.trim_matches(|c: char| c <= ' ')
            .chars()
            .filter(|c| !matches!(c, '\t' | '\n' | '\r'))
            .collect()
    }

    /// Characters that cannot be in a host (the standard's forbidden host code points,
    /// and controls); `%` is left to the browser, which decodes it.
    fn forbidden_in_host(c: char) -> bool {
        c <= ' '
            || c == '\u{7f}'
            || matches!(
                c,
                '#' | '/' | ':' | '<' | '>' | '?' | '@' | '[' | '\\' | ']' | '^' | '|'
            )
    }

    /// `s` split around its last `b`, an ASCII byte (so a char boundary): `rsplit_once`
    /// with a `char` was 0.8 KB of reverse UTF-8 searching in the browser build.
    fn rsplit_ascii(s: &str, b: u8) -> Option<(&str, &str)> {
        let at = s.bytes().rposition(|c| c == b)?;
        let (before, after) = s.split_at_checked(at)?;
        Some((before, after.get(1..)?))
    }

    /// `authority` (`[userinfo@]host[:port]`) checked.
    fn check_authority(url: &str, authority: &str) -> Result<(), ConfigError> {
        let host_port = rsplit_ascii(authority, b'@').map_or(authority, |(_, h)| h);
        let (host, port) = if let Some(rest) = host_port.strip_prefix('[') {
            let (ip, after) = rest
                .split_once(']')
                .ok_or_else(|| invalid(url, "invalid IPv6 address"))?;
            let ip_ok = !ip.is_empty()
                && ip.contains(':')
                && ip
                    .chars()
                    .all(|c| c.is_ascii_hexdigit() || c == ':' || c == '.');
            if !ip_ok {
                return Err(invalid(url, "invalid IPv6 address"));
            }
            match after {
                "" => ("[]", None),
                p => match p.strip_prefix(':') {
                    Some(port) => ("[]", Some(port)),
                    None => return Err(invalid(url, "invalid IPv6 address")),
                },
            }
        } else {
            match rsplit_ascii(host_port, b':') {
                Some((h, p)) => (h, Some(p)),
                None => (host_port, None),
            }
        };
        if host.is_empty() {
            return Err(invalid(url, "empty host"));
        }
        if host != "[]" && host.chars().any(forbidden_in_host) {
            return Err(invalid(url, "invalid domain character"));
        }
        if let Some(port) = port {
            // Empty is allowed (the default port); otherwise digits that fit in 16 bits.
            let fits = port.is_empty()
                || (port.bytes().all(|b| b.is_ascii_digit())
                    && port.trim_start_matches('0').len() <= 5
                    && port.parse::<u32>().is_ok_and(|p| p <= 65_535));
            if !fits {
                return Err(invalid(url, "invalid port number"));
            }
        }
        Ok(())
    }

    /// See the module docs.
    pub(crate) fn connect_url(url: &str, token: &str) -> Result<String, ConfigError> {
        let cleaned = clean(url);
        let (scheme, rest) = cleaned
            .split_once(':')
            .filter(|(s, _)| {
                s.starts_with(|c: char| c.is_ascii_alphabetic())
                    && s.chars()
                        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
            })
            .ok_or_else(|| invalid(url, "relative URL without a base"))?;
        let scheme = scheme.to_ascii_lowercase();
        if scheme != "ws" && scheme != "wss" {
            return Err(ConfigError::UnsupportedScheme(scheme));
        }
        // Special schemes take any run of slashes (and backslashes) before the host.
        let rest = rest.trim_start_matches(['/', '\\']);
        let rest = rest.split_once('#').map_or(rest, |(before, _)| before);
        let (before_query, query) = match rest.split_once('?') {
            Some((b, q)) => (b, Some(q)),
            None => (rest, None),
        };
        // `split_at_checked`, not `split_at`: a str slice that can panic links the panic
        // message's `char` and range formatting into the browser build (`find` gives a
        // char boundary, so the fallback is never taken).
        let path_at = before_query.find(['/', '\\']).unwrap_or(before_query.len());
        let (authority, path) = before_query
            .split_at_checked(path_at)
            .unwrap_or((before_query, ""));
        check_authority(url, authority)?;

        let mut out = String::with_capacity(cleaned.len() + token.len() + 16);
        out.push_str(&scheme);
        out.push_str("://");
        out.push_str(authority);
        // A special URL's path is never empty, and `\` in it is `/`.
        if path.is_empty() {
            out.push('/');
        } else {
            out.extend(path.chars().map(|c| if c == '\\' { '/' } else { c }));
        }
        out.push('?');
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            let k = form_decode(k);
            if k != "token" {
                push_form_encoded(&mut out, &k);
                out.push('=');
                push_form_encoded(&mut out, &form_decode(v));
                out.push('&');
            }
        }
        out.push_str("token=");
        push_form_encoded(&mut out, token);
        Ok(out)
    }

    /// One name or value of an `application/x-www-form-urlencoded` query, decoded as the
    /// URL standard (and the `form_urlencoded` crate) does: `+` is a space, `%XX` a byte,
    /// a `%` without two hex digits stays, bad UTF-8 becomes U+FFFD. Written here, not
    /// taken from `form_urlencoded`: that crate's 256-entry encoding table and code were
    /// over 2 KB of the browser package.
    fn form_decode(s: &str) -> String {
        let hex = |b: Option<&u8>| b.and_then(|b| char::from(*b).to_digit(16));
        let bytes = s.as_bytes();
        let mut out = Vec::with_capacity(bytes.len());
        let mut i = 0;
        while let Some(&b) = bytes.get(i) {
            i += 1;
            match b {
                b'+' => out.push(b' '),
                b'%' => match (hex(bytes.get(i)), hex(bytes.get(i + 1))) {
                    (Some(hi), Some(lo)) => {
                        // Two hex digits: below 256.
                        out.push(u8::try_from(hi * 16 + lo).unwrap_or(b'%'));
                        i += 2;
                    }
                    _ => out.push(b'%'),
                },
                b => out.push(b),
            }
        }
        String::from_utf8_lossy(&out).into_owned()
    }

    /// `s` form-urlencoded onto `out`: the URL standard's byte serializer (alphanumerics
    /// and `*-._` as they are, space as `+`, every other byte as `%XX`).
    fn push_form_encoded(out: &mut String, s: &str) {
        const HEX: &[u8; 16] = b"0123456789ABCDEF";
        for &b in s.as_bytes() {
            match b {
                b'*' | b'-' | b'.' | b'_' | b'0'..=b'9' | b'A'..=b'Z' | b'a'..=b'z' => {
                    out.push(char::from(b));
                }
                b' ' => out.push('+'),
                b => {
                    out.push('%');
                    out.push(char::from(HEX[usize::from(b >> 4)]));
                    out.push(char::from(HEX[usize::from(b & 0xf)]));
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Inputs both implementations take, and what opening them means.
    const OK: &[&str] = &[
        "ws://h/ws",
        "wss://h/ws",
        "ws://h",
        "ws://h/",
        "ws://h:8080/ws",
        "ws://h:/ws",
        "ws://127.0.0.1:9/ws",
        "ws://[::1]:9/ws",
        "ws://[::1]/ws",
        "WS://Example.COM/WS",
        "ws://user:pw@h/ws",
        "ws://h/ws?x=1",
        "ws://h/ws?",
        "ws://h/ws?token=old&x=1#frag",
        "ws://h/ws?csrftoken=c",
        "ws://h/ws?a=b&token=1&token=2&c",
        "ws://h/ws?a b=c d&e=%41+%zz&f=é",
        "ws://h/a b/%41?x=1",
        "ws://h/a/../b",
        "ws:h/ws",
        "ws:\\\\h\\ws",
        "ws:////h/ws",
        "  ws://h/w\ts \n",
        "ws://bücher.example/ws",
        "ws://h#only-frag",
        "ws:///ws",
        "ws://h%41:0080/ws",
    ];

    const BAD: &[&str] = &[
        "not a url",
        "",
        "ws://",
        "ws://h:99999/ws",
        "ws://h:12x/ws",
        "ws://[::1/ws",
        "ws://[zz]/ws",
        "ws://a b/ws",
        "ws://a<b/ws",
        "://h/ws",
        "1ws://h/ws",
    ];

    #[test]
    fn lite_opens_what_the_url_crate_opens() {
        for input in OK {
            for token in ["t", "a+b/=", "", "ü x"] {
                let full = imp::connect_url(input, token).expect(input);
                let lite = lite::connect_url(input, token).expect(input);
                // The browser parses what `lite` gives it: it must be the same URL.
                let reparsed = url::Url::parse(&lite).expect(&lite);
                assert_eq!(reparsed.as_str(), full, "{input:?} with {token:?}");
            }
        }
    }

    #[test]
    fn lite_refuses_what_the_url_crate_refuses() {
        for input in BAD {
            assert!(
                matches!(
                    imp::connect_url(input, "t"),
                    Err(ConfigError::InvalidUrl { .. })
                ),
                "url crate: {input:?}"
            );
            assert!(
                matches!(
                    lite::connect_url(input, "t"),
                    Err(ConfigError::InvalidUrl { .. })
                ),
                "lite: {input:?}"
            );
        }
        for (input, scheme) in [
            ("http://h/ws", "http"),
            ("HTTPS://h/ws", "https"),
            ("ftp://h", "ftp"),
            ("mailto:x@y", "mailto"),
        ] {
            for result in [imp::connect_url(input, "t"), lite::connect_url(input, "t")] {
                assert_eq!(
                    result,
                    Err(ConfigError::UnsupportedScheme(scheme.into())),
                    "{input:?}"
                );
            }
        }
    }

    #[test]
    fn token_is_percent_encoded_and_replaces_an_old_one() {
        for f in [imp::connect_url, lite::connect_url] {
            assert_eq!(
                f("ws://h/ws", "a.b-c_d").unwrap(),
                "ws://h/ws?token=a.b-c_d"
            );
            assert_eq!(
                f("ws://h/ws?x=1", "a+b/=").unwrap(),
                "ws://h/ws?x=1&token=a%2Bb%2F%3D"
            );
            assert_eq!(
                f("wss://h/ws?token=old&x=1#frag", "new").unwrap(),
                "wss://h/ws?x=1&token=new"
            );
        }
    }
}
