//! Step three of a call: who it is charged to, its tab on the ledger, and a hold on every
//! budget limit of its caller.

use http::HeaderMap;
use serde_json::Value;

use crate::error::ProxyError;
use crate::ledger::tab::{Caller, Tab};
use crate::ledger::writer::Reservation;
use crate::serving::state::{Loaded, State};

/// The user the call is charged to (the request's `user` field, or the `--user-header`), or a
/// refusal when the mapping charges every call to a user and none is named.
pub(super) fn caller(
    state: &State,
    headers: &HeaderMap,
    request: &Value,
    key: Option<&str>,
    loaded: &Loaded,
    name: &str,
) -> Result<Option<String>, ProxyError> {
    let user = state
        .accounting
        .user(headers, request, key)
        .map(str::to_string);
    if user.is_none()
        && loaded
            .mapping
            .pricing
            .as_ref()
            .is_some_and(|p| p.require_user)
    {
        let header = state
            .accounting
            .user_header
            .as_ref()
            .map(|h| format!(" or in the {h} header"))
            .unwrap_or_default();
        return Err(ProxyError::BadRequest {
            message: format!(
                "mapping {name:?} charges each call to a user: name the user in the request's `user` field{header}"
            ),
            param: Some("user".into()),
        });
    }
    Ok(user)
}

/// Opens the call's tab and holds its budgets; a refused call's tab is closed as failed.
pub(super) async fn open_tab(
    state: &State,
    loaded: &Loaded,
    model: &str,
    upstream_model: &str,
    caller: Caller<'_>,
    span: &tracing::Span,
) -> Result<Tab, ProxyError> {
    let (user, key) = (caller.user, caller.key);
    let mut tab = Tab::open(
        state.accounting.ledger.clone(),
        &loaded.metrics,
        &loaded.mapping,
        model,
        upstream_model,
        caller,
    );
    if let Err(e) = reserve_budget(state, &mut tab, user, key).await {
        span.in_scope(|| tracing::warn!(error = %e, "budget exceeded"));
        tab.failed(&e, e.status().as_u16(), &Default::default());
        return Err(e);
    }
    Ok(tab)
}

/// Takes a hold on every budget limit of the caller, or refuses the call (429,
/// `insufficient_quota`). With the ledger's store unreachable, the call goes through
/// unchecked: serving matters more than a budget (`rosetta_budget_checks_total{result="store_error"}`).
async fn reserve_budget(
    state: &State,
    tab: &mut Tab,
    user: Option<&str>,
    key: Option<&str>,
) -> Result<(), ProxyError> {
    let acc = &state.accounting;
    let (Some(budgets), Some(ledger)) = (&acc.budgets, &acc.ledger) else {
        return Ok(());
    };
    let checks = budgets.checks(user, key, ledger.now_ms(), tab.hold_cost());
    if checks.is_empty() {
        return Ok(());
    }
    let currency = budgets.currency_or(tab.currency());
    match ledger.reserve(&checks, tab.id()).await {
        Reservation::Granted => {
            tab.held();
            Ok(())
        }
        Reservation::Denied(denial) => {
            let check = &checks[denial.check];
            Err(ProxyError::QuotaExceeded {
                message: crate::ledger::budgets::describe(check, &denial, currency),
                resets_at: check.resets_at_ms.div_euclid(1000),
            })
        }
        Reservation::Unavailable(error) => {
            tracing::warn!(%error, "budgets not checked: the ledger store is unavailable");
            Ok(())
        }
    }
}
