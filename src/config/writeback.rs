//! `ENRICH_WORKDAY_WRITEBACK` and its settings: what a joiner's Entra account gives back to Workday,
//! where Workday Web Services are, and when.

use super::workday::{read_basic, WorkdayAuthSetting};
use super::{setting, Reader};

/// What is written back, and from which Entra property.
#[derive(Debug, Clone)]
pub struct WritebackSettings {
    /// The work email (`Change_Work_Contact_Information`).
    pub email: bool,
    /// The Workday username (`Workday_Account_for_Worker_Update`).
    pub user_name: bool,
    pub email_from: WorkEmailFrom,
    pub user_name_form: UserNameForm,
    pub from: WritebackFrom,
    /// `ENRICH_WORKDAY_WWS_URL`, checked when the client is built.
    pub wws_url: String,
    /// Always Basic: a WS-Security UsernameToken takes the ISU's password.
    pub auth: WorkdayAuthSetting,
}

/// `ENRICH_WORKDAY_WRITEBACK_EMAIL`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WorkEmailFrom {
    /// `mail`, or the UPN when `mail` is empty.
    Mail,
    UserPrincipalName,
}

/// `ENRICH_WORKDAY_WRITEBACK_USERNAME`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UserNameForm {
    Upn,
    /// The UPN before its `@`.
    LocalPart,
}

/// `ENRICH_WORKDAY_WRITEBACK_FROM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum WritebackFrom {
    /// As soon as the account exists.
    Created,
    /// Not before the user's `employeeHireDate`.
    HireDate,
}

/// The writeback settings; `None` when it is off.
pub(super) fn read_writeback(r: &mut Reader<'_>) -> Option<WritebackSettings> {
    let (email, user_name) = read_switch(r)?;
    let wws_url = r
        .value(&setting::ENRICH_WORKDAY_WWS_URL)
        .unwrap_or_default()
        .to_string();
    if wws_url.is_empty() {
        r.problem(
            setting::ENRICH_WORKDAY_WWS_URL.name,
            "is required with ENRICH_WORKDAY_WRITEBACK.",
            "set it to https://{host}/ccx/service/{tenant}/Human_Resources/v{NN.N} (Workday: Public Web Services > Human Resources > View WSDL gives the version).",
        );
    }
    let email_from = choose(
        r,
        &setting::ENRICH_WORKDAY_WRITEBACK_EMAIL,
        &[
            ("mail", WorkEmailFrom::Mail),
            ("userPrincipalName", WorkEmailFrom::UserPrincipalName),
        ],
    );
    let user_name_form = choose(
        r,
        &setting::ENRICH_WORKDAY_WRITEBACK_USERNAME,
        &[
            ("upn", UserNameForm::Upn),
            ("local-part", UserNameForm::LocalPart),
        ],
    );
    let from = choose(
        r,
        &setting::ENRICH_WORKDAY_WRITEBACK_FROM,
        &[
            ("created", WritebackFrom::Created),
            ("hire-date", WritebackFrom::HireDate),
        ],
    );
    let auth = read_basic(
        r,
        "is required with ENRICH_WORKDAY_WRITEBACK: Workday Web Services take the integration user's name and password (a WS-Security UsernameToken), also with OAuth for the report.",
    );
    Some(WritebackSettings {
        email,
        user_name,
        email_from,
        user_name_form,
        from,
        wws_url,
        auth,
    })
}

/// `off`, `email` or `email,username` (`username` alone too): `None` when off.
fn read_switch(r: &mut Reader<'_>) -> Option<(bool, bool)> {
    let s = &setting::ENRICH_WORKDAY_WRITEBACK;
    let raw = r.text(s).trim().to_ascii_lowercase();
    if raw == "off" {
        return None;
    }
    let (mut email, mut user_name) = (false, false);
    for part in raw.split(',').map(str::trim) {
        match part {
            "email" => email = true,
            "username" => user_name = true,
            _ => {
                r.problem(
                    s.name,
                    "must be `off`, `email` or `email,username`.",
                    "list what to write back: email (the primary WORK email), username, or both.",
                );
                return None;
            }
        }
    }
    Some((email, user_name))
}

/// The value of `s` among `choices` (case-insensitive), or the first with a problem.
fn choose<T: Copy>(r: &mut Reader<'_>, s: &setting::Setting, choices: &[(&str, T)]) -> T {
    let raw = r.text(s).trim().to_string();
    if let Some((_, v)) = choices.iter().find(|(n, _)| n.eq_ignore_ascii_case(&raw)) {
        return *v;
    }
    let names: Vec<&str> = choices.iter().map(|(n, _)| *n).collect();
    r.problem(
        s.name,
        format!("must be one of {}.", names.join(", ")),
        format!(
            "use {} (the default) or {}.",
            names[0],
            names[1..].join(", ")
        ),
    );
    choices[0].1
}
