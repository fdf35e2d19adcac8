//! Hand-written readers of the protocol types from a tree ([`FromTree`]): the browser's
//! decoding, without serde's visitors (one per type, per field, per data format: most of
//! the package's protocol code). The rules they follow are serde's on the same types
//! (names, defaults, `null` for an absent optional); the host tests decode every protocol
//! test vector through both and compare, so the two cannot drift.

use serde_json::{Map, Number, Value};

use super::{Error, Node, Source};

/// A type read from a JSON-shaped tree by hand.
pub trait FromTree: Sized {
    /// Read `node`.
    fn from_tree<S: Source>(node: Node<S>) -> Result<Self, Error>;
}

/// Read a `T` from `source`.
pub fn read_tree<T: FromTree, S: Source>(source: S) -> Result<T, Error> {
    T::from_tree(source.node())
}

/// serde's word for what a node is.
fn kind<S>(node: &Node<S>) -> &'static str {
    match node {
        Node::Null => "null",
        Node::Bool(_) => "boolean",
        Node::Number(n) if n.fract() == 0.0 => "integer",
        Node::Number(_) => "floating point",
        Node::Str(_) => "string",
        Node::Array(_) => "sequence",
        Node::Object(_) => "map",
        Node::Other => "value",
    }
}

/// "invalid type: X, expected Y", as serde says it (without the value).
pub fn invalid_type<S>(node: &Node<S>, expected: &str) -> Error {
    Error::text(&["invalid type: ", kind(node), ", expected ", expected])
}

/// "missing field `x`".
pub fn missing(field: &str) -> Error {
    Error::text(&["missing field `", field, "`"])
}

/// The properties of an object node, or serde's error naming `what` was expected.
pub fn object<S>(node: Node<S>, what: &str) -> Result<Vec<(String, S)>, Error> {
    match node {
        Node::Object(entries) => Ok(entries),
        other => Err(invalid_type(&other, what)),
    }
}

/// A string node's text, or which of `variants` it is.
pub fn variant<S>(node: Node<S>, variants: &'static [&'static str]) -> Result<usize, Error> {
    let Node::Str(s) = node else {
        return Err(invalid_type(&node, "a variant name"));
    };
    variants.iter().position(|v| *v == s).ok_or_else(|| {
        Error::text(&[
            "unknown variant `",
            &s,
            "`, expected ",
            &super::one_of(variants),
        ])
    })
}

/// 2^64: the first float above `u64::MAX`.
const TWO_64: f64 = 18_446_744_073_709_551_616.0;

impl FromTree for u64 {
    fn from_tree<S: Source>(node: Node<S>) -> Result<Self, Error> {
        match node {
            Node::Number(n) if n.fract() == 0.0 && (0.0..TWO_64).contains(&n) => Ok(n as u64),
            Node::Number(n) if n.fract() == 0.0 && n < 0.0 => {
                Err(Error::text(&["invalid value: integer, expected u64"]))
            }
            other => Err(invalid_type(&other, "u64")),
        }
    }
}

impl FromTree for u32 {
    fn from_tree<S: Source>(node: Node<S>) -> Result<Self, Error> {
        let n = u64::from_tree(node).map_err(|_| Error::text(&["expected u32"]))?;
        u32::try_from(n).map_err(|_| Error::text(&["invalid value: integer, expected u32"]))
    }
}

impl FromTree for f64 {
    fn from_tree<S: Source>(node: Node<S>) -> Result<Self, Error> {
        match node {
            Node::Number(n) => Ok(n),
            other => Err(invalid_type(&other, "f64")),
        }
    }
}

impl FromTree for bool {
    fn from_tree<S: Source>(node: Node<S>) -> Result<Self, Error> {
        match node {
            Node::Bool(b) => Ok(b),
            other => Err(invalid_type(&other, "a boolean")),
        }
    }
}

impl FromTree for String {
    fn from_tree<S: Source>(node: Node<S>) -> Result<Self, Error> {
        match node {
            Node::Str(s) => Ok(s),
            other => Err(invalid_type(&other, "a string")),
        }
    }
}

impl<T: FromTree> FromTree for Option<T> {
    fn from_tree<S: Source>(node: Node<S>) -> Result<Self, Error> {
        match node {
            Node::Null => Ok(None),
            other => T::from_tree(other).map(Some),
        }
    }
}

/// Every item read as a `T`. A loop, not `collect` into a `Result`: its adapter was over
/// 1 KB of the browser build per element type.
fn read_items<T: FromTree, S: Source>(items: Vec<S>) -> Result<Vec<T>, Error> {
    let mut out = Vec::with_capacity(items.len());
    for item in items {
        out.push(read_tree(item)?);
    }
    Ok(out)
}

impl<T: FromTree> FromTree for Vec<T> {
    fn from_tree<S: Source>(node: Node<S>) -> Result<Self, Error> {
        match node {
            Node::Array(items) => read_items(items),
            other => Err(invalid_type(&other, "a sequence")),
        }
    }
}

impl FromTree for Value {
    fn from_tree<S: Source>(node: Node<S>) -> Result<Self, Error> {
        Ok(match node {
            Node::Null => Value::Null,
            Node::Bool(b) => Value::Bool(b),
            // Integers as integers, as `serde_json` reads `1`, so that `Value`s compare equal.
            Node::Number(n) if n.fract() == 0.0 && (0.0..TWO_64).contains(&n) => {
                Value::Number((n as u64).into())
            }
            Node::Number(n) if n.fract() == 0.0 && (i64::MIN as f64..0.0).contains(&n) => {
                Value::Number((n as i64).into())
            }
            Node::Number(n) => Number::from_f64(n).map_or(Value::Null, Value::Number),
            Node::Str(s) => Value::String(s),
            Node::Array(items) => Value::Array(read_items(items)?),
            Node::Object(entries) => {
                // One `insert` at a time, not `collect`: a map's `FromIterator` sorts the
                // entries first (3 KB of stable sort in the browser build). The same map:
                // a repeated key keeps its last value either way.
                let mut map = Map::new();
                for (k, v) in entries {
                    map.insert(k, read_tree(v)?);
                }
                Value::Object(map)
            }
            Node::Other => return Err(Error::text(&["not a JSON value"])),
        })
    }
}

/// The values of `node`'s keys named in `names`, into `slots` by position (`None` where a
/// key is absent); other keys are ignored. One function for every struct reader, so that a
/// reader's own code is only the reads of its slots, not a match on every key.
pub fn fields<S: Source>(
    node: Node<S>,
    what: &str,
    names: &[&str],
    slots: &mut [Option<S>],
) -> Result<(), Error> {
    for (key, value) in object(node, what)? {
        if let Some(slot) = names
            .iter()
            .position(|n| *n == key)
            .and_then(|i| slots.get_mut(i))
        {
            *slot = Some(value);
        }
    }
    Ok(())
}

/// The value a struct reader puts in a required field it could not read, until it drops
/// the struct and returns the error: `Default::default()` where the type has one.
pub trait Placeholder {
    /// The value.
    fn placeholder() -> Self;
}

impl<T: Default> Placeholder for T {
    fn placeholder() -> Self {
        T::default()
    }
}

/// A required field: `slot` read as a `T`, or "missing field" if absent. Once `first` holds
/// an error (an earlier field's), nothing more is read: the struct reader reports the first
/// bad field, and its fields are read without an early return each (every `?` was a
/// cleanup path of its own in the browser build, about 150 bytes per field).
pub fn required<T: FromTree + Placeholder, S: Source>(
    slot: Option<S>,
    wire: &str,
    first: &mut Option<Error>,
) -> T {
    match slot {
        Some(s) => read_slot(s, first),
        None => {
            if first.is_none() {
                *first = Some(missing(wire));
            }
            T::placeholder()
        }
    }
}

/// A defaulted field: `slot` read as a `T`, or `T::default()` (`None` for an `Option`) if
/// absent. See [`required`] for `first`.
pub fn or_default<T: FromTree + Default, S: Source>(
    slot: Option<S>,
    first: &mut Option<Error>,
) -> T {
    match slot {
        Some(s) => read_slot(s, first),
        None => T::default(),
    }
}

/// `s` read as a `T`, unless an earlier field failed; a failure is recorded in `first`.
fn read_slot<T: FromTree + Placeholder, S: Source>(s: S, first: &mut Option<Error>) -> T {
    if first.is_some() {
        return T::placeholder();
    }
    read_tree(s).unwrap_or_else(|e| {
        *first = Some(e);
        T::placeholder()
    })
}

/// Implements [`FromTree`](crate::protocol::jsvalue::FromTree) for a struct with plain
/// fields, each `field: "wireName" how`, as the type's `#[serde(...)]` attributes say:
/// `required` (missing is an error), `default` (missing is `Default::default()`, `None` for
/// an `Option`) or `skip` (not read: `Default::default()`; for a value that is not JSON,
/// such as a JS function the bindings take from the object themselves). Fields are read in
/// the struct's order; the first bad one is the error.
///
/// ```ignore
/// from_tree_struct!(Ack "struct Ack" { id: "id" required, version: "version" default });
/// ```
#[macro_export]
macro_rules! from_tree_struct {
    ($ty:ident $what:literal { $($field:ident : $wire:literal $how:ident),* $(,)? }) => {
        impl $crate::protocol::jsvalue::FromTree for $ty {
            fn from_tree<S: $crate::protocol::jsvalue::Source>(
                node: $crate::protocol::jsvalue::Node<S>,
            ) -> Result<Self, $crate::protocol::jsvalue::Error> {
                const NAMES: &[&str] = &[$($wire),*];
                let mut slots: [Option<S>; NAMES.len()] = [const { None }; NAMES.len()];
                $crate::protocol::jsvalue::fields(node, $what, NAMES, &mut slots)?;
                let [$($field),*] = slots;
                let mut first = None;
                let value = $ty { $($field: $crate::from_tree_struct!(@$how $field $wire first),)* };
                match first {
                    None => Ok(value),
                    Some(e) => Err(e),
                }
            }
        }
    };
    (@required $f:ident $wire:literal $first:ident) => {
        $crate::protocol::jsvalue::required($f, $wire, &mut $first)
    };
    (@default $f:ident $wire:literal $first:ident) => {
        $crate::protocol::jsvalue::or_default($f, &mut $first)
    };
    (@skip $f:ident $wire:literal $first:ident) => {{
        drop($f);
        Default::default()
    }};
}
