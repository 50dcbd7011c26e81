//! Facts about users that messages and `check` need: which user the agent runs as, and
//! `/etc/passwd` read without libc.

use std::os::unix::fs::MetadataExt;

/// One line of `/etc/passwd`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PasswdEntry {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
}

/// `name:password:uid:gid:...` lines; malformed lines and comments are skipped.
pub fn parse_passwd(text: &str) -> Vec<PasswdEntry> {
    text.lines()
        .filter(|line| !line.trim_start().starts_with('#'))
        .filter_map(|line| {
            let mut fields = line.split(':');
            let name = fields.next()?.trim();
            let _password = fields.next()?;
            let uid = fields.next()?.trim().parse().ok()?;
            let gid = fields.next()?.trim().parse().ok()?;
            (!name.is_empty()).then(|| PasswdEntry {
                name: name.to_string(),
                uid,
                gid,
            })
        })
        .collect()
}

/// `name (uid N)` of the user the agent runs as, for messages about permissions.
pub fn current_user() -> String {
    // /proc/self is owned by the process's effective uid: no libc call (and no unsafe) needed.
    let Ok(meta) = std::fs::metadata("/proc/self") else {
        return "the agent's user".to_string();
    };
    let uid = meta.uid();
    let passwd = std::fs::read_to_string("/etc/passwd").unwrap_or_default();
    let name = parse_passwd(&passwd)
        .into_iter()
        .find(|e| e.uid == uid)
        .map(|e| e.name);
    match name {
        Some(name) => format!("{name} (uid {uid})"),
        None => format!("uid {uid}"),
    }
}

/// Caps glibc's malloc at two arenas instead of one per thread that allocates (up to eight per
/// core): each arena keeps freed memory of its own. Measured on the 1,000,000-line backlog
/// (README, "Benchmark"): two arenas kept the CPU per record of eight (one arena cost 25 % more
/// CPU: the threads then wait for each other's allocations) with less peak RSS. An operator's
/// `MALLOC_ARENA_MAX` wins.
///
/// Must run before the agent starts any thread.
pub fn limit_malloc_arenas() {
    #[cfg(all(target_os = "linux", target_env = "gnu"))]
    if std::env::var_os("MALLOC_ARENA_MAX").is_none() {
        // SAFETY: `mallopt` only sets an allocator parameter and may be called at any time;
        // M_ARENA_MAX applies to arenas created afterwards, and no thread but this one has
        // been started yet.
        unsafe {
            libc::mallopt(libc::M_ARENA_MAX, 2);
        }
    }
}
