//! Re-pair links at the edge: the token (256 bits from the operating
//! system's CSPRNG; the database keeps only its SHA-256, like the status-page
//! sessions), the URL built on `server.public_url`, the page's form token
//! (an HMAC keyed by the link's token, so it needs no storage and cannot be
//! made without the link), and a PNG drawn from a QR string for providers
//! that hand out the string rather than an image. The decisions are in
//! [`crate::domain::pairing`].

use hmac::{KeyInit, Mac};
use sha2::Digest;

/// The path prefix of every link (`/pair/<token>`).
pub const PATH: &str = "/pair";

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// A fresh link token: 32 random bytes, hex (64 characters).
pub fn new_token() -> String {
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).expect("the operating system provides random bytes");
    hex(&raw)
}

/// What the database stores for a token (never the token itself).
pub fn token_hash(token: &str) -> String {
    hex(&sha2::Sha256::digest(token.as_bytes()))
}

/// Does `s` look like a token at all (64 lowercase hex digits)? Anything else
/// is answered 404 without a database read.
pub fn well_formed(s: &str) -> bool {
    s.len() == 64 && s.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b))
}

/// The link a customer opens.
pub fn url(public_url: &str, token: &str) -> String {
    format!("{}{PATH}/{token}", public_url.trim_end_matches('/'))
}

/// The token of the page's pairing-code form: an HMAC keyed by the link's
/// token. Only someone who opened the link can post the form; a cross-site
/// page cannot make one.
pub fn form_token(token: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(token.as_bytes()).expect("any key length");
    mac.update(b"wa-sentinel pairing form");
    hex(&mac.finalize().into_bytes())
}

/// Does `given` match the link's form token? (Constant time.)
pub fn form_token_matches(token: &str, given: &str) -> bool {
    use subtle::ConstantTimeEq;
    form_token(token).as_bytes().ct_eq(given.as_bytes()).into()
}

/// Why a QR string could not be drawn.
#[derive(Debug, thiserror::Error)]
pub enum QrError {
    #[error("the QR string is too long for a QR code ({0} bytes)")]
    TooLong(usize),
    #[error("cannot encode the PNG: {0}")]
    Png(String),
}

/// Pixels per QR module, and the quiet zone around the code (in modules):
/// large enough for a phone's camera on any screen.
const SCALE: usize = 8;
const QUIET: usize = 4;

/// A black-on-white PNG of the QR code of `text` (error correction M, as
/// WhatsApp Web's own codes).
pub fn qr_png(text: &str) -> Result<Vec<u8>, QrError> {
    use qrcodegen::{QrCode, QrCodeEcc};
    let qr = QrCode::encode_text(text, QrCodeEcc::Medium).map_err(|_| QrError::TooLong(text.len()))?;
    let modules = qr.size() as usize;
    let side = (modules + 2 * QUIET) * SCALE;
    // One bit per pixel, 1 = white; rows padded to whole bytes.
    let row_bytes = side.div_ceil(8);
    let mut pixels = vec![0xFFu8; row_bytes * side];
    for y in 0..side {
        for x in 0..side {
            let (mx, my) = ((x / SCALE) as i32 - QUIET as i32, (y / SCALE) as i32 - QUIET as i32);
            if qr.get_module(mx, my) {
                pixels[y * row_bytes + x / 8] &= !(0x80 >> (x % 8));
            }
        }
    }
    let mut out = Vec::new();
    {
        let mut enc = png::Encoder::new(&mut out, side as u32, side as u32);
        enc.set_color(png::ColorType::Grayscale);
        enc.set_depth(png::BitDepth::One);
        let mut w = enc.write_header().map_err(|e| QrError::Png(e.to_string()))?;
        w.write_image_data(&pixels).map_err(|e| QrError::Png(e.to_string()))?;
    }
    Ok(out)
}

/// Is this a PNG (by its signature)?
pub fn is_png(bytes: &[u8]) -> bool {
    bytes.starts_with(b"\x89PNG\r\n\x1a\n")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_are_random_hex_and_stored_as_hashes() {
        let (a, b) = (new_token(), new_token());
        assert_ne!(a, b);
        assert!(well_formed(&a) && well_formed(&b));
        assert_ne!(token_hash(&a), a);
        assert_eq!(token_hash(&a).len(), 64);
        assert!(!well_formed("style.css") && !well_formed(&a.to_uppercase()) && !well_formed(&a[1..]));
        assert_eq!(url("https://s.example.com/", "ab"), "https://s.example.com/pair/ab");
    }

    #[test]
    fn the_form_token_belongs_to_one_link() {
        let (a, b) = (new_token(), new_token());
        let t = form_token(&a);
        assert!(form_token_matches(&a, &t));
        assert!(!form_token_matches(&b, &t));
        assert!(!form_token_matches(&a, "") && !form_token_matches(&a, &t[..63]));
    }

    #[test]
    fn a_qr_string_becomes_a_png_of_a_readable_size() {
        let png = qr_png(
            "2@y8Fq0pXgV3m0c1hXnRkq8b9s7Ww2Lk3QeT1uZrYd6Jf5Hs4Ga0Mb,2Zq6l1p0Ck9o8Xr7Tt3Ss5Yy4Uu2Ii1Oo0Pp9Aa8Ss7=",
        )
        .unwrap();
        assert!(is_png(&png));
        let decoder = png::Decoder::new(std::io::Cursor::new(&png));
        let reader = decoder.read_info().unwrap();
        let info = reader.info();
        assert_eq!(info.width, info.height);
        assert!(info.width >= 200, "{} px", info.width);
        assert!(qr_png(&"x".repeat(5000)).is_err());
    }
}
