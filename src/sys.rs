//! Facts about the process that messages and start-up need: who the agent runs as, in the words
//! of a permission message and its fix ([`current_user`], [`permission_fix`]), which directory
//! stops it, malloc's tuning, and the open-files limit.
//!
//! Owns: those messages and the process-level settings. Does not own: asking the user database
//! (that is [`crate::accounts`], which keeps the agent's own user once found).

/// `name (uid N)` of the user the agent runs as, for messages about permissions (`uid N` when
/// the user database has no name for it).
pub fn current_user() -> String {
    let me = crate::accounts::me();
    match me.name {
        Some(name) => format!("{name} (uid {})", me.uid),
        None => format!("uid {}", me.uid),
    }
}

/// The user as `setfacl -m u:<this>:...` takes it: the name, else the uid.
pub fn current_user_for_acl() -> String {
    let me = crate::accounts::me();
    me.name.map_or_else(|| me.uid.to_string(), str::to_string)
}

/// The first directory on the way to `path` (from `/` down, `path` itself included when it is
/// a directory) that this process may not enter, found by looking up `.` inside each one (a
/// lookup needs search permission on the directory, a `stat` of it does not). None when every
/// directory can be entered, or the denial is not a permission problem.
pub fn first_unsearchable_dir(path: &std::path::Path) -> Option<std::path::PathBuf> {
    let mut dirs: Vec<&std::path::Path> = path.ancestors().collect();
    dirs.reverse();
    dirs.into_iter()
        .filter(|dir| !dir.as_os_str().is_empty())
        .find(|dir| {
            std::fs::metadata(dir.join("."))
                .is_err_and(|e| e.kind() == std::io::ErrorKind::PermissionDenied)
        })
        .map(std::path::Path::to_path_buf)
}

/// What to tell an operator whose agent may not reach `path` (a directory to list or a file to
/// read): which directory stops it, and the two fixes.
pub fn permission_fix(path: &std::path::Path, need: &str) -> String {
    let user = current_user_for_acl();
    let drop_in = "or let the service read every log with the drop-in /usr/share/doc/aws-kinesis-agent/examples/override-read-all-logs.conf";
    match first_unsearchable_dir(path) {
        Some(dir) => format!(
            "it cannot enter {dir}. Fix: `setfacl -m u:{user}:x {dir}` (and on any directory below it down to {path}, with {need} on {path} itself), {drop_in}",
            dir = dir.display(),
            path = path.display()
        ),
        None => format!(
            "Fix: `setfacl -m u:{user}:{need} {path}` (and x on every directory above it), or add {user} to the group of {path}, {drop_in}",
            path = path.display()
        ),
    }
}

/// Caps glibc's malloc at one arena instead of one per thread that allocates (up to eight per
/// core): each arena keeps freed memory of its own, and the blocking threads (checkpoint
/// writer, log writer) filled a second one with holes the runtime thread could not reuse.
/// Measured with `scripts/bench` on 2 cores: 100,000 files (`--only scale`) peaked at 65.6 to
/// 69.7 MiB RSS with two arenas and 62.1 to 62.9 MiB with one (idle anonymous memory 45 -> 38
/// MiB); the CPU per record of the backlogs did not change beyond the runs' spread (plain
/// Kinesis 568k-685k records/CPU-s with two, 633k-658k with one; KPL 676k-709k with two,
/// 680k-794k with one, measured while another build ran). An earlier design, with more
/// threads allocating, paid 25 % more CPU for one arena; that was why it was two.
///
/// Also fixes the size from which an allocation gets pages of its own (mmap) at
/// [`MMAP_THRESHOLD`]: by default glibc raises it to the size of each such block freed, up to
/// 32 MiB, so once the tables of a flow of 100,000 files had grown a few times, the next
/// tables (several MB) came from the arenas and, freed, stayed there: 100,000 files peaked at
/// 78.8 MiB RSS with the default and 70 MiB with this (`scripts/bench --only scale`).
/// Buffers of records and requests stay below it, in the arenas.
///
/// An operator's `MALLOC_ARENA_MAX` or `MALLOC_MMAP_THRESHOLD_` wins. Must run before the agent
/// starts any thread.
pub fn tune_malloc() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    {
        if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
            // SAFETY: `mallopt` only sets an allocator parameter and may be called at any
            // time; M_ARENA_MAX applies to arenas created afterwards, and no thread but this
            // one has been started yet.
            unsafe {
                libc::mallopt(libc::M_ARENA_MAX, 1);
            }
        }
        if std::env::var_os("MALLOC_MMAP_THRESHOLD_").is_none() {
            // SAFETY: as above; M_MMAP_THRESHOLD applies to allocations made afterwards.
            unsafe {
                libc::mallopt(libc::M_MMAP_THRESHOLD, MMAP_THRESHOLD);
            }
        }
    }
}

/// Gives the pages of freed memory back to the system (glibc's `malloc_trim`). Freed small
/// blocks stay in malloc's arenas, and a start with 100,000 files frees the many small blocks
/// of its listing and of the files it opened among the ones still in use, so the arena cannot
/// shrink from its top: 100,000 idle files held 47 MiB of anonymous memory, 29 MiB after one
/// trim. Called after such a release (the start's waiting list drained, many descriptions let
/// go of); it takes a few milliseconds on a heap of tens of MB. Nothing on other C libraries.
pub fn release_free_memory() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    // SAFETY: `malloc_trim` only returns free memory of the allocator's own arenas to the
    // system; it takes the arenas' locks itself and may be called from any thread at any time.
    unsafe {
        libc::malloc_trim(0);
    }
}

/// See [`tune_malloc`]: above the largest buffer the pipeline allocates per read or call (256
/// KiB read chunks, a PutRecords body of a few hundred KB), below the tables of a flow of many
/// files.
#[cfg(all(target_os = "linux", target_env = "gnu"))]
const MMAP_THRESHOLD: libc::c_int = 1024 * 1024;

/// The open-files limit (`RLIMIT_NOFILE`) before and after [`raise_open_files_limit`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenFilesLimit {
    pub soft_before: u64,
    pub soft: u64,
    pub hard: u64,
}

/// Raises the soft limit of open files to the hard limit: every tailed file holds a descriptor,
/// and systemd's default soft limit (1,024) is too few for a flow with many files, while its
/// hard limit (524,288 since systemd 240; the unit sets 65,536) is plenty. None when the limit
/// cannot be read; a failed raise leaves the soft limit as it was.
pub fn raise_open_files_limit() -> Option<OpenFilesLimit> {
    let mut limit = get_open_files_limit()?;
    let soft_before = limit.rlim_cur;
    if limit.rlim_cur < limit.rlim_max {
        let raised = libc::rlimit {
            rlim_cur: limit.rlim_max,
            rlim_max: limit.rlim_max,
        };
        // SAFETY: setrlimit only reads the `rlimit` value passed by pointer, which lives on
        // this stack frame for the whole call.
        if unsafe { libc::setrlimit(libc::RLIMIT_NOFILE, &raised) } == 0 {
            limit.rlim_cur = limit.rlim_max;
        }
    }
    Some(OpenFilesLimit {
        soft_before,
        soft: limit.rlim_cur,
        hard: limit.rlim_max,
    })
}

/// The open-files limit now.
pub fn open_files_limit() -> Option<OpenFilesLimit> {
    let limit = get_open_files_limit()?;
    Some(OpenFilesLimit {
        soft_before: limit.rlim_cur,
        soft: limit.rlim_cur,
        hard: limit.rlim_max,
    })
}

fn get_open_files_limit() -> Option<libc::rlimit> {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit only writes the `rlimit` value passed by pointer, which lives on this
    // stack frame for the whole call.
    (unsafe { libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) } == 0).then_some(limit)
}

/// The fix to name when opening or listing failed because the agent (EMFILE) or the whole
/// system (ENFILE) has too many files open; None for other errors.
pub fn too_many_open_files_fix(e: &std::io::Error) -> Option<&'static str> {
    match e.raw_os_error() {
        Some(libc::EMFILE) => Some(
            "the agent has as many files open as its limit allows. Fix: raise the limit (`systemctl edit aws-kinesis-agent`, then `[Service]` and `LimitNOFILE=262144`, and restart), or narrow filePattern to fewer files. Files already tailed keep shipping; this is retried",
        ),
        Some(libc::ENFILE) => Some(
            "the system has as many files open as fs.file-max allows. Fix: raise it (`sysctl -w fs.file-max=...`) or find the process holding them. Files already tailed keep shipping; this is retried",
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_path_has_no_unsearchable_directory_and_gets_the_acl_fix() {
        let dir = tempfile::tempdir().expect("tempdir");
        assert_eq!(first_unsearchable_dir(dir.path()), None);
        let file = dir.path().join("app.log");
        let fix = permission_fix(&file, "r");
        assert!(fix.starts_with("Fix: `setfacl -m u:"), "{fix}");
        assert!(fix.contains(&format!(":r {}`", file.display())), "{fix}");
        assert!(fix.contains("override-read-all-logs.conf"), "{fix}");
    }

    #[test]
    fn the_current_user_is_the_one_id_names() {
        let id = |arg: &str| {
            let out = std::process::Command::new("id")
                .arg(arg)
                .output()
                .expect("run id");
            String::from_utf8(out.stdout)
                .expect("utf-8")
                .trim()
                .to_string()
        };
        let (name, uid) = (id("-un"), id("-u"));
        assert_eq!(current_user(), format!("{name} (uid {uid})"));
        assert_eq!(current_user_for_acl(), name);
    }

    #[test]
    fn too_many_open_files_names_the_limit_fix() {
        let emfile = std::io::Error::from_raw_os_error(libc::EMFILE);
        assert!(too_many_open_files_fix(&emfile).is_some_and(|m| m.contains("LimitNOFILE")));
        let enfile = std::io::Error::from_raw_os_error(libc::ENFILE);
        assert!(too_many_open_files_fix(&enfile).is_some_and(|m| m.contains("fs.file-max")));
        let other = std::io::Error::from_raw_os_error(libc::EIO);
        assert_eq!(too_many_open_files_fix(&other), None);
    }

    #[test]
    fn the_soft_open_files_limit_is_raised_to_the_hard_limit() {
        let limit = raise_open_files_limit().expect("getrlimit");
        assert_eq!(limit.soft, limit.hard);
        assert!(limit.soft >= limit.soft_before);
    }
}
