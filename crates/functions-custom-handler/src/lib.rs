//! The Azure Functions custom-handler protocol as a small hyper 1 server: `{Data, Metadata}` in,
//! `{Outputs, Logs, ReturnValue}` out. Generic: no application code lives here; it borrows only
//! `entra_core::pii`, so that every log line of the process is masked by one rule.
//!
//! Contract: https://learn.microsoft.com/azure/azure-functions/functions-custom-handlers

pub mod logging;
pub mod protocol;
pub mod server;

pub use logging::{
    current_masker, init_tracing, set_masker, InvocationLogLayer, LogSink, Masker, MaskingStdout,
    TracingInitError, INVOCATION_SPAN, MAX_LOG_LINES,
};
pub use protocol::{
    Body, HttpOutput, HttpTriggerRequest, InvokeRequest, InvokeResponse, ProtocolError,
    ScheduleStatus, SysMetadata, TimerInfo, TimerSchedule,
};
pub use server::{
    bind_from_env, bind_from_lookup, serve, serve_with_shutdown, BindError, FunctionApp,
    Invocation, HOST_VERSION_HEADER, INVOCATION_ID_HEADER, LEGACY_PORT_ENV, MAX_ENVELOPE_BYTES,
    PORT_ENV,
};
