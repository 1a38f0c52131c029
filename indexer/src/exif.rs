//! EXIF metadata, read once at index time into valid UTF-8 text and typed values, so nothing
//! downstream (filters, facets, keywords, the API) ever sees a camera's raw bytes.

use std::io::Cursor;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

/// Metadata read from EXIF, when the file has it.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct ExifMeta {
    /// DateTimeOriginal (else DateTime). Records written before dates were typed held the EXIF
    /// text with dashes in the date (`2019-06-01 10:00:00`), whatever bytes it had; one that does
    /// not parse reads back as no date.
    #[serde(deserialize_with = "lenient_date")]
    pub date_taken: Option<CaptureDate>,
    /// Camera make.
    pub make: Option<String>,
    /// Camera model.
    pub model: Option<String>,
    /// Lens model.
    pub lens: Option<String>,
    /// GPS position (latitude, longitude) in degrees.
    pub gps: Option<(f64, f64)>,
}

/// When a photo was taken, by the camera's clock (EXIF dates carry no time zone).
/// Written as `YYYY-MM-DD HH:MM:SS`; compares chronologically.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CaptureDate(jiff::civil::DateTime);

impl CaptureDate {
    /// Parses EXIF's `YYYY:MM:DD HH:MM:SS` (or the `YYYY-MM-DD HH:MM:SS` this type writes);
    /// `None` for anything else, including impossible dates.
    pub fn parse(text: &str) -> Option<Self> {
        let text = text.trim_matches(|c: char| c.is_whitespace() || c == '\0');
        [("dddd:dd:dd dd:dd:dd", "%Y:%m:%d %H:%M:%S"), ("dddd-dd-dd dd:dd:dd", "%Y-%m-%d %H:%M:%S")]
            .iter()
            .find(|(shape, _)| has_shape(text, shape))
            .and_then(|(_, format)| jiff::civil::DateTime::strptime(format, text).ok())
            .map(Self)
    }

    /// The calendar day.
    pub fn day(&self) -> jiff::civil::Date {
        self.0.date()
    }
}

/// A calendar day written `YYYY-MM-DD`, as [`CaptureDate::day`] prints it; `None` for anything
/// else, including impossible days.
pub fn parse_day(text: &str) -> Option<jiff::civil::Date> {
    has_shape(text, "dddd-dd-dd").then(|| jiff::civil::Date::strptime("%Y-%m-%d", text).ok()).flatten()
}

/// Whether `text` has exactly the shape `shape` (`d` a digit, anything else itself). Checked
/// before parsing: jiff's strptime alone also takes signs, spaces and unpadded fields.
fn has_shape(text: &str, shape: &str) -> bool {
    text.len() == shape.len() && text.bytes().zip(shape.bytes()).all(|(t, s)| if s == b'd' { t.is_ascii_digit() } else { t == s })
}

impl std::fmt::Display for CaptureDate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}", self.0.strftime("%Y-%m-%d %H:%M:%S"))
    }
}

impl Serialize for CaptureDate {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for CaptureDate {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("not a date: {text:?}")))
    }
}

fn lenient_date<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Option<CaptureDate>, D::Error> {
    Ok(Option::<String>::deserialize(deserializer)?.as_deref().and_then(CaptureDate::parse))
}

/// What [`read_exif`] found, and what it had to leave out.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ExifRead {
    /// The fields kept.
    pub meta: ExifMeta,
    /// Values present but unusable (an unparseable date), for the indexing report.
    pub warnings: Vec<String>,
}

/// EXIF fields clipsight keeps; empty when the file has no (readable) EXIF. Text is decoded to
/// valid UTF-8 (invalid bytes become U+FFFD, control characters are dropped) and trimmed.
pub fn read_exif(bytes: &[u8]) -> ExifRead {
    exif::Reader::new().read_from_container(&mut Cursor::new(bytes)).map_or_else(|_| ExifRead::default(), |exif| fields_of(&exif))
}

/// [`read_exif`] for a bare EXIF block (a TIFF header and its IFDs), as HEIF files store it.
pub fn read_exif_tiff(tiff: Vec<u8>) -> ExifRead {
    exif::Reader::new().read_raw(tiff).map_or_else(|_| ExifRead::default(), |exif| fields_of(&exif))
}

fn fields_of(exif: &exif::Exif) -> ExifRead {
    let text = |tag: exif::Tag| -> Option<String> {
        let field = exif.get_field(tag, exif::In::PRIMARY)?;
        let raw = match &field.value {
            exif::Value::Ascii(parts) => String::from_utf8_lossy(parts.first()?).into_owned(),
            _ => field.display_value().to_string(),
        };
        let clean: String = raw.chars().filter(|c| !c.is_control()).collect();
        Some(clean.trim().to_string()).filter(|s| !s.is_empty())
    };
    // DateTimeOriginal, else DateTime (when the first is missing or not a date).
    let mut not_dates = Vec::new();
    let date_taken = [exif::Tag::DateTimeOriginal, exif::Tag::DateTime].into_iter().find_map(|tag| {
        let d = text(tag)?;
        let date = CaptureDate::parse(&d);
        // Cameras without a set clock write blanks or zeros: no date, nothing to report.
        if date.is_none() && d.chars().any(|c| c.is_alphanumeric() && c != '0') {
            not_dates.push(format!("{tag} {d:?}"));
        }
        date
    });
    let mut warnings = Vec::new();
    if !not_dates.is_empty() {
        let outcome = if date_taken.is_some() { "DateTime is used instead" } else { "the photo has no date" };
        warnings.push(format!("EXIF {} is not a date (YYYY:MM:DD HH:MM:SS); {outcome}", not_dates.join(", ")));
    }
    let coordinate = |value: exif::Tag, reference: exif::Tag, negative: &str| -> Option<f64> {
        let field = exif.get_field(value, exif::In::PRIMARY)?;
        let exif::Value::Rational(parts) = &field.value else { return None };
        signed_degrees(parts.iter().map(|r| r.to_f64()), text(reference).is_some_and(|r| r.starts_with(negative)))
    };
    let gps = coordinate(exif::Tag::GPSLatitude, exif::Tag::GPSLatitudeRef, "S")
        .zip(coordinate(exif::Tag::GPSLongitude, exif::Tag::GPSLongitudeRef, "W"));
    let meta = ExifMeta {
        date_taken,
        make: text(exif::Tag::Make),
        model: text(exif::Tag::Model),
        lens: text(exif::Tag::LensModel),
        gps,
    };
    ExifRead { meta, warnings }
}

/// Degrees, minutes and seconds (the first three of `parts`) as degrees, negative in the southern
/// or western hemisphere; `None` when a part is not finite (a zero denominator).
pub(crate) fn signed_degrees(parts: impl IntoIterator<Item = f64>, negative: bool) -> Option<f64> {
    let deg = parts.into_iter().take(3).enumerate().map(|(i, part)| part / 60f64.powi(i as i32)).sum::<f64>();
    deg.is_finite().then_some(if negative { -deg } else { deg })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exif_dates_parse_into_typed_values_and_print_iso_like() {
        let d = CaptureDate::parse("2019:06:01 10:20:30").unwrap();
        assert_eq!(d.to_string(), "2019-06-01 10:20:30");
        assert_eq!(CaptureDate::parse(&d.to_string()), Some(d), "what it writes it reads");
        assert_eq!(d.day().to_string(), "2019-06-01");
        assert!(CaptureDate::parse("2019:06:01 10:20:31").unwrap() > d);
        assert_eq!(parse_day("2019-06-01"), Some(d.day()));
        for bad in ["2019-6-01", "2019-02-30", "+2019-06-01", "2019:06:01"] {
            assert_eq!(parse_day(bad), None, "{bad:?}");
        }
        for bad in ["2019:06:0\u{e9} 10:00:00", "2019:13:01 10:00:00", "0000:00:00 00:00:00", "    :  :     :  :  ", "", "2019", "-2019:06:01 10:00:00", "2019:6:01 10:00:00", "2019: 6:01 10:00:00"] {
            assert_eq!(CaptureDate::parse(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn records_with_an_unparseable_stored_date_read_back_without_a_date() {
        #[derive(Serialize)]
        struct Old {
            date_taken: Option<String>,
            make: Option<String>,
            model: Option<String>,
            lens: Option<String>,
            gps: Option<(f64, f64)>,
        }
        let old = |date: &str| Old { date_taken: Some(date.into()), make: Some("Canon".into()), model: None, lens: None, gps: None };
        let read = |o: &Old| serde_json::from_value::<ExifMeta>(serde_json::to_value(o).unwrap()).unwrap();
        assert_eq!(read(&old("2019-06-0\u{e9} 10:00")).date_taken, None);
        assert_eq!(read(&old("2019-06-0\u{e9} 10:00")).make.as_deref(), Some("Canon"));
        assert_eq!(read(&old("2019-06-01 10:00:00")).date_taken.unwrap().to_string(), "2019-06-01 10:00:00");
    }
}
