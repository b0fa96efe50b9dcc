//! Shared test harness: a sandbox tenant on loopback, the real managed-identity credential pointed
//! at it, and a handler context built by the same code the binary uses.

#![allow(dead_code)]

#[allow(dead_code)]
pub(crate) mod logs;
pub(crate) mod vault;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::Arc;

use azure_core::credentials::TokenCredential;
use entra_enrich::app::{build_graph, build_state, context_from_parts};
use entra_enrich::config::{Config, Env};
use entra_enrich::handlers::EnrichContext;
use entra_sandbox::{Sandbox, SandboxOptions};
use serde_json::Value;

/// The real `azure_identity::ManagedIdentityCredential`. No managed identity variable is set in the
/// test process, so it calls IMDS, and the sandbox's transport brings that call to the sandbox: no
/// test touches the process environment, so they all run in parallel.
pub(crate) fn managed_identity(sandbox: &Sandbox) -> Arc<dyn TokenCredential> {
    entra_graph::credential::build_credential(
        entra_graph::credential::CredentialChoice::ManagedIdentity { client_id: None },
        entra_graph::credential::CredentialOptions {
            client_options: azure_core::http::ClientOptions {
                transport: Some(sandbox.sdk_transport()),
                ..Default::default()
            },
        },
    )
    .expect("managed identity credential")
}

/// App options whose Azure SDK calls reach `sandbox` (see [`managed_identity`]).
pub(crate) fn app_options(sandbox: &Sandbox) -> entra_enrich::app::AppOptions {
    entra_enrich::app::AppOptions {
        transport: Some(sandbox.sdk_transport()),
        ..Default::default()
    }
}

/// The settings a test runs with: the sandbox as Graph, a temporary state directory. The identity
/// variables tell the config a managed identity is there, as the platform's do; the SDK in this
/// process reaches the sandbox through [`managed_identity`]'s transport instead.
pub(crate) fn env_for(
    sandbox: &Sandbox,
    state_dir: &std::path::Path,
    extra: &[(&str, &str)],
) -> Env {
    let mut env: Env = [
        ("GRAPH_BASE_URL", sandbox.graph_base_url()),
        ("IDENTITY_ENDPOINT", sandbox.identity_endpoint()),
        ("IDENTITY_HEADER", sandbox.identity_header()),
        ("ENRICH_STATE_DIR", state_dir.display().to_string()),
        (
            "ENRICH_USAGELOCATION_SOURCE",
            "onPremisesExtensionAttributes.extensionAttribute2".to_string(),
        ),
        // Tests are not about the client-side rate: let it be fast unless a test says otherwise.
        ("ENRICH_MAX_WRITES_PER_MINUTE", "600000".to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    for (k, v) in extra {
        env.insert(k.to_string(), v.to_string());
    }
    env
}

pub(crate) struct Harness {
    pub sandbox: Sandbox,
    pub state_dir: tempfile::TempDir,
    pub config: Config,
    pub ctx: EnrichContext,
    /// Every user as the tenant held it before the test did anything.
    pub before: BTreeMap<String, Value>,
}

impl Harness {
    pub(crate) async fn start(options: SandboxOptions, extra: &[(&str, &str)]) -> Harness {
        let sandbox = Sandbox::start(options).await.expect("sandbox starts");
        let state_dir = tempfile::tempdir().expect("tempdir");
        let env = env_for(&sandbox, state_dir.path(), extra);
        let config = Config::from_env(&env).expect("valid test settings");
        let credential = managed_identity(&sandbox);
        let graph = build_graph(&config, credential.clone()).expect("graph client");
        let state = build_state(&config, credential).expect("state store");
        let ctx = context_from_parts(&config, graph, state);
        let before = snapshot(&sandbox);
        Harness {
            sandbox,
            state_dir,
            config,
            ctx,
            before,
        }
    }

    /// A second context on the same tenant and state (e.g. a new process after a kill).
    pub(crate) fn context(&self) -> EnrichContext {
        let credential = managed_identity(&self.sandbox);
        let graph = build_graph(&self.config, credential.clone()).expect("graph client");
        let state = build_state(&self.config, credential).expect("state store");
        context_from_parts(&self.config, graph, state)
    }
}

/// Every user of the tenant, by id.
pub(crate) fn snapshot(sandbox: &Sandbox) -> BTreeMap<String, Value> {
    sandbox
        .user_ids()
        .into_iter()
        .filter_map(|id| sandbox.user(&id).map(|u| (id, u)))
        .collect()
}

pub(crate) fn is_hybrid(user: &Value) -> bool {
    user["onPremisesSyncEnabled"] == Value::Bool(true)
}

pub(crate) fn personal_email(user: &Value) -> Option<String> {
    user["onPremisesExtensionAttributes"]["extensionAttribute1"]
        .as_str()
        .map(str::to_string)
}

/// employeeIds shared by more than one hybrid user (case-insensitive), from a snapshot.
pub(crate) fn duplicate_employee_ids(users: &BTreeMap<String, Value>) -> HashSet<String> {
    let mut count: HashMap<String, usize> = HashMap::new();
    for u in users.values().filter(|u| is_hybrid(u)) {
        if let Some(e) = u["employeeId"]
            .as_str()
            .map(|e| e.trim().to_ascii_lowercase())
        {
            if !e.is_empty() {
                *count.entry(e).or_default() += 1;
            }
        }
    }
    count
        .into_iter()
        .filter(|(_, n)| *n > 1)
        .map(|(e, _)| e)
        .collect()
}

/// The PATCH requests the sandbox saw (top-level and `$batch` items): (user id, body, status).
pub(crate) fn patches(sandbox: &Sandbox) -> Vec<(String, Value, u16)> {
    sandbox
        .requests()
        .into_iter()
        .filter(|r| r.method == "PATCH" && r.path.starts_with("/v1.0/users/"))
        .map(|r| {
            let id = r.path.trim_start_matches("/v1.0/users/").to_string();
            let body = r
                .body
                .as_deref()
                .and_then(|b| serde_json::from_str(b).ok())
                .unwrap_or(Value::Null);
            (id, body, r.status)
        })
        .collect()
}

/// otherMails and usageLocation of a user, for before/after comparisons.
pub(crate) fn written_fields(user: &Value) -> (Value, Value) {
    (user["otherMails"].clone(), user["usageLocation"].clone())
}

/// A hybrid, non-admin user with a unique employeeId, a valid personal email and no otherMails yet:
/// the user an enrichment must write.
pub(crate) fn hybrid_user_with_valid_email(h: &Harness) -> String {
    users_to_enrich(h, 1)
        .pop()
        .expect("a hybrid user to enrich")
}

/// Up to `n` users every field of whose enrichment is written: hybrid, not an admin, a unique
/// employeeId, a valid personal email and country, no otherMails yet.
pub(crate) fn users_to_enrich(h: &Harness, n: usize) -> Vec<String> {
    let admins = h.sandbox.privileged_user_ids();
    let dups = duplicate_employee_ids(&h.before);
    h.before
        .iter()
        .filter(|(id, u)| {
            is_hybrid(u)
                && !admins.contains(id)
                && u["employeeId"].as_str().is_some_and(|e| {
                    !e.trim().is_empty() && !dups.contains(&e.trim().to_ascii_lowercase())
                })
                && personal_email(u).is_some_and(|e| entra_core::AlternateEmail::parse(&e).is_ok())
                && u["otherMails"].as_array().is_none_or(|a| a.is_empty())
                && u["onPremisesExtensionAttributes"]["extensionAttribute2"]
                    .as_str()
                    .is_some_and(|c| entra_core::resolve_country(c).is_ok())
        })
        .map(|(id, _)| id.clone())
        .take(n)
        .collect()
}

/// Requests that reached Graph routes (not the identity endpoints, not `/_sandbox`).
pub(crate) fn graph_calls(sandbox: &Sandbox) -> usize {
    sandbox
        .requests()
        .iter()
        .filter(|r| r.path.starts_with("/v1.0/") || r.path.starts_with("/beta/"))
        .count()
}

/// A hybrid new hire as Cloud Sync would create it: unique employeeId, a valid personal email in
/// extensionAttribute1, the country in extensionAttribute2, no otherMails yet.
pub(crate) fn new_hire(n: usize) -> Value {
    serde_json::json!({
        "id": format!("0e0e0e0e-0000-4000-8000-{n:012}"),
        "userPrincipalName": format!("new.hire{n}@contoso.example"),
        "displayName": format!("New Hire {n}"),
        "employeeId": format!("NH{n:05}"),
        "onPremisesSyncEnabled": true,
        "accountEnabled": true,
        "otherMails": [],
        "onPremisesExtensionAttributes": {
            "extensionAttribute1": format!("private.hire{n}@mail.example"),
            "extensionAttribute2": "DE"
        }
    })
}

/// Successful PATCHes per user id (top-level and `$batch` items).
pub(crate) fn successful_patches_per_user(sandbox: &Sandbox) -> HashMap<String, usize> {
    let mut per_user: HashMap<String, usize> = HashMap::new();
    for (id, _, status) in patches(sandbox) {
        if (200..300).contains(&status) {
            *per_user.entry(id).or_default() += 1;
        }
    }
    per_user
}

/// The `entra-enrich` binary with only the settings that aim it at `sandbox` and keep its state in
/// `state_dir` (nothing inherited from the machine running the tests but `PATH`), output captured.
pub(crate) fn cli_command(sandbox: &Sandbox, state_dir: &std::path::Path) -> std::process::Command {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_entra-enrich"));
    cmd.env_clear()
        .env("PATH", std::env::var("PATH").unwrap_or_default())
        .env("GRAPH_BASE_URL", sandbox.graph_base_url())
        .env("IDENTITY_ENDPOINT", sandbox.identity_endpoint())
        .env("IDENTITY_HEADER", sandbox.identity_header())
        .env("ENRICH_STATE_DIR", state_dir)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    cmd
}

/// The Lifecycle Workflows ids the callouts of the tests name.
pub(crate) const WORKFLOW: &str = "7a1f2c3d-4b5e-4f60-8a71-92b3c4d5e6f7";
pub(crate) const TASK: &str = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f";

/// A joiner callout for `subject`, as the relay forwards it; the sandbox expects its resume.
pub(crate) fn lcw_callout(
    sandbox: &Sandbox,
    subject: &str,
    tpr: &str,
) -> entra_enrich::handlers::lcw_joiner::JoinerRequest {
    sandbox.add_task_processing_result(WORKFLOW, TASK, tpr);
    entra_enrich::handlers::lcw_joiner::JoinerRequest {
        authorization: None,
        body: Ok(serde_json::json!({
            "source": "lifecycleWorkflows",
            "type": "lifecycleEvent",
            "data": {
                "@odata.type": "#microsoft.graph.identityGovernance.customTaskExtensionCalloutData",
                "subject": {"id": subject},
                "task": {"id": TASK},
                "taskProcessingResult": {"id": tpr},
                "workflow": {"id": WORKFLOW},
            }
        })),
    }
}
