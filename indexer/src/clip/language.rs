//! The language of a text, for text towers that are told it: NLLB-CLIP reads a FLORES-200 code
//! (`zho_Hans`) written before the text. People and browsers name languages by BCP-47 tags
//! (`zh-CN`, `pt-BR`, `es`), so a tag is mapped to its FLORES-200 code the way Immich maps its
//! UI languages (`WEBLATE_TO_FLORES200` in immich-app/immich's machine-learning code): the whole
//! tag, then its language and script (`zh-Hant` of `zh-Hant-HK`, a step Immich lacks), then the
//! language alone, then English. Two deliberate differences: Japanese is
//! `jpn_Jpan` (FLORES-200's code for Japanese; Immich's `jpn_Hira` is not one of NLLB's codes), and
//! a bare `zh` is Simplified Chinese (Immich knows only `zh-CN`/`zh-Hans`/`zh-TW`). A FLORES-200
//! code itself (`kab_Latn`) is taken as given.

use std::fmt;

/// BCP-47 tag (lower case, `-` separated) → FLORES-200 code.
const TAGS: &[(&str, &str)] = &[
    ("af", "afr_Latn"),
    ("ar", "arb_Arab"),
    ("az", "azj_Latn"),
    ("be", "bel_Cyrl"),
    ("bg", "bul_Cyrl"),
    ("ca", "cat_Latn"),
    ("cs", "ces_Latn"),
    ("da", "dan_Latn"),
    ("de", "deu_Latn"),
    ("el", "ell_Grek"),
    ("en", "eng_Latn"),
    ("es", "spa_Latn"),
    ("et", "est_Latn"),
    ("fa", "pes_Arab"),
    ("fi", "fin_Latn"),
    ("fr", "fra_Latn"),
    ("he", "heb_Hebr"),
    ("hi", "hin_Deva"),
    ("hr", "hrv_Latn"),
    ("hu", "hun_Latn"),
    ("hy", "hye_Armn"),
    ("id", "ind_Latn"),
    ("it", "ita_Latn"),
    ("ja", "jpn_Jpan"),
    ("kmr", "kmr_Latn"),
    ("ko", "kor_Hang"),
    ("lb", "ltz_Latn"),
    ("lt", "lit_Latn"),
    ("lv", "lav_Latn"),
    ("mfa", "zsm_Latn"),
    ("mk", "mkd_Cyrl"),
    ("mn", "khk_Cyrl"),
    ("mr", "mar_Deva"),
    ("ms", "zsm_Latn"),
    ("nb", "nob_Latn"),
    ("nb-no", "nob_Latn"),
    ("nn", "nno_Latn"),
    ("nl", "nld_Latn"),
    ("pl", "pol_Latn"),
    ("pt", "por_Latn"),
    ("pt-br", "por_Latn"),
    ("ro", "ron_Latn"),
    ("ru", "rus_Cyrl"),
    ("sk", "slk_Latn"),
    ("sl", "slv_Latn"),
    ("sr-cyrl", "srp_Cyrl"),
    ("sv", "swe_Latn"),
    ("ta", "tam_Taml"),
    ("te", "tel_Telu"),
    ("th", "tha_Thai"),
    ("tr", "tur_Latn"),
    ("uk", "ukr_Cyrl"),
    ("ur", "urd_Arab"),
    ("vi", "vie_Latn"),
    ("zh", "zho_Hans"),
    ("zh-cn", "zho_Hans"),
    ("zh-hans", "zho_Hans"),
    ("zh-sg", "zho_Hans"),
    ("zh-hant", "zho_Hant"),
    ("zh-hk", "zho_Hant"),
    ("zh-tw", "zho_Hant"),
    ("zh-mo", "zho_Hant"),
    ("sr", "srp_Cyrl"),
];

/// A language as a FLORES-200 code (`eng_Latn`: three lower-case letters, `_`, a four-letter
/// script), small enough to copy.
#[derive(Clone, Copy, PartialEq, Eq, Hash)]
pub struct Language([u8; 8]);

/// How a tag was understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Resolved {
    /// The language used.
    pub language: Language,
    /// False when the tag named no language clipsight knows and English was used instead.
    pub known: bool,
}

impl Language {
    /// English, what an unknown tag falls back to.
    pub const ENGLISH: Language = Language(*b"eng_Latn");

    /// The language a BCP-47 tag (`zh-CN`, `zh_CN.UTF-8`, `es`), or a FLORES-200 code, names; an
    /// unknown one is English, reported by [`Resolved::known`].
    pub fn resolve(tag: &str) -> Resolved {
        let tag = tag.trim();
        if let Some(code) = Self::flores(tag) {
            return Resolved { language: code, known: true };
        }
        // `zh_CN.UTF-8` (a POSIX locale) → `zh-cn`.
        let tag = tag.split(['.', '@']).next().unwrap_or_default().replace('_', "-").to_ascii_lowercase();
        // The whole tag, then language and script (`zh-hant` of `zh-hant-tw`), then the language.
        let mut parts = tag.split('-');
        let base = parts.next().unwrap_or_default();
        let script = parts.next().map(|s| format!("{base}-{s}")).unwrap_or_default();
        let found = [tag.as_str(), script.as_str(), base].into_iter().find_map(|t| TAGS.iter().find(|(k, _)| *k == t));
        match found {
            Some((_, code)) => Resolved { language: Self::flores(code).expect("table holds FLORES codes"), known: true },
            None => Resolved { language: Self::ENGLISH, known: false },
        }
    }

    /// `tag` itself when it is written as a FLORES-200 code.
    fn flores(tag: &str) -> Option<Language> {
        let b: [u8; 8] = tag.as_bytes().try_into().ok()?;
        let ok = b[..3].iter().all(u8::is_ascii_lowercase)
            && b[3] == b'_'
            && b[4].is_ascii_uppercase()
            && b[5..].iter().all(u8::is_ascii_lowercase);
        ok.then_some(Language(b))
    }

    /// The FLORES-200 code.
    pub fn code(&self) -> &str {
        std::str::from_utf8(&self.0).expect("ASCII by construction")
    }
}

impl fmt::Display for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.code())
    }
}

impl fmt::Debug for Language {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Language({})", self.code())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(tag: &str) -> (String, bool) {
        let r = Language::resolve(tag);
        (r.language.code().to_string(), r.known)
    }

    #[test]
    fn browser_tags_posix_locales_and_flores_codes_name_languages() {
        for (tag, want) in [
            ("zh-CN", "zho_Hans"),
            ("zh", "zho_Hans"),
            ("zh-TW", "zho_Hant"),
            ("zh-Hant-HK", "zho_Hant"),
            ("zh-Hans-SG", "zho_Hans"),
            ("zh_CN.UTF-8", "zho_Hans"),
            ("es-419", "spa_Latn"),
            ("pt-BR", "por_Latn"),
            ("nb-NO", "nob_Latn"),
            ("ja", "jpn_Jpan"),
            ("EN-us", "eng_Latn"),
            ("kab_Latn", "kab_Latn"),
        ] {
            assert_eq!(code(tag), (want.to_string(), true), "{tag}");
        }
    }

    #[test]
    fn an_unknown_or_malformed_tag_is_english_and_says_so() {
        for tag in ["xx", "", "C", "zho_hans", "🙂", &"a".repeat(300)] {
            assert_eq!(code(tag), ("eng_Latn".to_string(), false), "{tag:?}");
        }
    }

    #[test]
    fn every_table_entry_is_a_flores_code() {
        for (tag, flores) in TAGS {
            assert_eq!(Language::resolve(tag).language.code(), *flores);
        }
    }
}
