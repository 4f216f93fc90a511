//! The otpauth URI that authenticator apps read from the QR code (Key Uri Format), and the
//! names that go into it.

use super::enroll::Enrollment;
use super::{Failure, Result};
use crate::otp::Kind;
use percent_encoding::{AsciiSet, NON_ALPHANUMERIC, utf8_percent_encode};
use zeroize::Zeroizing;

/// Issuer in the otpauth URI when the host name cannot be read.
pub const FALLBACK_ISSUER: &str = "pam-totp";
const MAX_NAME: usize = 100;

/// Why an issuer or label cannot go into the URI.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NameProblem {
    /// Empty or longer than 100 bytes.
    Length,
    /// Apps split the label at the first colon.
    ColonOrControl,
}

impl Enrollment {
    /// `otpauth://totp/ISSUER:LABEL?secret=…&issuer=…&algorithm=…&digits=…&period=…`.
    /// Zeroizing: it holds the secret.
    ///
    /// HOTP: `otpauth://hotp/…&digits=…&counter=N`, N the next counter.
    pub fn otpauth_uri(&self, issuer: &str, label: &str) -> Zeroizing<String> {
        // The one field that differs: where the next code comes from.
        let (kind, moving_factor) = match self.kind() {
            Kind::Hotp => ("hotp", format!("counter={}", self.hotp_counter())),
            Kind::Totp => ("totp", format!("period={}", self.period())),
        };
        Zeroizing::new(format!(
            "otpauth://{kind}/{}:{}?secret={}&issuer={}&algorithm={}&digits={}&{moving_factor}",
            url_encode(issuer),
            url_encode(label),
            self.secret().expose(),
            url_encode(issuer),
            self.algorithm().as_str(),
            self.digits(),
        ))
    }
}

/// `user@host`, the default label in the app.
pub fn default_label(user: &str) -> String {
    format!(
        "{user}@{}",
        host_name().unwrap_or_else(|| "localhost".into())
    )
}

/// The host name, the default issuer in the app (so entries from different machines can be
/// told apart); [`FALLBACK_ISSUER`] when it cannot be read.
pub fn default_issuer() -> String {
    host_name().unwrap_or_else(|| FALLBACK_ISSUER.into())
}

fn host_name() -> Option<String> {
    let name = nix::unistd::gethostname().ok()?.into_string().ok()?;
    (!name.is_empty()).then_some(name)
}

/// Checks an issuer or label (`what` names the option) for the otpauth URI.
pub fn check_name(what: &'static str, value: &str) -> Result<()> {
    let problem = if value.is_empty() || value.len() > MAX_NAME {
        NameProblem::Length
    } else if value.contains(':') || value.chars().any(char::is_control) {
        NameProblem::ColonOrControl
    } else {
        return Ok(());
    };
    Err(Failure::BadName { what, problem })
}

/// RFC 3986's unreserved characters stay as they are; everything else is percent-encoded.
const URI_COMPONENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

/// Percent-encodes a label or issuer for the otpauth URI.
fn url_encode(text: &str) -> String {
    utf8_percent_encode(text, URI_COMPONENT).to_string()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::otp::HashAlgorithm;

    #[test]
    fn uri_encodes_issuer_and_label() {
        let enrollment =
            Enrollment::new(Some("jbsw y3dp-ehpk 3pxp"), HashAlgorithm::SHA256, 8, 60).unwrap();
        let uri = enrollment.otpauth_uri("ACME Corp", "alice@web 1");
        assert_eq!(
            uri.as_str(),
            "otpauth://totp/ACME%20Corp:alice%40web%201?secret=JBSWY3DPEHPK3PXP&issuer=ACME%20Corp&algorithm=SHA256&digits=8&period=60"
        );
    }

    #[test]
    fn an_hotp_uri_carries_the_counter() {
        let enrollment = Enrollment::new(Some("jbsw y3dp-ehpk 3pxp"), HashAlgorithm::SHA1, 6, 30)
            .unwrap()
            .into_hotp(42);
        let uri = enrollment.otpauth_uri("ACME", "bob");
        assert_eq!(
            uri.as_str(),
            "otpauth://hotp/ACME:bob?secret=JBSWY3DPEHPK3PXP&issuer=ACME&algorithm=SHA1&digits=6&counter=42"
        );
    }

    #[test]
    fn names_with_colons_are_refused() {
        assert!(check_name("--issuer", "a:b").is_err());
        assert!(check_name("--label", "").is_err());
        assert!(check_name("--label", "alice@host").is_ok());
    }
}
