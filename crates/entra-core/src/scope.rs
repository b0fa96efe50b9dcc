//! `ENRICH_SCOPE`: which directory users entra-enrich may touch.
//!
//! # Syntax
//!
//! A readable form of the Microsoft Entra provisioning *scoping filter*
//! (<https://learn.microsoft.com/entra/identity/app-provisioning/define-conditional-rules-for-provisioning-user-accounts>):
//!
//! ```text
//! filter := group ( OR group )*          -- a user is in scope if any group matches
//! group  := clause ( AND clause )*       -- a group matches if every clause matches
//! clause := attribute operator [value]
//! ```
//!
//! `AND` binds tighter than `OR`; there are no parentheses (write `(a OR b) AND c` as
//! `a AND c OR b AND c`). Keywords are case-insensitive. `attribute` is a [`PropertyPath`]
//! (`department`, `onPremisesExtensionAttributes.extensionAttribute3`).
//!
//! | Operator | Aliases | Value |
//! |---|---|---|
//! | `EQUALS` | `eq` | string, integer, `true`/`false`/`null` |
//! | `NOT EQUALS` | `ne` | string, integer, `true`/`false`/`null` |
//! | `IS TRUE`, `IS FALSE`, `IS NULL`, `IS NOT NULL` | | none |
//! | `REGEX MATCH`, `NOT REGEX MATCH` | | quoted pattern |
//! | `GREATER THAN` | `gt`, `GREATER_THAN` | integer |
//! | `LESS THAN` | `lt`, `LESS_THAN` | integer |
//!
//! Underscore spellings of the multi-word operators (`IS_NOT_NULL`, `NOT_REGEX_MATCH`, …) are
//! accepted too. Values are `true`, `false`, `null`, an integer, or a string in single or double
//! quotes. Inside quotes, `\'` (or `\"`) is the quote character and `\\` a backslash; any other
//! backslash is kept as written, so regular expressions need no doubling (`'^\d+$'`).
//!
//! # Semantics (as Entra documents them)
//!
//! * `EQUALS` / `NOT EQUALS` on a string compare **case-sensitively** ("matches the input string
//!   value exactly (case sensitive)"). `eq`/`ne` are plain aliases and are case-sensitive too, unlike
//!   Graph's `$filter` — the Graph pre-filter is therefore only ever a superset.
//! * `REGEX MATCH` is case-sensitive and unanchored (like .NET `Regex.IsMatch`); anchor with `^…$`.
//!   Patterns are compiled once, when the filter is parsed.
//! * `GREATER THAN` / `LESS THAN` compare integers: the value must be an integer and the attribute must
//!   hold an integer (a JSON number or a string such as `"1000042"`); otherwise the clause is false.
//! * `IS TRUE` / `IS FALSE` need a Boolean (JSON `true`/`false`, or the string `"true"`/`"false"`, any
//!   case). A missing attribute is neither true nor false.
//! * "Scoping filters will return false if the value is null / empty": every operator except
//!   `IS NULL` is false on a missing, `null`, blank-string or empty-collection attribute — including
//!   `NOT EQUALS` and `NOT REGEX MATCH`. This errs on the side of touching fewer users.
//! * "Filtering is not supported for multi-valued attributes": on a collection or an object only
//!   `IS NULL` / `IS NOT NULL` can be true.
//! * `EQUALS true|false|null` is normalised to `IS TRUE|IS FALSE|IS NULL` (and `NOT EQUALS` to the
//!   opposite), so `onPremisesSyncEnabled eq true` displays as `onPremisesSyncEnabled IS TRUE`.

use crate::path::PropertyPath;
use crate::pii::mask_emails_in;
use crate::user::UserRecord;
use regex::Regex;
use serde_json::Value;
use std::fmt;

/// The default scope: users synchronised from on-premises AD (hybrid users).
pub const DEFAULT_SCOPE: &str = "onPremisesSyncEnabled eq true";

/// A refused `ENRICH_SCOPE`. The message names the clause (1-based, counted across the whole
/// filter) or the character position, what was expected, and how to fix it. Any email-looking text
/// quoted from the filter is masked.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{}", self.render())]
pub struct ScopeError {
    clause: Option<usize>,
    position: usize,
    snippet: String,
    message: String,
}

impl ScopeError {
    /// The 1-based clause number the error is in, when it is inside a clause.
    pub fn clause(&self) -> Option<usize> {
        self.clause
    }

    /// The 1-based character position where the problem was found.
    pub fn position(&self) -> usize {
        self.position
    }

    /// What is wrong and how to fix it, without the location prefix.
    pub fn message(&self) -> &str {
        &self.message
    }

    fn render(&self) -> String {
        match self.clause {
            Some(n) => format!(
                "ENRICH_SCOPE: clause {n} `{}`: {}",
                self.snippet, self.message
            ),
            None => format!(
                "ENRICH_SCOPE: at character {}: {}",
                self.position, self.message
            ),
        }
    }
}

/// A scoping operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    Equals,
    NotEquals,
    IsTrue,
    IsFalse,
    IsNull,
    IsNotNull,
    RegexMatch,
    NotRegexMatch,
    GreaterThan,
    LessThan,
}

impl Op {
    fn keyword(self) -> &'static str {
        match self {
            Op::Equals => "EQUALS",
            Op::NotEquals => "NOT EQUALS",
            Op::IsTrue => "IS TRUE",
            Op::IsFalse => "IS FALSE",
            Op::IsNull => "IS NULL",
            Op::IsNotNull => "IS NOT NULL",
            Op::RegexMatch => "REGEX MATCH",
            Op::NotRegexMatch => "NOT REGEX MATCH",
            Op::GreaterThan => "GREATER THAN",
            Op::LessThan => "LESS THAN",
        }
    }

    fn takes_value(self) -> bool {
        !matches!(self, Op::IsTrue | Op::IsFalse | Op::IsNull | Op::IsNotNull)
    }
}

/// Operator spellings: words (after splitting on `_`), upper-case.
const OPERATORS: &[(&[&str], Op)] = &[
    (&["EQUALS"], Op::Equals),
    (&["EQ"], Op::Equals),
    (&["NOT", "EQUALS"], Op::NotEquals),
    (&["NE"], Op::NotEquals),
    (&["IS", "TRUE"], Op::IsTrue),
    (&["IS", "FALSE"], Op::IsFalse),
    (&["IS", "NULL"], Op::IsNull),
    (&["IS", "NOT", "NULL"], Op::IsNotNull),
    (&["REGEX", "MATCH"], Op::RegexMatch),
    (&["NOT", "REGEX", "MATCH"], Op::NotRegexMatch),
    (&["GREATER", "THAN"], Op::GreaterThan),
    (&["GT"], Op::GreaterThan),
    (&["LESS", "THAN"], Op::LessThan),
    (&["LT"], Op::LessThan),
];

const OPERATOR_LIST: &str = "EQUALS, NOT EQUALS, IS TRUE, IS FALSE, IS NULL, IS NOT NULL, REGEX MATCH, NOT REGEX MATCH, GREATER THAN, LESS THAN (or eq, ne, gt, lt)";

#[derive(Debug, Clone, PartialEq, Eq)]
enum Literal {
    Str(String),
    Int(i64),
}

#[derive(Debug, Clone)]
struct Clause {
    path: PropertyPath,
    op: Op,
    value: Option<Literal>,
    regex: Option<Regex>,
}

impl PartialEq for Clause {
    fn eq(&self, other: &Self) -> bool {
        // The regex is derived from `value`.
        self.path == other.path && self.op == other.op && self.value == other.value
    }
}

/// A parsed `ENRICH_SCOPE`: OR-groups of AND-ed clauses. See the [module docs](self) for syntax and
/// semantics. `Display` gives the canonical form, which parses back to an equal filter.
#[derive(Debug, Clone, PartialEq)]
pub struct ScopeFilter {
    groups: Vec<Vec<Clause>>,
}

impl Default for ScopeFilter {
    /// Hybrid users: `onPremisesSyncEnabled IS TRUE` (what [`DEFAULT_SCOPE`] parses to).
    fn default() -> Self {
        Self {
            groups: vec![vec![Clause {
                path: PropertyPath::known("onPremisesSyncEnabled"),
                op: Op::IsTrue,
                value: None,
                regex: None,
            }]],
        }
    }
}

impl std::str::FromStr for ScopeFilter {
    type Err = ScopeError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl ScopeFilter {
    /// Parses an `ENRICH_SCOPE` value.
    pub fn parse(input: &str) -> Result<Self, ScopeError> {
        let tokens = lex(input)?;
        Parser {
            input,
            tokens,
            pos: 0,
            clause_no: 0,
            clause_first: 0,
        }
        .parse()
    }

    /// True when the user is in scope (some OR-group has all of its clauses true).
    pub fn matches(&self, user: &UserRecord) -> bool {
        self.groups
            .iter()
            .any(|group| group.iter().all(|clause| clause.matches(user)))
    }

    /// The top-level Graph properties the filter reads (for `$select`), in first-use order, without
    /// duplicates.
    pub fn properties(&self) -> Vec<String> {
        let mut out: Vec<String> = Vec::new();
        for clause in self.groups.iter().flatten() {
            let top = clause.path.top_level();
            if !out.iter().any(|p| p.eq_ignore_ascii_case(top)) {
                out.push(top.to_string());
            }
        }
        out
    }

    /// A Graph `$filter` that returns a superset of the in-scope users and needs no advanced query
    /// (`ConsistencyLevel: eventual`), or `None` when some OR-group has no clause that translates —
    /// then list all users and rely on [`ScopeFilter::matches`].
    ///
    /// Translated: `IS TRUE`/`IS FALSE` on `onPremisesSyncEnabled` or `accountEnabled` (→ `eq
    /// true|false`), and `EQUALS '<string>'` on a few string properties whose `eq` is a default
    /// filter (`employeeId`, `userPrincipalName`, `mail`, `userType`, `usageLocation`, …). Graph's
    /// `eq` is case-insensitive, EQUALS is case-sensitive, so the result is a superset.
    /// `matches` must still be applied to every returned user.
    pub fn graph_prefilter(&self) -> Option<String> {
        let mut groups: Vec<String> = Vec::new();
        for group in &self.groups {
            let parts: Vec<String> = group.iter().filter_map(Clause::to_graph).collect();
            if parts.is_empty() {
                return None;
            }
            let text = parts.join(" and ");
            if !groups.contains(&text) {
                groups.push(text);
            }
        }
        match groups.len() {
            0 => None,
            1 => groups.pop(),
            _ => Some(
                groups
                    .iter()
                    .map(|g| {
                        if g.contains(" and ") {
                            format!("({g})")
                        } else {
                            g.clone()
                        }
                    })
                    .collect::<Vec<_>>()
                    .join(" or "),
            ),
        }
    }
}

impl fmt::Display for ScopeFilter {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (g, group) in self.groups.iter().enumerate() {
            if g > 0 {
                f.write_str(" OR ")?;
            }
            for (c, clause) in group.iter().enumerate() {
                if c > 0 {
                    f.write_str(" AND ")?;
                }
                write!(f, "{} {}", clause.path, clause.op.keyword())?;
                match &clause.value {
                    Some(Literal::Int(n)) => write!(f, " {n}")?,
                    Some(Literal::Str(s)) => write!(f, " {}", quote(s))?,
                    None => {}
                }
            }
        }
        Ok(())
    }
}

/// Single-quotes `s` so that [`lex`] reads it back unchanged.
fn quote(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('\'');
    let chars: Vec<char> = s.chars().collect();
    for (i, &ch) in chars.iter().enumerate() {
        match ch {
            '\'' => out.push_str("\\'"),
            '\\' => {
                let next = chars.get(i + 1).copied();
                if matches!(next, None | Some('\\') | Some('\'')) {
                    out.push_str("\\\\");
                } else {
                    out.push('\\');
                }
            }
            _ => out.push(ch),
        }
    }
    out.push('\'');
    out
}

/// Properties translatable to a default-supported Graph `eq` on a string, canonical spelling.
const GRAPH_EQ_STRING: &[&str] = &[
    "employeeId",
    "userPrincipalName",
    "mail",
    "mailNickname",
    "userType",
    "usageLocation",
    "displayName",
    "givenName",
    "surname",
    "department",
    "jobTitle",
    "city",
    "country",
    "state",
];
/// Boolean properties with a default-supported Graph `eq`.
const GRAPH_EQ_BOOL: &[&str] = &["onPremisesSyncEnabled", "accountEnabled"];

fn canonical(name: &str, list: &[&'static str]) -> Option<&'static str> {
    list.iter().copied().find(|p| p.eq_ignore_ascii_case(name))
}

impl Clause {
    fn to_graph(&self) -> Option<String> {
        if self.path.segments().len() != 1 {
            return None;
        }
        let name = self.path.top_level();
        match (&self.op, &self.value) {
            (Op::IsTrue, _) => canonical(name, GRAPH_EQ_BOOL).map(|p| format!("{p} eq true")),
            (Op::IsFalse, _) => canonical(name, GRAPH_EQ_BOOL).map(|p| format!("{p} eq false")),
            (Op::Equals, Some(Literal::Str(s))) if !s.is_empty() => {
                canonical(name, GRAPH_EQ_STRING)
                    .map(|p| format!("{p} eq '{}'", s.replace('\'', "''")))
            }
            _ => None,
        }
    }

    fn matches(&self, user: &UserRecord) -> bool {
        let value = user.get(&self.path);
        let empty = is_empty(value);
        match self.op {
            Op::IsNull => return empty,
            Op::IsNotNull => return !empty,
            _ if empty => return false,
            _ => {}
        }
        let Some(value) = value else { return false };
        if matches!(value, Value::Array(_) | Value::Object(_)) {
            return false;
        }
        match self.op {
            Op::IsTrue => as_bool(value) == Some(true),
            Op::IsFalse => as_bool(value) == Some(false),
            Op::Equals => self.equals(value),
            Op::NotEquals => !self.equals(value),
            Op::RegexMatch => self.regex_matches(value),
            Op::NotRegexMatch => !self.regex_matches(value),
            Op::GreaterThan => match (&self.value, as_int(value)) {
                (Some(Literal::Int(n)), Some(v)) => v > *n,
                _ => false,
            },
            Op::LessThan => match (&self.value, as_int(value)) {
                (Some(Literal::Int(n)), Some(v)) => v < *n,
                _ => false,
            },
            Op::IsNull | Op::IsNotNull => false,
        }
    }

    fn equals(&self, value: &Value) -> bool {
        match &self.value {
            Some(Literal::Str(s)) => scalar_text(value).is_some_and(|t| t == *s),
            Some(Literal::Int(n)) => as_int(value) == Some(*n),
            None => false,
        }
    }

    fn regex_matches(&self, value: &Value) -> bool {
        match (&self.regex, scalar_text(value)) {
            (Some(re), Some(text)) => re.is_match(&text),
            _ => false,
        }
    }
}

fn is_empty(value: Option<&Value>) -> bool {
    match value {
        None | Some(Value::Null) => true,
        Some(Value::String(s)) => s.trim().is_empty(),
        Some(Value::Array(a)) => a.is_empty(),
        Some(Value::Object(o)) => o.is_empty(),
        Some(_) => false,
    }
}

fn as_bool(value: &Value) -> Option<bool> {
    match value {
        Value::Bool(b) => Some(*b),
        Value::String(s) if s.trim().eq_ignore_ascii_case("true") => Some(true),
        Value::String(s) if s.trim().eq_ignore_ascii_case("false") => Some(false),
        _ => None,
    }
}

fn as_int(value: &Value) -> Option<i64> {
    match value {
        Value::Number(n) => n.as_i64(),
        Value::String(s) => s.trim().parse().ok(),
        _ => None,
    }
}

fn scalar_text(value: &Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.clone()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

// ---------------------------------------------------------------------------------------------
// Lexer

#[derive(Debug, Clone, PartialEq)]
enum TokKind {
    Word(String),
    Str(String),
}

#[derive(Debug, Clone)]
struct Token {
    kind: TokKind,
    /// Byte offsets into the input.
    start: usize,
    end: usize,
}

impl Token {
    fn word(&self) -> Option<&str> {
        match &self.kind {
            TokKind::Word(w) => Some(w),
            TokKind::Str(_) => None,
        }
    }

    fn is_keyword(&self, kw: &str) -> bool {
        self.word().is_some_and(|w| w.eq_ignore_ascii_case(kw))
    }
}

fn char_position(input: &str, byte: usize) -> usize {
    input.get(..byte).map(|s| s.chars().count()).unwrap_or(0) + 1
}

fn lex(input: &str) -> Result<Vec<Token>, ScopeError> {
    let mut tokens = Vec::new();
    let mut chars = input.char_indices().peekable();
    while let Some(&(start, ch)) = chars.peek() {
        if ch.is_whitespace() {
            chars.next();
            continue;
        }
        if ch == '(' || ch == ')' {
            return Err(ScopeError {
                clause: None,
                position: char_position(input, start),
                snippet: String::new(),
                message: "parentheses are not supported; AND binds tighter than OR, so write `(a OR b) AND c` as `a AND c OR b AND c`".into(),
            });
        }
        if ch == '\'' || ch == '"' {
            let quote_char = ch;
            chars.next();
            let mut text = String::new();
            let mut closed = None;
            while let Some((i, c)) = chars.next() {
                if c == quote_char {
                    closed = Some(i + c.len_utf8());
                    break;
                }
                if c == '\\' {
                    match chars.peek() {
                        Some(&(_, n)) if n == quote_char || n == '\\' => {
                            text.push(n);
                            chars.next();
                        }
                        _ => text.push('\\'),
                    }
                } else {
                    text.push(c);
                }
            }
            let Some(end) = closed else {
                return Err(ScopeError {
                    clause: None,
                    position: char_position(input, start),
                    snippet: String::new(),
                    message: format!(
                        "the string starting here is never closed; add the closing {quote_char} (write \\{quote_char} for a quote inside the string)"
                    ),
                });
            };
            tokens.push(Token {
                kind: TokKind::Str(text),
                start,
                end,
            });
            continue;
        }
        let mut end = start;
        let mut word = String::new();
        while let Some(&(i, c)) = chars.peek() {
            if c.is_whitespace() || c == '\'' || c == '"' || c == '(' || c == ')' {
                break;
            }
            word.push(c);
            end = i + c.len_utf8();
            chars.next();
        }
        tokens.push(Token {
            kind: TokKind::Word(word),
            start,
            end,
        });
    }
    Ok(tokens)
}

// ---------------------------------------------------------------------------------------------
// Parser

struct Parser<'a> {
    input: &'a str,
    tokens: Vec<Token>,
    pos: usize,
    clause_no: usize,
    /// Index of the first token of the clause being parsed.
    clause_first: usize,
}

impl Parser<'_> {
    fn parse(mut self) -> Result<ScopeFilter, ScopeError> {
        if self.tokens.is_empty() {
            return Err(ScopeError {
                clause: None,
                position: 1,
                snippet: String::new(),
                message: format!(
                    "the filter is empty; to act on hybrid users write `{DEFAULT_SCOPE}`"
                ),
            });
        }
        let mut groups: Vec<Vec<Clause>> = vec![Vec::new()];
        loop {
            let clause = self.clause()?;
            if let Some(group) = groups.last_mut() {
                group.push(clause);
            }
            let Some(tok) = self.tokens.get(self.pos).cloned() else {
                break;
            };
            let joiner = if tok.is_keyword("AND") {
                "AND"
            } else if tok.is_keyword("OR") {
                "OR"
            } else {
                return Err(self.error_to(
                    tok.end,
                    format!(
                        "expected AND, OR or the end of the filter after the clause, found `{}`; quote values that contain spaces, e.g. 'New York'",
                        self.text(&tok)
                    ),
                ));
            };
            self.pos += 1;
            if self.pos >= self.tokens.len() {
                return Err(ScopeError {
                    clause: None,
                    position: char_position(self.input, tok.start),
                    snippet: String::new(),
                    message: format!(
                        "expected a clause after {joiner}; remove the trailing {joiner} or add a clause such as `employeeId IS NOT NULL`"
                    ),
                });
            }
            if joiner == "OR" {
                groups.push(Vec::new());
            }
        }
        Ok(ScopeFilter { groups })
    }

    fn text(&self, tok: &Token) -> &str {
        self.input.get(tok.start..tok.end).unwrap_or_default()
    }

    /// The end (byte offset) of the last consumed token.
    fn consumed_end(&self) -> usize {
        self.pos
            .checked_sub(1)
            .and_then(|i| self.tokens.get(i))
            .map(|t| t.end)
            .unwrap_or(0)
    }

    fn error_to(&self, end: usize, message: String) -> ScopeError {
        let start = self
            .tokens
            .get(self.clause_first)
            .map(|t| t.start)
            .unwrap_or(0);
        let snippet = self
            .input
            .get(start..end.max(start))
            .unwrap_or_default()
            .trim();
        ScopeError {
            clause: Some(self.clause_no),
            position: char_position(self.input, start),
            snippet: mask_emails_in(snippet),
            message: mask_emails_in(&message),
        }
    }

    fn clause(&mut self) -> Result<Clause, ScopeError> {
        self.clause_no += 1;
        self.clause_first = self.pos;
        let Some(attr) = self.tokens.get(self.pos).cloned() else {
            return Err(self.error_to(self.input.len(), "expected a clause".into()));
        };
        self.pos += 1;
        let path = match &attr.kind {
            TokKind::Str(_) => {
                return Err(self.error_to(
                    attr.end,
                    "expected an attribute name, found a quoted string; a clause is `attribute OPERATOR value`, e.g. `department EQUALS 'Sales'`".into(),
                ))
            }
            TokKind::Word(w) if w.eq_ignore_ascii_case("AND") || w.eq_ignore_ascii_case("OR") => {
                return Err(self.error_to(
                    attr.end,
                    format!(
                        "expected an attribute name, found {}; each AND/OR must sit between two clauses",
                        w.to_ascii_uppercase()
                    ),
                ))
            }
            TokKind::Word(w) => PropertyPath::parse(w).map_err(|e| {
                self.error_to(attr.end, format!("`{w}` is not an attribute name: {e}"))
            })?,
        };
        let op = self.operator(&path)?;
        let mut value = None;
        if op.takes_value() {
            value = Some(self.value(op)?);
        }
        self.finish_clause(path, op, value)
    }

    fn operator(&mut self, path: &PropertyPath) -> Result<Op, ScopeError> {
        // Up to three following word tokens, split on `_`, each sub-word tagged with its token.
        let mut words: Vec<(String, usize)> = Vec::new();
        for (k, tok) in self.tokens.iter().enumerate().skip(self.pos).take(3) {
            let Some(w) = tok.word() else { break };
            for part in w.split('_') {
                words.push((part.to_ascii_uppercase(), k));
            }
        }
        let mut best: Option<(usize, Op)> = None;
        for (phrase, op) in OPERATORS {
            let n = phrase.len();
            if words.len() < n {
                continue;
            }
            let matched = phrase.iter().zip(&words).all(|(p, (w, _))| p == w);
            // The phrase must end on a token boundary.
            let boundary = words.get(n).is_none_or(|(_, k)| *k != words[n - 1].1);
            if matched && boundary && best.is_none_or(|(len, _)| n > len) {
                best = Some((n, *op));
            }
        }
        if let Some((n, op)) = best {
            if let Some((_, last_tok)) = words.get(n - 1) {
                self.pos = last_tok + 1;
            }
            return Ok(op);
        }
        let end_of = |k: usize| {
            self.tokens
                .get(k)
                .map(|t| t.end)
                .unwrap_or(self.input.len())
        };
        let Some((first, first_tok)) = words.first().cloned() else {
            let end = match self.tokens.get(self.pos) {
                Some(t) => t.end,
                None => self.consumed_end(),
            };
            return Err(self.error_to(
                end,
                format!("expected an operator after `{path}`; use one of {OPERATOR_LIST}"),
            ));
        };
        let second = words.get(1).map(|(w, _)| w.as_str());
        let last_tok = words.last().map(|(_, k)| *k).unwrap_or(first_tok);
        let (message, upto) = match (first.as_str(), second) {
            ("IS", Some("NOT")) => (
                format!("expected NULL after IS NOT; write `{path} IS NOT NULL`"),
                last_tok.min(first_tok + 1),
            ),
            ("IS", _) => (
                "expected TRUE, FALSE, NULL or NOT NULL after IS".to_string(),
                first_tok,
            ),
            ("NOT", _) => (
                "expected EQUALS or REGEX MATCH after NOT".to_string(),
                first_tok,
            ),
            ("REGEX", _) => ("expected MATCH after REGEX".to_string(), first_tok),
            ("GREATER", _) | ("LESS", _) => (format!("expected THAN after {first}"), first_tok),
            _ => (
                format!(
                    "unknown operator `{}`; use one of {OPERATOR_LIST}",
                    self.tokens
                        .get(first_tok)
                        .map(|t| self.text(t))
                        .unwrap_or_default()
                ),
                first_tok,
            ),
        };
        Err(self.error_to(end_of(upto), message))
    }

    fn value(&mut self, op: Op) -> Result<ValueLit, ScopeError> {
        let kw = op.keyword();
        let Some(tok) = self.tokens.get(self.pos).cloned() else {
            return Err(self.error_to(
                self.consumed_end(),
                format!("expected a value after {kw}, e.g. {}", example_value(op)),
            ));
        };
        self.pos += 1;
        match &tok.kind {
            TokKind::Str(s) => Ok(ValueLit::Str(s.clone())),
            TokKind::Word(w) if w.eq_ignore_ascii_case("AND") || w.eq_ignore_ascii_case("OR") => {
                Err(self.error_to(
                    tok.end,
                    format!("expected a value after {kw}, found {}; e.g. {}", w.to_ascii_uppercase(), example_value(op)),
                ))
            }
            TokKind::Word(w) if w.eq_ignore_ascii_case("true") => Ok(ValueLit::Bool(true)),
            TokKind::Word(w) if w.eq_ignore_ascii_case("false") => Ok(ValueLit::Bool(false)),
            TokKind::Word(w) if w.eq_ignore_ascii_case("null") => Ok(ValueLit::Null),
            TokKind::Word(w) => match w.parse::<i64>() {
                Ok(n) => Ok(ValueLit::Int(n)),
                Err(_) => Err(self.error_to(
                    tok.end,
                    format!(
                        "`{w}` is not a value; put strings in quotes ('{w}'); unquoted values can only be true, false, null or an integer"
                    ),
                )),
            },
        }
    }

    fn finish_clause(
        &mut self,
        path: PropertyPath,
        op: Op,
        value: Option<ValueLit>,
    ) -> Result<Clause, ScopeError> {
        let end = self.consumed_end();
        let kw = op.keyword();
        let (op, value) = match (op, value) {
            (op, None) => (op, None),
            (Op::Equals, Some(ValueLit::Bool(true))) | (Op::NotEquals, Some(ValueLit::Bool(false))) => (Op::IsTrue, None),
            (Op::Equals, Some(ValueLit::Bool(false))) | (Op::NotEquals, Some(ValueLit::Bool(true))) => (Op::IsFalse, None),
            (Op::Equals, Some(ValueLit::Null)) => (Op::IsNull, None),
            (Op::NotEquals, Some(ValueLit::Null)) => (Op::IsNotNull, None),
            (Op::Equals | Op::NotEquals, Some(ValueLit::Str(s))) => (op, Some(Literal::Str(s))),
            (Op::Equals | Op::NotEquals, Some(ValueLit::Int(n))) => (op, Some(Literal::Int(n))),
            (Op::RegexMatch | Op::NotRegexMatch, Some(ValueLit::Str(s))) => (op, Some(Literal::Str(s))),
            (Op::RegexMatch | Op::NotRegexMatch, Some(_)) => {
                return Err(self.error_to(
                    end,
                    format!("{kw} needs a quoted regular expression, e.g. `userPrincipalName {kw} '^admin'`"),
                ))
            }
            (Op::GreaterThan | Op::LessThan, Some(ValueLit::Int(n))) => (op, Some(Literal::Int(n))),
            (Op::GreaterThan | Op::LessThan, Some(_)) => {
                return Err(self.error_to(
                    end,
                    format!("{kw} compares integers (as Entra does); write an unquoted integer, e.g. `{path} {kw} 1000000`"),
                ))
            }
            (op, Some(_)) => (op, None),
        };
        let regex = match (&op, &value) {
            (Op::RegexMatch | Op::NotRegexMatch, Some(Literal::Str(pattern))) => {
                match Regex::new(pattern) {
                    Ok(re) => Some(re),
                    Err(e) => {
                        return Err(self.error_to(
                            end,
                            format!("invalid regular expression ({}); fix the pattern (Rust `regex` syntax, no look-around or back-references)", first_line(&e.to_string())),
                        ))
                    }
                }
            }
            _ => None,
        };
        Ok(Clause {
            path,
            op,
            value,
            regex,
        })
    }
}

fn first_line(text: &str) -> String {
    let lines: Vec<&str> = text
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .collect();
    // regex errors are multi-line: "regex parse error:", the pattern, a caret line, "error: …".
    lines
        .iter()
        .rev()
        .find(|l| l.starts_with("error:"))
        .map(|l| l.trim_start_matches("error:").trim().to_string())
        .or_else(|| lines.last().map(|l| l.to_string()))
        .unwrap_or_default()
}

fn example_value(op: Op) -> &'static str {
    match op {
        Op::GreaterThan | Op::LessThan => "1000000",
        Op::RegexMatch | Op::NotRegexMatch => "'^admin'",
        _ => "'Sales' or true",
    }
}

/// A value as written, before type checks against the operator.
#[derive(Debug, Clone)]
enum ValueLit {
    Str(String),
    Int(i64),
    Bool(bool),
    Null,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn user(v: Value) -> UserRecord {
        let mut v = v;
        if let Value::Object(m) = &mut v {
            m.insert("id".into(), json!("u"));
        }
        UserRecord::from_json(v).unwrap()
    }

    fn f(s: &str) -> ScopeFilter {
        match ScopeFilter::parse(s) {
            Ok(f) => f,
            Err(e) => panic!("{s}: {e}"),
        }
    }

    fn err(s: &str) -> String {
        match ScopeFilter::parse(s) {
            Ok(f) => panic!("{s} parsed as {f}"),
            Err(e) => e.to_string(),
        }
    }

    #[test]
    fn default_scope_is_hybrid_users() {
        let parsed = f(DEFAULT_SCOPE);
        assert_eq!(parsed, ScopeFilter::default());
        assert_eq!(parsed.to_string(), "onPremisesSyncEnabled IS TRUE");
        assert!(parsed.matches(&user(json!({"onPremisesSyncEnabled": true}))));
        assert!(!parsed.matches(&user(json!({"onPremisesSyncEnabled": false}))));
        assert!(!parsed.matches(&user(json!({"onPremisesSyncEnabled": null}))));
        assert!(!parsed.matches(&user(json!({}))));
        assert_eq!(
            parsed.graph_prefilter().as_deref(),
            Some("onPremisesSyncEnabled eq true")
        );
        assert_eq!(parsed.properties(), vec!["onPremisesSyncEnabled"]);
    }

    #[test]
    fn equals_is_case_sensitive_and_false_on_missing() {
        let s = f("department EQUALS 'Sales'");
        assert!(s.matches(&user(json!({"department": "Sales"}))));
        assert!(!s.matches(&user(json!({"department": "sales"}))));
        assert!(!s.matches(&user(json!({}))));
        let s = f("department NOT EQUALS 'Sales'");
        assert!(s.matches(&user(json!({"department": "sales"}))));
        assert!(!s.matches(&user(json!({"department": "Sales"}))));
        assert!(
            !s.matches(&user(json!({}))),
            "null/empty → false, even for NOT EQUALS"
        );
        assert!(!s.matches(&user(json!({"department": "  "}))));
        let s = f("department ne 'Sales'");
        assert_eq!(s.to_string(), "department NOT EQUALS 'Sales'");
        let s = f("employeeId eq 42");
        assert!(s.matches(&user(json!({"employeeId": "42"}))));
        assert!(s.matches(&user(json!({"employeeId": 42}))));
        assert!(!s.matches(&user(json!({"employeeId": "43"}))));
    }

    #[test]
    fn boolean_operators() {
        let t = f("accountEnabled IS TRUE");
        let fa = f("accountEnabled is false");
        for (v, is_t, is_f) in [
            (json!(true), true, false),
            (json!(false), false, true),
            (json!("TRUE"), true, false),
            (json!("false"), false, true),
            (json!(null), false, false),
            (json!("yes"), false, false),
            (json!(1), false, false),
        ] {
            let u = user(json!({"accountEnabled": v}));
            assert_eq!(t.matches(&u), is_t, "{v}");
            assert_eq!(fa.matches(&u), is_f, "{v}");
        }
        assert!(!t.matches(&user(json!({}))));
        assert_eq!(f("a eq false").to_string(), "a IS FALSE");
        assert_eq!(f("a ne true").to_string(), "a IS FALSE");
        assert_eq!(f("a NOT EQUALS false").to_string(), "a IS TRUE");
        assert_eq!(f("a EQUALS null").to_string(), "a IS NULL");
        assert_eq!(f("a ne null").to_string(), "a IS NOT NULL");
    }

    #[test]
    fn null_operators() {
        let n = f("jobTitle IS NULL");
        let nn = f("jobTitle IS_NOT_NULL");
        assert_eq!(nn.to_string(), "jobTitle IS NOT NULL");
        for (v, empty) in [
            (json!({}), true),
            (json!({"jobTitle": null}), true),
            (json!({"jobTitle": " "}), true),
            (json!({"jobTitle": []}), true),
            (json!({"jobTitle": "Dev"}), false),
            (json!({"jobTitle": ["x"]}), false),
            (json!({"jobTitle": false}), false),
        ] {
            let u = user(v.clone());
            assert_eq!(n.matches(&u), empty, "{v}");
            assert_eq!(nn.matches(&u), !empty, "{v}");
        }
    }

    #[test]
    fn regex_operators() {
        let m = f(r"userPrincipalName REGEX MATCH '.*\@contoso\.com$'");
        assert!(m.matches(&user(json!({"userPrincipalName": "a@contoso.com"}))));
        assert!(
            !m.matches(&user(json!({"userPrincipalName": "a@CONTOSO.com"}))),
            "case-sensitive"
        );
        assert!(!m.matches(&user(json!({}))));
        let nm = f("userPrincipalName NOT REGEX MATCH '^admin'");
        assert!(nm.matches(&user(json!({"userPrincipalName": "jane@contoso.com"}))));
        assert!(!nm.matches(&user(
            json!({"userPrincipalName": "admin-jane@contoso.com"})
        )));
        assert!(
            !nm.matches(&user(json!({}))),
            "NOT REGEX MATCH is false on null"
        );
        let unanchored = f("employeeId REGEX MATCH '([1-9][0-9])'");
        assert!(unanchored.matches(&user(json!({"employeeId": "x42y"}))));
        assert!(
            !f("otherMails REGEX MATCH '.'").matches(&user(json!({"otherMails": ["a"]}))),
            "multi-valued → false"
        );
        assert_eq!(
            f(r"a regex_match '^\d+$'").to_string(),
            r"a REGEX MATCH '^\d+$'"
        );
    }

    #[test]
    fn integer_comparisons() {
        let gt = f("employeeId GREATER THAN 1000000");
        let lt = f("employeeId lt 2000000");
        let both = f("employeeId gt 1000000 AND employeeId LESS_THAN 2000000");
        for (v, g, l) in [
            (json!("1500000"), true, true),
            (json!(" 1000000 "), false, true),
            (json!(2500000), true, false),
            (json!("E1500000"), false, false),
            (json!(null), false, false),
        ] {
            let u = user(json!({"employeeId": v}));
            assert_eq!(gt.matches(&u), g, "{v}");
            assert_eq!(lt.matches(&u), l, "{v}");
            assert_eq!(both.matches(&u), g && l, "{v}");
        }
        assert_eq!(f("x GREATER_THAN -5").to_string(), "x GREATER THAN -5");
    }

    #[test]
    fn and_binds_tighter_than_or() {
        // a AND b OR c  ==  (a AND b) OR c
        let s = f("department EQUALS 'A' AND jobTitle EQUALS 'B' OR city EQUALS 'C'");
        assert!(s.matches(&user(json!({"department": "A", "jobTitle": "B"}))));
        assert!(s.matches(&user(json!({"city": "C"}))));
        assert!(!s.matches(&user(json!({"department": "A", "city": "X"}))));
        // a OR b AND c  ==  a OR (b AND c)
        let s = f("department EQUALS 'A' or jobTitle EQUALS 'B' and city EQUALS 'C'");
        assert!(s.matches(&user(json!({"department": "A"}))));
        assert!(!s.matches(&user(json!({"jobTitle": "B"}))));
        assert!(s.matches(&user(json!({"jobTitle": "B", "city": "C"}))));
    }

    #[test]
    fn the_documented_example() {
        let s = f("onPremisesSyncEnabled IS TRUE AND employeeId IS NOT NULL AND userPrincipalName NOT REGEX MATCH '^admin' OR department EQUALS 'Contractors' AND onPremisesSyncEnabled eq true");
        assert_eq!(
            s.to_string(),
            "onPremisesSyncEnabled IS TRUE AND employeeId IS NOT NULL AND userPrincipalName NOT REGEX MATCH '^admin' OR department EQUALS 'Contractors' AND onPremisesSyncEnabled IS TRUE"
        );
        assert_eq!(
            s.properties(),
            vec![
                "onPremisesSyncEnabled",
                "employeeId",
                "userPrincipalName",
                "department"
            ]
        );
        assert_eq!(
            s.graph_prefilter().as_deref(),
            Some("onPremisesSyncEnabled eq true or (department eq 'Contractors' and onPremisesSyncEnabled eq true)")
        );
        assert!(s.matches(&user(json!({"onPremisesSyncEnabled": true, "employeeId": "1", "userPrincipalName": "j@x.com"}))));
        assert!(!s.matches(&user(json!({"onPremisesSyncEnabled": true, "employeeId": "1", "userPrincipalName": "admin@x.com"}))));
        assert!(s.matches(&user(json!({"onPremisesSyncEnabled": true, "department": "Contractors", "userPrincipalName": "admin@x.com"}))));
        assert_eq!(f(&s.to_string()), s, "canonical form round-trips");
    }

    #[test]
    fn prefilter_is_none_when_a_group_cannot_be_translated() {
        assert_eq!(f("department REGEX MATCH 'x'").graph_prefilter(), None);
        assert_eq!(
            f("onPremisesSyncEnabled IS TRUE OR jobTitle IS NOT NULL").graph_prefilter(),
            None
        );
        assert_eq!(
            f(r"employeeId EQUALS 'O\'Neil' AND jobTitle IS NULL")
                .graph_prefilter()
                .as_deref(),
            Some("employeeId eq 'O''Neil'"),
            "untranslatable clauses are dropped from a group, which only widens it"
        );
        assert_eq!(f("ext.attr EQUALS 'x'").graph_prefilter(), None);
        assert_eq!(
            f("employeeId EQUALS 5").graph_prefilter(),
            None,
            "integer literal matches '05' too"
        );
        assert_eq!(
            f("ACCOUNTENABLED is false").graph_prefilter().as_deref(),
            Some("accountEnabled eq false")
        );
    }

    #[test]
    fn quoting_and_escapes() {
        assert_eq!(
            f(r#"city EQUALS "New York""#).to_string(),
            "city EQUALS 'New York'"
        );
        let s = f(r"surname EQUALS 'O\'Neil'");
        assert!(s.matches(&user(json!({"surname": "O'Neil"}))));
        assert_eq!(s.to_string(), r"surname EQUALS 'O\'Neil'");
        let s = f(r#"surname EQUALS "say \"hi\"""#);
        assert!(s.matches(&user(json!({"surname": "say \"hi\""}))));
        let s = f(r"x EQUALS 'a\\b'");
        assert!(s.matches(&user(json!({"x": "a\\b"}))));
        let s = f(r"x EQUALS 'tail\\'");
        assert!(s.matches(&user(json!({"x": "tail\\"}))));
        assert_eq!(f(&s.to_string()), s);
        let s = f("x EQUALS 'AND OR'");
        assert!(s.matches(&user(json!({"x": "AND OR"}))));
        assert!(f("x EQUALS ''").to_string().ends_with("''"));
    }

    #[test]
    fn display_round_trips_generated_strings() {
        // Deterministic generator over awkward characters.
        let alphabet = ['a', '\\', '\'', '"', ' ', 'é', 'Z', '.', '$'];
        let mut seed: u64 = 7;
        for _ in 0..500 {
            let mut s = String::new();
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = (seed >> 59) as usize;
            for k in 0..len {
                let idx = ((seed >> (k * 3 % 56)) as usize) % alphabet.len();
                s.push(alphabet[idx]);
            }
            let filter = ScopeFilter {
                groups: vec![vec![Clause {
                    path: PropertyPath::known("x"),
                    op: Op::Equals,
                    value: Some(Literal::Str(s.clone())),
                    regex: None,
                }]],
            };
            let text = filter.to_string();
            assert_eq!(f(&text), filter, "{s:?} → {text}");
            assert!(f(&text).matches(&user(json!({"x": s.clone()}))) || s.trim().is_empty());
        }
    }

    #[test]
    fn errors_name_the_clause_and_the_fix() {
        let cases: &[(&str, &str)] = &[
            ("onPremisesSyncEnabled IS TRUE AND employeeId IS NOT", "ENRICH_SCOPE: clause 2 `employeeId IS NOT`: expected NULL after IS NOT; write `employeeId IS NOT NULL`"),
            ("employeeId IS NOT AND a IS TRUE", "clause 1 `employeeId IS NOT`: expected NULL after IS NOT"),
            ("a IS MAYBE", "clause 1 `a IS`: expected TRUE, FALSE, NULL or NOT NULL after IS"),
            ("a NOT LIKE 'x'", "clause 1 `a NOT`: expected EQUALS or REGEX MATCH after NOT"),
            ("a REGEX 'x'", "expected MATCH after REGEX"),
            ("a GREATER 5", "expected THAN after GREATER"),
            ("a CONTAINS 'x'", "clause 1 `a CONTAINS`: unknown operator `CONTAINS`; use one of EQUALS"),
            ("a", "clause 1 `a`: expected an operator after `a`"),
            ("a IS TRUE AND b", "clause 2 `b`: expected an operator after `b`"),
            ("department EQUALS Sales", "clause 1 `department EQUALS Sales`: `Sales` is not a value; put strings in quotes ('Sales')"),
            ("department EQUALS", "expected a value after EQUALS"),
            ("department EQUALS AND x IS TRUE", "expected a value after EQUALS, found AND"),
            ("city EQUALS New York", "`New` is not a value"),
            ("city EQUALS 'New' York", "expected AND, OR or the end of the filter after the clause, found `York`; quote values that contain spaces"),
            ("a GREATER THAN '5'", "GREATER THAN compares integers (as Entra does); write an unquoted integer, e.g. `a GREATER THAN 1000000`"),
            ("a lt true", "LESS THAN compares integers"),
            ("a REGEX MATCH 5", "REGEX MATCH needs a quoted regular expression"),
            ("a IS TRUE AND b REGEX MATCH '(unclosed'", "ENRICH_SCOPE: clause 2 `b REGEX MATCH '(unclosed'`: invalid regular expression"),
            ("a IS TRUE AND", "at character 11: expected a clause after AND; remove the trailing AND"),
            ("a IS TRUE OR", "expected a clause after OR"),
            ("AND a IS TRUE", "clause 1 `AND`: expected an attribute name, found AND"),
            ("a IS TRUE OR OR b IS TRUE", "clause 2 `OR`: expected an attribute name, found OR"),
            ("'a' IS TRUE", "expected an attribute name, found a quoted string"),
            ("a..b IS TRUE", "`a..b` is not an attribute name"),
            ("(a IS TRUE OR b IS TRUE) AND c IS TRUE", "at character 1: parentheses are not supported; AND binds tighter than OR"),
            ("a EQUALS 'open", "at character 10: the string starting here is never closed; add the closing '"),
            ("", "the filter is empty; to act on hybrid users write `onPremisesSyncEnabled eq true`"),
            ("   ", "the filter is empty"),
            ("a EQUALS 99999999999999999999", "is not a value"),
        ];
        for (input, expected) in cases {
            let message = err(input);
            assert!(
                message.contains(expected),
                "{input:?}\n  got:      {message}\n  expected: {expected}"
            );
            assert!(message.starts_with("ENRICH_SCOPE: "), "{message}");
        }
    }

    #[test]
    fn error_accessors_and_masking() {
        let e = ScopeFilter::parse("a IS TRUE AND mail EQUALS jane.doe@example.com").unwrap_err();
        assert_eq!(e.clause(), Some(2));
        assert_eq!(e.position(), 15);
        assert!(e.message().contains("not a value"));
        let text = format!("{e} {e:?}");
        assert!(!text.contains("jane.doe@example.com"), "{text}");
        let e = ScopeFilter::parse("mail REGEX MATCH 'jane.doe@example.com('").unwrap_err();
        assert!(!e.to_string().contains("jane.doe@example.com"), "{e}");
    }

    #[test]
    fn keywords_are_case_insensitive() {
        let a = f("a is not null and b Not Regex Match 'x' or c equals 'y'");
        assert_eq!(
            a.to_string(),
            "a IS NOT NULL AND b NOT REGEX MATCH 'x' OR c EQUALS 'y'"
        );
        assert_eq!(f("x Is_True"), f("x IS TRUE"));
    }

    #[test]
    fn generated_token_soup_never_panics_and_round_trips() {
        let pieces = [
            "a",
            "b.c",
            "IS",
            "NOT",
            "NULL",
            "TRUE",
            "false",
            "EQUALS",
            "eq",
            "ne",
            "REGEX",
            "MATCH",
            "GREATER",
            "THAN",
            "lt",
            "gt",
            "AND",
            "OR",
            "'x'",
            "\"y z\"",
            "'(('",
            "42",
            "-7",
            "null",
            "IS_NOT_NULL",
            "'\\'",
            "é",
            "'",
            "(",
            "jane@example.com",
        ];
        let mut seed: u64 = 99;
        let mut parsed = 0;
        for _ in 0..20_000 {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = 1 + (seed >> 60) as usize;
            let mut text = String::new();
            let mut r = seed;
            for _ in 0..len {
                r = r.rotate_left(7).wrapping_add(0x9E37_79B9);
                text.push_str(pieces[(r % pieces.len() as u64) as usize]);
                text.push(' ');
            }
            match ScopeFilter::parse(&text) {
                Ok(filter) => {
                    parsed += 1;
                    let canonical = filter.to_string();
                    assert_eq!(f(&canonical), filter, "{text} → {canonical}");
                    let _ = filter.matches(&user(json!({"a": "x", "b": {"c": 42}})));
                    let _ = filter.graph_prefilter();
                }
                Err(e) => {
                    let msg = e.to_string();
                    assert!(msg.starts_with("ENRICH_SCOPE: "), "{msg}");
                    assert!(!msg.contains("jane@example.com"), "{msg}");
                }
            }
        }
        assert!(parsed > 0);
    }

    #[test]
    fn no_panic_on_odd_input() {
        for input in [
            "'",
            "\"",
            "\\",
            "a 'b",
            "a EQUALS '\\",
            "é IS TRUE",
            "a IS TRUE AND AND",
            "a ))",
            "a\u{0} IS TRUE",
            "a IS_",
            "a _ b",
            "a IS_NOT_NULL_X",
        ] {
            let _ = ScopeFilter::parse(input);
        }
    }
}
