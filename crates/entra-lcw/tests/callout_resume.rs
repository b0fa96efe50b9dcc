//! Callout parsing (lenient, validated ids, no PII in errors) and the resume path/body.
//! The callout fixture is constructed from the documented trigger schema (<https://learn.microsoft.com/graph/api/resources/identitygovernance-customtaskextensioncalloutdata?view=graph-rest-beta>);
//! the `source` value is illustrative (LCW's real value is not documented).

use entra_lcw::{parse_callout, resume_body, resume_path, CalloutError, ResumeStatus};
use serde_json::{json, Value};

fn fixture() -> Value {
    let path = format!("{}/tests/fixtures/callout.json", env!("CARGO_MANIFEST_DIR"));
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

const SUBJECT: &str = "00aa00aa-bb11-cc22-dd33-44ee44ee44ee";
const TASK: &str = "1c2d3e4f-5a6b-4c7d-8e9f-0a1b2c3d4e5f";
const TPR: &str = "9e8d7c6b-5a4f-4e3d-2c1b-0a9f8e7d6c5b";
const WORKFLOW: &str = "7a1f2c3d-4b5e-4f60-8a71-92b3c4d5e6f7";

#[test]
fn parses_the_documented_callout() {
    let c = parse_callout(&fixture()).unwrap();
    assert_eq!(c.subject_id(), SUBJECT);
    assert_eq!(c.task_id(), TASK);
    assert_eq!(c.task_processing_result_id(), TPR);
    assert_eq!(c.workflow_id(), WORKFLOW);
    assert_eq!(c.source.as_deref(), Some("lifecycleWorkflows"));
    assert_eq!(c.event_type.as_deref(), Some("lifecycleEvent"));
    assert_eq!(
        c.odata_type.as_deref(),
        Some("#microsoft.graph.identityGovernance.customTaskExtensionCalloutData")
    );
    assert!(c.callback_uri_path.as_deref().unwrap().contains(TPR));
    assert_eq!(c.subject.email.as_deref(), Some("new.hire@contoso.com"));
    assert_eq!(
        c.subject.user_principal_name.as_deref(),
        Some("new.hire@contoso.com")
    );
    assert_eq!(c.subject.display_name.as_deref(), Some("New Hire"));
    let m = c.subject.manager.as_ref().unwrap();
    assert_eq!(
        m.id.as_deref(),
        Some("11bb11bb-cc22-dd33-ee44-55ff55ff55ff")
    );
    assert_eq!(m.email.as_deref(), Some("manager@contoso.com"));
    assert_eq!(
        c.task.display_name.as_deref(),
        Some("Run a Custom Task Extension")
    );
    assert_eq!(
        c.task_processing_result.created_date_time.as_deref(),
        Some("2026-11-25T05:00:00.1234567Z")
    );
    assert_eq!(c.workflow.display_name.as_deref(), Some("Onboard new hire"));
    assert_eq!(c.workflow.workflow_version, Some(1));
}

#[test]
fn debug_output_hides_personal_data() {
    let c = parse_callout(&fixture()).unwrap();
    let dbg = format!("{c:?}");
    assert!(dbg.contains(SUBJECT), "{dbg}");
    for pii in ["new.hire@contoso.com", "manager@contoso.com", "New Hire"] {
        assert!(!dbg.contains(pii), "{pii} leaked in {dbg}");
    }
}

#[test]
fn lenient_variants_are_accepted() {
    // Minimal body: only the four ids; `mail` instead of `email`; version as a string; junk types on
    // optional fields; no @odata.type, no source/type.
    let body = json!({
        "data": {
            "subject": {"id": SUBJECT, "mail": "a.b@contoso.com", "displayName": 42, "manager": null},
            "task": {"id": TASK},
            "taskProcessingResult": {"id": TPR, "createdDateTime": {"odd": true}},
            "workflow": {"id": WORKFLOW, "workflowVersion": "7"},
            "unknownExtra": [1, 2, 3]
        }
    });
    let c = parse_callout(&body).unwrap();
    assert_eq!(c.subject.email.as_deref(), Some("a.b@contoso.com"));
    assert_eq!(c.subject.display_name.as_deref(), Some("42"));
    assert!(c.subject.manager.is_none());
    assert_eq!(c.task_processing_result.created_date_time, None);
    assert_eq!(c.workflow.workflow_version, Some(7));
    assert_eq!(c.source, None);
    assert_eq!(c.odata_type, None);

    // `email` wins over `mail` when both are present.
    let mut both = fixture();
    both["data"]["subject"]["mail"] = json!("other@contoso.com");
    assert_eq!(
        parse_callout(&both).unwrap().subject.email.as_deref(),
        Some("new.hire@contoso.com")
    );

    // A relay that double-encodes: the body arrives as a JSON string.
    let encoded = Value::String(fixture().to_string());
    assert_eq!(
        parse_callout(&encoded).unwrap().task_processing_result_id(),
        TPR
    );
}

#[test]
fn each_missing_id_is_named_with_the_fix() {
    let cases = [
        (&["data", "subject", "id"][..], "data.subject.id"),
        (&["data", "task", "id"][..], "data.task.id"),
        (
            &["data", "taskProcessingResult", "id"][..],
            "data.taskProcessingResult.id",
        ),
        (&["data", "workflow", "id"][..], "data.workflow.id"),
    ];
    for (path, name) in cases {
        for replacement in [
            None,
            Some(Value::Null),
            Some(json!("")),
            Some(json!("   ")),
            Some(json!({})),
        ] {
            let mut body = fixture();
            let (last, parents) = path.split_last().unwrap();
            let parent = parents.iter().fold(&mut body, |v, k| &mut v[*k]);
            match &replacement {
                None => {
                    parent.as_object_mut().unwrap().remove(*last);
                }
                Some(r) => parent[*last] = r.clone(),
            }
            let err = parse_callout(&body).unwrap_err();
            assert_eq!(err, CalloutError::Missing { path: name }, "{replacement:?}");
            assert_eq!(err.field(), name);
            assert_eq!(
                err.to_string(),
                format!("{name} is missing: the relay must forward the custom task extension callout body verbatim")
            );
        }
    }
}

#[test]
fn ids_unsafe_in_a_url_path_are_refused_without_echo() {
    for bad in [
        "../../users",
        "a/b",
        "x?y=1",
        "new.hire@contoso.com",
        "id with space",
        "%2e%2e",
    ] {
        let mut body = fixture();
        body["data"]["workflow"]["id"] = json!(bad);
        let err = parse_callout(&body).unwrap_err();
        assert!(
            matches!(
                err,
                CalloutError::InvalidId {
                    path: "data.workflow.id",
                    ..
                }
            ),
            "{bad}: {err:?}"
        );
        let msg = err.to_string();
        assert!(!msg.contains(bad), "{msg}");
        assert!(msg.starts_with("data.workflow.id is not an id"), "{msg}");
    }
    let mut body = fixture();
    body["data"]["subject"]["id"] = json!("a".repeat(129));
    assert!(matches!(
        parse_callout(&body),
        Err(CalloutError::InvalidId {
            path: "data.subject.id",
            problem: "too long"
        })
    ));
}

#[test]
fn non_objects_and_missing_data_are_refused() {
    assert_eq!(
        parse_callout(&json!([1])).unwrap_err(),
        CalloutError::NotAnObject { found: "an array" }
    );
    assert_eq!(
        parse_callout(&json!("not json")).unwrap_err(),
        CalloutError::NotAnObject {
            found: "a string that is not JSON"
        }
    );
    assert_eq!(parse_callout(&json!(null)).unwrap_err().field(), "body");
    assert_eq!(
        parse_callout(&json!({"source": "x", "data": "nope"})).unwrap_err(),
        CalloutError::Missing { path: "data" }
    );
}

#[test]
fn errors_never_contain_the_subject_email() {
    let mut body = fixture();
    body["data"]["task"] = json!({"id": "new.hire@contoso.com"});
    let msg = parse_callout(&body).unwrap_err().to_string();
    assert!(!msg.contains("contoso"), "{msg}");
}

#[test]
fn resume_path_uses_the_callout_ids() {
    let c = parse_callout(&fixture()).unwrap();
    assert_eq!(
        resume_path(&c),
        format!("/v1.0/identityGovernance/lifecycleWorkflows/workflows/{WORKFLOW}/tasks/{TASK}/taskProcessingResults/{TPR}/resume")
    );
}

#[test]
fn resume_body_is_the_documented_v1_shape() {
    let reasons = vec!["updated: otherMails".to_string()];
    assert_eq!(
        resume_body(ResumeStatus::Completed, &reasons),
        json!({
            "data": {
                "@odata.type": "#microsoft.graph.identityGovernance.customTaskExtensionCallbackData",
                "operationStatus": "Completed"
            },
            "source": "entra-enrich",
            "type": "lifecycleEvent"
        })
    );
    let failed = resume_body(ResumeStatus::Failed, &[]);
    assert_eq!(failed["data"]["operationStatus"], json!("Failed"));
    assert!(failed["data"].get("statusReasons").is_none());
    // A Failed resume with reasons carries them as statusReasons (customTaskExtensionResponseData).
    let with_reasons = resume_body(ResumeStatus::Failed, &reasons);
    assert_eq!(
        with_reasons["data"]["@odata.type"],
        json!("#microsoft.graph.identityGovernance.customTaskExtensionResponseData")
    );
    assert_eq!(with_reasons["data"]["statusReasons"], json!(reasons));
    assert_eq!(
        entra_lcw::resume_body_without_reasons(ResumeStatus::Failed)["data"].get("statusReasons"),
        None
    );
}
