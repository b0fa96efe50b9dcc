//! Hostile and sloppy input must never put the wrong address on an account (issue 8): an alternate
//! email that is somebody else's address, an HR file that is not what it seems, HR records that
//! match no one. Proven by what the sandbox received and what the report says.

mod support;

use std::sync::Arc;

use entra_enrich::adapters::cli::{unmatched_path, write_unmatched};
use entra_enrich::handlers::audit::AuditLog;
use entra_enrich::handlers::backfill::{run_backfill, BackfillOptions, NoProgress};
use entra_enrich::handlers::claim::Claims;
use entra_enrich::handlers::context::HrSource;
use entra_enrich::handlers::enrich::{enrich_user, UserRef, WhenBusy};
use entra_enrich::handlers::RunId;
use entra_enrich::sources::HrFile;
use entra_sandbox::SandboxOptions;
use serde_json::{json, Value};
use support::*;

fn tiny_tenant() -> SandboxOptions {
    SandboxOptions {
        users: 0,
        seed: 8,
        ..SandboxOptions::default()
    }
}

fn hire_with_personal_email(n: usize, personal: &str) -> Value {
    let mut u = new_hire(n);
    u["onPremisesExtensionAttributes"]["extensionAttribute1"] = json!(personal);
    u
}

/// The PATCH bodies the sandbox accepted for one user.
fn accepted_patches(h: &Harness, id: &str) -> Vec<Value> {
    patches(&h.sandbox)
        .into_iter()
        .filter(|(user, _, status)| user == id && (200..300).contains(status))
        .map(|(_, body, _)| body)
        .collect()
}

fn report_detail<'a>(
    summary: &'a entra_enrich::handlers::backfill::BackfillSummary,
    id: &str,
) -> &'a str {
    summary
        .report
        .iter()
        .find(|r| r.user_id == id)
        .map(|r| r.detail.as_str())
        .unwrap_or_else(|| panic!("{id} is not in the report"))
}

#[tokio::test]
async fn a_backfill_never_gives_one_users_address_to_another() {
    let h = Harness::start(tiny_tenant(), &[]).await;
    let owner = h.sandbox.upsert_user(new_hire(1)).expect("user");
    // An existing user whose alternate email is already set.
    let mut holder = hire_with_personal_email(2, "taken.private@mail.example");
    holder["otherMails"] = json!(["taken.private@mail.example"]);
    let holder = h.sandbox.upsert_user(holder).expect("user");
    let cases = [
        (10, "new.hire1@contoso.example"), // another user's sign-in name (and mail)
        (11, "new.hire11@contoso.example"), // the user's own sign-in name
        (12, "TAKEN.private@mail.example"), // another user's alternate email, other case
        (13, "same.private@mail.example"), // planned for two users at once
        (14, "same.private@mail.example"),
    ];
    let refused: Vec<String> = cases
        .iter()
        .map(|(n, email)| {
            h.sandbox
                .upsert_user(hire_with_personal_email(*n, email))
                .expect("user")
        })
        .collect();
    let fine = h.sandbox.upsert_user(new_hire(20)).expect("user");

    let summary = run_backfill(&h.ctx, &BackfillOptions::default(), &NoProgress)
        .await
        .expect("backfill");

    for id in &refused {
        let sent = accepted_patches(&h, id);
        assert!(
            sent.iter().all(|b| b.get("otherMails").is_none()),
            "{id}: otherMails written: {sent:?}"
        );
        // The other field is still written.
        assert!(
            sent.iter().any(|b| b["usageLocation"] == "DE"),
            "{id}: {sent:?}"
        );
        let detail = report_detail(&summary, id);
        assert!(
            detail.contains("another user's") || detail.contains("own sign-in name"),
            "{id}: {detail}"
        );
        assert!(
            !detail.contains("@"),
            "the report's detail quotes no address: {detail}"
        );
    }
    assert!(report_detail(&summary, &refused[1]).contains("own sign-in name"));
    assert!(report_detail(&summary, &refused[0]).contains("another user's"));
    for id in [&owner, &fine] {
        let sent = accepted_patches(&h, id);
        assert!(
            sent.iter().any(|b| b.get("otherMails").is_some()),
            "{id}: {sent:?}"
        );
    }
    assert_eq!(
        h.sandbox.user(&holder).expect("holder")["otherMails"],
        json!(["taken.private@mail.example"]),
        "the holder keeps its address"
    );
}

#[tokio::test]
async fn a_single_user_enrichment_asks_graph_who_holds_the_address_and_refuses_it() {
    let h = Harness::start(tiny_tenant(), &[]).await;
    h.sandbox.upsert_user(new_hire(1)).expect("user");
    let target = h
        .sandbox
        .upsert_user(hire_with_personal_email(2, "New.Hire1@contoso.example"))
        .expect("user");
    let fine = h.sandbox.upsert_user(new_hire(3)).expect("user");
    let run = RunId::new();
    let audit = AuditLog::new(h.ctx.state.clone(), run.clone(), "enrich");
    let claims = Claims::new(h.ctx.state.clone(), "enrich", run.as_str());
    h.sandbox.reset_requests();

    let result = enrich_user(
        &h.ctx,
        &audit,
        &claims,
        &UserRef::Id(target.clone()),
        WhenBusy::Leave,
    )
    .await
    .expect("enrich");
    let sent = accepted_patches(&h, &target);
    assert!(
        sent.iter().all(|b| b.get("otherMails").is_none()),
        "{sent:?}"
    );
    assert!(sent.iter().any(|b| b["usageLocation"] == "DE"), "{sent:?}");
    assert!(
        result
            .issues
            .iter()
            .any(|i| i.field == "otherMails" && i.reason.contains("another user's")),
        "{result:?}"
    );
    // The holder lookup is one documented default filter on the three address properties.
    let asked = h
        .sandbox
        .requests()
        .into_iter()
        .any(|r| r.method == "GET" && r.query.replace("%2F", "/").contains("otherMails/any"));
    assert!(asked, "Graph was not asked who holds the address");

    let result = enrich_user(
        &h.ctx,
        &audit,
        &claims,
        &UserRef::Id(fine.clone()),
        WhenBusy::Leave,
    )
    .await
    .expect("enrich");
    assert!(result.is_write(), "{result:?}");
    assert!(accepted_patches(&h, &fine)
        .iter()
        .any(|b| b.get("otherMails").is_some()));
}

fn hr_file(dir: &std::path::Path, text: &str) -> HrFile {
    let path = dir.join("hr.csv");
    std::fs::write(&path, text).expect("write");
    HrFile::open(&path).expect("a valid HR file")
}

#[tokio::test]
async fn the_report_lists_hr_records_that_matched_no_in_scope_user() {
    let mut h = Harness::start(tiny_tenant(), &[]).await;
    let a = h.sandbox.upsert_user(new_hire(1)).expect("user");
    let mut cloud_only = new_hire(2);
    cloud_only["onPremisesSyncEnabled"] = json!(null);
    h.sandbox.upsert_user(cloud_only).expect("user");
    let dir = tempfile::tempdir().expect("tempdir");
    let file = hr_file(
        dir.path(),
        "employeeId,personalEmail,country\n\
         NH00001,jane.private@mail.example,DE\n\
         NH00002,cloud.only@mail.example,FR\n\
         NH99999,not.synced.yet@mail.example,FR\n\
         ,blank.id@mail.example,FR\n\
         nh00007 ,typo@mail.example,DE\n",
    );
    h.ctx.hr = HrSource::File(Arc::new(file.clone()));
    let summary = run_backfill(&h.ctx, &BackfillOptions::default(), &NoProgress)
        .await
        .expect("backfill");
    let counts = summary.hr_file.clone().expect("HR file counts");
    assert_eq!(
        (
            counts.records,
            counts.matched,
            counts.unmatched,
            counts.blank_employee_ids
        ),
        (5, 1, 3, 1)
    );
    assert!(accepted_patches(&h, &a)
        .iter()
        .any(|b| b["otherMails"] == json!(["jane.private@mail.example"])));

    let report = dir.path().join("reports").join("run.json");
    std::fs::create_dir_all(report.parent().expect("parent")).expect("mkdir");
    let listing = unmatched_path(&report);
    write_unmatched(&file, &summary, &listing, false).expect("listing");
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt as _;
        let mode = std::fs::metadata(&listing)
            .expect("listing")
            .permissions()
            .mode();
        assert_eq!(
            mode & 0o077,
            0,
            "the listing is readable by its owner only: {mode:o}"
        );
    }
    let text = std::fs::read_to_string(&listing).expect("read listing");
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("line,employeeId,personalEmail,reason"));
    let rows: Vec<Vec<String>> = lines
        .map(|l| {
            csv::ReaderBuilder::new()
                .has_headers(false)
                .from_reader(l.as_bytes())
                .records()
                .next()
                .expect("row")
                .expect("csv")
                .iter()
                .map(str::to_string)
                .collect()
        })
        .collect();
    let listed: Vec<(&str, &str)> = rows
        .iter()
        .map(|r| (r[0].as_str(), r[1].as_str()))
        .collect();
    // The out-of-scope (cloud-only) user does not count as a match.
    assert_eq!(
        listed,
        vec![("3", "NH00002"), ("4", "NH99999"), ("6", "nh00007")]
    );
    assert!(
        !text.contains("not.synced.yet@"),
        "personal emails are masked: {text}"
    );
    assert!(rows.iter().all(|r| r[3].contains("no in-scope Entra user")));
}

#[tokio::test]
async fn a_ragged_row_deep_in_the_file_stops_the_backfill_before_any_write() {
    let mut h = Harness::start(tiny_tenant(), &[]).await;
    for n in 1..=3 {
        h.sandbox.upsert_user(new_hire(n)).expect("user");
    }
    let dir = tempfile::tempdir().expect("tempdir");
    // Opening reads the header and the first row; the shifted row is found by the full read, which
    // ends before the first write.
    let file = hr_file(
        dir.path(),
        "employeeId,Name,managerEmail,personalEmail,country\n\
         NH00001,\"Roe, Richard\",boss.private@mail.example,rich.private@mail.example,DE\n\
         NH00002,Doe, Jane,boss.private@mail.example,jane.private@mail.example,DE\n\
         NH00003,Poe,boss.private@mail.example,poe.private@mail.example,DE\n",
    );
    h.ctx.hr = HrSource::File(Arc::new(file));
    let err = run_backfill(&h.ctx, &BackfillOptions::default(), &NoProgress)
        .await
        .expect_err("a ragged row refuses the file");
    let text = err.to_string();
    assert!(
        text.contains("line 3") && text.contains("unquoted comma or quote"),
        "{text}"
    );
    assert!(!text.contains("private@"), "{text}");
    assert!(patches(&h.sandbox).is_empty(), "nothing is written");
}

#[tokio::test]
async fn audit_mask_prints_the_log_with_every_personal_email_masked() {
    let h = Harness::start(tiny_tenant(), &[]).await;
    let mut hire = new_hire(1);
    hire["otherMails"] = json!(["old.private@mail.example"]);
    h.sandbox.upsert_user(hire).expect("user");
    let summary = run_backfill(&h.ctx, &BackfillOptions::default(), &NoProgress)
        .await
        .expect("backfill");
    let records = entra_enrich::handlers::audit::read_run(h.ctx.state.as_ref(), &summary.run_id)
        .await
        .expect("audit log");
    let full = entra_enrich::adapters::cli::render_audit(&records, false);
    assert!(
        full.contains("old.private@mail.example") && full.contains("private.hire1@mail.example"),
        "{full}"
    );
    let masked = entra_enrich::adapters::cli::render_audit(&records, true);
    assert_eq!(masked.lines().count(), full.lines().count());
    assert!(
        !masked.contains("private@") && !masked.contains("private.hire1@"),
        "{masked}"
    );
    assert!(masked.contains("o***@m***.example"), "{masked}");
    assert!(
        masked.contains(summary.run_id.as_str()) && masked.contains("\"property\":\"otherMails\"")
    );
}

#[tokio::test]
async fn two_new_hires_given_one_address_at_the_same_moment_get_it_once() {
    // Two handlers (two joiner callouts, or the joiner and the watch) on two different new hires
    // whose HR records carry the same personal email: neither can see the other's write when it
    // asks Graph who holds the address, unless the address itself is claimed.
    let h = Harness::start(tiny_tenant(), &[]).await;
    let a = h
        .sandbox
        .upsert_user(hire_with_personal_email(1, "one.address@mail.example"))
        .expect("user");
    let b = h
        .sandbox
        .upsert_user(hire_with_personal_email(2, "One.Address@mail.example"))
        .expect("user");
    h.sandbox.set_faults(vec![entra_sandbox::FaultRule::new(
        "* /v1.0/**",
        entra_sandbox::FaultTrigger::EveryNth(1),
        entra_sandbox::FaultAction::Latency(std::time::Duration::from_millis(40)),
    )]);
    let enrich = |id: String, run: &'static str| {
        let ctx = h.ctx.clone();
        async move {
            let audit = AuditLog::new(ctx.state.clone(), RunId::new(), "lcw-joiner");
            let claims = Claims::new(ctx.state.clone(), "lcw-joiner", run);
            let wait = WhenBusy::Wait(std::time::Duration::from_secs(5));
            enrich_user(&ctx, &audit, &claims, &UserRef::Id(id), wait)
                .await
                .expect("enrich")
        }
    };
    let (ra, rb) = tokio::join!(
        enrich(a.clone(), "callout-a"),
        enrich(b.clone(), "callout-b")
    );
    let given: Vec<&String> = [&a, &b]
        .into_iter()
        .filter(|id| {
            accepted_patches(&h, id)
                .iter()
                .any(|p| p.get("otherMails").is_some())
        })
        .collect();
    assert_eq!(
        given.len(),
        1,
        "the address went to {given:?}: {ra:?} {rb:?}"
    );
    let other = if given[0] == &a { &rb } else { &ra };
    assert!(
        other
            .issues
            .iter()
            .any(|i| i.field == "otherMails" && i.reason.contains("another user's"))
            || matches!(other.outcome, entra_core::Outcome::InvalidValue { .. }),
        "{other:?}"
    );
}
