//! A content check of a file's first bytes: `"<n>:<md5 hex of the first n bytes>"`, n at most
//! [`FINGERPRINT_BYTES`]. Stored with checkpoints so a reused inode is not mistaken for the
//! file it used to be.
//!
//! Owns: [`Fingerprint`], made from bytes already read ([`of_head`]), and the stored form.
//! Does not own: reading a file's first bytes or comparing a new file with tracked ones (the
//! tailer's `tail::fingerprint`).

use md5::{Digest, Md5};
use std::fmt;

/// Bytes covered. Log lines start with time stamps, so 1 KiB tells files apart; reading it is
/// one small positioned read.
pub const FINGERPRINT_BYTES: usize = 1024;

/// The fingerprint of a file's first bytes: how many, and their MD5. Kept as 18 bytes in
/// every tracked file (as text, it was a 51-byte allocation a file: 5 MB with 100,000 files);
/// [`fmt::Display`] gives the stored form.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprint {
    len: u16,
    md5: [u8; 16],
}

impl Fingerprint {
    /// How many of the file's first bytes it covers.
    pub fn covered(&self) -> u64 {
        u64::from(self.len)
    }
}

impl fmt::Display for Fingerprint {
    /// `"<n>:<md5 hex>"`, as stored with checkpoints.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:", self.len)?;
        self.md5.iter().try_for_each(|b| write!(f, "{b:02x}"))
    }
}

impl fmt::Debug for Fingerprint {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        fmt::Display::fmt(self, f)
    }
}

/// The byte count a stored fingerprint covers.
pub fn covered(stored: &str) -> Option<u64> {
    stored.split_once(':')?.0.parse().ok()
}

/// The fingerprint of a file whose first bytes are `head`.
pub fn of_head(head: &[u8]) -> Fingerprint {
    // At most FINGERPRINT_BYTES (1 KiB) are covered.
    let head = &head[..head.len().min(FINGERPRINT_BYTES)];
    Fingerprint {
        len: head.len() as u16,
        md5: Md5::digest(head).into(),
    }
}
