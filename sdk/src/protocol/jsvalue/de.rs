//! The reader: a serde `Deserializer` over a [`Source`] tree.

use serde::de::value::StringDeserializer;
use serde::de::{self, DeserializeOwned, IntoDeserializer, Visitor};

use super::{Error, Node, Source};

/// Read a `T` from `source`.
pub(crate) fn read<T: DeserializeOwned, S: Source>(source: S) -> Result<T, Error> {
    read_node(source.node())
}

/// Read a `T` from a node already classified.
pub(crate) fn read_node<T: DeserializeOwned, S: Source>(node: Node<S>) -> Result<T, Error> {
    T::deserialize(Reader(node))
}

/// One node being read (classified when it is about to be read: one instance of the
/// reader per tree type, whether a value is looked at before it is read or not).
pub(crate) struct Reader<S>(Node<S>);

/// Integers as integers (what `serde_json` gives for `1`, so that `u64` fields and
/// `Value`s read the same), anything else as a float.
fn visit_number<'de, V: Visitor<'de>>(n: f64, visitor: V) -> Result<V::Value, Error> {
    // 2^64: the first float above u64::MAX.
    const TWO_64: f64 = 18_446_744_073_709_551_616.0;
    if n.fract() == 0.0 && (0.0..TWO_64).contains(&n) {
        visitor.visit_u64(n as u64)
    } else if n.fract() == 0.0 && (i64::MIN as f64..0.0).contains(&n) {
        visitor.visit_i64(n as i64)
    } else {
        visitor.visit_f64(n)
    }
}

impl<'de, S: Source> de::Deserializer<'de> for Reader<S> {
    type Error = Error;

    fn deserialize_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Node::Null => visitor.visit_unit(),
            Node::Bool(b) => visitor.visit_bool(b),
            Node::Number(n) => visit_number(n, visitor),
            Node::Str(s) => visitor.visit_string(s),
            Node::Array(items) => {
                let len = items.len();
                let mut seq = Seq(items.into_iter());
                let value = visitor.visit_seq(&mut seq)?;
                match seq.0.len() {
                    0 => Ok(value),
                    _ => Err(de::Error::invalid_length(len, &"fewer elements in array")),
                }
            }
            Node::Object(entries) => visitor.visit_map(Map {
                entries: entries.into_iter(),
                value: None,
            }),
            Node::Other => Err(Error::text(&["not a JSON value"])),
        }
    }

    fn deserialize_option<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        match self.0 {
            Node::Null => visitor.visit_none(),
            node => visitor.visit_some(Reader(node)),
        }
    }

    fn deserialize_enum<V: Visitor<'de>>(
        self,
        _name: &'static str,
        _variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Error> {
        // The protocol's enums are unit variants, spelled as strings.
        match self.0 {
            Node::Str(s) => {
                let access: StringDeserializer<Error> = s.into_deserializer();
                visitor.visit_enum(access)
            }
            node => Reader(node).deserialize_any(visitor),
        }
    }

    fn deserialize_newtype_struct<V: Visitor<'de>>(
        self,
        _name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Error> {
        visitor.visit_newtype_struct(self)
    }

    fn deserialize_ignored_any<V: Visitor<'de>>(self, visitor: V) -> Result<V::Value, Error> {
        // Unknown fields are not read at all.
        visitor.visit_unit()
    }

    serde::forward_to_deserialize_any! {
        bool i8 i16 i32 i64 i128 u8 u16 u32 u64 u128 f32 f64 char str string bytes byte_buf
        unit unit_struct seq tuple tuple_struct map struct identifier
    }
}

struct Seq<I>(I);

impl<'de, S: Source, I: ExactSizeIterator<Item = S>> de::SeqAccess<'de> for Seq<I> {
    type Error = Error;

    fn next_element_seed<T: de::DeserializeSeed<'de>>(
        &mut self,
        seed: T,
    ) -> Result<Option<T::Value>, Error> {
        match self.0.next() {
            Some(s) => seed.deserialize(Reader(s.node())).map(Some),
            None => Ok(None),
        }
    }

    fn size_hint(&self) -> Option<usize> {
        Some(self.0.len())
    }
}

struct Map<I, S> {
    entries: I,
    value: Option<S>,
}

impl<'de, S: Source, I: Iterator<Item = (String, S)>> de::MapAccess<'de> for Map<I, S> {
    type Error = Error;

    fn next_key_seed<K: de::DeserializeSeed<'de>>(
        &mut self,
        seed: K,
    ) -> Result<Option<K::Value>, Error> {
        match self.entries.next() {
            Some((key, value)) => {
                self.value = Some(value);
                let key: StringDeserializer<Error> = key.into_deserializer();
                seed.deserialize(key).map(Some)
            }
            None => Ok(None),
        }
    }

    fn next_value_seed<V: de::DeserializeSeed<'de>>(&mut self, seed: V) -> Result<V::Value, Error> {
        match self.value.take() {
            Some(s) => seed.deserialize(Reader(s.node())),
            None => Err(Error::text(&["value without a key"])),
        }
    }
}
