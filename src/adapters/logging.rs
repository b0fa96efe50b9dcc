//! Logging for the command line: human-readable lines on stderr, filtered by `RUST_LOG` (default:
//! warnings, plus entra-enrich's own info lines), every line passed through the personal-email mask.

use std::io::{self, Write};

use entra_core::pii::mask_emails_in;
use tracing_subscriber::fmt::MakeWriter;
use tracing_subscriber::EnvFilter;

/// A writer that masks email addresses in what it is given before passing it on.
pub struct MaskingWriter<W: Write> {
    inner: W,
}

impl<W: Write> Write for MaskingWriter<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let text = String::from_utf8_lossy(buf);
        self.inner.write_all(mask_emails_in(&text).as_bytes())?;
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

/// Makes [`MaskingWriter`]s around any other `MakeWriter`.
pub struct MaskingMakeWriter<M> {
    inner: M,
}

impl<M> MaskingMakeWriter<M> {
    pub fn new(inner: M) -> Self {
        Self { inner }
    }
}

impl<'a, M: MakeWriter<'a>> MakeWriter<'a> for MaskingMakeWriter<M> {
    type Writer = MaskingWriter<M::Writer>;

    fn make_writer(&'a self) -> Self::Writer {
        MaskingWriter {
            inner: self.inner.make_writer(),
        }
    }
}

/// Installs the command line's subscriber. Safe to call once; later calls are ignored.
pub fn init_cli() {
    let filter = EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| EnvFilter::new("warn,entra_enrich=info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        // Colours only on a terminal: CloudWatch, CI and pipes get plain lines.
        .with_ansi(std::io::IsTerminal::is_terminal(&io::stderr()))
        .with_writer(MaskingMakeWriter::new(io::stderr))
        .with_target(false)
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    #[derive(Clone, Default)]
    struct Buf(Arc<Mutex<Vec<u8>>>);

    impl Write for Buf {
        fn write(&mut self, b: &[u8]) -> io::Result<usize> {
            self.0
                .lock()
                .map_err(|_| io::Error::other("poisoned"))?
                .extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn log_lines_are_masked() {
        let buf = Buf::default();
        let sink = buf.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(MaskingMakeWriter::new(move || sink.clone()))
            .finish();
        tracing::subscriber::with_default(subscriber, || {
            tracing::warn!(
                value = "jane.doe@example.com",
                "refused jane.doe@example.com"
            );
        });
        let text = String::from_utf8(buf.0.lock().map(|b| b.clone()).unwrap_or_default())
            .unwrap_or_default();
        assert!(text.contains("refused"), "{text}");
        assert!(!text.contains("jane.doe@example.com"), "{text}");
        assert!(text.contains("j***@e***.com"), "{text}");
    }
}
