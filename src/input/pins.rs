//! Pins for the `forward_pass` split and the shapes of an answer (issue 13, item 18).

use super::*;

fn split(text: &str, digits: u8) -> (String, String) {
    let (password, code) = split_forwarded(&SecretString::new(text.into()), digits);
    (password.expose().to_owned(), code.expose().to_owned())
}

#[test]
fn the_split_never_cuts_a_multibyte_character() {
    // The cut for 6 digits would fall inside "é" (2 bytes): no split, and no panic.
    assert_eq!(split("é12345", 6), ("é12345".into(), "".into()));
    // The same for the 24-character recovery code.
    let tail = "BCD-EFGH-JKMN-PQRS-TUVW";
    assert_eq!(
        split(&format!("é{tail}"), 6),
        (format!("é{tail}"), "".into())
    );
    // A multibyte password before a whole code is split as usual.
    assert_eq!(
        split("pässwörd123456", 6),
        ("pässwörd".into(), "123456".into())
    );
    assert_eq!(
        split("€ABCD-EFGH-JKMN-PQRS-TUVW", 6),
        ("€".into(), "ABCD-EFGH-JKMN-PQRS-TUVW".into())
    );
}

#[test]
fn the_split_takes_exactly_the_code_shape() {
    // Only a code, no password.
    assert_eq!(split("123456", 6), ("".into(), "123456".into()));
    assert_eq!(
        split("ABCD-EFGH-JKMN-PQRS-TUVW", 6),
        ("".into(), "ABCD-EFGH-JKMN-PQRS-TUVW".into())
    );
    // Shorter than the code: all password.
    assert_eq!(split("12345", 6), ("12345".into(), "".into()));
    assert_eq!(split("", 6), ("".into(), "".into()));
    // Dashes must sit exactly every fifth character.
    assert_eq!(
        split("pwABCDE-FGH-JKMN-PQRS-TUVW", 6),
        ("pwABCDE-FGH-JKMN-PQRS-TUVW".into(), "".into())
    );
    assert_eq!(
        split("pwABCD-EFGH-JKMN-PQRS-TUV-", 6),
        ("pwABCD-EFGH-JKMN-PQRS-TUV-".into(), "".into())
    );
    assert_eq!(
        split("pwABCD-EF-H-JKMN-PQRS-TUVW", 6),
        ("pwABCD-EF-H-JKMN-PQRS-TUVW".into(), "".into())
    );
    // A non-digit among the last `digits` characters: no code.
    assert_eq!(split("pw12a456", 6), ("pw12a456".into(), "".into()));
    assert_eq!(split("pw1234567", 7), ("pw".into(), "1234567".into()));
}

#[test]
fn answers_of_the_wrong_length_or_alphabet_are_malformed() {
    let recovery = |s: &str| match classify(s, 6) {
        Entered::Recovery { id, code } => Some((id, code.expose().to_owned())),
        _ => None,
    };
    // 19 and 21 alphabet characters are neither shape.
    assert!(recovery("ABCDEFGHJKMNPQRSTUV").is_none());
    assert!(recovery("ABCDEFGHJKMNPQRSTUVWX").is_none());
    assert!(matches!(
        classify("ABCDEFGHJKMNPQRSTUV", 6),
        Entered::Malformed
    ));
    // 1, I, L, O are not in the alphabet.
    for bad in ['1', 'I', 'L', 'O'] {
        let code = format!("ABCDEFGHJKMNPQRSTUV{bad}");
        assert!(recovery(&code).is_none(), "{code}");
    }
    assert_eq!(
        recovery("abcdefghjkmnpqrstuvw"),
        Some(("ABCD".into(), "ABCDEFGHJKMNPQRSTUVW".into()))
    );
    // Digits of the wrong count, or with a letter, are not a TOTP code.
    assert!(matches!(classify("12345a", 6), Entered::Malformed));
    assert!(matches!(classify("1234567", 7), Entered::Totp(_)));
    assert!(matches!(classify("", 6), Entered::Empty));
    assert!(matches!(classify("- -", 6), Entered::Empty));
}
