//! Why a request could not be decoded, and which HTTP status answers it.

/// A request the gateway refuses to read further. Every variant maps to one status code
/// ([`HttpError::status`]) and a short plain-text reason ([`HttpError::reason`]); after any of
/// them the connection must be closed, because the framing of what follows is unknown.
#[derive(Debug, thiserror::Error, PartialEq, Eq, Clone)]
pub enum HttpError {
    /// Request line that is not `method SP target SP version`.
    #[error("malformed request line")]
    BadRequestLine,
    /// Method token longer than any method we could serve.
    #[error("request method too long")]
    MethodTooLong,
    /// Request target longer than `Limits::max_uri_bytes`.
    #[error("request target longer than {max} bytes")]
    UriTooLong { max: usize },
    /// Request head (or head plus chunked trailers) longer than `Limits::max_head_bytes`.
    #[error("request head larger than {max} bytes")]
    HeadTooLarge { max: usize },
    /// More header fields than `Limits::max_headers`.
    #[error("more than {max} header fields")]
    TooManyHeaders { max: usize },
    /// httparse rejected the head; the text is its description (e.g. "invalid header name").
    #[error("malformed request head: {0}")]
    BadHead(&'static str),
    /// A line of the head ended with LF alone instead of CRLF (a request-smuggling shape).
    #[error("bare LF line ending in the request head")]
    BareLineFeed,
    /// An HTTP/1.1 request without a `Host` field.
    #[error("missing Host header")]
    MissingHost,
    /// More than one `Host` field.
    #[error("more than one Host header")]
    DuplicateHost,
    /// `HTTP/x.y` other than 1.0 and 1.1.
    #[error("HTTP version not supported")]
    UnsupportedVersion,
    /// Content-Length that is not a plain decimal number.
    #[error("invalid Content-Length")]
    BadContentLength,
    /// Several Content-Length values that disagree.
    #[error("conflicting Content-Length values")]
    ConflictingContentLength,
    /// Both Content-Length and Transfer-Encoding: a request-smuggling shape, refused.
    #[error("both Content-Length and Transfer-Encoding present")]
    LengthAndTransferEncoding,
    /// Transfer-Encoding on an HTTP/1.0 request, where its framing is not defined.
    #[error("Transfer-Encoding in an HTTP/1.0 request")]
    TransferEncodingInHttp10,
    /// A transfer coding other than a single `chunked`.
    #[error("unsupported Transfer-Encoding")]
    UnsupportedTransferEncoding,
    /// Body larger than `Limits::max_body_bytes`.
    #[error("request body larger than {max} bytes")]
    BodyTooLarge { max: usize },
    /// Chunk-size line that is not `1*HEXDIG [ext] CRLF`.
    #[error("invalid chunk size line")]
    BadChunkSize,
    /// Chunk data not followed by CRLF.
    #[error("missing CRLF after chunk data")]
    MissingChunkCrlf,
    /// Trailer section with a bare CR or a control byte.
    #[error("malformed chunked trailer")]
    BadTrailer,
}

impl HttpError {
    /// The status code to answer with.
    pub fn status(&self) -> u16 {
        match self {
            HttpError::UriTooLong { .. } => 414,
            HttpError::HeadTooLarge { .. } | HttpError::TooManyHeaders { .. } => 431,
            HttpError::BodyTooLarge { .. } => 413,
            HttpError::UnsupportedTransferEncoding => 501,
            HttpError::UnsupportedVersion => 505,
            HttpError::BadRequestLine
            | HttpError::MethodTooLong
            | HttpError::BadHead(_)
            | HttpError::BareLineFeed
            | HttpError::MissingHost
            | HttpError::DuplicateHost
            | HttpError::BadContentLength
            | HttpError::ConflictingContentLength
            | HttpError::LengthAndTransferEncoding
            | HttpError::TransferEncodingInHttp10
            | HttpError::BadChunkSize
            | HttpError::MissingChunkCrlf
            | HttpError::BadTrailer => 400,
        }
    }

    /// A short plain-text message saying what was wrong, without limit values (those are in
    /// `Display`), suitable as a response body.
    pub fn reason(&self) -> &str {
        match self {
            HttpError::BadRequestLine => "malformed request line",
            HttpError::MethodTooLong => "request method too long",
            HttpError::UriTooLong { .. } => "request target too long",
            HttpError::HeadTooLarge { .. } => "request head too large",
            HttpError::TooManyHeaders { .. } => "too many header fields",
            HttpError::BadHead(what) => what,
            HttpError::BareLineFeed => "request head lines must end with CRLF, not a bare LF",
            HttpError::MissingHost => "missing Host header (required in HTTP/1.1)",
            HttpError::DuplicateHost => "more than one Host header",
            HttpError::UnsupportedVersion => "HTTP version not supported",
            HttpError::BadContentLength => "invalid Content-Length",
            HttpError::ConflictingContentLength => "conflicting Content-Length values",
            HttpError::LengthAndTransferEncoding => {
                "both Content-Length and Transfer-Encoding present"
            }
            HttpError::TransferEncodingInHttp10 => "Transfer-Encoding in an HTTP/1.0 request",
            HttpError::UnsupportedTransferEncoding => {
                "only Transfer-Encoding: chunked is supported"
            }
            HttpError::BodyTooLarge { .. } => "request body too large",
            HttpError::BadChunkSize => "invalid chunk size line",
            HttpError::MissingChunkCrlf => "missing CRLF after chunk data",
            HttpError::BadTrailer => "malformed chunked trailer",
        }
    }
}
