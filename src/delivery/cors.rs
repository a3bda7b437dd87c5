//! CORS: which request origins may read this gateway's answers from a browser, and the headers
//! that say so (pure; no I/O).
use crate::codec::http1::Request;
use crate::config::HttpConfig;

/// The CORS headers one answer carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Cors<'a> {
    /// `Access-Control-Allow-Origin`: `*` or the request's own (listed) origin.
    pub origin: &'a str,
    /// `Access-Control-Allow-Credentials: true` (never with `*`).
    pub credentials: bool,
}

impl<'a> Cors<'a> {
    /// The answer to a request from `origin` (its `Origin` header), or `None` when it gets no
    /// CORS headers: CORS is off, or the origin is not listed.
    pub fn for_origin(cfg: &'a HttpConfig, origin: Option<&'a str>) -> Option<Self> {
        let allowed = &cfg.cors_allow_origins;
        if allowed.iter().any(|o| o == "*") {
            return Some(Cors {
                origin: "*",
                credentials: false,
            });
        }
        let origin = origin?;
        allowed.iter().any(|o| o == origin).then_some(Cors {
            origin,
            credentials: cfg.cors_allow_credentials,
        })
    }

    /// The answer to `req`.
    pub fn for_request(cfg: &'a HttpConfig, req: &'a Request) -> Option<Self> {
        Self::for_origin(cfg, req.header_str("origin"))
    }

    /// Append the headers as `(name, value)` pairs. An echoed origin also sends
    /// `Vary: Origin`, so a shared cache does not hand one origin's answer to another.
    pub fn push_headers(&self, headers: &mut Vec<(&'a str, &'a str)>) {
        headers.push(("access-control-allow-origin", self.origin));
        if self.credentials {
            headers.push(("access-control-allow-credentials", "true"));
        }
        if self.origin != "*" {
            headers.push(("vary", "Origin"));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(origins: &[&str], credentials: bool) -> HttpConfig {
        HttpConfig {
            cors_allow_origins: origins.iter().map(|o| (*o).to_owned()).collect(),
            cors_allow_credentials: credentials,
            ..HttpConfig::default()
        }
    }

    #[test]
    fn off_star_listed_and_unlisted() {
        assert_eq!(Cors::for_origin(&cfg(&[], false), Some("https://a")), None);
        let star = cfg(&["*"], false);
        assert_eq!(Cors::for_origin(&star, None).map(|c| c.origin), Some("*"));
        let listed = cfg(&["https://a", "https://b"], true);
        let b = Cors::for_origin(&listed, Some("https://b"));
        assert_eq!(
            b,
            Some(Cors {
                origin: "https://b",
                credentials: true
            })
        );
        assert_eq!(Cors::for_origin(&listed, Some("https://evil")), None);
        assert_eq!(Cors::for_origin(&listed, None), None);
        let mut headers = Vec::new();
        b.into_iter().for_each(|c| c.push_headers(&mut headers));
        assert!(headers.contains(&("vary", "Origin")));
        assert!(headers.contains(&("access-control-allow-credentials", "true")));
    }
}
