//! Field rules that every area's DTOs share.

use validator::ValidationError;

/// A validation error with a message written for the person filling in the form.
pub fn invalid(message: &'static str) -> ValidationError {
    let mut e = ValidationError::new("invalid");
    e.message = Some(message.into());
    e
}

/// Display text: no control characters.
pub fn plain_text(value: &str) -> Result<(), ValidationError> {
    if value
        .chars()
        .any(|c| c.is_control() && c != '\n' && c != '\t')
    {
        return Err(invalid("may not contain control characters"));
    }
    Ok(())
}
