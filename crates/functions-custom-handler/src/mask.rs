//! A small, dependency-free email mask. The application may install a stricter one with
//! [`crate::init_tracing`]; this is the default so that nothing unmasked ever leaves the process.

/// Masks one address: `jane.doe@example.com` → `j***@e***.com`. Input without a usable `@` is
/// masked whole (`***`).
pub fn mask_email(raw: &str) -> String {
    let Some((local, domain)) = raw.trim().rsplit_once('@') else {
        return "***".to_string();
    };
    let first_local: String = local.chars().take(1).collect();
    let (host, tld) = match domain.rsplit_once('.') {
        Some((h, t)) if !t.is_empty() && t.len() <= 10 => (h, format!(".{t}")),
        _ => (domain, String::new()),
    };
    let first_host: String = host.chars().take(1).collect();
    format!("{first_local}***@{first_host}***{tld}")
}

/// Replaces every address-looking token in `text` with its masked form.
pub fn mask_emails(text: &str) -> String {
    if !text.contains('@') {
        return text.to_string();
    }
    let mut out = String::with_capacity(text.len());
    let mut token = String::new();
    let flush = |token: &mut String, out: &mut String| {
        let looks_like_address = token
            .split_once('@')
            .is_some_and(|(l, d)| !l.is_empty() && !d.is_empty());
        if looks_like_address {
            out.push_str(&mask_email(token));
        } else {
            out.push_str(token);
        }
        token.clear();
    };
    for ch in text.chars() {
        // `=` and `'` are legal in a local part but in log lines they are almost always
        // `key=value` / quoting, so they end a token (`subject=jane@x.com` keeps its key).
        if ch.is_alphanumeric() || "._%+-@!#$&*?^`{|}~".contains(ch) {
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
    fn masks_addresses_in_text_and_leaves_the_rest() {
        assert_eq!(
            mask_emails("user \"jane.doe@example.com\" ok, a@b subject=x.y@z.org"),
            "user \"j***@e***.com\" ok, a***@b*** subject=x***@z***.org"
        );
        assert_eq!(mask_emails("no address @ here"), "no address @ here");
        assert_eq!(mask_emails(""), "");
    }
}
