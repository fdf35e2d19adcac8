/// WebSocket close codes used by `pitchey-v1`, with what a client should do after each.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CloseCode {
    /// 1000: normal closure.
    Normal,
    /// 1001: the server is going away (shutdown or restart): reconnect.
    GoingAway,
    /// 1009: frame too big (WebSocket level).
    MessageTooBig,
    /// 4001: token missing, invalid or expired: get a new token before retrying.
    Unauthorized,
    /// 4003: forbidden.
    Forbidden,
    /// 4008: policy or rate-limit violation.
    PolicyViolation,
    /// 4009: message too large (application level).
    TooLarge,
    /// Any other code.
    Other(u16),
}

impl CloseCode {
    /// The numeric code.
    pub fn code(self) -> u16 {
        match self {
            CloseCode::Normal => 1000,
            CloseCode::GoingAway => 1001,
            CloseCode::MessageTooBig => 1009,
            CloseCode::Unauthorized => 4001,
            CloseCode::Forbidden => 4003,
            CloseCode::PolicyViolation => 4008,
            CloseCode::TooLarge => 4009,
            CloseCode::Other(c) => c,
        }
    }

    /// True when retrying with the same token is pointless: a new token is needed first.
    pub fn needs_new_token(self) -> bool {
        matches!(self, CloseCode::Unauthorized)
    }
}

impl From<u16> for CloseCode {
    fn from(c: u16) -> Self {
        match c {
            1000 => CloseCode::Normal,
            1001 => CloseCode::GoingAway,
            1009 => CloseCode::MessageTooBig,
            4001 => CloseCode::Unauthorized,
            4003 => CloseCode::Forbidden,
            4008 => CloseCode::PolicyViolation,
            4009 => CloseCode::TooLarge,
            other => CloseCode::Other(other),
        }
    }
}

impl From<CloseCode> for u16 {
    fn from(c: CloseCode) -> u16 {
        c.code()
    }
}
