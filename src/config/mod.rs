//! Configuration: `agent.json` plus the flows of `agent.d/`, read with the Java agent's rules.
//!
//! `raw` mirrors what the user wrote and applies the Java value rules; `plan` is the checked,
//! typed result; `error` names the file, key and expectation of anything wrong.

mod error;
mod plan;
mod raw;

pub use error::ConfigError;
pub use plan::*;
pub use raw::{load, parse_document, Environment};
