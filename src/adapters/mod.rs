//! Transport adapters: each turns one way of being invoked into calls to the handlers.
//!
//! - [`cli`]: the command line (on-call engineers, the demo).
//! - [`azure_functions`]: the Azure Functions custom handler (`entra-enrich serve`).

pub mod azure_functions;
pub mod cli;
#[cfg(feature = "demo")]
pub mod demo;
pub mod lambda;
pub mod logging;
