//! Which images a query may return: the filters of the query language (`folder:`, `after:`,
//! `before:`, `camera:`, `type:`, `near:`) as data, so that every vector index can apply them — a local
//! one by checking each candidate's record, a remote one by translating them into its own
//! filter expressions.

use clipsight_indexer::format::MediaKind;

use crate::store::FileRecord;

/// Restrictions on which images may be returned.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Filters {
    /// Path must contain this folder (a path fragment, matched on whole components).
    pub folders: Vec<String>,
    /// Taken on or after this day (`after:YYYY-MM-DD`), from EXIF.
    pub after: Option<jiff::civil::Date>,
    /// Taken before this day (`before:YYYY-MM-DD`), from EXIF.
    pub before: Option<jiff::civil::Date>,
    /// Camera make or model contains this (case-insensitive).
    pub camera: Option<String>,
    /// File format ("jpeg", "png", ...): the item's own or a companion's (`type:cr2` finds a RAW
    /// listed beside its JPEG twin).
    pub format: Option<String>,
    /// Photos only or videos only (`type:photo`, `type:video`).
    pub kind: Option<MediaKind>,
    /// Taken within a distance of a place (`near:LAT,LON,KM`), from EXIF or the video container.
    pub near: Option<Near>,
}

/// A place and a radius: `near:48.8584,2.2945,5` (degrees, kilometres).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Near {
    /// Latitude in degrees (−90 to 90).
    pub lat: f64,
    /// Longitude in degrees (−180 to 180).
    pub lon: f64,
    /// Radius in kilometres (more than 0).
    pub km: f64,
}

/// Mean Earth radius (IUGG), kilometres.
const EARTH_RADIUS_KM: f64 = 6371.0088;

impl Near {
    /// Whether `(lat, lon)` lies within the radius (great-circle distance, haversine).
    pub fn contains(&self, (lat, lon): (f64, f64)) -> bool {
        let (p1, p2) = (self.lat.to_radians(), lat.to_radians());
        let (dp, dl) = (p2 - p1, (lon - self.lon).to_radians());
        let h = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
        2.0 * EARTH_RADIUS_KM * h.sqrt().min(1.0).asin() <= self.km
    }
}

impl std::str::FromStr for Near {
    type Err = String;

    /// `LAT,LON,KM`.
    fn from_str(text: &str) -> Result<Self, String> {
        let usage = "near: takes LAT,LON,KM (degrees and kilometres, e.g. near:48.8584,2.2945,5)";
        let parts: Vec<f64> = text.split(',').map(|p| p.trim().parse::<f64>()).collect::<Result<_, _>>().map_err(|_| usage.to_string())?;
        let [lat, lon, km] = parts[..] else { return Err(usage.into()) };
        if !((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon) && km > 0.0 && km.is_finite()) {
            return Err(usage.into());
        }
        Ok(Near { lat, lon, km })
    }
}

impl Filters {
    /// True when no filter is set.
    pub fn is_empty(&self) -> bool {
        *self == Filters::default()
    }

    /// Whether a record passes the filters.
    pub fn matches(&self, record: &FileRecord) -> bool {
        let filters = self;
        let path = record.display_path();
        let in_folder = |folder: &String| {
            let needle = format!("/{folder}/");
            format!("/{}", path.trim_start_matches('/')).contains(&needle)
        };
        let day = record.exif.date_taken.map(|d| d.day());
        filters.folders.iter().all(in_folder)
            && filters.after.is_none_or(|a| day.is_some_and(|d| d >= a))
            && filters.before.is_none_or(|b| day.is_some_and(|d| d < b))
            && filters.camera.as_deref().is_none_or(|c| {
                let cam = format!("{} {}", record.exif.make.as_deref().unwrap_or(""), record.exif.model.as_deref().unwrap_or(""));
                cam.to_lowercase().contains(c)
            })
            && filters.format.as_deref().is_none_or(|f| record.formats().any(|own| own == f))
            && filters.kind.is_none_or(|k| record.kind() == k)
            && filters.near.is_none_or(|near| record.exif.gps.is_some_and(|gps| near.contains(gps)))
    }

    /// These filters narrowed to one kind of media; `None` when they already exclude it.
    pub fn of_kind(&self, kind: MediaKind) -> Option<Filters> {
        if self.kind.is_some_and(|k| k != kind) || self.format.as_deref().and_then(clipsight_indexer::format::MediaFormat::from_name).is_some_and(|f| f.kind() != kind) {
            return None;
        }
        Some(Filters { kind: Some(kind), ..self.clone() })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::search::parse;
    use crate::store::{CaptureDate, ExifMeta};

    fn record(path: &str, date: Option<&str>, make: Option<&str>, format: &str) -> FileRecord {
        FileRecord {
            exif: ExifMeta { date_taken: date.and_then(CaptureDate::parse), make: make.map(String::from), ..Default::default() },
            ..FileRecord::synthetic(path, [0; 32], format)
        }
    }

    #[test]
    fn filters_match_folder_components_dates_camera_and_type() {
        let r = record("/photos/trips/2019/beach.jpg", Some("2019-06-01 10:00:00"), Some("Canon"), "jpeg");
        let q = |s: &str| parse(s).unwrap().filters;
        assert!(q("folder:trips/2019").matches(&r));
        assert!(!q("folder:trips/201").matches(&r), "whole components only");
        assert!(q("after:2019-01-01 before:2020-01-01").matches(&r));
        assert!(!q("after:2019-06-02").matches(&r));
        assert!(q("camera:canon type:jpg").matches(&r));
        assert!(!q("camera:nikon").matches(&r));
        assert!(!q("after:2000-01-01").matches(&record("/x.png", None, None, "png")), "no date, no match");
        let clip = record("/v/clip.mov", None, None, "mov");
        assert!(q("type:video").matches(&clip) && q("type:mov").matches(&clip) && !q("type:photo").matches(&clip));
        assert!(q("type:photo").matches(&r) && !q("type:video").matches(&r));
        assert_eq!(q("type:mov").of_kind(MediaKind::Photo), None, "a video format excludes photos");
        assert_eq!(q("type:photo").of_kind(MediaKind::Video), None);
        assert_eq!(q("camera:canon").of_kind(MediaKind::Video).unwrap().kind, Some(MediaKind::Video));
    }

    #[test]
    fn near_keeps_what_was_taken_within_the_radius() {
        let at = |gps: Option<(f64, f64)>| FileRecord { exif: ExifMeta { gps, ..Default::default() }, ..FileRecord::synthetic("/p.jpg", [0; 32], "jpeg") };
        let q = |s: &str| parse(s).unwrap().filters;
        let (eiffel, louvre, sydney) = (Some((48.8584, 2.2945)), Some((48.8606, 2.3376)), Some((-33.8568, 151.2153)));
        // The Eiffel Tower and the Louvre are 3.2 km apart.
        assert!(q("near:48.8584,2.2945,5").matches(&at(louvre)));
        assert!(!q("near:48.8584,2.2945,3").matches(&at(louvre)));
        assert!(q("near:48.8584,2.2945,0.01").matches(&at(eiffel)));
        assert!(!q("near:48.8584,2.2945,5000").matches(&at(sydney)));
        assert!(q("near:-33.86,151.21,2").matches(&at(sydney)));
        assert!(!q("near:48.8584,2.2945,5").matches(&at(None)), "no position, no match");
        // Across the antimeridian: 179.99° E and 179.99° W are 2 km apart at the equator.
        assert!(q("near:0,179.99,3").matches(&at(Some((0.0, -179.99)))));
        for bad in ["near:48.8,2.3", "near:91,0,1", "near:0,0,0", "near:0,0,-1", "near:a,b,c", "near:0,0,1,2", "near:0,0,inf"] {
            assert!(parse(bad).is_err(), "{bad} is refused");
        }
    }
}
