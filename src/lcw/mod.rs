//! Lifecycle Workflows custom task extension: callout, caller authentication, resume (work in progress)
