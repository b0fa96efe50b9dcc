//! credential (work in progress)
