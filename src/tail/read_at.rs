//! Positioned reads that fill a buffer, shared by the file reader and the fingerprints.
//!
//! Owns: [`read_full_at`]. Does not own: what is read, or where (the callers).

use std::fs::File;
use std::io;
use std::os::unix::fs::FileExt;

/// Reads into `buf` at `pos` until it is full or the file ends; returns the bytes read.
pub(super) fn read_full_at(file: &File, buf: &mut [u8], pos: u64) -> io::Result<usize> {
    let mut got = 0;
    while got < buf.len() {
        match file.read_at(&mut buf[got..], pos + got as u64) {
            Ok(0) => break,
            Ok(n) => got += n,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(got)
}
