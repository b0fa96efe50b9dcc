//! The in-process server (hyper 1 on `127.0.0.1`) and the public [`Sandbox`] handle.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use serde_json::{Map, Value};
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;

use crate::error::SandboxError;
use crate::faults::FaultRule;
use crate::http::{SandboxRequest, SandboxResponse};
use crate::identity::{Identity, IdentityOptions, TokenSpec, DEFAULT_MANAGED_IDENTITY_APP_ID};
use crate::record::{Counters, RecordedRequest};
use crate::state::{new_inner, ResumeRecord, State};
use crate::store::Directory;
use crate::throttle::Throttle;
use crate::workday::{Workday, WorkdayOptions};

/// Where the tenant's users come from.
#[derive(Debug, Clone)]
pub enum TenantSource {
    /// Generated from [`SandboxOptions::users`] and [`SandboxOptions::seed`] (the default).
    Seeded,
    /// `users` users generated deterministically from `seed` (mix documented in the README).
    Generated { users: usize, seed: u64 },
    /// A JSON file: an array of users or `{"users": [...], "privilegedUserIds": [...]}`.
    File(PathBuf),
    /// The same JSON, inline.
    Json(String),
}

/// How to start a sandbox. `Default`: 100 generated users (seed 42), real-time windows,
/// throttling on, no faults, the default managed identity as the only LCW authorized app.
pub struct SandboxOptions {
    pub tenant: TenantSource,
    /// Number of generated users when `tenant` is [`TenantSource::Seeded`].
    pub users: usize,
    /// Seed of the generated tenant (with [`TenantSource::Seeded`]) and of probabilistic faults.
    pub seed: u64,
    /// Every throttling window (and the delta token lifetime) is divided by this factor.
    pub time_scale: f64,
    pub faults: Vec<FaultRule>,
    /// Whether the calling app holds a directory role that may update sensitive properties of
    /// privileged admins (e.g. Privileged Authentication Administrator).
    pub app_has_privileged_role: bool,
    /// App ids in the custom task extension's `callbackConfiguration.authorizedApps`.
    pub lcw_authorized_apps: Vec<String>,
    /// Task processing results that exist (workflow id, task id, result id).
    pub task_processing_results: Vec<(String, String, String)>,
    pub identity: IdentityOptions,
    /// 0 = pick a free port.
    pub port: u16,
    pub throttling: bool,
    pub record_requests: bool,
    pub record_bodies: bool,
    /// Status of a second resume of the same task processing result: 400 (default), 409 or 204.
    pub second_resume_status: u16,
    /// The Workday RaaS report seeded from the tenant ([`crate::workday`]).
    pub workday: WorkdayOptions,
    /// Delta answers carry every selected property of an updated user, not only the changed ones.
    /// Off by default: Graph documents partial records ([`crate::graph`], `users/delta`).
    pub full_delta_records: bool,
}

impl Default for SandboxOptions {
    fn default() -> Self {
        Self {
            tenant: TenantSource::Seeded,
            users: 100,
            seed: 42,
            time_scale: 1.0,
            faults: Vec::new(),
            app_has_privileged_role: false,
            lcw_authorized_apps: vec![DEFAULT_MANAGED_IDENTITY_APP_ID.to_string()],
            task_processing_results: Vec::new(),
            identity: IdentityOptions::default(),
            port: 0,
            throttling: true,
            record_requests: true,
            record_bodies: true,
            second_resume_status: 400,
            workday: WorkdayOptions::default(),
            full_delta_records: false,
        }
    }
}

/// A running sandbox. Dropping it stops the server.
pub struct Sandbox {
    state: Arc<State>,
    addr: SocketAddr,
    shutdown: watch::Sender<bool>,
    task: JoinHandle<()>,
}

#[derive(Debug)]
struct ResetConnection;

impl std::fmt::Display for ResetConnection {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("injected connection reset")
    }
}

impl std::error::Error for ResetConnection {}

async fn serve(
    state: Arc<State>,
    req: Request<Incoming>,
) -> Result<Response<Full<Bytes>>, ResetConnection> {
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes(),
        Err(_) => return Err(ResetConnection),
    };
    let sreq = SandboxRequest::from_http(Request::from_parts(parts, body));
    let d = state.dispatch(sreq, false);
    if !d.delay.is_zero() {
        tokio::time::sleep(d.delay).await;
    }
    let Some(r) = d.response else {
        return Err(ResetConnection);
    };
    Ok(r.into_http().map(Full::new))
}

async fn accept_loop(listener: TcpListener, state: Arc<State>, mut stop: watch::Receiver<bool>) {
    loop {
        tokio::select! {
            r = listener.accept() => {
                let Ok((stream, _)) = r else { continue };
                let _ = stream.set_nodelay(true);
                let st = state.clone();
                let mut stop2 = stop.clone();
                tokio::spawn(async move {
                    let svc = service_fn(move |req| serve(st.clone(), req));
                    let conn = http1::Builder::new().serve_connection(TokioIo::new(stream), svc);
                    tokio::select! {
                        _ = conn => {}
                        _ = stop2.changed() => {}
                    }
                });
            }
            _ = stop.changed() => break,
        }
    }
}

fn load_tenant(
    src: &TenantSource,
    users: usize,
    seed: u64,
) -> Result<crate::tenant::TenantData, SandboxError> {
    match src {
        TenantSource::Seeded => Ok(crate::tenant::generate(users, seed)),
        TenantSource::Generated { users, seed } => Ok(crate::tenant::generate(*users, *seed)),
        TenantSource::File(p) => crate::tenant::parse_tenant(&std::fs::read_to_string(p)?),
        TenantSource::Json(s) => crate::tenant::parse_tenant(s),
    }
}

impl Sandbox {
    /// Binds `127.0.0.1:{port}` (0 = any free port) and serves Graph, identity and `/_sandbox` routes.
    pub async fn start(opts: SandboxOptions) -> Result<Sandbox, SandboxError> {
        let (mut users, privileged) = load_tenant(&opts.tenant, opts.users, opts.seed)?;
        let workday_rows = crate::workday::seed_rows(&users, opts.seed, &opts.workday);
        if opts.workday.personal_email_only_in_workday {
            crate::workday::clear_personal_emails(&mut users);
        }
        let dir = Directory::new(users, privileged)?;
        let identity =
            Identity::new(opts.identity).map_err(|e| SandboxError::Identity(e.to_string()))?;
        let listener = TcpListener::bind(("127.0.0.1", opts.port)).await?;
        let addr = listener.local_addr()?;
        let base = format!("http://127.0.0.1:{}", addr.port());
        let mut inner = new_inner(
            dir,
            Throttle::new(opts.time_scale, opts.throttling),
            opts.faults,
            opts.seed,
            opts.app_has_privileged_role,
            opts.lcw_authorized_apps,
            opts.record_bodies,
            opts.second_resume_status,
        );
        inner.record_requests = opts.record_requests;
        inner.full_delta_records = opts.full_delta_records;
        inner.workday = Workday::with_rows(workday_rows);
        for k in opts.task_processing_results {
            inner.task_results.entry(k).or_default();
        }
        let time_scale = if opts.time_scale.is_finite() && opts.time_scale > 0.0 {
            opts.time_scale
        } else {
            1.0
        };
        let state = Arc::new(State::new(identity, inner, base, time_scale));
        let (tx, rx) = watch::channel(false);
        let task = tokio::spawn(accept_loop(listener, state.clone(), rx));
        Ok(Sandbox {
            state,
            addr,
            shutdown: tx,
            task,
        })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }
    /// `http://127.0.0.1:PORT`; Graph clients call `{base}/v1.0/...`.
    pub fn graph_base_url(&self) -> String {
        self.state.base_url.clone()
    }
    /// The login host equivalent (`{authority}/{tenant}/oauth2/v2.0/token`).
    pub fn authority_url(&self) -> String {
        self.state.base_url.clone()
    }
    /// Value for `IDENTITY_ENDPOINT` (App Service managed identity).
    pub fn identity_endpoint(&self) -> String {
        format!("{}/msi/token", self.state.base_url)
    }
    /// The Azure SDK transport that brings its IMDS and Entra authority calls here
    /// ([`crate::sdk::SandboxTransport`]): the managed identity credential then needs no environment.
    pub fn sdk_transport(&self) -> azure_core::http::Transport {
        self.sdk_client().into_transport()
    }
    /// The client behind [`Sandbox::sdk_transport`], for a test that adds routes of its own.
    pub fn sdk_client(&self) -> crate::sdk::SandboxTransport {
        // Built by `start` as `http://127.0.0.1:{port}`, always a URL.
        let base = url::Url::parse(&self.state.base_url).expect("a loopback URL");
        crate::sdk::SandboxTransport::new(&base)
    }
    /// Value for `IDENTITY_HEADER`.
    pub fn identity_header(&self) -> String {
        self.state.identity.identity_header().to_string()
    }
    pub fn tenant_id(&self) -> String {
        self.state.identity.tenant_id().to_string()
    }
    pub fn managed_identity_app_id(&self) -> String {
        self.state.identity.managed_identity_app_id().to_string()
    }
    pub fn identity(&self) -> &Identity {
        &self.state.identity
    }
    /// A valid app-only Graph token for `app_id` (the managed identity gets its configured roles).
    pub fn mint_graph_token(&self, app_id: &str) -> String {
        self.state
            .identity
            .mint(&TokenSpec::graph(&self.state.identity, app_id))
    }
    /// A Graph token with explicit roles.
    pub fn mint_graph_token_with_roles(&self, app_id: &str, roles: &[&str]) -> String {
        let spec = TokenSpec::graph(&self.state.identity, app_id).with_roles(roles.iter().copied());
        self.state.identity.mint(&spec)
    }
    /// The Workday RaaS report URL, without `format`:
    /// `{base}/ccx/service/customreport2/{WORKDAY_TENANT}/{WORKDAY_REPORT_OWNER}/{WORKDAY_REPORT}`.
    pub fn workday_report_url(&self) -> String {
        use crate::workday::{WORKDAY_REPORT, WORKDAY_REPORT_OWNER, WORKDAY_TENANT};
        format!(
            "{}/ccx/service/customreport2/{WORKDAY_TENANT}/{WORKDAY_REPORT_OWNER}/{WORKDAY_REPORT}",
            self.state.base_url
        )
    }
    /// The Workday OAuth 2.0 token endpoint: `{base}/ccx/oauth2/{WORKDAY_TENANT}/token`.
    pub fn workday_token_url(&self) -> String {
        format!(
            "{}/ccx/oauth2/{}/token",
            self.state.base_url,
            crate::workday::WORKDAY_TENANT
        )
    }
    /// The Workday Web Services (SOAP) endpoint:
    /// `{base}/ccx/service/{WORKDAY_TENANT}/Human_Resources/{WWS_VERSION}` ([`crate::wws`]).
    pub fn wws_url(&self) -> String {
        format!(
            "{}/ccx/service/{}/Human_Resources/{}",
            self.state.base_url,
            crate::workday::WORKDAY_TENANT,
            crate::wws::WWS_VERSION
        )
    }
    /// The plain dispatch function, in process (no HTTP); a reset fault yields an empty 502.
    pub fn handle(&self, req: SandboxRequest) -> SandboxResponse {
        self.state.handle(req)
    }

    // ---- inspection ----
    pub fn requests(&self) -> Vec<RecordedRequest> {
        self.state.lock().requests.clone()
    }
    /// Clears recorded requests and counters.
    pub fn reset_requests(&self) {
        let mut g = self.state.lock();
        g.requests.clear();
        g.counters = Counters::default();
    }
    pub fn counters(&self) -> Counters {
        self.state.lock().counters.clone()
    }
    /// The stored user (every property, Graph shape), by id or userPrincipalName.
    pub fn user(&self, id: &str) -> Option<Value> {
        self.state
            .lock()
            .dir
            .find(id)
            .map(|u| Value::Object(u.props.clone()))
    }
    pub fn user_ids(&self) -> Vec<String> {
        self.state
            .lock()
            .dir
            .users()
            .iter()
            .map(|u| u.id.clone())
            .collect()
    }
    pub fn user_count(&self) -> usize {
        self.state.lock().dir.len()
    }
    /// Ids of privileged admins (sandbox metadata).
    pub fn privileged_user_ids(&self) -> Vec<String> {
        let mut v: Vec<String> = self.state.lock().dir.privileged.iter().cloned().collect();
        v.sort();
        v
    }
    /// Accepted resume calls for one task processing result.
    pub fn resumes(&self, workflow_id: &str, task_id: &str, result_id: &str) -> Vec<ResumeRecord> {
        let key = (
            workflow_id.to_string(),
            task_id.to_string(),
            result_id.to_string(),
        );
        self.state
            .lock()
            .task_results
            .get(&key)
            .cloned()
            .unwrap_or_default()
    }

    // ---- mutation helpers ----
    /// Inserts or updates a user (a newly synced user appears: delta reports it). Returns its id.
    pub fn upsert_user(&self, user: Value) -> Result<String, SandboxError> {
        match user {
            Value::Object(m) => self.state.lock().dir.upsert(m),
            _ => Err(SandboxError::Tenant("a user must be a JSON object".into())),
        }
    }
    /// Sets one property; `path` may be nested with `/`, e.g.
    /// `onPremisesExtensionAttributes/extensionAttribute1`. Counts as a change for delta.
    pub fn set_user_property(
        &self,
        id: &str,
        path: &str,
        value: Value,
    ) -> Result<(), SandboxError> {
        let mut g = self.state.lock();
        let u = g
            .dir
            .find(id)
            .ok_or_else(|| SandboxError::UnknownUser(id.to_string()))?;
        let uid = u.id.clone();
        let mut parts = path.split('/');
        let top = parts.next().unwrap_or("").to_string();
        let rest: Vec<&str> = parts.collect();
        let new_top = if rest.is_empty() {
            value
        } else {
            let mut cur = u.props.get(&top).cloned().unwrap_or(Value::Null);
            set_nested(&mut cur, &rest, value);
            cur
        };
        let mut changes = Map::new();
        changes.insert(top, new_top);
        g.dir.apply(&uid, &changes);
        Ok(())
    }
    /// Removes a user: soft delete (`@removed.reason = "changed"`) or permanent (`"deleted"`).
    pub fn remove_user(&self, id: &str, permanently: bool) -> bool {
        let mut g = self.state.lock();
        match g.dir.resolve_id(id) {
            Some(uid) => g.dir.remove(&uid, permanently),
            None => false,
        }
    }
    /// Marks a user as (not) a privileged admin.
    pub fn set_privileged(&self, id: &str, privileged: bool) {
        let mut g = self.state.lock();
        if privileged {
            g.dir.privileged.insert(id.to_string());
        } else {
            g.dir.privileged.remove(id);
        }
    }
    /// Whether the calling app holds the directory role needed for sensitive properties of admins.
    pub fn set_privileged_admin_role_granted(&self, granted: bool) {
        self.state.lock().app_has_privileged_role = granted;
    }
    /// Makes user `user_id` a member of group `group_id`.
    pub fn add_group_member(&self, group_id: &str, user_id: &str) {
        self.state
            .lock()
            .group_members
            .entry(group_id.to_string())
            .or_default()
            .insert(user_id.to_string());
    }
    /// A user's email authentication method address (`None`: no method), by object id.
    pub fn email_method(&self, id: &str) -> Option<String> {
        self.state.lock().email_methods.get(id).cloned()
    }
    /// Sets (or, with `None`, removes) a user's email authentication method, as the user registering
    /// it would.
    pub fn set_email_method(&self, id: &str, address: Option<&str>) {
        let mut g = self.state.lock();
        match address {
            Some(a) => g.email_methods.insert(id.to_string(), a.to_string()),
            None => g.email_methods.remove(id),
        };
    }
    /// Replaces the tenant's Authentication methods policy (Email OTP, migration state).
    pub fn set_authentication_methods_policy(
        &self,
        policy: crate::policy::AuthenticationMethodsPolicy,
    ) {
        self.state.lock().auth_methods_policy = policy;
    }
    /// The Workday report's rows, in report order (JSON, as `format=json` answers them).
    pub fn workday_rows(&self) -> Vec<Value> {
        self.state.lock().workday.rows()
    }
    /// Replaces every row of the Workday report.
    pub fn set_workday_rows(&self, rows: Vec<Value>) {
        self.state.lock().workday.set_rows(&rows);
    }
    /// Replaces the first Workday row with the same `Employee_ID` (trimmed), or appends `row`.
    pub fn upsert_worker(&self, row: Value) {
        self.state.lock().workday.upsert(&row);
    }
    /// Rotates the Integration System User's password: the old one then gets 401.
    pub fn set_workday_password(&self, password: &str) {
        self.state.lock().workday.set_password(password);
    }
    /// Test hook: every Workday access token issued so far expires (401 on the report).
    pub fn expire_workday_tokens(&self) {
        self.state.lock().workday.expire_tokens();
    }
    /// A worker as Workday Web Services show it:
    /// `{"employeeId", "userName" (or null), "emails": [{"address", "usage" ("WORK"|"HOME"), "primary"}]}`.
    pub fn worker(&self, employee_id: &str) -> Option<Value> {
        self.state
            .lock()
            .workday
            .wws_worker(employee_id)
            .map(|w| w.to_json())
    }
    /// Replaces a worker's email addresses: `(address, usage "WORK"|"HOME", primary)`; an unknown
    /// usage counts as WORK. The report rows' WORK address follows the primary WORK one. `false`
    /// for an unknown worker.
    pub fn set_worker_emails(&self, employee_id: &str, emails: Vec<(&str, &str, bool)>) -> bool {
        crate::wws::set_emails(&mut self.state.lock().workday, employee_id, &emails)
    }
    /// Sets (or clears) a worker's Workday user name (`User_ID`); `false` for an unknown worker.
    pub fn set_worker_user_name(&self, employee_id: &str, user_name: Option<&str>) -> bool {
        crate::wws::set_user_name(&mut self.state.lock().workday, employee_id, user_name)
    }
    /// Adds a fault rule.
    pub fn set_fault(&self, rule: FaultRule) {
        self.state.lock().faults.add(rule);
    }
    /// Replaces all fault rules (empty = none).
    pub fn set_faults(&self, rules: Vec<FaultRule>) {
        self.state.lock().faults.set(rules);
    }
    pub fn add_task_processing_result(&self, workflow_id: &str, task_id: &str, result_id: &str) {
        let key = (
            workflow_id.to_string(),
            task_id.to_string(),
            result_id.to_string(),
        );
        self.state.lock().task_results.entry(key).or_default();
    }
    pub fn set_lcw_authorized_apps(&self, apps: Vec<String>) {
        self.state.lock().lcw_authorized_apps = apps;
    }
    /// Test hook: every delta/skip token issued so far becomes expired (410 Gone).
    pub fn expire_delta_tokens(&self) {
        for t in self.state.lock().tokens.values_mut() {
            t.expired = true;
        }
    }
    pub fn set_throttling(&self, enabled: bool) {
        self.state.lock().throttle.set_enabled(enabled);
    }
    pub fn set_recording(&self, requests: bool, bodies: bool) {
        let mut g = self.state.lock();
        g.record_requests = requests;
        g.record_bodies = bodies;
    }
}

fn set_nested(cur: &mut Value, path: &[&str], value: Value) {
    let Some((first, rest)) = path.split_first() else {
        *cur = value;
        return;
    };
    if !cur.is_object() {
        *cur = Value::Object(Map::new());
    }
    if let Value::Object(m) = cur {
        let slot = m.entry((*first).to_string()).or_insert(Value::Null);
        set_nested(slot, rest, value);
    }
}

impl Drop for Sandbox {
    fn drop(&mut self) {
        let _ = self.shutdown.send(true);
        self.task.abort();
    }
}

/// Unused-import guard for `Infallible` on some toolchains.
#[allow(dead_code)]
fn _infallible(_: Infallible) {}
