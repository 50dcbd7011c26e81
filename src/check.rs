//! `aws-kinesis-agent check`: can the service's user read every log the configuration names, and
//! (with `--aws`) do the credentials and the destinations work?
//!
//! Owns: which user to check and the owners' and groups' names in messages (asked of
//! [`crate::accounts`] through its `UserDb` seam, kept once asked), the service's systemd
//! drop-ins (capabilities, supplementary groups), the Unix access decision (owner, group and
//! other mode bits; POSIX ACLs through `getfacl` when it is installed), which directory or file
//! blocks a log and the fix, and the report; with `--aws`, which Firehose delivery streams read
//! each Kinesis stream (only said, never a problem). The decisions are pure functions of the
//! facts; the functions that gather facts (stat, getfacl, the AWS calls) are kept apart at the
//! bottom. Does not own: the user database lookups themselves (`accounts`).

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Write as _;
use std::io;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::accounts::{Nss, UserDb, UserEntry};
use crate::config::{AgentPlan, Destination};
use crate::discovery::PathMatcher;

/// The user the packaged service runs as (as the Java agent's).
pub const SERVICE_USER: &str = "aws-kinesis-agent-user";
/// Where `systemctl edit` and the README put drop-ins for the service.
pub const DROP_IN_DIR: &str = "/etc/systemd/system/aws-kinesis-agent.service.d";
/// The documented drop-in that lets the service read every log (`packaging/` in the sources).
pub const DROP_IN_EXAMPLE: &str =
    "/usr/share/doc/aws-kinesis-agent/examples/override-read-all-logs.conf";
/// Bound on each AWS call of `--aws` (the SDK retries inside it).
const AWS_CALL_TIMEOUT: Duration = Duration::from_secs(30);

// ---------------------------------------------------------------------------------------------
// Users and groups.

/// The host's users and groups ([`crate::accounts`]), for looking up the user to check and for
/// the names of owners and groups in messages. The names are kept once asked: the report names
/// the same few owners on many lines, and each lookup may be a directory server's round trip.
pub struct Accounts {
    db: Box<dyn UserDb>,
    user_names: RefCell<BTreeMap<u32, String>>,
    group_names: RefCell<BTreeMap<u32, String>>,
}

impl Accounts {
    /// The system's user database (NSS: `/etc/passwd` and `/etc/group`, LDAP, SSSD, ...).
    pub fn from_host() -> Accounts {
        Accounts::new(Box::new(Nss))
    }

    pub fn new(db: Box<dyn UserDb>) -> Accounts {
        Accounts {
            db,
            user_names: RefCell::default(),
            group_names: RefCell::default(),
        }
    }

    /// The user named `spec`, or with uid `spec` when it is a number no user is named.
    pub fn user(&self, spec: &str) -> Option<User> {
        let entry = self.db.user_by_name(spec).or_else(|| {
            let uid: u32 = spec.parse().ok()?;
            self.db.user_by_uid(uid)
        })?;
        Some(self.user_from(&entry))
    }

    /// The user with `uid`; a uid the user database does not know gets only `gid` as its group.
    pub fn user_by_uid(&self, uid: u32, gid: u32) -> User {
        match self.db.user_by_uid(uid) {
            Some(entry) => self.user_from(&entry),
            None => User::new(format!("uid {uid}"), uid, gid, BTreeSet::from([gid])),
        }
    }

    fn user_from(&self, entry: &UserEntry) -> User {
        let mut groups = BTreeSet::from([entry.gid]);
        groups.extend(self.db.groups_of(entry));
        User::new(entry.name.clone(), entry.uid, entry.gid, groups)
    }

    pub fn user_name(&self, uid: u32) -> String {
        self.user_names
            .borrow_mut()
            .entry(uid)
            .or_insert_with(|| {
                self.db
                    .user_by_uid(uid)
                    .map_or_else(|| uid.to_string(), |e| e.name)
            })
            .clone()
    }

    pub fn group_name(&self, gid: u32) -> String {
        self.group_names
            .borrow_mut()
            .entry(gid)
            .or_insert_with(|| {
                self.db
                    .group_by_gid(gid)
                    .map_or_else(|| gid.to_string(), |g| g.name)
            })
            .clone()
    }

    pub fn gid_of(&self, name: &str) -> Option<u32> {
        self.db
            .group_by_name(name)
            .map(|g| g.gid)
            .or_else(|| name.parse().ok())
    }
}

/// The user whose access is checked.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct User {
    pub name: String,
    pub uid: u32,
    pub gid: u32,
    /// Primary and supplementary group ids.
    pub groups: BTreeSet<u32>,
    /// Why this user reads every file and enters every directory whatever their modes (root,
    /// or `CAP_DAC_READ_SEARCH` from a drop-in), when it does.
    pub reads_everything: Option<String>,
}

impl User {
    pub fn new(name: String, uid: u32, gid: u32, groups: BTreeSet<u32>) -> User {
        let reads_everything = (uid == 0).then(|| "root reads every file".to_string());
        User {
            name,
            uid,
            gid,
            groups,
            reads_everything,
        }
    }

    /// `nobody (uid 65534, groups nogroup)`.
    pub fn describe(&self, accounts: &Accounts) -> String {
        let groups: Vec<String> = self
            .groups
            .iter()
            .map(|g| accounts.group_name(*g))
            .collect();
        let mut text = format!(
            "{} (uid {}, groups {})",
            self.name,
            self.uid,
            groups.join(", ")
        );
        if let Some(why) = &self.reads_everything {
            let _ = write!(text, "; {why}");
        }
        text
    }
}

/// What the service's drop-ins change about its user.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DropIns {
    /// The drop-in that grants `CAP_DAC_READ_SEARCH` (or `CAP_DAC_OVERRIDE`) in both the
    /// bounding and the ambient set, if one does.
    pub reads_everything: Option<PathBuf>,
    /// `SupplementaryGroups=` names.
    pub supplementary_groups: Vec<String>,
}

/// Reads drop-in files in the order given (systemd's: by file name). Only what `check` needs:
/// `AmbientCapabilities=`, `CapabilityBoundingSet=` and `SupplementaryGroups=`; an empty
/// assignment resets the list, as in systemd.
pub fn parse_drop_ins(files: &[(PathBuf, String)]) -> DropIns {
    let read_caps = ["CAP_DAC_READ_SEARCH", "CAP_DAC_OVERRIDE"];
    let mut ambient: Option<&Path> = None;
    let mut bounding = false;
    let mut groups = Vec::new();
    for (file, text) in files {
        for line in text.lines() {
            let line = line.trim();
            if line.starts_with('#') || line.starts_with(';') {
                continue;
            }
            let Some((key, value)) = line.split_once('=') else {
                continue;
            };
            let value = value.trim();
            let grants = !value.starts_with('~')
                && value.split_whitespace().any(|cap| read_caps.contains(&cap));
            match key.trim() {
                "AmbientCapabilities" if value.is_empty() => ambient = None,
                "AmbientCapabilities" if grants => ambient = Some(file),
                "CapabilityBoundingSet" if value.is_empty() => bounding = false,
                "CapabilityBoundingSet" if grants => bounding = true,
                "SupplementaryGroups" if value.is_empty() => groups.clear(),
                "SupplementaryGroups" => {
                    groups.extend(value.split_whitespace().map(str::to_string))
                }
                _ => {}
            }
        }
    }
    DropIns {
        reads_everything: ambient.filter(|_| bounding).map(Path::to_path_buf),
        supplementary_groups: groups,
    }
}

impl DropIns {
    /// The service user as the drop-ins make it.
    pub fn apply(&self, user: &mut User, accounts: &Accounts) {
        user.groups.extend(
            self.supplementary_groups
                .iter()
                .filter_map(|g| accounts.gid_of(g)),
        );
        if let (None, Some(file)) = (&user.reads_everything, &self.reads_everything) {
            user.reads_everything = Some(format!(
                "CAP_DAC_READ_SEARCH from {} reads every file",
                file.display()
            ));
        }
    }
}

// ---------------------------------------------------------------------------------------------
// The access decision.

/// Owner, group and mode of a file or directory.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Node {
    pub uid: u32,
    pub gid: u32,
    /// `st_mode` (file type bits included).
    pub mode: u32,
}

impl Node {
    pub fn is_dir(&self) -> bool {
        self.mode & 0o170000 == 0o040000
    }
}

/// What the agent does with a path on the way to a log.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Need {
    /// Pass through a directory (search, `x`).
    Enter,
    /// List a directory the pattern's files are found in (`r` and `x`).
    List,
    /// Read a file (`r`).
    Read,
}

impl Need {
    fn bits(self) -> u32 {
        match self {
            Need::Enter => 0o1,
            Need::List => 0o5,
            Need::Read => 0o4,
        }
    }

    /// For `chmod`/`setfacl`: `x`, `rx`, `r`.
    pub fn letters(self) -> &'static str {
        match self {
            Need::Enter => "x",
            Need::List => "rx",
            Need::Read => "r",
        }
    }

    fn verb(self) -> &'static str {
        match self {
            Need::Enter => "cannot enter directory",
            Need::List => "cannot list directory",
            Need::Read => "cannot read file",
        }
    }
}

/// Which set of mode bits applies to a user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Class {
    Owner,
    Group,
    Other,
}

pub fn class_of(user: &User, node: &Node) -> Class {
    if node.uid == user.uid {
        Class::Owner
    } else if user.groups.contains(&node.gid) {
        Class::Group
    } else {
        Class::Other
    }
}

/// The kernel's decision from the mode bits alone (only one class applies: an owner without
/// the owner bits is refused even when "other" would allow it).
pub fn mode_allows(user: &User, node: &Node, need: Need) -> bool {
    if user.reads_everything.is_some() {
        return true;
    }
    let shift = match class_of(user, node) {
        Class::Owner => 6,
        Class::Group => 3,
        Class::Other => 0,
    };
    (node.mode >> shift) & need.bits() == need.bits()
}

/// One entry of a POSIX access ACL.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AclTag {
    UserObj,
    User(u32),
    GroupObj,
    Group(u32),
    Mask,
    Other,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct AclEntry {
    pub tag: AclTag,
    /// `rwx` as 0o4 | 0o2 | 0o1.
    pub perms: u32,
}

/// The access ACL in `getfacl -n` output (numeric ids); `default:` entries and comments,
/// including `#effective:` remarks, are ignored.
pub fn parse_getfacl(text: &str) -> Vec<AclEntry> {
    text.lines()
        .filter_map(|line| {
            let line = line.split('#').next()?.trim();
            let mut fields = line.split(':');
            let kind = fields.next()?;
            let qualifier = fields.next()?;
            let perms = fields.next()?;
            let tag = match (kind, qualifier) {
                ("user", "") => AclTag::UserObj,
                ("user", id) => AclTag::User(id.parse().ok()?),
                ("group", "") => AclTag::GroupObj,
                ("group", id) => AclTag::Group(id.parse().ok()?),
                ("mask", _) => AclTag::Mask,
                ("other", _) => AclTag::Other,
                _ => return None,
            };
            let bits = perms
                .chars()
                .map(|c| match c {
                    'r' => 0o4,
                    'w' => 0o2,
                    'x' => 0o1,
                    _ => 0,
                })
                .sum();
            Some(AclEntry { tag, perms: bits })
        })
        .collect()
}

/// The kernel's POSIX ACL decision: owner entry, else a named user entry (masked), else any
/// matching group entry that grants (masked; matching ones that do not grant refuse), else
/// other. None when `acl` has no entries.
pub fn acl_allows(user: &User, node: &Node, acl: &[AclEntry], need: Need) -> Option<bool> {
    if acl.is_empty() {
        return None;
    }
    if user.reads_everything.is_some() {
        return Some(true);
    }
    let grants = |perms: u32| perms & need.bits() == need.bits();
    let mask = acl
        .iter()
        .find(|e| e.tag == AclTag::Mask)
        .map_or(0o7, |e| e.perms);
    if node.uid == user.uid {
        let owner = acl.iter().find(|e| e.tag == AclTag::UserObj);
        return Some(owner.is_some_and(|e| grants(e.perms)));
    }
    if let Some(named) = acl.iter().find(|e| e.tag == AclTag::User(user.uid)) {
        return Some(grants(named.perms & mask));
    }
    let groups: Vec<&AclEntry> = acl
        .iter()
        .filter(|e| match e.tag {
            AclTag::GroupObj => user.groups.contains(&node.gid),
            AclTag::Group(gid) => user.groups.contains(&gid),
            _ => false,
        })
        .collect();
    if !groups.is_empty() {
        return Some(groups.iter().any(|e| grants(e.perms & mask)));
    }
    let other = acl.iter().find(|e| e.tag == AclTag::Other);
    Some(other.is_some_and(|e| grants(e.perms)))
}

/// The checks the kernel makes on the way to `file`: enter every directory above `base_dir`,
/// list `base_dir` and every directory between it and the file (the agent lists them to find
/// the pattern's files), read the file. For a file outside `base_dir`, enter every directory.
pub fn steps(file: &Path, base_dir: &Path) -> Vec<(PathBuf, Need)> {
    let mut dirs: Vec<PathBuf> = file
        .ancestors()
        .skip(1)
        .filter(|d| !d.as_os_str().is_empty())
        .map(Path::to_path_buf)
        .collect();
    dirs.reverse();
    let mut steps: Vec<(PathBuf, Need)> = dirs
        .into_iter()
        .map(|dir| {
            let need = if dir.starts_with(base_dir) {
                Need::List
            } else {
                Need::Enter
            };
            (dir, need)
        })
        .collect();
    steps.push((file.to_path_buf(), Need::Read));
    steps
}

/// The base directory alone: enter every directory above it, list it.
pub fn base_steps(base_dir: &Path) -> Vec<(PathBuf, Need)> {
    let mut steps = steps(base_dir, base_dir);
    if let Some(last) = steps.last_mut() {
        last.1 = Need::List;
    }
    steps
}

/// A path the user cannot get past.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Blocker {
    pub path: PathBuf,
    pub node: Node,
    pub need: Need,
}

/// What walking the steps found.
#[derive(Debug)]
pub enum Walk {
    Ok,
    Blocked(Blocker),
    /// A step could not be inspected (by the user running `check`).
    Unknown(PathBuf, io::Error),
}

/// The first step the user cannot take, from the facts `stat` and `acl` give. `acl` is only
/// asked when the mode bits refuse (an ACL's mask shows in the group bits, so a named entry is
/// the only way an ACL grants what the bits refuse).
pub fn first_blocker(
    user: &User,
    steps: &[(PathBuf, Need)],
    mut stat: impl FnMut(&Path) -> io::Result<Node>,
    mut acl: impl FnMut(&Path) -> Option<Vec<AclEntry>>,
) -> Walk {
    for (path, need) in steps {
        let node = match stat(path) {
            Ok(node) => node,
            Err(e) => return Walk::Unknown(path.clone(), e),
        };
        if mode_allows(user, &node, *need) {
            continue;
        }
        let by_acl = acl(path).and_then(|entries| acl_allows(user, &node, &entries, *need));
        if by_acl != Some(true) {
            return Walk::Blocked(Blocker {
                path: path.clone(),
                node,
                need: *need,
            });
        }
    }
    Walk::Ok
}

/// `drwx------`.
pub fn mode_string(node: &Node) -> String {
    let mut s = String::with_capacity(10);
    s.push(if node.is_dir() { 'd' } else { '-' });
    for shift in [6, 3, 0] {
        let bits = node.mode >> shift;
        s.push(if bits & 0o4 != 0 { 'r' } else { '-' });
        s.push(if bits & 0o2 != 0 { 'w' } else { '-' });
        s.push(if bits & 0o1 != 0 { 'x' } else { '-' });
    }
    s
}

/// `nobody cannot enter directory /home/alice (drwx------ alice:alice)`.
pub fn describe_blocker(user: &User, b: &Blocker, accounts: &Accounts) -> String {
    format!(
        "{} {} {} ({} {}:{})",
        user.name,
        b.need.verb(),
        b.path.display(),
        mode_string(&b.node),
        accounts.user_name(b.node.uid),
        accounts.group_name(b.node.gid)
    )
}

/// Groups whose members may do far more than read logs: never suggested for the agent's user.
const PRIVILEGED_GROUPS: &[&str] = &[
    "root", "wheel", "sudo", "admin", "shadow", "disk", "docker", "lxd", "kmem",
];

/// What to do about one blocker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Fix {
    /// Alternatives, narrowest first.
    pub alternatives: Vec<String>,
    /// To do as well (files that logrotate creates later).
    pub also: Option<String>,
}

/// The narrowest fixes for one blocker, best first.
pub fn fixes(user: &User, b: &Blocker, accounts: &Accounts) -> Fix {
    let path = b.path.display();
    let letters = b.need.letters();
    let acl = format!("`setfacl -m u:{}:{letters} {path}`", user.name);
    let group = accounts.group_name(b.node.gid);
    let group_grants = (b.node.mode >> 3) & b.need.bits() == b.need.bits()
        && b.node.gid != 0
        && !PRIVILEGED_GROUPS.contains(&group.as_str());
    let alternatives = match class_of(user, &b.node) {
        Class::Owner => vec![format!("`chmod u+{letters} {path}`")],
        Class::Group => vec![
            format!("`chmod g+{letters} {path}` (for all of group {group})"),
            acl,
        ],
        Class::Other if group_grants => vec![
            format!(
                "add {} to group {group}: `usermod -aG {group} {}`, then restart the agent",
                user.name, user.name
            ),
            acl,
        ],
        Class::Other => vec![acl, format!("`chmod o+{letters} {path}` (for everyone)")],
    };
    let also = match (b.need, b.path.parent()) {
        (Need::Read, Some(dir)) => Some(format!(
            "so that files rotated in later are readable too: `setfacl -d -m u:{}:r {}`",
            user.name,
            dir.display()
        )),
        _ => None,
    };
    Fix { alternatives, also }
}

// ---------------------------------------------------------------------------------------------
// The report.

/// What `check` prints, and how many problems it found.
#[derive(Debug, Default)]
pub struct Report {
    pub text: String,
    pub problems: usize,
    pub warnings: usize,
}

impl Report {
    fn line(&mut self, line: impl AsRef<str>) {
        self.text.push_str(line.as_ref());
        self.text.push('\n');
    }

    fn ok(&mut self, what: impl AsRef<str>) {
        self.line(format!("  ok: {}", what.as_ref()));
    }

    fn problem(&mut self, what: impl AsRef<str>) {
        self.problems += 1;
        let text = what.as_ref().replace('\n', "\n    ");
        self.line(format!("  PROBLEM: {text}"));
    }

    /// Something worth knowing that is neither a problem nor a warning (not counted).
    fn note(&mut self, what: impl AsRef<str>) {
        self.line(format!("  note: {}", what.as_ref()));
    }

    fn warning(&mut self, what: impl AsRef<str>) {
        self.warnings += 1;
        self.line(format!("  warning: {}", what.as_ref()));
    }

    fn fix(&mut self, fix: &Fix) {
        if let Some((first, rest)) = fix.alternatives.split_first() {
            self.line(format!("    fix: {first}"));
            for more in rest {
                self.line(format!("     or: {more}"));
            }
        }
        if let Some(also) = &fix.also {
            self.line(format!("   also: {also}"));
        }
    }

    /// The last line: `check: N problem(s)` or `check: OK`.
    pub fn summary(&self) -> String {
        if self.problems == 0 {
            match self.warnings {
                0 => "check: OK".to_string(),
                n => format!("check: OK ({n} warning(s))"),
            }
        } else {
            format!("check: {} problem(s)", self.problems)
        }
    }
}

/// Who `check` checks for: `--user NAME`, else the service user when it exists, else the user
/// running `check`. The service user gets what its drop-ins add.
pub fn resolve_user(spec: Option<&str>, accounts: &Accounts) -> Result<User, String> {
    let mut user = match spec {
        Some(spec) => accounts.user(spec).ok_or_else(|| {
            format!("no user '{spec}' in the user database (`getent passwd {spec}` finds none)")
        })?,
        None => match accounts.user(SERVICE_USER) {
            Some(user) => user,
            None => {
                let me = crate::accounts::me();
                accounts.user_by_uid(me.uid, me.gid)
            }
        },
    };
    if user.name == SERVICE_USER {
        parse_drop_ins(&read_drop_ins(Path::new(DROP_IN_DIR))).apply(&mut user, accounts);
    }
    Ok(user)
}

/// The configuration part of the report: notices from reading it.
pub fn report_config(plan: &AgentPlan, report: &mut Report) {
    let main = plan
        .sources
        .first()
        .map(|p| p.display().to_string())
        .unwrap_or_default();
    let more = plan.sources.len().saturating_sub(1);
    let extra = if more > 0 {
        format!(" and {more} file(s) in the flows directory")
    } else {
        String::new()
    };
    report.line(format!("configuration: {main}{extra}"));
    report.ok(format!("valid, {} flow(s)", plan.flows.len()));
    for n in &plan.warnings {
        report.warning(format!("{}: {}: {}", n.file.display(), n.key, n.message));
    }
    for n in &plan.not_supported {
        report.line(format!(
            "  note: {}: {}: {}",
            n.file.display(),
            n.key,
            n.message
        ));
    }
}

/// Every flow's files: can `user` reach and read them?
pub fn report_files(plan: &AgentPlan, user: &User, accounts: &Accounts, report: &mut Report) {
    report.line("");
    report.line(format!("files, as {}:", user.describe(accounts)));
    let mut blocked_any = false;
    let mut fixed: BTreeSet<PathBuf> = BTreeSet::new();
    for (i, flow) in plan.flows.iter().enumerate() {
        report.line("");
        report.line(format!(
            "flow {} ({} flows[{}]): {} -> {}",
            i + 1,
            flow.source.display(),
            flow.index,
            flow.file_pattern.raw,
            describe_destination(&flow.destination)
        ));
        let base = &flow.file_pattern.base_dir;
        match std::fs::metadata(base) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => {
                let existing = base
                    .ancestors()
                    .skip(1)
                    .find(|a| a.exists())
                    .map(|a| format!(" ({} exists)", a.display()))
                    .unwrap_or_default();
                report.problem(format!(
                    "directory {} does not exist{existing}: no file of this flow can match until it is created (check the filePattern; the agent picks it up once it exists)",
                    base.display()
                ));
                continue;
            }
            Err(e) => {
                report.problem(format!("cannot inspect {}: {e}", base.display()));
                continue;
            }
            Ok(meta) if !meta.is_dir() => {
                report.problem(format!(
                    "{} is not a directory: no file can match {}",
                    base.display(),
                    flow.file_pattern.raw
                ));
                continue;
            }
            Ok(_) => {}
        }
        let matcher = match PathMatcher::new(&flow.file_pattern) {
            Ok(m) => m,
            Err(e) => {
                report.problem(format!("bad filePattern: {e}"));
                continue;
            }
        };
        let scan = matcher.scan();
        for (path, e) in &scan.errors {
            report.problem(format!(
                "cannot list {} (as the user running check): {e}",
                path.display()
            ));
        }
        for dir in &scan.directories {
            report.warning(format!(
                "{} is a directory matching the pattern: skipped (only files are shipped)",
                dir.display()
            ));
        }
        // The agent must be able to list the base directory, also before any file matches.
        let base_blocker = match first_blocker(user, &base_steps(base), stat, getfacl) {
            Walk::Blocked(b) => Some(b),
            _ => None,
        };
        if let Some(b) = &base_blocker {
            blocked_any = true;
            if scan.files.is_empty() {
                report.problem(format!(
                    "{}: the agent cannot find the files of this flow",
                    describe_blocker(user, b, accounts)
                ));
                if fixed.insert(b.path.clone()) {
                    report.fix(&fixes(user, b, accounts));
                }
            }
        }
        if scan.files.is_empty() {
            report.warning(format!(
                "no file matches {} now (the agent ships files that appear later)",
                flow.file_pattern.raw
            ));
        }
        for (file, _) in &scan.files {
            let mut walk_steps = steps(file, base);
            // Through symbolic links, the kernel also walks the real path.
            if let Ok(real) = std::fs::canonicalize(file) {
                if &real != file {
                    for (p, need) in steps(&real, &real) {
                        if !walk_steps.iter().any(|(q, _)| *q == p) {
                            walk_steps.push((p, need));
                        }
                    }
                }
            }
            match first_blocker(user, &walk_steps, stat, getfacl) {
                Walk::Ok => report.ok(file.display().to_string()),
                Walk::Blocked(b) => {
                    blocked_any = true;
                    if fixed.insert(b.path.clone()) {
                        report.problem(format!(
                            "{}: {}",
                            file.display(),
                            describe_blocker(user, &b, accounts)
                        ));
                        report.fix(&fixes(user, &b, accounts));
                    } else {
                        report.problem(format!(
                            "{}: blocked by {} (see above)",
                            file.display(),
                            b.path.display()
                        ));
                    }
                }
                Walk::Unknown(path, e) => report.problem(format!(
                    "{}: cannot inspect {}: {e}",
                    file.display(),
                    path.display()
                )),
            }
        }
    }
    if blocked_any {
        report.line("");
        report.line(format!(
            "To let the service read every log instead: install the drop-in {DROP_IN_EXAMPLE} \
             (packaging/override-read-all-logs.conf in the sources) into {DROP_IN_DIR}/ and \
             restart the agent; it grants CAP_DAC_READ_SEARCH (or, as its second option, \
             SupplementaryGroups=adm). See the README, \"Logs the agent cannot read\"."
        ));
    } else if user.uid == 0 && user.reads_everything.is_some() {
        report.line("");
        report.line(format!(
            "note: checked as root, which reads every file; the service runs as {SERVICE_USER}: use --user to check for another user"
        ));
    }
}

fn describe_destination(d: &Destination) -> String {
    match d {
        Destination::Kinesis { stream, .. } => format!("Kinesis stream '{stream}'"),
        Destination::Firehose {
            delivery_stream, ..
        } => format!("Firehose delivery stream '{delivery_stream}'"),
    }
}

// ---------------------------------------------------------------------------------------------
// AWS: credentials and destinations.

/// `--aws`: the credentials resolve, and every stream and delivery stream exists and is ACTIVE.
pub async fn report_aws(plan: &AgentPlan, report: &mut Report) {
    use aws_credential_types::provider::ProvideCredentials;

    report.line("");
    report.line("AWS:");
    let clients = match crate::aws::clients(plan).await {
        Ok(c) => c,
        Err(e) => {
            report.problem(e.to_string());
            return;
        }
    };
    report.ok(format!("region {}", clients.region));
    let Some(provider) = clients.credentials.clone() else {
        report.problem("no AWS credentials provider is configured");
        return;
    };
    match tokio::time::timeout(AWS_CALL_TIMEOUT, provider.provide_credentials()).await {
        Ok(Ok(creds)) => report.ok(format!(
            "credentials found (access key id {})",
            creds.access_key_id()
        )),
        Ok(Err(e)) => {
            report.problem(format!(
                "no AWS credentials: {}. Fix: set awsAccessKeyId/awsSecretAccessKey in agent.json, AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY in the agent's environment file, a profile, or attach an instance profile.",
                error_chain(&e)
            ));
            return;
        }
        Err(_) => {
            report.problem(format!(
                "no AWS credentials within {} s (instance metadata or a credential process does not answer)",
                AWS_CALL_TIMEOUT.as_secs()
            ));
            return;
        }
    }
    let destinations: BTreeMap<(bool, &str), ()> = plan
        .flows
        .iter()
        .map(|f| {
            (
                (
                    matches!(f.destination, Destination::Firehose { .. }),
                    f.destination.name(),
                ),
                (),
            )
        })
        .collect();
    // Who reads the Kinesis streams is listed once, at the first stream that exists.
    let mut lookup: Option<ReadersLookup> = None;
    for (is_firehose, name) in destinations.keys() {
        if *is_firehose {
            match describe_delivery_stream(&clients.firehose, name).await {
                Ok(line) => report.ok(line),
                Err(line) => report.problem(line),
            }
            continue;
        }
        match describe_stream(&clients.kinesis, name).await {
            Ok((line, arn)) => {
                report.ok(line);
                let Some(arn) = arn else { continue };
                if lookup.is_none() {
                    lookup = Some(kinesis_readers(&clients.firehose).await);
                }
                if let Some(lookup) = &lookup {
                    for line in reader_lines(name, &arn, lookup) {
                        match line {
                            ReaderLine::Ok(text) => report.ok(text),
                            ReaderLine::Note(text) => report.note(text),
                        }
                    }
                }
            }
            Err(line) => report.problem(line),
        }
    }
}

/// A Firehose delivery stream with a Kinesis stream as its source, as `check --aws` saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KinesisReader {
    pub name: String,
    pub status: String,
    pub source_stream_arn: String,
    /// The bucket ARN and prefix of an S3 destination; `None` for other destinations.
    pub s3: Option<(String, String)>,
}

/// What `check --aws` found out about the delivery streams that read Kinesis streams.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReadersLookup {
    Looked {
        readers: Vec<KinesisReader>,
        /// `name (why)` of the listed delivery streams that could not be described.
        undescribed: Vec<String>,
    },
    /// Why it did not look (listing denied or failing).
    DidNotLook(String),
}

/// One line of the report about who reads a stream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ReaderLine {
    Ok(String),
    Note(String),
}

/// What the report says about the delivery streams reading Kinesis stream `stream` (ARN
/// `stream_arn`): each reader with its status and S3 bucket, or that none reads it, or that
/// `check` did not look. None of it is a problem: other consumers may read a stream.
pub fn reader_lines(stream: &str, stream_arn: &str, lookup: &ReadersLookup) -> Vec<ReaderLine> {
    let (readers, undescribed) = match lookup {
        ReadersLookup::DidNotLook(why) => {
            return vec![ReaderLine::Note(format!(
            "did not look for Firehose delivery streams reading Kinesis stream '{stream}': {why}"
        ))]
        }
        ReadersLookup::Looked {
            readers,
            undescribed,
        } => (readers, undescribed),
    };
    let mut lines: Vec<ReaderLine> = readers
        .iter()
        .filter(|r| r.source_stream_arn == stream_arn)
        .map(|r| {
            let to = match &r.s3 {
                Some((bucket_arn, prefix)) => {
                    let bucket = bucket_arn.rsplit(":::").next().unwrap_or(bucket_arn);
                    if prefix.is_empty() {
                        format!("to S3 bucket '{bucket}'")
                    } else {
                        format!("to S3 bucket '{bucket}' under '{prefix}'")
                    }
                }
                None => "to a destination other than S3".to_string(),
            };
            ReaderLine::Ok(format!(
                "Kinesis stream '{stream}' is read by Firehose delivery stream '{}' ({}), delivering {to}",
                r.name, r.status
            ))
        })
        .collect();
    if lines.is_empty() {
        lines.push(ReaderLine::Note(format!(
            "no Firehose delivery stream in this region reads Kinesis stream '{stream}' ({} with a Kinesis source looked at); another consumer may",
            readers.len()
        )));
    }
    if !undescribed.is_empty() {
        lines.push(ReaderLine::Note(format!(
            "could not describe {} delivery stream(s) with a Kinesis source, which may read '{stream}': {}",
            undescribed.len(),
            undescribed.join(", ")
        )));
    }
    lines
}

/// Delivery streams per `ListDeliveryStreams` page (the API's maximum is 10,000; its default 10).
const LIST_PAGE: i32 = 100;
/// Pages `check` reads at most (the default quota is 5,000 delivery streams per region).
const MAX_LIST_PAGES: usize = 100;

/// Every delivery stream with a Kinesis source in the Firehose client's region, described
/// (`firehose:ListDeliveryStreams`, then `firehose:DescribeDeliveryStream` on each).
async fn kinesis_readers(client: &aws_sdk_firehose::Client) -> ReadersLookup {
    use aws_sdk_firehose::types::DeliveryStreamType;

    let target = "Firehose delivery streams";
    let mut names: Vec<String> = Vec::new();
    for _ in 0..MAX_LIST_PAGES {
        let call = client
            .list_delivery_streams()
            .delivery_stream_type(DeliveryStreamType::KinesisStreamAsSource)
            .limit(LIST_PAGE)
            .set_exclusive_start_delivery_stream_name(names.last().cloned())
            .send();
        let page = match tokio::time::timeout(AWS_CALL_TIMEOUT, call).await {
            Err(_) => return ReadersLookup::DidNotLook(no_answer("firehose:ListDeliveryStreams")),
            Ok(Err(e)) => {
                return ReadersLookup::DidNotLook(not_listed(&crate::sink::classify(&e, target)))
            }
            Ok(Ok(page)) => page,
        };
        names.extend(page.delivery_stream_names().iter().cloned());
        if !page.has_more_delivery_streams() || page.delivery_stream_names().is_empty() {
            break;
        }
    }
    let mut readers = Vec::new();
    let mut undescribed = Vec::new();
    for name in names {
        let call = client
            .describe_delivery_stream()
            .delivery_stream_name(&name)
            .send();
        let description = match tokio::time::timeout(AWS_CALL_TIMEOUT, call).await {
            Err(_) => {
                undescribed.push(format!("{name} (no answer)"));
                continue;
            }
            Ok(Err(e)) => {
                let err = crate::sink::classify(&e, target);
                undescribed.push(format!("{name} ({})", err.code));
                continue;
            }
            Ok(Ok(answer)) => answer,
        };
        let Some(d) = description.delivery_stream_description() else {
            continue;
        };
        let Some(source_stream_arn) = d
            .source()
            .and_then(|s| s.kinesis_stream_source_description())
            .and_then(|k| k.kinesis_stream_arn())
        else {
            continue;
        };
        let s3 = d.destinations().iter().find_map(|dest| {
            dest.extended_s3_destination_description()
                .map(|e| (e.bucket_arn(), e.prefix()))
                .or_else(|| {
                    dest.s3_destination_description()
                        .map(|e| (e.bucket_arn(), e.prefix()))
                })
                .map(|(bucket, prefix)| (bucket.to_string(), prefix.unwrap_or("").to_string()))
        });
        readers.push(KinesisReader {
            name,
            status: d.delivery_stream_status().as_str().to_string(),
            source_stream_arn: source_stream_arn.to_string(),
            s3,
        });
    }
    ReadersLookup::Looked {
        readers,
        undescribed,
    }
}

/// Why `check` did not look for the readers of a stream: the listing was refused or failed.
pub fn not_listed(err: &crate::sink::SendError) -> String {
    if err.code.starts_with("AccessDenied") {
        format!(
            "the credentials may not call firehose:ListDeliveryStreams ({}); the agent does not need it: allow it and firehose:DescribeDeliveryStream to see where the records go",
            err.code
        )
    } else {
        format!("firehose:ListDeliveryStreams failed: {err}")
    }
}

/// The stream's verdict line, and its ARN when it exists.
async fn describe_stream(
    client: &aws_sdk_kinesis::Client,
    name: &str,
) -> Result<(String, Option<String>), String> {
    let target = format!("Kinesis stream '{name}'");
    let call = client.describe_stream_summary().stream_name(name).send();
    let answer = match tokio::time::timeout(AWS_CALL_TIMEOUT, call).await {
        Err(_) => return Err(no_answer(&target)),
        Ok(Err(e)) => {
            return Err(call_failed(
                &target,
                "kinesis:DescribeStreamSummary",
                &crate::sink::classify(&e, &target),
            ))
        }
        Ok(Ok(answer)) => answer,
    };
    let summary = answer.stream_description_summary();
    let status = summary
        .map(|s| s.stream_status().as_str().to_string())
        .unwrap_or_else(|| "UNKNOWN".to_string());
    let arn = summary.map(|s| s.stream_arn().to_string());
    status_verdict(&target, &status, &["ACTIVE", "UPDATING"]).map(|line| (line, arn))
}

async fn describe_delivery_stream(
    client: &aws_sdk_firehose::Client,
    name: &str,
) -> Result<String, String> {
    let target = format!("Firehose delivery stream '{name}'");
    let call = client
        .describe_delivery_stream()
        .delivery_stream_name(name)
        .send();
    let answer = match tokio::time::timeout(AWS_CALL_TIMEOUT, call).await {
        Err(_) => return Err(no_answer(&target)),
        Ok(Err(e)) => {
            return Err(call_failed(
                &target,
                "firehose:DescribeDeliveryStream",
                &crate::sink::classify(&e, &target),
            ))
        }
        Ok(Ok(answer)) => answer,
    };
    let status = answer
        .delivery_stream_description()
        .map(|d| d.delivery_stream_status().as_str().to_string())
        .unwrap_or_else(|| "UNKNOWN".to_string());
    status_verdict(&target, &status, &["ACTIVE"])
}

/// ACTIVE (and, for Kinesis, UPDATING: resharding streams take writes) is fine.
pub fn status_verdict(target: &str, status: &str, writable: &[&str]) -> Result<String, String> {
    if writable.contains(&status) {
        Ok(format!("{target} exists and is {status}"))
    } else {
        Err(format!(
            "{target} is {status}, not ACTIVE: the agent's sends fail until it is ACTIVE"
        ))
    }
}

/// An error and its causes, `a: b: c`, each said once.
fn error_chain(e: &(dyn std::error::Error + 'static)) -> String {
    let mut parts: Vec<String> = Vec::new();
    let mut next = Some(e);
    while let Some(err) = next {
        let text = err.to_string();
        if !parts.iter().any(|p| p.contains(&text)) {
            parts.push(text);
        }
        next = err.source();
    }
    parts.join(": ")
}

fn no_answer(target: &str) -> String {
    format!(
        "{target}: no answer within {} s (check the endpoint, the network and any proxy)",
        AWS_CALL_TIMEOUT.as_secs()
    )
}

/// A failed describe call, with what to do. Access denied names the action `check` needs.
pub fn call_failed(target: &str, action: &str, err: &crate::sink::SendError) -> String {
    let code = err.code.as_str();
    if code.starts_with("AccessDenied") {
        return format!(
            "{target}: access denied ({code}): the credentials may not call {action} on it. \
             Fix: grant it (and the agent's put permission) in the IAM policy of the role or \
             user the agent uses; `aws-kinesis-agent iam-policy` prints the policy. ({})",
            err.message
        );
    }
    if code == "ResourceNotFoundException" {
        return format!(
            "{target} does not exist in this account and region. Fix: check the name in the \
             configuration and the region (kinesis.region, AWS_REGION), or create it. ({})",
            err.message
        );
    }
    format!("{target}: {action} failed: {err}")
}

// ---------------------------------------------------------------------------------------------
// Facts from the host.

/// `stat` (symbolic links followed, as the kernel does on the way to a file).
fn stat(path: &Path) -> io::Result<Node> {
    let meta = std::fs::metadata(path)?;
    Ok(Node {
        uid: meta.uid(),
        gid: meta.gid(),
        mode: meta.mode(),
    })
}

/// The access ACL of `path` from `getfacl -n`, or None when getfacl is missing or fails.
fn getfacl(path: &Path) -> Option<Vec<AclEntry>> {
    let out = Command::new("getfacl")
        .args(["-n", "-p", "-c", "--"])
        .arg(path)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| parse_getfacl(&String::from_utf8_lossy(&out.stdout)))
}

/// The `*.conf` files of `dir`, sorted by name, with their text.
fn read_drop_ins(dir: &Path) -> Vec<(PathBuf, String)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut files: Vec<PathBuf> = entries
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|x| x == "conf"))
        .collect();
    files.sort();
    files
        .into_iter()
        .filter_map(|p| {
            let text = std::fs::read_to_string(&p).ok()?;
            Some((p, text))
        })
        .collect()
}

/// Effective uid and gid of this process: `/proc/self` is owned by them.
#[cfg(test)]
mod tests {
    use super::*;
    use crate::accounts::GroupEntry;

    /// A user database of a few users and groups, as `/etc/passwd` and `/etc/group` would have
    /// them: `(name, uid, gid)` and `(name, gid, members)`.
    struct Table {
        users: Vec<(&'static str, u32, u32)>,
        groups: Vec<(&'static str, u32, Vec<&'static str>)>,
    }

    impl Table {
        fn entry(&self, user: Option<&(&str, u32, u32)>) -> Option<UserEntry> {
            user.map(|&(name, uid, gid)| UserEntry {
                name: name.to_string(),
                uid,
                gid,
            })
        }

        fn group(&self, group: Option<&(&str, u32, Vec<&str>)>) -> Option<GroupEntry> {
            group.map(|(name, gid, _)| GroupEntry {
                name: name.to_string(),
                gid: *gid,
            })
        }
    }

    impl UserDb for Table {
        fn user_by_name(&self, name: &str) -> Option<UserEntry> {
            self.entry(self.users.iter().find(|u| u.0 == name))
        }
        fn user_by_uid(&self, uid: u32) -> Option<UserEntry> {
            self.entry(self.users.iter().find(|u| u.1 == uid))
        }
        fn group_by_name(&self, name: &str) -> Option<GroupEntry> {
            self.group(self.groups.iter().find(|g| g.0 == name))
        }
        fn group_by_gid(&self, gid: u32) -> Option<GroupEntry> {
            self.group(self.groups.iter().find(|g| g.1 == gid))
        }
        fn groups_of(&self, user: &UserEntry) -> Vec<u32> {
            let listed = self
                .groups
                .iter()
                .filter(|g| g.2.contains(&user.name.as_str()));
            std::iter::once(user.gid)
                .chain(listed.map(|g| g.1))
                .collect()
        }
    }

    fn accounts() -> Accounts {
        Accounts::new(Box::new(Table {
            users: vec![
                ("root", 0, 0),
                ("alice", 1000, 1000),
                (SERVICE_USER, 998, 998),
                ("nobody", 65534, 65534),
            ],
            groups: vec![
                ("root", 0, vec![]),
                ("adm", 4, vec!["syslog", SERVICE_USER]),
                ("alice", 1000, vec![]),
                (SERVICE_USER, 998, vec![]),
                ("nogroup", 65534, vec![]),
            ],
        }))
    }

    fn node(uid: u32, gid: u32, mode: u32) -> Node {
        Node { uid, gid, mode }
    }

    #[test]
    fn users_and_their_groups_come_from_the_user_database() {
        let a = accounts();
        let agent = a.user(SERVICE_USER).expect("service user");
        assert_eq!((agent.uid, agent.gid), (998, 998));
        assert_eq!(agent.groups, BTreeSet::from([4, 998]));
        assert_eq!(agent.reads_everything, None);
        let by_uid = a.user("65534").expect("by uid");
        assert_eq!(by_uid.name, "nobody");
        assert!(a.user("nosuchuser").is_none());
        assert!(a.user("0").expect("root").reads_everything.is_some());
        assert_eq!(a.user_by_uid(4242, 7).name, "uid 4242");
        assert_eq!(
            agent.describe(&a),
            "aws-kinesis-agent-user (uid 998, groups adm, aws-kinesis-agent-user)"
        );
    }

    /// A user database that counts the lookups of names for messages.
    struct Counting(Table, std::rc::Rc<std::cell::Cell<usize>>);

    impl UserDb for Counting {
        fn user_by_name(&self, name: &str) -> Option<UserEntry> {
            self.0.user_by_name(name)
        }
        fn user_by_uid(&self, uid: u32) -> Option<UserEntry> {
            self.1.set(self.1.get() + 1);
            self.0.user_by_uid(uid)
        }
        fn group_by_name(&self, name: &str) -> Option<GroupEntry> {
            self.0.group_by_name(name)
        }
        fn group_by_gid(&self, gid: u32) -> Option<GroupEntry> {
            self.1.set(self.1.get() + 1);
            self.0.group_by_gid(gid)
        }
        fn groups_of(&self, user: &UserEntry) -> Vec<u32> {
            self.0.groups_of(user)
        }
    }

    #[test]
    fn names_for_messages_are_asked_once() {
        let calls = std::rc::Rc::new(std::cell::Cell::new(0));
        let table = Table {
            users: vec![("alice", 1000, 1000)],
            groups: vec![("alice", 1000, vec![])],
        };
        let a = Accounts::new(Box::new(Counting(table, calls.clone())));
        for _ in 0..3 {
            assert_eq!(a.user_name(1000), "alice");
            assert_eq!(a.group_name(1000), "alice");
            assert_eq!(a.user_name(4242), "4242");
            assert_eq!(a.group_name(4242), "4242");
        }
        assert_eq!(
            calls.get(),
            4,
            "one lookup per uid and per gid, found or not"
        );
    }

    #[test]
    fn mode_bits_one_class_applies() {
        let a = accounts();
        let nobody = a.user("nobody").expect("nobody");
        let alice = a.user("alice").expect("alice");
        let agent = a.user(SERVICE_USER).expect("agent");
        let home = node(1000, 1000, 0o040700);
        assert!(!mode_allows(&nobody, &home, Need::Enter));
        assert!(mode_allows(&alice, &home, Need::List));
        // Owner without the owner bits is refused even though "other" allows.
        let odd = node(1000, 1000, 0o100074);
        assert!(!mode_allows(&alice, &odd, Need::Read));
        assert!(mode_allows(&nobody, &odd, Need::Read));
        // Group adm, 0640: the agent (in adm) reads, nobody does not.
        let syslog = node(0, 4, 0o100640);
        assert!(mode_allows(&agent, &syslog, Need::Read));
        assert!(!mode_allows(&nobody, &syslog, Need::Read));
        // x without r: enter but not list.
        let dir = node(0, 0, 0o040711);
        assert!(mode_allows(&nobody, &dir, Need::Enter));
        assert!(!mode_allows(&nobody, &dir, Need::List));
        // Root reads everything.
        let root = a.user("root").expect("root");
        assert!(mode_allows(&root, &node(1000, 1000, 0o100000), Need::Read));
    }

    #[test]
    fn steps_enter_above_the_base_list_below_and_read_the_file() {
        let s = steps(
            Path::new("/home/alice/logs/c1/app.log"),
            Path::new("/home/alice/logs"),
        );
        let want: Vec<(PathBuf, Need)> = vec![
            ("/".into(), Need::Enter),
            ("/home".into(), Need::Enter),
            ("/home/alice".into(), Need::Enter),
            ("/home/alice/logs".into(), Need::List),
            ("/home/alice/logs/c1".into(), Need::List),
            ("/home/alice/logs/c1/app.log".into(), Need::Read),
        ];
        assert_eq!(s, want);
        assert_eq!(
            base_steps(Path::new("/var/log")),
            vec![
                ("/".into(), Need::Enter),
                ("/var".into(), Need::Enter),
                ("/var/log".into(), Need::List)
            ]
        );
    }

    #[test]
    fn the_first_blocker_is_named_with_its_fix() {
        let a = accounts();
        let nobody = a.user("nobody").expect("nobody");
        let facts = |p: &Path| -> io::Result<Node> {
            Ok(match p.to_str().unwrap_or("") {
                "/home/alice" => node(1000, 1000, 0o040700),
                "/home/alice/app.log" => node(1000, 1000, 0o100600),
                _ => node(0, 0, 0o040755),
            })
        };
        let s = steps(Path::new("/home/alice/app.log"), Path::new("/home/alice"));
        let Walk::Blocked(b) = first_blocker(&nobody, &s, facts, |_| None) else {
            panic!("not blocked");
        };
        assert_eq!(b.path, PathBuf::from("/home/alice"));
        assert_eq!(b.need, Need::List);
        assert_eq!(
            describe_blocker(&nobody, &b, &a),
            "nobody cannot list directory /home/alice (drwx------ alice:alice)"
        );
        let f = fixes(&nobody, &b, &a).alternatives;
        assert_eq!(f[0], "`setfacl -m u:nobody:rx /home/alice`");
        assert!(f[1].contains("chmod o+rx /home/alice"), "{f:?}");

        // An ACL naming the user lets it through.
        let acl = parse_getfacl("user::rwx\nuser:65534:r-x\ngroup::---\nmask::r-x\nother::---\n");
        let walk = first_blocker(&nobody, &s[..4], facts, |_| Some(acl.clone()));
        assert!(matches!(walk, Walk::Ok), "{walk:?}");
    }

    #[test]
    fn a_file_of_a_group_the_user_is_not_in_suggests_the_group() {
        let a = accounts();
        let nobody = a.user("nobody").expect("nobody");
        let b = Blocker {
            path: "/var/log/syslog".into(),
            node: node(0, 4, 0o100640),
            need: Need::Read,
        };
        let f = fixes(&nobody, &b, &a);
        assert!(
            f.alternatives[0].contains("usermod -aG adm nobody"),
            "{f:?}"
        );
        assert!(
            f.alternatives[1].contains("setfacl -m u:nobody:r /var/log/syslog"),
            "{f:?}"
        );
        assert!(
            f.also
                .as_deref()
                .is_some_and(|a| a.contains("setfacl -d -m u:nobody:r /var/log")),
            "{f:?}"
        );
        let mine = Blocker {
            path: "/x".into(),
            node: node(65534, 65534, 0o100000),
            need: Need::Read,
        };
        assert_eq!(fixes(&nobody, &mine, &a).alternatives[0], "`chmod u+r /x`");
        // Never "join group root".
        let rooted = Blocker {
            path: "/var/log/secure".into(),
            node: node(0, 0, 0o100640),
            need: Need::Read,
        };
        let f = fixes(&nobody, &rooted, &a).alternatives;
        assert!(!f.iter().any(|x| x.contains("usermod")), "{f:?}");
    }

    #[test]
    fn acls_follow_the_posix_algorithm() {
        let a = accounts();
        let nobody = a.user("nobody").expect("nobody");
        let agent = a.user(SERVICE_USER).expect("agent");
        let file = node(0, 0, 0o100640);
        let acl = parse_getfacl(
            "user::rw-\nuser:65534:rw-\t#effective:r--\ngroup::r--\ngroup:4:---\nmask::r--\nother::---\ndefault:user::rwx\n",
        );
        assert_eq!(acl.len(), 6);
        assert_eq!(acl_allows(&nobody, &file, &acl, Need::Read), Some(true));
        // Masked out.
        let masked =
            parse_getfacl("user::rw-\nuser:65534:rw-\ngroup::r--\nmask::---\nother::---\n");
        assert_eq!(acl_allows(&nobody, &file, &masked, Need::Read), Some(false));
        // A matching group entry that refuses refuses, even though "other" would allow.
        let by_group = parse_getfacl("user::rw-\ngroup::---\ngroup:4:---\nmask::rwx\nother::r--\n");
        assert_eq!(
            acl_allows(&agent, &file, &by_group, Need::Read),
            Some(false)
        );
        assert_eq!(
            acl_allows(&nobody, &file, &by_group, Need::Read),
            Some(true)
        );
        assert_eq!(acl_allows(&nobody, &file, &[], Need::Read), None);
    }

    #[test]
    fn drop_ins_grant_the_capability_only_in_both_sets() {
        let example = include_str!("../packaging/override-read-all-logs.conf");
        let d = parse_drop_ins(&[("/d/override.conf".into(), example.to_string())]);
        assert_eq!(d.reads_everything, Some(PathBuf::from("/d/override.conf")));
        assert!(d.supplementary_groups.is_empty());

        let only_ambient = "[Service]\nAmbientCapabilities=CAP_DAC_READ_SEARCH\n";
        let d = parse_drop_ins(&[("/d/a.conf".into(), only_ambient.to_string())]);
        assert_eq!(d.reads_everything, None);

        let reset = "[Service]\nAmbientCapabilities=\nSupplementaryGroups=adm\n";
        let d = parse_drop_ins(&[
            ("/d/a.conf".into(), example.to_string()),
            ("/d/b.conf".into(), reset.to_string()),
        ]);
        assert_eq!(d.reads_everything, None);
        assert_eq!(d.supplementary_groups, vec!["adm".to_string()]);

        let a = accounts();
        let mut nobody = a.user("nobody").expect("nobody");
        d.apply(&mut nobody, &a);
        assert!(nobody.groups.contains(&4));
        let d = parse_drop_ins(&[("/d/a.conf".into(), example.to_string())]);
        d.apply(&mut nobody, &a);
        assert!(nobody
            .reads_everything
            .as_deref()
            .is_some_and(|w| w.contains("CAP_DAC_READ_SEARCH")));
    }

    #[test]
    fn statuses_and_errors_read_as_what_to_do() {
        assert!(status_verdict("Kinesis stream 's'", "ACTIVE", &["ACTIVE"]).is_ok());
        let e = status_verdict("Kinesis stream 's'", "CREATING", &["ACTIVE"]).unwrap_err();
        assert!(e.contains("CREATING, not ACTIVE"), "{e}");
        let denied = crate::sink::SendError {
            kind: crate::sink::ErrorKind::Fatal,
            code: "AccessDeniedException".into(),
            message: "User: x is not authorized".into(),
            fix: None,
        };
        let text = call_failed(
            "Kinesis stream 's'",
            "kinesis:DescribeStreamSummary",
            &denied,
        );
        assert!(
            text.contains("access denied")
                && text.contains("kinesis:DescribeStreamSummary")
                && text.contains("iam-policy"),
            "{text}"
        );
    }

    #[test]
    fn modes_print_like_ls() {
        assert_eq!(mode_string(&node(0, 0, 0o040700)), "drwx------");
        assert_eq!(mode_string(&node(0, 0, 0o100640)), "-rw-r-----");
    }

    fn reader(name: &str, stream: &str, s3: Option<(&str, &str)>) -> KinesisReader {
        KinesisReader {
            name: name.into(),
            status: "ACTIVE".into(),
            source_stream_arn: format!("arn:aws:kinesis:eu-west-1:123456789012:stream/{stream}"),
            s3: s3.map(|(b, p)| (b.to_string(), p.to_string())),
        }
    }

    #[test]
    fn reader_lines_name_the_delivery_streams_of_the_stream_only() {
        let arn = "arn:aws:kinesis:eu-west-1:123456789012:stream/app";
        let lookup = ReadersLookup::Looked {
            readers: vec![
                reader("to-s3", "app", Some(("arn:aws:s3:::archive", "logs/"))),
                reader("other", "app-2", Some(("arn:aws:s3:::elsewhere", ""))),
                reader("to-splunk", "app", None),
                reader("no-prefix", "app", Some(("arn:aws:s3:::archive", ""))),
            ],
            undescribed: vec![],
        };
        assert_eq!(
            reader_lines("app", arn, &lookup),
            vec![
                ReaderLine::Ok("Kinesis stream 'app' is read by Firehose delivery stream 'to-s3' (ACTIVE), delivering to S3 bucket 'archive' under 'logs/'".into()),
                ReaderLine::Ok("Kinesis stream 'app' is read by Firehose delivery stream 'to-splunk' (ACTIVE), delivering to a destination other than S3".into()),
                ReaderLine::Ok("Kinesis stream 'app' is read by Firehose delivery stream 'no-prefix' (ACTIVE), delivering to S3 bucket 'archive'".into()),
            ]
        );
    }

    #[test]
    fn reader_lines_say_when_none_reads_it_or_when_they_did_not_look() {
        let arn = "arn:aws:kinesis:eu-west-1:123456789012:stream/app";
        let lookup = ReadersLookup::Looked {
            readers: vec![reader("other", "app-2", None)],
            undescribed: vec!["secret (AccessDeniedException)".into()],
        };
        assert_eq!(
            reader_lines("app", arn, &lookup),
            vec![
                ReaderLine::Note("no Firehose delivery stream in this region reads Kinesis stream 'app' (1 with a Kinesis source looked at); another consumer may".into()),
                ReaderLine::Note("could not describe 1 delivery stream(s) with a Kinesis source, which may read 'app': secret (AccessDeniedException)".into()),
            ]
        );
        let denied = crate::sink::SendError {
            kind: crate::sink::ErrorKind::Fatal,
            code: "AccessDeniedException".into(),
            message: "not authorized".into(),
            fix: None,
        };
        let lines = reader_lines("app", arn, &ReadersLookup::DidNotLook(not_listed(&denied)));
        assert_eq!(lines.len(), 1);
        let ReaderLine::Note(text) = &lines[0] else {
            panic!("{lines:?}")
        };
        assert!(
            text.starts_with("did not look for Firehose delivery streams reading Kinesis stream 'app': the credentials may not call firehose:ListDeliveryStreams (AccessDeniedException)"),
            "{text}"
        );
        let failed = crate::sink::SendError {
            code: "UnknownOperationException".into(),
            ..denied
        };
        assert!(not_listed(&failed)
            .starts_with("firehose:ListDeliveryStreams failed: UnknownOperationException"));
    }
}
