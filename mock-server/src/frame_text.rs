//! [`FrameText`]: an encoded text frame, shared by every session, log and queue it goes to.
//!
//! Two shapes:
//! - a whole frame in a [`Utf8Bytes`]: handing it to the socket is a reference count, not a
//!   copy of the text;
//! - a frame numbered for one user: one body shared by every user it goes to (an
//!   announcement to 10k users is encoded once) plus this user's `seq`, spliced in when the
//!   frame is written. Replay logs keep the shared body, not a copy per user.
//!
//! The bytes written are the same either way: `seq` is the last field the SDK's encoder
//! writes, so a numbered frame is the body without its closing brace, `,"seq":N`, and `}`.

use std::borrow::Cow;
use std::fmt::Write as _;
use std::sync::Arc;

use axum::extract::ws::Utf8Bytes;
use pitchey_realtime::protocol::ServerFrame;

/// An encoded text frame. See the module docs.
#[derive(Debug, Clone)]
pub struct FrameText(Repr);

#[derive(Debug, Clone)]
enum Repr {
    Whole(Utf8Bytes),
    Numbered { body: SharedBody, seq: u64 },
}

/// A frame encoded without its `seq`, to be numbered per user ([`FrameText::numbered`]).
#[derive(Debug, Clone)]
pub struct SharedBody(Arc<str>);

impl SharedBody {
    /// Encode `frame` (which must carry no `seq`) once for every user it goes to.
    pub fn encode(frame: &ServerFrame) -> Self {
        SharedBody(frame.encode().into())
    }

    /// The frame without a `seq`, as it is sent in seed-compatible mode.
    pub fn unnumbered(&self) -> FrameText {
        FrameText::from(&*self.0)
    }
}

/// Decimal digits of `n` (`,"seq":N` is sized before it is written).
fn digits(mut n: u64) -> usize {
    let mut d = 1;
    while n >= 10 {
        n /= 10;
        d += 1;
    }
    d
}

impl FrameText {
    /// The shared `body` numbered `seq`.
    pub fn numbered(body: &SharedBody, seq: u64) -> Self {
        FrameText(Repr::Numbered {
            body: body.clone(),
            seq,
        })
    }

    /// Its length in bytes, as written.
    pub fn len(&self) -> usize {
        match &self.0 {
            Repr::Whole(t) => t.len(),
            // `}` replaced by `,"seq":N}`.
            Repr::Numbered { body, seq } => body.0.len() + 7 + digits(*seq),
        }
    }

    /// Whether it is empty (never, for a frame; for clippy's `len` rule).
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// The text to write: a reference to the shared bytes, or this user's numbered copy.
    pub fn to_utf8(&self) -> Utf8Bytes {
        match &self.0 {
            Repr::Whole(t) => t.clone(),
            Repr::Numbered { .. } => Utf8Bytes::from(self.text().into_owned()),
        }
    }

    /// The text, borrowed when it is whole.
    pub fn text(&self) -> Cow<'_, str> {
        match &self.0 {
            Repr::Whole(t) => Cow::Borrowed(t.as_str()),
            Repr::Numbered { body, seq } => {
                let open = body.0.strip_suffix('}').unwrap_or(&body.0);
                let mut s = String::with_capacity(self.len());
                s.push_str(open);
                let _ = write!(s, ",\"seq\":{seq}}}");
                Cow::Owned(s)
            }
        }
    }

    /// The frame's `type` (for counters), without parsing the whole frame.
    pub fn kind(&self) -> &str {
        let head = match &self.0 {
            Repr::Whole(t) => t.as_str(),
            Repr::Numbered { body, .. } => &body.0,
        };
        crate::metrics::frame_kind(head)
    }
}

impl From<String> for FrameText {
    fn from(s: String) -> Self {
        FrameText(Repr::Whole(Utf8Bytes::from(s)))
    }
}

impl From<&str> for FrameText {
    fn from(s: &str) -> Self {
        FrameText(Repr::Whole(Utf8Bytes::from(s)))
    }
}

impl std::fmt::Display for FrameText {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.text())
    }
}

impl PartialEq for FrameText {
    fn eq(&self, other: &Self) -> bool {
        self.text() == other.text()
    }
}

impl Eq for FrameText {}

#[cfg(test)]
mod tests {
    use pitchey_realtime::protocol::{Notification, ServerFrame, ServerMessage};

    use super::*;

    fn notification() -> ServerFrame {
        ServerFrame::new(ServerMessage::Notification(Notification {
            id: "n-1".into(),
            kind: "system".into(),
            title: "t \"quoted\" }".into(),
            message: "m".into(),
            data: serde_json::json!({"a": [1, {"b": "}"}]}),
            created_at: Some("2026-01-01T00:00:00Z".into()),
            read: false,
        }))
    }

    #[test]
    fn numbered_frame_is_byte_identical_to_the_encoder() {
        let body = SharedBody::encode(&notification());
        for seq in [0, 1, 9, 10, 99, 12345, u64::MAX] {
            let spliced = FrameText::numbered(&body, seq);
            let encoded = notification().with_seq(seq).encode();
            assert_eq!(spliced.text(), encoded.as_str());
            assert_eq!(spliced.len(), encoded.len());
            assert_eq!(spliced.to_utf8().as_str(), encoded);
        }
        assert_eq!(body.unnumbered().text(), notification().encode().as_str());
        assert_eq!(FrameText::numbered(&body, 3).kind(), "notification");
    }
}
