use serde::{Deserialize, Serialize};

/// Why a text frame could not be decoded.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.message())]
pub enum ProtocolError {
    /// The frame is not a JSON object of the envelope's shape.
    Malformed(String),
    /// The envelope is fine but `data` does not fit the message type.
    InvalidData {
        /// The message `type`.
        kind: String,
        /// What is wrong, as serde saw it.
        message: String,
    },
}

impl ProtocolError {
    /// What is wrong, in words (what `Display` writes, without `core::fmt`).
    pub fn message(&self) -> String {
        match self {
            ProtocolError::Malformed(why) => ["malformed frame: ", why].concat(),
            ProtocolError::InvalidData { kind, message } => {
                ["invalid data for `", kind, "`: ", message].concat()
            }
        }
    }
}

/// The `code` of an `error` frame.
///
/// Unknown codes from a newer server decode to [`ErrorCode::Other`] rather than failing.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(from = "String", into = "String")]
pub enum ErrorCode {
    /// The frame was malformed or its data did not fit its type.
    InvalidMessage,
    /// The server does not know the message type.
    UnknownType,
    /// Over the rate limit: the message was not processed; retry after `retryAfterMs`.
    RateLimited,
    /// The frame was over the server's size limit.
    TooLarge,
    /// Authentication is missing or no longer valid.
    Unauthorized,
    /// The user may not do this.
    Forbidden,
    /// The target (draft, pitch, channel) does not exist.
    NotFound,
    /// The server failed.
    Internal,
    /// A code this version does not know.
    Other(String),
}

impl ErrorCode {
    /// The wire spelling.
    pub fn as_str(&self) -> &str {
        match self {
            ErrorCode::InvalidMessage => "invalid_message",
            ErrorCode::UnknownType => "unknown_type",
            ErrorCode::RateLimited => "rate_limited",
            ErrorCode::TooLarge => "too_large",
            ErrorCode::Unauthorized => "unauthorized",
            ErrorCode::Forbidden => "forbidden",
            ErrorCode::NotFound => "not_found",
            ErrorCode::Internal => "internal",
            ErrorCode::Other(s) => s,
        }
    }
}

impl From<String> for ErrorCode {
    fn from(s: String) -> Self {
        match s.as_str() {
            "invalid_message" => ErrorCode::InvalidMessage,
            "unknown_type" => ErrorCode::UnknownType,
            "rate_limited" => ErrorCode::RateLimited,
            "too_large" => ErrorCode::TooLarge,
            "unauthorized" => ErrorCode::Unauthorized,
            "forbidden" => ErrorCode::Forbidden,
            "not_found" => ErrorCode::NotFound,
            "internal" => ErrorCode::Internal,
            _ => ErrorCode::Other(s),
        }
    }
}

impl From<ErrorCode> for String {
    fn from(c: ErrorCode) -> Self {
        c.as_str().to_owned()
    }
}

impl std::fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}
