//! Table and column names from the config file, validated and always quoted, so a name can
//! never become SQL: a name is any text without `"`, NUL or control characters, at most 63
//! bytes (PostgreSQL's limit), and is sent as a double-quoted identifier, matched exactly
//! (`updatedAt` stays `updatedAt`).

use std::fmt;

/// A validated column (or table, or schema) name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ident(String);

impl Ident {
    /// Validates a name.
    ///
    /// # Errors
    /// What is wrong with it.
    pub fn new(name: &str) -> Result<Self, String> {
        if name.is_empty() {
            return Err("is empty".to_owned());
        }
        if name.len() > 63 {
            return Err(format!(
                "{name:?} is {} bytes long; names are at most 63",
                name.len()
            ));
        }
        if name.chars().any(|c| c == '"' || c.is_control()) {
            return Err(format!(
                "{:?} contains a double quote or a control character, which no table or column name may",
                name.escape_debug().to_string()
            ));
        }
        Ok(Self(name.to_owned()))
    }

    /// The name as written in the config.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The name as a quoted SQL identifier.
    pub fn quoted(&self) -> String {
        format!("\"{}\"", self.0)
    }
}

impl fmt::Display for Ident {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// A table name, optionally schema-qualified (`schema.table`, PostgreSQL only).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TableName {
    /// The schema, when qualified.
    pub schema: Option<Ident>,
    /// The table.
    pub name: Ident,
}

impl TableName {
    /// Parses `table` or `schema.table`.
    ///
    /// # Errors
    /// What is wrong with it.
    pub fn parse(text: &str) -> Result<Self, String> {
        match text.split_once('.') {
            None => Ok(Self {
                schema: None,
                name: Ident::new(text)?,
            }),
            Some((schema, name)) if !name.contains('.') => Ok(Self {
                schema: Some(Ident::new(schema).map_err(|e| format!("schema {e}"))?),
                name: Ident::new(name)?,
            }),
            Some(_) => Err(format!(
                "{text:?} has more than one dot; write table or schema.table"
            )),
        }
    }

    /// The quoted SQL form, `"schema"."table"` or `"table"`.
    pub fn quoted(&self) -> String {
        match &self.schema {
            Some(schema) => format!("{}.{}", schema.quoted(), self.name.quoted()),
            None => self.name.quoted(),
        }
    }
}

impl fmt::Display for TableName {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.schema {
            Some(schema) => write!(f, "{schema}.{}", self.name),
            None => write!(f, "{}", self.name),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_are_quoted_exactly_as_written() {
        assert_eq!(Ident::new("updatedAt").unwrap().quoted(), "\"updatedAt\"");
        let t = TableName::parse("app.credentials").unwrap();
        assert_eq!(t.quoted(), "\"app\".\"credentials\"");
        assert_eq!(t.to_string(), "app.credentials");
    }

    #[test]
    fn names_that_could_become_sql_are_refused() {
        for bad in ["", "x\"; DROP TABLE t; --", "a\nb", &"n".repeat(64)] {
            assert!(Ident::new(bad).is_err(), "{bad:?}");
        }
        assert!(TableName::parse("a.b.c").is_err());
        assert!(TableName::parse(".t").is_err());
    }
}
