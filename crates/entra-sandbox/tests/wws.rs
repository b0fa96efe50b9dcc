//! Workday Web Services (SOAP, Human_Resources) over HTTP: WS-Security auth, Get_Workers,
//! Change_Work_Contact_Information, Workday_Account_for_Worker_Update, faults, recording.

use entra_sandbox::workday::*;
use entra_sandbox::{FaultAction, FaultRule, FaultTrigger, Sandbox, SandboxOptions, WWS_VERSION};
use reqwest::StatusCode;
use serde_json::{json, Value};

fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
}

async fn sandbox() -> Sandbox {
    Sandbox::start(SandboxOptions::default())
        .await
        .expect("sandbox starts")
}

/// A SOAP 1.1 envelope with a PasswordText UsernameToken (`None`: no Security header); the body
/// uses the `bsvc` prefix.
fn envelope(credentials: Option<(&str, &str)>, body: &str) -> String {
    let header = match credentials {
        Some((u, p)) => format!(
            r#"<soapenv:Header><wsse:Security xmlns:wsse="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"><wsse:UsernameToken><wsse:Username>{u}</wsse:Username><wsse:Password Type="http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-username-token-profile-1.0#PasswordText">{p}</wsse:Password></wsse:UsernameToken></wsse:Security></soapenv:Header>"#
        ),
        None => String::new(),
    };
    format!(
        r#"<?xml version="1.0" encoding="UTF-8"?><soapenv:Envelope xmlns:soapenv="http://schemas.xmlsoap.org/soap/envelope/" xmlns:bsvc="urn:com.workday/bsvc">{header}<soapenv:Body>{body}</soapenv:Body></soapenv:Envelope>"#
    )
}

async fn post_raw(sb: &Sandbox, xml: String) -> (StatusCode, String) {
    let r = client()
        .post(sb.wws_url())
        .header("content-type", "text/xml; charset=utf-8")
        .header("soapaction", "")
        .body(xml)
        .send()
        .await
        .expect("send");
    let status = r.status();
    (status, r.text().await.unwrap_or_default())
}

async fn post(sb: &Sandbox, body: &str) -> (StatusCode, String) {
    post_raw(
        sb,
        envelope(Some((WORKDAY_USERNAME, WORKDAY_PASSWORD)), body),
    )
    .await
}

fn get_workers_body(employee_id: &str) -> String {
    format!(
        r#"<bsvc:Get_Workers_Request bsvc:version="{WWS_VERSION}"><bsvc:Request_References bsvc:Skip_Non_Existing_Instances="false"><bsvc:Worker_Reference><bsvc:ID bsvc:type="Employee_ID">{employee_id}</bsvc:ID></bsvc:Worker_Reference></bsvc:Request_References><bsvc:Response_Group><bsvc:Include_Reference>true</bsvc:Include_Reference><bsvc:Include_Personal_Information>true</bsvc:Include_Personal_Information><bsvc:Include_Employment_Information>false</bsvc:Include_Employment_Information></bsvc:Response_Group></bsvc:Get_Workers_Request>"#
    )
}

/// One Email_Information_Data entry.
fn email_entry(address: &str, usage: &str, primary: bool) -> String {
    format!(
        r#"<bsvc:Email_Information_Data bsvc:Delete="false"><bsvc:Email_Data><bsvc:Email_Address>{address}</bsvc:Email_Address></bsvc:Email_Data><bsvc:Usage_Data bsvc:Public="true"><bsvc:Type_Data bsvc:Primary="{primary}"><bsvc:Type_Reference><bsvc:ID bsvc:type="Communication_Usage_Type_ID">{usage}</bsvc:ID></bsvc:Type_Reference></bsvc:Type_Data></bsvc:Usage_Data></bsvc:Email_Information_Data>"#
    )
}

/// Change_Work_Contact_Information_Request (research §3 example), with the `wd` prefix.
fn change_body(employee_id: &str, replace_all: bool, entries: &[String]) -> String {
    let entries = entries.concat().replace("bsvc:", "wd:");
    format!(
        r#"<wd:Change_Work_Contact_Information_Request xmlns:wd="urn:com.workday/bsvc" wd:version="v41.0"><wd:Business_Process_Parameters><wd:Auto_Complete>true</wd:Auto_Complete><wd:Run_Now>true</wd:Run_Now></wd:Business_Process_Parameters><wd:Change_Work_Contact_Information_Data><wd:Person_Reference><wd:ID wd:type="Employee_ID">{employee_id}</wd:ID></wd:Person_Reference><wd:Event_Effective_Date>2026-05-01</wd:Event_Effective_Date><wd:Person_Contact_Information_Data><wd:Person_Email_Information_Data wd:Replace_All="{replace_all}">{entries}</wd:Person_Email_Information_Data></wd:Person_Contact_Information_Data></wd:Change_Work_Contact_Information_Data></wd:Change_Work_Contact_Information_Request>"#
    )
}

/// The first seeded worker (with an Entra account: a WORK address in its row) and a known state:
/// HOME primary + WORK primary + a WORK alias.
fn prepared_worker(sb: &Sandbox) -> String {
    let id = sb
        .workday_rows()
        .iter()
        .find(|r| {
            r.get("Email_Addresses")
                .and_then(Value::as_array)
                .is_some_and(|a| a.iter().any(|e| e["Usage"] == "WORK"))
        })
        .and_then(|r| r.get("Employee_ID").and_then(Value::as_str))
        .map(str::to_string)
        .expect("a seeded worker with a work email");
    assert!(sb.set_worker_emails(
        &id,
        vec![
            ("home.person@example.org", "HOME", true),
            ("old.primary@contoso.com", "WORK", true),
            ("alias@contoso.com", "WORK", false),
        ],
    ));
    assert!(sb.set_worker_user_name(&id, None));
    id
}

fn has(text: &str, needle: &str) -> bool {
    text.contains(needle)
}

fn emails(sb: &Sandbox, id: &str) -> Vec<(String, String, bool)> {
    let w = sb.worker(id).expect("worker");
    w["emails"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|e| {
            (
                e["address"].as_str().unwrap_or("").to_string(),
                e["usage"].as_str().unwrap_or("").to_string(),
                e["primary"].as_bool().unwrap_or(false),
            )
        })
        .collect()
}

fn validation(text: &str) -> bool {
    has(
        text,
        "<faultcode>SOAP-ENV:Client.validationError</faultcode>",
    ) && has(text, "<wd:Validation_Fault>")
        && has(text, "<wd:Message>")
        && has(text, "<wd:Xpath>")
}

#[tokio::test]
async fn a_bad_or_missing_username_token_is_an_authentication_fault() {
    let sb = sandbox().await;
    let id = prepared_worker(&sb);
    let body = get_workers_body(&id);
    for creds in [
        None,
        Some((WORKDAY_USERNAME, "wrong")),
        Some(("someone@entra_sandbox", WORKDAY_PASSWORD)),
    ] {
        let (status, text) = post_raw(&sb, envelope(creds, &body)).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR, "{text}");
        assert!(
            has(
                &text,
                "<faultcode>SOAP-ENV:Client.authenticationError</faultcode>"
            ),
            "{text}"
        );
        assert!(!has(&text, "Get_Workers_Response"), "{text}");
    }
    let (status, text) = post(&sb, &body).await;
    assert_eq!(status, StatusCode::OK, "{text}");
}

#[tokio::test]
async fn get_workers_returns_emails_and_username() {
    let sb = sandbox().await;
    let id = prepared_worker(&sb);
    assert!(sb.set_worker_user_name(&id, Some("jdoe@contoso.com")));
    let (status, text) = post(&sb, &get_workers_body(&id)).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(has(&text, "<wd:Get_Workers_Response"), "{text}");
    assert!(
        has(&text, &format!("<wd:Worker_ID>{id}</wd:Worker_ID>")),
        "{text}"
    );
    assert!(
        has(&text, "<wd:User_ID>jdoe@contoso.com</wd:User_ID>"),
        "{text}"
    );
    assert!(
        has(&text, "<wd:Total_Results>1</wd:Total_Results>"),
        "{text}"
    );
    assert!(has(&text, "<wd:Page_Results>1</wd:Page_Results>"), "{text}");
    assert_eq!(text.matches("<wd:Email_Address_Data>").count(), 3, "{text}");
    assert!(
        has(
            &text,
            r#"<wd:Email_Address>old.primary@contoso.com</wd:Email_Address><wd:Usage_Data wd:Public="1"><wd:Type_Data wd:Primary="1"><wd:Type_Reference wd:Descriptor="Work"><wd:ID wd:type="Communication_Usage_Type_ID">WORK</wd:ID>"#
        ),
        "{text}"
    );
    assert!(
        has(
            &text,
            r#"<wd:Email_Address>home.person@example.org</wd:Email_Address><wd:Usage_Data wd:Public="0"><wd:Type_Data wd:Primary="1"><wd:Type_Reference wd:Descriptor="Home"><wd:ID wd:type="Communication_Usage_Type_ID">HOME</wd:ID>"#
        ),
        "{text}"
    );

    // Without Include_Personal_Information there is no contact data.
    let plain = get_workers_body(&id).replace(
        "<bsvc:Include_Personal_Information>true",
        "<bsvc:Include_Personal_Information>false",
    );
    let (_, text) = post(&sb, &plain).await;
    assert!(!has(&text, "Email_Address_Data"), "{text}");

    // Unknown worker: a Validation_Fault naming the ID.
    let (status, text) = post(&sb, &get_workers_body("NO-SUCH-ID")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(validation(&text), "{text}");
    assert!(has(&text, "NO-SUCH-ID"), "{text}");
}

#[tokio::test]
async fn seeded_workers_have_home_emails_and_some_have_work_emails_and_usernames() {
    let sb = sandbox().await;
    let ids: Vec<String> = sb
        .workday_rows()
        .iter()
        .filter_map(|r| r["Employee_ID"].as_str().map(str::to_string))
        .collect();
    let workers: Vec<Value> = ids.iter().filter_map(|id| sb.worker(id)).collect();
    assert_eq!(workers.len(), ids.len());
    let with_user = workers.iter().filter(|w| w["userName"].is_string()).count();
    let with_work = workers
        .iter()
        .filter(|w| {
            w["emails"].as_array().is_some_and(|a| {
                a.iter()
                    .any(|e| e["usage"] == "WORK" && e["primary"] == true)
            })
        })
        .count();
    assert!(with_user > 0 && with_user < workers.len(), "{with_user}");
    assert!(with_work > 0 && with_work < workers.len(), "{with_work}");
    let row = &sb.workday_rows()[0];
    if let (Some(id), Some(p)) = (row["Employee_ID"].as_str(), row["Personal_Email"].as_str()) {
        let w = sb.worker(id).expect("worker");
        assert!(w["emails"]
            .as_array()
            .is_some_and(|a| a.contains(&json!({"address": p, "usage": "HOME", "primary": true}))));
    }
    assert!(sb.worker("NO-SUCH-ID").is_none());
}

#[tokio::test]
async fn change_work_contact_sets_the_primary_work_email_and_keeps_the_rest() {
    let sb = sandbox().await;
    sb.set_recording(true, true);
    let id = prepared_worker(&sb);
    let (status, text) = post(
        &sb,
        &change_body(
            &id,
            false,
            &[email_entry("new.primary@contoso.com", "WORK", true)],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(
        has(&text, "<wd:Change_Work_Contact_Information_Response"),
        "{text}"
    );
    assert!(
        has(&text, r#"<wd:Event_Reference><wd:ID wd:type="WID">"#),
        "{text}"
    );

    let mut got = emails(&sb, &id);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("alias@contoso.com".into(), "WORK".into(), false),
            ("home.person@example.org".into(), "HOME".into(), true),
            ("new.primary@contoso.com".into(), "WORK".into(), true),
        ]
    );
    let (_, text) = post(&sb, &get_workers_body(&id)).await;
    assert!(has(
        &text,
        "<wd:Email_Address>new.primary@contoso.com</wd:Email_Address>"
    ));
    assert!(!has(&text, "old.primary@contoso.com"), "{text}");

    // The report's WORK address follows.
    let row = sb
        .workday_rows()
        .into_iter()
        .find(|r| r["Employee_ID"] == id.as_str())
        .expect("row");
    assert!(row["Email_Addresses"].as_array().is_some_and(
        |a| a.contains(&json!({"Usage": "WORK", "Email_Address": "new.primary@contoso.com"}))
    ));

    // Replace_All deletes the non-primary WORK addresses, keeps HOME.
    let (status, text) = post(
        &sb,
        &change_body(
            &id,
            true,
            &[email_entry("new.primary@contoso.com", "WORK", true)],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
    let mut got = emails(&sb, &id);
    got.sort();
    assert_eq!(
        got,
        vec![
            ("home.person@example.org".into(), "HOME".into(), true),
            ("new.primary@contoso.com".into(), "WORK".into(), true),
        ]
    );

    // Recorded with the route template and the body.
    let recorded: Vec<_> = sb
        .requests()
        .into_iter()
        .filter(|r| r.route == "POST /ccx/service/{tenant}/Human_Resources/{version}")
        .collect();
    assert!(recorded.len() >= 3);
    assert!(recorded.iter().any(|r| r
        .body
        .as_deref()
        .is_some_and(|b| b.contains("new.primary@contoso.com"))));
}

#[tokio::test]
async fn change_work_contact_validation_faults() {
    let sb = sandbox().await;
    let id = prepared_worker(&sb);
    let before = emails(&sb, &id);

    let (status, text) = post(
        &sb,
        &change_body(&id, false, &[email_entry("me@home.example", "HOME", true)]),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(validation(&text), "{text}");
    assert!(has(&text, "Change Home Contact Information"), "{text}");

    for bad in ["no-at-sign.example.com", "two words@contoso.com"] {
        let (status, text) = post(
            &sb,
            &change_body(&id, false, &[email_entry(bad, "WORK", true)]),
        )
        .await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        assert!(validation(&text), "{text}");
        assert!(
            has(&text, "wd:Email_Data[1]/wd:Email_Address[1]</wd:Xpath>"),
            "{text}"
        );
    }

    let (status, text) = post(
        &sb,
        &change_body(
            "NO-SUCH-ID",
            false,
            &[email_entry("a@contoso.com", "WORK", true)],
        ),
    )
    .await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(validation(&text), "{text}");
    assert!(has(&text, "NO-SUCH-ID"), "{text}");
    assert!(
        has(&text, "wd:Person_Reference[1]/wd:ID[1]</wd:Xpath>"),
        "{text}"
    );

    let delete = email_entry("alias@contoso.com", "WORK", false)
        .replace(r#"bsvc:Delete="false""#, r#"bsvc:Delete="true""#);
    let (status, text) = post(&sb, &change_body(&id, true, &[delete])).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(validation(&text), "{text}");
    assert!(has(&text, "Replace_All"), "{text}");

    // Nothing changed.
    assert_eq!(emails(&sb, &id), before);
}

#[tokio::test]
async fn workday_account_update_sets_the_username() {
    let sb = sandbox().await;
    let id = prepared_worker(&sb);
    let body = |user: &str| {
        format!(
            r#"<bsvc:Workday_Account_for_Worker_Update_Request bsvc:version="v33.0"><bsvc:Worker_Reference><bsvc:Employee_Reference><bsvc:Integration_ID_Reference><bsvc:ID bsvc:System_ID="WD-EMPLID">{id}</bsvc:ID></bsvc:Integration_ID_Reference></bsvc:Employee_Reference></bsvc:Worker_Reference><bsvc:Workday_Account_for_Worker_Data><bsvc:User_Name>{user}</bsvc:User_Name></bsvc:Workday_Account_for_Worker_Data></bsvc:Workday_Account_for_Worker_Update_Request>"#
        )
    };
    let (status, text) = post(&sb, &body("j.doe&amp;co@contoso.com")).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert!(
        has(&text, "Workday_Account_for_Worker_Update_Response"),
        "{text}"
    );
    assert_eq!(
        sb.worker(&id).map(|w| w["userName"].clone()),
        Some(json!("j.doe&co@contoso.com"))
    );
    let (_, text) = post(&sb, &get_workers_body(&id)).await;
    assert!(
        has(&text, "<wd:User_ID>j.doe&amp;co@contoso.com</wd:User_ID>"),
        "{text}"
    );

    let (status, text) = post(&sb, &body("  ")).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(validation(&text), "{text}");

    // The Worker_Reference/ID[@type=Employee_ID] form.
    let short = format!(
        r#"<bsvc:Workday_Account_for_Worker_Update_Request><bsvc:Worker_Reference><bsvc:ID bsvc:type="Employee_ID">{id}</bsvc:ID></bsvc:Worker_Reference><bsvc:Workday_Account_for_Worker_Data><bsvc:User_Name>second</bsvc:User_Name></bsvc:Workday_Account_for_Worker_Data></bsvc:Workday_Account_for_Worker_Update_Request>"#
    );
    let (status, text) = post(&sb, &short).await;
    assert_eq!(status, StatusCode::OK, "{text}");
    assert_eq!(
        sb.worker(&id).map(|w| w["userName"].clone()),
        Some(json!("second"))
    );
}

#[tokio::test]
async fn unknown_operations_are_processing_faults() {
    let sb = sandbox().await;
    let (status, text) = post(&sb, "<bsvc:Hire_Employee_Request/>").await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(has(&text, "<wd:Processing_Fault>"), "{text}");
    assert!(has(&text, "Hire_Employee_Request"), "{text}");
}

#[tokio::test]
async fn an_injected_503_applies_to_the_web_services() {
    let sb = sandbox().await;
    let id = prepared_worker(&sb);
    sb.set_fault(FaultRule {
        pattern: "POST /ccx/service/*/Human_Resources/*".into(),
        trigger: FaultTrigger::EveryNth(1),
        action: FaultAction::Status {
            status: 503,
            retry_after: None,
        },
    });
    let (status, _) = post(&sb, &get_workers_body(&id)).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    sb.set_faults(Vec::new());
    let (status, _) = post(&sb, &get_workers_body(&id)).await;
    assert_eq!(status, StatusCode::OK);
}

#[tokio::test]
async fn password_rotation_applies_to_the_web_services() {
    let sb = sandbox().await;
    let id = prepared_worker(&sb);
    sb.set_workday_password("Rotated-Passw0rd!");
    let (status, text) = post(&sb, &get_workers_body(&id)).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
    assert!(has(&text, "Client.authenticationError"), "{text}");
    let (status, text) = post_raw(
        &sb,
        envelope(
            Some((WORKDAY_USERNAME, "Rotated-Passw0rd!")),
            &get_workers_body(&id),
        ),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{text}");
}
