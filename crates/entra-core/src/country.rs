//! Country values from HR → the ISO 3166-1 alpha-2 code `usageLocation` needs.

use crate::patch::{CountryCode, InvalidValue};
use celes::Country;

const FIX: &str = "use an ISO 3166-1 alpha-2 code such as US, GB, DE (alpha-3 codes such as USA and English country names are accepted too)";

/// Resolves an HR country value to an alpha-2 [`CountryCode`].
///
/// Accepted, in this order (all case-, space-, punctuation- and diacritic-insensitive):
/// 1. an assigned alpha-2 code (`DE`, `gb`), or `UK` (ISO 3166's exceptionally reserved code for
///    the United Kingdom, common in HR data) → `GB`;
/// 2. an alpha-3 code (`DEU`, `USA`) or a numeric code (`276`);
/// 3. an English country name or common alias from the `celes` tables (`Germany`,
///    `United States of America`, `the Netherlands`, `united kingdom`, `Côte d'Ivoire`, `Türkiye`).
///
/// The error never echoes the input and names the fix.
pub fn resolve_country(raw: &str) -> Result<CountryCode, InvalidValue> {
    let value = raw.trim();
    if value.is_empty() {
        return Err(InvalidValue::new(format!("country is empty; {FIX}")));
    }
    if value.len() > 100 {
        return Err(InvalidValue::new(format!(
            "country is not recognised; {FIX}"
        )));
    }
    let letters_only = value.chars().all(|c| c.is_ascii_alphabetic());
    if letters_only && value.len() == 2 {
        if value.eq_ignore_ascii_case("UK") {
            return CountryCode::parse("GB");
        }
        if let Ok(code) = CountryCode::parse(value) {
            return Ok(code);
        }
    }
    if letters_only && value.len() == 3 {
        if let Ok(country) = Country::from_alpha3(value) {
            return CountryCode::parse(country.alpha2);
        }
    }
    if value.len() == 3 && value.chars().all(|c| c.is_ascii_digit()) {
        if let Ok(country) = Country::from_code(value) {
            return CountryCode::parse(country.alpha2);
        }
    }
    let key = normalise(value);
    if !key.is_empty() {
        let without_the = key.strip_prefix("the").unwrap_or(&key);
        let candidates = [
            Country::from_name(&key),
            Country::from_alias(&key),
            Country::from_name(format!("the{without_the}")),
            Country::from_alias(without_the),
        ];
        if let Some(country) = candidates.into_iter().flatten().next() {
            return CountryCode::parse(country.alpha2);
        }
    }
    Err(InvalidValue::new(format!(
        "country is not recognised; {FIX}"
    )))
}

/// Lower-case ASCII letters and digits only, with Latin diacritics folded (`Côte d'Ivoire` →
/// `cotedivoire`), which is the key form of celes' name and alias tables.
fn normalise(value: &str) -> String {
    let mut out = String::with_capacity(value.len());
    for ch in value.chars().flat_map(char::to_lowercase) {
        if ch.is_ascii_alphanumeric() {
            out.push(ch);
            continue;
        }
        let folded = match ch {
            'à' | 'á' | 'â' | 'ã' | 'ä' | 'å' | 'ā' | 'ă' | 'ą' => "a",
            'æ' => "ae",
            'ç' | 'ć' | 'č' | 'ĉ' | 'ċ' => "c",
            'ď' | 'đ' | 'ð' => "d",
            'è' | 'é' | 'ê' | 'ë' | 'ē' | 'ė' | 'ę' | 'ě' => "e",
            'ğ' | 'ġ' | 'ģ' => "g",
            'ì' | 'í' | 'î' | 'ï' | 'ī' | 'į' | 'ı' => "i",
            'ł' | 'ľ' | 'ļ' => "l",
            'ñ' | 'ń' | 'ň' | 'ņ' => "n",
            'ò' | 'ó' | 'ô' | 'õ' | 'ö' | 'ø' | 'ō' | 'ő' => "o",
            'œ' => "oe",
            'ř' => "r",
            'ś' | 'š' | 'ş' | 'ș' => "s",
            'ß' => "ss",
            'ť' | 'ţ' | 'ț' => "t",
            'þ' => "th",
            'ù' | 'ú' | 'û' | 'ü' | 'ū' | 'ů' | 'ű' | 'ų' => "u",
            'ý' | 'ÿ' => "y",
            'ź' | 'ż' | 'ž' => "z",
            _ => "",
        };
        out.push_str(folded);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(raw: &str) -> String {
        match resolve_country(raw) {
            Ok(c) => c.to_string(),
            Err(e) => format!("ERR {e}"),
        }
    }

    #[test]
    fn codes() {
        assert_eq!(code("DE"), "DE");
        assert_eq!(code(" gb "), "GB");
        assert_eq!(code("UK"), "GB");
        assert_eq!(code("DEU"), "DE");
        assert_eq!(code("usa"), "US");
        assert_eq!(code("276"), "DE");
    }

    #[test]
    fn names_and_aliases() {
        assert_eq!(code("Germany"), "DE");
        assert_eq!(code("united kingdom"), "GB");
        assert_eq!(
            code("United Kingdom of Great Britain and Northern Ireland"),
            "GB"
        );
        assert_eq!(code("United States of America"), "US");
        assert_eq!(code("United States"), "US");
        assert_eq!(code("Netherlands"), "NL");
        assert_eq!(code("The Netherlands"), "NL");
        assert_eq!(code("Côte d'Ivoire"), "CI");
        assert_eq!(code("Türkiye"), "TR");
        assert_eq!(code("ÅLAND ISLANDS"), "AX");
        assert_eq!(code("Russia"), "RU");
        assert_eq!(code("south korea"), "KR");
        assert_eq!(code("Czech Republic"), "CZ");
    }

    #[test]
    fn unknown_values_name_the_fix() {
        for raw in [
            "",
            "  ",
            "XX",
            "ZZZ",
            "999",
            "Atlantis",
            "jane@example.com",
            "Germanyland",
            &"a".repeat(500),
        ] {
            let err = resolve_country(raw).unwrap_err();
            let text = err.to_string();
            assert!(text.contains("such as US, GB, DE"), "{raw:?}: {text}");
            assert!(!text.contains("jane"), "{text}");
        }
    }
}
