//! [`FrameText`]: an encoded frame, shared by the outbox and the write.

use std::fmt;
use std::ops::Deref;
use std::sync::Arc;

/// The JSON text of one frame to write ([`Action::Send`](super::Action::Send)).
///
/// Cloning it copies a pointer: the outbox keeps a durable message's frame until its ack
/// while the driver writes the same allocation, so a message is allocated once and never
/// copied however many times it is written. It reads as a `&str`.
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct FrameText(Arc<str>);

impl FrameText {
    /// The text.
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Deref for FrameText {
    type Target = str;

    fn deref(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for FrameText {
    fn as_ref(&self) -> &str {
        &self.0
    }
}

/// The bytes of the text (UTF-8), so a transport can hand the frame to a byte buffer that
/// shares it (`bytes::Bytes::from_owner`) instead of copying it.
impl AsRef<[u8]> for FrameText {
    fn as_ref(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl From<String> for FrameText {
    fn from(text: String) -> Self {
        FrameText(Arc::from(text))
    }
}

impl From<&str> for FrameText {
    fn from(text: &str) -> Self {
        FrameText(Arc::from(text))
    }
}

impl From<FrameText> for String {
    fn from(text: FrameText) -> Self {
        String::from(&*text.0)
    }
}

impl PartialEq<str> for FrameText {
    fn eq(&self, other: &str) -> bool {
        &*self.0 == other
    }
}

impl PartialEq<&str> for FrameText {
    fn eq(&self, other: &&str) -> bool {
        &*self.0 == *other
    }
}

impl fmt::Debug for FrameText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Debug::fmt(&*self.0, f)
    }
}

impl fmt::Display for FrameText {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_clone_is_the_same_allocation() {
        let a = FrameText::from(String::from(r#"{"type":"ping"}"#));
        let b = a.clone();
        assert!(std::ptr::eq(a.as_str().as_ptr(), b.as_str().as_ptr()));
        assert_eq!(b, r#"{"type":"ping"}"#);
        assert_eq!(format!("{a:?}"), format!("{:?}", r#"{"type":"ping"}"#));
    }
}
