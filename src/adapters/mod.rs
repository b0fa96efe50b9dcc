//! Transport adapters.

pub mod azure_functions;
