//! Re-pair links, decided: what a link answers at a given moment, which
//! outages get one, how often the page reloads to stay ahead of the
//! provider's QR code, and what counts as a phone number for a pairing code.
//! Plain functions over plain data, the clock passed in; the edges
//! (`crate::pairing`, the public page in `crate::server`) do the IO.

use std::time::Duration;

use super::Ts;
use super::health::Cause;

/// What the store keeps of a link that matters to what it answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkFacts {
    pub expires_at: Ts,
    pub revoked_at: Option<Ts>,
    /// When the session was found open after the link was issued.
    pub connected_at: Option<Ts>,
}

/// What a link answers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LinkState {
    /// Shows the provider's QR code and the pairing-code form.
    Live,
    /// The session is open: the link says so, and nothing else.
    Connected,
    /// Past its expiry (410, ask the operator for a new link).
    Expired,
    /// Revoked by an operator (410, like an expired link).
    Revoked,
}

impl LinkState {
    pub fn as_str(self) -> &'static str {
        match self {
            LinkState::Live => "live",
            LinkState::Connected => "connected",
            LinkState::Expired => "expired",
            LinkState::Revoked => "revoked",
        }
    }

    /// Gone for good: the customer needs a new link from the operator.
    pub fn is_gone(self) -> bool {
        matches!(self, LinkState::Expired | LinkState::Revoked)
    }
}

/// The state of a link at `now`. A revoked link is gone whatever else holds;
/// an expired one too. Once the session is open — recorded on the link, or
/// the instance connected now — the link only says so: it never shows a QR
/// code again, even if the number drops later (a new outage gets a new link).
pub fn link_state(link: &LinkFacts, instance_connected: bool, now: Ts) -> LinkState {
    if link.revoked_at.is_some_and(|t| t <= now) {
        LinkState::Revoked
    } else if now >= link.expires_at {
        LinkState::Expired
    } else if link.connected_at.is_some() || instance_connected {
        LinkState::Connected
    } else {
        LinkState::Live
    }
}

/// The causes a link can help with: a QR scan on the phone ends them.
/// `missing` (deleted on the provider) and the transient causes cannot be.
pub const PAIRABLE: [Cause; 3] = [Cause::LoggedOut, Cause::NeedsQr, Cause::NeedsHuman];

/// Which causes get a link by default: logged out and waiting for a QR scan
/// (never paired included). `needs_human` (a provider state wa-sentinel does
/// not know, e.g. WAHA's passkey prompt) is opt-in: a QR code may not help.
pub const DEFAULT_CAUSES: [Cause; 2] = [Cause::LoggedOut, Cause::NeedsQr];

/// Does a down notice of an outage with this cause carry a link?
pub fn gets_link(cause: Option<Cause>, causes: &[Cause]) -> bool {
    cause.is_some_and(|c| causes.contains(&c))
}

/// How long a provider's QR code lives, as its docs say: Evolution 45 s
/// (`qrTimeout`), WAHA 20 s after the first one's 60 s, Z-API 20 s; W-API
/// does not say (taken as 20 s).
pub fn qr_lifetime(evolution: bool) -> Duration {
    if evolution { Duration::from_secs(45) } else { Duration::from_secs(20) }
}

/// How long a QR read is reused for every view of one link: a burst of
/// reloads costs the provider one call.
pub const QR_CACHE: Duration = Duration::from_secs(5);

/// The page's reload period: a QR code shown is at most `QR_CACHE` old when
/// read, and the page reloads before it dies, with a 5 s margin for the
/// phone's camera — never faster than every 5 s.
pub fn refresh_after(lifetime: Duration) -> Duration {
    lifetime.saturating_sub(QR_CACHE + Duration::from_secs(5)).max(Duration::from_secs(5))
}

/// Why a phone number was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PhoneError {
    #[error("the phone number is empty")]
    Empty,
    #[error("a phone number has only digits (and optionally +, spaces, dots, dashes, parentheses)")]
    NotDigits,
    #[error("a phone number with its country code has 8 to 15 digits")]
    Length,
}

/// A phone number as providers take it for a pairing code: its digits, with
/// the country code (`+55 (11) 98765-4321` → `5511987654321`).
pub fn normalize_phone(input: &str) -> Result<String, PhoneError> {
    let t = input.trim();
    if t.is_empty() {
        return Err(PhoneError::Empty);
    }
    let t = t.strip_prefix('+').unwrap_or(t);
    let mut digits = String::with_capacity(t.len());
    for c in t.chars() {
        match c {
            '0'..='9' => digits.push(c),
            ' ' | '-' | '.' | '(' | ')' => {}
            _ => return Err(PhoneError::NotDigits),
        }
    }
    if !(8..=15).contains(&digits.len()) {
        return Err(PhoneError::Length);
    }
    Ok(digits)
}

/// A phone number for the audit log: only its last four digits.
pub fn masked_phone(digits: &str) -> String {
    let tail: String = digits.chars().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    format!("…{tail}")
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn facts(expires: i64) -> LinkFacts {
        LinkFacts { expires_at: Ts(expires), revoked_at: None, connected_at: None }
    }

    #[test]
    fn a_link_is_live_until_it_expires_is_revoked_or_the_session_opens() {
        let l = facts(1_000);
        assert_eq!(link_state(&l, false, Ts(999)), LinkState::Live);
        assert_eq!(link_state(&l, false, Ts(1_000)), LinkState::Expired);
        assert_eq!(link_state(&l, true, Ts(10)), LinkState::Connected);
        let revoked = LinkFacts { revoked_at: Some(Ts(5)), ..l };
        assert_eq!(link_state(&revoked, true, Ts(10)), LinkState::Revoked);
        assert_eq!(link_state(&revoked, false, Ts(4)), LinkState::Live, "revoked from then on");
        let done = LinkFacts { connected_at: Some(Ts(20)), ..l };
        assert_eq!(
            link_state(&done, false, Ts(30)),
            LinkState::Connected,
            "dead once connected, even if it drops again"
        );
        assert_eq!(link_state(&done, false, Ts(2_000)), LinkState::Expired);
        assert!(LinkState::Expired.is_gone() && LinkState::Revoked.is_gone() && !LinkState::Connected.is_gone());
    }

    #[test]
    fn only_causes_a_scan_can_end_get_a_link() {
        assert!(gets_link(Some(Cause::LoggedOut), &DEFAULT_CAUSES));
        assert!(gets_link(Some(Cause::NeedsQr), &DEFAULT_CAUSES));
        assert!(!gets_link(Some(Cause::NeedsHuman), &DEFAULT_CAUSES), "opt-in");
        assert!(gets_link(Some(Cause::NeedsHuman), &PAIRABLE));
        assert!(!gets_link(Some(Cause::Disconnected), &PAIRABLE));
        assert!(!gets_link(Some(Cause::Missing), &PAIRABLE));
        assert!(!gets_link(None, &PAIRABLE));
    }

    #[test]
    fn the_page_reloads_before_the_provider_s_qr_code_dies() {
        assert_eq!(refresh_after(qr_lifetime(true)), Duration::from_secs(35));
        assert_eq!(refresh_after(qr_lifetime(false)), Duration::from_secs(10));
        assert_eq!(refresh_after(Duration::from_secs(3)), Duration::from_secs(5));
        for evo in [true, false] {
            let l = qr_lifetime(evo);
            assert!(refresh_after(l) + QR_CACHE < l, "a shown code is younger than its lifetime");
        }
    }

    #[test]
    fn phone_numbers_are_their_digits_with_the_country_code() {
        assert_eq!(normalize_phone("+55 (11) 98765-4321").as_deref(), Ok("5511987654321"));
        assert_eq!(normalize_phone(" 5511987654321 ").as_deref(), Ok("5511987654321"));
        assert_eq!(normalize_phone(""), Err(PhoneError::Empty));
        assert_eq!(normalize_phone("55 11 9876x"), Err(PhoneError::NotDigits));
        assert_eq!(normalize_phone("++5511987654321"), Err(PhoneError::NotDigits));
        assert_eq!(normalize_phone("1234567"), Err(PhoneError::Length));
        assert_eq!(normalize_phone("1234567890123456"), Err(PhoneError::Length));
        assert_eq!(masked_phone("5511987654321"), "…4321");
    }

    proptest! {
        #[test]
        fn a_normalized_number_is_8_to_15_digits(s in "\\PC{0,40}") {
            if let Ok(d) = normalize_phone(&s) {
                prop_assert!((8..=15).contains(&d.len()) && d.bytes().all(|b| b.is_ascii_digit()));
            }
        }

        #[test]
        fn a_link_never_shows_a_code_once_gone_or_connected(
            expires in 0i64..1_000, revoked in proptest::option::of(0i64..1_000),
            connected in proptest::option::of(0i64..1_000), now in 0i64..1_000, open in any::<bool>(),
        ) {
            let l = LinkFacts { expires_at: Ts(expires), revoked_at: revoked.map(Ts), connected_at: connected.map(Ts) };
            let s = link_state(&l, open, Ts(now));
            if s == LinkState::Live {
                prop_assert!(now < expires && connected.is_none() && !open && revoked.is_none_or(|r| r > now));
            }
        }
    }
}
