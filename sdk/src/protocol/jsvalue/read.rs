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

/// The value a struct reader puts in a field before it reads it, and keeps where the
/// field is absent or the struct is refused: `Default::default()` where the type has one
/// (what an absent defaulted field is, as serde has it).
pub trait Placeholder {
    /// The value.
    fn placeholder() -> Self;
}

impl<T: Default> Placeholder for T {
    fn placeholder() -> Self {
        T::default()
    }
}

/// A field of a struct reader's table (see [`from_tree_struct!`](crate::from_tree_struct)).
pub struct Field {
    /// The wire name.
    pub wire: &'static str,
    /// Absent is "missing field" (else the field keeps its placeholder: the default).
    pub required: bool,
}

impl Field {
    /// A field whose absence is its default.
    pub const fn optional(wire: &'static str) -> Self {
        Field {
            wire,
            required: false,
        }
    }
}

/// The setter of a struct's field: reads a node into it (see [`read_into`]).
pub type Setter<T, S> = fn(&mut T, S, &mut Option<Error>);

/// `node` read as a `T` into `place`; a failure is recorded in `first` and leaves `place`
/// as it was. What a field's [`Setter`] does, unless the field reads its own way.
pub fn read_into<T: FromTree, S: Source>(place: &mut T, node: S, first: &mut Option<Error>) {
    match read_tree(node) {
        Ok(v) => *place = v,
        Err(e) => *first = Some(e),
    }
}

/// What [`read_struct`] calls for each property it reads: the field's number, the
/// property's name, its value and the first error so far.
pub type SetField<'a, S> = dyn FnMut(usize, String, S, &mut Option<Error>) + 'a;

/// Read the object `node` into a struct (`what` in errors) whose fields are `fields`:
/// `set(i, key, value, &mut first)` for each property naming field `i`, in the object's
/// order (as serde reads), up to the first bad one; then "missing field" for the first
/// required field that was absent. Other properties are ignored, or with `others` given to
/// `set` as field `fields.len()` (a `#[serde(flatten)]` map).
///
/// One function for every struct: a struct's reader is its table, a setter per field and
/// a call of this; reading each field in line was most of the browser's readers.
pub fn read_struct<S: Source>(
    node: Node<S>,
    what: &str,
    fields: &[Field],
    others: bool,
    set: &mut SetField<'_, S>,
) -> Result<(), Error> {
    // A bit per field: the macro allows at most 64.
    debug_assert!(fields.len() <= 64, "read_struct reads at most 64 fields");
    let mut seen = 0u64;
    let mut first = None;
    for (key, value) in object(node, what)? {
        let i = fields.iter().position(|f| f.wire == key);
        if i.is_some() || others {
            let i = i.unwrap_or(fields.len());
            seen |= 1u64.checked_shl(i as u32).unwrap_or(0);
            set(i, key, value, &mut first);
            if let Some(e) = first {
                return Err(e);
            }
        }
    }
    let mut bit = 1u64;
    for f in fields {
        if f.required && seen & bit == 0 {
            return Err(missing(f.wire));
        }
        bit <<= 1;
    }
    Ok(())
}

/// Implements [`FromTree`](crate::protocol::jsvalue::FromTree) for a struct with plain
/// fields, each `field: "wireName" how`, as the type's `#[serde(...)]` attributes say:
/// `required` (missing is an error), `default` (missing is `Default::default()`, `None` for
/// an `Option`), `via f` (missing is the default; present, `f(&mut field, node, &mut
/// first)` reads it its own way) or `skip` (not read: `Default::default()`; for a value
/// that is not JSON, such as a JS function the bindings take from the object themselves).
/// See [`read_struct`] for the order of the errors.
///
/// ```ignore
/// from_tree_struct!(Ack "struct Ack" { id: "id" required, version: "version" default });
/// ```
#[macro_export]
macro_rules! from_tree_struct {
    ($ty:ident $what:literal {
        $($field:ident : $wire:literal $how:ident $($via:path)?),* $(,)?
    }) => {
        impl $crate::protocol::jsvalue::FromTree for $ty {
            fn from_tree<S: $crate::protocol::jsvalue::Source>(
                node: $crate::protocol::jsvalue::Node<S>,
            ) -> Result<Self, $crate::protocol::jsvalue::Error> {
                $crate::from_tree_struct!(@rows setters $ty S [] [] $($field $wire $how $($via)?,)*);
                const { assert!(FIELDS.len() <= 64) };
                let mut value = $ty {
                    $($field: $crate::protocol::jsvalue::Placeholder::placeholder(),)*
                };
                let mut set = |i: usize, _, n, first: &mut _| {
                    if let Some(set) = setters.get(i) {
                        set(&mut value, n, first);
                    }
                };
                $crate::protocol::jsvalue::read_struct(node, $what, FIELDS, false, &mut set)?;
                Ok(value)
            }
        }
    };
    // The table and setters of the fields read (skipped ones left out).
    (@rows $setters:ident $ty:ident $s:ident [$($fields:expr,)*] [$($sets:expr,)*]) => {
        const FIELDS: &[$crate::protocol::jsvalue::Field] = &[$($fields),*];
        let $setters: &'static [$crate::protocol::jsvalue::Setter<$ty, $s>] =
            const { &[$($sets),*] };
    };
    (@rows $setters:ident $ty:ident $s:ident [$($fields:expr,)*] [$($sets:expr,)*]
        $field:ident $wire:literal skip, $($rest:tt)*) => {
        $crate::from_tree_struct!(@rows $setters $ty $s [$($fields,)*] [$($sets,)*] $($rest)*);
    };
    (@rows $setters:ident $ty:ident $s:ident [$($fields:expr,)*] [$($sets:expr,)*]
        $field:ident $wire:literal via $via:path, $($rest:tt)*) => {
        $crate::from_tree_struct!(@rows $setters $ty $s
            [$($fields,)* $crate::protocol::jsvalue::Field::optional($wire),]
            [$($sets,)*
                |v: &mut $ty, n: $s, first: &mut Option<$crate::protocol::jsvalue::Error>| {
                    $via(&mut v.$field, n, first)
                },
            ]
            $($rest)*);
    };
    // `required` or `default` (anything else, `via` without its function included, has no
    // rule and does not compile).
    (@rows $setters:ident $ty:ident $s:ident [$($fields:expr,)*] [$($sets:expr,)*]
        $field:ident $wire:literal $how:ident, $($rest:tt)*) => {
        $crate::from_tree_struct!(@rows $setters $ty $s
            [$($fields,)* $crate::protocol::jsvalue::Field {
                wire: $wire,
                required: $crate::from_tree_struct!(@required $how),
            },]
            [$($sets,)*
                |v: &mut $ty, n: $s, first: &mut Option<$crate::protocol::jsvalue::Error>| {
                    $crate::protocol::jsvalue::read_into(&mut v.$field, n, first)
                },
            ]
            $($rest)*);
    };
    (@required required) => { true };
    (@required default) => { false };
}
