//! Configuration errors: every one names the file, the key and what was expected.

use std::fmt;
use std::path::PathBuf;

/// A configuration problem that stops the agent (exit 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigError {
    /// The file the problem is in.
    pub file: PathBuf,
    /// The key path, e.g. `flows[0].maxBufferAgeMillis`; None for whole-file problems.
    pub key: Option<String>,
    /// What is wrong and what was expected, e.g.
    /// `value 500 is outside of valid range [1000..900000]`.
    pub message: String,
}

impl ConfigError {
    pub fn file(file: impl Into<PathBuf>, message: impl Into<String>) -> Self {
        ConfigError {
            file: file.into(),
            key: None,
            message: message.into(),
        }
    }
    pub fn key(
        file: impl Into<PathBuf>,
        key: impl Into<String>,
        message: impl Into<String>,
    ) -> Self {
        ConfigError {
            file: file.into(),
            key: Some(key.into()),
            message: message.into(),
        }
    }
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.key {
            Some(key) => write!(
                f,
                "{}: key '{}': {}",
                self.file.display(),
                key,
                self.message
            ),
            None => write!(f, "{}: {}", self.file.display(), self.message),
        }
    }
}

impl std::error::Error for ConfigError {}
