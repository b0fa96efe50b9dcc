//! A small OData `$filter` parser and evaluator for the user properties the product uses.
//! Supported forms follow the users filter table
//! (https://learn.microsoft.com/graph/api/user-list and
//! https://learn.microsoft.com/graph/aad-advanced-queries): `eq`, `in`, `startsWith` by default;
//! `ne`, `not`, `endsWith`, `/$count` only as advanced queries.

use serde_json::{Map, Value};

#[derive(Debug, Clone, PartialEq)]
pub enum Lit {
    Str(String),
    Bool(bool),
    Null,
    Num(i64),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Expr {
    And(Box<Expr>, Box<Expr>),
    Or(Box<Expr>, Box<Expr>),
    Not(Box<Expr>),
    Eq(String, Lit),
    Ne(String, Lit),
    In(String, Vec<Lit>),
    StartsWith(String, String),
    EndsWith(String, String),
    /// `prop/$count eq n` (or `ne`).
    Count(String, bool, i64),
    /// `prop/any(x:x eq 'v')`.
    AnyEq(String, String),
}

/// Why a filter cannot be answered.
#[derive(Debug, Clone, PartialEq)]
pub enum FilterError {
    /// Syntax error (Graph: 400 `BadRequest` "Invalid filter clause").
    Syntax(String),
    /// Property/operator combination not supported (400 `Request_UnsupportedQuery`).
    Unsupported(String),
}

/// Properties filterable with default (non-advanced) queries.
const DEFAULT_FILTERABLE: &[&str] = &[
    "id",
    "userPrincipalName",
    "employeeId",
    "onPremisesSyncEnabled",
    "mail",
    "displayName",
    "givenName",
    "surname",
    "usageLocation",
    "accountEnabled",
    "userType",
    "jobTitle",
    "otherMails",
    "createdDateTime",
];

fn is_filterable(p: &str) -> bool {
    DEFAULT_FILTERABLE.contains(&p)
        || p.starts_with("onPremisesExtensionAttributes/extensionAttribute")
}

/// Whether a parsed filter needs `ConsistencyLevel: eventual` + `$count=true`.
/// `onPremisesExtensionAttributes` filters are advanced-only per the filter table.
pub fn is_advanced(e: &Expr) -> bool {
    match e {
        Expr::And(a, b) | Expr::Or(a, b) => is_advanced(a) || is_advanced(b),
        Expr::Not(_) | Expr::Ne(..) | Expr::EndsWith(..) | Expr::Count(..) => true,
        Expr::Eq(p, _) | Expr::In(p, _) | Expr::StartsWith(p, _) => {
            p.starts_with("onPremisesExtensionAttributes/")
        }
        Expr::AnyEq(..) => false,
    }
}

/// The operator name Graph mentions in its "not supported" message.
pub fn first_advanced_operator(e: &Expr) -> Option<&'static str> {
    match e {
        Expr::And(a, b) | Expr::Or(a, b) => {
            first_advanced_operator(a).or_else(|| first_advanced_operator(b))
        }
        Expr::Not(_) => Some("not"),
        Expr::Ne(..) => Some("ne"),
        Expr::EndsWith(..) => Some("endsWith"),
        Expr::Count(..) => Some("$count"),
        Expr::Eq(p, _) | Expr::In(p, _) | Expr::StartsWith(p, _)
            if p.starts_with("onPremisesExtensionAttributes/") =>
        {
            Some("eq")
        }
        _ => None,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Tok {
    Ident(String),
    Str(String),
    Num(i64),
    LParen,
    RParen,
    Comma,
    Colon,
}

fn tokenize(s: &str) -> Result<Vec<Tok>, FilterError> {
    let chars: Vec<char> = s.chars().collect();
    let mut i = 0;
    let mut out = Vec::new();
    while i < chars.len() {
        let c = chars[i];
        match c {
            ' ' | '\t' => i += 1,
            '(' => {
                out.push(Tok::LParen);
                i += 1
            }
            ')' => {
                out.push(Tok::RParen);
                i += 1
            }
            ',' => {
                out.push(Tok::Comma);
                i += 1
            }
            ':' => {
                out.push(Tok::Colon);
                i += 1
            }
            '\'' => {
                let mut v = String::new();
                i += 1;
                loop {
                    match chars.get(i) {
                        None => {
                            return Err(FilterError::Syntax("unterminated string literal".into()))
                        }
                        Some('\'') if chars.get(i + 1) == Some(&'\'') => {
                            v.push('\'');
                            i += 2;
                        }
                        Some('\'') => {
                            i += 1;
                            break;
                        }
                        Some(ch) => {
                            v.push(*ch);
                            i += 1;
                        }
                    }
                }
                out.push(Tok::Str(v));
            }
            c if c.is_ascii_digit() || c == '-' => {
                let start = i;
                i += 1;
                while i < chars.len() && chars[i].is_ascii_digit() {
                    i += 1;
                }
                let text: String = chars[start..i].iter().collect();
                let n = text
                    .parse()
                    .map_err(|_| FilterError::Syntax(format!("bad number {text}")))?;
                out.push(Tok::Num(n));
            }
            c if c.is_alphanumeric() || c == '$' || c == '_' || c == '/' || c == '.' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_alphanumeric() || matches!(chars[i], '$' | '_' | '/' | '.'))
                {
                    i += 1;
                }
                out.push(Tok::Ident(chars[start..i].iter().collect()));
            }
            other => {
                return Err(FilterError::Syntax(format!(
                    "unexpected character '{other}'"
                )))
            }
        }
    }
    Ok(out)
}

struct Parser {
    toks: Vec<Tok>,
    pos: usize,
}

impl Parser {
    fn peek(&self) -> Option<&Tok> {
        self.toks.get(self.pos)
    }
    fn next(&mut self) -> Option<Tok> {
        let t = self.toks.get(self.pos).cloned();
        self.pos += 1;
        t
    }
    fn expect(&mut self, t: Tok) -> Result<(), FilterError> {
        match self.next() {
            Some(x) if x == t => Ok(()),
            other => Err(FilterError::Syntax(format!(
                "expected {t:?}, found {other:?}"
            ))),
        }
    }
    fn keyword(&self, kw: &str) -> bool {
        matches!(self.peek(), Some(Tok::Ident(s)) if s.eq_ignore_ascii_case(kw))
    }
    fn or(&mut self) -> Result<Expr, FilterError> {
        let mut l = self.and()?;
        while self.keyword("or") {
            self.pos += 1;
            let r = self.and()?;
            l = Expr::Or(Box::new(l), Box::new(r));
        }
        Ok(l)
    }
    fn and(&mut self) -> Result<Expr, FilterError> {
        let mut l = self.unary()?;
        while self.keyword("and") {
            self.pos += 1;
            let r = self.unary()?;
            l = Expr::And(Box::new(l), Box::new(r));
        }
        Ok(l)
    }
    fn unary(&mut self) -> Result<Expr, FilterError> {
        if self.keyword("not") {
            self.pos += 1;
            return Ok(Expr::Not(Box::new(self.unary()?)));
        }
        self.primary()
    }
    fn literal(&mut self) -> Result<Lit, FilterError> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(Lit::Str(s)),
            Some(Tok::Num(n)) => Ok(Lit::Num(n)),
            Some(Tok::Ident(s)) if s == "true" => Ok(Lit::Bool(true)),
            Some(Tok::Ident(s)) if s == "false" => Ok(Lit::Bool(false)),
            Some(Tok::Ident(s)) if s == "null" => Ok(Lit::Null),
            other => Err(expected("a literal", &other)),
        }
    }
    /// The next token as an identifier; `what` names it in the error.
    fn ident(&mut self, what: &str) -> Result<String, FilterError> {
        match self.next() {
            Some(Tok::Ident(s)) => Ok(s),
            other => Err(expected(what, &other)),
        }
    }
    /// The next token as a string literal.
    fn string(&mut self) -> Result<String, FilterError> {
        match self.next() {
            Some(Tok::Str(s)) => Ok(s),
            other => Err(expected("a string", &other)),
        }
    }
    /// The next token as a number.
    fn number(&mut self) -> Result<i64, FilterError> {
        match self.next() {
            Some(Tok::Num(n)) => Ok(n),
            other => Err(expected("a number", &other)),
        }
    }
    /// `( expr )`, a function call, a lambda, or a comparison.
    fn primary(&mut self) -> Result<Expr, FilterError> {
        match self.next() {
            Some(Tok::LParen) => {
                let e = self.or()?;
                self.expect(Tok::RParen)?;
                Ok(e)
            }
            Some(Tok::Ident(name)) => {
                let lname = name.to_ascii_lowercase();
                if (lname == "startswith" || lname == "endswith")
                    && self.peek() == Some(&Tok::LParen)
                {
                    self.pos += 1;
                    return self.string_function(lname == "startswith");
                }
                if let Some(prop) = name.strip_suffix("/any") {
                    return self.any_eq(prop);
                }
                let op = self.ident("an operator")?.to_ascii_lowercase();
                if let Some(prop) = name.strip_suffix("/$count") {
                    return self.count(prop, &op);
                }
                self.comparison(name, &op)
            }
            other => Err(FilterError::Syntax(format!("unexpected token {other:?}"))),
        }
    }
    /// `startswith(prop, 'v')` / `endswith(prop, 'v')`, after the opening parenthesis.
    fn string_function(&mut self, starts: bool) -> Result<Expr, FilterError> {
        let prop = self.ident("a property")?;
        self.expect(Tok::Comma)?;
        let v = self.string()?;
        self.expect(Tok::RParen)?;
        check_prop(&prop)?;
        Ok(if starts {
            Expr::StartsWith(prop, v)
        } else {
            Expr::EndsWith(prop, v)
        })
    }
    /// `otherMails/any(x:x eq 'v')`, after `prop/any`.
    fn any_eq(&mut self, prop: &str) -> Result<Expr, FilterError> {
        self.expect(Tok::LParen)?;
        let var = self.ident("a lambda variable")?;
        self.expect(Tok::Colon)?;
        match self.next() {
            Some(Tok::Ident(v)) if v == var => {}
            other => return Err(expected(&var, &other)),
        }
        if !self.keyword("eq") {
            return Err(FilterError::Unsupported(prop.to_string()));
        }
        self.pos += 1;
        let v = self.string()?;
        self.expect(Tok::RParen)?;
        check_prop(prop)?;
        Ok(Expr::AnyEq(prop.to_string(), v))
    }
    /// `prop/$count eq n` / `ne n`, after the operator.
    fn count(&mut self, prop: &str, op: &str) -> Result<Expr, FilterError> {
        check_prop(prop)?;
        let n = self.number()?;
        match op {
            "eq" => Ok(Expr::Count(prop.to_string(), true, n)),
            "ne" => Ok(Expr::Count(prop.to_string(), false, n)),
            _ => Err(FilterError::Unsupported(prop.to_string())),
        }
    }
    /// `prop eq|ne literal` or `prop in (literal, ...)`, after the operator.
    fn comparison(&mut self, name: String, op: &str) -> Result<Expr, FilterError> {
        check_prop(&name)?;
        match op {
            "eq" => Ok(Expr::Eq(name, self.literal()?)),
            "ne" => Ok(Expr::Ne(name, self.literal()?)),
            "in" => {
                self.expect(Tok::LParen)?;
                let mut items = vec![self.literal()?];
                while self.peek() == Some(&Tok::Comma) {
                    self.pos += 1;
                    items.push(self.literal()?);
                }
                self.expect(Tok::RParen)?;
                Ok(Expr::In(name, items))
            }
            "ge" | "le" | "gt" | "lt" | "has" => Err(FilterError::Unsupported(name)),
            other => Err(FilterError::Syntax(format!("unknown operator {other}"))),
        }
    }
}

/// `expected {what}, found {found:?}`, the parser's syntax error.
fn expected(what: &str, found: &Option<Tok>) -> FilterError {
    FilterError::Syntax(format!("expected {what}, found {found:?}"))
}

fn check_prop(p: &str) -> Result<(), FilterError> {
    if is_filterable(p) {
        Ok(())
    } else {
        Err(FilterError::Unsupported(p.to_string()))
    }
}

/// Parses a `$filter` expression.
pub fn parse(s: &str) -> Result<Expr, FilterError> {
    let toks = tokenize(s)?;
    if toks.is_empty() {
        return Err(FilterError::Syntax("empty filter".into()));
    }
    let mut p = Parser { toks, pos: 0 };
    let e = p.or()?;
    if p.pos != p.toks.len() {
        return Err(FilterError::Syntax("trailing tokens".into()));
    }
    Ok(e)
}

fn lookup<'a>(user: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    let mut parts = path.split('/');
    let first = parts.next()?;
    let mut v = user.get(first)?;
    for p in parts {
        v = v.get(p)?;
    }
    Some(v)
}

fn lit_matches(v: Option<&Value>, lit: &Lit) -> bool {
    match (v, lit) {
        (None | Some(Value::Null), Lit::Null) => true,
        // Directory string comparisons are case-insensitive.
        (Some(Value::String(s)), Lit::Str(l)) => s.eq_ignore_ascii_case(l),
        (Some(Value::Bool(b)), Lit::Bool(l)) => b == l,
        (Some(Value::Number(n)), Lit::Num(l)) => n.as_i64() == Some(*l),
        (Some(Value::Array(a)), l) => a.iter().any(|x| lit_matches(Some(x), l)),
        _ => false,
    }
}

fn str_pred(v: Option<&Value>, f: &dyn Fn(&str) -> bool) -> bool {
    match v {
        Some(Value::String(s)) => f(s),
        Some(Value::Array(a)) => a.iter().any(|x| x.as_str().is_some_and(f)),
        _ => false,
    }
}

/// Evaluates the filter against a stored user.
pub fn eval(e: &Expr, user: &Map<String, Value>) -> bool {
    match e {
        Expr::And(a, b) => eval(a, user) && eval(b, user),
        Expr::Or(a, b) => eval(a, user) || eval(b, user),
        Expr::Not(a) => !eval(a, user),
        Expr::Eq(p, l) => lit_matches(lookup(user, p), l),
        Expr::Ne(p, l) => !lit_matches(lookup(user, p), l),
        Expr::In(p, ls) => ls.iter().any(|l| lit_matches(lookup(user, p), l)),
        Expr::StartsWith(p, s) => {
            let s = s.to_lowercase();
            str_pred(lookup(user, p), &|v| v.to_lowercase().starts_with(&s))
        }
        Expr::EndsWith(p, s) => {
            let s = s.to_lowercase();
            str_pred(lookup(user, p), &|v| v.to_lowercase().ends_with(&s))
        }
        Expr::Count(p, eq, n) => {
            let c = match lookup(user, p) {
                Some(Value::Array(a)) => a.len() as i64,
                _ => 0,
            };
            (c == *n) == *eq
        }
        Expr::AnyEq(p, s) => str_pred(lookup(user, p), &|v| v.eq_ignore_ascii_case(s)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user() -> Map<String, Value> {
        match json!({"employeeId":"E1","onPremisesSyncEnabled":true,"otherMails":[],"id":"a",
                     "onPremisesExtensionAttributes":{"extensionAttribute1":"x@y.z"}})
        {
            Value::Object(m) => m,
            _ => Map::new(),
        }
    }

    #[test]
    fn parses_and_evaluates() {
        let u = user();
        for (f, want, adv) in [
            ("employeeId eq 'E1'", true, false),
            ("employeeId eq 'e1'", true, false),
            ("employeeId in ('A','E1')", true, false),
            ("startsWith(employeeId,'E')", true, false),
            ("onPremisesSyncEnabled eq true and id eq 'a'", true, false),
            ("onPremisesSyncEnabled eq null or id eq 'b'", false, false),
            ("employeeId ne 'E1'", false, true),
            ("not(employeeId eq 'E1')", false, true),
            ("otherMails/$count eq 0", true, true),
            ("endsWith(employeeId,'1')", true, true),
            (
                "onPremisesExtensionAttributes/extensionAttribute1 eq 'x@y.z'",
                true,
                true,
            ),
        ] {
            let e = parse(f).unwrap_or_else(|err| panic!("{f}: {err:?}"));
            assert_eq!(eval(&e, &u), want, "{f}");
            assert_eq!(is_advanced(&e), adv, "{f}");
        }
        assert!(matches!(
            parse("employeeId eq"),
            Err(FilterError::Syntax(_))
        ));
        assert!(matches!(
            parse("foo eq 'x'"),
            Err(FilterError::Unsupported(_))
        ));
        assert!(matches!(
            parse("employeeId gt 'x'"),
            Err(FilterError::Unsupported(_))
        ));
    }
}
