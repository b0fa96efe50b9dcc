//! Checkpoint and state stores (work in progress)
