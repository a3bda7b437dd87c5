//! `loadtest webhook-sink`: a webhook receiver for delivery benchmarks. One thread, mio, any
//! number of keep-alive HTTP/1.1 connections; every complete request is answered with
//! `--status` and `content-length: 0` and counted, and the send time the publisher wrote into
//! the event (`loadtest webhook-pub`, ns since the Unix epoch) gives publish-to-receipt latency.
//!
//! `--blackhole` reads and counts requests but never answers (a hung receiver: every attempt
//! runs into the sender's timeout). The report is one JSON line on stdout at the end
//! (`--duration`, SIGTERM, SIGINT, or EOF on stdin with `--control`); with `--control`, the
//! stdin lines `peek` (report) and `snap` (report, then start counting afresh) ask for one
//! in between, so a driver script can measure rate steps without restarting the sink.
//! Each connection costs a descriptor: 10,000 webhook subscriptions can mean thousands of
//! connections, so run it with `ulimit -n` well above that (the bench script raises it).

use std::ffi::OsString;
use std::io::{self, BufRead, Read, Write};
use std::net::SocketAddr;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{mpsc, Arc};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::Parser;
use mio::net::{TcpListener, TcpStream};
use mio::{Events, Interest, Poll, Token, Waker};

use crate::sinkhttp::{parse_request, send_stamp};
use crate::sinkstats::Stats;

/// Webhook receiver. Example: `loadtest webhook-sink --listen 127.0.0.1:9000 --control`.
#[derive(Parser, Debug)]
#[command(name = "loadtest webhook-sink")]
pub struct SinkArgs {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:9000")]
    listen: SocketAddr,
    /// Status of every answer.
    #[arg(long, default_value_t = 200)]
    status: u16,
    /// Never answer (requests are still read and counted).
    #[arg(long)]
    blackhole: bool,
    /// Stop after this many seconds (0: at a signal, or EOF on stdin with --control).
    #[arg(long, default_value_t = 0.0)]
    duration: f64,
    /// Take `peek` / `snap` lines on stdin (each answered with a JSON line on stdout).
    #[arg(long)]
    control: bool,
}

const LISTENER: Token = Token(0);
const WAKER: Token = Token(1);
/// Connection `i` is `Token(FIRST_CONN + i)`.
const FIRST_CONN: usize = 2;

/// A stdin command.
enum Command {
    Peek,
    Snap,
    Quit,
}

struct Conn {
    stream: TcpStream,
    inbuf: Vec<u8>,
    out: Vec<u8>,
    written: usize,
    /// The last request asked for `Connection: close`: close once `out` is written.
    close_after: bool,
}

/// Runs `loadtest webhook-sink ARGS` (`args` starts with the subcommand's name).
pub fn main(args: impl IntoIterator<Item = OsString>) -> ExitCode {
    let a: SinkArgs = match crate::subcommand::parse(args) {
        Ok(a) => a,
        Err(code) => return code,
    };
    match run(&a) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("loadtest webhook-sink: {e}");
            ExitCode::FAILURE
        }
    }
}

pub fn now_epoch_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}

fn run(a: &SinkArgs) -> Result<(), String> {
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGTERM, signal_hook::consts::SIGINT] {
        signal_hook::flag::register(sig, stop.clone()).map_err(|e| format!("signal: {e}"))?;
    }
    let mut poll = Poll::new().map_err(|e| format!("poll: {e}"))?;
    let mut listener = listen(a.listen).map_err(|e| format!("listen on {}: {e}", a.listen))?;
    poll.registry()
        .register(&mut listener, LISTENER, Interest::READABLE)
        .map_err(|e| format!("register: {e}"))?;
    let waker = Arc::new(Waker::new(poll.registry(), WAKER).map_err(|e| format!("waker: {e}"))?);
    let (tx, commands) = mpsc::channel();
    if a.control {
        let waker = waker.clone();
        std::thread::spawn(move || read_commands(&tx, &waker));
    }
    let reason = if a.status == 200 { "OK" } else { "Status" };
    let answer = format!(
        "HTTP/1.1 {} {reason}\r\ncontent-length: 0\r\n\r\n",
        a.status
    );
    let answer = (!a.blackhole).then_some(answer.as_bytes());
    let mode = if a.blackhole { "blackhole" } else { "answer" };
    let deadline = (a.duration > 0.0)
        .then(|| Instant::now() + Duration::from_secs_f64(a.duration.min(86_400.0)));

    let mut events = Events::with_capacity(4096);
    let mut conns: Vec<Option<Conn>> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let mut stats = Stats::new();
    let mut buf = vec![0u8; 256 * 1024];
    loop {
        // The timeout only bounds how late a signal or the deadline is noticed.
        match poll.poll(&mut events, Some(Duration::from_millis(100))) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(format!("poll: {e}")),
        }
        for ev in events.iter() {
            match ev.token() {
                LISTENER => accept(&listener, &poll, &mut conns, &mut free, &mut stats),
                WAKER => {}
                Token(t) => {
                    let i = t - FIRST_CONN;
                    let Some(Some(c)) = conns.get_mut(i) else {
                        continue;
                    };
                    if !serve(c, &mut buf, answer, &mut stats) {
                        if let Some(mut c) = conns[i].take() {
                            let _ = poll.registry().deregister(&mut c.stream);
                        }
                        free.push(i);
                        stats.on_close();
                    }
                }
            }
        }
        while let Ok(cmd) = commands.try_recv() {
            match cmd {
                Command::Peek => print_report(&stats, mode)?,
                Command::Snap => {
                    print_report(&stats, mode)?;
                    stats.reset();
                }
                Command::Quit => stop.store(true, Ordering::Relaxed),
            }
        }
        if stop.load(Ordering::Relaxed) || deadline.is_some_and(|d| Instant::now() >= d) {
            return print_report(&stats, mode);
        }
    }
}

/// A listener with the longest accept queue the kernel allows (`net.core.somaxconn` caps it):
/// a gateway opening thousands of connections at once overflows mio's 1024, and the dropped
/// handshakes would be the tool's doing, not the gateway's.
fn listen(addr: SocketAddr) -> io::Result<TcpListener> {
    use socket2::{Domain, Socket, Type};
    let s = Socket::new(Domain::for_address(addr), Type::STREAM, None)?;
    s.set_reuse_address(true)?;
    s.set_nonblocking(true)?;
    s.bind(&addr.into())?;
    s.listen(65_535)?;
    Ok(TcpListener::from_std(s.into()))
}

fn print_report(stats: &Stats, mode: &'static str) -> Result<(), String> {
    let line = serde_json::to_string(&stats.report(mode)).map_err(|e| format!("json: {e}"))?;
    let mut out = io::stdout().lock();
    writeln!(out, "{line}")
        .and_then(|()| out.flush())
        .map_err(|e| format!("stdout: {e}"))
}

fn read_commands(tx: &mpsc::Sender<Command>, waker: &Waker) {
    for line in io::stdin().lock().lines() {
        let cmd = match line.as_deref().map(str::trim) {
            Ok("peek") => Command::Peek,
            Ok("snap") => Command::Snap,
            Ok(other) => {
                eprintln!("loadtest webhook-sink: unknown command {other:?} (peek, snap)");
                continue;
            }
            Err(_) => break,
        };
        if tx.send(cmd).is_err() || waker.wake().is_err() {
            return;
        }
    }
    let _ = tx.send(Command::Quit);
    let _ = waker.wake();
}

fn accept(
    listener: &TcpListener,
    poll: &Poll,
    conns: &mut Vec<Option<Conn>>,
    free: &mut Vec<usize>,
    stats: &mut Stats,
) {
    loop {
        let mut stream = match listener.accept() {
            Ok((s, _)) => s,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => return,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => {
                // EMFILE and the like: counted; the pending connection waits for a free slot.
                stats.accept_errors += 1;
                if stats.first_error.is_none() {
                    stats.first_error = Some(format!("accept: {e}"));
                }
                return;
            }
        };
        let _ = stream.set_nodelay(true);
        let i = free.pop().unwrap_or_else(|| {
            conns.push(None);
            conns.len() - 1
        });
        let registered = poll.registry().register(
            &mut stream,
            Token(FIRST_CONN + i),
            Interest::READABLE | Interest::WRITABLE,
        );
        if registered.is_err() {
            free.push(i);
            continue;
        }
        conns[i] = Some(Conn {
            stream,
            inbuf: Vec::new(),
            out: Vec::new(),
            written: 0,
            close_after: false,
        });
        stats.on_accept();
    }
}

/// Reads what arrived, answers every complete request, writes what is pending; `false` when
/// the connection is finished (closed by the peer, an error, or after `Connection: close`).
fn serve(c: &mut Conn, buf: &mut [u8], answer: Option<&[u8]>, stats: &mut Stats) -> bool {
    let mut peer_closed = false;
    loop {
        match c.stream.read(buf) {
            Ok(0) => {
                peer_closed = true;
                break;
            }
            Ok(n) => c.inbuf.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    let mut at = 0;
    let now_ns = now_epoch_ns();
    while !c.close_after {
        match parse_request(&c.inbuf[at..]) {
            Ok(Some(req)) => {
                let body = &c.inbuf[at + req.head_len..at + req.total()];
                stats.record(req.total(), body.len(), send_stamp(body), now_ns);
                if let Some(answer) = answer {
                    c.out.extend_from_slice(answer);
                }
                c.close_after = req.close;
                at += req.total();
            }
            Ok(None) => break,
            Err(e) => {
                stats.bad_requests += 1;
                if stats.first_error.is_none() {
                    stats.first_error = Some(e);
                }
                return false;
            }
        }
    }
    c.inbuf.drain(..at);
    while c.written < c.out.len() {
        match c.stream.write(&c.out[c.written..]) {
            Ok(0) => return false,
            Ok(n) => c.written += n,
            Err(e) if e.kind() == io::ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(_) => return false,
        }
    }
    if c.written == c.out.len() {
        c.out.clear();
        c.written = 0;
        if c.close_after {
            return false;
        }
    }
    !peer_closed
}
