//! Reads CPU time and resident memory of a process tree from `/proc`, so the report can say what
//! the server (all of its processes: Pushpin runs several) and the load tool itself consumed.

use std::fs;

/// Clock ticks per second of `/proc/<pid>/stat` times. Linux reports `USER_HZ`, which is 100 on
/// every architecture this tool targets (it is a fixed kernel ABI value, not `CONFIG_HZ`).
const TICKS_PER_SEC: f64 = 100.0;
const PAGE_BYTES: u64 = 4096;

/// CPU seconds (user + system) and RSS bytes of a set of processes at one moment.
#[derive(Clone, Copy, Debug, Default, PartialEq)]
pub struct Usage {
    pub cpu_s: f64,
    pub rss_bytes: u64,
    pub processes: usize,
}

/// The fields of `/proc/<pid>/stat` this tool needs.
struct Stat {
    ppid: u32,
    ticks: u64,
    rss_pages: u64,
}

/// Parses one `stat` line; the command name is in parentheses and may hold spaces, so fields
/// are counted after the last `)`.
fn parse_stat(text: &str) -> Option<Stat> {
    let rest = text.get(text.rfind(')')? + 1..)?;
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After ")": state(3) ppid(4) ... utime(14) stime(15) ... rss(24); index = field - 3.
    let ppid = fields.get(1)?.parse().ok()?;
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    let rss_pages = fields.get(21)?.parse().ok()?;
    Some(Stat {
        ppid,
        ticks: utime + stime,
        rss_pages,
    })
}

fn read_stat(pid: u32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Every live process with its parent, from one scan of `/proc`.
fn all_processes() -> Vec<(u32, Stat)> {
    let Ok(dir) = fs::read_dir("/proc") else {
        return Vec::new();
    };
    dir.filter_map(|e| e.ok()?.file_name().to_str()?.parse::<u32>().ok())
        .filter_map(|pid| Some((pid, read_stat(pid)?)))
        .collect()
}

/// `roots` and all their descendants' pids (threads are inside their process).
pub fn tree_pids(roots: &[u32]) -> Vec<u32> {
    members(&all_processes(), roots)
}

fn members(procs: &[(u32, Stat)], roots: &[u32]) -> Vec<u32> {
    let mut members: Vec<u32> = roots.to_vec();
    // Breadth-first over the parent links; bounded by the number of processes.
    let mut i = 0;
    while i < members.len() {
        let parent = members[i];
        for (pid, st) in procs {
            if st.ppid == parent && !members.contains(pid) {
                members.push(*pid);
            }
        }
        i += 1;
    }
    members
}

/// Usage summed over `roots` and all their descendants (threads are inside their process).
pub fn tree_usage(roots: &[u32]) -> Usage {
    let procs = all_processes();
    let members = members(&procs, roots);
    let mut u = Usage::default();
    for (pid, st) in &procs {
        if members.contains(pid) {
            u.cpu_s += st.ticks as f64 / TICKS_PER_SEC;
            u.rss_bytes += st.rss_pages * PAGE_BYTES;
            u.processes += 1;
        }
    }
    u
}

/// This process's own usage.
pub fn self_usage() -> Usage {
    match fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|t| parse_stat(&t))
    {
        Some(st) => Usage {
            cpu_s: st.ticks as f64 / TICKS_PER_SEC,
            rss_bytes: st.rss_pages * PAGE_BYTES,
            processes: 1,
        },
        None => Usage::default(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_stat_line_with_spaces_in_the_name() {
        let line = "1234 (my (odd) name) S 1 1234 1234 0 -1 4194560 100 0 0 0 250 50 0 0 20 0 \
                    3 0 100 1000000 512 18446744073709551615";
        let st = parse_stat(line).expect("valid line");
        assert_eq!(st.ppid, 1);
        assert_eq!(st.ticks, 300);
        assert_eq!(st.rss_pages, 512);
    }

    #[test]
    fn rejects_a_truncated_line() {
        assert!(parse_stat("12 (x) S 1 2").is_none());
    }

    #[test]
    fn sees_itself() {
        let u = tree_usage(&[std::process::id()]);
        assert!(u.processes >= 1);
        assert!(u.rss_bytes > 0);
    }
}
