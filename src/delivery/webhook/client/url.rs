//! A webhook target URL: absolute `http`/`https` only, parsed strictly and normalized, so what
//! is resolved, connected to, sent as `Host` and named in logs is one unambiguous thing.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Longer than any sane webhook URL; bounds what a subscriber can make us store and send.
const MAX_URL: usize = 8 * 1024;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Scheme {
    Http,
    Https,
}

impl Scheme {
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// A parsed webhook URL. The host is lower-cased and without brackets; the fragment is dropped
/// (it is never sent); an empty path is `/`.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Url {
    scheme: Scheme,
    host: String,
    port: u16,
    path_and_query: String,
}

/// Why a webhook URL was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum UrlError {
    #[error("not an absolute URL (expected http://host/path or https://host/path)")]
    NotAbsolute,
    #[error("unsupported scheme {0:?}: only http and https")]
    UnsupportedScheme(String),
    #[error("user info (user:password@) is not allowed in a webhook URL")]
    UserInfo,
    #[error("the URL has no host")]
    EmptyHost,
    #[error("invalid host {0:?} (letters, digits, '-', '.' and '_'; IDNs in punycode)")]
    BadHost(String),
    #[error("ambiguous numeric host {0:?}: write an IPv4 address as four decimal parts")]
    NumericHost(String),
    #[error("invalid IPv6 literal {0:?}")]
    BadIpv6(String),
    #[error("invalid port {0:?} (1-65535)")]
    BadPort(String),
    #[error("the path or query contains {0:?}, which must be percent-encoded")]
    BadPathChar(char),
    #[error("URL longer than {MAX_URL} bytes")]
    TooLong,
}

impl Url {
    pub fn parse(input: &str) -> Result<Url, UrlError> {
        if input.len() > MAX_URL {
            return Err(UrlError::TooLong);
        }
        let (scheme, rest) = input.split_once("://").ok_or(UrlError::NotAbsolute)?;
        let scheme = match scheme.to_ascii_lowercase().as_str() {
            "http" => Scheme::Http,
            "https" => Scheme::Https,
            "" => return Err(UrlError::NotAbsolute),
            _ => return Err(UrlError::UnsupportedScheme(scheme.to_owned())),
        };
        let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
        let (authority, tail) = rest.split_at(end);
        if authority.contains('@') {
            return Err(UrlError::UserInfo);
        }
        let (host, port) = split_host_port(authority)?;
        let port = match port {
            None | Some("") => scheme.default_port(),
            Some(p) => parse_port(p)?,
        };
        let target = tail.split_once('#').map_or(tail, |(before, _)| before);
        if let Some(bad) = target.chars().find(|c| !matches!(c, '!'..='~')) {
            return Err(UrlError::BadPathChar(bad));
        }
        let path_and_query = match target.as_bytes().first() {
            None => "/".to_owned(),
            Some(b'?') => format!("/{target}"),
            Some(_) => target.to_owned(),
        };
        Ok(Url {
            scheme,
            host,
            port,
            path_and_query,
        })
    }

    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host as resolved and as the TLS server name: lower-case, IPv6 without brackets.
    pub fn host(&self) -> &str {
        &self.host
    }

    pub fn port(&self) -> u16 {
        self.port
    }

    /// The request target: path (at least `/`) and query.
    pub fn path_and_query(&self) -> &str {
        &self.path_and_query
    }

    /// The host when it is an IP literal (no DNS lookup then).
    pub fn ip(&self) -> Option<IpAddr> {
        self.host.parse().ok()
    }

    /// The `Host` header: the host (IPv6 in brackets), and the port unless it is the default.
    pub fn host_header(&self) -> String {
        let mut out = self.bracketed_host();
        if self.port != self.scheme.default_port() {
            out.push(':');
            out.push_str(&self.port.to_string());
        }
        out
    }

    fn bracketed_host(&self) -> String {
        if self.host.contains(':') {
            format!("[{}]", self.host)
        } else {
            self.host.clone()
        }
    }
}

impl fmt::Display for Url {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let scheme = self.scheme.as_str();
        write!(
            f,
            "{scheme}://{}{}",
            self.host_header(),
            self.path_and_query
        )
    }
}

/// Split `host[:port]` or `[v6][:port]`; the host comes back validated and lower-cased.
fn split_host_port(authority: &str) -> Result<(String, Option<&str>), UrlError> {
    if let Some(bracketed) = authority.strip_prefix('[') {
        let (literal, after) = bracketed
            .split_once(']')
            .ok_or_else(|| UrlError::BadIpv6(authority.to_owned()))?;
        // No zone ids (`%25eth0`): a zone only means something on a link-local address, and
        // those are refused anyway.
        let ip: Ipv6Addr = literal
            .parse()
            .map_err(|_| UrlError::BadIpv6(literal.to_owned()))?;
        let port = match after {
            "" => None,
            _ => Some(
                after
                    .strip_prefix(':')
                    .ok_or_else(|| UrlError::BadPort(after.to_owned()))?,
            ),
        };
        return Ok((ip.to_string(), port));
    }
    let (host, port) = match authority.split_once(':') {
        Some((h, p)) => (h, Some(p)),
        None => (authority, None),
    };
    Ok((check_host(host)?, port))
}

fn check_host(host: &str) -> Result<String, UrlError> {
    if host.is_empty() {
        return Err(UrlError::EmptyHost);
    }
    let valid = |c: char| c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_');
    if !host.chars().all(valid) || host.starts_with('.') || host.contains("..") {
        return Err(UrlError::BadHost(host.to_owned()));
    }
    let host = host.to_ascii_lowercase();
    // The resolver reads "127.1", "2130706433" and "0x7f.1" as IPv4 addresses (inet_aton); the
    // SSRF check would catch what they resolve to, but a URL should say plainly where it goes.
    let last = host.trim_end_matches('.').rsplit('.').next().unwrap_or("");
    let numeric =
        !last.is_empty() && (last.bytes().all(|b| b.is_ascii_digit()) || last.starts_with("0x"));
    if numeric && host.parse::<Ipv4Addr>().is_err() {
        return Err(UrlError::NumericHost(host));
    }
    Ok(host)
}

fn parse_port(p: &str) -> Result<u16, UrlError> {
    let bad = || UrlError::BadPort(p.to_owned());
    if !p.bytes().all(|b| b.is_ascii_digit()) {
        return Err(bad());
    }
    match p.parse::<u16>() {
        Ok(0) | Err(_) => Err(bad()),
        Ok(n) => Ok(n),
    }
}

#[cfg(test)]
mod tests;
