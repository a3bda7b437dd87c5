//! Test helpers: a tiny client-frame encoder (masked, any header bits) and a server-frame
//! decoder, written from RFC 6455 §5.2 independently of the code under test.

/// One frame as a client would send it. `first` is the whole first byte (FIN, RSV, opcode);
/// `mask` None sends it unmasked (a protocol error from a client).
pub(crate) fn raw_frame(first: u8, payload: &[u8], mask: Option<[u8; 4]>) -> Vec<u8> {
    let mut out = vec![first];
    let mask_bit = if mask.is_some() { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => out.push(mask_bit | n as u8),
        n @ 126..=0xFFFF => {
            out.push(mask_bit | 126);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            out.push(mask_bit | 127);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    match mask {
        Some(key) => {
            out.extend_from_slice(&key);
            out.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        }
        None => out.extend_from_slice(payload),
    }
    out
}

/// A final, masked client frame of `opcode`.
pub(crate) fn client_frame(opcode: u8, payload: &[u8]) -> Vec<u8> {
    raw_frame(0x80 | opcode, payload, Some([0x37, 0xfa, 0x21, 0x3d]))
}

/// A decoded server frame.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct ServerFrame {
    pub fin: bool,
    pub opcode: u8,
    pub payload: Vec<u8>,
}

/// Decodes a sequence of complete, unmasked server frames; panics on anything else, including
/// a length not in its shortest form.
pub(crate) fn decode_server_frames(mut bytes: &[u8]) -> Vec<ServerFrame> {
    let mut frames = Vec::new();
    while !bytes.is_empty() {
        let first = bytes[0];
        assert_eq!(first & 0x70, 0, "RSV bits set");
        let second = bytes[1];
        assert_eq!(second & 0x80, 0, "server frame masked");
        let (len, hdr) = match second & 0x7f {
            126 => {
                let n = u16::from_be_bytes([bytes[2], bytes[3]]) as usize;
                assert!(n >= 126, "16-bit length form for {n} bytes");
                (n, 4)
            }
            127 => {
                let n = u64::from_be_bytes(bytes[2..10].try_into().unwrap()) as usize;
                assert!(n > 0xFFFF, "64-bit length form for {n} bytes");
                (n, 10)
            }
            n => (n as usize, 2),
        };
        frames.push(ServerFrame {
            fin: first & 0x80 != 0,
            opcode: first & 0x0f,
            payload: bytes[hdr..hdr + len].to_vec(),
        });
        bytes = &bytes[hdr + len..];
    }
    frames
}
