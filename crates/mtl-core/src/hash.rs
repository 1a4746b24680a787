//! Content hashes used for fingerprints and file identity.

use std::io::Read;
use std::path::Path;

use sha2::{Digest, Sha256};

use crate::error::{CoreError, Result};

/// Hex SHA-256 of a byte slice.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

/// Hex SHA-256 of a file's content, streamed so large inputs cost no memory.
pub fn sha256_file(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).map_err(|e| CoreError::io(path, e))?;
    let mut hasher = Sha256::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).map_err(|e| CoreError::io(path, e))?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hex(&hasher.finalize()))
}

/// A fingerprint over named parts. Each part is length-prefixed so that
/// `("ab", "c")` and `("a", "bc")` never collide.
#[derive(Default)]
pub struct Fingerprinter(Sha256);

impl Fingerprinter {
    pub fn new() -> Self {
        Self::default()
    }

    pub fn part(mut self, name: &str, value: &[u8]) -> Self {
        for chunk in [name.as_bytes(), value] {
            self.0.update((chunk.len() as u64).to_le_bytes());
            self.0.update(chunk);
        }
        self
    }

    /// Adds a serializable value in canonical JSON (serde_json maps keep keys
    /// sorted), so field order in the TOML never changes the fingerprint.
    pub fn json<T: serde::Serialize>(self, name: &str, value: &T) -> Self {
        let canonical = serde_json::to_value(value)
            .and_then(|v| serde_json::to_vec(&v))
            .expect("config sections are plain data and always serialize");
        self.part(name, &canonical)
    }

    pub fn finish(self) -> String {
        hex(&self.0.finalize())
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    bytes.iter().fold(String::with_capacity(64), |mut s, b| {
        let _ = write!(s, "{b:02x}");
        s
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_digest() {
        assert_eq!(
            sha256_hex(b"abc"),
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }

    #[test]
    fn parts_are_length_prefixed() {
        let a = Fingerprinter::new()
            .part("x", b"ab")
            .part("y", b"c")
            .finish();
        let b = Fingerprinter::new()
            .part("x", b"a")
            .part("y", b"bc")
            .finish();
        assert_ne!(a, b);
    }

    #[test]
    fn json_is_key_order_independent() {
        let a: serde_json::Value = serde_json::from_str(r#"{"a":1,"b":2}"#).unwrap();
        let b: serde_json::Value = serde_json::from_str(r#"{"b":2,"a":1}"#).unwrap();
        assert_eq!(
            Fingerprinter::new().json("c", &a).finish(),
            Fingerprinter::new().json("c", &b).finish()
        );
    }
}
