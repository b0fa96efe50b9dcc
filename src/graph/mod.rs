//! Microsoft Graph client (work in progress)
