//! The wire types of the Azure Functions custom-handler protocol.
//!
//! Contract: https://learn.microsoft.com/azure/azure-functions/functions-custom-handlers
//! ("Request payload" / "Response payload"), and the host's own types in Azure/azure-functions-host
//! `src/WebJobs.Script/Workers/Http/` (`HttpScriptInvocationContext { Data, Metadata }`,
//! `HttpScriptInvocationResult { Outputs, Logs, ReturnValue }`, `HttpOutputBindingResponse`), and
//! `HttpRequestExtensions.GetRequestAsJObject` for the HTTP trigger value
//! (`Url, Method, Query, Headers, Params, Identities, Body`). See
//! <https://learn.microsoft.com/azure/azure-functions/functions-custom-handlers>.
//!
//! Everything the host may omit is `Option` or `#[serde(default)]`: the host is a peer we do not
//! control, and a missing optional field must never fail an invocation.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::{Map, Value};
use std::collections::BTreeMap;

/// Errors reading a trigger value out of an invocation.
#[derive(Debug, thiserror::Error)]
pub enum ProtocolError {
    /// `Data.<binding>` is absent.
    #[error(
        "Data.{binding} is missing: check the binding `name` in function.json (present: {present})"
    )]
    MissingBinding { binding: String, present: String },
    /// `Data.<binding>` is present but is not the expected shape.
    #[error("Data.{binding} is not a valid {kind} trigger value: {detail}")]
    BadBinding {
        binding: String,
        kind: &'static str,
        detail: String,
    },
    /// The HTTP trigger request has no body.
    #[error("the HTTP request has no body")]
    MissingBody,
    /// The HTTP trigger body is not JSON.
    #[error("the HTTP request body is not valid JSON: {0}")]
    BodyNotJson(String),
}

/// What the host POSTs to `/{FunctionName}`: `{ "Data": {...}, "Metadata": {...} }`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct InvokeRequest {
    /// One key per input/trigger binding `name` from function.json.
    #[serde(rename = "Data", default, deserialize_with = "null_as_default")]
    pub data: Map<String, Value>,
    /// Trigger metadata, plus `sys` and (on retries) `RetryContext`.
    #[serde(rename = "Metadata", default, deserialize_with = "null_as_default")]
    pub metadata: Map<String, Value>,
}

impl InvokeRequest {
    fn binding(&self, binding: &str) -> Result<&Value, ProtocolError> {
        match self.data.get(binding) {
            Some(v) if !v.is_null() => Ok(v),
            _ => Err(ProtocolError::MissingBinding {
                binding: binding.to_string(),
                present: self.data.keys().cloned().collect::<Vec<_>>().join(", "),
            }),
        }
    }

    /// The HTTP trigger value bound to `binding` (usually `req`).
    pub fn http_trigger(&self, binding: &str) -> Result<HttpTriggerRequest, ProtocolError> {
        let v = self.binding(binding)?;
        // Non-POCO values arrive as a JSON *string*; accept a stringified object too.
        let parsed = match v {
            Value::String(s) => serde_json::from_str::<HttpTriggerRequest>(s),
            other => HttpTriggerRequest::deserialize(other),
        };
        parsed.map_err(|e| ProtocolError::BadBinding {
            binding: binding.to_string(),
            kind: "httpTrigger",
            detail: e.to_string(),
        })
    }

    /// The timer trigger value bound to `binding` (usually `timer`).
    pub fn timer(&self, binding: &str) -> Result<TimerInfo, ProtocolError> {
        let v = self.binding(binding)?;
        let parsed = match v {
            Value::String(s) => serde_json::from_str::<TimerInfo>(s),
            other => TimerInfo::deserialize(other),
        };
        parsed.map_err(|e| ProtocolError::BadBinding {
            binding: binding.to_string(),
            kind: "timerTrigger",
            detail: e.to_string(),
        })
    }

    /// `Metadata.sys`, when present and well-formed.
    pub fn sys(&self) -> Option<SysMetadata> {
        self.metadata
            .get("sys")
            .and_then(|v| SysMetadata::deserialize(v).ok())
    }
}

/// `Metadata.sys` (`MethodName`, `UtcNow`, `RandGuid`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct SysMetadata {
    #[serde(rename = "MethodName", default)]
    pub method_name: Option<String>,
    #[serde(rename = "UtcNow", default)]
    pub utc_now: Option<String>,
    #[serde(rename = "RandGuid", default)]
    pub rand_guid: Option<String>,
}

/// The HTTP trigger value (`HttpRequestExtensions.GetRequestAsJObject`).
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct HttpTriggerRequest {
    #[serde(rename = "Url", alias = "url", default)]
    pub url: String,
    #[serde(rename = "Method", alias = "method", default)]
    pub method: String,
    /// Query string, name → value.
    #[serde(
        rename = "Query",
        alias = "query",
        default,
        deserialize_with = "string_map"
    )]
    pub query: BTreeMap<String, String>,
    /// Headers, name → values. A single string value is accepted as a one-element list.
    #[serde(
        rename = "Headers",
        alias = "headers",
        default,
        deserialize_with = "header_map"
    )]
    pub headers: BTreeMap<String, Vec<String>>,
    /// Route parameters.
    #[serde(
        rename = "Params",
        alias = "params",
        default,
        deserialize_with = "string_map"
    )]
    pub params: BTreeMap<String, String>,
    /// Claims identities (App Service authentication); shape is host-defined.
    #[serde(rename = "Identities", alias = "identities", default)]
    pub identities: Option<Value>,
    /// The request body: a string (the host's usual form) or already-parsed JSON.
    #[serde(rename = "Body", alias = "body", default)]
    pub body: Option<Body>,
}

/// An HTTP trigger body as the host sends it.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
#[serde(untagged)]
pub enum Body {
    /// The raw body text (JSON bodies usually arrive like this).
    Text(String),
    /// A body the host already parsed into JSON (object, array, number, bool).
    Json(Value),
}

impl HttpTriggerRequest {
    /// Case-insensitive header lookup; the first value when the header repeats.
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .and_then(|(_, v)| v.first())
            .map(String::as_str)
    }

    /// The body as JSON: a string body is parsed, an object/array body is passed through.
    pub fn body_json(&self) -> Result<Value, ProtocolError> {
        match &self.body {
            None => Err(ProtocolError::MissingBody),
            Some(Body::Json(Value::Null)) => Err(ProtocolError::MissingBody),
            Some(Body::Json(v)) => Ok(v.clone()),
            Some(Body::Text(s)) if s.trim().is_empty() => Err(ProtocolError::MissingBody),
            Some(Body::Text(s)) => {
                serde_json::from_str(s).map_err(|e| ProtocolError::BodyNotJson(e.to_string()))
            }
        }
    }
}

/// The timer trigger value (https://learn.microsoft.com/azure/azure-functions/functions-bindings-timer#usage).
/// A real host 4.x payload: `{"Schedule":{"AdjustForDST":true},"ScheduleStatus":null,"IsPastDue":false}`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TimerInfo {
    #[serde(rename = "Schedule", alias = "schedule", default)]
    pub schedule: Option<TimerSchedule>,
    #[serde(rename = "ScheduleStatus", alias = "scheduleStatus", default)]
    pub schedule_status: Option<ScheduleStatus>,
    #[serde(
        rename = "IsPastDue",
        alias = "isPastDue",
        default,
        deserialize_with = "null_as_default"
    )]
    pub is_past_due: bool,
}

/// `TimerInfo.Schedule`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct TimerSchedule {
    #[serde(rename = "AdjustForDST", alias = "adjustForDST", default)]
    pub adjust_for_dst: Option<bool>,
}

/// `TimerInfo.ScheduleStatus` (only populated when `useMonitor` persisted earlier occurrences).
/// Timestamps are kept as the host's strings.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct ScheduleStatus {
    #[serde(rename = "Last", alias = "last", default)]
    pub last: Option<String>,
    #[serde(rename = "Next", alias = "next", default)]
    pub next: Option<String>,
    #[serde(rename = "LastUpdated", alias = "lastUpdated", default)]
    pub last_updated: Option<String>,
}

/// What we answer: `{ "Outputs": {...}, "Logs": [...], "ReturnValue": ... }`.
#[derive(Debug, Clone, Default, Serialize, Deserialize, PartialEq)]
pub struct InvokeResponse {
    /// One key per output binding `name` (e.g. `res` for the HTTP output).
    #[serde(rename = "Outputs")]
    pub outputs: Map<String, Value>,
    /// Each entry becomes an Information log of the invocation in the host / Application Insights.
    #[serde(rename = "Logs")]
    pub logs: Vec<String>,
    /// Fills a `$return` output binding.
    #[serde(rename = "ReturnValue")]
    pub return_value: Option<Value>,
}

impl InvokeResponse {
    /// An empty response (e.g. for a timer with no outputs).
    pub fn new() -> Self {
        Self::default()
    }

    /// A response whose HTTP output binding `binding` is `res`.
    pub fn http(binding: &str, res: HttpOutput) -> Self {
        Self::new().with_output(binding, res.to_value())
    }

    /// Sets an output binding.
    pub fn with_output(mut self, binding: &str, value: Value) -> Self {
        self.outputs.insert(binding.to_string(), value);
        self
    }

    /// Appends a log line (it is masked by the server before it leaves the process).
    pub fn with_log(mut self, line: impl Into<String>) -> Self {
        self.logs.push(line.into());
        self
    }
}

/// The value of an `http` output binding (`HttpOutputBindingResponse { StatusCode, Body, Headers }`).
///
/// `statusCode` is serialized as a string (`"202"`), exactly as the custom-handler doc sample does;
/// the host's binding reads it with Newtonsoft, which is case-insensitive.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpOutput {
    pub status_code: u16,
    pub body: Value,
    pub headers: BTreeMap<String, String>,
}

impl HttpOutput {
    /// A response with a JSON body. The body is sent as JSON *text* with an explicit
    /// `Content-Type: application/json`, so the host writes exactly these bytes.
    pub fn json(status_code: u16, body: &Value) -> Self {
        let mut headers = BTreeMap::new();
        headers.insert(
            "Content-Type".to_string(),
            "application/json; charset=utf-8".to_string(),
        );
        Self {
            status_code,
            body: Value::String(body.to_string()),
            headers,
        }
    }

    /// A plain-text response.
    pub fn text(status_code: u16, body: impl Into<String>) -> Self {
        let mut headers = BTreeMap::new();
        headers.insert(
            "Content-Type".to_string(),
            "text/plain; charset=utf-8".to_string(),
        );
        Self {
            status_code,
            body: Value::String(body.into()),
            headers,
        }
    }

    /// A response with no body.
    pub fn empty(status_code: u16) -> Self {
        Self {
            status_code,
            body: Value::String(String::new()),
            headers: BTreeMap::new(),
        }
    }

    /// Adds or replaces a header.
    pub fn with_header(mut self, name: impl Into<String>, value: impl Into<String>) -> Self {
        self.headers.insert(name.into(), value.into());
        self
    }

    /// The JSON value to put in `Outputs.<binding>`.
    pub fn to_value(&self) -> Value {
        let mut m = Map::new();
        m.insert(
            "statusCode".to_string(),
            Value::String(self.status_code.to_string()),
        );
        m.insert("body".to_string(), self.body.clone());
        let headers: Map<String, Value> = self
            .headers
            .iter()
            .map(|(k, v)| (k.clone(), Value::String(v.clone())))
            .collect();
        m.insert("headers".to_string(), Value::Object(headers));
        Value::Object(m)
    }
}

impl Serialize for HttpOutput {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        self.to_value().serialize(s)
    }
}

fn null_as_default<'de, D, T>(d: D) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
    T: Default + Deserialize<'de>,
{
    Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
}

fn scalar_to_string(v: Value) -> Option<String> {
    match v {
        Value::Null => None,
        Value::String(s) => Some(s),
        Value::Array(items) => Some(
            items
                .into_iter()
                .filter_map(scalar_to_string)
                .collect::<Vec<_>>()
                .join(","),
        ),
        other => Some(other.to_string()),
    }
}

fn string_map<'de, D>(d: D) -> Result<BTreeMap<String, String>, D::Error>
where
    D: Deserializer<'de>,
{
    let raw = Option::<Map<String, Value>>::deserialize(d)?.unwrap_or_default();
    Ok(raw
        .into_iter()
        .filter_map(|(k, v)| scalar_to_string(v).map(|s| (k, s)))
        .collect())
}

fn header_map<'de, D>(d: D) -> Result<BTreeMap<String, Vec<String>>, D::Error>
where
    D: Deserializer<'de>,
{
    let raw = Option::<Map<String, Value>>::deserialize(d)?.unwrap_or_default();
    Ok(raw
        .into_iter()
        .map(|(k, v)| {
            let values = match v {
                Value::Array(items) => items.into_iter().filter_map(scalar_to_string).collect(),
                other => scalar_to_string(other).into_iter().collect(),
            };
            (k, values)
        })
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn headers_accept_single_strings_and_lookup_ignores_case() {
        let req: HttpTriggerRequest = serde_json::from_value(json!({
            "Url": "http://x/api/a", "Method": "POST",
            "Headers": {"Content-Type": ["application/json"], "X-One": "single"},
            "Query": {"n": 1}
        }))
        .unwrap();
        assert_eq!(req.header("content-type"), Some("application/json"));
        assert_eq!(req.header("x-one"), Some("single"));
        assert_eq!(req.header("absent"), None);
        assert_eq!(req.query.get("n").map(String::as_str), Some("1"));
    }

    #[test]
    fn body_json_parses_text_and_passes_objects() {
        let text = HttpTriggerRequest {
            body: Some(Body::Text("{\"a\":1}".into())),
            ..Default::default()
        };
        assert_eq!(text.body_json().unwrap(), json!({"a":1}));
        let obj = HttpTriggerRequest {
            body: Some(Body::Json(json!([1, 2]))),
            ..Default::default()
        };
        assert_eq!(obj.body_json().unwrap(), json!([1, 2]));
        let bad = HttpTriggerRequest {
            body: Some(Body::Text("{nope".into())),
            ..Default::default()
        };
        assert!(matches!(
            bad.body_json(),
            Err(ProtocolError::BodyNotJson(_))
        ));
        let none = HttpTriggerRequest::default();
        assert!(matches!(none.body_json(), Err(ProtocolError::MissingBody)));
    }

    #[test]
    fn missing_binding_names_present_ones() {
        let req: InvokeRequest =
            serde_json::from_value(json!({"Data": {"timer": {}}, "Metadata": null})).unwrap();
        let err = req.http_trigger("req").unwrap_err().to_string();
        assert!(err.contains("Data.req") && err.contains("timer"), "{err}");
    }

    #[test]
    fn http_output_serializes_status_as_string() {
        let v = HttpOutput::json(202, &json!({"ok": true})).to_value();
        assert_eq!(v["statusCode"], json!("202"));
        assert_eq!(v["body"], json!("{\"ok\":true}"));
        assert_eq!(
            v["headers"]["Content-Type"],
            json!("application/json; charset=utf-8")
        );
    }
}
