//! Placeholder: being written (config loading with the Java value rules).
use super::{AgentPlan, ConfigError};
use std::path::{Path, PathBuf};

/// Facts about the host that defaults depend on, injected so tests do not depend on the machine.
#[derive(Debug, Clone, Copy)]
pub struct Environment {
    pub cpus: usize,
}

impl Environment {
    pub fn from_host() -> Self {
        Environment {
            cpus: std::thread::available_parallelism().map_or(1, |n| n.get()),
        }
    }
}

pub fn load(
    _main: &Path,
    _flows_dir: Option<&Path>,
    _env: &Environment,
) -> Result<AgentPlan, ConfigError> {
    unimplemented!("config loading is being written")
}

pub fn parse_document(
    _main: (&Path, &str),
    _extra: &[(PathBuf, String)],
    _env: &Environment,
) -> Result<AgentPlan, ConfigError> {
    unimplemented!("config loading is being written")
}
