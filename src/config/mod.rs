//! Configuration: `agent.json` plus the flows of `agent.d/`, read with the Java agent's rules.
//!
//! `raw` knows the keys of `agent.json` and `agent.d/` and builds the plan; `reader` applies the
//! Java value rules to one JSON object; `processing` reads `dataProcessingOptions`; `plan` is the
//! checked, typed result; `error` names the file, key and expectation of anything wrong.

mod error;
mod plan;
mod processing;
mod raw;
mod reader;
#[cfg(test)]
mod tests;

pub use error::ConfigError;
pub use plan::*;
pub use raw::{load, parse_document, Environment};
