//! Durable checkpoints: the Java agent's SQLite table `FILE_CHECKPOINTS`, read and written.
//!
//! Owns: [`CheckpointStore`] (open with the time-to-live, load a flow's rows, save a batch of rows
//! in one transaction, delete a row) and [`import_java_database`] (a one-time copy of the Java
//! agent's database into ours). Does not own: which offset is safe to store (the watermark), how
//! often to save, or matching stored rows to the files found at start-up.
//!
//! The table is the Java agent's (reference 4.1), so the same flow ids, `fileId` strings, raw byte
//! offsets and UTC `lastUpdated` text read the same in both agents (reference 12, item 2). We add
//! one nullable column, `fingerprint`; see [`FINGERPRINT_COLUMN`].

use std::collections::HashMap;
use std::ffi::OsString;
use std::fs::{self, File, OpenOptions};
use std::hash::{Hash, Hasher};
use std::io;
use std::os::unix::ffi::{OsStrExt, OsStringExt};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::types::Value;
use rusqlite::{params, Connection, OpenFlags, Row};
use tracing::warn;

/// The Java agent's table, column for column (`SQLiteFileCheckpointStore.java`), so a database
/// the Java agent created can be read as it is.
const CREATE_TABLE: &str = "create table if not exists FILE_CHECKPOINTS(flow text, path text, \
     fileId text, lastModifiedTime bigint, size bigint, offset bigint, lastUpdated datetime, \
     primary key (flow, path))";

/// Our one extra column. A device and inode do not prove that a file is the one a checkpoint was
/// written for: inodes are reused after a delete, and a copy (`copytruncate` rotation) has a new
/// inode but the old content. The fingerprint identifies the content, so start-up can check both.
/// Nullable, so the Java agent's rows read back as `None`.
///
/// Adding it means a Java agent can no longer write to the upgraded table: its insert gives 7
/// positional values (`insert or ignore into FILE_CHECKPOINTS values(?,?,?,?,?,?,...)`) and fails
/// on 8 columns. That is why [`import_java_database`] copies the Java database into ours instead
/// of upgrading it in place.
const FINGERPRINT_COLUMN: &str = "fingerprint";

/// Upsert by the primary key. Same values as Java's `update ... set fileId=?, offset=?,
/// lastModifiedTime=?, size=?, lastUpdated=...` with its `insert or ignore` fallback, in one
/// statement, plus our fingerprint. `lastUpdated` is Java's expression: UTC with milliseconds,
/// e.g. `2024-05-01 12:00:00.123`.
const UPSERT: &str = "insert into FILE_CHECKPOINTS(flow, path, fileId, lastModifiedTime, size, \
     offset, fingerprint, lastUpdated) \
     values(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8) \
     on conflict(flow, path) do update set fileId=excluded.fileId, offset=excluded.offset, \
     lastModifiedTime=excluded.lastModifiedTime, size=excluded.size, \
     fingerprint=excluded.fingerprint, lastUpdated=excluded.lastUpdated";

/// `lastUpdated` as the Java agent writes it: UTC `YYYY-MM-DD HH:MM:SS.SSS`.
const NOW: &str = "select strftime('%Y-%m-%d %H:%M:%f','now')";

/// A file keeps one row per flow: when it was renamed (rotation), the row under its old name goes.
const DELETE_OLD_NAMES: &str =
    "delete from FILE_CHECKPOINTS where flow=?1 and fileId=?2 and path<>?3";

/// [`DELETE_OLD_NAMES`] runs for every saved row; without this index each run reads the whole
/// table (a second's save of 1,000 files was 1,000,000 row visits). Not in the Java schema, and
/// harmless to it: an index changes no row and no column.
const CREATE_FILE_ID_INDEX: &str =
    "create index if not exists FILE_CHECKPOINTS_flow_fileId on FILE_CHECKPOINTS(flow, fileId)";

/// Java reads only the newest row (`order by lastUpdated desc limit 1`); we read them all, newest
/// first. `lastUpdated` text sorts as time; the later-modified file breaks a tie (rows saved in one
/// transaction can share a millisecond), then the path, so the order is always the same.
const SELECT_FLOW: &str =
    "select flow, path, fileId, lastModifiedTime, size, offset, fingerprint, \
     lastUpdated from FILE_CHECKPOINTS where flow=?1 \
     order by lastUpdated desc, lastModifiedTime desc, path";

/// Java's TTL statement, run once at open; `?1` is `+<ttl> days`.
const DELETE_EXPIRED: &str =
    "delete from FILE_CHECKPOINTS where datetime(lastUpdated, ?1) < CURRENT_TIMESTAMP";

/// How long a statement waits for a lock another connection holds (a Java agent still running
/// during migration, or someone inspecting the file with `sqlite3`) before failing.
const BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// Suffix of the file an import is built in before it is renamed to its final name.
const IMPORT_SUFFIX: &str = ".import";

/// One file's checkpoint row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CheckpointRow {
    /// Java flow id, e.g. `kinesis:mystream:/var/log/app.log*`.
    pub flow: String,
    /// The file's name when last saved.
    pub path: PathBuf,
    /// `(dev=<hex>,ino=<dec>)`, exactly as Java's `UnixFileKey`.
    pub file_id: String,
    /// The file's mtime in ms.
    pub last_modified_ms: i64,
    /// The file's size in bytes when saved.
    pub size: i64,
    /// Bytes acknowledged (raw file bytes).
    pub offset: u64,
    /// Identifies the content (see [`FINGERPRINT_COLUMN`]); None for rows the Java agent wrote.
    pub fingerprint: Option<String>,
    /// As stored: UTC `YYYY-MM-DD HH:MM:SS.SSS`. Ignored by [`CheckpointStore::save`].
    pub last_updated: String,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The directory the database goes in could not be created.
    #[error("cannot create the directory of checkpoint database {db}: {reason}")]
    CreateDir { db: PathBuf, reason: String },
    /// The database could not be opened, created, upgraded or cleaned of expired rows.
    #[error("cannot open checkpoint database {db}: {reason}")]
    Open { db: PathBuf, reason: String },
    /// A read or write failed on an open database.
    #[error("checkpoint database {db}: cannot {action}: {error}")]
    Sql {
        db: PathBuf,
        action: String,
        error: rusqlite::Error,
    },
    /// A row holds a value the table cannot store.
    #[error(
        "checkpoint database {db}: cannot save the checkpoint of {file} (flow {flow}): {reason}"
    )]
    InvalidRow {
        db: PathBuf,
        flow: String,
        file: PathBuf,
        reason: String,
    },
    /// The Java agent's database could not be copied into ours.
    #[error("cannot import the Java agent's checkpoint database {java} into {ours}: {reason}")]
    Import {
        java: PathBuf,
        ours: PathBuf,
        reason: String,
    },
}

/// The open checkpoint database.
#[derive(Debug)]
pub struct CheckpointStore {
    conn: Connection,
    path: PathBuf,
    /// Per flow and fileId, the name this store last saved the file under: while it stays the
    /// same, no row of that file under another name can exist, and the save skips
    /// [`DELETE_OLD_NAMES`] (half of the work of saving 1,000 busy files a second). Kept as
    /// 64-bit hashes of (flow, fileId) and of the name: the names themselves were 17 MB for
    /// 100,000 files. A collision (about one in 10^9 at that many files) would skip one delete
    /// of a row under an old name.
    saved_names: HashMap<u64, u64>,
}

impl CheckpointStore {
    /// Opens (creating parent directories and the table if missing). Applies the TTL once:
    /// deletes rows whose lastUpdated is older than `ttl_days` (Java semantics:
    /// `datetime(lastUpdated, '+<ttl> days') < CURRENT_TIMESTAMP`), and returns how many were
    /// deleted so the caller can log `Deleted <n> old checkpoints.`.
    pub fn open(path: &Path, ttl_days: u32) -> Result<(CheckpointStore, usize), StoreError> {
        create_parent(path).map_err(|reason| StoreError::CreateDir {
            db: path.to_path_buf(),
            reason,
        })?;
        let opened = connect(path).and_then(|conn| {
            make_durable(&conn)?;
            let deleted = conn.execute(DELETE_EXPIRED, [format!("+{ttl_days} days")])?;
            Ok((conn, deleted))
        });
        match opened {
            Ok((conn, deleted)) => Ok((
                CheckpointStore {
                    conn,
                    path: path.to_path_buf(),
                    saved_names: HashMap::new(),
                },
                deleted,
            )),
            Err(error) => Err(StoreError::Open {
                db: path.to_path_buf(),
                reason: explain_open_failure(path, &error),
            }),
        }
    }

    /// Every row of a flow, newest lastUpdated first. A row whose values cannot be a checkpoint
    /// (written by something else) is skipped with a warning: that file then starts as if it had
    /// no checkpoint, rather than the whole agent failing to start.
    pub fn load(&self, flow: &str) -> Result<Vec<CheckpointRow>, StoreError> {
        let read = || -> rusqlite::Result<Vec<CheckpointRow>> {
            let mut statement = self.conn.prepare_cached(SELECT_FLOW)?;
            let mut result = statement.query([flow])?;
            let mut rows = Vec::new();
            while let Some(row) = result.next()? {
                match decode_row(row) {
                    Ok(row) => rows.push(row),
                    Err(reason) => warn!(
                        "Checkpoint database {}: ignoring an unreadable checkpoint of flow {}: {}",
                        self.path.display(),
                        flow,
                        reason
                    ),
                }
            }
            Ok(rows)
        };
        read().map_err(|error| StoreError::Sql {
            db: self.path.clone(),
            action: format!("read the checkpoints of flow {flow}"),
            error,
        })
    }

    /// Saves many rows in one transaction: all or none. For each row, upsert by (flow, path) with
    /// `lastUpdated` = now, then delete any other row of the same flow with the same fileId (the
    /// file was renamed; only its newest name is kept). `last_updated` of the input is ignored.
    pub fn save(&mut self, rows: &[CheckpointRow]) -> Result<(), StoreError> {
        // Checked before the transaction so that a bad row names itself, not a SQL error.
        let mut offsets = Vec::with_capacity(rows.len());
        for row in rows {
            let offset = i64::try_from(row.offset).map_err(|_| StoreError::InvalidRow {
                db: self.path.clone(),
                flow: row.flow.clone(),
                file: row.path.clone(),
                reason: format!(
                    "offset {} does not fit SQLite's signed 64-bit integer",
                    row.offset
                ),
            })?;
            offsets.push(offset);
        }
        let renamed: Vec<bool> = rows
            .iter()
            .map(|row| {
                self.saved_names.get(&name_key(&row.flow, &row.file_id))
                    != Some(&name_hash(&row.path))
            })
            .collect();
        save_rows(&mut self.conn, rows, &offsets, &renamed).map_err(|error| StoreError::Sql {
            db: self.path.clone(),
            action: format!("save {} checkpoint(s)", rows.len()),
            error,
        })?;
        for (row, _) in rows.iter().zip(&renamed).filter(|(_, r)| **r) {
            self.saved_names
                .insert(name_key(&row.flow, &row.file_id), name_hash(&row.path));
        }
        Ok(())
    }

    /// Deletes the row of (flow, path). For pruning: a file let go after it was fully read and
    /// acknowledged may also keep its row.
    pub fn delete(&mut self, flow: &str, path: &Path) -> Result<(), StoreError> {
        // The names remembered stay right: the file whose row this was has no row under any
        // other name (that is what they say), and none under this one now.
        self.conn
            .execute(
                "delete from FILE_CHECKPOINTS where flow=?1 and path=?2",
                params![flow, path_value(path)],
            )
            .map(|_| ())
            .map_err(|error| StoreError::Sql {
                db: self.path.clone(),
                action: format!("delete the checkpoint of {} (flow {flow})", path.display()),
                error,
            })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

/// The key of a file in [`CheckpointStore`]'s remembered names.
fn name_key(flow: &str, file_id: &str) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    flow.hash(&mut h);
    file_id.hash(&mut h);
    h.finish()
}

/// A name as [`CheckpointStore`] remembers it.
fn name_hash(path: &Path) -> u64 {
    let mut h = std::hash::DefaultHasher::new();
    path.hash(&mut h);
    h.finish()
}

/// The transaction of [`CheckpointStore::save`]; `offsets` are the rows' offsets, converted;
/// `renamed` says which rows may have rows under other names to delete.
fn save_rows(
    conn: &mut Connection,
    rows: &[CheckpointRow],
    offsets: &[i64],
    renamed: &[bool],
) -> rusqlite::Result<()> {
    // Dropping a failed transaction rolls back but ignores a failed rollback, which would
    // leave the connection inside it and fail every later save; end it here. (Java closes
    // and reconnects in that case.)
    if !conn.is_autocommit() {
        conn.execute_batch("rollback")?;
    }
    let tx = conn.transaction()?;
    {
        // One time stamp for the transaction (per row, SQLite's date formatting was a tenth of
        // the save).
        let now: String = tx.query_row(NOW, [], |row| row.get(0))?;
        let mut upsert = tx.prepare_cached(UPSERT)?;
        let mut delete_old_names = tx.prepare_cached(DELETE_OLD_NAMES)?;
        for ((row, offset), renamed) in rows.iter().zip(offsets).zip(renamed) {
            let path = path_value(&row.path);
            upsert.execute(params![
                row.flow,
                path,
                row.file_id,
                row.last_modified_ms,
                row.size,
                offset,
                row.fingerprint,
                now,
            ])?;
            if *renamed {
                delete_old_names.execute(params![row.flow, row.file_id, path])?;
            }
        }
    }
    tx.commit()
}

/// If `ours` does not exist and `java` does, copies every row of the Java agent's database into a
/// new database at `ours` (with our schema) and returns how many rows were imported; `Ok(None)`
/// when nothing was done. The Java database is opened read-only and never modified: a Java agent
/// may still use it (see [`FINGERPRINT_COLUMN`]).
///
/// Rows are copied as stored, expired ones included; the TTL applies when `ours` is opened. The
/// copy is built beside `ours` and renamed into place, so a failed import leaves no `ours` behind
/// and is tried again at the next start.
pub fn import_java_database(java: &Path, ours: &Path) -> Result<Option<usize>, StoreError> {
    // symlink_metadata: a dangling link at `ours` is still something the user put there.
    if fs::symlink_metadata(ours).is_ok() || !java.exists() {
        return Ok(None);
    }
    let fail = |reason: String| StoreError::Import {
        java: java.to_path_buf(),
        ours: ours.to_path_buf(),
        reason,
    };
    let rows = read_all_rows(java).map_err(|error| {
        // SQLite says only "unable to open database file"; the file system says why.
        match File::open(java) {
            Err(io_error) => fail(format!("cannot read {}: {io_error}", java.display())),
            Ok(_) => fail(format!("cannot read {}: {error}", java.display())),
        }
    })?;
    create_parent(ours).map_err(&fail)?;

    let mut building = ours.as_os_str().to_owned();
    building.push(IMPORT_SUFFIX);
    let building = PathBuf::from(building);
    remove_database_files(&building).map_err(|error| {
        fail(format!(
            "cannot remove the unfinished import {}: {error}",
            building.display()
        ))
    })?;
    let written = write_all_rows(&building, &rows)
        .map_err(|error| {
            let reason = explain_open_failure(&building, &error);
            format!("cannot write {}: {reason}", building.display())
        })
        .and_then(|()| publish(&building, ours));
    if let Err(reason) = written {
        // Best effort: a leftover is removed by the next attempt anyway.
        let _ = remove_database_files(&building);
        return Err(fail(reason));
    }
    Ok(Some(rows.len()))
}

/// Every column we copy, in the order of [`INSERT_IMPORTED`].
const IMPORTED_COLUMNS: usize = 8;

const INSERT_IMPORTED: &str = "insert or replace into FILE_CHECKPOINTS(flow, path, fileId, \
     lastModifiedTime, size, offset, lastUpdated, fingerprint) values(?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)";

/// The rows of the Java database as stored, without converting them: what cannot be a checkpoint
/// is judged when it is loaded, as for any other row.
fn read_all_rows(java: &Path) -> rusqlite::Result<Vec<[Value; IMPORTED_COLUMNS]>> {
    let conn = Connection::open_with_flags(
        java,
        OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    let columns = column_names(&conn)?;
    if columns.is_empty() {
        // A Java agent that never got as far as creating its table.
        return Ok(Vec::new());
    }
    // A database that is already ours (someone pointed the Java path at one) keeps its fingerprints.
    let fingerprint = if columns.iter().any(|c| c == FINGERPRINT_COLUMN) {
        FINGERPRINT_COLUMN
    } else {
        "null"
    };
    let mut statement = conn.prepare(&format!(
        "select flow, path, fileId, lastModifiedTime, size, offset, lastUpdated, {fingerprint} \
         from FILE_CHECKPOINTS"
    ))?;
    let rows = statement
        .query_map([], |row| {
            Ok([
                row.get(0)?,
                row.get(1)?,
                row.get(2)?,
                row.get(3)?,
                row.get(4)?,
                row.get(5)?,
                row.get(6)?,
                row.get(7)?,
            ])
        })?
        .collect();
    rows
}

/// A new database at `path` holding `rows`. It stays in rollback-journal mode, so when it is
/// closed everything is in the one file that [`publish`] renames; [`CheckpointStore::open`]
/// switches it to WAL later.
fn write_all_rows(path: &Path, rows: &[[Value; IMPORTED_COLUMNS]]) -> rusqlite::Result<()> {
    let mut conn = connect(path)?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    let tx = conn.transaction()?;
    {
        let mut insert = tx.prepare(INSERT_IMPORTED)?;
        for row in rows {
            insert.execute(rusqlite::params_from_iter(row.iter()))?;
        }
    }
    tx.commit()?;
    conn.close().map_err(|(_, error)| error)
}

/// Renames the finished import to its final name, durably: the file, then the directory entry.
fn publish(building: &Path, ours: &Path) -> Result<(), String> {
    let step = |what: &str, path: &Path, result: io::Result<()>| {
        result.map_err(|error| format!("cannot {what} {}: {error}", path.display()))
    };
    step(
        "sync",
        building,
        File::open(building).and_then(|f| f.sync_all()),
    )?;
    step("rename into place", building, fs::rename(building, ours))?;
    let dir = parent_dir(ours);
    step("sync", dir, File::open(dir).and_then(|d| d.sync_all()))
}

/// Removes a database file and the journal SQLite may have left beside it.
fn remove_database_files(path: &Path) -> io::Result<()> {
    let mut journal = path.as_os_str().to_owned();
    journal.push("-journal");
    for file in [path.as_os_str(), journal.as_os_str()] {
        match fs::remove_file(file) {
            Err(error) if error.kind() != io::ErrorKind::NotFound => return Err(error),
            _ => {}
        }
    }
    Ok(())
}

/// Column names of FILE_CHECKPOINTS; empty when the table does not exist.
fn column_names(conn: &Connection) -> rusqlite::Result<Vec<String>> {
    let mut statement = conn.prepare("select name from pragma_table_info('FILE_CHECKPOINTS')")?;
    let names = statement.query_map([], |row| row.get(0))?.collect();
    names
}

/// Opens read-write, creating the file, with the table in our schema (upgrading a Java one).
fn connect(path: &Path) -> rusqlite::Result<Connection> {
    // No SQLITE_OPEN_URI: a configured `checkpointFile` is a path, even if it starts with `file:`.
    let conn = Connection::open_with_flags(
        path,
        OpenFlags::SQLITE_OPEN_READ_WRITE
            | OpenFlags::SQLITE_OPEN_CREATE
            | OpenFlags::SQLITE_OPEN_NO_MUTEX,
    )?;
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.execute_batch(CREATE_TABLE)?;
    conn.execute_batch(CREATE_FILE_ID_INDEX)?;
    if !column_names(&conn)?.iter().any(|c| c == FINGERPRINT_COLUMN) {
        conn.execute_batch(&format!(
            "alter table FILE_CHECKPOINTS add column {FINGERPRINT_COLUMN} text"
        ))?;
    }
    Ok(conn)
}

/// Checkpoints must survive a power loss: a lost checkpoint means records sent again, or skipped
/// when a file is later matched to an older row. `synchronous=FULL` syncs the log at every commit;
/// the caller batches saves about once a second, so the cost is about one fsync a second. WAL
/// makes that commit one sequential append and lets readers (`sqlite3` during an incident) not
/// block the writer.
fn make_durable(conn: &Connection) -> rusqlite::Result<()> {
    let mode: String =
        conn.pragma_update_and_check(None, "journal_mode", "WAL", |row| row.get(0))?;
    if !mode.eq_ignore_ascii_case("wal") {
        // Some filesystems (no shared memory, e.g. some network mounts) refuse WAL; the rollback
        // journal with synchronous=FULL is still durable, only slower.
        warn!("Checkpoint database: journal mode is {mode}, not WAL");
    }
    conn.pragma_update(None, "synchronous", "FULL")
}

/// Creates the directory a database goes in. The error text names the directory and the cause.
fn create_parent(db: &Path) -> Result<(), String> {
    let dir = parent_dir(db);
    if let Ok(meta) = fs::metadata(dir) {
        if !meta.is_dir() {
            return Err(format!("{} exists and is not a directory", dir.display()));
        }
    }
    fs::create_dir_all(dir).map_err(|error| {
        // The error does not say which level failed; it is the deepest one that exists, since
        // the agent's user could not create its child.
        let refused = dir.ancestors().find(|a| a.is_dir()).unwrap_or(dir);
        describe_io_error(&error, refused)
    })
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(dir) if !dir.as_os_str().is_empty() => dir,
        _ => Path::new("."),
    }
}

/// SQLite's message plus, when it can be found, which path refused what. SQLite says only
/// "unable to open database file"; the usual cause is that the agent's user cannot write the
/// directory (the Java agent's issue #39), so the same access is tried again with std::fs.
fn explain_open_failure(db: &Path, error: &rusqlite::Error) -> String {
    match find_access_problem(db) {
        Some(problem) => format!("{error} ({problem})"),
        None => error.to_string(),
    }
}

fn find_access_problem(db: &Path) -> Option<String> {
    if let Ok(meta) = fs::metadata(db) {
        if meta.is_dir() {
            return Some(format!("{} is a directory", db.display()));
        }
        if let Err(error) = OpenOptions::new().read(true).write(true).open(db) {
            return Some(describe_io_error(&error, db));
        }
    }
    // SQLite creates the database, its journal, and in WAL mode `-wal` and `-shm` beside it, so
    // the directory must be writable even when the database file is.
    let dir = parent_dir(db);
    let mut probe = OsString::from(".");
    probe.push(db.file_name().unwrap_or(db.as_os_str()));
    probe.push(format!(".probe-{}", std::process::id()));
    let probe = dir.join(probe);
    match OpenOptions::new().write(true).create_new(true).open(&probe) {
        Ok(_) => {
            // The probe only showed the directory is writable; a leftover would be harmless.
            let _ = fs::remove_file(&probe);
            None
        }
        Err(error) => Some(describe_io_error(&error, dir)),
    }
}

/// e.g. `permission denied on /x; the agent's user needs write access to /x`.
fn describe_io_error(error: &io::Error, at: &Path) -> String {
    match error.kind() {
        io::ErrorKind::PermissionDenied => format!(
            "permission denied on {0}; the agent's user needs write access to {0}",
            at.display()
        ),
        io::ErrorKind::ReadOnlyFilesystem => {
            format!("{} is on a read-only file system", at.display())
        }
        _ => format!("{error} on {}", at.display()),
    }
}

/// A path as stored. Java stores names as text. A name that is not UTF-8 is stored as its bytes
/// (a blob) so it maps back to the same file; a lossy text would name a different one.
fn path_value(path: &Path) -> Value {
    match path.to_str() {
        Some(text) => Value::Text(text.to_owned()),
        None => Value::Blob(path.as_os_str().as_bytes().to_vec()),
    }
}

/// One row of [`SELECT_FLOW`]; the error says which value is unusable.
fn decode_row(row: &Row) -> Result<CheckpointRow, String> {
    let path = match row.get::<_, Value>(1) {
        Ok(Value::Text(text)) => PathBuf::from(text),
        Ok(Value::Blob(bytes)) => PathBuf::from(OsString::from_vec(bytes)),
        Ok(other) => return Err(format!("path is {:?}", other.data_type())),
        Err(error) => return Err(format!("path: {error}")),
    };
    let column =
        |name: &str, error: rusqlite::Error| format!("{}: {name}: {error}", path.display());
    let offset: i64 = row.get(5).map_err(|e| column("offset", e))?;
    let offset = u64::try_from(offset)
        .map_err(|_| format!("{}: negative offset {offset}", path.display()))?;
    Ok(CheckpointRow {
        flow: row.get(0).map_err(|e| column("flow", e))?,
        file_id: row.get(2).map_err(|e| column("fileId", e))?,
        last_modified_ms: row.get(3).map_err(|e| column("lastModifiedTime", e))?,
        size: row.get(4).map_err(|e| column("size", e))?,
        offset,
        fingerprint: row.get(6).map_err(|e| column("fingerprint", e))?,
        last_updated: row
            .get::<_, Option<String>>(7)
            .map_err(|e| column("lastUpdated", e))?
            .unwrap_or_default(),
        path,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const FLOW_A: &str = "kinesis:mystream:/var/log/app.log*";
    const FLOW_B: &str = "fh:mydelivery:/var/log/app.log*";

    /// The Java agent's statements (reference 4.1), to build databases as it would.
    const JAVA_NOW: &str = "strftime('%Y-%m-%d %H:%M:%f','now')";
    const JAVA_INSERT: &str = "insert or ignore into FILE_CHECKPOINTS values(?,?,?,?,?,?,strftime('%Y-%m-%d %H:%M:%f','now'))";

    fn row(flow: &str, path: &str, file_id: &str, offset: u64) -> CheckpointRow {
        CheckpointRow {
            flow: flow.to_string(),
            path: PathBuf::from(path),
            file_id: file_id.to_string(),
            last_modified_ms: 1_498_479_297_000,
            size: 1_565_917_867,
            offset,
            fingerprint: Some(format!("fp-{path}")),
            last_updated: String::new(),
        }
    }

    /// Rows without `last_updated`, for comparing with what was saved.
    fn stripped(rows: Vec<CheckpointRow>) -> Vec<CheckpointRow> {
        rows.into_iter()
            .map(|r| CheckpointRow {
                last_updated: String::new(),
                ..r
            })
            .collect()
    }

    fn raw(path: &Path) -> Connection {
        Connection::open(path).expect("raw connection")
    }

    /// Sets a row's lastUpdated, to order rows without waiting on the clock.
    fn set_updated(db: &Path, flow: &str, path: &str, when: &str) {
        let changed = raw(db)
            .execute(
                "update FILE_CHECKPOINTS set lastUpdated=?1 where flow=?2 and path=?3",
                params![when, flow, path],
            )
            .expect("update");
        assert_eq!(changed, 1);
    }

    fn is_java_timestamp(text: &str) -> bool {
        // YYYY-MM-DD HH:MM:SS.SSS
        let b = text.as_bytes();
        b.len() == 23
            && b.iter().enumerate().all(|(i, c)| match i {
                4 | 7 => *c == b'-',
                10 => *c == b' ',
                13 | 16 => *c == b':',
                19 => *c == b'.',
                _ => c.is_ascii_digit(),
            })
    }

    fn java_database(path: &Path) {
        let conn = raw(path);
        conn.execute_batch(CREATE_TABLE).expect("java schema");
        conn.execute(
            JAVA_INSERT,
            params![
                FLOW_A,
                "/var/log/app.log",
                "(dev=fd00,ino=1048587)",
                1_498_479_297_000_i64,
                1_565_917_867_i64,
                1_565_917_000_i64
            ],
        )
        .expect("java insert");
    }

    #[test]
    fn round_trip_two_flows_newest_first() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("checkpoints");
        let (mut store, deleted) = CheckpointStore::open(&db, 7).unwrap();
        assert_eq!(deleted, 0);
        assert_eq!(store.path(), db);

        let big = (1u64 << 32) + 17;
        let a1 = row(FLOW_A, "/var/log/app.log", "(dev=fd00,ino=1)", big);
        let a2 = row(FLOW_A, "/var/log/app.log.1", "(dev=fd00,ino=2)", 10);
        let b1 = CheckpointRow {
            fingerprint: None,
            ..row(FLOW_B, "/var/log/other.log", "(dev=ca01,ino=409751)", 0)
        };
        store.save(&[a1.clone(), a2.clone(), b1.clone()]).unwrap();
        set_updated(&db, FLOW_A, "/var/log/app.log", "2030-01-01 00:00:00.002");
        set_updated(&db, FLOW_A, "/var/log/app.log.1", "2030-01-01 00:00:00.001");

        let loaded = store.load(FLOW_A).unwrap();
        assert_eq!(loaded[0].last_updated, "2030-01-01 00:00:00.002");
        assert_eq!(stripped(loaded), vec![a1.clone(), a2.clone()]);

        // The newer one now is app.log.1.
        set_updated(&db, FLOW_A, "/var/log/app.log.1", "2030-01-01 00:00:00.003");
        assert_eq!(stripped(store.load(FLOW_A).unwrap()), vec![a2, a1]);

        let loaded_b = store.load(FLOW_B).unwrap();
        assert!(is_java_timestamp(&loaded_b[0].last_updated), "{loaded_b:?}");
        assert_eq!(stripped(loaded_b), vec![b1]);
        assert!(store.load("kinesis:none:/x*").unwrap().is_empty());
    }

    #[test]
    fn save_updates_an_existing_row() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("checkpoints");
        let (mut store, _) = CheckpointStore::open(&db, 7).unwrap();
        store
            .save(&[row(FLOW_A, "/a/app.log", "(dev=1,ino=1)", 5)])
            .unwrap();
        set_updated(&db, FLOW_A, "/a/app.log", "2000-01-01 00:00:00.000");
        let newer = CheckpointRow {
            size: 99,
            last_modified_ms: 7,
            fingerprint: None,
            ..row(FLOW_A, "/a/app.log", "(dev=1,ino=2)", 50)
        };
        store.save(std::slice::from_ref(&newer)).unwrap();
        let loaded = store.load(FLOW_A).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_ne!(loaded[0].last_updated, "2000-01-01 00:00:00.000");
        assert_eq!(stripped(loaded), vec![newer]);
    }

    #[test]
    fn rename_keeps_only_the_newest_name() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("checkpoints");
        let (mut store, _) = CheckpointStore::open(&db, 7).unwrap();
        let id = "(dev=fd00,ino=42)";
        store.save(&[row(FLOW_A, "/a/app.log", id, 100)]).unwrap();
        // Saved again under the same name (the delete of other names is skipped then).
        store.save(&[row(FLOW_A, "/a/app.log", id, 150)]).unwrap();
        // Another flow's row for the same file is not this flow's to remove.
        store.save(&[row(FLOW_B, "/a/app.log", id, 100)]).unwrap();
        let renamed = row(FLOW_A, "/a/app.log.1", id, 200);
        store.save(std::slice::from_ref(&renamed)).unwrap();

        assert_eq!(stripped(store.load(FLOW_A).unwrap()), vec![renamed]);
        assert_eq!(store.load(FLOW_B).unwrap().len(), 1);
        // And back: the row under the newer name goes again.
        let back = row(FLOW_A, "/a/app.log", id, 300);
        store.save(std::slice::from_ref(&back)).unwrap();
        store.save(std::slice::from_ref(&back)).unwrap();
        assert_eq!(stripped(store.load(FLOW_A).unwrap()), vec![back]);
    }

    #[test]
    fn a_reopened_store_still_deletes_old_names() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("checkpoints");
        let id = "(dev=fd00,ino=42)";
        {
            let (mut store, _) = CheckpointStore::open(&db, 7).unwrap();
            store.save(&[row(FLOW_A, "/a/app.log", id, 100)]).unwrap();
        }
        let (mut store, _) = CheckpointStore::open(&db, 7).unwrap();
        let renamed = row(FLOW_A, "/a/app.log.1", id, 200);
        store.save(std::slice::from_ref(&renamed)).unwrap();
        store.save(std::slice::from_ref(&renamed)).unwrap();
        assert_eq!(stripped(store.load(FLOW_A).unwrap()), vec![renamed]);
    }

    #[test]
    fn rotation_in_one_batch_keeps_both_files() {
        // app.log (ino 1) renamed to app.log.1, a new app.log (ino 2) created; both orders.
        for reversed in [false, true] {
            let dir = tempfile::tempdir().unwrap();
            let db = dir.path().join("checkpoints");
            let (mut store, _) = CheckpointStore::open(&db, 7).unwrap();
            store
                .save(&[row(FLOW_A, "/a/app.log", "(dev=1,ino=1)", 10)])
                .unwrap();
            let mut batch = vec![
                row(FLOW_A, "/a/app.log.1", "(dev=1,ino=1)", 20),
                row(FLOW_A, "/a/app.log", "(dev=1,ino=2)", 5),
            ];
            if reversed {
                batch.reverse();
            }
            store.save(&batch).unwrap();
            let mut loaded = stripped(store.load(FLOW_A).unwrap());
            loaded.sort_by(|a, b| a.path.cmp(&b.path));
            batch.sort_by(|a, b| a.path.cmp(&b.path));
            assert_eq!(loaded, batch, "reversed: {reversed}");
        }
    }

    #[test]
    fn flows_stay_separate_and_survive_reopen() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("checkpoints");
        let a = row(FLOW_A, "/var/log/app.log", "(dev=fd00,ino=7)", 123);
        let b = row(FLOW_B, "/var/log/app.log", "(dev=fd00,ino=7)", 456);
        {
            let (mut store, _) = CheckpointStore::open(&db, 7).unwrap();
            store.save(&[a.clone(), b.clone()]).unwrap();
            store.delete(FLOW_A, Path::new("/nope")).unwrap();
        }
        let (mut store, deleted) = CheckpointStore::open(&db, 7).unwrap();
        assert_eq!(deleted, 0);
        assert_eq!(stripped(store.load(FLOW_A).unwrap()), vec![a]);
        assert_eq!(stripped(store.load(FLOW_B).unwrap()), vec![b.clone()]);

        store.delete(FLOW_A, Path::new("/var/log/app.log")).unwrap();
        assert!(store.load(FLOW_A).unwrap().is_empty());
        assert_eq!(stripped(store.load(FLOW_B).unwrap()), vec![b]);
    }

    #[test]
    fn non_utf8_path_round_trips() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("checkpoints");
        let (mut store, _) = CheckpointStore::open(&db, 7).unwrap();
        let name = PathBuf::from(OsString::from_vec(b"/var/log/caf\xe9.log".to_vec()));
        let mut saved = row(FLOW_A, "/x", "(dev=1,ino=1)", 3);
        saved.path = name.clone();
        store.save(std::slice::from_ref(&saved)).unwrap();
        assert_eq!(stripped(store.load(FLOW_A).unwrap()), vec![saved]);
        store.delete(FLOW_A, &name).unwrap();
        assert!(store.load(FLOW_A).unwrap().is_empty());
    }

    #[test]
    fn ttl_deletes_old_rows_at_open() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("checkpoints");
        drop(CheckpointStore::open(&db, 7).unwrap());
        let conn = raw(&db);
        let insert = |path: &str, when: &str| {
            conn.execute(
                &format!(
                    "insert into FILE_CHECKPOINTS(flow, path, fileId, lastModifiedTime, size, \
                     offset, lastUpdated) values(?1, ?2, 'id', 0, 0, 0, {when})"
                ),
                params![FLOW_A, path],
            )
            .unwrap();
        };
        insert("/ancient", "'2014-01-01 00:00:00.000'");
        insert(
            "/expired-by-an-hour",
            "strftime('%Y-%m-%d %H:%M:%f','now','-7 days','-1 hour')",
        );
        insert(
            "/inside-by-an-hour",
            "strftime('%Y-%m-%d %H:%M:%f','now','-7 days','+1 hour')",
        );
        insert("/recent", JAVA_NOW);
        drop(conn);

        let (store, deleted) = CheckpointStore::open(&db, 7).unwrap();
        assert_eq!(deleted, 2);
        let mut kept: Vec<PathBuf> = store
            .load(FLOW_A)
            .unwrap()
            .into_iter()
            .map(|r| r.path)
            .collect();
        kept.sort();
        assert_eq!(
            kept,
            [
                PathBuf::from("/inside-by-an-hour"),
                PathBuf::from("/recent")
            ]
        );
        drop(store);
        assert_eq!(CheckpointStore::open(&db, 7).unwrap().1, 0);
    }

    #[test]
    fn creates_parent_directories() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("var/lib/aws-kinesis-agent/checkpoints");
        let (store, _) = CheckpointStore::open(&db, 7).unwrap();
        assert!(db.is_file());
        assert_eq!(store.path(), db);
    }

    #[test]
    fn parent_that_is_a_file_is_an_error_naming_the_path() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("plain");
        fs::write(&file, "x").unwrap();
        let db = file.join("checkpoints");
        let error = CheckpointStore::open(&db, 7).unwrap_err();
        assert!(matches!(error, StoreError::CreateDir { .. }), "{error:?}");
        let message = error.to_string();
        assert!(message.contains(&db.display().to_string()), "{message}");
        assert!(message.contains("is not a directory"), "{message}");
    }

    #[test]
    fn database_path_that_is_a_directory_is_explained() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("checkpoints");
        fs::create_dir(&db).unwrap();
        let message = CheckpointStore::open(&db, 7).unwrap_err().to_string();
        assert!(
            message.starts_with(&format!(
                "cannot open checkpoint database {}: ",
                db.display()
            )),
            "{message}"
        );
        assert!(message.contains("is a directory"), "{message}");
    }

    #[test]
    fn a_file_that_is_not_a_database_is_an_open_error() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("checkpoints");
        fs::write(&db, vec![b'x'; 4096]).unwrap();
        let error = CheckpointStore::open(&db, 7).unwrap_err();
        assert!(matches!(error, StoreError::Open { .. }), "{error:?}");
        assert!(error.to_string().contains("not a database"), "{error}");
    }

    #[test]
    fn permission_errors_carry_a_hint() {
        // Tests run as root, which no mode bit stops; check the wording on its own.
        let denied = io::Error::from(io::ErrorKind::PermissionDenied);
        assert_eq!(
            describe_io_error(&denied, Path::new("/x")),
            "permission denied on /x; the agent's user needs write access to /x"
        );
        let error = StoreError::Open {
            db: PathBuf::from("/x/checkpoints"),
            reason: format!(
                "unable to open database file ({})",
                describe_io_error(&denied, Path::new("/x"))
            ),
        };
        assert_eq!(
            error.to_string(),
            "cannot open checkpoint database /x/checkpoints: unable to open database file \
             (permission denied on /x; the agent's user needs write access to /x)"
        );
    }

    #[test]
    fn import_copies_the_java_database_without_touching_it() {
        let dir = tempfile::tempdir().unwrap();
        let java = dir.path().join("run/checkpoints");
        fs::create_dir_all(java.parent().unwrap()).unwrap();
        java_database(&java);
        let java_bytes = fs::read(&java).unwrap();
        let java_row = raw(&java)
            .query_row("select lastUpdated from FILE_CHECKPOINTS", [], |r| {
                r.get::<_, String>(0)
            })
            .unwrap();
        let ours = dir.path().join("lib/aws-kinesis-agent/checkpoints");

        assert_eq!(import_java_database(&java, &ours).unwrap(), Some(1));
        assert_eq!(fs::read(&java).unwrap(), java_bytes);
        let mut building = ours.as_os_str().to_owned();
        building.push(IMPORT_SUFFIX);
        assert!(!Path::new(&building).exists());

        let (store, _) = CheckpointStore::open(&ours, 7).unwrap();
        let loaded = store.load(FLOW_A).unwrap();
        assert_eq!(
            loaded,
            vec![CheckpointRow {
                flow: FLOW_A.to_string(),
                path: PathBuf::from("/var/log/app.log"),
                file_id: "(dev=fd00,ino=1048587)".to_string(),
                last_modified_ms: 1_498_479_297_000,
                size: 1_565_917_867,
                offset: 1_565_917_000,
                fingerprint: None,
                last_updated: java_row,
            }]
        );
        drop(store);

        // Ours exists now: nothing more is done, and the Java file is still untouched.
        assert_eq!(import_java_database(&java, &ours).unwrap(), None);
        assert_eq!(fs::read(&java).unwrap(), java_bytes);
    }

    #[test]
    fn import_without_a_java_database_does_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let ours = dir.path().join("ours");
        assert_eq!(
            import_java_database(&dir.path().join("missing"), &ours).unwrap(),
            None
        );
        assert!(!ours.exists());
    }

    #[test]
    fn failed_import_names_both_paths_and_leaves_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let java = dir.path().join("java");
        fs::write(&java, vec![b'x'; 4096]).unwrap();
        let ours = dir.path().join("ours");
        let message = import_java_database(&java, &ours).unwrap_err().to_string();
        assert!(message.contains(&java.display().to_string()), "{message}");
        assert!(message.contains(&ours.display().to_string()), "{message}");
        assert!(!ours.exists());
    }

    #[test]
    fn opening_a_java_database_upgrades_it_in_place() {
        let dir = tempfile::tempdir().unwrap();
        let java = dir.path().join("checkpoints");
        java_database(&java);
        let (mut store, deleted) = CheckpointStore::open(&java, 7).unwrap();
        assert_eq!(deleted, 0);
        let loaded = store.load(FLOW_A).unwrap();
        assert_eq!(loaded.len(), 1);
        assert_eq!(loaded[0].offset, 1_565_917_000);
        assert_eq!(loaded[0].fingerprint, None);
        assert!(is_java_timestamp(&loaded[0].last_updated));

        // Our writes work on the upgraded table ...
        store
            .save(&[row(FLOW_A, "/var/log/app.log", "(dev=fd00,ino=1048587)", 2)])
            .unwrap();
        assert_eq!(store.load(FLOW_A).unwrap()[0].offset, 2);
        drop(store);
        // ... and the Java agent's would not: the reason import copies instead.
        let java_write = raw(&java).execute(
            JAVA_INSERT,
            params![FLOW_B, "/p", "(dev=1,ino=1)", 0_i64, 0_i64, 0_i64],
        );
        assert!(java_write.is_err());
    }

    #[test]
    fn unreadable_rows_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("checkpoints");
        let (mut store, _) = CheckpointStore::open(&db, 7).unwrap();
        let good = row(FLOW_A, "/good", "(dev=1,ino=1)", 1);
        store.save(std::slice::from_ref(&good)).unwrap();
        raw(&db)
            .execute_batch(&format!(
                "insert into FILE_CHECKPOINTS values('{FLOW_A}', '/negative', 'id', 0, 0, -5, {JAVA_NOW}, null);
                 insert into FILE_CHECKPOINTS values('{FLOW_A}', '/no-id', null, 0, 0, 5, {JAVA_NOW}, null);"
            ))
            .unwrap();
        assert_eq!(stripped(store.load(FLOW_A).unwrap()), vec![good]);
    }

    #[test]
    fn a_thousand_rows_save_in_one_transaction() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("checkpoints");
        let (mut store, _) = CheckpointStore::open(&db, 7).unwrap();
        let rows: Vec<CheckpointRow> = (0..1000u64)
            .map(|i| {
                row(
                    FLOW_A,
                    &format!("/logs/{i}.log"),
                    &format!("(dev=1,ino={i})"),
                    i,
                )
            })
            .collect();

        // A bad last row: nothing of the batch is written.
        let mut failing = rows.clone();
        failing[999].offset = u64::MAX;
        let error = store.save(&failing).unwrap_err();
        assert!(matches!(error, StoreError::InvalidRow { .. }), "{error:?}");
        assert!(store.load(FLOW_A).unwrap().is_empty());

        // A SQL failure in the middle of the batch rolls back the rows before it.
        raw(&db)
            .execute_batch(
                "create trigger fail_500 before insert on FILE_CHECKPOINTS \
                 when new.path = '/logs/500.log' begin select raise(abort, 'boom'); end",
            )
            .unwrap();
        let error = store.save(&rows).unwrap_err();
        assert!(error.to_string().contains("boom"), "{error}");
        assert!(store.load(FLOW_A).unwrap().is_empty());
        raw(&db).execute_batch("drop trigger fail_500").unwrap();

        store.save(&rows).unwrap();
        let mut loaded = stripped(store.load(FLOW_A).unwrap());
        loaded.sort_by_key(|r| r.offset);
        assert_eq!(loaded, rows);
    }

    #[test]
    fn deleting_old_names_uses_the_index_not_a_table_scan() {
        let dir = tempfile::tempdir().unwrap();
        let db = dir.path().join("checkpoints");
        let (store, _) = CheckpointStore::open(&db, 7).unwrap();
        let plan: Vec<String> = store
            .conn
            .prepare(&format!("explain query plan {DELETE_OLD_NAMES}"))
            .unwrap()
            .query_map(params!["f", "id", "/p"], |row| row.get::<_, String>(3))
            .unwrap()
            .collect::<Result<_, _>>()
            .unwrap();
        assert!(
            plan.iter()
                .any(|step| step.contains("FILE_CHECKPOINTS_flow_fileId")),
            "{plan:?}"
        );
    }
}
