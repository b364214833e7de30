//! Compiling `upstream.auth:` ([`crate::mapping::auth`]): the key file read now, the token
//! source that mints from it at run time.

use std::path::PathBuf;
use std::sync::Arc;

use crate::mapping::Env;
use crate::mapping::auth::{
    AuthSpec, DEFAULT_REFRESH_BEFORE, DEFAULT_TOKEN_TIMEOUT, ServiceAccount, read_key,
};
use crate::upstream::token::TokenSource;

use super::Ctx;

impl Ctx<'_> {
    /// The token source of `upstream.auth`, and the key file it read (watched for reloads).
    pub(super) fn auth(
        &mut self,
        spec: AuthSpec,
        env: Env<'_>,
        missing: &mut Vec<String>,
    ) -> (Option<Arc<TokenSource>>, Option<PathBuf>) {
        let at = "upstream.auth.service_account";
        let Some(sa) = spec.service_account else {
            self.error("upstream.auth", "needs `service_account`");
            return (None, None);
        };
        if sa.scopes.is_empty() || sa.scopes.iter().any(|s| s.trim().is_empty()) {
            self.error(&format!("{at}.scopes"), "needs at least one scope");
        }
        let scopes = sa.scopes.join(" ");
        let timeout = self.duration(&sa.timeout, &format!("{at}.timeout"), DEFAULT_TOKEN_TIMEOUT);
        let refresh_before = self.duration(
            &sa.refresh_before,
            &format!("{at}.refresh_before"),
            DEFAULT_REFRESH_BEFORE,
        );
        let file_at = format!("{at}.key_file");
        let before = missing.len();
        let Some(path) = self.interpolate(&sa.key_file, &file_at, env, missing) else {
            return (None, None);
        };
        let (key, read) = if path.is_empty() || missing.len() > before {
            // Unset: the mapping loads (other mappings keep working), its calls fail clearly.
            let why = format!(
                "the service-account key file is not configured ({} is not set)",
                missing[before..].join(", ")
            );
            (Err(why), None)
        } else {
            let path = self.resolve_relative(&path);
            match read_key(path.clone(), &scopes) {
                Ok(k) => (Ok(k), Some(path)),
                Err(e) => {
                    self.error(&file_at, e);
                    return (None, Some(path));
                }
            }
        };
        let account = ServiceAccount {
            key,
            scopes,
            timeout,
            refresh_before,
        };
        (Some(Arc::new(TokenSource::new(account))), read)
    }

    /// A path relative to the mapping file's directory (absolute paths stay).
    fn resolve_relative(&self, path: &str) -> PathBuf {
        let p = PathBuf::from(path);
        if p.is_absolute() {
            return p;
        }
        self.file.parent().map_or(p.clone(), |d| d.join(&p))
    }
}
