//! What a route reads of the client's request, worked out from its compiled templates: the
//! ground the fidelity report (`translate::fidelity`) and `rosetta capabilities` stand on.
//!
//! Every template of a route that sees the request (its `path`, `query`, `request` and
//! `trim_stop`, and `$request...` anywhere in its `response` and `stream`) is walked once at
//! load ([`analyze`]), following the focus through `$map`, `$filter` and `$use ... of`. The
//! result is a tree of request fields ([`Node`]): a field copied somewhere is read *whole*
//! (everything under it travels, except what `$omit` leaves out); a field only tested (`$if`,
//! `$exists`, `$eq`, a `$lookup` key) is read, and the constants it is compared with (the
//! lookup's keys, `$eq`/`$in` values) are recorded, so that a value outside them is known to
//! miss. Array elements are the child `[]`.

mod analyze;

#[cfg(test)]
mod tests;

use std::collections::{BTreeMap, BTreeSet};

pub use analyze::analyze;

/// The child that stands for the elements of an array.
pub const EACH: &str = "[]";

/// One request field as a route reads it.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct Node {
    /// Copied whole: everything beneath travels (except `omitted`).
    pub whole: bool,
    /// Keys a whole copy leaves out (`$omit`).
    pub omitted: BTreeSet<String>,
    /// Constants the value is compared with: keys of a `$lookup` on it, `$eq`/`$ne`/`$in`.
    pub tested: BTreeSet<String>,
    /// A `$lookup` on it has a `default`: any value is taken.
    pub any_value: bool,
    /// The fields read beneath it ([`EACH`] for an array's elements).
    pub children: BTreeMap<String, Node>,
}

/// How far a route reads a request field.
#[derive(Debug, Clone, Copy)]
pub enum Cover<'a> {
    /// Not at all: the field is dropped.
    None,
    /// Copied whole, by itself or with a field above it.
    Whole,
    /// Read in part: what the node says.
    Part(&'a Node),
}

impl Node {
    /// The node at `path` (child names from here), if the templates read it.
    pub fn get(&self, path: &[&str]) -> Option<&Node> {
        path.iter().try_fold(self, |n, k| n.children.get(*k))
    }

    /// How far the field at `path` is read: whole when it or a field above it is copied (and
    /// no `$omit` on the way leaves it out).
    pub fn cover(&self, path: &[&str]) -> Cover<'_> {
        let mut node = self;
        for key in path {
            if node.whole && !node.omitted.contains(*key) {
                return Cover::Whole;
            }
            match node.children.get(*key) {
                Some(n) => node = n,
                None => return Cover::None,
            }
        }
        if node.whole {
            Cover::Whole
        } else {
            Cover::Part(node)
        }
    }

    /// Whether an element of type `kind` of the typed objects at `path` (`messages[].content[]`,
    /// `tools[]`, `response_format`) is translated: the objects are copied whole, or the
    /// element's payload field (OpenAI names it after the type: `{"type": "input_audio",
    /// "input_audio": {...}}`) is read, or the type is compared with `kind` (or looked up in a
    /// table with a default).
    pub fn takes_kind(&self, path: &[&str], kind: &str) -> bool {
        match self.cover(path) {
            Cover::None => false,
            Cover::Whole => true,
            Cover::Part(n) => {
                n.children.contains_key(kind)
                    || n.children
                        .get("type")
                        .is_some_and(|t| t.whole || t.any_value || t.tested.contains(kind))
            }
        }
    }

    /// Whether a string value `value` of the field at `path` is taken: the field is copied, or
    /// it is compared with nothing (read as it is), or with `value` among others.
    pub fn takes_value(&self, path: &[&str], value: &str) -> bool {
        match self.cover(path) {
            Cover::None => false,
            Cover::Whole => true,
            Cover::Part(n) => n.any_value || n.tested.is_empty() || n.tested.contains(value),
        }
    }

    /// Marks the node at `path` (created as needed) and returns it.
    pub(crate) fn at(&mut self, path: &[String]) -> &mut Node {
        path.iter()
            .fold(self, |n, k| n.children.entry(k.clone()).or_default())
    }
}
