//! What a video is, from `ffprobe -of json`: its picture stream's size and rotation, its
//! duration, and the date, place and camera its container's tags record.

use std::path::Path;
use std::time::Duration;

use serde::Deserialize;

use super::process::{run_to_end, VideoError};
use crate::exif::{CaptureDate, ExifMeta};

/// The facts about a video that indexing needs.
#[derive(Debug, Clone, PartialEq)]
pub struct VideoInfo {
    /// Width of the picture as shown (rotation applied).
    pub width: u32,
    /// Height of the picture as shown.
    pub height: u32,
    /// Length in seconds (0 when the container does not say).
    pub duration_s: f64,
    /// Date, camera and GPS position from the container's tags.
    pub meta: ExifMeta,
}

#[derive(Deserialize)]
struct Probe {
    #[serde(default)]
    streams: Vec<Stream>,
    format: Option<Format>,
}

#[derive(Deserialize)]
struct Stream {
    codec_type: Option<String>,
    width: Option<u32>,
    height: Option<u32>,
    duration: Option<String>,
    #[serde(default)]
    disposition: Disposition,
    #[serde(default)]
    side_data_list: Vec<SideData>,
    #[serde(default)]
    tags: Tags,
}

#[derive(Deserialize, Default)]
struct Disposition {
    #[serde(default)]
    attached_pic: u8,
}

#[derive(Deserialize)]
struct SideData {
    rotation: Option<f64>,
}

#[derive(Deserialize)]
struct Format {
    duration: Option<String>,
    #[serde(default)]
    tags: Tags,
}

/// Container or stream tags: free-form strings, of which a few are well known.
#[derive(Deserialize, Default)]
struct Tags(std::collections::HashMap<String, String>);

impl Tags {
    /// The first of `keys` present (tag names compared case-insensitively, as writers differ).
    fn get(&self, keys: &[&str]) -> Option<&str> {
        keys.iter().find_map(|k| self.0.iter().find(|(name, _)| name.eq_ignore_ascii_case(k)).map(|(_, v)| v.as_str()))
    }
}

/// Probes `path` with ffprobe, allowing it `budget`.
pub fn probe(path: &Path, budget: Duration) -> Result<VideoInfo, VideoError> {
    let mut command = std::process::Command::new("ffprobe");
    command.args(["-v", "error", "-print_format", "json", "-show_format", "-show_streams"]).arg(path);
    let output = run_to_end(command, budget)?;
    parse(&output)
}

/// Reads ffprobe's JSON.
fn parse(json: &[u8]) -> Result<VideoInfo, VideoError> {
    // ffprobe replaces invalid UTF-8 in tags itself; should a build not, the file still indexes.
    let json = String::from_utf8_lossy(json);
    let probe: Probe = serde_json::from_str(&json).map_err(|e| VideoError::Corrupt(format!("ffprobe printed no usable JSON ({e})")))?;
    let stream = probe
        .streams
        .iter()
        .find(|s| s.codec_type.as_deref() == Some("video") && s.disposition.attached_pic == 0)
        .ok_or(VideoError::NoVideoStream)?;
    let (w, h) = match (stream.width, stream.height) {
        (Some(w), Some(h)) if w > 0 && h > 0 => (w, h),
        _ => return Err(VideoError::Corrupt("the video stream has no picture size".into())),
    };
    let rotation = stream.side_data_list.iter().find_map(|d| d.rotation).or_else(|| stream.tags.get(&["rotate"]).and_then(|r| r.parse().ok())).unwrap_or(0.0);
    let quarter_turns = ((rotation / 90.0).round() as i64).rem_euclid(4);
    let (width, height) = if quarter_turns % 2 == 1 { (h, w) } else { (w, h) };
    let format = probe.format.as_ref();
    let seconds = |s: Option<&String>| s.and_then(|d| d.parse::<f64>().ok()).filter(|d| d.is_finite() && *d >= 0.0);
    let duration_s = seconds(format.and_then(|f| f.duration.as_ref())).or_else(|| seconds(stream.duration.as_ref())).unwrap_or(0.0);
    let empty = Tags::default();
    let tags = format.map_or(&empty, |f| &f.tags);
    Ok(VideoInfo { width, height, duration_s, meta: meta_of(tags) })
}

/// Date, camera and position from container tags (QuickTime's `com.apple.quicktime.*`, and the
/// generic `creation_time`/`location` that FFmpeg maps MP4 and Matroska tags to).
fn meta_of(tags: &Tags) -> ExifMeta {
    // QuickTime's creation date is the camera's local time with its offset: keep the local time,
    // as EXIF does. `creation_time` is UTC, the best there is otherwise.
    let date_taken = tags.get(&["com.apple.quicktime.creationdate", "creation_time", "date"]).and_then(local_date);
    // As for EXIF: control characters dropped, the rest kept.
    let text = |keys: &[&str]| tags.get(keys).map(|t| t.chars().filter(|c| !c.is_control()).collect::<String>().trim().to_string()).filter(|s| !s.is_empty());
    ExifMeta {
        date_taken,
        make: text(&["com.apple.quicktime.make", "make", "com.android.manufacturer"]),
        model: text(&["com.apple.quicktime.model", "model", "com.android.model"]),
        lens: None,
        gps: tags.get(&["com.apple.quicktime.location.ISO6709", "location"]).and_then(iso6709),
    }
}

/// `YYYY-MM-DDTHH:MM:SS…` (any fraction and offset after) as a capture date.
fn local_date(text: &str) -> Option<CaptureDate> {
    let head = text.trim().get(..19)?;
    CaptureDate::parse(&head.replacen('T', " ", 1))
}

/// Latitude and longitude of an ISO 6709 point in decimal degrees (`+48.8584+002.2945+035.0/`).
fn iso6709(text: &str) -> Option<(f64, f64)> {
    let text = text.trim().trim_end_matches('/');
    let mut starts = text.char_indices().filter(|(_, c)| *c == '+' || *c == '-').map(|(i, _)| i);
    let (a, b) = (starts.next()?, starts.next()?);
    let end = starts.next().unwrap_or(text.len());
    if a != 0 {
        return None;
    }
    let lat: f64 = text[a..b].parse().ok()?;
    let lon: f64 = text[b..end].parse().ok()?;
    ((-90.0..=90.0).contains(&lat) && (-180.0..=180.0).contains(&lon)).then_some((lat, lon))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_phone_video_gives_its_shown_size_duration_date_camera_and_place() {
        let json = br#"{"streams":[
            {"codec_type":"video","width":1920,"height":1080,"disposition":{"attached_pic":0},
             "side_data_list":[{"side_data_type":"Display Matrix","rotation":-90}]},
            {"codec_type":"audio"}],
          "format":{"duration":"12.500000","tags":{
            "com.apple.quicktime.creationdate":"2024-05-01T12:34:56+0200",
            "creation_time":"2024-05-01T10:34:56.000000Z",
            "com.apple.quicktime.make":"Apple","com.apple.quicktime.model":"iPhone 15",
            "com.apple.quicktime.location.ISO6709":"+48.8584+002.2945+035.000/"}}}"#;
        let info = parse(json).unwrap();
        assert_eq!((info.width, info.height), (1080, 1920), "turned a quarter: shown upright");
        assert_eq!(info.duration_s, 12.5);
        assert_eq!(info.meta.date_taken.unwrap().to_string(), "2024-05-01 12:34:56", "the camera's local time");
        assert_eq!((info.meta.make.as_deref(), info.meta.model.as_deref()), (Some("Apple"), Some("iPhone 15")));
        assert_eq!(info.meta.gps, Some((48.8584, 2.2945)));
    }

    #[test]
    fn audio_cover_art_and_odd_tags_are_not_mistaken_for_a_video() {
        let audio = br#"{"streams":[{"codec_type":"audio"},
            {"codec_type":"video","width":600,"height":600,"disposition":{"attached_pic":1}}],"format":{}}"#;
        assert!(matches!(parse(audio), Err(VideoError::NoVideoStream)));
        let odd = br#"{"streams":[{"codec_type":"video","width":64,"height":48}],
          "format":{"duration":"N/A","tags":{"creation_time":"yesterday","location":"+999.0+000.0/"}}}"#;
        let info = parse(odd).unwrap();
        assert_eq!((info.duration_s, info.meta.date_taken, info.meta.gps), (0.0, None, None));
        assert!(matches!(parse(b"not json"), Err(VideoError::Corrupt(_))));
        let bytes = b"{\"streams\":[{\"codec_type\":\"video\",\"width\":8,\"height\":8}],\"format\":{\"tags\":{\"make\":\"Caf\xe9\\u0001 \xff\",\"date\":\"2019:06:0\xe9\"}}}";
        let info = parse(bytes).expect("invalid UTF-8 in tags does not lose the video");
        assert_eq!((info.meta.make.as_deref(), info.meta.date_taken), (Some("Caf\u{fffd} \u{fffd}"), None));
        assert_eq!(iso6709("-33.8568+151.2153/"), Some((-33.8568, 151.2153)));
    }
}
