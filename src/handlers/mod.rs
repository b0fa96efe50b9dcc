//! Handlers: enrich one user, backfill, new-hire-watch, lcw-joiner (work in progress)
