//! Camera RAW files (DNG, CR2, CR3, NEF, ARW, RAF, ORF, RW2) through rawler, dnglab's pure-Rust
//! decoders: the camera's embedded preview when it is large enough for the consumer, else the
//! sensor data demosaiced and developed to sRGB. rawler code can panic on hostile bytes; every
//! call into it is fenced so that one bad file is an error, never a crashed indexer.

use std::panic::{catch_unwind, AssertUnwindSafe};

use image::DynamicImage;
use rawler::decoders::{Decoder, FormatHint, RawDecodeParams};
use rawler::formats::tiff::Rational;
use rawler::imgop::develop::RawDevelop;
use rawler::rawsource::RawSource;

use super::{DecodeError, MAX_DECODED_BYTES, MAX_DIMENSION};
use crate::exif::{signed_degrees, CaptureDate, ExifMeta};
use crate::format::MediaFormat;

/// The picture of a RAW file, upright, and what its metadata says.
pub(super) struct RawPicture {
    /// The embedded preview or the developed sensor data, orientation applied.
    pub image: DynamicImage,
    /// Width of the sensor image, upright.
    pub width: u32,
    /// Height of the sensor image, upright.
    pub height: u32,
    /// Date, camera, lens and GPS, from the file's own EXIF.
    pub exif: ExifMeta,
    /// The file's XMP packet, when it has one.
    pub xmp: Option<Vec<u8>>,
}

/// Which RAW format a file of TIFF signature is (DNG by its `DNGVersion` tag, NEF, ARW and CR2 by
/// their maker), from its bytes or a prefix of them holding its first directories; `None` for a
/// plain TIFF, or one whose directories lie beyond `bytes`.
pub fn tiff_raw_format(bytes: &[u8]) -> Option<MediaFormat> {
    let source = RawSource::new_from_slice(bytes);
    let hint = fenced(|| rawler::get_decoder(&source).map(|d| d.format_hint()).map_err(corrupt)).ok()?;
    match hint {
        FormatHint::DNG => Some(MediaFormat::Dng),
        FormatHint::NEF | FormatHint::NRW => Some(MediaFormat::Nef),
        FormatHint::ARW => Some(MediaFormat::Arw),
        FormatHint::CR2 => Some(MediaFormat::Cr2),
        _ => None,
    }
}

/// Decodes the RAW file `bytes` for a consumer that needs `min_side` pixels on the shorter side.
pub(super) fn decode(bytes: &[u8], min_side: u32) -> Result<RawPicture, DecodeError> {
    let source = RawSource::new_from_slice(bytes);
    fenced(|| {
        let decoder = rawler::get_decoder(&source).map_err(corrupt)?;
        let params = RawDecodeParams::default();
        let meta = decoder.raw_metadata(&source, &params).map_err(corrupt)?;
        // A dummy decode reads the sensor's size without its pixels.
        let sensor = decoder.raw_image(&source, &params, true).map_err(corrupt)?;
        let (w, h) = (sensor.width as u64, sensor.height as u64);
        if w > MAX_DIMENSION as u64 || h > MAX_DIMENSION as u64 || w * h * 3 > MAX_DECODED_BYTES {
            return Err(DecodeError::TooLarge(format!("{w}x{h} needs {} MiB", (w * h * 3) >> 20)));
        }
        let preview = preview_of(decoder.as_ref(), &source, &params, min_side);
        let mut image = match preview {
            Some(preview) => preview,
            None => develop(decoder.as_ref(), &source, &params)?,
        };
        let orientation = meta
            .exif
            .orientation
            .and_then(|o| u8::try_from(o).ok())
            .and_then(image::metadata::Orientation::from_exif)
            .unwrap_or(image::metadata::Orientation::NoTransforms);
        image.apply_orientation(orientation);
        let (width, height) = super::upright_size(orientation, w as u32, h as u32);
        let exif = ExifMeta {
            date_taken: [&meta.exif.date_time_original, &meta.exif.create_date].into_iter().flatten().find_map(|d| CaptureDate::parse(d)),
            make: Some(meta.make.trim().to_string()).filter(|s| !s.is_empty()),
            model: Some(meta.model.trim().to_string()).filter(|s| !s.is_empty()),
            lens: meta.lens.as_ref().map(|l| l.lens_model.clone()).or(meta.exif.lens_model.clone()).filter(|s| !s.is_empty()),
            gps: meta.exif.gps.as_ref().and_then(|g| {
                Some((degrees(g.gps_latitude?, g.gps_latitude_ref.as_deref()?, "S")?, degrees(g.gps_longitude?, g.gps_longitude_ref.as_deref()?, "W")?))
            }),
        };
        let xmp = decoder.xpacket(&source, &params).ok().flatten();
        Ok(RawPicture { image, width, height, exif, xmp })
    })
}

/// The largest embedded picture (rawler's preview) when its shorter side covers `min_side`.
/// How close its embedding comes to that of the developed sensor data is measured in
/// tests/integration/media.rs and stated in the README.
fn preview_of(decoder: &dyn Decoder, source: &RawSource, params: &RawDecodeParams, min_side: u32) -> Option<DynamicImage> {
    let preview = decoder.preview_image(source, params).ok().flatten()?;
    (preview.width().min(preview.height()) >= min_side).then_some(preview)
}

/// The sensor data demosaiced, white-balanced and converted to sRGB by rawler's default develop.
fn develop(decoder: &dyn Decoder, source: &RawSource, params: &RawDecodeParams) -> Result<DynamicImage, DecodeError> {
    let raw = decoder.raw_image(source, params, false).map_err(corrupt)?;
    RawDevelop::default()
        .develop_intermediate(&raw)
        .map_err(corrupt)?
        .to_dynamic_image()
        .ok_or_else(|| DecodeError::Corrupt("RAW: the developed image has no RGB form".into()))
}

/// Degrees, minutes and seconds as signed degrees ([`signed_degrees`]); `None` for a zero
/// denominator or a result off the globe.
fn degrees(dms: [Rational; 3], reference: &str, negative: &str) -> Option<f64> {
    let parts = dms.map(|r| r.n as f64 / r.d as f64);
    signed_degrees(parts, reference.trim().eq_ignore_ascii_case(negative)).filter(|d| d.abs() <= 180.0)
}

/// What rawler said of a file it could not read.
fn corrupt(e: rawler::RawlerError) -> DecodeError {
    DecodeError::Corrupt(format!("RAW: {e}"))
}

/// Runs `f`, turning a panic inside rawler into an error.
fn fenced<T>(f: impl FnOnce() -> Result<T, DecodeError>) -> Result<T, DecodeError> {
    catch_unwind(AssertUnwindSafe(f)).unwrap_or_else(|_| Err(DecodeError::Corrupt("RAW: the decoder failed on this file's data".into())))
}
