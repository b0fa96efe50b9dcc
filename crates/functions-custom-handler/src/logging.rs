//! Logging: `tracing` to stdout as JSON lines, and every event emitted inside an invocation's span
//! also appended to that invocation's `Logs` array (the host writes each `Logs[]` entry as an
//! Information log of the invocation, so it shows in Application Insights correlated with the run:
//! https://learn.microsoft.com/azure/azure-functions/functions-custom-handlers#response-payload).
//!
//! Every line — stdout and `Logs` — passes through the email masker.

use std::collections::HashMap;
use std::fmt::Write as _;
use std::io::Write as _;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, OnceLock};

use tracing::field::{Field, Visit};
use tracing::span::{Attributes, Id};
use tracing::{Event, Subscriber};
use tracing_subscriber::layer::{Context, SubscriberExt};
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::util::SubscriberInitExt;
use tracing_subscriber::Layer;

/// A function that masks personal data (email addresses) in a line of text.
pub type Masker = fn(&str) -> String;

static MASKER: OnceLock<Masker> = OnceLock::new();

/// The masker in force: the one given to [`init_tracing`] / [`set_masker`], else `entra_core::pii::mask_emails_in`.
pub fn current_masker() -> Masker {
    MASKER
        .get()
        .copied()
        .unwrap_or(entra_core::pii::mask_emails_in)
}

/// Installs the process-wide masker. Returns `false` if one was already installed (the first wins).
pub fn set_masker(masker: Masker) -> bool {
    MASKER.set(masker).is_ok()
}

fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|poisoned| poisoned.into_inner())
}

/// Most lines one invocation's `Logs` array carries (each becomes a host trace); the rest are counted
/// and reported in one final line. stdout still receives every event.
pub const MAX_LOG_LINES: usize = 1000;

#[derive(Debug, Default)]
struct Lines {
    kept: Vec<String>,
    dropped: usize,
}

/// The log lines collected for one invocation; they become its `Logs` array.
#[derive(Debug, Clone, Default)]
pub struct LogSink {
    lines: Arc<Mutex<Lines>>,
}

impl LogSink {
    pub fn new() -> Self {
        Self::default()
    }

    /// Appends a line, masked (beyond [`MAX_LOG_LINES`] the line is only counted).
    pub fn push(&self, line: impl AsRef<str>) {
        let mut lines = lock(&self.lines);
        if lines.kept.len() >= MAX_LOG_LINES {
            lines.dropped += 1;
            return;
        }
        lines.kept.push(current_masker()(line.as_ref()));
    }

    /// A copy of the lines so far.
    pub fn lines(&self) -> Vec<String> {
        lock(&self.lines).kept.clone()
    }

    /// Removes and returns the lines so far, plus a final `… N more log lines not included` line when
    /// some were dropped.
    pub fn take(&self) -> Vec<String> {
        let mut lines = lock(&self.lines);
        let mut out = std::mem::take(&mut lines.kept);
        let dropped = std::mem::take(&mut lines.dropped);
        if dropped > 0 {
            out.push(format!(
                "… {dropped} more log lines not included in Logs (see the handler's stdout)"
            ));
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sink_masks_and_caps() {
        let sink = LogSink::new();
        sink.push("to jane.doe@example.com");
        assert_eq!(sink.lines(), vec!["to j***@e***.com".to_string()]);
        for i in 0..MAX_LOG_LINES + 4 {
            sink.push(format!("line {i}"));
        }
        let taken = sink.take();
        assert_eq!(taken.len(), MAX_LOG_LINES + 1);
        assert_eq!(
            taken.last().map(String::as_str),
            Some("… 5 more log lines not included in Logs (see the handler's stdout)")
        );
        assert!(sink.take().is_empty());
    }
}

/// Name of the span the server opens around each invocation.
pub const INVOCATION_SPAN: &str = "invocation";
/// Field of [`INVOCATION_SPAN`] that carries the process-unique slot of the invocation's [`LogSink`].
pub(crate) const SLOT_FIELD: &str = "log_slot";

fn sinks() -> &'static Mutex<HashMap<u64, LogSink>> {
    static SINKS: OnceLock<Mutex<HashMap<u64, LogSink>>> = OnceLock::new();
    SINKS.get_or_init(Default::default)
}

/// Registration of a sink for the lifetime of one invocation. Keyed by a process-unique slot rather
/// than the host's invocation id, so two requests carrying the same id (or none) never share a sink.
pub(crate) struct SinkRegistration {
    pub(crate) slot: u64,
}

impl SinkRegistration {
    pub(crate) fn new(sink: &LogSink) -> Self {
        static NEXT: AtomicU64 = AtomicU64::new(1);
        let slot = NEXT.fetch_add(1, Ordering::Relaxed);
        lock(sinks()).insert(slot, sink.clone());
        Self { slot }
    }
}

impl Drop for SinkRegistration {
    fn drop(&mut self) {
        lock(sinks()).remove(&self.slot);
    }
}

struct Slot(u64);

struct SlotVisitor(Option<u64>);

impl Visit for SlotVisitor {
    fn record_u64(&mut self, field: &Field, value: u64) {
        if field.name() == SLOT_FIELD {
            self.0 = Some(value);
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        if field.name() == SLOT_FIELD {
            self.0 = u64::try_from(value).ok();
        }
    }
    fn record_debug(&mut self, _field: &Field, _value: &dyn std::fmt::Debug) {}
}

#[derive(Default)]
struct LineVisitor {
    message: String,
    fields: String,
}

impl Visit for LineVisitor {
    fn record_str(&mut self, field: &Field, value: &str) {
        if field.name() == "message" {
            self.message.push_str(value);
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
    fn record_debug(&mut self, field: &Field, value: &dyn std::fmt::Debug) {
        if field.name() == "message" {
            let _ = write!(self.message, "{value:?}");
        } else {
            let _ = write!(self.fields, " {}={:?}", field.name(), value);
        }
    }
}

/// A `tracing_subscriber::Layer` that appends every event inside an [`INVOCATION_SPAN`] span to that
/// invocation's [`LogSink`], formatted as `LEVEL target: message k=v…` and masked.
#[derive(Debug, Clone, Copy, Default)]
pub struct InvocationLogLayer;

impl<S> Layer<S> for InvocationLogLayer
where
    S: Subscriber + for<'a> LookupSpan<'a>,
{
    fn on_new_span(&self, attrs: &Attributes<'_>, id: &Id, ctx: Context<'_, S>) {
        if attrs.metadata().name() != INVOCATION_SPAN {
            return;
        }
        let mut v = SlotVisitor(None);
        attrs.record(&mut v);
        if let (Some(slot), Some(span)) = (v.0, ctx.span(id)) {
            span.extensions_mut().insert(Slot(slot));
        }
    }

    fn on_event(&self, event: &Event<'_>, ctx: Context<'_, S>) {
        let Some(scope) = ctx.event_scope(event) else {
            return;
        };
        for span in scope {
            let slot = span.extensions().get::<Slot>().map(|s| s.0);
            if let Some(slot) = slot {
                let sink = lock(sinks()).get(&slot).cloned();
                if let Some(sink) = sink {
                    let mut v = LineVisitor::default();
                    event.record(&mut v);
                    let meta = event.metadata();
                    sink.push(format!(
                        "{} {}: {}{}",
                        meta.level(),
                        meta.target(),
                        v.message,
                        v.fields
                    ));
                }
                return;
            }
        }
    }
}

/// A `MakeWriter` for stdout that masks each formatted event before writing it.
#[derive(Debug, Clone, Copy, Default)]
pub struct MaskingStdout;

/// One event's worth of output; masked and written to stdout on drop.
pub struct MaskingLine {
    buf: Vec<u8>,
}

impl std::io::Write for MaskingLine {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl Drop for MaskingLine {
    fn drop(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let masked = current_masker()(&String::from_utf8_lossy(&self.buf));
        let mut out = std::io::stdout().lock();
        let _ = out.write_all(masked.as_bytes());
        let _ = out.flush();
    }
}

impl<'a> tracing_subscriber::fmt::MakeWriter<'a> for MaskingStdout {
    type Writer = MaskingLine;
    fn make_writer(&'a self) -> Self::Writer {
        MaskingLine { buf: Vec::new() }
    }
}

/// Error installing the global subscriber.
#[derive(Debug, thiserror::Error)]
#[error("could not install the tracing subscriber (one is already installed?): {0}")]
pub struct TracingInitError(String);

/// Installs the process-wide subscriber: `RUST_LOG`-style filter (default `info`), JSON lines on
/// stdout (masked), and [`InvocationLogLayer`]. `masker` is applied to every line; the application
/// passes its own PII masker (e.g. `entra_core::pii::mask_emails_in`).
pub fn init_tracing(masker: Masker) -> Result<(), TracingInitError> {
    set_masker(masker);
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::registry()
        .with(filter)
        .with(
            tracing_subscriber::fmt::layer()
                .json()
                .with_current_span(true)
                .with_span_list(false)
                .with_writer(MaskingStdout),
        )
        .with(InvocationLogLayer)
        .try_init()
        .map_err(|e| TracingInitError(e.to_string()))
}
