//! What a person typed: a TOTP code, a recovery code, or neither; and, for `forward_pass`,
//! where the password ends and the code begins.

use crate::recovery::{
    GROUP, RECOVERY_ALPHABET, RECOVERY_DASHED_LEN, RECOVERY_LEN, SCRATCH_CODE_LEN,
};
use crate::secret::SecretString;
use zeroize::Zeroizing;

/// What the user typed, after normalization.
pub enum Entered {
    Totp(SecretString),
    Recovery {
        id: String,
        code: SecretString,
    },
    /// Eight digits where TOTP codes have fewer: a scratch code imported from
    /// google-authenticator (checked as a recovery code).
    LegacyScratch(SecretString),
    /// Neither shape: counts as a wrong code.
    Malformed,
    Empty,
}

/// Sorts an answer into a TOTP code (`digits` digits) or a recovery code (case, spaces and
/// dashes ignored), or a google-authenticator scratch code (8 digits, only when TOTP codes
/// have 6 or 7: with `digits=8` the two cannot be told apart, and 8 digits are a TOTP code).
/// The shapes never overlap: a recovery code has 20 characters.
pub fn classify(input: &str, digits: u8) -> Entered {
    let normalized: Zeroizing<String> = Zeroizing::new(
        input
            .chars()
            .filter(|c| !c.is_whitespace() && *c != '-')
            .map(|c| c.to_ascii_uppercase())
            .collect(),
    );
    if normalized.is_empty() {
        return Entered::Empty;
    }
    if normalized.len() == usize::from(digits) && normalized.bytes().all(|b| b.is_ascii_digit()) {
        return Entered::Totp(SecretString::new(normalized.as_str().to_owned()));
    }
    if normalized.len() == SCRATCH_CODE_LEN && normalized.bytes().all(|b| b.is_ascii_digit()) {
        return Entered::LegacyScratch(SecretString::new(normalized.as_str().to_owned()));
    }
    if normalized.len() == RECOVERY_LEN
        && normalized.bytes().all(|b| RECOVERY_ALPHABET.contains(&b))
    {
        return Entered::Recovery {
            id: normalized[..GROUP].to_owned(),
            code: SecretString::new(normalized.as_str().to_owned()),
        };
    }
    Entered::Malformed
}

/// Splits "password" + "code": a dashed recovery code (24 characters) or `digits` digits
/// at the end. With neither, all of it is the password and the code is empty.
pub(crate) fn split_forwarded(combined: &SecretString, digits: u8) -> (SecretString, SecretString) {
    let text = combined.expose();
    let recovery_len = RECOVERY_DASHED_LEN;
    let split_at = |len: usize| -> (SecretString, SecretString) {
        let cut = text.len() - len;
        (
            SecretString::new(text[..cut].to_owned()),
            SecretString::new(text[cut..].to_owned()),
        )
    };
    if text.is_char_boundary(text.len().saturating_sub(recovery_len)) && text.len() >= recovery_len
    {
        let tail = &text[text.len() - recovery_len..];
        let dashed = tail.bytes().enumerate().all(|(i, b)| {
            if i % 5 == 4 {
                b == b'-'
            } else {
                b.is_ascii_alphanumeric()
            }
        });
        if dashed {
            return split_at(recovery_len);
        }
    }
    let digits = usize::from(digits);
    if text.len() >= digits
        && text.is_char_boundary(text.len() - digits)
        && text[text.len() - digits..]
            .bytes()
            .all(|b| b.is_ascii_digit())
    {
        return split_at(digits);
    }
    (combined.clone(), SecretString::default())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classify_normalizes_recovery_codes() {
        let Entered::Recovery { id, code } = classify(" abcd-efgh jkmn-pqrs-tuvw ", 6) else {
            panic!("not a recovery code")
        };
        assert_eq!(id, "ABCD");
        assert_eq!(code.expose(), "ABCDEFGHJKMNPQRSTUVW");
        assert!(matches!(classify("123456", 6), Entered::Totp(_)));
        assert!(matches!(classify("123 456", 6), Entered::Totp(_)));
        assert!(matches!(classify("12345", 6), Entered::Malformed));
        assert!(matches!(classify("1234567", 6), Entered::Malformed));
        assert!(matches!(
            classify("1234 5678", 6),
            Entered::LegacyScratch(_)
        ));
        assert!(matches!(classify("12345678", 7), Entered::LegacyScratch(_)));
        assert!(matches!(classify("12345678", 8), Entered::Totp(_)));
        assert!(matches!(classify("123456789", 6), Entered::Malformed));
        assert!(matches!(classify("   ", 6), Entered::Empty));
        assert!(matches!(
            classify("ABCD-EFGH-JKMN-PQRS-TUV0", 6),
            Entered::Malformed
        ));
    }

    #[test]
    fn forwarded_password_and_code_are_split() {
        let split = |s: &str, d| {
            let (p, c) = split_forwarded(&SecretString::new(s.into()), d);
            (p.expose().to_owned(), c.expose().to_owned())
        };
        assert_eq!(
            split("hunter2123456", 6),
            ("hunter2".into(), "123456".into())
        );
        assert_eq!(split("pw12345678", 8), ("pw".into(), "12345678".into()));
        assert_eq!(
            split("pwABCD-EFGH-JKMN-PQRS-TUVW", 6),
            ("pw".into(), "ABCD-EFGH-JKMN-PQRS-TUVW".into())
        );
        assert_eq!(split("onlypassword", 6), ("onlypassword".into(), "".into()));
        assert_eq!(split("ééé", 6), ("ééé".into(), "".into()));
    }
}
