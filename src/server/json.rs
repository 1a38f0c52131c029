//! JSON numbers as JSON Schema reads them: an `integer` is any number without a fractional part,
//! so `3.0` is as good an id or a count as `3` (serde alone refuses a float for an integer).

use serde::{Deserialize, Deserializer};

/// A non-negative whole number in a JSON body (`3` or `3.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WholeNumber(pub u64);

impl<'de> Deserialize<'de> for WholeNumber {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        match serde_json::Number::deserialize(deserializer)? {
            n if n.as_u64().is_some() => Ok(Self(n.as_u64().expect("checked"))),
            n => match n.as_f64() {
                // 2^64 is the first float past u64::MAX.
                Some(f) if f.fract() == 0.0 && (0.0..18_446_744_073_709_551_616.0).contains(&f) => Ok(Self(f as u64)),
                _ => Err(serde::de::Error::custom(format!("expected a non-negative whole number, got {n}"))),
            },
        }
    }
}

impl WholeNumber {
    /// As a count, saturating on 32-bit targets.
    pub fn count(self) -> usize {
        usize::try_from(self.0).unwrap_or(usize::MAX)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn whole_numbers_may_be_written_with_a_zero_fraction_and_nothing_else() {
        let read = |s: &str| serde_json::from_str::<WholeNumber>(s).map(|w| w.0).ok();
        assert_eq!(read("7"), Some(7));
        assert_eq!(read("479001599.0"), Some(479001599));
        assert_eq!(read("1e3"), Some(1000));
        assert_eq!(read("7.5"), None);
        assert_eq!(read("-1"), None);
        assert_eq!(read("18446744073709551616"), None, "2^64 does not fit");
        assert_eq!(read("\"7\""), None);
    }
}
