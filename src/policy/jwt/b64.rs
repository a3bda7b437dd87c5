//! base64url without padding (RFC 7515 §2), decode only: for reading a token's header before
//! jsonwebtoken does, so `alg: none` is refused as a disallowed algorithm, not as bad JSON.

/// Decodes unpadded base64url; `None` on any character outside the alphabet or an impossible
/// length. Leftover low bits are not checked: jsonwebtoken decodes the same part strictly
/// right after, and refuses what this lets through.
pub(super) fn decode(input: &[u8]) -> Option<Vec<u8>> {
    if input.len() % 4 == 1 {
        return None;
    }
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits = 0u32;
    for &c in input {
        acc = (acc << 6) | u32::from(sextet(c)?);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            // Truncation keeps the 8 bits just completed, which is the point.
            out.push((acc >> bits) as u8);
        }
    }
    Some(out)
}

fn sextet(c: u8) -> Option<u8> {
    match c {
        b'A'..=b'Z' => Some(c - b'A'),
        b'a'..=b'z' => Some(c - b'a' + 26),
        b'0'..=b'9' => Some(c - b'0' + 52),
        b'-' => Some(62),
        b'_' => Some(63),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::decode;

    #[test]
    fn decodes_rfc4648_vectors_in_url_alphabet() {
        let cases: [(&str, &[u8]); 7] = [
            ("", b""),
            ("Zg", b"f"),
            ("Zm8", b"fo"),
            ("Zm9v", b"foo"),
            ("Zm9vYg", b"foob"),
            ("Zm9vYmE", b"fooba"),
            ("Zm9vYmFy", b"foobar"),
        ];
        for (text, bytes) in cases {
            assert_eq!(decode(text.as_bytes()).as_deref(), Some(bytes), "{text}");
        }
        assert_eq!(decode(b"-_8").as_deref(), Some(&[0xfb, 0xff][..]));
    }

    #[test]
    fn refuses_padding_other_alphabets_and_bad_lengths() {
        for bad in ["Zg==", "Zm+v", "Zm/v", "Z", "Zm9vY", "Zm 9v"] {
            assert_eq!(decode(bad.as_bytes()), None, "{bad}");
        }
    }
}
