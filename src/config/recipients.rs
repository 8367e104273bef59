//! Who a `whatsapp` notifier tells: E.164 numbers (digits; a leading `+` is
//! dropped) or a group, in the form the provider addresses groups with
//! (Evolution, WAHA and W-API `<id>@g.us`, Z-API `<id>-group`, or the
//! `<creator>-<timestamp>` id of a group made before November 2021).

use super::ProviderKind;

/// E.164 allows at most 15 digits; fewer than 8 cannot be a full number
/// with its country code.
const DIGITS: std::ops::RangeInclusive<usize> = 8..=15;

fn digits(s: &str) -> bool {
    !s.is_empty() && s.bytes().all(|b| b.is_ascii_digit())
}

/// One recipient, normalised, or why it is not one (naming the forms this
/// provider takes).
pub fn recipient(kind: ProviderKind, raw: &str) -> Result<String, String> {
    let number = raw.strip_prefix('+').unwrap_or(raw);
    if digits(number) && DIGITS.contains(&number.len()) {
        return Ok(number.to_string());
    }
    let group = match kind {
        ProviderKind::Zapi => raw
            .strip_suffix("-group")
            .map(digits)
            .unwrap_or_else(|| raw.split_once('-').is_some_and(|(a, b)| digits(a) && digits(b))),
        _ => raw.strip_suffix("@g.us").is_some_and(|id| {
            let (a, b) = id.split_once('-').unwrap_or((id, "0"));
            digits(a) && digits(b)
        }),
    };
    if group {
        return Ok(raw.to_string());
    }
    let groups = match kind {
        ProviderKind::Zapi => "`<id>-group` (Z-API's form; not `@g.us`)",
        _ => "`<id>@g.us`",
    };
    Err(format!(
        "`{raw}` is neither a phone number in E.164 digits with its country code (e.g. \"5511988887777\", \
         8 to 15 digits, no spaces or dashes) nor a {} group id: {groups}",
        kind.as_str()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_and_each_providers_group_form() {
        let ok = |k, s: &str| recipient(k, s).unwrap();
        assert_eq!(ok(ProviderKind::Evolution, "+5511988887777"), "5511988887777");
        assert_eq!(ok(ProviderKind::Waha, "5511988887777"), "5511988887777");
        assert_eq!(ok(ProviderKind::Evolution, "120363025246125486@g.us"), "120363025246125486@g.us");
        assert_eq!(ok(ProviderKind::Wapi, "5511999999999-1623281429@g.us"), "5511999999999-1623281429@g.us");
        assert_eq!(ok(ProviderKind::Zapi, "120363019502650977-group"), "120363019502650977-group");
        assert_eq!(ok(ProviderKind::Zapi, "5511999999999-1623281429"), "5511999999999-1623281429");
        for bad in ["", "+", "123", "11 98888-7777", "5511988887777@c.us", "1234567890123456", "abc@g.us"] {
            assert!(recipient(ProviderKind::Evolution, bad).is_err(), "{bad:?}");
        }
        assert!(recipient(ProviderKind::Zapi, "120363025246125486@g.us").unwrap_err().contains("-group"));
        assert!(recipient(ProviderKind::Waha, "120363019502650977-group").unwrap_err().contains("@g.us"));
    }
}
