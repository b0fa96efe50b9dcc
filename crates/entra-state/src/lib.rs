//! entra-state (work in progress)
