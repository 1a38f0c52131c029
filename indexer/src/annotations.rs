//! What people already wrote about their photos: titles, descriptions and keywords from XMP
//! (embedded in the file, or in a sidecar `photo.jpg.xmp` / `photo.xmp` as darktable, digiKam and
//! Lightroom write them) and from IPTC-IIM (the older block in JPEGs). XMP is parsed by Adobe's
//! XMP Toolkit (`xmp_toolkit`), which reads every RDF serialisation those programs produce.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use xmp_toolkit::XmpMeta;

/// Dublin Core: `dc:title`, `dc:description`, `dc:subject`.
const DC: &str = "http://purl.org/dc/elements/1.1/";
/// Lightroom's keyword tree: `lr:hierarchicalSubject` (`Places|Portugal|Lisbon`).
const LIGHTROOM: &str = "http://ns.adobe.com/lightroom/1.0/";
/// digiKam's keyword tree: `digiKam:TagsList` (`Places/Portugal/Lisbon`).
const DIGIKAM: &str = "http://www.digikam.org/ns/1.0/";
/// Photoshop's `photoshop:Headline`, a title where `dc:title` is absent.
const PHOTOSHOP: &str = "http://ns.adobe.com/photoshop/1.0/";

/// A photo's title, description and keywords, as text that is valid UTF-8 and trimmed.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Annotations {
    /// `dc:title` (else `photoshop:Headline`, IPTC Object Name).
    pub title: Option<String>,
    /// `dc:description` (IPTC Caption/Abstract).
    pub description: Option<String>,
    /// `dc:subject`, the levels of hierarchical keywords, IPTC Keywords: each once, in order.
    pub keywords: Vec<String>,
}

impl Annotations {
    /// Whether nothing was written.
    pub fn is_empty(&self) -> bool {
        self.title.is_none() && self.description.is_none() && self.keywords.is_empty()
    }

    /// These annotations with `over`'s laid on top: its title and description win where it has
    /// them, keywords are the union.
    pub fn overlaid(mut self, over: &Annotations) -> Annotations {
        self.title = over.title.clone().or(self.title);
        self.description = over.description.clone().or(self.description);
        for keyword in &over.keywords {
            push_keyword(&mut self.keywords, keyword);
        }
        self
    }

    /// The annotations of an XMP packet (`<?xpacket …?>` wrapper optional). The toolkit reads
    /// broken XML as an empty packet, so a packet with text but not one property is an error.
    pub fn from_xmp(packet: &[u8]) -> Result<Annotations, String> {
        let text = String::from_utf8_lossy(packet);
        let text = text.trim_matches(|c: char| c == '\0' || c.is_whitespace());
        let meta: XmpMeta = text.parse().map_err(|e: xmp_toolkit::XmpError| format!("unreadable XMP: {e}"))?;
        if !text.is_empty() && meta.iter(xmp_toolkit::IterOptions::default()).next().is_none() {
            return Err("unreadable XMP: no property could be read (broken or truncated XML?)".into());
        }
        let alt = |ns: &str, name: &str| meta.localized_text(ns, name, None, "x-default").map(|(v, _)| v.value);
        let mut keywords = Vec::new();
        for subject in meta.property_array(DC, "subject") {
            push_keyword(&mut keywords, &subject.value);
        }
        for (ns, name, separator) in [(LIGHTROOM, "hierarchicalSubject", '|'), (DIGIKAM, "TagsList", '/')] {
            for path in meta.property_array(ns, name) {
                path.value.split(separator).for_each(|level| push_keyword(&mut keywords, level));
            }
        }
        Ok(Annotations {
            title: clean(alt(DC, "title").or_else(|| meta.property(PHOTOSHOP, "Headline").map(|v| v.value))),
            description: clean(alt(DC, "description")),
            keywords,
        })
    }

    /// The annotations of a JPEG's IPTC block: Photoshop image resources ("8BIM" blocks), whose
    /// resource 0x0404 holds IPTC-IIM datasets (2:05 Object Name, 2:25 Keywords, 2:120 Caption).
    /// Bytes past what the structure says are ignored; text that is not UTF-8 is read as Latin-1
    /// (IIM's default when no character set is declared).
    pub fn from_iptc(resources: &[u8]) -> Annotations {
        let mut out = Annotations::default();
        for dataset in iim_datasets(photoshop_resource(resources, 0x0404).unwrap_or_default()) {
            let text = match std::str::from_utf8(dataset.1) {
                Ok(text) => text.to_string(),
                Err(_) => dataset.1.iter().map(|&b| b as char).collect(),
            };
            match dataset.0 {
                5 => out.title = out.title.or(clean(Some(text))),
                25 => push_keyword(&mut out.keywords, &text),
                120 => out.description = out.description.or(clean(Some(text))),
                _ => {}
            }
        }
        out
    }
}

/// The sidecars of `photo` that exist: `photo.jpg.xmp` (darktable, digiKam) and `photo.xmp`
/// (Lightroom, Capture One), in that order.
pub fn sidecars_of(photo: &Path) -> Vec<PathBuf> {
    let mut beside = photo.as_os_str().to_owned();
    beside.push(".xmp");
    let candidates = [PathBuf::from(beside), photo.with_extension("xmp")];
    let mut found: Vec<PathBuf> = Vec::new();
    for candidate in candidates {
        if candidate != photo && !found.contains(&candidate) && candidate.is_file() {
            found.push(candidate);
        }
    }
    found
}

/// The annotations of sidecar files, later ones laid over earlier ones, and what was wrong with
/// any that could not be read (reported as warnings: the photo is indexed all the same).
pub fn read_sidecars(sidecars: &[PathBuf]) -> (Annotations, Vec<String>) {
    let mut warnings = Vec::new();
    let mut out = Annotations::default();
    for sidecar in sidecars {
        match std::fs::read(sidecar).map_err(|e| e.to_string()).and_then(|bytes| Annotations::from_xmp(&bytes)) {
            Ok(read) => out = out.overlaid(&read),
            Err(e) => warnings.push(format!("sidecar {}: {e}", sidecar.display())),
        }
    }
    (out, warnings)
}

fn clean(text: Option<String>) -> Option<String> {
    text.map(|t| t.trim().to_string()).filter(|t| !t.is_empty())
}

fn push_keyword(keywords: &mut Vec<String>, keyword: &str) {
    let keyword = keyword.trim();
    if !keyword.is_empty() && !keywords.iter().any(|k| k == keyword) {
        keywords.push(keyword.to_string());
    }
}

/// The data of Photoshop image resource `id`: blocks of "8BIM", id (u16 BE), a Pascal name padded
/// to even length, size (u32 BE), data padded to even length.
fn photoshop_resource(mut bytes: &[u8], id: u16) -> Option<&[u8]> {
    while bytes.len() >= 12 && bytes.starts_with(b"8BIM") {
        let this = u16::from_be_bytes([bytes[4], bytes[5]]);
        let name_len = (1 + bytes[6] as usize).next_multiple_of(2);
        let size_at = 6 + name_len;
        let size = u32::from_be_bytes(bytes.get(size_at..size_at + 4)?.try_into().ok()?) as usize;
        let data = bytes.get(size_at + 4..(size_at + 4).checked_add(size)?)?;
        if this == id {
            return Some(data);
        }
        bytes = bytes.get((size_at + 4 + size).next_multiple_of(2)..)?;
    }
    None
}

/// The record-2 datasets of IPTC-IIM data: (dataset number, value).
fn iim_datasets(mut bytes: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    std::iter::from_fn(move || loop {
        let [0x1C, record, dataset, hi, lo, rest @ ..] = bytes else { return None };
        let len = u16::from_be_bytes([*hi, *lo]) as usize;
        if len & 0x8000 != 0 {
            // An extended-length dataset (only used for large binary values): stop here.
            return None;
        }
        let (value, after) = (rest.get(..len)?, &rest[len..]);
        bytes = after;
        if *record == 2 {
            return Some((*dataset, value));
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const LIGHTROOM_SIDECAR: &str = r#"<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:dc="http://purl.org/dc/elements/1.1/"
    xmlns:lr="http://ns.adobe.com/lightroom/1.0/" xmlns:photoshop="http://ns.adobe.com/photoshop/1.0/"
    photoshop:Headline="Harbour at dawn">
   <dc:subject><rdf:Bag><rdf:li>boats</rdf:li><rdf:li>生日</rdf:li></rdf:Bag></dc:subject>
   <dc:description><rdf:Alt><rdf:li xml:lang="x-default">Fishing boats, Lisbon</rdf:li></rdf:Alt></dc:description>
   <lr:hierarchicalSubject><rdf:Bag><rdf:li>Places|Portugal|Lisbon</rdf:li></rdf:Bag></lr:hierarchicalSubject>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>"#;

    #[test]
    fn xmp_gives_title_description_and_every_keyword_once() {
        let a = Annotations::from_xmp(LIGHTROOM_SIDECAR.as_bytes()).unwrap();
        assert_eq!(a.title.as_deref(), Some("Harbour at dawn"), "the headline stands in for a missing dc:title");
        assert_eq!(a.description.as_deref(), Some("Fishing boats, Lisbon"));
        assert_eq!(a.keywords, ["boats", "生日", "Places", "Portugal", "Lisbon"]);
        assert!(Annotations::from_xmp(b"<x:xmpmeta><unclosed").is_err());
    }

    #[test]
    fn a_sidecar_overrides_the_title_and_adds_keywords() {
        let embedded = Annotations { title: Some("camera title".into()), description: Some("kept".into()), keywords: vec!["a".into(), "b".into()] };
        let sidecar = Annotations { title: Some("edited".into()), description: None, keywords: vec!["b".into(), "c".into()] };
        let both = embedded.overlaid(&sidecar);
        assert_eq!((both.title.as_deref(), both.description.as_deref()), (Some("edited"), Some("kept")));
        assert_eq!(both.keywords, ["a", "b", "c"]);
    }

    fn iim(dataset: u8, value: &[u8]) -> Vec<u8> {
        let mut out = vec![0x1C, 2, dataset];
        out.extend_from_slice(&(value.len() as u16).to_be_bytes());
        out.extend_from_slice(value);
        out
    }

    #[test]
    fn iptc_keywords_title_and_caption_are_read_from_photoshop_resources() {
        let mut data = [iim(0, &[0, 4]), iim(5, b"Title"), iim(25, "生日".as_bytes()), iim(25, b"caf\xe9"), iim(120, b"A caption")].concat();
        let mut resources = b"8BIM\x04\x0c\0\0".to_vec();
        resources.extend_from_slice(&3u32.to_be_bytes());
        resources.extend_from_slice(b"abc\0");
        resources.extend_from_slice(b"8BIM\x04\x04\0\0");
        resources.extend_from_slice(&(data.len() as u32).to_be_bytes());
        resources.append(&mut data);
        let a = Annotations::from_iptc(&resources);
        assert_eq!((a.title.as_deref(), a.description.as_deref()), (Some("Title"), Some("A caption")));
        assert_eq!(a.keywords, ["生日", "café"], "UTF-8, else Latin-1");
        // Cut anywhere, odd bytes: no panic, what was whole is kept.
        for cut in 0..resources.len() {
            Annotations::from_iptc(&resources[..cut]);
        }
        assert!(Annotations::from_iptc(b"junk").is_empty());
    }

    #[test]
    fn sidecars_are_found_beside_the_photo_under_both_names() {
        let dir = tempfile::tempdir().unwrap();
        let photo = dir.path().join("p.jpg");
        std::fs::write(&photo, b"x").unwrap();
        assert!(sidecars_of(&photo).is_empty());
        std::fs::write(dir.path().join("p.xmp"), LIGHTROOM_SIDECAR).unwrap();
        std::fs::write(dir.path().join("p.jpg.xmp"), b"not xml").unwrap();
        let found = sidecars_of(&photo);
        assert_eq!(found, [dir.path().join("p.jpg.xmp"), dir.path().join("p.xmp")]);
        let (read, warnings) = read_sidecars(&found);
        assert_eq!(read.keywords.len(), 5);
        assert_eq!(warnings.len(), 1, "the unreadable one is reported: {warnings:?}");
    }
}
