//! What every handler needs: the Graph client, the engine's policy, where source values come from,
//! and the state store (checkpoints and audit log).

use std::fmt;
use std::sync::Arc;

use entra_core::{EnrichPolicy, HrIndex, SourceSpec};
use entra_graph::GraphClient;
use entra_state::StateStore;

/// The user properties every handler reads: identity, scope, current values and sources.
const BASE_SELECT: [&str; 7] = [
    "id",
    "userPrincipalName",
    "mail",
    "employeeId",
    "onPremisesSyncEnabled",
    "otherMails",
    "usageLocation",
];

/// Where HR values come from.
#[derive(Clone)]
pub enum HrSource {
    /// The user's own directory properties (e.g. `onPremisesExtensionAttributes.extensionAttribute1`,
    /// filled from Workday `personalEmail` through AD and Cloud Sync).
    Directory,
    /// HR records keyed by `employeeId`, held in memory.
    Index(Arc<HrIndex>),
    /// An HR export file keyed by `employeeId`, read when needed: the backfill keeps only the rows of
    /// in-scope users and counts (and reports) the rest.
    File(Arc<crate::sources::HrFile>),
    /// A Workday RaaS report, read per user (joiners) or whole (the backfill).
    Workday(Arc<crate::sources::workday::WorkdaySource>),
}

impl fmt::Debug for HrSource {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HrSource::Directory => f.write_str("Directory"),
            HrSource::Index(i) => write!(f, "Index({} records)", i.len()),
            HrSource::File(file) => write!(f, "File({})", file.path().display()),
            HrSource::Workday(w) => write!(f, "Workday({})", w.client().shown_url()),
        }
    }
}

/// Shared, cheap-to-clone handler context.
#[derive(Clone)]
pub struct EnrichContext {
    pub graph: GraphClient,
    pub policy: Arc<EnrichPolicy>,
    pub sources: Arc<SourceSpec>,
    pub hr: HrSource,
    pub state: Arc<dyn StateStore>,
    /// Plan and report, never write.
    pub dry_run: bool,
    /// lcw-joiner answers within this (`ENRICH_JOINER_DEADLINE_SECONDS`).
    pub joiner_deadline: std::time::Duration,
    /// Workday writeback, for the handlers that write back (joiners; a backfill with
    /// `--writeback`). `None`: nothing is written to Workday.
    pub writeback: Option<Arc<super::writeback::Writeback>>,
}

impl EnrichContext {
    /// The same context, writing nothing back to Workday.
    pub fn without_writeback(&self) -> Self {
        EnrichContext {
            writeback: None,
            ..self.clone()
        }
    }

    /// The `$select` of a user read by id: [`Self::select`], plus what the writeback reads.
    pub fn user_select(&self) -> Vec<String> {
        let mut out = self.select();
        if let Some(w) = &self.writeback {
            out.extend(w.select().iter().map(|p| p.to_string()));
        }
        out
    }

    /// The `$select` list (delta pages, listings): base properties, plus what the scope and the
    /// sources read.
    pub fn select(&self) -> Vec<String> {
        let mut out: Vec<String> = BASE_SELECT.iter().map(|s| s.to_string()).collect();
        let extra = self
            .policy
            .scope
            .properties()
            .into_iter()
            .chain(std::iter::once(
                self.sources.other_mails.top_level().to_string(),
            ))
            .chain(
                self.sources
                    .usage_location
                    .iter()
                    .map(|p| p.top_level().to_string()),
            );
        for p in extra {
            if !out.iter().any(|o| o.eq_ignore_ascii_case(&p)) {
                out.push(p);
            }
        }
        out
    }
}

/// A run identifier: sortable UTC timestamp plus a random suffix, e.g. `20261125T041500Z-3f9a`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct RunId(pub String);

impl RunId {
    /// A new run id for now.
    pub fn new() -> Self {
        let now = time::OffsetDateTime::now_utc();
        let fmt = time::macros::format_description!("[year][month][day]T[hour][minute][second]Z");
        let stamp = now.format(&fmt).unwrap_or_else(|_| "run".to_string());
        let suffix = &uuid::Uuid::new_v4().simple().to_string()[..6];
        RunId(format!("{stamp}-{suffix}"))
    }

    /// Accepts a run id given by an operator: letters, digits, `-`, `_`, `.` only (it names a file).
    pub fn parse(raw: &str) -> Result<Self, String> {
        let v = raw.trim();
        if v.is_empty()
            || v.len() > 64
            || !v
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.'))
            || v.starts_with('.')
        {
            return Err(
                "a run id has letters, digits, '-', '_' or '.' only (see `entra-enrich runs`)"
                    .into(),
            );
        }
        Ok(RunId(v.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl Default for RunId {
    fn default() -> Self {
        Self::new()
    }
}

impl fmt::Display for RunId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}
