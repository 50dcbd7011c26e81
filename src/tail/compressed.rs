//! Rotated copies that were compressed before the agent read them to their end (logrotate
//! `compress` without `delaycompress`, or any rotation while the agent was stopped): recognised
//! by decompressing their first bytes, and decompressed to a scratch file to be read from the
//! agent's offset. Never tailed as new files: a compressed file is only read when its content
//! starts like a file the agent was reading.
//!
//! Formats, by name: `.gz` (gzip, logrotate's default), `.zst`, `.bz2`, `.xz` (common
//! `compresscmd` choices).

use std::fs::File;
use std::io::{self, BufReader, Read, Write};
use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

/// A compression format the agent can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Codec {
    Gzip,
    Zstd,
    Bzip2,
    Xz,
}

impl Codec {
    /// The format a rotated file's name says it has.
    pub fn of(path: &Path) -> Option<Codec> {
        let name = path.file_name()?.to_string_lossy().to_ascii_lowercase();
        if name.ends_with(".gz") {
            Some(Codec::Gzip)
        } else if name.ends_with(".zst") {
            Some(Codec::Zstd)
        } else if name.ends_with(".bz2") {
            Some(Codec::Bzip2)
        } else if name.ends_with(".xz") {
            Some(Codec::Xz)
        } else {
            None
        }
    }

    /// A reader of the decompressed bytes of `file`. Concatenated gzip members (what `gzip`
    /// appends) are read as one stream, as `zcat` does.
    fn reader(self, file: File) -> io::Result<Box<dyn Read>> {
        let buffered = BufReader::new(file);
        Ok(match self {
            Codec::Gzip => Box::new(flate2::bufread::MultiGzDecoder::new(buffered)),
            Codec::Zstd => Box::new(zstd::stream::read::Decoder::with_buffer(buffered)?),
            Codec::Bzip2 => Box::new(bzip2::bufread::MultiBzDecoder::new(buffered)),
            Codec::Xz => Box::new(liblzma::bufread::XzDecoder::new_multi_decoder(buffered)),
        })
    }
}

/// Up to `n` first decompressed bytes of the compressed file at `path` (fewer if it holds
/// less, or if it is damaged after them).
pub fn head(path: &Path, codec: Codec, n: usize) -> io::Result<Vec<u8>> {
    let mut reader = codec.reader(File::open(path)?)?;
    let mut head = vec![0; n];
    let mut got = 0;
    while got < n {
        match reader.read(&mut head[got..]) {
            Ok(0) => break,
            Ok(k) => got += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            // Damaged after some bytes: those are the head.
            Err(_) if got > 0 => break,
            Err(e) => return Err(e),
        }
    }
    head.truncate(got);
    Ok(head)
}

/// What decompressing a whole file gave.
#[derive(Debug)]
pub struct Decompressed {
    /// An unnamed scratch file holding the decompressed bytes (gone once closed).
    pub file: File,
    pub bytes: u64,
    /// Why decompression stopped early (a truncated or damaged file): the bytes before it are
    /// in `file`, the rest could not be read.
    pub damaged: Option<io::Error>,
}

/// Decompresses the file at `path` into an unnamed scratch file in `scratch_dir` (O_TMPFILE:
/// disk, not memory, and nothing left behind by a crash).
pub fn decompress(path: &Path, codec: Codec, scratch_dir: &Path) -> io::Result<Decompressed> {
    let mut reader = codec.reader(File::open(path)?)?;
    let mut out = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_TMPFILE)
        .mode(0o600)
        .open(scratch_dir)?;
    let mut buf = vec![0; 64 * 1024];
    let mut bytes = 0u64;
    let mut damaged = None;
    loop {
        match reader.read(&mut buf) {
            Ok(0) => break,
            Ok(k) => {
                out.write_all(&buf[..k])?;
                bytes += k as u64;
            }
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => {
                damaged = Some(e);
                break;
            }
        }
    }
    out.flush()?;
    Ok(Decompressed {
        file: out,
        bytes,
        damaged,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gzip(data: &[u8]) -> Vec<u8> {
        let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
        enc.write_all(data).expect("gzip");
        enc.finish().expect("gzip")
    }

    fn lines(n: usize) -> Vec<u8> {
        (0..n)
            .flat_map(|i| format!("line {i:05}\n").into_bytes())
            .collect()
    }

    #[test]
    fn codec_by_name() {
        assert_eq!(Codec::of(Path::new("/l/app.log.1.gz")), Some(Codec::Gzip));
        assert_eq!(Codec::of(Path::new("/l/app.log.2.ZST")), Some(Codec::Zstd));
        assert_eq!(Codec::of(Path::new("/l/app.log.3.bz2")), Some(Codec::Bzip2));
        assert_eq!(Codec::of(Path::new("/l/app.log.4.xz")), Some(Codec::Xz));
        assert_eq!(Codec::of(Path::new("/l/app.log.1")), None);
    }

    #[test]
    fn every_format_gives_its_head_and_decompresses_whole() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = lines(5000);
        let mut zst = Vec::new();
        zstd::stream::copy_encode(&data[..], &mut zst, 3).expect("zstd");
        let mut bz = bzip2::write::BzEncoder::new(Vec::new(), bzip2::Compression::default());
        bz.write_all(&data).expect("bzip2");
        let bz = bz.finish().expect("bzip2");
        let mut xz = liblzma::write::XzEncoder::new(Vec::new(), 6);
        xz.write_all(&data).expect("xz");
        let xz = xz.finish().expect("xz");
        for (name, bytes) in [
            ("a.gz", gzip(&data)),
            ("a.zst", zst),
            ("a.bz2", bz),
            ("a.xz", xz),
        ] {
            let path = dir.path().join(name);
            std::fs::write(&path, bytes).expect("write");
            let codec = Codec::of(&path).expect("codec");
            assert_eq!(head(&path, codec, 1024).expect("head"), data[..1024]);
            let mut d = decompress(&path, codec, dir.path()).expect("decompress");
            assert!(d.damaged.is_none(), "{name}: {:?}", d.damaged);
            assert_eq!(d.bytes, data.len() as u64);
            let mut back = Vec::new();
            std::io::Seek::rewind(&mut d.file).expect("rewind");
            d.file.read_to_end(&mut back).expect("read");
            assert_eq!(back, data, "{name}");
        }
        // Nothing is left in the scratch directory but the inputs.
        assert_eq!(std::fs::read_dir(dir.path()).expect("ls").count(), 4);
    }

    #[test]
    fn a_truncated_gzip_gives_what_is_readable_and_says_why_it_stopped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let data = lines(20000);
        let gz = gzip(&data);
        let path = dir.path().join("cut.gz");
        std::fs::write(&path, &gz[..gz.len() / 2]).expect("write");
        let d = decompress(&path, Codec::Gzip, dir.path()).expect("decompress");
        assert!(d.damaged.is_some());
        assert!(d.bytes > 0 && d.bytes < data.len() as u64, "{}", d.bytes);
    }
}
