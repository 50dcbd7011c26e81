//! Which paths match a flow's `filePattern` now.
//!
//! Owns: matching (directory + glob on the name as the Java agent, plus globs in directories and
//! `**`), listing, skipping compressed files and directories, and turning filesystem events into
//! "look again soon" hints ([`watch`]). Does not own: opening or reading files.

pub mod watch;

use std::fs::Metadata;
use std::io;
use std::path::{Path, PathBuf};

use globset::{GlobBuilder, GlobMatcher};

use crate::config::FilePattern;

/// Rotated files compressed by logrotate are never read (Java `SourceFile`: `.gz`, `.bz2`, `.zip`).
const COMPRESSED_SUFFIXES: [&str; 3] = [".gz", ".bz2", ".zip"];

/// How deep `**` may descend, so a symlink loop cannot make a scan endless.
const MAX_RECURSIVE_DEPTH: usize = 32;

/// Matches paths against one flow's pattern.
#[derive(Debug, Clone)]
pub struct PathMatcher {
    base_dir: PathBuf,
    glob: GlobMatcher,
    /// Number of path components below `base_dir` a match has; None with `**`.
    depth: Option<usize>,
}

/// What a listing keeps of a file's metadata (a `Metadata` is 176 bytes: a listing of 100,000
/// files held 40 MB of them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Listed {
    pub dev: u64,
    pub ino: u64,
    pub size: u64,
    /// Modification time, ms since the epoch.
    pub mtime_ms: i64,
}

impl Listed {
    pub fn of(meta: &Metadata) -> Listed {
        use std::os::unix::fs::MetadataExt;
        Listed {
            dev: meta.dev(),
            ino: meta.ino(),
            size: meta.len(),
            mtime_ms: mtime_ms(meta),
        }
    }
}

/// Modification time in ms since the epoch.
pub fn mtime_ms(meta: &Metadata) -> i64 {
    use std::os::unix::fs::MetadataExt;
    meta.mtime() * 1000 + meta.mtime_nsec() / 1_000_000
}

/// What a listing could not look at, besides the files it found.
#[derive(Debug, Default)]
pub struct Problems {
    /// Directories whose name matches the glob; skipped.
    pub directories: Vec<PathBuf>,
    /// Paths that could not be listed or inspected, with the reason.
    pub errors: Vec<(PathBuf, io::Error)>,
}

/// What one scan found.
#[derive(Debug, Default)]
pub struct Scan {
    /// Regular files (symlinks followed), in path order.
    pub files: Vec<(PathBuf, Listed)>,
    /// Directories whose name matches the glob; skipped.
    pub directories: Vec<PathBuf>,
    /// Paths that could not be listed or inspected, with the reason.
    pub errors: Vec<(PathBuf, io::Error)>,
}

impl PathMatcher {
    pub fn new(pattern: &FilePattern) -> Result<PathMatcher, globset::Error> {
        let glob = GlobBuilder::new(&pattern.glob)
            .literal_separator(true)
            .build()?
            .compile_matcher();
        let depth = if pattern.glob.contains("**") {
            None
        } else {
            Some(pattern.glob.split('/').filter(|c| !c.is_empty()).count())
        };
        Ok(PathMatcher {
            base_dir: pattern.base_dir.clone(),
            glob,
            depth,
        })
    }

    /// The directory every match lies under; the one to watch.
    pub fn base_dir(&self) -> &Path {
        &self.base_dir
    }

    /// True when matches may lie in subdirectories (watch recursively).
    pub fn is_recursive(&self) -> bool {
        self.depth != Some(1)
    }

    /// Does `path` match? Compressed files never do.
    pub fn matches(&self, path: &Path) -> bool {
        let Ok(rel) = path.strip_prefix(&self.base_dir) else {
            return false;
        };
        if is_compressed(path) {
            return false;
        }
        self.glob.is_match(rel)
    }

    /// Lists the matching paths now, in path order. A missing base directory is an empty
    /// result, as in Java.
    pub fn scan(&self) -> Scan {
        let mut files = Vec::new();
        let problems = self.scan_each(|path, listed| files.push((path, listed)));
        files.sort_by(|a: &(PathBuf, Listed), b| a.0.cmp(&b.0));
        Scan {
            files,
            directories: problems.directories,
            errors: problems.errors,
        }
    }

    /// Like [`PathMatcher::scan`], giving each matching file to `found` as it is listed
    /// (directory order), so a listing of 100,000 files is not held at once.
    pub fn scan_each(&self, mut found: impl FnMut(PathBuf, Listed)) -> Problems {
        let mut problems = Problems::default();
        let max_depth = self.depth.unwrap_or(MAX_RECURSIVE_DEPTH);
        self.walk(&self.base_dir, 1, max_depth, &mut found, &mut problems);
        problems
    }

    fn walk(
        &self,
        dir: &Path,
        depth: usize,
        max_depth: usize,
        found: &mut impl FnMut(PathBuf, Listed),
        problems: &mut Problems,
    ) {
        let entries = match std::fs::read_dir(dir) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound && dir == self.base_dir => return,
            Err(e) => {
                problems.errors.push((dir.to_path_buf(), e));
                return;
            }
        };
        for entry in entries {
            let entry = match entry {
                Ok(entry) => entry,
                Err(e) => {
                    problems.errors.push((dir.to_path_buf(), e));
                    continue;
                }
            };
            let path = entry.path();
            let meta = match std::fs::metadata(&path) {
                Ok(meta) => meta,
                // Gone between listing and stat (rotation in progress): the next scan sees it.
                Err(e) if e.kind() == io::ErrorKind::NotFound => continue,
                Err(e) => {
                    problems.errors.push((path, e));
                    continue;
                }
            };
            if meta.is_dir() {
                if depth < max_depth {
                    self.walk(&path, depth + 1, max_depth, found, problems);
                }
                if self.matches(&path) {
                    problems.directories.push(path);
                }
            } else if meta.is_file() && self.matches(&path) {
                found(path, Listed::of(&meta));
            }
        }
    }
}

fn is_compressed(path: &Path) -> bool {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().to_ascii_lowercase());
    name.is_some_and(|n| COMPRESSED_SUFFIXES.iter().any(|s| n.ends_with(s)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs;

    fn pattern(base: &Path, glob: &str) -> FilePattern {
        FilePattern {
            raw: format!("{}/{}", base.display(), glob),
            base_dir: base.to_path_buf(),
            glob: glob.to_string(),
        }
    }

    fn names(scan: &Scan, base: &Path) -> Vec<String> {
        scan.files
            .iter()
            .map(|(p, _)| p.strip_prefix(base).unwrap_or(p).display().to_string())
            .collect()
    }

    #[test]
    fn java_listing_examples() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path();
        for n in [
            "app.log",
            "app.log.1",
            "app.log.2",
            "app.log.1.gz",
            "app.log.gz",
            "app.log.zip",
            "app.log.BZ2",
            "another.log",
        ] {
            fs::write(base.join(n), "x\n").expect("write");
        }
        let m = PathMatcher::new(&pattern(base, "app.log*")).expect("glob");
        assert_eq!(
            names(&m.scan(), base),
            vec!["app.log", "app.log.1", "app.log.2"]
        );

        for n in ["app01.log", "app05.log", "app10.log"] {
            fs::write(base.join(n), "x\n").expect("write");
        }
        let m = PathMatcher::new(&pattern(base, "app[01][123456789].log")).expect("glob");
        assert_eq!(names(&m.scan(), base), vec!["app01.log", "app05.log"]);
        let m = PathMatcher::new(&pattern(base, "{another,app01}.log")).expect("glob");
        assert_eq!(names(&m.scan(), base), vec!["another.log", "app01.log"]);
    }

    #[test]
    fn missing_directory_is_empty_and_matching_directory_is_skipped() {
        let dir = tempfile::tempdir().expect("tempdir");
        let m = PathMatcher::new(&pattern(&dir.path().join("nope"), "*.log")).expect("glob");
        let scan = m.scan();
        assert!(scan.files.is_empty() && scan.errors.is_empty());

        fs::create_dir(dir.path().join("weird.log")).expect("mkdir");
        fs::write(dir.path().join("a.log"), "x\n").expect("write");
        let m = PathMatcher::new(&pattern(dir.path(), "*.log")).expect("glob");
        let scan = m.scan();
        assert_eq!(names(&scan, dir.path()), vec!["a.log"]);
        assert_eq!(scan.directories, vec![dir.path().join("weird.log")]);
    }

    #[test]
    fn globs_in_directories_and_double_star() {
        let dir = tempfile::tempdir().expect("tempdir");
        let base = dir.path();
        for p in [
            "c1/x-json.log",
            "c2/x-json.log",
            "c2/deep/y-json.log",
            "top-json.log",
        ] {
            let path = base.join(p);
            fs::create_dir_all(path.parent().expect("parent")).expect("mkdir");
            fs::write(path, "x\n").expect("write");
        }
        let m = PathMatcher::new(&pattern(base, "*/*-json.log")).expect("glob");
        assert_eq!(
            names(&m.scan(), base),
            vec!["c1/x-json.log", "c2/x-json.log"]
        );
        let m = PathMatcher::new(&pattern(base, "**/*-json.log")).expect("glob");
        assert_eq!(
            names(&m.scan(), base),
            vec![
                "c1/x-json.log",
                "c2/deep/y-json.log",
                "c2/x-json.log",
                "top-json.log"
            ]
        );
        // `*` never crosses a directory separator, as in Java's glob.
        let m = PathMatcher::new(&pattern(base, "*.log")).expect("glob");
        assert_eq!(names(&m.scan(), base), vec!["top-json.log"]);
    }
}
