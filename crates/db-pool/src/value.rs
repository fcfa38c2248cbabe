//! Column values and rows: what a batch writer takes, for either backend.
//
// Rows are the caller's own types (tuples, or anything implementing
// `BatchRow`): the writer borrows each value as a `ValueRef` while encoding
// it, so a row costs no allocation beyond what its fields already own. That
// keeps the COPY path within a few percent of a bare `BinaryCopyInWriter`.

use brisk_core::Timestamp;

/// The column types a batch writer encodes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ColumnType {
    /// `boolean`.
    Bool,
    /// `integer` (`int4`).
    Int4,
    /// `bigint` (`int8`).
    Int8,
    /// `double precision` (`float8`).
    Float8,
    /// `text`.
    Text,
    /// `bytea` (SQLite: `BLOB`).
    Bytea,
    /// `timestamptz` from a [`Timestamp`] (SQLite: integer Unix milliseconds).
    Timestamptz,
}

impl ColumnType {
    /// The PostgreSQL type name, as used in casts (`int8`, `text`, ...).
    #[must_use]
    pub fn pg_name(self) -> &'static str {
        match self {
            ColumnType::Bool => "bool",
            ColumnType::Int4 => "int4",
            ColumnType::Int8 => "int8",
            ColumnType::Float8 => "float8",
            ColumnType::Text => "text",
            ColumnType::Bytea => "bytea",
            ColumnType::Timestamptz => "timestamptz",
        }
    }
}

/// A borrowed column value.
#[derive(Clone, Copy, Debug, PartialEq)]
#[non_exhaustive]
pub enum ValueRef<'a> {
    /// SQL `NULL`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A 32-bit integer.
    I32(i32),
    /// A 64-bit integer.
    I64(i64),
    /// A double.
    F64(f64),
    /// Text.
    Text(&'a str),
    /// Bytes.
    Bytes(&'a [u8]),
    /// A UTC time.
    Timestamp(Timestamp),
}

/// An owned column value, for rows built at run time (`Vec<Value>`).
#[derive(Clone, Debug, PartialEq)]
#[non_exhaustive]
pub enum Value {
    /// SQL `NULL`.
    Null,
    /// A boolean.
    Bool(bool),
    /// A 32-bit integer.
    I32(i32),
    /// A 64-bit integer.
    I64(i64),
    /// A double.
    F64(f64),
    /// Text.
    Text(String),
    /// Bytes.
    Bytes(Vec<u8>),
    /// A UTC time.
    Timestamp(Timestamp),
}

/// A type that can be one column of a [`BatchRow`].
pub trait ToValue {
    /// This value, borrowed.
    fn to_value(&self) -> ValueRef<'_>;
}

impl ToValue for Value {
    fn to_value(&self) -> ValueRef<'_> {
        match self {
            Value::Null => ValueRef::Null,
            Value::Bool(v) => ValueRef::Bool(*v),
            Value::I32(v) => ValueRef::I32(*v),
            Value::I64(v) => ValueRef::I64(*v),
            Value::F64(v) => ValueRef::F64(*v),
            Value::Text(v) => ValueRef::Text(v),
            Value::Bytes(v) => ValueRef::Bytes(v),
            Value::Timestamp(v) => ValueRef::Timestamp(*v),
        }
    }
}

macro_rules! to_value {
    ($($t:ty => |$v:ident| $e:expr;)*) => {$(
        impl ToValue for $t {
            fn to_value(&self) -> ValueRef<'_> {
                let $v = self;
                $e
            }
        }
    )*};
}

to_value! {
    bool => |v| ValueRef::Bool(*v);
    i32 => |v| ValueRef::I32(*v);
    i64 => |v| ValueRef::I64(*v);
    f64 => |v| ValueRef::F64(*v);
    String => |v| ValueRef::Text(v);
    &'static str => |v| ValueRef::Text(v);
    Box<str> => |v| ValueRef::Text(v);
    Vec<u8> => |v| ValueRef::Bytes(v);
    Timestamp => |v| ValueRef::Timestamp(*v);
}

impl<T: ToValue> ToValue for Option<T> {
    fn to_value(&self) -> ValueRef<'_> {
        self.as_ref().map_or(ValueRef::Null, ToValue::to_value)
    }
}

impl<T: ToValue + ?Sized> ToValue for std::sync::Arc<T> {
    fn to_value(&self) -> ValueRef<'_> {
        (**self).to_value()
    }
}

/// One row for a batch writer: its values in the table's column order.
///
/// Implemented for tuples of up to eight [`ToValue`] fields and for
/// `Vec<Value>`; implement it for your own row type to avoid building
/// tuples.
pub trait BatchRow: Send + Sync + 'static {
    /// How many values the row has.
    fn len(&self) -> usize;

    /// The value of column `index` (`0..len()`).
    fn value(&self, index: usize) -> ValueRef<'_>;

    /// Whether the row has no values.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

impl BatchRow for Vec<Value> {
    fn len(&self) -> usize {
        Vec::len(self)
    }

    fn value(&self, index: usize) -> ValueRef<'_> {
        self[index].to_value()
    }
}

macro_rules! tuple_row {
    ($n:literal; $($i:tt $t:ident),+) => {
        impl<$($t: ToValue + Send + Sync + 'static),+> BatchRow for ($($t,)+) {
            fn len(&self) -> usize {
                $n
            }

            fn value(&self, index: usize) -> ValueRef<'_> {
                match index {
                    $($i => self.$i.to_value(),)+
                    _ => panic!("column {index} of a {}-column row", $n),
                }
            }
        }
    };
}

tuple_row!(1; 0 A);
tuple_row!(2; 0 A, 1 B);
tuple_row!(3; 0 A, 1 B, 2 C);
tuple_row!(4; 0 A, 1 B, 2 C, 3 D);
tuple_row!(5; 0 A, 1 B, 2 C, 3 D, 4 E);
tuple_row!(6; 0 A, 1 B, 2 C, 3 D, 4 E, 5 F);
tuple_row!(7; 0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G);
tuple_row!(8; 0 A, 1 B, 2 C, 3 D, 4 E, 5 F, 6 G, 7 H);

macro_rules! value_from {
    ($($t:ty => $v:ident;)*) => {$(
        impl From<$t> for Value {
            fn from(v: $t) -> Self {
                Value::$v(v.into())
            }
        }
    )*};
}

value_from! {
    bool => Bool;
    i32 => I32;
    i64 => I64;
    f64 => F64;
    String => Text;
    &str => Text;
    Vec<u8> => Bytes;
    Timestamp => Timestamp;
}

impl<T: Into<Value>> From<Option<T>> for Value {
    fn from(v: Option<T>) -> Self {
        v.map_or(Value::Null, Into::into)
    }
}

#[cfg(feature = "postgres")]
mod pg {
    use std::error::Error as StdError;

    use bytes::BytesMut;
    use tokio_postgres::types::{IsNull, ToSql, Type, to_sql_checked};

    use super::ValueRef;

    // Microseconds from 1970-01-01 to 2000-01-01, PostgreSQL's epoch.
    const PG_EPOCH_MICROS: i64 = 946_684_800_000_000;

    type Boxed = Box<dyn StdError + Sync + Send>;

    fn check<T: ToSql>(ty: &Type, what: &str) -> Result<(), Boxed> {
        if T::accepts(ty) {
            Ok(())
        } else {
            Err(format!("cannot encode a {what} value as PostgreSQL type {ty}").into())
        }
    }

    impl ToSql for ValueRef<'_> {
        fn to_sql(&self, ty: &Type, out: &mut BytesMut) -> Result<IsNull, Boxed> {
            match *self {
                ValueRef::Null => Ok(IsNull::Yes),
                ValueRef::Bool(v) => {
                    check::<bool>(ty, "bool")?;
                    v.to_sql(ty, out)
                }
                ValueRef::I32(v) if *ty == Type::INT8 => i64::from(v).to_sql(ty, out),
                ValueRef::I32(v) => {
                    check::<i32>(ty, "i32")?;
                    v.to_sql(ty, out)
                }
                ValueRef::I64(v) => {
                    check::<i64>(ty, "i64")?;
                    v.to_sql(ty, out)
                }
                ValueRef::F64(v) => {
                    check::<f64>(ty, "f64")?;
                    v.to_sql(ty, out)
                }
                ValueRef::Text(v) => {
                    check::<&str>(ty, "text")?;
                    v.to_sql(ty, out)
                }
                ValueRef::Bytes(v) => {
                    check::<&[u8]>(ty, "bytes")?;
                    v.to_sql(ty, out)
                }
                ValueRef::Timestamp(t) => {
                    if *ty != Type::TIMESTAMPTZ && *ty != Type::TIMESTAMP {
                        return Err(format!("cannot encode a timestamp as PostgreSQL type {ty}").into());
                    }
                    let micros = t.as_unix_millis().saturating_mul(1000) - PG_EPOCH_MICROS;
                    micros.to_sql(&Type::INT8, out)
                }
            }
        }

        fn accepts(_: &Type) -> bool {
            // Checked per value in `to_sql`, which knows the variant.
            true
        }

        to_sql_checked!();
    }
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use rusqlite::types::{ToSql, ToSqlOutput, ValueRef as SqlValueRef};

    use super::ValueRef;

    impl ToSql for ValueRef<'_> {
        fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
            Ok(ToSqlOutput::Borrowed(match *self {
                ValueRef::Null => SqlValueRef::Null,
                ValueRef::Bool(v) => SqlValueRef::Integer(i64::from(v)),
                ValueRef::I32(v) => SqlValueRef::Integer(i64::from(v)),
                ValueRef::I64(v) => SqlValueRef::Integer(v),
                ValueRef::F64(v) => SqlValueRef::Real(v),
                ValueRef::Text(v) => SqlValueRef::Text(v.as_bytes()),
                ValueRef::Bytes(v) => SqlValueRef::Blob(v),
                ValueRef::Timestamp(t) => SqlValueRef::Integer(t.as_unix_millis()),
            }))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tuples_and_vecs_are_rows() {
        let row = (1i64, "a", Some(2.5f64), None::<i32>);
        assert_eq!(row.len(), 4);
        assert_eq!(row.value(0), ValueRef::I64(1));
        assert_eq!(row.value(1), ValueRef::Text("a"));
        assert_eq!(row.value(2), ValueRef::F64(2.5));
        assert_eq!(row.value(3), ValueRef::Null);
        let dynamic: Vec<Value> = vec![7i64.into(), "x".into(), Value::from(None::<bool>)];
        assert_eq!(BatchRow::len(&dynamic), 3);
        assert_eq!(dynamic.value(1), ValueRef::Text("x"));
        assert_eq!(dynamic.value(2), ValueRef::Null);
    }
}
