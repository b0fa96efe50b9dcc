//! lcw-joiner: a Lifecycle Workflows joiner custom task extension, relayed by a thin Consumption Logic
//! App (LCW can only call Logic Apps; see README › Lifecycle Workflows).
//!
//! 1. The caller's bearer token is validated in-process (defence in depth behind the function key).
//!    A failure answers 401 and never reaches Graph.
//! 2. The callout body is parsed leniently; a malformed body answers 400 naming the field.
//! 3. A callout already answered (same `taskProcessingResult.id`) is answered again from the record,
//!    with no Graph call: a replay writes nothing. Concurrent copies of one callout (a relay retrying
//!    while the first attempt runs) claim the callout: one goes on, the others answer 503 with
//!    `Retry-After` until the record exists, then the recorded answer.
//! 4. The subject is claimed ([`super::claim`]), read by object id and enriched by the engine. If
//!    another handler holds the subject's claim, lcw-joiner waits a few seconds, then answers 503.
//!    Everything runs within `ENRICH_JOINER_DEADLINE_SECONDS` (default 40 s, inside the relay's 60 s
//!    HTTP action); past it the answer is 503 and there is no resume.
//! 5. `resume` is called with the mapped status:
//!
//! | outcome                                      | resume      |
//! |----------------------------------------------|-------------|
//! | updated, unchanged                           | `Completed` |
//! | out of scope (e.g. a cloud-only subject)     | `Completed` (nothing to do is success; the reason says so) |
//! | denied (privileged admin)                    | `Failed`, the reason carries the fix |
//! | no matching value, duplicates, missing/invalid source value | `Failed`, with the reason |
//! | transient failure (throttling, 5xx, timeout) | no resume: answer 503 + `Retry-After`, the relay retries |
//!
//! The answer never holds a personal email.

use entra_core::Outcome;
use entra_lcw::{
    parse_callout, resume_body, resume_body_without_reasons, resume_path, AuthFailure,
    CallerValidator, ResumeStatus,
};
use entra_state::WriteCondition;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};

use std::time::Duration;

use tokio::time::Instant;

use super::audit::{now_rfc3339, AuditLog};
use super::claim::{callout_claim_key, Claimed, Claims};
use super::enrich::{enrich_user, EnrichError, UserRef, WhenBusy};
use super::{EnrichContext, RunId};

/// The transport-neutral request: what the adapter extracted from the host's payload.
#[derive(Debug, Clone)]
pub struct JoinerRequest {
    /// The `Authorization` header value, if any.
    pub authorization: Option<String>,
    /// The callout body (already parsed from a string body, or passed through as JSON).
    pub body: Result<Value, String>,
}

/// The transport-neutral answer.
#[derive(Debug, Clone, PartialEq)]
pub struct JoinerResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Value,
}

impl JoinerResponse {
    fn new(status: u16, body: Value) -> Self {
        Self {
            status,
            headers: Vec::new(),
            body,
        }
    }

    fn header(mut self, name: &str, value: impl Into<String>) -> Self {
        self.headers.push((name.to_string(), value.into()));
        self
    }
}

/// What was answered for one task processing result, kept for replays.
#[derive(Debug, Clone, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Answered {
    outcome: String,
    resume: ResumeStatusName,
    reasons: Vec<String>,
    at: String,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
enum ResumeStatusName {
    Completed,
    Failed,
}

fn answered_key(task_processing_result_id: &str) -> String {
    format!("lcw/{task_processing_result_id}.json")
}

/// Largest callout body accepted (64 KiB): a Lifecycle Workflows callout is a few KB of ids and names.
pub const MAX_CALLOUT_BYTES: usize = 64 * 1024;

/// Seconds the relay should wait before retrying after a transient failure.
pub const RETRY_AFTER_SECONDS: u64 = 30;

/// How long lcw-joiner waits for a user another handler is writing before it answers 503.
const BUSY_WAIT: Duration = Duration::from_secs(5);
/// The inner calls stop this much before the joiner's deadline, so that it answers 503 itself.
const DEADLINE_MARGIN: Duration = Duration::from_millis(750);
/// A resume is not started with less time left than this (it could not be known to have landed).
const RESUME_MIN_TIME: Duration = Duration::from_secs(1);

/// Handles one relayed callout within the context's joiner deadline, counted from now.
pub async fn handle_callout(
    ctx: &EnrichContext,
    validator: Option<&CallerValidator>,
    request: JoinerRequest,
) -> JoinerResponse {
    handle_callout_by(
        ctx,
        validator,
        request,
        Instant::now() + ctx.joiner_deadline,
    )
    .await
}

/// Handles one relayed callout, answering by `deadline` (the adapter's invocation start plus
/// `ENRICH_JOINER_DEADLINE_SECONDS`, or the platform's own deadline when that is earlier).
///
/// Every Graph, token and state call runs under the deadline; when it runs out the answer is 503 with
/// `Retry-After` and the task is not resumed. Claims held at that moment are released in the
/// background (or end with their lease).
pub async fn handle_callout_by(
    ctx: &EnrichContext,
    validator: Option<&CallerValidator>,
    request: JoinerRequest,
    deadline: Instant,
) -> JoinerResponse {
    let soft = deadline
        .checked_sub(DEADLINE_MARGIN)
        .unwrap_or(deadline)
        .max(Instant::now());
    let work = entra_graph::deadline::within(soft, answer_callout(ctx, validator, request));
    match tokio::time::timeout_at(deadline, work).await {
        Ok(answer) => answer,
        Err(_) => {
            tracing::warn!("lcw-joiner deadline reached; answering 503 without resuming");
            unavailable(
                "the joiner deadline (ENRICH_JOINER_DEADLINE_SECONDS) passed before the subject was enriched; the relay retries",
            )
        }
    }
}

async fn answer_callout(
    ctx: &EnrichContext,
    validator: Option<&CallerValidator>,
    request: JoinerRequest,
) -> JoinerResponse {
    // 1. Caller.
    if let Some(v) = validator {
        if let Err(failure) = v.validate(request.authorization.as_deref()).await {
            // The signing keys could not be fetched: not the caller's fault, let the relay retry.
            if failure.is_transient() {
                return unavailable(&format!("caller check: {}", failure.reason()));
            }
            return unauthorized(&failure);
        }
    }

    // 2. Body.
    let body = match request.body {
        Ok(b) => b,
        Err(reason) => {
            return JoinerResponse::new(
                400,
                json!({"error": "invalid_body", "field": "body", "message": reason}),
            )
        }
    };
    // A callout is a few KB of ids and names; anything much larger is not one.
    let size = serde_json::to_vec(&body).map_or(usize::MAX, |b| b.len());
    if size > MAX_CALLOUT_BYTES {
        return JoinerResponse::new(
            413,
            json!({"error": "payload_too_large", "field": "body", "message": format!("the callout body is {size} bytes; a Lifecycle Workflows callout is a few KB and at most {MAX_CALLOUT_BYTES}")}),
        );
    }
    let callout = match parse_callout(&body) {
        Ok(c) => c,
        Err(e) => {
            return JoinerResponse::new(
                400,
                json!({"error": "invalid_callout", "field": e.field(), "message": e.to_string()}),
            )
        }
    };

    // 3. Replay, before and after taking the callout's claim (the first attempt may answer between).
    if let Some(answer) = replayed(ctx, &callout).await {
        return answer;
    }
    let run_id = RunId::new();
    let claims = Claims::new(ctx.state.clone(), "lcw-joiner", run_id.as_str());
    if ctx.dry_run {
        // Nothing is written, so nothing is claimed.
        return enrich_and_resume(ctx, &callout, &claims, run_id).await;
    }
    let key = callout_claim_key(callout.task_processing_result_id());
    let guard = match claims.acquire(&key, None).await {
        Ok(Claimed::Held(guard)) => guard,
        Ok(Claimed::Busy { .. } | Claimed::Stale { .. }) => {
            tracing::info!(task_processing_result_id = %callout.task_processing_result_id(), "an earlier attempt of this callout is still in flight");
            return unavailable("an earlier attempt of this callout is still in flight; its answer is recorded when it ends");
        }
        Err(e) => return unavailable(&format!("state store: {e}")),
    };
    let answer = match replayed(ctx, &callout).await {
        Some(answer) => answer,
        None => enrich_and_resume(ctx, &callout, &claims, run_id).await,
    };
    guard.release().await;
    answer
}

/// The recorded answer of a callout already handled (same `taskProcessingResult.id`): no Graph call.
async fn replayed(ctx: &EnrichContext, callout: &entra_lcw::Callout) -> Option<JoinerResponse> {
    let tpr_id = callout.task_processing_result_id();
    match ctx.state.get(&answered_key(tpr_id)).await {
        Ok(Some(v)) => {
            let a = serde_json::from_slice::<Answered>(&v.bytes).ok()?;
            tracing::info!(task_processing_result_id = %tpr_id, "replayed callout: answering from the record, no Graph call");
            Some(JoinerResponse::new(
                200,
                json!({
                    "subjectId": callout.subject_id(),
                    "outcome": a.outcome,
                    "resume": a.resume,
                    "reasons": a.reasons,
                    "replayed": true,
                }),
            ))
        }
        Ok(None) => None,
        Err(e) => Some(unavailable(&format!("state store: {e}"))),
    }
}

/// Steps 4 and 5: enrich the subject under its claim, then resume.
async fn enrich_and_resume(
    ctx: &EnrichContext,
    callout: &entra_lcw::Callout,
    claims: &Claims,
    run_id: RunId,
) -> JoinerResponse {
    let subject_id = callout.subject_id().to_string();
    let audit = AuditLog::new(ctx.state.clone(), run_id, "lcw-joiner");
    let target = UserRef::Id(subject_id.clone());
    let result = match enrich_user(ctx, &audit, claims, &target, WhenBusy::Wait(BUSY_WAIT)).await {
        Ok(r) => r,
        Err(e) if e.is_transient() => return unavailable(&e.to_string()),
        Err(EnrichError::NotFound) => {
            // Replication delay right after creation is documented for List/Get users; a later retry may
            // find the subject. Treated as transient so the relay retries within LCW's timeout.
            return unavailable("the subject is not readable in Graph yet");
        }
        Err(e) => {
            return resume_and_answer(
                ctx,
                callout,
                &subject_id,
                "Failed",
                ResumeStatus::Failed,
                vec![e.to_string()],
            )
            .await;
        }
    };
    match &result.outcome {
        Outcome::Failed {
            transient: true,
            reason,
        } => return unavailable(reason),
        Outcome::ClaimedElsewhere { handler } => {
            return unavailable(&format!(
                "{handler} is writing this user right now; the retry answers once it is done"
            ))
        }
        _ => {}
    }
    let (status, reasons) = resume_mapping(&result.outcome, &result.issues);
    resume_and_answer(
        ctx,
        callout,
        &subject_id,
        result.outcome.code(),
        status,
        reasons,
    )
    .await
}

/// Maps an outcome onto the resume status and its reasons (see the module table).
pub fn resume_mapping(
    outcome: &Outcome,
    issues: &[entra_core::FieldIssue],
) -> (ResumeStatus, Vec<String>) {
    let mut reasons = vec![format!("{}: {}", outcome.code(), outcome.describe())];
    reasons.extend(issues.iter().map(|i| format!("{}: {}", i.field, i.reason)));
    let status = match outcome {
        Outcome::Updated { .. } | Outcome::Unchanged | Outcome::OutOfScope => {
            ResumeStatus::Completed
        }
        _ => ResumeStatus::Failed,
    };
    (status, reasons)
}

async fn resume_and_answer(
    ctx: &EnrichContext,
    callout: &entra_lcw::Callout,
    subject_id: &str,
    outcome_code: &str,
    status: ResumeStatus,
    reasons: Vec<String>,
) -> JoinerResponse {
    let reasons: Vec<String> = reasons
        .into_iter()
        .map(|r| entra_core::pii::mask_emails_in(&r))
        .collect();
    let path = resume_path(callout);
    let body = resume_body(status, &reasons);
    let status_name = match status {
        ResumeStatus::Completed => ResumeStatusName::Completed,
        ResumeStatus::Failed => ResumeStatusName::Failed,
    };
    let mut resume_error = None;
    if entra_graph::deadline::remaining().is_some_and(|left| left < RESUME_MIN_TIME) {
        return unavailable(
            "too little of the joiner deadline was left to resume; the relay retries",
        );
    }
    if !ctx.dry_run {
        let mut answer = ctx.graph.post_json(&path, &body).await;
        if matches!(&answer, Err(e) if e.status() == Some(400))
            && body["data"].get("statusReasons").is_some()
        {
            // statusReasons on v1.0 resume is not documented: if Graph refuses it, resume plainly rather
            // than leave the task to time out.
            tracing::warn!("resume with statusReasons refused (400); resuming without reasons");
            answer = ctx
                .graph
                .post_json(&path, &resume_body_without_reasons(status))
                .await;
        }
        if let Err(e) = answer {
            if e.is_transient() {
                return unavailable(&format!("resume: {e}"));
            }
            // A 4xx on resume is terminal (e.g. the task already timed out or was already resumed):
            // retrying cannot help, so the relay must not retry. Reported in the answer.
            tracing::warn!(error = %e, "resume refused by Graph");
            resume_error = Some(e.to_string());
        }
    }
    if !ctx.dry_run && resume_error.is_none() {
        let record = Answered {
            outcome: outcome_code.to_string(),
            resume: status_name,
            reasons: reasons.clone(),
            at: now_rfc3339(),
        };
        let key = answered_key(callout.task_processing_result_id());
        if let Err(e) = ctx
            .state
            .put(
                &key,
                serde_json::to_vec(&record).unwrap_or_default().into(),
                WriteCondition::Any,
            )
            .await
        {
            tracing::warn!(error = %e, "could not record the answered callout; a replay will re-plan (and write nothing)");
        }
    }
    JoinerResponse::new(
        200,
        json!({
            "subjectId": subject_id,
            "outcome": outcome_code,
            "resume": status_name,
            "reasons": reasons,
            "resumeError": resume_error,
            "dryRun": ctx.dry_run,
        }),
    )
}

fn unauthorized(failure: &AuthFailure) -> JoinerResponse {
    JoinerResponse::new(
        401,
        json!({"error": "unauthorized", "message": failure.reason()}),
    )
    .header("WWW-Authenticate", failure.www_authenticate())
}

fn unavailable(reason: &str) -> JoinerResponse {
    JoinerResponse::new(
        503,
        json!({"error": "temporarily_unavailable", "message": entra_core::pii::mask_emails_in(reason), "retryAfterSeconds": RETRY_AFTER_SECONDS}),
    )
    .header("Retry-After", RETRY_AFTER_SECONDS.to_string())
}
