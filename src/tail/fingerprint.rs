//! Fingerprints of files: reading a file's first bytes and comparing a new file with tracked
//! ones (a copy, a rotation, a reused inode).
//!
//! Owns: [`head`], [`of`], [`like`] (the IO) and [`Likeness`], [`Candidate`], [`likeness`]
//! (the comparisons). Does not own: the [`Fingerprint`] type and its stored form, shared with
//! the checkpoints ([`crate::record::fingerprint`], re-exported here for the tailer).

use std::fs::File;
use std::io;

use super::read_at::read_full_at;
pub use crate::record::fingerprint::{covered, of_head, Fingerprint, FINGERPRINT_BYTES};

/// Fingerprint over the first `min(len, FINGERPRINT_BYTES)` bytes of `file`.
pub fn of(file: &File, len: u64) -> io::Result<Fingerprint> {
    Ok(of_head(&head(file, len)?))
}

/// The first `min(len, FINGERPRINT_BYTES)` bytes of `file` (fewer if it is shorter).
pub fn head(file: &File, len: u64) -> io::Result<Vec<u8>> {
    let mut head = vec![0; (len as usize).min(FINGERPRINT_BYTES)];
    let got = read_full_at(file, &mut head, 0)?;
    head.truncate(got);
    Ok(head)
}

/// How a new file's first bytes compare with another file's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Likeness {
    /// It starts with all of the other file's first bytes.
    Same,
    /// It is shorter, and what it has so far matches (a copy still being written?).
    Prefix,
    Different,
}

/// Compares `candidate`'s first bytes with `original`'s. An empty original says nothing.
pub fn compare_heads(original: &[u8], candidate: &[u8]) -> Likeness {
    if original.is_empty() {
        Likeness::Different
    } else if candidate.len() >= original.len() {
        if candidate[..original.len()] == *original {
            Likeness::Same
        } else {
            Likeness::Different
        }
    } else if original.starts_with(candidate) {
        Likeness::Prefix
    } else {
        Likeness::Different
    }
}

/// A new file's first bytes, compared with tracked files' first bytes or, for files whose
/// bytes are not kept (closed for the descriptor budget), their fingerprints: the fingerprint
/// of each length asked for is computed once, so comparing with many files costs one MD5 per
/// distinct length.
pub struct Candidate<'a> {
    pub bytes: &'a [u8],
    fingerprints: Vec<(u64, Fingerprint)>,
}

impl<'a> Candidate<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Candidate {
            bytes,
            fingerprints: Vec::new(),
        }
    }

    /// The fingerprint of the first `n` bytes; None when there are fewer.
    fn fingerprint_of(&mut self, n: u64) -> Option<Fingerprint> {
        if (self.bytes.len() as u64) < n {
            return None;
        }
        let i = match self.fingerprints.iter().position(|(len, _)| *len == n) {
            Some(i) => i,
            None => {
                let fp = of_head(&self.bytes[..n as usize]);
                self.fingerprints.push((n, fp));
                self.fingerprints.len() - 1
            }
        };
        Some(self.fingerprints[i].1)
    }
}

/// Compares `candidate` with another file known by its first bytes `original` or, when those
/// are not kept (empty), by its `fingerprint`. From a fingerprint only `Same` or `Different`
/// can be told: a candidate shorter than what the fingerprint covers is `Different`.
pub fn likeness(original: &[u8], fingerprint: &Fingerprint, candidate: &mut Candidate) -> Likeness {
    if !original.is_empty() {
        return compare_heads(original, candidate.bytes);
    }
    match fingerprint.covered() {
        0 => Likeness::Different,
        n => match candidate.fingerprint_of(n) {
            Some(fp) if fp == *fingerprint => Likeness::Same,
            _ => Likeness::Different,
        },
    }
}

/// The fingerprint of `file` over as many bytes as `stored` covers; None when the file is
/// shorter than that or cannot be read.
pub fn like(file: &File, stored: &str) -> Option<String> {
    let n = covered(stored)?;
    let fp = of(file, n).ok()?;
    (fp.covered() == n).then(|| fp.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn head_comparisons() {
        assert_eq!(compare_heads(b"abc", b"abcdef"), Likeness::Same);
        assert_eq!(compare_heads(b"abc", b"abc"), Likeness::Same);
        assert_eq!(compare_heads(b"abc", b"ab"), Likeness::Prefix);
        assert_eq!(compare_heads(b"abc", b""), Likeness::Prefix);
        assert_eq!(compare_heads(b"abc", b"abx"), Likeness::Different);
        assert_eq!(compare_heads(b"abc", b"x"), Likeness::Different);
        assert_eq!(compare_heads(b"", b"anything"), Likeness::Different);
    }

    #[test]
    fn a_file_known_by_its_fingerprint_only_is_compared_by_digest() {
        let fp = of_head(b"abc");
        let mut longer = Candidate::new(b"abcdef");
        assert_eq!(likeness(b"", &fp, &mut longer), Likeness::Same);
        assert_eq!(
            likeness(b"", &of_head(b"abd"), &mut longer),
            Likeness::Different
        );
        // Computed once per length, then compared again.
        assert_eq!(likeness(b"", &fp, &mut longer), Likeness::Same);
        assert_eq!(longer.fingerprints.len(), 1);
        let mut shorter = Candidate::new(b"ab");
        assert_eq!(likeness(b"", &fp, &mut shorter), Likeness::Different);
        // The bytes, when kept, are compared as before (a prefix is told apart).
        assert_eq!(likeness(b"abc", &fp, &mut shorter), Likeness::Prefix);
        assert_eq!(
            likeness(b"", &of_head(b""), &mut longer),
            Likeness::Different,
            "an empty file's fingerprint says nothing"
        );
    }

    #[test]
    fn covers_at_most_the_first_kib_and_compares_like_for_like() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("f");
        std::fs::write(&path, b"hello\n").expect("write");
        let f = File::open(&path).expect("open");
        let short = of(&f, 6).expect("fp").to_string();
        assert!(short.starts_with("6:"));
        assert_eq!(
            of_head(b"").to_string(),
            "0:d41d8cd98f00b204e9800998ecf8427e"
        );
        std::fs::write(&path, vec![b'a'; 5000]).expect("write");
        let f = File::open(&path).expect("open");
        assert!(of(&f, 5000).expect("fp").to_string().starts_with("1024:"));
        assert_eq!(like(&f, &short).map(|s| s.starts_with("6:")), Some(true));
        assert_ne!(like(&f, &short), Some(short.clone()));
        std::fs::write(&path, b"hel").expect("write");
        let f = File::open(&path).expect("open");
        assert_eq!(
            like(&f, &short),
            None,
            "shorter than what the fingerprint covers"
        );
    }
}
