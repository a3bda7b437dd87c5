//! Why a response could not be read. After any of these the connection is not reused: where
//! the next response would start is unknown.

/// A response the client gave up reading.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum ResponseError {
    /// Status line plus header fields longer than the head limit (16 KiB).
    #[error("response head larger than {max} bytes")]
    HeadTooLarge { max: usize },
    /// More header fields than the limit (64).
    #[error("response has more than {max} header fields")]
    TooManyHeaders { max: usize },
    /// A status line that is not `HTTP/1.x NNN reason`.
    #[error("malformed status line")]
    BadStatusLine,
    /// httparse refused a header field; the text says how (e.g. "invalid header name").
    #[error("malformed response head: {0}")]
    BadHead(&'static str),
    /// `101 Switching Protocols`, which the client never asks for.
    #[error("unexpected 101 Switching Protocols (no upgrade was requested)")]
    UnexpectedUpgrade,
    /// Content-Length that is not a plain decimal number.
    #[error("invalid Content-Length in response")]
    BadContentLength,
    /// Several Content-Length values that disagree.
    #[error("conflicting Content-Length values in response")]
    ConflictingContentLength,
    /// A body (declared or received) longer than the decoder's `max_body`.
    #[error("response body larger than {max} bytes")]
    BodyTooLarge { max: usize },
    /// A chunk-size line that is not `1*HEXDIG [ext] CRLF`.
    #[error("invalid chunk size line in response body")]
    BadChunkSize,
    /// Chunk data not followed by CRLF.
    #[error("missing CRLF after chunk data in response body")]
    MissingChunkCrlf,
    /// A malformed trailer section after the last chunk.
    #[error("malformed trailer after chunked response body")]
    BadTrailer,
    /// Trailers that, with the head, exceed the head limit.
    #[error("response trailers larger than the {max}-byte head limit")]
    TrailersTooLarge { max: usize },
    /// The connection ended before the head was complete (`received` bytes of it had arrived;
    /// 0 means the server closed without answering at all).
    #[error("connection closed after {received} bytes of the response head")]
    EofInHead { received: usize },
    /// The connection ended inside a Content-Length or chunked body.
    #[error("connection closed after {received} bytes of the response body")]
    EofInBody { received: usize },
}
