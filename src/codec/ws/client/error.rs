//! Why a client's frames are refused, and the close code that answers each reason.

use tungstenite::error::{CapacityError, Error, ProtocolError};

/// A client frame that breaks RFC 6455 or a limit; the connection must be closed with
/// [`ClientError::close_code`].
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ClientError {
    /// A protocol violation (1002); the text says which.
    #[error("protocol error: {0}")]
    Protocol(&'static str),
    /// A text message, or a close reason, that is not UTF-8 (1007).
    #[error("invalid UTF-8 in a text message or close reason")]
    InvalidUtf8,
    /// A frame or a message over its limit (1009).
    #[error("message of {size} bytes exceeds the limit of {max}")]
    TooBig {
        /// Size declared or reached.
        size: usize,
        /// The limit it broke.
        max: usize,
    },
    /// Something tungstenite reported that the in-memory buffers cannot cause (1011).
    #[error("internal error: {0}")]
    Internal(String),
}

impl ClientError {
    /// The close code to send (RFC 6455 §7.4.1).
    pub fn close_code(&self) -> u16 {
        match self {
            ClientError::Protocol(_) => 1002,
            ClientError::InvalidUtf8 => 1007,
            ClientError::TooBig { .. } => 1009,
            ClientError::Internal(_) => 1011,
        }
    }

    /// A short reason for the close frame (always within the 123 bytes it has room for).
    pub fn reason(&self) -> &str {
        match self {
            ClientError::Protocol(what) => what,
            ClientError::InvalidUtf8 => "invalid UTF-8",
            ClientError::TooBig { .. } => "message too big",
            ClientError::Internal(_) => "internal error",
        }
    }
}

/// Which close code a tungstenite error calls for.
pub(super) fn map_error(e: Error) -> ClientError {
    match e {
        Error::Utf8(_) => ClientError::InvalidUtf8,
        Error::Capacity(CapacityError::MessageTooLong { size, max_size }) => ClientError::TooBig {
            size,
            max: max_size,
        },
        Error::Protocol(p) => ClientError::Protocol(protocol_reason(&p)),
        other => ClientError::Internal(other.to_string()),
    }
}

/// A short close reason for each frame-level protocol violation.
fn protocol_reason(p: &ProtocolError) -> &'static str {
    match p {
        ProtocolError::NonZeroReservedBits => "reserved bits set",
        ProtocolError::UnmaskedFrameFromClient => "unmasked client frame",
        ProtocolError::FragmentedControlFrame => "fragmented control frame",
        ProtocolError::ControlFrameTooBig => "control frame over 125 bytes",
        ProtocolError::UnknownControlFrameType(_)
        | ProtocolError::UnknownDataFrameType(_)
        | ProtocolError::InvalidOpcode(_) => "reserved opcode",
        ProtocolError::UnexpectedContinueFrame => "continuation frame outside a message",
        ProtocolError::ExpectedFragment(_) => "new message inside a fragmented one",
        ProtocolError::InvalidCloseSequence => "close payload of one byte",
        ProtocolError::ReceivedAfterClosing => "frame after close",
        _ => "protocol violation",
    }
}
