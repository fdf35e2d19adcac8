//! The writer: a serde `Serializer` that builds a [`Sink`] tree.

use std::marker::PhantomData;

use serde::Serialize;
use serde::ser::{self, Impossible};

use super::{Error, Sink};

/// `value` as a tree.
pub(crate) fn write<K: Sink, T: Serialize + ?Sized>(value: &T) -> Result<K::Node, Error> {
    value.serialize(Writer::<K>(PhantomData))
}

/// The serializer (stateless: each call returns the node it made).
pub(crate) struct Writer<K>(PhantomData<K>);

fn unsupported() -> Error {
    Error::text(&["a variant with fields has no JSON shape here"])
}

impl<K: Sink> ser::Serializer for Writer<K> {
    type Ok = K::Node;
    type Error = Error;
    type SerializeSeq = Seq<K>;
    type SerializeTuple = Seq<K>;
    type SerializeTupleStruct = Seq<K>;
    type SerializeTupleVariant = Impossible<K::Node, Error>;
    type SerializeMap = Obj<K>;
    type SerializeStruct = Obj<K>;
    type SerializeStructVariant = Impossible<K::Node, Error>;

    fn serialize_bool(self, v: bool) -> Result<K::Node, Error> {
        Ok(K::bool(v))
    }
    fn serialize_i8(self, v: i8) -> Result<K::Node, Error> {
        Ok(K::number(v.into()))
    }
    fn serialize_i16(self, v: i16) -> Result<K::Node, Error> {
        Ok(K::number(v.into()))
    }
    fn serialize_i32(self, v: i32) -> Result<K::Node, Error> {
        Ok(K::number(v.into()))
    }
    fn serialize_i64(self, v: i64) -> Result<K::Node, Error> {
        Ok(K::number(v as f64))
    }
    fn serialize_u8(self, v: u8) -> Result<K::Node, Error> {
        Ok(K::number(v.into()))
    }
    fn serialize_u16(self, v: u16) -> Result<K::Node, Error> {
        Ok(K::number(v.into()))
    }
    fn serialize_u32(self, v: u32) -> Result<K::Node, Error> {
        Ok(K::number(v.into()))
    }
    fn serialize_u64(self, v: u64) -> Result<K::Node, Error> {
        Ok(K::number(v as f64))
    }
    fn serialize_f32(self, v: f32) -> Result<K::Node, Error> {
        Ok(K::number(v.into()))
    }
    fn serialize_f64(self, v: f64) -> Result<K::Node, Error> {
        Ok(K::number(v))
    }
    fn serialize_char(self, v: char) -> Result<K::Node, Error> {
        Ok(K::string(v.encode_utf8(&mut [0; 4])))
    }
    fn serialize_str(self, v: &str) -> Result<K::Node, Error> {
        Ok(K::string(v))
    }
    fn serialize_bytes(self, v: &[u8]) -> Result<K::Node, Error> {
        let mut seq = K::seq();
        for b in v {
            K::push(&mut seq, K::number((*b).into()));
        }
        Ok(K::end_seq(seq))
    }
    fn serialize_none(self) -> Result<K::Node, Error> {
        Ok(K::null())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, value: &T) -> Result<K::Node, Error> {
        value.serialize(self)
    }
    fn serialize_unit(self) -> Result<K::Node, Error> {
        Ok(K::null())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<K::Node, Error> {
        Ok(K::null())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<K::Node, Error> {
        Ok(K::string(variant))
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<K::Node, Error> {
        value.serialize(self)
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
        value: &T,
    ) -> Result<K::Node, Error> {
        let mut obj = K::obj();
        K::set(&mut obj, variant, value.serialize(self)?);
        Ok(K::end_obj(obj))
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Seq<K>, Error> {
        Ok(Seq(K::seq()))
    }
    fn serialize_tuple(self, _len: usize) -> Result<Seq<K>, Error> {
        Ok(Seq(K::seq()))
    }
    fn serialize_tuple_struct(self, _name: &'static str, _len: usize) -> Result<Seq<K>, Error> {
        Ok(Seq(K::seq()))
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(unsupported())
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Obj<K>, Error> {
        Ok(Obj {
            obj: K::obj(),
            key: None,
        })
    }
    fn serialize_struct(self, _name: &'static str, _len: usize) -> Result<Obj<K>, Error> {
        self.serialize_map(None)
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(unsupported())
    }
}

/// An array being written.
pub(crate) struct Seq<K: Sink>(K::Seq);

impl<K: Sink> ser::SerializeSeq for Seq<K> {
    type Ok = K::Node;
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        K::push(&mut self.0, write::<K, T>(value)?);
        Ok(())
    }
    fn end(self) -> Result<K::Node, Error> {
        Ok(K::end_seq(self.0))
    }
}

impl<K: Sink> ser::SerializeTuple for Seq<K> {
    type Ok = K::Node;
    type Error = Error;
    fn serialize_element<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<K::Node, Error> {
        ser::SerializeSeq::end(self)
    }
}

impl<K: Sink> ser::SerializeTupleStruct for Seq<K> {
    type Ok = K::Node;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        ser::SerializeSeq::serialize_element(self, value)
    }
    fn end(self) -> Result<K::Node, Error> {
        ser::SerializeSeq::end(self)
    }
}

/// An object being written (a struct, or a map with string keys).
pub(crate) struct Obj<K: Sink> {
    obj: K::Obj,
    key: Option<String>,
}

impl<K: Sink> ser::SerializeMap for Obj<K> {
    type Ok = K::Node;
    type Error = Error;
    fn serialize_key<T: Serialize + ?Sized>(&mut self, key: &T) -> Result<(), Error> {
        self.key = Some(key.serialize(KeyWriter)?);
        Ok(())
    }
    fn serialize_value<T: Serialize + ?Sized>(&mut self, value: &T) -> Result<(), Error> {
        let key = self.key.take().unwrap_or_default();
        K::set(&mut self.obj, &key, write::<K, T>(value)?);
        Ok(())
    }
    fn end(self) -> Result<K::Node, Error> {
        Ok(K::end_obj(self.obj))
    }
}

impl<K: Sink> ser::SerializeStruct for Obj<K> {
    type Ok = K::Node;
    type Error = Error;
    fn serialize_field<T: Serialize + ?Sized>(
        &mut self,
        key: &'static str,
        value: &T,
    ) -> Result<(), Error> {
        K::set(&mut self.obj, key, write::<K, T>(value)?);
        Ok(())
    }
    fn end(self) -> Result<K::Node, Error> {
        Ok(K::end_obj(self.obj))
    }
}

/// Map keys: JSON object keys are strings.
struct KeyWriter;

fn key_not_string() -> Error {
    Error::text(&["a map key must be a string"])
}

impl ser::Serializer for KeyWriter {
    type Ok = String;
    type Error = Error;
    type SerializeSeq = Impossible<String, Error>;
    type SerializeTuple = Impossible<String, Error>;
    type SerializeTupleStruct = Impossible<String, Error>;
    type SerializeTupleVariant = Impossible<String, Error>;
    type SerializeMap = Impossible<String, Error>;
    type SerializeStruct = Impossible<String, Error>;
    type SerializeStructVariant = Impossible<String, Error>;

    fn serialize_str(self, v: &str) -> Result<String, Error> {
        Ok(v.to_owned())
    }
    fn serialize_unit_variant(
        self,
        _name: &'static str,
        _index: u32,
        variant: &'static str,
    ) -> Result<String, Error> {
        Ok(variant.to_owned())
    }
    fn serialize_newtype_struct<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        value: &T,
    ) -> Result<String, Error> {
        value.serialize(self)
    }
    fn serialize_bool(self, _v: bool) -> Result<String, Error> {
        Err(key_not_string())
    }
    fn serialize_i8(self, _v: i8) -> Result<String, Error> {
        Err(key_not_string())
    }
    fn serialize_i16(self, _v: i16) -> Result<String, Error> {
        Err(key_not_string())
    }
    fn serialize_i32(self, _v: i32) -> Result<String, Error> {
        Err(key_not_string())
    }
    fn serialize_i64(self, _v: i64) -> Result<String, Error> {
        Err(key_not_string())
    }
    fn serialize_u8(self, _v: u8) -> Result<String, Error> {
        Err(key_not_string())
    }
    fn serialize_u16(self, _v: u16) -> Result<String, Error> {
        Err(key_not_string())
    }
    fn serialize_u32(self, _v: u32) -> Result<String, Error> {
        Err(key_not_string())
    }
    fn serialize_u64(self, _v: u64) -> Result<String, Error> {
        Err(key_not_string())
    }
    fn serialize_f32(self, _v: f32) -> Result<String, Error> {
        Err(key_not_string())
    }
    fn serialize_f64(self, _v: f64) -> Result<String, Error> {
        Err(key_not_string())
    }
    fn serialize_char(self, v: char) -> Result<String, Error> {
        Ok(v.encode_utf8(&mut [0; 4]).to_owned())
    }
    fn serialize_bytes(self, _v: &[u8]) -> Result<String, Error> {
        Err(key_not_string())
    }
    fn serialize_none(self) -> Result<String, Error> {
        Err(key_not_string())
    }
    fn serialize_some<T: Serialize + ?Sized>(self, _value: &T) -> Result<String, Error> {
        Err(key_not_string())
    }
    fn serialize_unit(self) -> Result<String, Error> {
        Err(key_not_string())
    }
    fn serialize_unit_struct(self, _name: &'static str) -> Result<String, Error> {
        Err(key_not_string())
    }
    fn serialize_newtype_variant<T: Serialize + ?Sized>(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _value: &T,
    ) -> Result<String, Error> {
        Err(key_not_string())
    }
    fn serialize_seq(self, _len: Option<usize>) -> Result<Self::SerializeSeq, Error> {
        Err(key_not_string())
    }
    fn serialize_tuple(self, _len: usize) -> Result<Self::SerializeTuple, Error> {
        Err(key_not_string())
    }
    fn serialize_tuple_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleStruct, Error> {
        Err(key_not_string())
    }
    fn serialize_tuple_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeTupleVariant, Error> {
        Err(key_not_string())
    }
    fn serialize_map(self, _len: Option<usize>) -> Result<Self::SerializeMap, Error> {
        Err(key_not_string())
    }
    fn serialize_struct(
        self,
        _name: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStruct, Error> {
        Err(key_not_string())
    }
    fn serialize_struct_variant(
        self,
        _name: &'static str,
        _index: u32,
        _variant: &'static str,
        _len: usize,
    ) -> Result<Self::SerializeStructVariant, Error> {
        Err(key_not_string())
    }
}
