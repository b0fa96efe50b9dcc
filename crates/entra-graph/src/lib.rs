//! entra-graph (work in progress)
