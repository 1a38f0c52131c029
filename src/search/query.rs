//! The query language shared by the CLI and the REST API.
//!
//! ```text
//! "red car" -night 2:sunset +img:42 +file:./pool.jpg folder:trips/2019 after:2019-01-01
//! before:2020-01-01 camera:canon type:png
//! ```
//! - Plain words next to each other form one text term ("red car" without quotes is the same);
//!   a quoted phrase is one term.
//! - `-TERM` subtracts a term; `N:TERM` weights it (N may be negative or fractional).
//! - `+img:ID` adds a stored image, `+file:PATH` an image file (CLI only).
//! - `folder:`, `after:`, `before:`, `camera:`, `type:` filter results.
//!
//! A malformed query is an error that names the offending token and its column.

use std::fmt;

use clipsight_indexer::exif::parse_day;

use crate::filters::{Filters, Near};

/// What a term refers to.
#[derive(Debug, Clone, PartialEq)]
pub enum TermKind {
    /// Text to embed with the text encoder.
    Text(String),
    /// A stored image, by id.
    Image(u64),
    /// An image file on the client's disk.
    File(String),
}

/// A weighted part of the query vector.
#[derive(Debug, Clone, PartialEq)]
pub struct Term {
    /// Weight in the sum (negative subtracts).
    pub weight: f32,
    /// What to embed.
    pub kind: TermKind,
}

/// A parsed query.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Query {
    /// Terms combined into one query vector.
    pub terms: Vec<Term>,
    /// Filters.
    pub filters: Filters,
}

/// A syntax error, pointing at the token.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message} at column {column}: {token:?}")]
pub struct QueryError {
    /// 1-based column of the token's first character.
    pub column: usize,
    /// The token.
    pub token: String,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for Term {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.kind {
            TermKind::Text(t) => write!(f, "{}×\"{t}\"", self.weight),
            TermKind::Image(id) => write!(f, "{}×img:{id}", self.weight),
            TermKind::File(p) => write!(f, "{}×file:{p}", self.weight),
        }
    }
}

/// One lexical token: its text (quotes removed), column, and whether it was quoted.
struct Token {
    text: String,
    column: usize,
    quoted_from: Option<usize>,
}

fn tokenize(input: &str) -> Result<Vec<Token>, QueryError> {
    let mut tokens = Vec::new();
    let chars: Vec<(usize, char)> = input.char_indices().collect();
    let mut i = 0;
    while i < chars.len() {
        if chars[i].1.is_whitespace() {
            i += 1;
            continue;
        }
        let column = input[..chars[i].0].chars().count() + 1;
        let mut text = String::new();
        let mut quoted_from = None;
        while i < chars.len() && !chars[i].1.is_whitespace() {
            if chars[i].1 == '"' {
                quoted_from = Some(text.chars().count());
                i += 1;
                let start = i;
                while i < chars.len() && chars[i].1 != '"' {
                    text.push(chars[i].1);
                    i += 1;
                }
                if i == chars.len() {
                    return Err(QueryError {
                        column,
                        token: input[chars[start - 1].0..].to_string(),
                        message: "unclosed quote".into(),
                    });
                }
                i += 1; // closing quote
            } else {
                text.push(chars[i].1);
                i += 1;
            }
        }
        tokens.push(Token { text, column, quoted_from });
    }
    Ok(tokens)
}

/// Parses a query string. An empty one matches every image (browse the library in id order).
pub fn parse(input: &str) -> Result<Query, QueryError> {
    let mut query = Query::default();
    let mut words: Vec<String> = Vec::new(); // consecutive plain words forming one term
    let flush = |words: &mut Vec<String>, query: &mut Query| {
        if !words.is_empty() {
            query.terms.push(Term { weight: 1.0, kind: TermKind::Text(words.join(" ")) });
            words.clear();
        }
    };
    for token in tokenize(input)? {
        let err = |message: &str| QueryError { column: token.column, token: token.text.clone(), message: message.into() };
        let raw = token.text.as_str();
        // Quoted at the start: a phrase, never an operator.
        if token.quoted_from == Some(0) {
            flush(&mut words, &mut query);
            if raw.trim().is_empty() {
                return Err(err("empty phrase"));
            }
            query.terms.push(Term { weight: 1.0, kind: TermKind::Text(raw.to_string()) });
            continue;
        }
        if let Some((key, value)) = raw.split_once(':') {
            let filter_value = || -> Result<String, QueryError> {
                if value.is_empty() {
                    Err(err("missing value after ':'"))
                } else {
                    Ok(value.to_string())
                }
            };
            match key {
                "folder" => {
                    flush(&mut words, &mut query);
                    query.filters.folders.push(filter_value()?.trim_matches('/').to_string());
                    continue;
                }
                "after" | "before" => {
                    flush(&mut words, &mut query);
                    let date = parse_day(&filter_value()?).ok_or_else(|| err("expected a date YYYY-MM-DD"))?;
                    if key == "after" {
                        query.filters.after = Some(date);
                    } else {
                        query.filters.before = Some(date);
                    }
                    continue;
                }
                "near" => {
                    flush(&mut words, &mut query);
                    let near = filter_value()?.parse::<Near>().map_err(|m| err(&m))?;
                    query.filters.near = Some(near);
                    continue;
                }
                "camera" => {
                    flush(&mut words, &mut query);
                    query.filters.camera = Some(filter_value()?.to_lowercase());
                    continue;
                }
                "type" => {
                    flush(&mut words, &mut query);
                    let t = filter_value()?.to_lowercase();
                    let t = match t.as_str() {
                        "jpg" => "jpeg".to_string(),
                        "tif" => "tiff".to_string(),
                        "heif" => "heic".to_string(),
                        "mkv" | "matroska" => "mkv".to_string(),
                        "3g2" => "3gp".to_string(),
                        "photos" => "photo".to_string(),
                        "videos" => "video".to_string(),
                        _ => t,
                    };
                    use clipsight_indexer::format::MediaKind;
                    if let Some(kind) = [MediaKind::Photo, MediaKind::Video].into_iter().find(|k| k.name() == t) {
                        query.filters.kind = Some(kind);
                        continue;
                    }
                    let names = || clipsight_indexer::format::SUPPORTED.map(|f| f.name());
                    if !names().contains(&t.as_str()) {
                        return Err(err(&format!("unknown type (photo, video, {})", names().join(", "))));
                    }
                    query.filters.format = Some(t);
                    continue;
                }
                _ => {}
            }
        }
        // Operators: +img:ID, +file:PATH, -TERM, N:TERM.
        let (weight, body) = split_weight(raw).map_err(|m| err(&m))?;
        match (weight, body) {
            (None, body) if !raw.starts_with(['+', '-']) && !body.contains(':') => words.push(body.to_string()),
            (w, body) => {
                flush(&mut words, &mut query);
                let weight = w.unwrap_or(1.0);
                let kind = if let Some(id) = body.strip_prefix("img:") {
                    TermKind::Image(id.parse().map_err(|_| err("img: needs a numeric image id"))?)
                } else if let Some(path) = body.strip_prefix("file:") {
                    if path.is_empty() {
                        return Err(err("file: needs a path"));
                    }
                    TermKind::File(path.to_string())
                } else if body.contains(':') && token.quoted_from.is_none() {
                    let key = body.split(':').next().unwrap_or_default();
                    return Err(err(&format!(
                        "unknown operator {key:?} (use folder:, after:, before:, camera:, type:, near:, img:, file: or quote the text)"
                    )));
                } else if body.trim().is_empty() {
                    return Err(err("empty term"));
                } else {
                    TermKind::Text(body.to_string())
                };
                query.terms.push(Term { weight, kind });
            }
        }
    }
    flush(&mut words, &mut query);
    Ok(query)
}

/// Splits `-x`, `+x`, `2:x`, `-0.5:x` into (weight, body).
fn split_weight(raw: &str) -> Result<(Option<f32>, &str), String> {
    if let Some((num, body)) = raw.split_once(':') {
        if let Ok(w) = num.parse::<f32>() {
            if !w.is_finite() {
                return Err("weight must be a finite number".into());
            }
            return Ok((Some(w), body));
        }
        if num.chars().next().is_some_and(|c| c.is_ascii_digit()) {
            return Err(format!("{num:?} is not a number"));
        }
    }
    if let Some(body) = raw.strip_prefix('-') {
        return Ok((Some(-1.0), body));
    }
    if let Some(body) = raw.strip_prefix('+') {
        return Ok((Some(1.0), body));
    }
    Ok((None, raw))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn text(w: f32, t: &str) -> Term {
        Term { weight: w, kind: TermKind::Text(t.into()) }
    }

    #[test]
    fn the_full_example_parses_into_terms_and_filters() {
        let q = parse(r#""red car" -night 2:sunset +img:42 +file:./pool.jpg folder:trips/2019 after:2019-01-01 before:2020-01-01 camera:Canon type:png"#).unwrap();
        assert_eq!(
            q.terms,
            vec![
                text(1.0, "red car"),
                text(-1.0, "night"),
                text(2.0, "sunset"),
                Term { weight: 1.0, kind: TermKind::Image(42) },
                Term { weight: 1.0, kind: TermKind::File("./pool.jpg".into()) },
            ]
        );
        assert_eq!(
            q.filters,
            Filters {
                folders: vec!["trips/2019".into()],
                after: parse_day("2019-01-01"),
                before: parse_day("2020-01-01"),
                camera: Some("canon".into()),
                format: Some("png".into()),
                kind: None,
                near: None,
            }
        );
    }

    #[test]
    fn plain_words_join_into_one_term() {
        assert_eq!(parse("golden retriever on a beach").unwrap().terms, vec![text(1.0, "golden retriever on a beach")]);
        assert_eq!(parse("dog -cat bird").unwrap().terms, vec![text(1.0, "dog"), text(-1.0, "cat"), text(1.0, "bird")]);
    }

    #[test]
    fn weights_can_be_fractional_negative_and_quoted() {
        let q = parse(r#"0.5:"blue sky" -2:"city lights""#).unwrap();
        assert_eq!(q.terms, vec![text(0.5, "blue sky"), text(-2.0, "city lights")]);
    }

    #[test]
    fn malformed_queries_point_at_the_bad_token() {
        let e = parse("dog after:2019-13-01").unwrap_err();
        assert_eq!((e.column, e.token.as_str()), (5, "after:2019-13-01"));
        assert!(e.to_string().contains("column 5"));
        assert_eq!(parse("cat +img:abc").unwrap_err().column, 5);
        assert!(parse("\"unclosed").unwrap_err().message.contains("unclosed"));
        assert!(parse("x color:red").unwrap_err().message.contains("unknown operator"));
        assert!(parse("type:psd").is_err());
        assert!(parse("12x:dog").is_err());
    }

    #[test]
    fn quoted_text_may_contain_colons_and_operators() {
        assert_eq!(parse(r#""time: 5:30 -ish""#).unwrap().terms, vec![text(1.0, "time: 5:30 -ish")]);
    }

    #[test]
    fn an_empty_query_matches_everything() {
        assert_eq!(parse("   ").unwrap(), Query::default());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// Any input parses or yields an error whose column lies inside the input.
        #[test]
        fn arbitrary_input_never_panics(input in "\\PC{0,60}|[-+:\"a-z0-9 ._/]{0,40}") {
            if let Err(e) = parse(&input) {
                proptest::prop_assert!(e.column >= 1 && e.column <= input.chars().count() + 1, "{e:?} for {input:?}");
            }
        }

        /// Operator-shaped input (weights, prefixes, filters with odd values) never panics.
        #[test]
        fn operator_soup_never_panics(parts in proptest::collection::vec("(-|\\+|[0-9.]{1,4}:)?(img|file|folder|after|before|camera|type)?:?[a-z0-9\"-]{0,8}", 0..6)) {
            let input = parts.join(" ");
            let _ = parse(&input);
        }
    }

    #[test]
    fn filters_alone_are_a_valid_query() {
        let q = parse("type:jpg").unwrap();
        assert!(q.terms.is_empty());
        assert_eq!(q.filters.format.as_deref(), Some("jpeg"));
    }
}
