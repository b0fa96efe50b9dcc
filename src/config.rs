//! Application settings (work in progress)
