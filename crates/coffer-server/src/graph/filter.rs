//! The part of OData's `$filter` that Microsoft Graph clients send for directory lookups:
//! `prop eq 'v'` (and `ne`), `startswith(prop,'v')`, `prop/any(c:c eq 'v')` on a collection,
//! `and`, `or`, `not` and parentheses. Strings compare as the directory does, ignoring case.
//! Anything else is refused (400) rather than guessed at.
use coffer_core::{Error, ErrorKind, Result};
use serde_json::Value;

/// A parsed `$filter`.
#[derive(Debug, Clone, PartialEq)]
pub enum Filter {
    Eq(String, Literal),
    Ne(String, Literal),
    StartsWith(String, String),
    /// `prop/any(x:x eq 'v')`: some element of the collection `prop` equals `v`.
    AnyEq(String, String),
    And(Box<Filter>, Box<Filter>),
    Or(Box<Filter>, Box<Filter>),
    Not(Box<Filter>),
}

#[derive(Debug, Clone, PartialEq)]
pub enum Literal {
    Str(String),
    Bool(bool),
    Null,
}

fn unsupported(message: impl Into<String>) -> Error {
    Error::new(ErrorKind::BadRequest, "Request_UnsupportedQuery", message)
}

impl Filter {
    /// Parses `text`; every property it names must be one of `properties`.
    pub fn parse(text: &str, properties: &[&str]) -> Result<Self> {
        let tokens = tokenize(text)?;
        let mut p = Parser { tokens, at: 0, properties };
        let f = p.or()?;
        if p.at != p.tokens.len() {
            return Err(unsupported(format!("The filter has something after its end: {:?}.", p.tokens[p.at])));
        }
        Ok(f)
    }

    /// Whether `object` (a rendered Graph object) matches.
    pub fn matches(&self, object: &Value) -> bool {
        match self {
            Self::Eq(prop, lit) => equals(&object[prop.as_str()], lit),
            Self::Ne(prop, lit) => !equals(&object[prop.as_str()], lit),
            Self::StartsWith(prop, prefix) => {
                object[prop.as_str()].as_str().is_some_and(|s| s.to_lowercase().starts_with(&prefix.to_lowercase()))
            }
            Self::AnyEq(prop, v) => object[prop.as_str()]
                .as_array()
                .is_some_and(|items| items.iter().any(|i| i.as_str().is_some_and(|s| s.eq_ignore_ascii_case(v)))),
            Self::And(a, b) => a.matches(object) && b.matches(object),
            Self::Or(a, b) => a.matches(object) || b.matches(object),
            Self::Not(a) => !a.matches(object),
        }
    }
}

fn equals(value: &Value, lit: &Literal) -> bool {
    match (value, lit) {
        (Value::String(s), Literal::Str(v)) => s.to_lowercase() == v.to_lowercase(),
        (Value::Bool(b), Literal::Bool(v)) => b == v,
        (Value::Null, Literal::Null) => true,
        _ => false,
    }
}

#[derive(Debug, Clone, PartialEq)]
enum Token {
    Word(String),
    Str(String),
    Open,
    Close,
    Comma,
    Colon,
    Slash,
}

fn tokenize(text: &str) -> Result<Vec<Token>> {
    let mut out = Vec::new();
    let mut chars = text.chars().peekable();
    while let Some(&c) = chars.peek() {
        match c {
            c if c.is_whitespace() => {
                chars.next();
            }
            '(' | ')' | ',' | ':' | '/' => {
                chars.next();
                out.push(match c {
                    '(' => Token::Open,
                    ')' => Token::Close,
                    ',' => Token::Comma,
                    ':' => Token::Colon,
                    _ => Token::Slash,
                });
            }
            '\'' => {
                chars.next();
                let mut s = String::new();
                loop {
                    match chars.next() {
                        // OData escapes a quote by doubling it.
                        Some('\'') if chars.peek() == Some(&'\'') => {
                            chars.next();
                            s.push('\'');
                        }
                        Some('\'') => break,
                        Some(ch) => s.push(ch),
                        None => return Err(unsupported("A string in the filter is not closed.")),
                    }
                }
                out.push(Token::Str(s));
            }
            c if c.is_alphanumeric() || c == '_' || c == '-' || c == '.' => {
                let mut w = String::new();
                while let Some(&ch) = chars.peek() {
                    if ch.is_alphanumeric() || ch == '_' || ch == '-' || ch == '.' {
                        w.push(ch);
                        chars.next();
                    } else {
                        break;
                    }
                }
                out.push(Token::Word(w));
            }
            other => return Err(unsupported(format!("The filter cannot contain '{other}'."))),
        }
    }
    Ok(out)
}

struct Parser<'a> {
    tokens: Vec<Token>,
    at: usize,
    properties: &'a [&'a str],
}

impl Parser<'_> {
    fn peek(&self) -> Option<&Token> {
        self.tokens.get(self.at)
    }

    fn next(&mut self) -> Option<Token> {
        let t = self.tokens.get(self.at).cloned();
        self.at += 1;
        t
    }

    fn expect(&mut self, want: Token) -> Result<()> {
        match self.next() {
            Some(t) if t == want => Ok(()),
            other => Err(unsupported(format!("The filter expected {want:?} but found {other:?}."))),
        }
    }

    fn keyword(&self, word: &str) -> bool {
        matches!(self.peek(), Some(Token::Word(w)) if w.eq_ignore_ascii_case(word))
    }

    fn or(&mut self) -> Result<Filter> {
        let mut left = self.and()?;
        while self.keyword("or") {
            self.at += 1;
            left = Filter::Or(Box::new(left), Box::new(self.and()?));
        }
        Ok(left)
    }

    fn and(&mut self) -> Result<Filter> {
        let mut left = self.term()?;
        while self.keyword("and") {
            self.at += 1;
            left = Filter::And(Box::new(left), Box::new(self.term()?));
        }
        Ok(left)
    }

    fn property(&self, name: &str) -> Result<String> {
        self.properties.iter().find(|p| p.eq_ignore_ascii_case(name)).map(|p| p.to_string()).ok_or_else(|| {
            unsupported(format!(
                "Property '{}' cannot be filtered on here; these can: {}.",
                coffer_core::names::printable(name),
                self.properties.join(", ")
            ))
        })
    }

    fn string(&mut self) -> Result<String> {
        match self.next() {
            Some(Token::Str(s)) => Ok(s),
            other => Err(unsupported(format!("The filter expected a quoted string but found {other:?}."))),
        }
    }

    fn term(&mut self) -> Result<Filter> {
        match self.next() {
            Some(Token::Open) => {
                let inner = self.or()?;
                self.expect(Token::Close)?;
                Ok(inner)
            }
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("not") => Ok(Filter::Not(Box::new(self.term()?))),
            Some(Token::Word(w)) if w.eq_ignore_ascii_case("startswith") => {
                self.expect(Token::Open)?;
                let prop = match self.next() {
                    Some(Token::Word(p)) => self.property(&p)?,
                    other => return Err(unsupported(format!("startswith needs a property, not {other:?}."))),
                };
                self.expect(Token::Comma)?;
                let prefix = self.string()?;
                self.expect(Token::Close)?;
                Ok(Filter::StartsWith(prop, prefix))
            }
            Some(Token::Word(w)) => {
                let prop = self.property(&w)?;
                if self.peek() == Some(&Token::Slash) {
                    // prop/any(c:c eq 'v')
                    self.at += 1;
                    match self.next() {
                        Some(Token::Word(a)) if a.eq_ignore_ascii_case("any") => {}
                        other => return Err(unsupported(format!("Only '/any(...)' is supported, not {other:?}."))),
                    }
                    self.expect(Token::Open)?;
                    let Some(Token::Word(var)) = self.next() else {
                        return Err(unsupported("any(...) needs a variable: any(c:c eq 'value')."));
                    };
                    self.expect(Token::Colon)?;
                    self.expect(Token::Word(var))?;
                    if !self.keyword("eq") {
                        return Err(unsupported("Inside any(...) only 'eq' is supported."));
                    }
                    self.at += 1;
                    let v = self.string()?;
                    self.expect(Token::Close)?;
                    return Ok(Filter::AnyEq(prop, v));
                }
                let op = match self.next() {
                    Some(Token::Word(op)) => op.to_ascii_lowercase(),
                    other => return Err(unsupported(format!("The filter expected 'eq' or 'ne' but found {other:?}."))),
                };
                let lit = match self.next() {
                    Some(Token::Str(s)) => Literal::Str(s),
                    Some(Token::Word(w)) if w == "true" => Literal::Bool(true),
                    Some(Token::Word(w)) if w == "false" => Literal::Bool(false),
                    Some(Token::Word(w)) if w == "null" => Literal::Null,
                    other => return Err(unsupported(format!("The filter cannot compare with {other:?}."))),
                };
                match op.as_str() {
                    "eq" => Ok(Filter::Eq(prop, lit)),
                    "ne" => Ok(Filter::Ne(prop, lit)),
                    _ => Err(unsupported(format!("The operator '{op}' is not supported; use eq, ne or startswith."))),
                }
            }
            other => Err(unsupported(format!("The filter cannot start a term with {other:?}."))),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    const PROPS: &[&str] = &["displayName", "appId", "servicePrincipalNames", "accountEnabled", "mailNickname"];

    fn m(filter: &str, object: &Value) -> bool {
        Filter::parse(filter, PROPS).expect("parses").matches(object)
    }

    #[test]
    fn what_the_azure_cli_sends() {
        let sp = json!({"displayName": "Billing App", "appId": "A1", "servicePrincipalNames": ["a1", "api://x"],
                        "accountEnabled": true, "mailNickname": null});
        assert!(m("displayName eq 'billing app'", &sp), "case is ignored as in the directory");
        assert!(!m("displayName eq 'Billing'", &sp));
        assert!(m("startswith(displayName,'Bill')", &sp));
        assert!(m("servicePrincipalNames/any(c:c eq 'A1')", &sp));
        assert!(!m("servicePrincipalNames/any(c:c eq 'A2')", &sp));
        assert!(m("displayName eq 'Billing App' and appId eq 'A1'", &sp));
        assert!(!m("displayName eq 'Billing App' and appId eq 'A2'", &sp));
        assert!(m("appId eq 'zz' or (accountEnabled eq true and not (displayName eq 'x'))", &sp));
        assert!(m("mailNickname eq null", &sp));
        assert!(m("displayName ne 'o''brien'", &sp));
        assert!(m("displayName eq 'o''brien'", &json!({"displayName": "O'Brien"})), "a doubled quote is a quote");
    }

    #[test]
    fn anything_else_is_refused() {
        for bad in [
            "",
            "displayName",
            "displayName gt 'a'",
            "secret eq 'x'",
            "displayName eq 'open",
            "startswith(displayName 'x')",
            "servicePrincipalNames/all(c:c eq 'x')",
            "servicePrincipalNames/any(c:d eq 'x')",
            "displayName eq 'a' extra",
            "displayName eq 1;drop",
        ] {
            let e = Filter::parse(bad, PROPS).expect_err(bad);
            assert_eq!((e.kind, e.code.as_str()), (ErrorKind::BadRequest, "Request_UnsupportedQuery"), "{bad}");
        }
    }
}
