//! Facts about the running process that messages need: which user the agent runs as.

use std::os::unix::fs::MetadataExt;

/// `name (uid N)` of the user the agent runs as, for messages about permissions.
pub fn current_user() -> String {
    // /proc/self is owned by the process's effective uid: no libc call (and no unsafe) needed.
    let Ok(meta) = std::fs::metadata("/proc/self") else {
        return "the agent's user".to_string();
    };
    let uid = meta.uid();
    let name = std::fs::read_to_string("/etc/passwd")
        .ok()
        .and_then(|passwd| {
            passwd.lines().find_map(|line| {
                let mut fields = line.split(':');
                let name = fields.next()?;
                let id = fields.nth(1)?;
                (id.parse::<u32>().ok()? == uid).then(|| name.to_string())
            })
        });
    match name {
        Some(name) => format!("{name} (uid {uid})"),
        None => format!("uid {uid}"),
    }
}
