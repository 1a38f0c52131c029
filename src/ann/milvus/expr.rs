//! Filters as a Milvus boolean expression, so the server filters while it searches; what an
//! expression of Milvus 2.3 cannot say (a substring of the camera, a distance on the sphere, a
//! folder fragment longer than the stored runs) is pushed down as far as it goes and checked on
//! the returned fields.

use crate::filters::Filters;

use super::rows::{day_number, Found, FOLDER_RUN};

/// Kilometres per degree of latitude (and of longitude at the equator).
const KM_PER_DEGREE: f64 = 111.19;

/// A quoted string literal of the expression language: quotes and backslashes escaped, and
/// control characters (which the grammar refuses raw) as escape sequences.
fn quoted(s: &str) -> String {
    let mut out = String::with_capacity(s.len() + 2);
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if c.is_control() => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

/// Filters split into the server's expression and the checks left for the client.
pub struct Pushdown<'a> {
    /// The expression (empty: every row).
    pub expr: String,
    filters: &'a Filters,
    /// Folder fragments too long for the stored runs.
    long_folders: Vec<&'a str>,
}

impl<'a> Pushdown<'a> {
    /// `filters`, restricted to the rows of library `origin` when given.
    pub fn of(filters: &'a Filters, origin: Option<&str>) -> Self {
        let mut terms = Vec::new();
        if let Some(origin) = origin {
            terms.push(format!("origin == {}", quoted(origin)));
        }
        let mut long_folders = Vec::new();
        for folder in &filters.folders {
            let fragment = folder.trim_matches('/');
            if fragment.split('/').count() <= FOLDER_RUN {
                terms.push(format!("array_contains(folders, {})", quoted(fragment)));
            } else {
                long_folders.push(folder.as_str());
            }
        }
        if let Some(after) = filters.after {
            terms.push(format!("day >= {}", day_number(after)));
        }
        if let Some(before) = filters.before {
            terms.push(format!("day > 0 and day < {}", day_number(before)));
        }
        if let Some(format) = &filters.format {
            terms.push(format!("array_contains(formats, {})", quoted(format)));
        }
        if let Some(kind) = filters.kind {
            terms.push(format!("kind == {}", kind as i8));
        }
        if let Some(near) = filters.near {
            let dlat = near.km / KM_PER_DEGREE;
            terms.push(format!("gps == true and lat >= {} and lat <= {}", near.lat - dlat, near.lat + dlat));
            let cos = (near.lat.abs() + dlat).min(90.0).to_radians().cos();
            let dlon = if cos > 1e-6 { near.km / (KM_PER_DEGREE * cos) } else { 360.0 };
            if near.lon - dlon >= -180.0 && near.lon + dlon <= 180.0 {
                terms.push(format!("lon >= {} and lon <= {}", near.lon - dlon, near.lon + dlon));
            }
        }
        Self { expr: terms.join(" and "), filters, long_folders }
    }

    /// Whether the server's answer is final (nothing is left to check here).
    pub fn exact(&self) -> bool {
        self.long_folders.is_empty() && self.filters.camera.is_none() && self.filters.near.is_none()
    }

    /// The fields the checks left here read.
    pub fn fields(&self) -> Vec<&'static str> {
        let mut fields = Vec::new();
        if !self.long_folders.is_empty() {
            fields.push("path");
        }
        if self.filters.camera.is_some() {
            fields.push("camera");
        }
        if self.filters.near.is_some() {
            fields.extend(["lat", "lon"]);
        }
        fields
    }

    /// Whether row `i` of `found` passes the checks left here.
    pub fn accepts(&self, found: &Found, i: usize) -> bool {
        let path_ok = self.long_folders.is_empty()
            || found.paths.as_ref().and_then(|p| p.get(i)).is_some_and(|path| {
                let path = format!("/{}", path.trim_start_matches('/'));
                self.long_folders.iter().all(|f| path.contains(&format!("/{}/", f.trim_matches('/'))))
            });
        let camera_ok = self.filters.camera.as_deref().is_none_or(|c| found.cameras.as_ref().and_then(|v| v.get(i)).is_some_and(|cam| cam.contains(c)));
        let near_ok = self.filters.near.is_none_or(|near| found.places.as_ref().and_then(|v| v.get(i)).is_some_and(|&place| near.contains(place)));
        path_ok && camera_ok && near_ok
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::parse;

    fn pushdown_of(query: &str) -> (String, bool) {
        let filters = parse(query).unwrap().filters;
        let p = Pushdown::of(&filters, Some("lib1"));
        (p.expr.clone(), p.exact())
    }

    #[test]
    fn filters_become_one_expression_and_only_what_it_cannot_say_is_left() {
        assert_eq!(pushdown_of("cat"), ("origin == \"lib1\"".into(), true));
        let (expr, exact) = pushdown_of("cat folder:trips/2019 after:2019-01-01 before:2020-01-01 type:jpeg");
        assert_eq!(expr, "origin == \"lib1\" and array_contains(folders, \"trips/2019\") and day >= 20190101 and day > 0 and day < 20200101 and array_contains(formats, \"jpeg\")");
        assert!(exact);
        let (expr, exact) = pushdown_of("cat type:video camera:canon");
        assert!(expr.ends_with("kind == 1"), "{expr}");
        assert!(!exact, "a camera is a substring, checked on the returned field");
        let (expr, exact) = pushdown_of("cat near:48.8584,2.2945,5");
        assert!(expr.contains("gps == true and lat >= 48.8") && expr.contains("lon >= 2.2"), "{expr}");
        assert!(!exact, "the box is pushed down, the circle checked here");
        assert!(!pushdown_of("cat folder:a/b/c/d/e").1, "five folders are more than the stored runs");
    }

    #[test]
    fn quotes_and_backslashes_cannot_end_a_literal() {
        assert_eq!(quoted(r#"a"b\c"#), r#""a\"b\\c""#);
        assert_eq!(quoted("a\nb\tc\u{7}"), r#""a\nb\tc\u0007""#, "control characters as escapes");
    }
}
