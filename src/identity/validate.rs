//! Field rules for people, shared by sign-up, profiles and owner creation.

use validator::ValidationError;

use crate::validation::invalid;
pub use crate::validation::plain_text;

/// 3–32 characters: letters, digits, `.`, `_`, `-`; starting with a letter or digit.
pub fn username(value: &str) -> Result<(), ValidationError> {
    let len = value.chars().count();
    if !(3..=32).contains(&len) {
        return Err(invalid("must be 3 to 32 characters long"));
    }
    if !value
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-'))
    {
        return Err(invalid(
            "may contain only letters, digits, '.', '_' and '-'",
        ));
    }
    if !value.starts_with(|c: char| c.is_ascii_alphanumeric()) {
        return Err(invalid("must start with a letter or digit"));
    }
    if value.contains('@') {
        return Err(invalid("may not contain '@'"));
    }
    Ok(())
}

/// 8–72 characters (longer UTF-8 is condensed before bcrypt, see `auth::passwords`).
pub fn password(value: &str) -> Result<(), ValidationError> {
    match value.chars().count() {
        0..=7 => Err(invalid("must be at least 8 characters long")),
        8..=crate::auth::passwords::MAX_PASSWORD_CHARS => Ok(()),
        _ => Err(invalid("must be at most 72 characters long")),
    }
}

/// E.164-like: an optional `+`, then 7–15 digits; spaces, dashes, dots and parentheses are
/// allowed between them for readability.
pub fn phone(value: &str) -> Result<(), ValidationError> {
    if value.len() > 32 {
        return Err(invalid("must be a phone number like +15551234567"));
    }
    let rest = value.strip_prefix('+').unwrap_or(value);
    if !rest
        .chars()
        .all(|c| c.is_ascii_digit() || matches!(c, ' ' | '-' | '.' | '(' | ')'))
    {
        return Err(invalid("must be a phone number like +15551234567"));
    }
    let digits = rest.chars().filter(char::is_ascii_digit).count();
    if !(7..=15).contains(&digits) {
        return Err(invalid("must have 7 to 15 digits"));
    }
    Ok(())
}

/// The form lookups use: trimmed, lower-cased.
pub fn login_key(value: &str) -> String {
    value.trim().to_lowercase()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn phone_numbers() {
        assert!(phone("+15551234567").is_ok());
        assert!(phone("+44 20 7946 0958").is_ok());
        assert!(phone("12345").is_err());
        assert!(phone("call me").is_err());
    }

    #[test]
    fn passwords_count_characters() {
        assert!(password("short").is_err());
        assert!(password(&"é".repeat(7)).is_err());
        assert!(password(&"é".repeat(72)).is_ok());
        assert!(password(&"é".repeat(73)).is_err());
    }

    #[test]
    fn usernames() {
        assert!(username("alice_1").is_ok());
        assert!(username("al").is_err());
        assert!(username("_alice").is_err());
        assert!(username("a b c").is_err());
    }
}
