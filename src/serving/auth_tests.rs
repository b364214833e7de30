//! Tests of `crate::serving::auth`.

use super::*;

fn headers(auth: &str) -> HeaderMap {
    let mut h = HeaderMap::new();
    h.insert(AUTHORIZATION, auth.parse().unwrap());
    h
}

#[test]
fn names_comments_and_blank_lines() {
    let dir = std::env::temp_dir().join(format!("rosetta-auth-{}", fastrand::u64(..)));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("keys");
    std::fs::write(
        &file,
        "# team keys\n\nalice:sk-alice-1\n  # indented comment\nsk-bare-2\r\nbob : sk-bob-3 \n",
    )
    .unwrap();
    let auth = Auth::load(Some("sk-listed-0, ci:sk-ci-9"), Some(&file)).unwrap();
    assert_eq!(auth.names(), ["key-1", "ci", "alice", "key-2", "bob"]);
    let name = |k: &str| auth.check(&headers(&format!("Bearer {k}")));
    assert_eq!(name("sk-alice-1").unwrap().unwrap().as_str(), "alice");
    assert_eq!(name("sk-bob-3").unwrap().unwrap().as_str(), "bob");
    assert_eq!(name("sk-bare-2").unwrap().unwrap().as_str(), "key-2");
    assert_eq!(name("sk-listed-0").unwrap().unwrap().as_str(), "key-1");
    assert_eq!(name("sk-ci-9").unwrap().unwrap().as_str(), "ci");
    assert_eq!(name("sk-alice-2"), Err(Denied::Invalid));
    assert_eq!(name("alice:sk-alice-1"), Err(Denied::Invalid));
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn only_one_bearer_header_passes() {
    let auth = Auth::load(Some("sk-right"), None).unwrap();
    assert!(auth.enabled());
    assert!(auth.check(&headers("Bearer sk-right")).is_ok());
    assert!(auth.check(&headers("bearer   sk-right ")).is_ok());
    assert_eq!(auth.check(&HeaderMap::new()), Err(Denied::Missing));
    assert_eq!(auth.check(&headers("sk-right")), Err(Denied::Malformed));
    assert_eq!(
        auth.check(&headers("Basic sk-right")),
        Err(Denied::Malformed)
    );
    assert_eq!(auth.check(&headers("Bearer ")), Err(Denied::Malformed));
    assert_eq!(auth.check(&headers("Bearer sk-righ")), Err(Denied::Invalid));
    assert_eq!(
        auth.check(&headers("Bearer sk-rightt")),
        Err(Denied::Invalid)
    );
    let mut two = headers("Bearer sk-right");
    two.append(AUTHORIZATION, "Bearer sk-right".parse().unwrap());
    assert_eq!(auth.check(&two), Err(Denied::Malformed));
}

#[test]
fn no_keys_is_off_and_errors_never_quote_a_key() {
    let off = Auth::load(Some(" , "), None).unwrap();
    assert!(!off.enabled());
    assert_eq!(off.check(&HeaderMap::new()), Ok(None));
    for (list, wanted) in [
        ("a:sk-secret-1,a:sk-secret-2", "used twice"),
        ("a:sk-secret-1,b:sk-secret-1", "same key"),
        ("bad name:sk-secret-1", "invalid key name"),
        ("x:", "empty key"),
        ("x:sk secret", "printable ASCII"),
    ] {
        let e = Auth::load(Some(list), None).unwrap_err();
        assert!(e.contains(wanted), "{list}: {e}");
        assert!(!e.contains("secret"), "{e}");
    }
    let dir = std::env::temp_dir().join(format!("rosetta-auth-{}", fastrand::u64(..)));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("keys");
    std::fs::write(&file, "# nothing yet\n").unwrap();
    assert!(
        Auth::load(None, Some(&file))
            .unwrap_err()
            .contains("no key")
    );
    assert!(Auth::load(None, Some(&dir.join("missing"))).is_err());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn a_broken_reload_keeps_the_keys() {
    let dir = std::env::temp_dir().join(format!("rosetta-auth-{}", fastrand::u64(..)));
    std::fs::create_dir_all(&dir).unwrap();
    let file = dir.join("keys");
    std::fs::write(&file, "one:sk-one\n").unwrap();
    let auth = Auth::load(Some("fixed:sk-fixed"), Some(&file)).unwrap();
    std::fs::write(&file, "two:sk-two\n").unwrap();
    assert_eq!(auth.reload(), Ok(2));
    assert!(auth.check(&headers("Bearer sk-two")).is_ok());
    assert!(auth.check(&headers("Bearer sk-one")).is_err());
    assert!(auth.check(&headers("Bearer sk-fixed")).is_ok());
    for broken in ["", "two:sk two\n", "fixed:sk-other\n"] {
        std::fs::write(&file, broken).unwrap();
        assert!(auth.reload().is_err(), "{broken:?}");
        assert!(auth.check(&headers("Bearer sk-two")).is_ok());
    }
    std::fs::remove_file(&file).unwrap();
    assert!(auth.reload().is_err());
    assert!(auth.check(&headers("Bearer sk-two")).is_ok());
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn secrets_do_not_debug_print() {
    let s = Secret::from("sk-hidden".to_string());
    assert_eq!(format!("{s:?}"), "[redacted]");
    let auth = Auth::load(Some("n:sk-hidden"), None).unwrap();
    assert!(!format!("{auth:?}").contains("sk-hidden"));
}
