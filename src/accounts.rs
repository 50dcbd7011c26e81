//! The system's user database, asked through NSS (`getpwnam_r` and friends), so users and groups
//! from LDAP, SSSD or any other source `nsswitch.conf` names are found as well as those in
//! `/etc/passwd` and `/etc/group`.
//!
//! Owns: the libc lookups (users by name and uid, groups by name and gid, a user's groups) and
//! their buffers; the [`UserDb`] seam that `check`'s decisions take, so its tests use a table;
//! the agent's own user ([`me`]), looked up once and kept.
//! Does not own: what messages say about users ([`crate::sys::permission_fix`], `check`'s
//! report), access decisions (`check`).

use std::ffi::{CStr, CString};
use std::sync::OnceLock;

/// A user as the user database has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserEntry {
    pub name: String,
    pub uid: u32,
    /// The primary group.
    pub gid: u32,
}

/// A group as the user database has it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupEntry {
    pub name: String,
    pub gid: u32,
}

/// What `check` asks of the user database. [`Nss`] asks the system; tests use a table.
pub trait UserDb {
    fn user_by_name(&self, name: &str) -> Option<UserEntry>;
    fn user_by_uid(&self, uid: u32) -> Option<UserEntry>;
    fn group_by_name(&self, name: &str) -> Option<GroupEntry>;
    fn group_by_gid(&self, gid: u32) -> Option<GroupEntry>;
    /// The ids of every group `user` is in: its primary group and the groups that list it.
    fn groups_of(&self, user: &UserEntry) -> Vec<u32>;
}

/// The system's user database, through the C library's NSS lookups. None means not found, or
/// the lookup failed (a name that is not valid C, a source that did not answer).
#[derive(Debug, Clone, Copy, Default)]
pub struct Nss;

impl UserDb for Nss {
    fn user_by_name(&self, name: &str) -> Option<UserEntry> {
        let name = CString::new(name).ok()?;
        lookup_passwd(|pwd, buf, result| {
            // SAFETY: `name` is a NUL-terminated string alive for the call; `pwd`, `result`
            // and the `buf.len()` bytes of `buf` are ours, writable and alive for the call,
            // and getpwnam_r writes nothing outside them.
            unsafe { libc::getpwnam_r(name.as_ptr(), pwd, buf.as_mut_ptr(), buf.len(), result) }
        })
    }

    fn user_by_uid(&self, uid: u32) -> Option<UserEntry> {
        lookup_passwd(|pwd, buf, result| {
            // SAFETY: `pwd`, `result` and the `buf.len()` bytes of `buf` are ours, writable and
            // alive for the call, and getpwuid_r writes nothing outside them.
            unsafe { libc::getpwuid_r(uid, pwd, buf.as_mut_ptr(), buf.len(), result) }
        })
    }

    fn group_by_name(&self, name: &str) -> Option<GroupEntry> {
        let name = CString::new(name).ok()?;
        lookup_group(|grp, buf, result| {
            // SAFETY: as in `user_by_name`, for getgrnam_r and a `group`.
            unsafe { libc::getgrnam_r(name.as_ptr(), grp, buf.as_mut_ptr(), buf.len(), result) }
        })
    }

    fn group_by_gid(&self, gid: u32) -> Option<GroupEntry> {
        lookup_group(|grp, buf, result| {
            // SAFETY: as in `user_by_uid`, for getgrgid_r and a `group`.
            unsafe { libc::getgrgid_r(gid, grp, buf.as_mut_ptr(), buf.len(), result) }
        })
    }

    fn groups_of(&self, user: &UserEntry) -> Vec<u32> {
        let Ok(name) = CString::new(user.name.as_str()) else {
            return vec![user.gid];
        };
        let mut groups: Vec<libc::gid_t> = vec![0; 64];
        loop {
            let mut count = libc::c_int::try_from(groups.len()).unwrap_or(libc::c_int::MAX);
            // SAFETY: `name` is a NUL-terminated string alive for the call; `groups` has room
            // for `count` gids, and getgrouplist writes at most `count` of them (returning -1,
            // with the number it needs in `count`, when they do not fit).
            let rc = unsafe {
                libc::getgrouplist(name.as_ptr(), user.gid, groups.as_mut_ptr(), &mut count)
            };
            let count = usize::try_from(count).unwrap_or(0);
            if rc >= 0 {
                groups.truncate(count.min(groups.len()));
                return groups;
            }
            // glibc says how many it needs; other C libraries may not, so at least double.
            let needed = count.max(groups.len() * 2);
            if needed > MAX_GROUPS {
                return vec![user.gid];
            }
            groups.resize(needed, 0);
        }
    }
}

/// The user the agent runs as: its effective ids, and its name when the user database has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Me {
    pub uid: u32,
    pub gid: u32,
    pub name: Option<&'static str>,
}

/// The user the agent runs as. The name is looked up the first time the database answers and
/// kept (the agent's user does not change while it runs); until then each call asks again, so
/// a directory service that was not up yet at the first message is asked once it is.
pub fn me() -> Me {
    static NAME: OnceLock<String> = OnceLock::new();
    // SAFETY: geteuid and getegid take no arguments, touch no memory and cannot fail.
    let (uid, gid) = unsafe { (libc::geteuid(), libc::getegid()) };
    let name = match NAME.get() {
        Some(name) => Some(name.as_str()),
        None => Nss
            .user_by_uid(uid)
            .map(|user| NAME.get_or_init(|| user.name).as_str()),
    };
    Me { uid, gid, name }
}

/// The first buffer for one entry's strings (glibc's `_SC_GETPW_R_SIZE_MAX` is 1,024; a group
/// with many members needs more, and the buffer grows on ERANGE).
const FIRST_BUFFER: usize = 4096;
/// Beyond this an entry is not believed (a group of about a million members).
const MAX_BUFFER: usize = 32 << 20;
/// Beyond this a user's groups are not believed (Linux allows 65,536 supplementary groups).
const MAX_GROUPS: usize = 1 << 20;

/// Calls `call` (one `get*_r` lookup) with a buffer that doubles while the call answers ERANGE,
/// then makes the answer with `found` while the buffer its strings point into is alive. None
/// when the entry is not found, the lookup fails, or it would need more than [`MAX_BUFFER`].
fn lookup_with_buffer<E, T>(
    mut call: impl FnMut(&mut E, &mut [libc::c_char], &mut *mut E) -> libc::c_int,
    found: impl Fn(&E) -> T,
) -> Option<T> {
    let mut buf: Vec<libc::c_char> = vec![0; FIRST_BUFFER];
    loop {
        // SAFETY: `E` is `passwd` or `group`, C structs of integers and pointers, for which
        // all zero bytes (null pointers) is a valid value; the call overwrites it.
        let mut entry: E = unsafe { std::mem::zeroed() };
        let mut result: *mut E = std::ptr::null_mut();
        match call(&mut entry, &mut buf, &mut result) {
            0 if result.is_null() => return None,
            0 => return Some(found(&entry)),
            libc::EINTR => {}
            libc::ERANGE if buf.len() < MAX_BUFFER => buf.resize(buf.len() * 2, 0),
            _ => return None,
        }
    }
}

fn lookup_passwd(
    call: impl FnMut(&mut libc::passwd, &mut [libc::c_char], &mut *mut libc::passwd) -> libc::c_int,
) -> Option<UserEntry> {
    lookup_with_buffer(call, |pwd: &libc::passwd| UserEntry {
        // SAFETY: after a successful lookup `pw_name` points to a NUL-terminated string in
        // the buffer, which `lookup_with_buffer` keeps alive while this runs.
        name: unsafe { c_string(pwd.pw_name) },
        uid: pwd.pw_uid,
        gid: pwd.pw_gid,
    })
}

fn lookup_group(
    call: impl FnMut(&mut libc::group, &mut [libc::c_char], &mut *mut libc::group) -> libc::c_int,
) -> Option<GroupEntry> {
    lookup_with_buffer(call, |grp: &libc::group| GroupEntry {
        // SAFETY: as in `lookup_passwd`, for `gr_name`.
        name: unsafe { c_string(grp.gr_name) },
        gid: grp.gr_gid,
    })
}

/// The string at `ptr` (empty for null; bytes that are not UTF-8 replaced).
///
/// # Safety
/// `ptr` is null or points to a NUL-terminated string that stays alive during the call.
unsafe fn c_string(ptr: *const libc::c_char) -> String {
    if ptr.is_null() {
        return String::new();
    }
    // SAFETY: the caller promises a live NUL-terminated string.
    unsafe { CStr::from_ptr(ptr) }
        .to_string_lossy()
        .into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What `id` prints with `args`, trimmed.
    fn id(args: &[&str]) -> String {
        let out = std::process::Command::new("id")
            .args(args)
            .output()
            .expect("run id");
        assert!(out.status.success(), "id {args:?}: {out:?}");
        String::from_utf8(out.stdout)
            .expect("utf-8")
            .trim()
            .to_string()
    }

    #[test]
    fn me_is_who_id_says() {
        let me = me();
        assert_eq!(me.uid.to_string(), id(&["-u"]));
        assert_eq!(me.gid.to_string(), id(&["-g"]));
        assert_eq!(me.name, Some(id(&["-un"]).as_str()));
        // Kept: the second answer is the same string, not a second lookup.
        assert!(std::ptr::eq(me.name.unwrap(), super::me().name.unwrap()));
    }

    #[test]
    fn users_are_found_by_name_and_uid() {
        let name = id(&["-un"]);
        let uid: u32 = id(&["-u"]).parse().expect("uid");
        let by_name = Nss.user_by_name(&name).expect("by name");
        assert_eq!((by_name.name.as_str(), by_name.uid), (name.as_str(), uid));
        assert_eq!(Nss.user_by_uid(uid), Some(by_name.clone()));
        assert!(Nss.groups_of(&by_name).contains(&by_name.gid));
        let root = Nss.user_by_uid(0).expect("root");
        assert_eq!((root.name.as_str(), root.gid), ("root", 0));
    }

    #[test]
    fn groups_are_found_by_gid_and_name() {
        assert_eq!(
            Nss.group_by_gid(0).map(|g| g.name),
            Some("root".to_string())
        );
        assert_eq!(Nss.group_by_name("root").map(|g| g.gid), Some(0));
    }

    #[test]
    fn unknown_users_and_groups_are_none() {
        // Far above any uid a system or a directory hands out, and not (uid_t)-2, which was
        // nfsnobody on older Red Hat systems.
        assert_eq!(Nss.user_by_uid(3_999_999_937), None);
        assert_eq!(Nss.group_by_gid(3_999_999_937), None);
        assert_eq!(Nss.user_by_name("no-such-user-kinesis-agent-test"), None);
        assert_eq!(Nss.group_by_name("no-such-group-kinesis-agent-test"), None);
        assert_eq!(Nss.user_by_name("nul\0in name"), None);
    }

    #[test]
    fn the_buffer_grows_on_erange_until_the_entry_fits() {
        let mut sizes = Vec::new();
        let got = lookup_with_buffer(
            |entry: &mut libc::group, buf, result| {
                sizes.push(buf.len());
                if buf.len() < 3 * FIRST_BUFFER {
                    return libc::ERANGE;
                }
                entry.gr_gid = 7;
                *result = entry;
                0
            },
            |grp| grp.gr_gid,
        );
        assert_eq!(got, Some(7));
        assert_eq!(sizes, [FIRST_BUFFER, 2 * FIRST_BUFFER, 4 * FIRST_BUFFER]);
        // A lookup that never fits gives up at the cap.
        let mut calls = 0;
        let never = lookup_with_buffer(
            |_: &mut libc::group, _, _| {
                calls += 1;
                libc::ERANGE
            },
            |grp| grp.gr_gid,
        );
        assert_eq!(never, None);
        assert_eq!(1 << (calls - 1), MAX_BUFFER / FIRST_BUFFER);
    }
}
