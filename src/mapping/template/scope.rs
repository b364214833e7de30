//! What a template sees while it is evaluated: its focus, the globals, the `$map`/`$filter`
//! bindings, and the memo of the definitions evaluated at the input's root.

use std::cell::RefCell;

use serde_json::Value;

/// Variables visible to a template: globals by name plus `$map`/`$filter` bindings.
#[derive(Clone, Copy)]
pub struct Scope<'a> {
    pub(super) focus: &'a Value,
    globals: &'a [(&'a str, &'a Value)],
    local: Option<&'a Local<'a>>,
    /// The focus the scope was made with, and the memo of the definitions evaluated on it.
    root: &'a Value,
    memo: Option<&'a Memo>,
}

/// The values of the definitions used without `of` ([`super::Expr::Def`]) at the root of one
/// evaluation: the same definition at the same focus, with the same globals and no local
/// binding, gives the same value, so it is evaluated once. A mapping's derived values (a
/// thinking budget read by four fields, each derived from others) would otherwise be evaluated
/// again at every use, each time filtering the request's messages. One memo serves one
/// [`Scope::memoized`] and is dropped with it: never share one between inputs or globals.
#[derive(Default)]
pub struct Memo(RefCell<Vec<(usize, Option<Value>)>>);

impl Memo {
    pub(super) fn get(&self, key: usize) -> Option<Option<Value>> {
        let memo = self.0.borrow();
        memo.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone())
    }

    pub(super) fn put(&self, key: usize, value: &Option<Value>) {
        self.0.borrow_mut().push((key, value.clone()));
    }

    /// How many definitions were evaluated (and kept).
    #[cfg(test)]
    pub fn kept(&self) -> usize {
        self.0.borrow().len()
    }
}

struct Local<'a> {
    name: &'a str,
    value: &'a Value,
    parent: Option<&'a Local<'a>>,
}

impl<'a> Scope<'a> {
    /// A scope whose focus is `focus`, with named globals (`root`, `request`, `state`...).
    pub fn new(focus: &'a Value, globals: &'a [(&'a str, &'a Value)]) -> Self {
        Scope {
            focus,
            globals,
            local: None,
            root: focus,
            memo: None,
        }
    }

    /// [`Scope::new`] whose definitions used at `focus` are evaluated once (see [`Memo`]).
    pub fn memoized(focus: &'a Value, globals: &'a [(&'a str, &'a Value)], memo: &'a Memo) -> Self {
        Scope {
            memo: Some(memo),
            ..Scope::new(focus, globals)
        }
    }

    /// The memo, when `self` is at the root focus with no local binding: there a definition's
    /// value depends only on the root and the globals, which one memo never sees change.
    pub(super) fn memo(&self) -> Option<&'a Memo> {
        self.memo
            .filter(|_| self.local.is_none() && std::ptr::eq(self.focus, self.root))
    }

    /// Runs `f` with `item` as the focus and, when `bind` names it, as a variable too.
    pub(super) fn with_item<R>(
        &self,
        item: &Value,
        bind: Option<&str>,
        f: impl FnOnce(Scope<'_>) -> R,
    ) -> R {
        let mut inner: Scope<'_> = *self;
        inner.focus = item;
        let local;
        if let Some(name) = bind {
            local = Local {
                name,
                value: item,
                parent: self.local,
            };
            inner.local = Some(&local);
        }
        f(inner)
    }

    pub(super) fn var(&self, name: &str) -> Option<&'a Value> {
        let mut l = self.local;
        while let Some(frame) = l {
            if frame.name == name {
                return Some(frame.value);
            }
            l = frame.parent;
        }
        self.globals
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, v)| *v)
    }
}
