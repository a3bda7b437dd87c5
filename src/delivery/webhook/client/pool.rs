//! Idle keep-alive connections per origin, with an age limit. Pure bookkeeping (generic over
//! the connection, with `now` passed in), so it is tested without sockets.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use super::url::{Scheme, Url};

/// Where a connection goes: connections are only reused for the same scheme, host and port.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub(super) struct Origin {
    scheme: Scheme,
    host: String,
    port: u16,
}

impl Origin {
    pub(super) fn of(url: &Url) -> Origin {
        Origin {
            scheme: url.scheme(),
            host: url.host().to_owned(),
            port: url.port(),
        }
    }
}

/// Idle connections by origin, newest last.
pub(super) struct Pool<C> {
    idle: HashMap<Origin, Vec<(C, Instant)>>,
    idle_timeout: Duration,
    max_per_origin: usize,
    last_sweep: Option<Instant>,
}

impl<C> Pool<C> {
    pub(super) fn new(idle_timeout: Duration, max_per_origin: usize) -> Self {
        Pool {
            idle: HashMap::new(),
            idle_timeout,
            max_per_origin,
            last_sweep: None,
        }
    }

    /// The most recently used idle connection to `origin` that is not too old. Older ones are
    /// dropped on the way (closing them).
    pub(super) fn take(&mut self, origin: &Origin, now: Instant) -> Option<C> {
        self.sweep_if_due(now);
        let list = self.idle.get_mut(origin)?;
        let found = loop {
            match list.pop() {
                Some((conn, since)) if now.saturating_duration_since(since) < self.idle_timeout => {
                    break Some(conn)
                }
                Some(_) => continue,
                None => break None,
            }
        };
        if list.is_empty() {
            self.idle.remove(origin);
        }
        found
    }

    /// Keep `conn` for the next request to `origin`, unless that origin has enough idle ones.
    pub(super) fn put(&mut self, origin: Origin, conn: C, now: Instant) {
        self.sweep_if_due(now);
        let list = self.idle.entry(origin).or_default();
        if list.len() < self.max_per_origin {
            list.push((conn, now));
        }
    }

    /// Idle connections across all origins.
    #[cfg(test)]
    pub(super) fn idle_count(&self) -> usize {
        self.idle.values().map(Vec::len).sum()
    }

    /// Drop expired connections of every origin, at most once per half idle timeout, so a
    /// receiver that is never called again does not keep a socket open for ever.
    fn sweep_if_due(&mut self, now: Instant) {
        let due = self
            .last_sweep
            .is_none_or(|t| now.saturating_duration_since(t) >= self.idle_timeout / 2);
        if !due {
            return;
        }
        self.last_sweep = Some(now);
        let timeout = self.idle_timeout;
        self.idle.retain(|_, list| {
            list.retain(|(_, since)| now.saturating_duration_since(*since) < timeout);
            !list.is_empty()
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn origin(host: &str) -> Origin {
        Origin::of(&Url::parse(&format!("http://{host}/")).unwrap())
    }

    #[test]
    fn reuses_newest_first_per_origin() {
        let t0 = Instant::now();
        let mut pool = Pool::new(Duration::from_secs(60), 4);
        pool.put(origin("a"), 1, t0);
        pool.put(origin("a"), 2, t0);
        pool.put(origin("b"), 3, t0);
        assert_eq!(pool.take(&origin("a"), t0), Some(2));
        assert_eq!(pool.take(&origin("a"), t0), Some(1));
        assert_eq!(pool.take(&origin("a"), t0), None);
        assert_eq!(pool.take(&origin("b"), t0), Some(3));
    }

    #[test]
    fn origins_differ_by_scheme_and_port() {
        let t0 = Instant::now();
        let mut pool = Pool::new(Duration::from_secs(60), 4);
        pool.put(origin("a"), 1, t0);
        let https = Origin::of(&Url::parse("https://a/").unwrap());
        assert_eq!(pool.take(&https, t0), None);
        assert_eq!(pool.take(&origin("a:81"), t0), None);
        assert_eq!(pool.take(&origin("a:80"), t0), Some(1));
    }

    #[test]
    fn expired_connections_are_dropped() {
        let t0 = Instant::now();
        let mut pool = Pool::new(Duration::from_secs(10), 4);
        pool.put(origin("a"), 1, t0);
        pool.put(origin("b"), 2, t0 + Duration::from_secs(5));
        assert_eq!(pool.take(&origin("a"), t0 + Duration::from_secs(10)), None);
        // The sweep on that take left b alone: it was 5 s old, still fresh.
        assert_eq!(pool.idle_count(), 1);
        assert_eq!(
            pool.take(&origin("b"), t0 + Duration::from_secs(12)),
            Some(2)
        );
    }

    #[test]
    fn the_sweep_closes_idle_connections_of_other_origins() {
        let t0 = Instant::now();
        let mut pool = Pool::new(Duration::from_secs(10), 4);
        pool.put(origin("a"), 1, t0);
        pool.put(origin("b"), 2, t0 + Duration::from_secs(11));
        assert_eq!(pool.idle_count(), 1, "a expired and was swept");
    }

    #[test]
    fn at_most_max_per_origin_are_kept() {
        let t0 = Instant::now();
        let mut pool = Pool::new(Duration::from_secs(60), 2);
        for i in 0..5 {
            pool.put(origin("a"), i, t0);
        }
        assert_eq!(pool.idle_count(), 2);
    }
}
