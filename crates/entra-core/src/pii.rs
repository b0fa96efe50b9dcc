//! Masking of personal data before it reaches a log line, an error message or a report.

/// Masks an email address: keeps the first character of the local part and of the domain, and the
/// top-level domain. `jane.doe@example.com` → `j***@e***.com`. Anything that is not an address is
/// masked whole (`***`). Works on any input without panicking.
pub fn mask_email(raw: &str) -> String {
    let value = raw.trim();
    let Some((local, domain)) = value.rsplit_once('@') else {
        return "***".to_string();
    };
    let first_local = local.chars().next().map(String::from).unwrap_or_default();
    let (host, tld) = match domain.rsplit_once('.') {
        Some((h, t)) if !t.is_empty() && t.len() <= 10 => (h, format!(".{t}")),
        _ => (domain, String::new()),
    };
    let first_host = host.chars().next().map(String::from).unwrap_or_default();
    format!("{first_local}***@{first_host}***{tld}")
}

/// Replaces every email-address-looking token in free text with its masked form. Used as a last line
/// of defence on log lines and error messages that may quote upstream text.
pub fn mask_emails_in(text: &str) -> String {
    if !text.contains('@') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        if token.contains('@') && token.len() > 2 {
            // Quotes and sentence punctuation around an address are not part of it:
            // `'jane@x.com'.` → `'` + mask(`jane@x.com`) + `'.`
            let core = token.trim_matches(|c: char| !c.is_alphanumeric());
            let lead = token.len()
                - token
                    .trim_start_matches(|c: char| !c.is_alphanumeric())
                    .len();
            let tail_start = lead + core.len();
            out.push_str(token.get(..lead).unwrap_or_default());
            out.push_str(&mask_email(core));
            out.push_str(token.get(tail_start..).unwrap_or_default());
        } else {
            out.push_str(token);
        }
        token.clear();
    };
    for ch in text.chars() {
        // `=` is legal in a local part, but in log lines it is almost always `key=value`: it ends a
        // token, so `subject=jane@x.com` keeps its key and the address is still masked.
        let is_addr_char = ch.is_alphanumeric() || "._%+-@'!#$&*?^`{|}~".contains(ch);
        if is_addr_char {
            token.push(ch);
        } else {
            flush(&mut token, &mut out);
            out.push(ch);
        }
    }
    flush(&mut token, &mut out);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn masks_a_plain_address() {
        assert_eq!(mask_email("jane.doe@example.com"), "j***@e***.com");
    }

    #[test]
    fn masks_garbage_whole() {
        assert_eq!(mask_email("not an address"), "***");
        assert_eq!(mask_email(""), "***");
        assert_eq!(mask_email("@"), "***@***");
    }

    #[test]
    fn masks_addresses_inside_text() {
        let text = "value 'Jane.Doe@Example.com' refused; also bob@x.org.";
        let masked = mask_emails_in(text);
        assert!(!masked.contains("Jane.Doe"), "{masked}");
        assert!(!masked.contains("bob@"), "{masked}");
        assert!(masked.contains("J***@E***.com"), "{masked}");
    }

    #[test]
    fn a_log_field_keeps_its_key_and_loses_its_address() {
        assert_eq!(
            mask_emails_in("received subject=new.hire@contoso.com ok"),
            "received subject=n***@c***.com ok"
        );
        assert_eq!(mask_emails_in("no address @ here"), "no address @ here");
        assert_eq!(mask_emails_in(""), "");
    }

    #[test]
    fn accented_addresses_are_masked_without_panic() {
        let masked = mask_emails_in("josé.núñez@correo.es");
        assert!(!masked.contains("núñez"), "{masked}");
    }
}
