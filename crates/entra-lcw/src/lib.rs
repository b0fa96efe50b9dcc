//! entra-lcw (work in progress)
