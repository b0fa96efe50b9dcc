//! The identity HTTP routes. Each handler cites the Microsoft document whose behaviour it follows; where the
//! documents are silent, the choice is marked NOT DOCUMENTED.

// Route helpers return ready error responses as their `Err`.
#![allow(clippy::result_large_err)]

use http::{Method, StatusCode};
use serde_json::json;

use super::token::TokenSpec;
use super::{
    insert_header, json_response, new_guid, ClientRegistration, Identity, TOKEN_LIFETIME_SECS,
};
use crate::http::{SandboxRequest, SandboxResponse};

/// The App Service managed identity REST API version the sandbox implements (the one `azure_identity` sends).
pub(crate) const MSI_API_VERSION: &str = "2019-08-01";

/// The Azure Instance Metadata Service token path, served on the sandbox's own address; an SDK reaches it
/// through [`crate::sdk::SandboxTransport`], which re-addresses `169.254.169.254` to the sandbox.
pub const IMDS_TOKEN_PATH: &str = "/metadata/identity/oauth2/token";

/// The oldest IMDS identity API version: "api-version: The API version for the token request. Use version
/// 2018-02-01 or later."
/// (https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token#get-a-token-using-http)
const IMDS_OLDEST_API_VERSION: &str = "2018-02-01";

/// The two managed identity endpoints the sandbox serves. They issue the same tokens for the same
/// identities, and differ in the header that proves the caller is local and in the shape of their errors.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum MiEndpoint {
    /// App Service and Functions: `IDENTITY_ENDPOINT` with `X-IDENTITY-HEADER`.
    AppService,
    /// Virtual machines (and the default of `ManagedIdentityCredential` when no variable is set):
    /// `http://169.254.169.254/metadata/identity/oauth2/token` with `Metadata: true`.
    Imds,
}

pub(crate) fn handle(id: &Identity, req: &SandboxRequest, base: &str) -> Option<SandboxResponse> {
    let path = req.path.as_str();
    if path == "/msi/token" {
        return Some(msi_token(id, req, MiEndpoint::AppService));
    }
    if path == IMDS_TOKEN_PATH {
        return Some(msi_token(id, req, MiEndpoint::Imds));
    }
    let trimmed = path.strip_prefix('/')?;
    let (tenant, rest) = trimmed.split_once('/')?;
    if tenant.is_empty() {
        return None;
    }
    match rest {
        "oauth2/v2.0/token" => Some(token_endpoint(id, req, tenant)),
        "v2.0/.well-known/openid-configuration" => Some(get_only(req, || {
            openid_configuration(id, base, tenant, true)
        })),
        ".well-known/openid-configuration" => Some(get_only(req, || {
            openid_configuration(id, base, tenant, false)
        })),
        "discovery/v2.0/keys" | "discovery/keys" => Some(get_only(req, || jwks(id, tenant))),
        _ => None,
    }
}

fn get_only(req: &SandboxRequest, f: impl FnOnce() -> SandboxResponse) -> SandboxResponse {
    if req.method == Method::GET || req.method == Method::HEAD {
        f()
    } else {
        // NOT DOCUMENTED: what login.microsoftonline.com answers to other methods on metadata; 405.
        let mut r = SandboxResponse::empty(StatusCode::METHOD_NOT_ALLOWED);
        insert_header(&mut r.headers, "allow", "GET, HEAD");
        r
    }
}

fn query_pairs(raw: &str) -> Vec<(String, String)> {
    url::form_urlencoded::parse(raw.as_bytes())
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

fn param<'a>(pairs: &'a [(String, String)], name: &str) -> Option<&'a str> {
    pairs
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

fn header<'a>(req: &'a SandboxRequest, name: &str) -> Option<&'a str> {
    req.headers.get(name).and_then(|v| v.to_str().ok())
}

// ---------------------------------------------------------------------------------------------------------
// App Service / Azure Functions managed identity endpoint
// ---------------------------------------------------------------------------------------------------------

/// The error body of the managed identity endpoint. NOT DOCUMENTED: the REST endpoint reference gives no error
/// schema; the sandbox answers `{"statusCode", "message", "correlationId"}`, the shape App Service returns in
/// public reports (e.g. "Unable to load the proper Managed Identity.").
fn msi_error(status: StatusCode, message: &str) -> SandboxResponse {
    mi_error(MiEndpoint::AppService, status, "invalid_request", message)
}

/// A managed identity error in the shape of `endpoint`. IMDS answers OAuth-style
/// `{"error", "error_description"}` with the codes of its error table (e.g. `bad_request_102`,
/// `invalid_resource`)
/// (https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token#error-handling).
fn mi_error(
    endpoint: MiEndpoint,
    status: StatusCode,
    code: &str,
    message: &str,
) -> SandboxResponse {
    if endpoint == MiEndpoint::Imds {
        return json_response(
            status,
            &json!({"error": code, "error_description": message}),
        );
    }
    json_response(
        status,
        &json!({
            "statusCode": status.as_u16(),
            "message": message,
            "correlationId": new_guid(),
        }),
    )
}

/// `GET {IDENTITY_ENDPOINT}?resource=<r>&api-version=2019-08-01[&client_id=|&principal_id=|&object_id=|&mi_res_id=]`
/// with `X-IDENTITY-HEADER: {IDENTITY_HEADER}`.
/// https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference
/// `GET http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01&resource=<r>` with
/// `Metadata: true` takes the same `client_id`/`object_id`/`msi_res_id` selectors (see [`IMDS_OLDEST_API_VERSION`]).
fn msi_token(id: &Identity, req: &SandboxRequest, endpoint: MiEndpoint) -> SandboxResponse {
    if req.method != Method::GET {
        // The REST endpoint reference only defines GET.
        let mut r = SandboxResponse::empty(StatusCode::METHOD_NOT_ALLOWED);
        insert_header(&mut r.headers, "allow", "GET");
        return r;
    }
    msi_token_checked(id, req, endpoint).unwrap_or_else(|e| e)
}

/// The managed identity token once the method is checked: header, query, identity, then the token.
fn msi_token_checked(
    id: &Identity,
    req: &SandboxRequest,
    endpoint: MiEndpoint,
) -> Result<SandboxResponse, SandboxResponse> {
    let q = query_pairs(&req.query);
    match endpoint {
        MiEndpoint::AppService => {
            check_identity_header(id, req)?;
            check_msi_api_version(&q)?;
        }
        MiEndpoint::Imds => {
            check_metadata_header(req)?;
            check_imds_api_version(&q)?;
        }
    }
    let resource = msi_resource(&q).map_err(|e| imds_shape(endpoint, e, "invalid_resource"))?;
    // Clients send the resource, not a scope; tolerate a `/.default` scope by stripping it (azure_identity
    // strips it itself: `scopes_to_resource` in sdk/identity/azure_identity/src/imds_managed_identity_credential.rs,
    // https://github.com/Azure/azure-sdk-for-rust).
    let aud = resource
        .strip_suffix("/.default")
        .unwrap_or(&resource)
        .to_string();
    let mi = msi_identity(id, &q).map_err(|e| imds_shape(endpoint, e, "invalid_request"))?;
    let mut spec = TokenSpec::graph(id, &mi.app_id)
        .with_audience(aud)
        .with_roles(mi.roles);
    spec.oid = mi.oid;
    spec.exp = spec.iat + TOKEN_LIFETIME_SECS;
    let access_token = id.mint(&spec);
    if endpoint == MiEndpoint::Imds {
        return Ok(imds_token_response(&access_token, &spec, &resource));
    }
    // Response: "access_token, expires_on (seconds from 1970-01-01T0:0:0Z UTC), resource, token_type, client_id"
    // — the page's example shows expires_on as a string, which azure_identity parses as one.
    Ok(json_response(
        StatusCode::OK,
        &json!({
            "access_token": access_token,
            "expires_on": spec.exp.to_string(),
            "resource": resource,
            "token_type": "Bearer",
            "client_id": mi.app_id,
        }),
    ))
}

/// The IMDS sample response: every number a string, an empty `refresh_token`
/// (https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token#get-a-token-using-http).
fn imds_token_response(access_token: &str, spec: &TokenSpec, resource: &str) -> SandboxResponse {
    json_response(
        StatusCode::OK,
        &json!({
            "access_token": access_token,
            "refresh_token": "",
            "expires_in": (spec.exp - spec.iat).to_string(),
            "expires_on": spec.exp.to_string(),
            "not_before": spec.iat.to_string(),
            "resource": resource,
            "token_type": "Bearer",
        }),
    )
}

/// An App Service-shaped refusal re-shaped for IMDS with `code`; the status is kept.
fn imds_shape(endpoint: MiEndpoint, refusal: SandboxResponse, code: &str) -> SandboxResponse {
    if endpoint == MiEndpoint::AppService {
        return refusal;
    }
    let message = serde_json::from_slice::<serde_json::Value>(&refusal.body)
        .ok()
        .and_then(|v| v["message"].as_str().map(str::to_string))
        .unwrap_or_default();
    mi_error(endpoint, refusal.status, code, &message)
}

/// "Metadata: An HTTP request header field required by managed identities. This information is used as a
/// mitigation against server side request forgery (SSRF) attacks. This value must be set to 'true', in all
/// lower case." A missing header is `400 bad_request_102` "Required metadata header not specified" (error
/// table of how-to-use-vm-token).
fn check_metadata_header(req: &SandboxRequest) -> Result<(), SandboxResponse> {
    match header(req, "metadata") {
        Some("true") => Ok(()),
        _ => Err(mi_error(
            MiEndpoint::Imds,
            StatusCode::BAD_REQUEST,
            "bad_request_102",
            "Required metadata header not specified",
        )),
    }
}

/// IMDS takes "version 2018-02-01 or later"; versions are dates, so they compare as strings.
fn check_imds_api_version(q: &[(String, String)]) -> Result<(), SandboxResponse> {
    match param(q, "api-version") {
        Some(v) if v.len() == 10 && v >= IMDS_OLDEST_API_VERSION => Ok(()),
        // NOT DOCUMENTED: the code for a missing or old version; the sandbox answers `invalid_request`.
        other => Err(mi_error(
            MiEndpoint::Imds,
            StatusCode::BAD_REQUEST,
            "invalid_request",
            &format!(
                "The api-version '{}' is not supported; use {IMDS_OLDEST_API_VERSION} or later.",
                other.unwrap_or_default()
            ),
        )),
    }
}

/// "X-IDENTITY-HEADER: The value of the IDENTITY_HEADER environment variable. This header is used to help
/// mitigate server-side request forgery (SSRF) attacks."
/// (https://learn.microsoft.com/azure/app-service/overview-managed-identity#rest-endpoint-reference). Status for a
/// missing/wrong value is NOT DOCUMENTED; App Service is reported to answer 401 (Azure/azure-sdk-for-js#11595), so
/// does the sandbox.
fn check_identity_header(id: &Identity, req: &SandboxRequest) -> Result<(), SandboxResponse> {
    match header(req, "x-identity-header") {
        Some(v) if constant_time_eq(v.as_bytes(), id.identity_header().as_bytes()) => Ok(()),
        Some(_) => Err(msi_error(
            StatusCode::UNAUTHORIZED,
            "The X-IDENTITY-HEADER value is not valid.",
        )),
        None => Err(msi_error(
            StatusCode::UNAUTHORIZED,
            "The X-IDENTITY-HEADER header is required.",
        )),
    }
}

/// `api-version` must be the one the sandbox implements ([`MSI_API_VERSION`]).
fn check_msi_api_version(q: &[(String, String)]) -> Result<(), SandboxResponse> {
    match param(q, "api-version") {
        Some(MSI_API_VERSION) => Ok(()),
        Some(other) => Err(msi_error(
            StatusCode::BAD_REQUEST,
            &format!("The api-version '{other}' is not supported; use {MSI_API_VERSION}."),
        )),
        None => Err(msi_error(
            StatusCode::BAD_REQUEST,
            "The api-version query parameter is required.",
        )),
    }
}

/// "resource: The Microsoft Entra resource URI of the resource for which a token should be obtained."
/// (REST endpoint reference)
fn msi_resource(q: &[(String, String)]) -> Result<String, SandboxResponse> {
    match param(q, "resource").map(str::trim) {
        Some(r) if !r.is_empty() => Ok(r.to_string()),
        _ => Err(msi_error(
            StatusCode::BAD_REQUEST,
            "The resource query parameter is required.",
        )),
    }
}

/// The managed identity a token is issued for: app (client) id, object id and app roles.
struct ManagedIdentity {
    app_id: String,
    oid: String,
    roles: Vec<String>,
}

/// The system-assigned identity, or the user-assigned one a selector names.
/// "client_id / principal_id (alias object_id) / mi_res_id: … Can't be used on a request that includes
/// [one of the others]." (REST endpoint reference)
fn msi_identity(id: &Identity, q: &[(String, String)]) -> Result<ManagedIdentity, SandboxResponse> {
    // `msi_res_id` is the IMDS spelling of `mi_res_id`.
    let selectors: Vec<(&str, &str)> = [
        "client_id",
        "principal_id",
        "object_id",
        "mi_res_id",
        "msi_res_id",
    ]
    .iter()
    .filter_map(|name| param(q, name).map(|v| (*name, v)))
    .collect();
    if selectors.len() > 1 {
        return Err(msi_error(
            StatusCode::BAD_REQUEST,
            "Only one of client_id, principal_id/object_id or mi_res_id may be specified.",
        ));
    }
    let Some((name, value)) = selectors.first() else {
        return Ok(ManagedIdentity {
            app_id: id.managed_identity_app_id().to_string(),
            oid: super::DEFAULT_MANAGED_IDENTITY_OBJECT_ID.to_string(),
            roles: id.managed_identity_roles().to_vec(),
        });
    };
    let found = id
        .options()
        .user_assigned_identities
        .iter()
        .find(|u| match *name {
            "client_id" => u.client_id.eq_ignore_ascii_case(value),
            "principal_id" | "object_id" => u.object_id.eq_ignore_ascii_case(value),
            _ => u.resource_id.eq_ignore_ascii_case(value),
        });
    match found {
        Some(u) => Ok(ManagedIdentity {
            app_id: u.client_id.clone(),
            oid: u.object_id.clone(),
            roles: u.roles.clone(),
        }),
        // azure_identity maps a 400 to "The requested identity has not been assigned to this resource".
        None => Err(msi_error(
            StatusCode::BAD_REQUEST,
            "Unable to load the proper Managed Identity.",
        )),
    }
}

fn basic_credentials(req: &SandboxRequest) -> Option<(String, String)> {
    use base64::Engine;
    let value = header(req, "authorization")?;
    let (scheme, b64) = value.trim().split_once(' ')?;
    if !scheme.eq_ignore_ascii_case("basic") {
        return None;
    }
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(b64.trim())
        .ok()?;
    let text = String::from_utf8(decoded).ok()?;
    let (id, secret) = text.split_once(':')?;
    let unescape = |s: &str| {
        url::form_urlencoded::parse(format!("v={s}").as_bytes())
            .next()
            .map(|(_, v)| v.into_owned())
            .unwrap_or_default()
    };
    Some((unescape(id), unescape(secret)))
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    if a.len() != b.len() {
        return false;
    }
    a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

// ---------------------------------------------------------------------------------------------------------
// OAuth 2.0 v2 token endpoint (client credentials)
// ---------------------------------------------------------------------------------------------------------

/// Entra's token endpoint error:
/// `{"error","error_description":"AADSTSnnnn: …\r\nTrace ID: …\r\nCorrelation ID: …\r\nTimestamp: …","error_codes":[n],
/// "timestamp","trace_id","correlation_id","error_uri"}`.
/// https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow#error-response
pub(crate) fn aad_error(
    status: StatusCode,
    error: &str,
    code: u32,
    description: &str,
    correlation_id: Option<&str>,
) -> SandboxResponse {
    let trace_id = new_guid();
    let correlation_id = correlation_id
        .filter(|c| uuid::Uuid::try_parse(c).is_ok())
        .map(String::from)
        .unwrap_or_else(new_guid);
    let timestamp = aad_timestamp();
    json_response(
        status,
        &json!({
            "error": error,
            "error_description": format!(
                "AADSTS{code}: {description} Trace ID: {trace_id} Correlation ID: {correlation_id} Timestamp: {timestamp}"
            ),
            "error_codes": [code],
            "timestamp": timestamp,
            "trace_id": trace_id,
            "correlation_id": correlation_id,
            "error_uri": format!("https://login.microsoftonline.com/error?code={code}"),
        }),
    )
}

/// `YYYY-MM-DD HH:MM:SSZ`, the `timestamp` format of the error response (same page).
fn aad_timestamp() -> String {
    let now = time::OffsetDateTime::now_utc();
    format!(
        "{:04}-{:02}-{:02} {:02}:{:02}:{:02}Z",
        now.year(),
        u8::from(now.month()),
        now.day(),
        now.hour(),
        now.minute(),
        now.second()
    )
}

fn tenant_matches(id: &Identity, tenant: &str) -> bool {
    tenant.eq_ignore_ascii_case(id.tenant_id())
}

fn tenant_not_found(tenant: &str, correlation: Option<&str>) -> SandboxResponse {
    // AADSTS90002 (https://learn.microsoft.com/entra/identity-platform/reference-error-codes#aadsts-error-codes):
    // "InvalidTenantName - The tenant name wasn't found in the data store."
    aad_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        90002,
        &format!(
            "Tenant '{tenant}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud."
        ),
        correlation,
    )
}

/// `POST /{tenant}/oauth2/v2.0/token`, form `client_id, scope, client_secret | client_assertion(+_type),
/// grant_type=client_credentials`.
/// https://learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow#get-a-token
fn token_endpoint(id: &Identity, req: &SandboxRequest, tenant: &str) -> SandboxResponse {
    let correlation = header(req, "client-request-id");
    if req.method != Method::POST {
        // AADSTS900561 "BadResourceRequestInvalidRequest - The endpoint only accepts {valid_verbs} requests."
        // (https://learn.microsoft.com/entra/identity-platform/reference-error-codes#aadsts-error-codes)
        return aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900561,
            &format!(
                "The endpoint only accepts POST, OPTIONS requests. Received a {} request.",
                req.method
            ),
            correlation,
        );
    }
    if !tenant_matches(id, tenant) {
        return tenant_not_found(tenant, correlation);
    }
    client_credentials_grant(id, req, correlation).unwrap_or_else(|e| e)
}

/// The client credentials grant once method and tenant are checked: parameters, client, client
/// authentication, scope, then the token (same page).
fn client_credentials_grant(
    id: &Identity,
    req: &SandboxRequest,
    correlation: Option<&str>,
) -> Result<SandboxResponse, SandboxResponse> {
    let form = query_pairs(std::str::from_utf8(&req.body).unwrap_or_default());
    let non_empty = |name: &str| param(&form, name).filter(|v| !v.trim().is_empty());
    let missing = |name: &str| missing_param(name, correlation);
    // `client_secret_basic` (advertised in the metadata): `Authorization: Basic base64(urlencode(id):urlencode(secret))`
    // (RFC 6749 §2.3.1, https://www.rfc-editor.org/rfc/rfc6749#section-2.3.1).
    let basic = basic_credentials(req);

    let grant_type = non_empty("grant_type").ok_or_else(|| missing("grant_type"))?;
    check_grant_type(grant_type, correlation)?;
    let client_id = non_empty("client_id")
        .or(basic.as_ref().map(|(id, _)| id.as_str()))
        .ok_or_else(|| missing("client_id"))?;
    let scope = non_empty("scope").ok_or_else(|| missing("scope"))?;
    let client = find_client(id, client_id, correlation)?;

    // Client authentication: a shared secret, or a client assertion.
    let secret = non_empty("client_secret").or(basic.as_ref().map(|(_, s)| s.as_str()));
    let assertion = non_empty("client_assertion");
    authenticate_client(id, client, &form, secret, assertion, correlation)?;

    let resource = scope_resource(scope, correlation)?;
    Ok(client_token(id, client, resource))
}

/// AADSTS900144 "InvalidRequestParameter - The parameter is empty or not valid." (error code reference)
fn missing_param(name: &str, correlation: Option<&str>) -> SandboxResponse {
    aad_error(
        StatusCode::BAD_REQUEST,
        "invalid_request",
        900144,
        &format!("The request body must contain the following parameter: '{name}'."),
        correlation,
    )
}

fn check_grant_type(grant_type: &str, correlation: Option<&str>) -> Result<(), SandboxResponse> {
    if grant_type == "client_credentials" {
        return Ok(());
    }
    // AADSTS70003 "UnsupportedGrantType - The app returned an unsupported grant type." The sandbox emulates
    // only the client credentials grant.
    Err(aad_error(
        StatusCode::BAD_REQUEST,
        "unsupported_grant_type",
        70003,
        &format!("The app requested an unsupported grant type '{grant_type}'."),
        correlation,
    ))
}

/// The registered client with this id (case-insensitive).
fn find_client<'a>(
    id: &'a Identity,
    client_id: &str,
    correlation: Option<&str>,
) -> Result<&'a ClientRegistration, SandboxResponse> {
    id.options()
        .clients
        .iter()
        .find(|c| c.client_id.eq_ignore_ascii_case(client_id))
        .ok_or_else(|| {
            // AADSTS700016 "UnauthorizedClient_DoesNotMatchRequest - The application wasn't found in the directory/tenant."
            aad_error(
                StatusCode::BAD_REQUEST,
                "unauthorized_client",
                700016,
                &format!(
                    "Application with identifier '{client_id}' was not found in the directory '{}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.",
                    id.tenant_id()
                ),
                correlation,
            )
        })
}

/// Client authentication: exactly one of a shared secret (form or Basic) and a client assertion.
fn authenticate_client(
    id: &Identity,
    client: &ClientRegistration,
    form: &[(String, String)],
    secret: Option<&str>,
    assertion: Option<&str>,
    correlation: Option<&str>,
) -> Result<(), SandboxResponse> {
    match (secret, assertion) {
        (Some(_), Some(_)) => Err(aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            "Only one client credential (client_secret or client_assertion) may be sent.",
            correlation,
        )),
        (Some(secret), None) => {
            if constant_time_eq(secret.as_bytes(), client.client_secret.as_bytes()) {
                return Ok(());
            }
            // AADSTS7000215 "InvalidClientSecret - Invalid client secret is provided."; the page says
            // invalid_client is returned with 401 for failed client authentication.
            Err(aad_error(
                StatusCode::UNAUTHORIZED,
                "invalid_client",
                7000215,
                &format!(
                    "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '{}'.",
                    client.client_id
                ),
                correlation,
            ))
        }
        (None, Some(assertion)) => match check_client_assertion(id, form, assertion, correlation) {
            Some(resp) => Err(resp),
            None => Ok(()),
        },
        // AADSTS7000218 "InvalidClientCredential - The request body must contain … 'client_assertion' or
        // 'client_secret'."
        (None, None) => Err(aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            7000218,
            "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
            correlation,
        )),
    }
}

/// "The value passed for the scope parameter in this request should be the resource identifier (application
/// ID URI) of the resource you want, affixed with the .default suffix." (same page). One resource only.
fn scope_resource<'a>(
    scope: &'a str,
    correlation: Option<&str>,
) -> Result<&'a str, SandboxResponse> {
    let scopes: Vec<&str> = scope.split_whitespace().collect();
    let resource = match scopes.as_slice() {
        [single] => single.strip_suffix("/.default"),
        _ => None,
    };
    resource.filter(|r| !r.is_empty()).ok_or_else(|| {
        // AADSTS1002012: the client credentials flow needs `<resource>/.default`; the page's invalid_scope
        // example uses AADSTS70011 for a scope that is not valid at all.
        let code = if scopes.len() == 1 { 1002012 } else { 70011 };
        aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_scope",
            code,
            &format!(
                "The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."
            ),
            correlation,
        )
    })
}

/// The access token for an authenticated client.
fn client_token(id: &Identity, client: &ClientRegistration, resource: &str) -> SandboxResponse {
    // Graph (and any resource whose `accessTokenAcceptedVersion` is null, the default) receives v1 tokens even
    // from the v2 endpoint (https://learn.microsoft.com/entra/identity-platform/access-tokens#token-formats).
    let roles = id
        .options()
        .client_roles
        .get(&client.client_id)
        .cloned()
        .unwrap_or_default();
    let mut spec = TokenSpec::graph(id, &client.client_id)
        .with_audience(resource)
        .with_roles(roles);
    spec.exp = spec.iat + TOKEN_LIFETIME_SECS;
    let access_token = id.mint(&spec);
    // Successful response: token_type, expires_in, ext_expires_in, access_token (same page).
    json_response(
        StatusCode::OK,
        &json!({
            "token_type": "Bearer",
            "expires_in": TOKEN_LIFETIME_SECS,
            "ext_expires_in": TOKEN_LIFETIME_SECS,
            "access_token": access_token,
        }),
    )
}

/// `client_assertion_type=urn:ietf:params:oauth:client-assertion-type:jwt-bearer` + `client_assertion`.
/// The sandbox accepts, as a federated credential, a token it issued itself (signature, lifetime, tenant)
/// whose `aud` is `api://AzureADTokenExchange`, the audience of workload identity federation
/// (https://learn.microsoft.com/entra/workload-id/workload-identity-federation-create-trust#important-considerations-and-restrictions),
/// e.g. a managed identity token requested for that resource
/// (https://learn.microsoft.com/entra/workload-id/workload-identity-federation-config-app-trust-managed-identity).
/// Certificate-signed assertions are not emulated (no registered certificates).
fn check_client_assertion(
    id: &Identity,
    form: &[(String, String)],
    assertion: &str,
    correlation: Option<&str>,
) -> Option<SandboxResponse> {
    const JWT_BEARER: &str = "urn:ietf:params:oauth:client-assertion-type:jwt-bearer";
    if param(form, "client_assertion_type") != Some(JWT_BEARER) {
        return Some(aad_error(
            StatusCode::BAD_REQUEST,
            "invalid_request",
            900144,
            &format!("The request body must contain the following parameter: 'client_assertion_type' = '{JWT_BEARER}'."),
            correlation,
        ));
    }
    let auth = format!("Bearer {assertion}");
    match id.verify_token(Some(&auth), "api://AzureADTokenExchange") {
        Ok(_) => None,
        // AADSTS700024 "InvalidAssertion - The client assertion is not within its valid time range" and the
        // AADSTS7000xx family are invalid_client failures.
        Err(e) => Some(aad_error(
            StatusCode::UNAUTHORIZED,
            "invalid_client",
            700027,
            &format!("Client assertion failed signature validation or is not valid: {e}."),
            correlation,
        )),
    }
}

// ---------------------------------------------------------------------------------------------------------
// OpenID Connect metadata and keys
// ---------------------------------------------------------------------------------------------------------

/// Tenants the metadata answers for: the sandbox tenant, and the multi-tenant aliases whose issuer carries the
/// `{tenantid}` placeholder (https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc#find-your-apps-openid-configuration-document-uri).
fn metadata_tenant(id: &Identity, tenant: &str) -> Option<String> {
    if tenant_matches(id, tenant) {
        return Some(id.tenant_id().to_string());
    }
    let lower = tenant.to_ascii_lowercase();
    matches!(lower.as_str(), "common" | "organizations" | "consumers")
        .then(|| "{tenantid}".to_string())
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration` and the v1 form `GET /{tenant}/.well-known/openid-configuration`.
/// https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc#fetch-the-openid-configuration-document
fn openid_configuration(id: &Identity, base: &str, tenant: &str, v2: bool) -> SandboxResponse {
    let Some(tid) = metadata_tenant(id, tenant) else {
        return tenant_not_found(tenant, None);
    };
    let path_tenant = if tid == "{tenantid}" {
        tenant.to_string()
    } else {
        tid.clone()
    };
    let doc = if v2 {
        json!({
            "token_endpoint": format!("{base}/{path_tenant}/oauth2/v2.0/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("{base}/{path_tenant}/discovery/v2.0/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
            "scopes_supported": ["openid", "profile", "email", "offline_access"],
            "issuer": format!("{base}/{tid}/v2.0"),
            "request_uri_parameter_supported": false,
            "userinfo_endpoint": "https://graph.microsoft.com/oidc/userinfo",
            "authorization_endpoint": format!("{base}/{path_tenant}/oauth2/v2.0/authorize"),
            "device_authorization_endpoint": format!("{base}/{path_tenant}/oauth2/v2.0/devicecode"),
            "http_logout_supported": true,
            "frontchannel_logout_supported": true,
            "end_session_endpoint": format!("{base}/{path_tenant}/oauth2/v2.0/logout"),
            "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        })
    } else {
        // The v1 document: issuer https://sts.windows.net/{tid}/, keys at /common/discovery/keys.
        json!({
            "token_endpoint": format!("{base}/{path_tenant}/oauth2/token"),
            "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
            "jwks_uri": format!("{base}/common/discovery/keys"),
            "response_modes_supported": ["query", "fragment", "form_post"],
            "subject_types_supported": ["pairwise"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "response_types_supported": ["code", "id_token", "code id_token", "token id_token", "token"],
            "scopes_supported": ["openid"],
            "issuer": format!("https://sts.windows.net/{tid}/"),
            "microsoft_multi_refresh_token": true,
            "authorization_endpoint": format!("{base}/{path_tenant}/oauth2/authorize"),
            "device_authorization_endpoint": format!("{base}/{path_tenant}/oauth2/devicecode"),
            "http_logout_supported": true,
            "frontchannel_logout_supported": true,
            "end_session_endpoint": format!("{base}/{path_tenant}/oauth2/logout"),
            "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "amr", "nonce", "email", "given_name", "family_name", "nickname"],
            "check_session_iframe": format!("{base}/{path_tenant}/oauth2/checksession"),
            "userinfo_endpoint": format!("{base}/{path_tenant}/openid/userinfo"),
            "kerberos_endpoint": format!("{base}/{path_tenant}/kerberos"),
            "tenant_region_scope": "EU",
            "cloud_instance_name": "microsoftonline.com",
            "cloud_graph_host_name": "graph.windows.net",
            "msgraph_host": "graph.microsoft.com",
            "rbac_url": "https://pas.windows.net",
        })
    };
    json_response(StatusCode::OK, &doc)
}

/// `GET /{tenant}/discovery/v2.0/keys` (and `/common/...`, `/discovery/keys`): `{"keys":[{kty,use,kid,n,e,alg}]}`.
/// "The JWKS document located at jwks_uri contains all of the public key information in use at that particular
/// moment." https://learn.microsoft.com/entra/identity-platform/v2-protocols-oidc#fetch-the-openid-configuration-document
fn jwks(id: &Identity, tenant: &str) -> SandboxResponse {
    if metadata_tenant(id, tenant).is_none() {
        return tenant_not_found(tenant, None);
    }
    json_response(StatusCode::OK, &id.jwks())
}
