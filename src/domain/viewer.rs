//! The image viewer's rules (issue 18): what an image attachment says of itself (`info`),
//! and rendering one frame of it to PNG at a window and a size. DICOM frames are decoded
//! in `dicom`; PNG and JPEG attachments are decoded here. Pure functions over bytes.

use std::io::Cursor;

use chrono::NaiveDate;
use serde::Serialize;

use super::dicom;
use super::parse::ParseError;
use super::AttachmentKind;

/// The largest frame rendered, in pixels (a 8192 × 8192 image): more is refused rather
/// than allowed to take the server's memory.
pub const MAX_PIXELS: u64 = 8192 * 8192;
/// The sizes a render may ask for (the output's longer edge, in pixels).
pub const SIZES: std::ops::RangeInclusive<u32> = 16..=4096;

/// A VOI window: values below `center - width/2` are black, above are white.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Window {
    pub center: f64,
    pub width: f64,
}

impl Window {
    /// A window, when both numbers are finite and the width is at least 1 (as DICOM
    /// requires of the linear function).
    pub fn new(center: f64, width: f64) -> Option<Self> {
        (center.is_finite() && width.is_finite() && width >= 1.0)
            .then_some(Window { center, width })
    }

    /// The window spanning the values from lowest to highest.
    fn spanning(values: &[f64]) -> Self {
        let (lo, hi) = values
            .iter()
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| (lo.min(*v), hi.max(*v)));
        if lo.is_finite() && hi.is_finite() {
            Window { center: (lo + hi) / 2.0, width: hi - lo + 1.0 }
        } else {
            Window { center: 0.0, width: 1.0 }
        }
    }

    /// DICOM's linear VOI function (PS3.3 C.11.2.1.2.1) onto 0–255.
    pub fn apply(&self, x: f64) -> u8 {
        let c = self.center - 0.5;
        let w = self.width - 1.0;
        if w <= 0.0 {
            return if x <= c { 0 } else { 255 };
        }
        if x <= c - w / 2.0 {
            0
        } else if x > c + w / 2.0 {
            255
        } else {
            (((x - c) / w + 0.5) * 255.0).round().clamp(0.0, 255.0) as u8
        }
    }
}

/// A frame's pixels, row by row.
pub enum Samples {
    /// Modality values of a monochrome frame, windowed when rendered; `inverted` for
    /// `MONOCHROME1` (low values white).
    Mono { values: Vec<f64>, inverted: bool },
    /// 8-bit grey, shown as it is.
    Grey(Vec<u8>),
    /// 8-bit RGB, interleaved, shown as it is.
    Rgb(Vec<u8>),
}

impl Samples {
    pub fn channels(&self) -> usize {
        match self {
            Samples::Mono { .. } | Samples::Grey(_) => 1,
            Samples::Rgb(_) => 3,
        }
    }

    pub fn len(&self) -> usize {
        match self {
            Samples::Mono { values, .. } => values.len(),
            Samples::Grey(v) | Samples::Rgb(v) => v.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One frame, decoded.
pub struct Image {
    pub columns: u32,
    pub rows: u32,
    pub samples: Samples,
}

/// Why an attachment could not be shown.
#[derive(Clone, Debug, PartialEq)]
pub enum RenderError {
    /// A PDF or a text: not an image.
    NotAnImage,
    /// DICOM whose pixel data this build has no decoder for.
    UnsupportedTransferSyntax(String),
    FrameOutOfRange {
        frames: u32,
    },
    /// Larger than [`MAX_PIXELS`].
    TooLarge,
    /// The pixel data (or what describes it) could not be read.
    Undecodable(String),
}

/// What an image attachment says of itself: for DICOM, the study's non-identifying
/// header facts (never a patient field). `GET /api/attachments/{id}/info`.
#[derive(Clone, Debug, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Info {
    pub media_type: &'static str,
    pub frames: u32,
    pub rows: u32,
    pub columns: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_center: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub window_width: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub modality: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub body_part: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub study_date: Option<NaiveDate>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub series_description: Option<String>,
    /// Row and column spacing in millimetres (DICOM's `PixelSpacing`), for the ruler.
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<Vec<f64>>, min_items = 2, max_items = 2)]
    pub pixel_spacing: Option<[f64; 2]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub photometric_interpretation: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub transfer_syntax: Option<String>,
    /// Whether `render` can show it (false for a transfer syntax this build cannot decode).
    pub renderable: bool,
}

/// The attachment's facts.
pub fn info(kind: AttachmentKind, bytes: &[u8]) -> Result<Info, RenderError> {
    match kind {
        AttachmentKind::Dicom => {
            let f = dicom::study_facts(bytes).ok_or(RenderError::NotAnImage)?;
            Ok(Info {
                media_type: kind.mime(),
                frames: f.frames,
                rows: f.rows.unwrap_or(0),
                columns: f.columns.unwrap_or(0),
                window_center: f.window.map(|w| w.center),
                window_width: f.window.map(|w| w.width),
                modality: f.modality,
                body_part: f.body_part,
                study_date: f.study_date,
                series_description: f.series_description,
                pixel_spacing: f.pixel_spacing_mm,
                photometric_interpretation: f.photometric_interpretation,
                transfer_syntax: Some(f.transfer_syntax),
                renderable: f.renderable,
            })
        }
        AttachmentKind::Png | AttachmentKind::Jpeg => {
            let image = decode_raster(kind, bytes)?;
            Ok(Info {
                media_type: kind.mime(),
                frames: 1,
                rows: image.rows,
                columns: image.columns,
                window_center: None,
                window_width: None,
                modality: None,
                body_part: None,
                study_date: None,
                series_description: None,
                pixel_spacing: None,
                photometric_interpretation: None,
                transfer_syntax: None,
                renderable: true,
            })
        }
        AttachmentKind::Pdf | AttachmentKind::Text => Err(RenderError::NotAnImage),
    }
}

/// What a render asks for.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct RenderRequest {
    /// From 0.
    pub frame: u32,
    /// The window; the file's stored one (or the frame's full range) when `None`.
    pub window: Option<Window>,
    /// The output's longer edge in pixels; never larger than the image.
    pub size: Option<u32>,
}

impl RenderRequest {
    /// Reads the query's `frame`, `wc`, `ww` and `size` (each optional; `wc` and `ww`
    /// together or not at all).
    pub fn parse(
        frame: Option<&str>, wc: Option<&str>, ww: Option<&str>, size: Option<&str>,
    ) -> Result<Self, ParseError> {
        let frame = match frame {
            None => 0,
            Some(f) => f.trim().parse().map_err(|_| {
                ParseError::new("invalid_frame", "frame", "frame is a whole number from 0")
            })?,
        };
        let number = |v: &str| v.trim().parse::<f64>().ok().filter(|n| n.is_finite());
        let window = match (wc, ww) {
            (None, None) => None,
            (Some(c), Some(w)) => Some(
                number(c).zip(number(w)).and_then(|(c, w)| Window::new(c, w)).ok_or_else(|| {
                    ParseError::new(
                        "invalid_window",
                        "ww",
                        "wc and ww are numbers, and ww is at least 1",
                    )
                })?,
            ),
            (Some(_), None) | (None, Some(_)) => {
                return Err(ParseError::new(
                    "invalid_window",
                    if wc.is_none() { "wc" } else { "ww" },
                    "give wc and ww together",
                ))
            }
        };
        let size = match size {
            None => None,
            Some(s) => {
                Some(s.trim().parse().ok().filter(|s| SIZES.contains(s)).ok_or_else(|| {
                    ParseError::new(
                        "invalid_size",
                        "size",
                        format!("size is from {} to {} pixels", SIZES.start(), SIZES.end()),
                    )
                })?)
            }
        };
        Ok(RenderRequest { frame, window, size })
    }
}

/// Renders the frame to PNG: windowed (monochrome DICOM), shrunk to `size`.
pub fn render(
    kind: AttachmentKind, bytes: &[u8], request: &RenderRequest,
) -> Result<Vec<u8>, RenderError> {
    let (image, stored) = match kind {
        AttachmentKind::Dicom => {
            let decoded = dicom::decode_frame(bytes, request.frame)?;
            (decoded.image, decoded.window)
        }
        AttachmentKind::Png | AttachmentKind::Jpeg => {
            if request.frame != 0 {
                return Err(RenderError::FrameOutOfRange { frames: 1 });
            }
            (decode_raster(kind, bytes)?, None)
        }
        AttachmentKind::Pdf | AttachmentKind::Text => return Err(RenderError::NotAnImage),
    };
    let (pixels, channels) = to_8bit(image.samples, request.window.or(stored));
    let (pixels, columns, rows) =
        shrink(&pixels, image.columns, image.rows, channels, request.size);
    Ok(encode_png(&pixels, columns, rows, channels))
}

/// 8-bit samples: monochrome values through the window (the frame's full range when
/// there is none), inverted for `MONOCHROME1`; others as they are.
fn to_8bit(samples: Samples, window: Option<Window>) -> (Vec<u8>, usize) {
    match samples {
        Samples::Mono { values, inverted } => {
            let window = window.unwrap_or_else(|| Window::spanning(&values));
            let grey = values
                .iter()
                .map(|v| window.apply(*v))
                .map(|g| if inverted { 255 - g } else { g })
                .collect();
            (grey, 1)
        }
        Samples::Grey(grey) => (grey, 1),
        Samples::Rgb(rgb) => (rgb, 3),
    }
}

/// Shrinks the image so that its longer edge is `size` (never enlarges), averaging the
/// source pixels that fall in each output pixel.
pub fn shrink(
    pixels: &[u8], columns: u32, rows: u32, channels: usize, size: Option<u32>,
) -> (Vec<u8>, u32, u32) {
    let longer = columns.max(rows);
    let Some(size) = size.filter(|s| *s < longer) else {
        return (pixels.to_vec(), columns, rows);
    };
    let scale =
        |n: u32| ((u64::from(n) * u64::from(size)).div_ceil(u64::from(longer)) as u32).max(1);
    let (out_w, out_h) = (scale(columns), scale(rows));
    let mut sums = vec![0u32; out_w as usize * out_h as usize * channels];
    let mut counts = vec![0u32; out_w as usize * out_h as usize];
    for y in 0..rows {
        let oy = (u64::from(y) * u64::from(out_h) / u64::from(rows)) as usize;
        for x in 0..columns {
            let ox = (u64::from(x) * u64::from(out_w) / u64::from(columns)) as usize;
            let o = oy * out_w as usize + ox;
            let i = (y as usize * columns as usize + x as usize) * channels;
            counts[o] += 1;
            for c in 0..channels {
                sums[o * channels + c] += u32::from(pixels[i + c]);
            }
        }
    }
    let out = sums
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let n = counts[i / channels].max(1);
            ((s + n / 2) / n) as u8
        })
        .collect();
    (out, out_w, out_h)
}

/// Encodes 8-bit grey or RGB pixels as PNG (fast compression: renders are cached).
pub fn encode_png(pixels: &[u8], columns: u32, rows: u32, channels: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(pixels.len() / 2 + 1024);
    let mut encoder = png::Encoder::new(&mut out, columns, rows);
    encoder.set_color(if channels == 3 { png::ColorType::Rgb } else { png::ColorType::Grayscale });
    encoder.set_depth(png::BitDepth::Eight);
    encoder.set_compression(png::Compression::Fast);
    // Writing to memory pixels of the stated size does not fail.
    if let Ok(mut writer) = encoder.write_header() {
        let _ = writer.write_image_data(pixels);
        let _ = writer.finish();
    }
    out
}

/// Decodes a PNG or JPEG attachment to 8-bit grey or RGB (alpha dropped).
fn decode_raster(kind: AttachmentKind, bytes: &[u8]) -> Result<Image, RenderError> {
    let bad = |e: &dyn std::fmt::Display| RenderError::Undecodable(e.to_string());
    let (columns, rows, channels, data) = if kind == AttachmentKind::Png {
        let mut decoder = png::Decoder::new_with_limits(
            Cursor::new(bytes),
            png::Limits { bytes: MAX_PIXELS as usize * 4 },
        );
        decoder.set_transformations(png::Transformations::EXPAND | png::Transformations::STRIP_16);
        let mut reader = decoder.read_info().map_err(|e| bad(&e))?;
        let size = reader.output_buffer_size().ok_or(RenderError::TooLarge)?;
        let mut buf = vec![0; size];
        let out = reader.next_frame(&mut buf).map_err(|e| bad(&e))?;
        buf.truncate(out.buffer_size());
        let channels = out.color_type.samples();
        (out.width, out.height, channels, buf)
    } else {
        let mut decoder = jpeg_decoder::Decoder::new(bytes);
        decoder.read_info().map_err(|e| bad(&e))?;
        let info = decoder.info().ok_or_else(|| bad(&"no JPEG header"))?;
        if u64::from(info.width) * u64::from(info.height) > MAX_PIXELS {
            return Err(RenderError::TooLarge);
        }
        let data = decoder.decode().map_err(|e| bad(&e))?;
        let channels = match info.pixel_format {
            jpeg_decoder::PixelFormat::L8 => 1,
            jpeg_decoder::PixelFormat::L16 => 2,
            jpeg_decoder::PixelFormat::RGB24 => 3,
            jpeg_decoder::PixelFormat::CMYK32 => 4,
        };
        (u32::from(info.width), u32::from(info.height), channels, data)
    };
    let pixels = columns as usize * rows as usize;
    if u64::from(columns) * u64::from(rows) > MAX_PIXELS || data.len() < pixels * channels {
        return Err(RenderError::TooLarge);
    }
    let samples = match channels {
        // Grey, or grey with alpha (PNG) or 16 bits (JPEG, big-endian: the high byte).
        1 | 2 => Samples::Grey(data.chunks_exact(channels).map(|p| p[0]).collect()),
        3 => Samples::Rgb(data),
        // RGBA (PNG) drops alpha; CMYK (JPEG, as Adobe stores it) becomes RGB.
        _ if kind == AttachmentKind::Png => {
            Samples::Rgb(data.chunks_exact(4).flat_map(|p| [p[0], p[1], p[2]]).collect())
        }
        _ => Samples::Rgb(
            data.chunks_exact(4)
                .flat_map(|p| {
                    let k = u16::from(p[3]);
                    [p[0], p[1], p[2]].map(|c| (u16::from(c) * k / 255) as u8)
                })
                .collect(),
        ),
    };
    Ok(Image { columns, rows, samples })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_linear_window_follows_dicom() {
        let w = Window::new(40.0, 400.0).unwrap();
        assert_eq!(w.apply(-160.0), 0);
        assert_eq!(w.apply(240.0), 255);
        assert_eq!(w.apply(39.5), 128);
        assert!(Window::new(40.0, 0.5).is_none());
        assert!(Window::new(f64::NAN, 10.0).is_none());
        let narrow = Window::new(10.0, 1.0).unwrap();
        assert_eq!((narrow.apply(9.0), narrow.apply(10.0)), (0, 255));
    }

    #[test]
    fn render_requests_parse_or_are_refused_with_a_code() {
        let r = RenderRequest::parse(Some("3"), Some("40"), Some("400"), Some("256")).unwrap();
        assert_eq!(r.frame, 3);
        assert_eq!(r.window, Window::new(40.0, 400.0));
        assert_eq!(r.size, Some(256));
        assert_eq!(RenderRequest::parse(None, None, None, None).unwrap().frame, 0);
        for (args, code) in [
            ((Some("-1"), None, None, None), "invalid_frame"),
            ((None, Some("40"), None, None), "invalid_window"),
            ((None, Some("40"), Some("0"), None), "invalid_window"),
            ((None, Some("NaN"), Some("10"), None), "invalid_window"),
            ((None, None, None, Some("9")), "invalid_size"),
            ((None, None, None, Some("99999")), "invalid_size"),
        ] {
            let (f, c, w, s) = args;
            assert_eq!(RenderRequest::parse(f, c, w, s).unwrap_err().code, code, "{args:?}");
        }
    }

    #[test]
    fn shrinking_averages_and_keeps_the_aspect() {
        let pixels: Vec<u8> = (0..16).map(|i| if i % 2 == 0 { 0 } else { 200 }).collect();
        let (out, w, h) = shrink(&pixels, 4, 4, 1, Some(2));
        assert_eq!((w, h), (2, 2));
        assert!(out.iter().all(|p| *p == 100), "{out:?}");
        let (_, w, h) = shrink(&[0; 8 * 4 * 3], 8, 4, 3, Some(4));
        assert_eq!((w, h), (4, 2));
        // Never enlarged.
        assert_eq!(shrink(&pixels, 4, 4, 1, Some(64)).1, 4);
    }

    #[test]
    fn png_and_jpeg_attachments_render_and_pdfs_do_not() {
        let png = encode_png(&[0, 255, 255, 0], 2, 2, 1);
        let request = RenderRequest { frame: 0, window: None, size: None };
        let out = render(AttachmentKind::Png, &png, &request).unwrap();
        assert_eq!(out, png);
        let facts = info(AttachmentKind::Png, &png).unwrap();
        assert_eq!((facts.frames, facts.rows, facts.columns), (1, 2, 2));
        assert_eq!(
            render(AttachmentKind::Png, &png, &RenderRequest { frame: 1, ..request }),
            Err(RenderError::FrameOutOfRange { frames: 1 })
        );
        assert_eq!(
            render(AttachmentKind::Pdf, b"%PDF-1.4", &request),
            Err(RenderError::NotAnImage)
        );
        assert!(matches!(
            render(AttachmentKind::Png, b"\x89PNG\r\n\x1a\ngarbage", &request),
            Err(RenderError::Undecodable(_))
        ));
    }
}
