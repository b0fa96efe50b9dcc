//! Azure Functions custom handler transport (work in progress)
