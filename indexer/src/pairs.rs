//! Files that are one picture: a camera's RAW beside its JPEG (or HEIF) twin, and an Apple Live
//! Photo's still beside its motion video. Cameras and phones name both files alike
//! (`IMG_0001.CR2` + `IMG_0001.JPG`, `IMG_0001.HEIC` + `IMG_0001.MOV`), so files are grouped by
//! folder and name without extension (ASCII case ignored); in a group with exactly one still that
//! is not RAW, that still is the item people see and search, and the group's RAW files and short
//! QuickTime/MP4 videos are listed beside it as its companions. Anything else stays on its own.
//!
//! The still is the one embedded: it is the camera's own rendering of the RAW (or the frame the
//! Live Photo shows), decodes far faster, and every browser shows it.

use std::collections::HashMap;
use std::path::PathBuf;

use crate::format::{MediaFormat, MediaKind};
use crate::walk::Candidate;

/// Whether files that are one picture are shown as one item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pairing {
    /// A RAW+JPEG pair or a Live Photo is one item listing both files (the default).
    #[default]
    Together,
    /// Every file is an item of its own.
    Separate,
}

/// Why a companion is listed beside an item.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CompanionRole {
    /// The camera's RAW file of the same shot.
    Raw,
    /// A Live Photo's motion: the seconds around the still, as a video.
    Motion,
}

impl CompanionRole {
    /// The role of a file of `format` beside a still, when it can be one.
    pub fn of(format: MediaFormat) -> Option<CompanionRole> {
        if format.is_raw() {
            Some(CompanionRole::Raw)
        } else if matches!(format, MediaFormat::Mov | MediaFormat::Mp4) {
            Some(CompanionRole::Motion)
        } else {
            None
        }
    }
}

/// One item of the library: the file that is embedded and shown, and the files listed with it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Item {
    /// The file embedded and shown.
    pub primary: Candidate,
    /// Files of the same picture, in walk order.
    pub companions: Vec<Candidate>,
}

impl Item {
    /// An item of one file.
    pub fn single(primary: Candidate) -> Self {
        Item { primary, companions: Vec::new() }
    }

    /// Every sidecar of the item's files, each once: what people wrote about the RAW (darktable
    /// writes `IMG_0001.CR2.xmp`) belongs to the picture the item shows.
    pub fn sidecars(&self) -> Vec<PathBuf> {
        let mut all = self.primary.sidecars.clone();
        for sidecar in self.companions.iter().flat_map(|c| &c.sidecars) {
            if !all.contains(sidecar) {
                all.push(sidecar.clone());
            }
        }
        all
    }
}

/// Groups walked files into items, keeping the walk's order of the items' primary files.
pub fn group(files: Vec<Candidate>, pairing: Pairing) -> Vec<Item> {
    if pairing == Pairing::Separate {
        return files.into_iter().map(Item::single).collect();
    }
    let mut by_name: HashMap<(PathBuf, Vec<u8>), Vec<usize>> = HashMap::new();
    for (i, file) in files.iter().enumerate() {
        by_name.entry(name_key(file)).or_default().push(i);
    }
    // companion index → its still's index
    let mut companion_of: HashMap<usize, usize> = HashMap::new();
    for members in by_name.values().filter(|m| m.len() > 1) {
        let stills: Vec<usize> = members.iter().copied().filter(|&i| is_still(files[i].format)).collect();
        let [still] = stills[..] else { continue };
        for &i in members {
            if i != still && CompanionRole::of(files[i].format).is_some() {
                companion_of.insert(i, still);
            }
        }
    }
    let mut companions: HashMap<usize, Vec<Candidate>> = HashMap::new();
    let mut primaries = Vec::new();
    for (i, file) in files.into_iter().enumerate() {
        match companion_of.get(&i) {
            Some(&still) => companions.entry(still).or_default().push(file),
            None => primaries.push((i, file)),
        }
    }
    primaries.into_iter().map(|(i, primary)| Item { primary, companions: companions.remove(&i).unwrap_or_default() }).collect()
}

/// A picture that can stand for a group: a photo that is not RAW.
fn is_still(format: MediaFormat) -> bool {
    format.kind() == MediaKind::Photo && !format.is_raw()
}

/// Folder and name without extension, ASCII case folded (`DSC_0001.NEF` and `dsc_0001.jpg` pair),
/// compared as bytes: names that are not UTF-8 pair only with their exact twins.
fn name_key(file: &Candidate) -> (PathBuf, Vec<u8>) {
    let folder = file.path.parent().map(PathBuf::from).unwrap_or_default();
    let stem = file.path.file_stem().map(|s| s.as_encoded_bytes().to_ascii_lowercase()).unwrap_or_default();
    (folder, stem)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn file(path: &str, format: MediaFormat) -> Candidate {
        Candidate { path: PathBuf::from(path), size: 1, mtime_ns: 0, format, sidecars: vec![PathBuf::from(format!("{path}.xmp"))] }
    }

    fn shape(items: &[Item]) -> Vec<(String, Vec<String>)> {
        let name = |c: &Candidate| c.path.display().to_string();
        items.iter().map(|i| (name(&i.primary), i.companions.iter().map(name).collect())).collect()
    }

    #[test]
    fn a_raw_beside_its_jpeg_and_a_live_photo_beside_its_still_are_one_item_each() {
        let files = vec![
            file("/p/DSC_0001.JPG", MediaFormat::Jpeg),
            file("/p/DSC_0001.NEF", MediaFormat::Nef),
            file("/p/IMG_0002.HEIC", MediaFormat::Heic),
            file("/p/IMG_0002.MOV", MediaFormat::Mov),
            file("/p/sub/IMG_0002.JPG", MediaFormat::Jpeg),
            file("/p/lone.dng", MediaFormat::Dng),
            file("/p/trip.mkv", MediaFormat::Mkv),
        ];
        let items = group(files.clone(), Pairing::Together);
        assert_eq!(
            shape(&items),
            vec![
                ("/p/DSC_0001.JPG".into(), vec!["/p/DSC_0001.NEF".into()]),
                ("/p/IMG_0002.HEIC".into(), vec!["/p/IMG_0002.MOV".into()]),
                ("/p/sub/IMG_0002.JPG".into(), vec![]),
                ("/p/lone.dng".into(), vec![]),
                ("/p/trip.mkv".into(), vec![]),
            ],
            "another folder's file of the same name is not a twin"
        );
        assert_eq!(items[0].sidecars(), vec![PathBuf::from("/p/DSC_0001.JPG.xmp"), PathBuf::from("/p/DSC_0001.NEF.xmp")]);
        assert_eq!(group(files, Pairing::Separate).len(), 7, "separate: every file is an item");
    }

    #[test]
    fn names_pair_whatever_the_case_of_their_letters() {
        let items = group(vec![file("/p/dsc_9.jpg", MediaFormat::Jpeg), file("/p/DSC_9.CR3", MediaFormat::Cr3), file("/p/DSC_9.dng", MediaFormat::Dng)], Pairing::Together);
        assert_eq!(shape(&items), vec![("/p/dsc_9.jpg".into(), vec!["/p/DSC_9.CR3".into(), "/p/DSC_9.dng".into()])]);
    }

    #[cfg(unix)]
    #[test]
    fn names_that_are_not_utf8_pair_only_with_their_own_bytes() {
        use std::os::unix::ffi::OsStrExt;
        let named = |bytes: &[u8], format| Candidate { path: PathBuf::from(std::ffi::OsStr::from_bytes(bytes)), ..file("/", format) };
        // Both stems read as "caf\u{FFFD}" when decoded lossily; they are different names.
        let items = group(vec![named(b"/p/caf\xe9.jpg", MediaFormat::Jpeg), named(b"/p/caf\xe8.dng", MediaFormat::Dng), named(b"/p/caf\xe9.DNG", MediaFormat::Dng)], Pairing::Together);
        let count: Vec<usize> = items.iter().map(|i| i.companions.len()).collect();
        assert_eq!(count, vec![1, 0], "{items:?}");
        assert_eq!(items[0].companions[0].path.as_os_str().as_bytes(), b"/p/caf\xe9.DNG");
    }

    #[test]
    fn groups_without_exactly_one_still_or_with_other_media_stay_apart() {
        // Two stills: which one would stand for the RAW is anybody's guess.
        let two_stills = group(vec![file("/p/a.jpg", MediaFormat::Jpeg), file("/p/a.png", MediaFormat::Png), file("/p/a.cr2", MediaFormat::Cr2)], Pairing::Together);
        assert_eq!(two_stills.len(), 3);
        // No still: a RAW and a video of the same name.
        assert_eq!(group(vec![file("/p/b.raf", MediaFormat::Raf), file("/p/b.mov", MediaFormat::Mov)], Pairing::Together).len(), 2);
        // A WebM or Matroska video is no Live Photo.
        let webm = group(vec![file("/p/c.jpg", MediaFormat::Jpeg), file("/p/c.webm", MediaFormat::WebM)], Pairing::Together);
        assert_eq!(shape(&webm), vec![("/p/c.jpg".into(), vec![]), ("/p/c.webm".into(), vec![])]);
    }
}
