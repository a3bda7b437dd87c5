//! Vectored, non-blocking socket writes: many queued frames in one system call.
//!
//! glommio's `TcpStream` writes one buffer per call; an SSE connection with K frames pending
//! would pay K system calls (~5 µs each on loopback here). `sendmsg` with an iovec per frame
//! sends them all at once, straight from the shared frame buffers.
#![allow(unsafe_code)]

use std::io::{self, IoSlice};
use std::os::fd::{AsFd, AsRawFd, BorrowedFd, RawFd};

use super::queue::MAX_SLICES;

/// Send `slices` without blocking. `WouldBlock` when the socket buffer is full.
pub fn send_vectored(fd: BorrowedFd<'_>, slices: &[IoSlice<'_>]) -> io::Result<usize> {
    let count = slices.len().min(MAX_SLICES);
    // SAFETY: `msghdr` is plain old data; all-zero is a valid empty header.
    let mut header: libc::msghdr = unsafe { std::mem::zeroed() };
    // IoSlice is guaranteed ABI-compatible with `struct iovec` on Unix.
    header.msg_iov = slices.as_ptr() as *mut libc::iovec;
    header.msg_iovlen = count as _;
    // SAFETY: `header` points at `count` valid iovecs borrowed for the duration of the call;
    // the kernel only reads them. `fd` is borrowed, so it is open for the whole call.
    let sent = unsafe {
        libc::sendmsg(
            fd.as_raw_fd(),
            &header,
            libc::MSG_DONTWAIT | libc::MSG_NOSIGNAL,
        )
    };
    if sent < 0 {
        Err(io::Error::last_os_error())
    } else {
        Ok(sent as usize)
    }
}

/// A subscriber's socket as the shard's fan-out writer sees it: the descriptor of a stream that
/// its session owns. glommio's stream cannot be shared between the session task and the
/// writer, so the writer keeps the number, and the session promises to detach it (see
/// `Subscriber::mark_finished`) before the stream is closed.
#[derive(Clone, Copy, Debug)]
pub struct AttachedSocket(RawFd);

impl AttachedSocket {
    /// The socket of `stream`, which must stay open until this handle is dropped from every
    /// place that holds it (the session detaches it in the same step that ends the session).
    pub fn of(stream: &impl AsRawFd) -> Self {
        Self(stream.as_raw_fd())
    }

    /// [`send_vectored`] on this socket.
    pub fn send(&self, slices: &[IoSlice<'_>]) -> io::Result<usize> {
        send_vectored(self.as_fd(), slices)
    }
}

impl AsFd for AttachedSocket {
    fn as_fd(&self) -> BorrowedFd<'_> {
        // SAFETY: an `AttachedSocket` exists only between its session's start and the
        // synchronous step that detaches it and then drops the stream (no await in between), and
        // shards are single-threaded, so no one can use it after the descriptor is closed.
        unsafe { BorrowedFd::borrow_raw(self.0) }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Read;

    #[test]
    fn sends_all_slices_in_order() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let client = std::net::TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        let (mut server_side, _) = listener.accept().unwrap();
        let parts = [
            IoSlice::new(b"data: a\n\n"),
            IoSlice::new(b""),
            IoSlice::new(b"data: b\n\n"),
        ];
        let n = send_vectored(client.as_fd(), &parts).unwrap();
        assert_eq!(n, 18);
        let mut got = [0u8; 18];
        server_side.read_exact(&mut got).unwrap();
        assert_eq!(&got, b"data: a\n\ndata: b\n\n");
    }
}
