//! Compiling `upstream.sign`: alternatives tried in order, the first whose environment
//! variables are all set is how every request is signed. Every value it reads is a secret.

use http::HeaderValue;

use crate::mapping::Env;
use crate::mapping::spec::{SigV4Spec, SignSpec};
use crate::upstream::sign::{SigV4, Signing};

use super::Ctx;

impl Ctx<'_> {
    pub(super) fn signing(
        &mut self,
        specs: &[SignSpec],
        env: Env<'_>,
        missing: &mut Vec<String>,
    ) -> Signing {
        let mut unset = Vec::new();
        for (i, spec) in specs.iter().enumerate() {
            let at = format!("upstream.sign[{i}]");
            let mut needs = Vec::new();
            let chosen = match (&spec.bearer, &spec.sigv4) {
                (Some(token), None) => self.bearer(token, &at, env, &mut needs),
                (None, Some(v4)) => self.sigv4(v4, &at, env, &mut needs),
                _ => {
                    self.error(&at, "give exactly one of `bearer` or `sigv4`");
                    None
                }
            };
            match chosen {
                Some(signing) if needs.is_empty() => return signing,
                _ => unset.extend(needs),
            }
        }
        // No alternative can be used: requests go unsigned and `/health` names what is unset.
        for var in unset {
            if !missing.contains(&var) {
                missing.push(var);
            }
        }
        Signing::None
    }

    fn bearer(
        &mut self,
        raw: &str,
        at: &str,
        env: Env<'_>,
        needs: &mut Vec<String>,
    ) -> Option<Signing> {
        let at = format!("{at}.bearer");
        let token = self.interpolate(raw, &at, env, needs)?;
        if token.is_empty() {
            return None;
        }
        self.note_secrets(raw, env);
        match HeaderValue::from_str(&format!("Bearer {token}")) {
            Ok(mut v) => {
                v.set_sensitive(true);
                Some(Signing::Bearer(v))
            }
            Err(_) => {
                // Never echo the value: it is a secret.
                self.error(&at, "the token has characters not allowed in HTTP headers");
                None
            }
        }
    }

    fn sigv4(
        &mut self,
        spec: &SigV4Spec,
        at: &str,
        env: Env<'_>,
        needs: &mut Vec<String>,
    ) -> Option<Signing> {
        let mut value = |ctx: &mut Self, raw: &str, key: &str, secret: bool| {
            if secret {
                ctx.note_secrets(raw, env);
            }
            ctx.interpolate(raw, &format!("{at}.sigv4.{key}"), env, needs)
        };
        let service = value(self, &spec.service, "service", false)?;
        let region = value(self, &spec.region, "region", false)?;
        let access_key_id = value(self, &spec.access_key_id, "access_key_id", true)?;
        let secret_access_key = value(self, &spec.secret_access_key, "secret_access_key", true)?;
        let session_token = match &spec.session_token {
            Some(raw) => Some(value(self, raw, "session_token", true)?).filter(|t| !t.is_empty()),
            None => None,
        };
        for (key, v) in [
            ("service", &service),
            ("region", &region),
            ("access_key_id", &access_key_id),
            ("secret_access_key", &secret_access_key),
        ] {
            if v.is_empty() && needs.is_empty() {
                self.error(&format!("{at}.sigv4.{key}"), "is empty");
            }
        }
        Some(Signing::SigV4(SigV4 {
            service,
            region,
            access_key_id,
            secret_access_key,
            session_token,
        }))
    }
}

#[cfg(test)]
#[path = "sign_tests.rs"]
mod tests;
