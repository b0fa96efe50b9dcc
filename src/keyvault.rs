//! keyvault (work in progress)
