"""A deliberately permissive WebSocket client over a raw socket, for the conformance cases that
must send what a correct client library refuses to: reserved bits and opcodes, oversized or
fragmented control frames, bad UTF-8, invalid close codes. It does the opening handshake by
hand (so the answer's status and headers can be inspected), masks client frames itself and
decodes the server's frames without judging them.
"""

import base64
import hashlib
import os
import socket
import struct
import time

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"

CONT, TEXT, BINARY, CLOSE, PING, PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


def accept_for(key):
    """The Sec-WebSocket-Accept value RFC 6455 §4.2.2 derives from a client key."""
    digest = hashlib.sha1((key + GUID).encode()).digest()
    return base64.b64encode(digest).decode()


def frame(opcode, payload=b"", fin=True, rsv=0, mask=True, length=None):
    """One client frame. `rsv` is the 3 reserved bits (RSV1 = 4, RSV2 = 2, RSV3 = 1);
    `length` overrides the declared payload length (the payload is still `payload`)."""
    if isinstance(payload, str):
        payload = payload.encode()
    first = (0x80 if fin else 0) | (rsv << 4) | opcode
    n = len(payload) if length is None else length
    mbit = 0x80 if mask else 0
    if n <= 125:
        head = struct.pack("!BB", first, mbit | n)
    elif n <= 0xFFFF:
        head = struct.pack("!BBH", first, mbit | 126, n)
    else:
        head = struct.pack("!BBQ", first, mbit | 127, n)
    if not mask:
        return head + payload
    key = os.urandom(4)
    masked = bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + key + masked


def close_payload(code, reason=b""):
    if isinstance(reason, str):
        reason = reason.encode()
    return struct.pack("!H", code) + reason


class Frame:
    """A frame the server sent: fin, rsv bits, opcode, payload, and the length field's form
    (7, 16 or 64 bits)."""

    def __init__(self, fin, rsv, opcode, payload, length_bits):
        self.fin, self.rsv, self.opcode = fin, rsv, opcode
        self.payload, self.length_bits = payload, length_bits

    def close_code(self):
        if self.opcode != CLOSE or len(self.payload) < 2:
            return None
        return struct.unpack("!H", self.payload[:2])[0]

    def close_reason(self):
        return self.payload[2:].decode("utf-8", "replace")

    def __repr__(self):
        shown = self.payload[:60]
        return f"Frame(op={self.opcode:#x}, fin={self.fin}, rsv={self.rsv}, {len(self.payload)} B {shown!r})"


class Handshake:
    """The server's answer to an opening handshake: status, lower-cased headers, body bytes
    read so far."""

    def __init__(self, status, headers, rest):
        self.status, self.headers, self.rest = status, headers, rest


def http_exchange(addr, request_bytes, timeout=10.0):
    """Sends raw request bytes, returns (socket, Handshake) once the answer's head is in."""
    host, port = addr
    sock = socket.create_connection((host, port), timeout=timeout)
    sock.sendall(request_bytes)
    buf = b""
    deadline = time.monotonic() + timeout
    while b"\r\n\r\n" not in buf:
        if time.monotonic() > deadline:
            raise TimeoutError(f"no answer head; got {buf!r}")
        chunk = sock.recv(4096)
        if not chunk:
            break
        buf += chunk
    head, _, rest = buf.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ", 2)
    status = int(parts[1]) if len(parts) > 1 and parts[1].isdigit() else 0
    headers = {}
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers.setdefault(name.strip().lower(), value.strip())
    return sock, Handshake(status, headers, rest)


def upgrade_request(addr, path, headers=None, method="GET", version="HTTP/1.1", key=None, omit=()):
    """The bytes of an opening handshake; `headers` add or replace fields, `omit` drops some."""
    fields = {
        "Host": f"{addr[0]}:{addr[1]}",
        "Upgrade": "websocket",
        "Connection": "Upgrade",
        "Sec-WebSocket-Key": key or base64.b64encode(os.urandom(16)).decode(),
        "Sec-WebSocket-Version": "13",
    }
    fields.update(headers or {})
    lines = [f"{method} {path} {version}"]
    lines += [f"{k}: {v}" for k, v in fields.items() if k not in omit]
    return ("\r\n".join(lines) + "\r\n\r\n").encode(), fields["Sec-WebSocket-Key"]


class RawWs:
    """An open WebSocket over a plain socket. `answer_pings` replies to server pings while
    reading (so long cases are not closed for a missing pong)."""

    def __init__(self, addr, path="/topics/conf/ws", headers=None, timeout=10.0):
        request, key = upgrade_request(addr, path, headers)
        self.sock, self.handshake = http_exchange(addr, request, timeout)
        if self.handshake.status != 101:
            raise ConnectionError(f"upgrade refused: {self.handshake.status}")
        if self.handshake.headers.get("sec-websocket-accept") != accept_for(key):
            raise ConnectionError("wrong Sec-WebSocket-Accept")
        self.buf = self.handshake.rest
        self.eof = False
        self.answer_pings = True

    def send(self, data):
        self.sock.sendall(data)

    def send_frame(self, opcode, payload=b"", **kw):
        self.send(frame(opcode, payload, **kw))

    def _fill(self, deadline):
        remaining = deadline - time.monotonic()
        if remaining <= 0:
            raise TimeoutError
        self.sock.settimeout(remaining)
        try:
            chunk = self.sock.recv(65536)
        except socket.timeout as e:
            raise TimeoutError from e
        except ConnectionResetError:
            chunk = b""
        if not chunk:
            self.eof = True
            raise EOFError
        self.buf += chunk

    def _need(self, n, deadline):
        while len(self.buf) < n:
            self._fill(deadline)

    def next_frame(self, timeout=10.0):
        """The next server frame; None at end of stream or timeout. Server pings are answered
        (and skipped) when `answer_pings`."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                f = self._read_frame(deadline)
            except (EOFError, TimeoutError):
                return None
            if f.opcode == PING and self.answer_pings:
                try:
                    self.send_frame(PONG, f.payload)
                except OSError:
                    pass
                continue
            return f

    def _read_frame(self, deadline):
        self._need(2, deadline)
        b0, b1 = self.buf[0], self.buf[1]
        n, at, bits = b1 & 0x7F, 2, 7
        if n == 126:
            self._need(4, deadline)
            n, at, bits = struct.unpack("!H", self.buf[2:4])[0], 4, 16
        elif n == 127:
            self._need(10, deadline)
            n, at, bits = struct.unpack("!Q", self.buf[2:10])[0], 10, 64
        if b1 & 0x80:
            at += 4  # a server must not mask; keep the key out of the payload anyway
        self._need(at + n, deadline)
        payload = self.buf[at : at + n]
        self.buf = self.buf[at + n :]
        return Frame(bool(b0 & 0x80), (b0 >> 4) & 7, b0 & 0x0F, payload, bits)

    def next_data(self, timeout=10.0):
        """The next text/binary frame, skipping pongs; None on close, end or timeout."""
        deadline = time.monotonic() + timeout
        while True:
            f = self.next_frame(max(0.0, deadline - time.monotonic()))
            if f is None or f.opcode == CLOSE:
                return None
            if f.opcode in (TEXT, BINARY, CONT):
                return f

    def until_close(self, timeout=10.0):
        """Reads until the server's close frame; returns (close frame or None, frames before)."""
        deadline = time.monotonic() + timeout
        seen = []
        while True:
            f = self.next_frame(max(0.0, deadline - time.monotonic()))
            if f is None or f.opcode == CLOSE:
                return f, seen
            seen.append(f)

    def wait_eof(self, timeout=10.0):
        """True once the server closed the TCP connection (data before that is discarded)."""
        deadline = time.monotonic() + timeout
        self.buf = b""
        while not self.eof:
            try:
                self._fill(deadline)
            except EOFError:
                return True
            except TimeoutError:
                return False
            self.buf = b""
        return True

    def close(self):
        try:
            self.sock.close()
        except OSError:
            pass
