//! TEMPORARY stand-in while the SQLite store is written on another branch; replaced on merge.
use std::path::{Path, PathBuf};
pub struct CheckpointRow {
    pub flow: String,
    pub path: PathBuf,
    pub file_id: String,
    pub last_modified_ms: i64,
    pub size: i64,
    pub offset: u64,
    pub fingerprint: Option<String>,
    pub last_updated: String,
}
#[derive(Debug)]
pub struct StoreError(pub String);
impl std::fmt::Display for StoreError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}
impl std::error::Error for StoreError {}
pub struct CheckpointStore {
    path: PathBuf,
}
impl CheckpointStore {
    pub fn open(path: &Path, _ttl_days: u32) -> Result<(CheckpointStore, usize), StoreError> {
        Ok((CheckpointStore { path: path.into() }, 0))
    }
    pub fn load(&self, _flow: &str) -> Result<Vec<CheckpointRow>, StoreError> {
        Ok(vec![])
    }
    pub fn save(&mut self, _rows: &[CheckpointRow]) -> Result<(), StoreError> {
        Ok(())
    }
    pub fn path(&self) -> &Path {
        &self.path
    }
}
pub fn import_java_database(_java: &Path, _ours: &Path) -> Result<Option<usize>, StoreError> {
    Ok(None)
}
