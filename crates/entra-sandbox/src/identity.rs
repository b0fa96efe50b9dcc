//! Entra ID identity endpoints (owned by the identity work item; this is the agreed interface).
