// Endpoint URL test vectors, `include!`d by the unit tests of `endpoint.rs` (the `url`
// crate) and by `tests/web_client.rs` (the browser's `URL`, compared with the `url` crate).

/// Inputs that open, with what they mean exercised: case, ports, IPv6, userinfo, queries
/// with and without a token, form-encoding, odd slashes, whitespace, IDNA, fragments.
#[allow(dead_code)]
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

/// Tokens tried with every `OK` input.
#[allow(dead_code)]
const TOKENS: &[&str] = &["t", "a+b/=", "", "ü x"];

/// Inputs that are not URLs.
#[allow(dead_code)]
const BAD: &[&str] = &[
    "not a url",
    "",
    "ws://",
    "ws://h:99999/ws",
    "ws://h:12x/ws",
    "ws://[::1/ws",
    "ws://[zz]/ws",
    "ws://a<b/ws",
    "://h/ws",
    "1ws://h/ws",
];

/// Not URLs by the standard (and the `url` crate), which Chromium's `URL` takes: it
/// percent-encodes a space in a host. In the browser the socket then fails to connect and
/// is retried, as for a host that does not resolve; the browser test leaves them out.
#[allow(dead_code)]
const BAD_BUT_CHROMIUM_TAKES: &[&str] = &["ws://a b/ws"];

/// URLs of another scheme, and the scheme named in the error.
#[allow(dead_code)]
const SCHEMES: &[(&str, &str)] = &[
    ("http://h/ws", "http"),
    ("HTTPS://h/ws", "https"),
    ("ftp://h", "ftp"),
    ("mailto:x@y", "mailto"),
];

/// Input, token, and the exact URL opened.
#[allow(dead_code)]
const ENCODED: &[(&str, &str, &str)] = &[
    ("ws://h/ws", "a.b-c_d", "ws://h/ws?token=a.b-c_d"),
    ("ws://h/ws?x=1", "a+b/=", "ws://h/ws?x=1&token=a%2Bb%2F%3D"),
    ("wss://h/ws?token=old&x=1#frag", "new", "wss://h/ws?x=1&token=new"),
];
