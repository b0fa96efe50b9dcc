//! functions-custom-handler (work in progress)
