//! The RaaS client: one GET per report read, the body parsed as it arrives.
//!
//! URL: `https://{host}/ccx/service/customreport2/{tenant}/{owner}/{report}?format=json`; a prompt
//! becomes a query parameter (`?Employee_ID=E123`). Source: Workday's RaaS URL as documented by
//! Workato (GitHub wilsonliaows/docs `connectors/workday/workday_raas.md`: "Actions → Web Service →
//! View URLs"). Workday documents no paging for RaaS: the whole report comes in one answer, so the
//! body is streamed to the parser chunk by chunk and never held whole.

use std::io::Read;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::mpsc;

use crate::auth::WorkdayAuth;
use crate::error::{redact_url, WorkdayError, WorkdayErrorKind};
use crate::report::{read_report, ReportFields, WorkerRow};

/// The setting that holds the report URL.
pub const REPORT_URL_SETTING: &str = "ENRICH_WORKDAY_REPORT_URL";

/// Time limits of every Workday call.
#[derive(Debug, Clone, Copy)]
pub struct RaasOptions {
    /// From sending the request to the answer's headers (and for the token grant).
    pub timeout: Duration,
    /// Longest wait for the next piece of a report's body.
    pub idle_timeout: Duration,
}

impl Default for RaasOptions {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(30),
            idle_timeout: Duration::from_secs(30),
        }
    }
}

/// A RaaS report and how to read it.
#[derive(Debug, Clone)]
pub struct RaasClient {
    http: reqwest::Client,
    report: url::Url,
    auth: Arc<WorkdayAuth>,
    fields: ReportFields,
    prompt: Option<String>,
    options: RaasOptions,
}

impl RaasClient {
    /// `report_url` is the report's URL; `format=json` is set on it (replacing any other format).
    pub fn new(
        report_url: &str,
        auth: Arc<WorkdayAuth>,
        fields: ReportFields,
        prompt: Option<String>,
        http: reqwest::Client,
        options: RaasOptions,
    ) -> Result<RaasClient, WorkdayError> {
        let report = json_report_url(report_url)?;
        Ok(RaasClient {
            http,
            report,
            auth,
            fields,
            prompt: prompt.filter(|p| !p.trim().is_empty()),
            options,
        })
    }

    /// The report URL as messages show it (no credentials, no query).
    pub fn shown_url(&self) -> String {
        redact_url(&self.report)
    }

    /// The prompt that selects one worker, if the report has one configured.
    pub fn prompt(&self) -> Option<&str> {
        self.prompt.as_deref()
    }

    /// The rows for one employeeId: with a prompt, one call that asks Workday for that worker; the
    /// rows are filtered again here, so a report that ignores the prompt still yields only them.
    /// Without a prompt, the whole report is read.
    pub async fn workers_for(&self, employee_id: &str) -> Result<Vec<WorkerRow>, WorkdayError> {
        let wanted = employee_id.trim();
        // The same key as every HR source: trimmed, lower-cased.
        let key = wanted.to_lowercase();
        let mut url = self.report.clone();
        if let Some(prompt) = &self.prompt {
            url.query_pairs_mut().append_pair(prompt, wanted);
        }
        let mut rows = Vec::new();
        self.read(url, &mut |row: WorkerRow| {
            let same = row
                .employee_id
                .as_deref()
                .is_some_and(|id| id.trim().to_lowercase() == key);
            if same {
                rows.push(row);
            }
        })
        .await?;
        Ok(rows)
    }

    /// Every row of the report, in order; returns the number of rows. On an error, the rows already
    /// passed to `each` must not be used: the report was not read to its end.
    pub async fn for_each_worker(
        &self,
        each: &mut (dyn FnMut(WorkerRow) + Send),
    ) -> Result<u64, WorkdayError> {
        self.read(self.report.clone(), each).await
    }

    async fn read(
        &self,
        url: url::Url,
        each: &mut (dyn FnMut(WorkerRow) + Send),
    ) -> Result<u64, WorkdayError> {
        let response = self.send(&url).await?;
        stream_rows(
            response,
            self.fields.clone(),
            self.options.idle_timeout,
            each,
        )
        .await
    }

    /// GET with the credentials; after a 401, the secrets are read again and the call repeated once.
    async fn send(&self, url: &url::Url) -> Result<reqwest::Response, WorkdayError> {
        let mut retried = false;
        loop {
            let authorization = self.auth.header(&self.http, self.options.timeout).await?;
            let request = self
                .http
                .get(url.clone())
                .header(reqwest::header::AUTHORIZATION, authorization)
                .header(reqwest::header::ACCEPT, "application/json");
            let response = tokio::time::timeout(self.options.timeout, request.send())
                .await
                .map_err(|_| timed_out("the Workday report", self.options.timeout))?
                .map_err(|e| transport_error("the Workday report", &e))?;
            let status = response.status().as_u16();
            if (200..300).contains(&status) {
                return Ok(response);
            }
            if status == 401 && !retried && self.auth.refresh() {
                tracing::info!("Workday answered 401; reading the credentials again once");
                retried = true;
                continue;
            }
            return Err(self.status_error(status));
        }
    }

    fn status_error(&self, status: u16) -> WorkdayError {
        let shown = self.shown_url();
        let (kind, message, setting) = match status {
            401 => (
                WorkdayErrorKind::Auth,
                format!("Workday refused the credentials (401); check {}", self.auth.settings()),
                crate::auth::USERNAME_SETTING,
            ),
            403 => (
                WorkdayErrorKind::Auth,
                format!("Workday refused the report {shown} to this user (403); share the report with the integration user's security group"),
                REPORT_URL_SETTING,
            ),
            404 => (
                WorkdayErrorKind::NotFound,
                format!("there is no Workday report at {shown} (404); copy the URL from the report's Actions > Web Service > View URLs"),
                REPORT_URL_SETTING,
            ),
            429 | 500..=599 => (
                WorkdayErrorKind::Transient,
                format!("Workday answered {status} for the report {shown}; it is retried later"),
                REPORT_URL_SETTING,
            ),
            _ => (
                WorkdayErrorKind::Refused,
                format!("Workday answered {status} for the report {shown}; check the report URL and ENRICH_WORKDAY_PROMPT"),
                REPORT_URL_SETTING,
            ),
        };
        WorkdayError::new(kind, message)
            .with_status(status)
            .with_setting(setting)
    }
}

/// The report URL with `format=json`, checked.
fn json_report_url(raw: &str) -> Result<url::Url, WorkdayError> {
    let bad = |why: &str| {
        WorkdayError::new(
            WorkdayErrorKind::Refused,
            format!("{REPORT_URL_SETTING} {why}; it is https://{{host}}/ccx/service/customreport2/{{tenant}}/{{owner}}/{{report}}"),
        )
        .with_setting(REPORT_URL_SETTING)
    };
    let mut url = url::Url::parse(raw.trim()).map_err(|_| bad("is not a URL"))?;
    if !is_https_or_loopback(&url) {
        return Err(bad("is not an https URL (plain http only on loopback)"));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(bad(
            "holds credentials; set ENRICH_WORKDAY_USERNAME and the password setting instead",
        ));
    }
    let kept: Vec<(String, String)> = url
        .query_pairs()
        .filter(|(k, _)| k != "format")
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect();
    url.query_pairs_mut()
        .clear()
        .extend_pairs(kept)
        .append_pair("format", "json");
    Ok(url)
}

/// https, or plain http to a loopback host (a local emulator): the password and report never cross a
/// network in clear.
pub(crate) fn is_https_or_loopback(url: &url::Url) -> bool {
    match url.scheme() {
        "https" => true,
        "http" => match url.host() {
            Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
            Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
            Some(url::Host::Domain(d)) => d.eq_ignore_ascii_case("localhost"),
            None => false,
        },
        _ => false,
    }
}

pub(crate) fn transport_error(what: &str, e: &reqwest::Error) -> WorkdayError {
    let why = if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not be reached"
    } else {
        "failed"
    };
    WorkdayError::new(
        WorkdayErrorKind::Transient,
        format!("{what} {why}; it is retried later"),
    )
}

fn timed_out(what: &str, after: Duration) -> WorkdayError {
    WorkdayError::new(
        WorkdayErrorKind::Transient,
        format!(
            "{what} did not answer within {:.1} s; it is retried later",
            after.as_secs_f32()
        ),
    )
}

/// Pumps the body's chunks to a parser on a blocking thread, and its rows back to `each`.
async fn stream_rows(
    mut response: reqwest::Response,
    fields: ReportFields,
    idle: Duration,
    each: &mut (dyn FnMut(WorkerRow) + Send),
) -> Result<u64, WorkdayError> {
    let (chunk_tx, chunk_rx) = mpsc::channel::<Result<Bytes, String>>(16);
    let (row_tx, mut row_rx) = mpsc::channel::<WorkerRow>(1024);
    let parser = tokio::task::spawn_blocking(move || {
        let reader = ChunkReader {
            rx: chunk_rx,
            current: Bytes::new(),
        };
        read_report(reader, &fields, &mut |row| {
            let _ = row_tx.blocking_send(row);
        })
    });
    let pump = async move {
        loop {
            let next = match tokio::time::timeout(idle, response.chunk()).await {
                Ok(Ok(Some(chunk))) => Ok(chunk),
                Ok(Ok(None)) => return Ok(()),
                Ok(Err(e)) => Err(transport_error("reading the Workday report", &e)),
                Err(_) => Err(timed_out("the rest of the Workday report", idle)),
            };
            match next {
                Ok(chunk) => {
                    if chunk_tx.send(Ok(chunk)).await.is_err() {
                        return Ok(()); // the parser stopped: its error says why
                    }
                }
                Err(e) => {
                    let _ = chunk_tx.send(Err(e.to_string())).await;
                    return Err(e);
                }
            }
        }
    };
    let consume = async {
        while let Some(row) = row_rx.recv().await {
            each(row);
        }
    };
    let (pumped, ()) = tokio::join!(pump, consume);
    let parsed = parser.await.map_err(|_| {
        WorkdayError::new(
            WorkdayErrorKind::BadReport,
            "the report parser stopped unexpectedly",
        )
    })?;
    pumped?;
    parsed.map_err(|e| {
        WorkdayError::new(WorkdayErrorKind::BadReport, e.to_string())
            .with_setting(REPORT_URL_SETTING)
    })
}

/// A blocking `Read` over the chunks the pump sends.
struct ChunkReader {
    rx: mpsc::Receiver<Result<Bytes, String>>,
    current: Bytes,
}

impl Read for ChunkReader {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        while self.current.is_empty() {
            match self.rx.blocking_recv() {
                Some(Ok(chunk)) => self.current = chunk,
                Some(Err(why)) => return Err(std::io::Error::other(why)),
                None => return Ok(0),
            }
        }
        let n = buf.len().min(self.current.len());
        buf[..n].copy_from_slice(&self.current[..n]);
        self.current = self.current.slice(n..);
        Ok(n)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_url_asks_for_json_and_keeps_its_other_parameters() {
        let url = json_report_url(
            "https://wd2.workday.com/ccx/service/customreport2/acme/isu/Workers?format=xml&Org!WID=1",
        )
        .expect("url");
        assert_eq!(
            url.as_str(),
            "https://wd2.workday.com/ccx/service/customreport2/acme/isu/Workers?Org%21WID=1&format=json"
        );
        for bad in [
            "not a url",
            "ftp://x/y",
            "https://u:p@wd2.workday.com/ccx/x",
        ] {
            let e = json_report_url(bad).expect_err(bad);
            assert_eq!(e.setting, Some(REPORT_URL_SETTING));
            assert!(!e.to_string().contains("u:p"), "{e}");
        }
        assert!(json_report_url("http://127.0.0.1:8080/ccx/service/customreport2/a/b/c").is_ok());
    }
}
