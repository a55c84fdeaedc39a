//! `view_image`: shows the model an image from the workspace.

use crate::{FunctionTool, Tool, ToolError, ToolOutput};
use base64::Engine;
use cordon_sandbox::Sandbox;
use schemars::JsonSchema;
use serde::Deserialize;
use std::sync::Arc;

/// The largest image `view_image` sends.
pub const MAX_IMAGE_BYTES: usize = 10 * 1024 * 1024;

/// Arguments of `view_image`.
#[derive(Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ViewImageArgs {
    /// The image's path, relative to the workspace.
    pub path: String,
}

/// The image's media type, from its first bytes (SVG from its markup); `None` if it is not
/// one of PNG, JPEG, GIF, WebP, BMP, TIFF or SVG.
pub fn sniff(bytes: &[u8]) -> Option<&'static str> {
    let starts = |sig: &[u8]| bytes.starts_with(sig);
    if starts(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if starts(b"\xff\xd8\xff") {
        Some("image/jpeg")
    } else if starts(b"GIF87a") || starts(b"GIF89a") {
        Some("image/gif")
    } else if bytes.len() >= 12 && starts(b"RIFF") && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else if starts(b"BM") && bytes.len() > 14 {
        Some("image/bmp")
    } else if starts(b"II*\0") || starts(b"MM\0*") {
        Some("image/tiff")
    } else if is_svg(bytes) {
        Some("image/svg+xml")
    } else {
        None
    }
}

/// SVG: text whose first element (after an optional BOM, XML declaration, doctype and
/// comments) is `<svg`.
fn is_svg(bytes: &[u8]) -> bool {
    let head = &bytes[..bytes.len().min(4096)];
    let Ok(text) = std::str::from_utf8(head) else {
        return false;
    };
    let mut rest = text.trim_start_matches('\u{feff}').trim_start();
    loop {
        if rest.starts_with("<?") {
            rest = rest.split_once("?>").map_or("", |(_, r)| r).trim_start();
        } else if rest.starts_with("<!--") {
            rest = rest.split_once("-->").map_or("", |(_, r)| r).trim_start();
        } else if rest.starts_with("<!") {
            rest = rest.split_once('>').map_or("", |(_, r)| r).trim_start();
        } else {
            return rest.starts_with("<svg");
        }
    }
}

/// Width and height where the header gives them cheaply (PNG, GIF).
fn dimensions(mime: &str, b: &[u8]) -> Option<(u32, u32)> {
    match mime {
        "image/png" if b.len() >= 24 => Some((
            u32::from_be_bytes(b[16..20].try_into().ok()?),
            u32::from_be_bytes(b[20..24].try_into().ok()?),
        )),
        "image/gif" if b.len() >= 10 => Some((
            u16::from_le_bytes([b[6], b[7]]) as u32,
            u16::from_le_bytes([b[8], b[9]]) as u32,
        )),
        _ => None,
    }
}

/// What the model is told `view_image` does.
pub const DESCRIPTION: &str = "Shows you an image file from the workspace (PNG, JPEG, GIF, WebP, BMP, TIFF or SVG, at most 10 MB).";

/// The `view_image` tool over a sandbox's workspace.
pub fn view_image(sandbox: Arc<dyn Sandbox>) -> Arc<dyn Tool> {
    Arc::new(FunctionTool::new(
        "view_image",
        DESCRIPTION,
        move |a: ViewImageArgs| {
            let sandbox = sandbox.clone();
            async move { load(sandbox.as_ref(), &a.path).await }
        },
    ))
}

async fn load(sandbox: &dyn Sandbox, path: &str) -> Result<ToolOutput, ToolError> {
    let bytes = sandbox
        .read_file(path)
        .await
        .map_err(|e| ToolError::Failed(e.to_string()))?
        .ok_or_else(|| ToolError::Failed(format!("there is no file '{path}' in the workspace")))?;
    if bytes.len() > MAX_IMAGE_BYTES {
        return Err(ToolError::Failed(format!(
            "'{path}' is {} bytes; view_image takes images of at most {MAX_IMAGE_BYTES} bytes (make a smaller copy first)",
            bytes.len()
        )));
    }
    let mime = sniff(&bytes).ok_or_else(|| {
        ToolError::Failed(format!(
            "'{path}' is not an image view_image knows (PNG, JPEG, GIF, WebP, BMP, TIFF, SVG)"
        ))
    })?;
    let size = match dimensions(mime, &bytes) {
        Some((w, h)) => format!(", {w}×{h}"),
        None => String::new(),
    };
    let url = format!(
        "data:{mime};base64,{}",
        base64::engine::general_purpose::STANDARD.encode(&bytes)
    );
    Ok(ToolOutput {
        text: format!(
            "Image '{path}' ({mime}{size}, {} bytes) is attached.",
            bytes.len()
        ),
        images: vec![url],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn types_are_sniffed_from_the_bytes() {
        let png = b"\x89PNG\r\n\x1a\n\0\0\0\rIHDR\0\0\0\x10\0\0\0\x20rest";
        assert_eq!(sniff(png), Some("image/png"));
        assert_eq!(dimensions("image/png", png), Some((16, 32)));
        assert_eq!(sniff(b"\xff\xd8\xff\xe0JFIF"), Some("image/jpeg"));
        assert_eq!(sniff(b"GIF89a\x02\0\x03\0"), Some("image/gif"));
        assert_eq!(dimensions("image/gif", b"GIF89a\x02\0\x03\0"), Some((2, 3)));
        assert_eq!(sniff(b"RIFF\0\0\0\0WEBPVP8 "), Some("image/webp"));
        assert_eq!(sniff(b"BM\0\0\0\0\0\0\0\0\0\0\0\0\0\0"), Some("image/bmp"));
        assert_eq!(sniff(b"II*\0\x08\0"), Some("image/tiff"));
        assert_eq!(sniff(b"MM\0*\0\x08"), Some("image/tiff"));
        assert_eq!(sniff(b"\xef\xbb\xbf<?xml version=\"1.0\"?>\n<!-- hi -->\n<!DOCTYPE svg>\n<svg xmlns=\"x\"/>"), Some("image/svg+xml"));
        assert_eq!(sniff(b"<html><svg/></html>"), None, "svg must be the root");
        assert_eq!(sniff(b"plain text"), None);
        assert_eq!(
            sniff(b"\x89PNG"),
            None,
            "a truncated signature is not enough"
        );
    }
}
