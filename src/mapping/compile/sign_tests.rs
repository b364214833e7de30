//! `upstream.sign`: which alternative is chosen, what is missing, what is a secret.

use std::path::Path;

use super::super::compile_file;
use crate::upstream::sign::Signing;

const SRC: &str = "upstream:\n  base_url: http://x\n  sign:\n    - bearer: ${TOKEN}\n    - sigv4:\n        service: svc\n        region: ${REGION:-r-1}\n        access_key_id: ${ID}\n        secret_access_key: ${SECRET}\n        session_token: ${SESSION:-}\nroutes:\n  chat: {path: /, response: {}}\n";

fn compiled(vars: &[(&str, &str)]) -> crate::mapping::Mapping {
    let env = |k: &str| {
        vars.iter()
            .find(|(n, _)| *n == k)
            .map(|(_, v)| v.to_string())
    };
    compile_file(Path::new("m.yaml"), SRC, &env).unwrap()
}

#[test]
fn the_first_complete_alternative_wins() {
    let both = compiled(&[
        ("TOKEN", "token-0123456789"),
        ("ID", "ID0123456789"),
        ("SECRET", "secret-0123456789"),
    ]);
    assert_eq!(both.upstream.signing.kind(), "bearer");
    assert!(both.upstream.missing_env.is_empty());
    let pair = compiled(&[("ID", "ID0123456789"), ("SECRET", "secret-0123456789")]);
    let Signing::SigV4(k) = &pair.upstream.signing else {
        panic!("{:?}", pair.upstream.signing);
    };
    assert_eq!((k.service.as_str(), k.region.as_str()), ("svc", "r-1"));
    assert_eq!(k.session_token, None);
    // The unused bearer is not reported missing; the key pair's values are secrets.
    assert!(pair.upstream.missing_env.is_empty());
    assert!(
        pair.upstream
            .secrets
            .contains(&"secret-0123456789".to_string())
    );
    assert!(pair.upstream.secrets.contains(&"ID0123456789".to_string()));
}

#[test]
fn with_no_complete_alternative_requests_go_unsigned_and_the_variables_are_missing() {
    let none = compiled(&[("ID", "ID0123456789")]);
    assert_eq!(none.upstream.signing.kind(), "none");
    assert_eq!(none.upstream.missing_env, vec!["TOKEN", "SECRET"]);
}

#[test]
fn an_alternative_names_exactly_one_kind() {
    let src = "upstream:\n  base_url: http://x\n  sign:\n    - {}\nroutes:\n  chat: {path: /, response: {}}\n";
    let err = compile_file(Path::new("m.yaml"), src, &|_| None).unwrap_err();
    assert!(
        format!("{err:?}").contains("exactly one of `bearer` or `sigv4`"),
        "{err:?}"
    );
}
