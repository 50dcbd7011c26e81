//! Who a file is: device and inode, in the Java agent's `(dev=<hex>,ino=<dec>)` form.
//!
//! Owns: [`FileId`]. Does not own: content fingerprints ([`super::fingerprint`]).

use std::fmt;
use std::fs::Metadata;
use std::os::unix::fs::MetadataExt;

/// Device + inode of an open or listed file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct FileId {
    pub dev: u64,
    pub ino: u64,
}

impl FileId {
    pub fn of(meta: &Metadata) -> FileId {
        FileId {
            dev: meta.dev(),
            ino: meta.ino(),
        }
    }
}

/// The device number of the identities given to checkpoint rows that stand for no file on
/// disk (the old content of a truncated file, until its rotated copy is found). No real device
/// has it, so such a row never matches a file by identity, only by content.
pub const NO_DEVICE: u64 = u64::MAX;

impl FileId {
    /// An identity for a row that stands for no file on disk (see [`NO_DEVICE`]).
    pub fn placeholder(unique: u64) -> FileId {
        FileId {
            dev: NO_DEVICE,
            ino: unique,
        }
    }

    /// Whether a stored `fileId` is a [`FileId::placeholder`].
    pub fn is_placeholder_text(file_id: &str) -> bool {
        file_id.starts_with(&format!("(dev={NO_DEVICE:x},"))
    }
}

impl fmt::Display for FileId {
    /// The JDK's `UnixFileKey` string, which the Java agent stores as the checkpoint's `fileId`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "(dev={:x},ino={})", self.dev, self.ino)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn java_file_key_format() {
        let id = FileId {
            dev: 0xfd00,
            ino: 1048587,
        };
        assert_eq!(id.to_string(), "(dev=fd00,ino=1048587)");
        assert!(!FileId::is_placeholder_text(&id.to_string()));
        assert!(FileId::is_placeholder_text(
            &FileId::placeholder(7).to_string()
        ));
    }
}
