//! A plain HTTP answer, and the headers every answer of this gateway carries.
use super::cors::Cors;
use crate::codec::http1::{write_error, write_response, write_response_head, HttpError};

/// A complete (non-streaming) response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub content_type: &'static str,
    pub body: Vec<u8>,
    pub headers: Vec<(&'static str, String)>,
    /// The answer to a `HEAD` request: headers (with the body's length) but no body.
    pub head_only: bool,
}

impl Response {
    pub fn new(status: u16, content_type: &'static str, body: impl Into<Vec<u8>>) -> Self {
        Self {
            status,
            content_type,
            body: body.into(),
            headers: Vec::new(),
            head_only: false,
        }
    }

    /// A short plain-text answer, e.g. an error saying what was wrong.
    pub fn text(status: u16, message: impl Into<String>) -> Self {
        let mut body = message.into().into_bytes();
        body.push(b'\n');
        Self::new(status, "text/plain; charset=utf-8", body)
    }

    pub fn json(status: u16, body: String) -> Self {
        Self::new(status, "application/json", body)
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The body as text, without the trailing line break (for answers carried in another
    /// protocol, e.g. a WebSocket error message).
    pub fn text_body(&self) -> String {
        String::from_utf8_lossy(&self.body).trim_end().to_owned()
    }

    /// Answer a `HEAD` request: the same status and headers, no body.
    pub fn for_head(mut self) -> Self {
        self.head_only = true;
        self
    }

    /// Serialize, adding the shard header and, for an allowed origin, CORS.
    pub fn write(&self, out: &mut Vec<u8>, shard: usize, cors: Option<Cors<'_>>, keep_alive: bool) {
        let shard = shard.to_string();
        let mut headers: Vec<(&str, &str)> =
            self.headers.iter().map(|(n, v)| (*n, v.as_str())).collect();
        headers.push(("x-sluicegate-shard", &shard));
        if let Some(cors) = &cors {
            cors.push_headers(&mut headers);
        }
        if self.head_only {
            write_response_head(
                out,
                self.status,
                self.content_type,
                &headers,
                self.body.len(),
                keep_alive,
            );
        } else {
            write_response(
                out,
                self.status,
                self.content_type,
                &headers,
                &self.body,
                keep_alive,
            );
        }
    }
}

/// The answer to a request that could not be read; the connection closes after it.
pub fn write_bad_request(out: &mut Vec<u8>, err: &HttpError) {
    write_error(out, err);
}

/// The head of an SSE response. The body runs until the connection closes (no length, no
/// chunking), so every subscriber gets exactly the shared frame bytes.
pub fn sse_head(shard: usize, cors: Option<Cors<'_>>) -> Vec<u8> {
    let mut head = format!(
        "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
         x-accel-buffering: no\r\nconnection: close\r\nx-sluicegate-shard: {shard}\r\n"
    );
    let mut headers = Vec::new();
    if let Some(cors) = &cors {
        cors.push_headers(&mut headers);
    }
    for (name, value) in headers {
        head.push_str(name);
        head.push_str(": ");
        head.push_str(value);
        head.push_str("\r\n");
    }
    head.push_str("\r\n");
    head.into_bytes()
}
