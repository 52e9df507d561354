//! Package YANG as pyvmd loads it: NSO-style modules prepared for libyang.
//!
//! NSO packages use Tail-f extensions that libyang cannot give a meaning to. Two of them decide
//! whether a module loads at all, so the text is adjusted before libyang parses it (the file on
//! disk, and what `<get-schema>` serves, stay as written):
//! - `tailf:action NAME { input {...} output {...} }` is NSO's action of YANG 1.0 days. libyang
//!   compiles no input or output for an extension, so it becomes a YANG 1.1 `action`, and a
//!   module (or submodule family) that has one is raised to `yang-version 1.1`;
//! - an extension of a newer `tailf-common` than the one in the YANG directory would make libyang
//!   refuse the module ("extension definition not found"): such statements are dropped, with a
//!   warning.
//!
//! Only as much YANG syntax as that needs is read: statements, quoted and unquoted arguments
//! (with `+` concatenation), and comments. Byte spans of the original text are kept, so edits
//! touch nothing else.

use std::collections::HashSet;
use std::ops::Range;

/// One YANG statement of a source text.
#[derive(Debug, Clone)]
pub struct Statement {
    /// The keyword as written (`container`, `tailf:action`).
    pub keyword: String,
    /// Where the keyword is.
    pub keyword_span: Range<usize>,
    /// The argument, unquoted and concatenated.
    pub argument: Option<String>,
    /// From the keyword to the closing `;` or `}`, inclusive.
    pub span: Range<usize>,
    /// Where the body starts (just after `{`), for a statement with a block.
    pub body_start: Option<usize>,
    /// The substatements.
    pub children: Vec<Statement>,
}

impl Statement {
    /// The first substatement with this keyword.
    pub fn child(&self, keyword: &str) -> Option<&Statement> {
        self.children.iter().find(|c| c.keyword == keyword)
    }
}

/// Parses the top-level statement of a YANG text (`module` or `submodule`).
pub fn parse(text: &str) -> Result<Statement, String> {
    let mut lexer = Lexer { text, pos: 0 };
    let statement = lexer.statement()?;
    lexer.skip_separators()?;
    if lexer.pos < text.len() {
        return Err(format!(
            "unexpected text after the {} statement at byte {}",
            statement.keyword, lexer.pos
        ));
    }
    Ok(statement)
}

struct Lexer<'a> {
    text: &'a str,
    pos: usize,
}

impl<'a> Lexer<'a> {
    fn rest(&self) -> &'a str {
        &self.text[self.pos..]
    }

    fn skip_separators(&mut self) -> Result<(), String> {
        loop {
            let rest = self.rest();
            let trimmed = rest.trim_start_matches(|c: char| c.is_whitespace() || c == '\u{feff}');
            self.pos += rest.len() - trimmed.len();
            if let Some(after) = trimmed.strip_prefix("//") {
                self.pos += 2 + after.find('\n').unwrap_or(after.len());
            } else if let Some(after) = trimmed.strip_prefix("/*") {
                let end = after
                    .find("*/")
                    .ok_or_else(|| format!("unterminated comment at byte {}", self.pos))?;
                self.pos += 2 + end + 2;
            } else {
                return Ok(());
            }
        }
    }

    /// An unquoted string: up to whitespace, `;`, `{`, `}` or the start of a comment.
    fn unquoted(&mut self) -> String {
        let rest = self.rest();
        let mut end = rest.len();
        for (i, c) in rest.char_indices() {
            if c.is_whitespace()
                || matches!(c, ';' | '{' | '}')
                || rest[i..].starts_with("//")
                || rest[i..].starts_with("/*")
            {
                end = i;
                break;
            }
        }
        self.pos += end;
        rest[..end].to_owned()
    }

    fn quoted(&mut self) -> Result<String, String> {
        let rest = self.rest();
        let quote = rest.as_bytes()[0];
        let mut out = String::new();
        let mut chars = rest[1..].char_indices();
        while let Some((i, c)) = chars.next() {
            if c as u32 == u32::from(quote) {
                self.pos += 1 + i + 1;
                return Ok(out);
            }
            if c == '\\' && quote == b'"' {
                match chars.next() {
                    Some((_, 'n')) => out.push('\n'),
                    Some((_, 't')) => out.push('\t'),
                    Some((_, other)) => out.push(other),
                    None => break,
                }
            } else {
                out.push(c);
            }
        }
        Err(format!("unterminated string at byte {}", self.pos))
    }

    /// An argument: a string or `"a" + "b"`.
    fn argument(&mut self) -> Result<String, String> {
        if !self.rest().starts_with(['"', '\'']) {
            return Ok(self.unquoted());
        }
        let mut value = self.quoted()?;
        loop {
            let before = self.pos;
            self.skip_separators()?;
            if self.rest().starts_with('+') {
                self.pos += 1;
                self.skip_separators()?;
                if !self.rest().starts_with(['"', '\'']) {
                    return Err(format!("expected a string after '+' at byte {}", self.pos));
                }
                value.push_str(&self.quoted()?);
            } else {
                self.pos = before;
                return Ok(value);
            }
        }
    }

    fn statement(&mut self) -> Result<Statement, String> {
        self.skip_separators()?;
        let start = self.pos;
        let keyword = self.unquoted();
        if keyword.is_empty() {
            return Err(format!("expected a statement at byte {start}"));
        }
        let keyword_span = start..self.pos;
        self.skip_separators()?;
        let argument = if self.rest().starts_with([';', '{']) {
            None
        } else {
            let argument = self.argument()?;
            self.skip_separators()?;
            Some(argument)
        };
        let mut children = Vec::new();
        let mut body_start = None;
        match self.rest().chars().next() {
            Some(';') => self.pos += 1,
            Some('{') => {
                self.pos += 1;
                body_start = Some(self.pos);
                loop {
                    self.skip_separators()?;
                    match self.rest().chars().next() {
                        Some('}') => {
                            self.pos += 1;
                            break;
                        }
                        Some(_) => children.push(self.statement()?),
                        None => return Err(format!("the block of {keyword} is not closed")),
                    }
                }
            }
            _ => {
                return Err(format!(
                    "expected ';' or '{{' after {keyword} at byte {}",
                    self.pos
                ));
            }
        }
        Ok(Statement {
            keyword,
            keyword_span,
            argument,
            span: start..self.pos,
            body_start,
            children,
        })
    }
}

/// The names of the extensions a `tailf-common` source (module or submodule) declares.
pub fn declared_extensions(text: &str) -> Vec<String> {
    parse(text)
        .map(|top| {
            top.children
                .iter()
                .filter(|s| s.keyword == "extension")
                .filter_map(|s| s.argument.clone())
                .collect()
        })
        .unwrap_or_default()
}

/// A package (sub)module after [`prepare`].
#[derive(Debug, Clone)]
pub struct Prepared {
    /// `module` or `submodule`.
    pub is_module: bool,
    /// The (sub)module name.
    pub name: String,
    /// The module a submodule belongs to.
    pub belongs_to: Option<String>,
    /// Submodules included.
    pub includes: Vec<String>,
    /// Whether it declares `tailf:action`s (and therefore needs YANG 1.1).
    pub has_tailf_action: bool,
    /// The text to hand to libyang.
    pub text: String,
    /// What was dropped, for the log.
    pub warnings: Vec<String>,
}

/// Rewrites `tailf:action` into `action` and drops `tailf:` extensions not in `known` (see the
/// module documentation). The prefix is the one the text gives `tailf-common` in its import.
pub fn prepare(text: &str, known: &HashSet<String>) -> Result<Prepared, String> {
    let top = parse(text)?;
    let is_module = match top.keyword.as_str() {
        "module" => true,
        "submodule" => false,
        other => return Err(format!("not a module or submodule but \"{other}\"")),
    };
    let name = top.argument.clone().unwrap_or_default();
    let prefix = top
        .children
        .iter()
        .find(|s| s.keyword == "import" && s.argument.as_deref() == Some("tailf-common"))
        .and_then(|s| s.child("prefix"))
        .and_then(|p| p.argument.clone());
    let mut edits: Vec<(Range<usize>, &str)> = Vec::new();
    let mut warnings = Vec::new();
    let mut has_tailf_action = false;
    if let Some(prefix) = &prefix {
        let action = format!("{prefix}:action");
        let mut pending: Vec<&Statement> = top.children.iter().collect();
        while let Some(statement) = pending.pop() {
            if statement.keyword == action {
                has_tailf_action = true;
                edits.push((statement.keyword_span.clone(), "action"));
            } else if let Some(ext) = statement.keyword.strip_prefix(&format!("{prefix}:"))
                && !known.contains(ext)
            {
                warnings.push(format!(
                    "{name}: ignoring the extension {} (not declared by tailf-common)",
                    statement.keyword
                ));
                edits.push((statement.span.clone(), ""));
                continue;
            }
            pending.extend(statement.children.iter());
        }
    }
    let mut out = text.to_owned();
    edits.sort_by_key(|(span, _)| std::cmp::Reverse(span.start));
    for (span, replacement) in edits {
        out.replace_range(span, replacement);
    }
    Ok(Prepared {
        is_module,
        name,
        belongs_to: (!is_module)
            .then(|| top.child("belongs-to").and_then(|b| b.argument.clone()))
            .flatten(),
        includes: top
            .children
            .iter()
            .filter(|s| s.keyword == "include")
            .filter_map(|s| s.argument.clone())
            .collect(),
        has_tailf_action,
        text: out,
        warnings,
    })
}

/// Sets `yang-version 1.1` in a (sub)module text.
pub fn require_yang_1_1(text: &str) -> Result<String, String> {
    let top = parse(text)?;
    let mut out = text.to_owned();
    match top.child("yang-version") {
        Some(version) if version.argument.as_deref() == Some("1.1") => {}
        Some(version) => out.replace_range(version.span.clone(), "yang-version 1.1;"),
        None => {
            let at = top
                .body_start
                .ok_or_else(|| format!("{} has no body", top.keyword))?;
            out.insert_str(at, "\n  yang-version 1.1;");
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every statement, in document order.
    fn statements(top: &Statement) -> Vec<&Statement> {
        let mut out = vec![top];
        let mut i = 0;
        while i < out.len() {
            let children: Vec<&Statement> = out[i].children.iter().collect();
            out.splice(i + 1..i + 1, children);
            i += 1;
        }
        out
    }

    const MODULE: &str = r#"module m {
  namespace "urn:m"; // a comment with tailf:action in it
  prefix m;
  import tailf-common { prefix tailf; }
  /* tailf:action in a block comment */
  container c {
    tailf:info "has \"tailf:action\" in a string";
    tailf:action ping {
      tailf:actionpoint m-ping;
      input { leaf host { type string; } }
      output { leaf "result" { type string; } }
    }
    tailf:some-future-extension "x" + 'y' { tailf:info nested; }
    leaf x { type string; }
  }
}"#;

    fn known() -> HashSet<String> {
        ["info", "actionpoint", "action"]
            .into_iter()
            .map(String::from)
            .collect()
    }

    #[test]
    fn statements_arguments_and_spans() {
        let top = parse(MODULE).unwrap();
        assert_eq!(top.keyword, "module");
        assert_eq!(top.argument.as_deref(), Some("m"));
        let all = statements(&top);
        let future = all
            .iter()
            .find(|s| s.keyword == "tailf:some-future-extension")
            .unwrap();
        assert_eq!(future.argument.as_deref(), Some("xy"));
        let info = all.iter().find(|s| s.keyword == "tailf:info").unwrap();
        assert_eq!(
            info.argument.as_deref(),
            Some("has \"tailf:action\" in a string")
        );
        assert!(MODULE[future.span.clone()].ends_with('}'));
        assert!(parse("module m { leaf x { type string; }").is_err());
        assert!(parse("module m { description \"open").is_err());
    }

    #[test]
    fn tailf_action_becomes_an_action_and_unknown_extensions_go() {
        let prepared = prepare(MODULE, &known()).unwrap();
        assert!(prepared.has_tailf_action);
        assert!(prepared.text.contains("    action ping {"));
        assert!(!prepared.text.contains("some-future-extension"));
        // Comments and strings are left alone.
        assert!(
            prepared
                .text
                .contains("// a comment with tailf:action in it")
        );
        assert!(
            prepared
                .text
                .contains("has \\\"tailf:action\\\" in a string")
        );
        assert_eq!(prepared.warnings.len(), 1);
        let raised = require_yang_1_1(&prepared.text).unwrap();
        assert!(raised.starts_with("module m {\n  yang-version 1.1;"));
        let again = require_yang_1_1("module m { yang-version 1; namespace x; }").unwrap();
        assert_eq!(again, "module m { yang-version 1.1; namespace x; }");
    }

    #[test]
    fn without_a_tailf_import_nothing_changes() {
        let text = "module m { namespace urn:m; prefix m; container c { x:action a; } }";
        let prepared = prepare(text, &known()).unwrap();
        assert_eq!(prepared.text, text);
        assert!(!prepared.has_tailf_action);
    }

    #[test]
    fn submodules_name_their_module() {
        let prepared = prepare(
            "submodule s { belongs-to m { prefix m; } import tailf-common { prefix t; } \
             grouping g { t:action go; } }",
            &known(),
        )
        .unwrap();
        assert!(!prepared.is_module);
        assert_eq!(prepared.belongs_to.as_deref(), Some("m"));
        assert!(prepared.has_tailf_action);
        assert!(prepared.text.contains("grouping g { action go; }"));
    }
}
