use super::*;
use serde::Serialize;
use serde::de::DeserializeOwned;

/// Every mutant of `text` (a byte deleted, doubled, replaced or preceded by one of the
/// characters TOML cares about) that this reader accepts must be read by `toml` to the same
/// value: the fast path may refuse more, never read differently. Values are compared by
/// serializing both.
pub(crate) fn assert_agrees_with_toml_on_mutations<T: DeserializeOwned + Serialize>(text: &str) {
    assert_reader_agrees_with_toml(text, |t| from_str::<T>(t));
}

/// The same for any reader of a fast path, such as the enrollment file's own
/// (`enrollment_v2/as_written.rs`).
pub(crate) fn assert_reader_agrees_with_toml<T: DeserializeOwned + Serialize>(
    text: &str,
    reader: impl Fn(&str) -> Option<T>,
) {
    let read = |t: &str| reader(t).map(|v| toml::to_string(&v).unwrap());
    let original = read(text).expect("the file as written takes the fast path");
    assert_eq!(
        original,
        toml::to_string(&toml::from_str::<T>(text).unwrap()).unwrap()
    );
    let bytes = text.as_bytes();
    let mut accepted = 0;
    let mut check = |mutant: Vec<u8>| {
        let Ok(mutant) = String::from_utf8(mutant) else {
            return;
        };
        if let Some(fast) = read(&mutant) {
            accepted += 1;
            let general = toml::from_str::<T>(&mutant)
                .unwrap_or_else(|e| panic!("toml refuses what the fast path read: {e}\n{mutant}"));
            assert_eq!(fast, toml::to_string(&general).unwrap(), "{mutant}");
        }
    };
    const SPECIAL: &[u8] = b" \t\"'\\0-+_[]=.\n#ax\r";
    for i in 0..bytes.len() {
        let mut deleted = bytes.to_vec();
        deleted.remove(i);
        check(deleted);
        for &c in SPECIAL {
            let mut replaced = bytes.to_vec();
            replaced[i] = c;
            check(replaced);
            let mut inserted = bytes.to_vec();
            inserted.insert(i, c);
            check(inserted);
        }
    }
    assert!(
        accepted > 0,
        "no mutant was read at all: the test tests nothing"
    );
}

#[derive(Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Sample {
    n: u32,
    s: String,
    #[serde(default)]
    o: Option<u64>,
    #[serde(default)]
    list: Vec<Entry>,
}

#[derive(Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields)]
struct Entry {
    id: String,
}

#[test]
fn reads_the_subset() {
    let text = "n = 7\ns = \"a$b=c, d\"\no = 0\n\n[[list]]\nid = \"x\"\n\n[[list]]\nid = \"y\"\n";
    let sample: Sample = from_str(text).unwrap();
    assert_eq!(
        sample,
        Sample {
            n: 7,
            s: "a$b=c, d".into(),
            o: Some(0),
            list: vec![Entry { id: "x".into() }, Entry { id: "y".into() }],
        }
    );
    let empty: Sample = from_str("n = 1\ns = \"\"\nlist = []\n").unwrap();
    assert_eq!((empty.o, empty.list.len()), (None, 0));
}

#[test]
fn leaves_everything_else_to_toml() {
    for text in [
        "n = 7\ns = \"x\"",                                    // no final newline
        "n = 07\ns = \"x\"\n",                                 // leading zero
        "n = +7\ns = \"x\"\n",                                 // sign
        "n = 1_0\ns = \"x\"\n",                                // separator
        "n=7\ns = \"x\"\n",                                    // spacing
        "n = 7 \ns = \"x\"\n",                                 // trailing space
        "n = 7\ns = 'x'\n",                                    // literal string
        "n = 7\ns = \"a\\\"b\"\n",                             // escape
        "n = 7\ns = \"x\" # c\n",                              // comment
        "n = 7\nn = 8\ns = \"x\"\n",                           // duplicate key
        "n = 7\ns = \"x\"\nbogus = 1\n",                       // unknown field (serde refuses)
        "n = 7\n",                                             // missing field (serde refuses)
        "n = 7\ns = \"x\"\nlist = []\n[[list]]\nid = \"y\"\n", // list twice
        "n = 7\ns = \"x\"\n[[list]]\nid = \"y\"\n[t]\n[[list]]\nid = \"z\"\n",
        "n = 7\ns = \"x\"\r\n",
        "n = -9223372036854775809\ns = \"x\"\n",
    ] {
        assert!(from_str::<Sample>(text).is_none(), "{text:?}");
    }
}

#[test]
fn agrees_with_toml_on_mutations_of_the_sample() {
    assert_agrees_with_toml_on_mutations::<Sample>(
        "n = 7\ns = \"a$b\"\no = 5\n\n[[list]]\nid = \"x\"\n\n[[list]]\nid = \"y\"\n",
    );
}

#[test]
fn a_file_longer_than_any_we_write_goes_to_toml() {
    let lines = |n: usize| (0..n).map(|i| format!("k{i} = {i}\n")).collect::<String>();
    assert!(parse(&lines(MAX_LINES)).is_some());
    assert!(parse(&lines(MAX_LINES + 1)).is_none());
}
