//! AMF0, the value encoding of RTMP commands and FLV script data: the types Tally writes
//! (numbers, booleans, strings, objects, null, ECMA and strict arrays) and reads back from a
//! server's replies. Pure byte-handling, tested on its own.

/// One AMF0 value. Objects and ECMA arrays keep their keys in order, as they were written.
#[derive(Debug, Clone, PartialEq)]
pub enum Amf {
    Number(f64),
    Boolean(bool),
    String(String),
    Object(Vec<(String, Amf)>),
    Null,
    Undefined,
    EcmaArray(Vec<(String, Amf)>),
    StrictArray(Vec<Amf>),
}

const NUMBER: u8 = 0x00;
const BOOLEAN: u8 = 0x01;
const STRING: u8 = 0x02;
const OBJECT: u8 = 0x03;
const NULL: u8 = 0x05;
const UNDEFINED: u8 = 0x06;
const ECMA_ARRAY: u8 = 0x08;
const OBJECT_END: u8 = 0x09;
const STRICT_ARRAY: u8 = 0x0a;
const LONG_STRING: u8 = 0x0c;

impl Amf {
    pub fn string(text: &str) -> Self {
        Amf::String(text.to_string())
    }

    /// An object from `(key, value)` pairs, in that order.
    pub fn object<const N: usize>(entries: [(&str, Amf); N]) -> Self {
        Amf::Object(
            entries
                .into_iter()
                .map(|(key, value)| (key.to_string(), value))
                .collect(),
        )
    }

    pub fn as_str(&self) -> Option<&str> {
        match self {
            Amf::String(text) => Some(text),
            _ => None,
        }
    }

    pub fn as_number(&self) -> Option<f64> {
        match self {
            Amf::Number(number) => Some(*number),
            _ => None,
        }
    }

    /// An object's (or ECMA array's) value for `key`.
    pub fn get(&self, key: &str) -> Option<&Amf> {
        match self {
            Amf::Object(entries) | Amf::EcmaArray(entries) => entries
                .iter()
                .find(|(name, _)| name == key)
                .map(|(_, value)| value),
            _ => None,
        }
    }

    pub fn write(&self, out: &mut Vec<u8>) {
        match self {
            Amf::Number(number) => {
                out.push(NUMBER);
                out.extend_from_slice(&number.to_be_bytes());
            }
            Amf::Boolean(flag) => out.extend_from_slice(&[BOOLEAN, u8::from(*flag)]),
            Amf::String(text) if text.len() > usize::from(u16::MAX) => {
                out.push(LONG_STRING);
                out.extend_from_slice(&(text.len() as u32).to_be_bytes());
                out.extend_from_slice(text.as_bytes());
            }
            Amf::String(text) => {
                out.push(STRING);
                write_key(out, text);
            }
            Amf::Object(entries) => {
                out.push(OBJECT);
                write_entries(out, entries);
            }
            Amf::Null => out.push(NULL),
            Amf::Undefined => out.push(UNDEFINED),
            Amf::EcmaArray(entries) => {
                out.push(ECMA_ARRAY);
                out.extend_from_slice(&(entries.len() as u32).to_be_bytes());
                write_entries(out, entries);
            }
            Amf::StrictArray(values) => {
                out.push(STRICT_ARRAY);
                out.extend_from_slice(&(values.len() as u32).to_be_bytes());
                for value in values {
                    value.write(out);
                }
            }
        }
    }

    /// Reads every value in `bytes`, in order (an RTMP command is a run of values).
    pub fn read_all(mut bytes: &[u8]) -> Result<Vec<Amf>, AmfError> {
        let mut values = Vec::new();
        while !bytes.is_empty() {
            values.push(read_value(&mut bytes, 0)?);
        }
        Ok(values)
    }
}

/// Bytes that are not AMF0 Tally can read.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum AmfError {
    #[error("the AMF data ends in the middle of a value")]
    Truncated,
    #[error("AMF type {0:#04x} is not one Tally reads")]
    UnknownType(u8),
    #[error("AMF values nested too deep")]
    TooDeep,
}

fn write_key(out: &mut Vec<u8>, key: &str) {
    let bytes = &key.as_bytes()[..key.len().min(usize::from(u16::MAX))];
    out.extend_from_slice(&(bytes.len() as u16).to_be_bytes());
    out.extend_from_slice(bytes);
}

fn write_entries(out: &mut Vec<u8>, entries: &[(String, Amf)]) {
    for (key, value) in entries {
        write_key(out, key);
        value.write(out);
    }
    out.extend_from_slice(&[0, 0, OBJECT_END]);
}

/// A server's reply is small; deeper nesting than this is not a reply.
const MAX_DEPTH: usize = 16;

fn take<'a>(bytes: &mut &'a [u8], count: usize) -> Result<&'a [u8], AmfError> {
    if bytes.len() < count {
        return Err(AmfError::Truncated);
    }
    let (taken, rest) = bytes.split_at(count);
    *bytes = rest;
    Ok(taken)
}

fn read_u16(bytes: &mut &[u8]) -> Result<usize, AmfError> {
    let taken = take(bytes, 2)?;
    Ok(usize::from(u16::from_be_bytes([taken[0], taken[1]])))
}

fn read_u32(bytes: &mut &[u8]) -> Result<usize, AmfError> {
    let taken = take(bytes, 4)?;
    Ok(u32::from_be_bytes([taken[0], taken[1], taken[2], taken[3]]) as usize)
}

fn read_text(bytes: &mut &[u8], length: usize) -> Result<String, AmfError> {
    Ok(String::from_utf8_lossy(take(bytes, length)?).into_owned())
}

fn read_value(bytes: &mut &[u8], depth: usize) -> Result<Amf, AmfError> {
    if depth > MAX_DEPTH {
        return Err(AmfError::TooDeep);
    }
    let marker = take(bytes, 1)?[0];
    Ok(match marker {
        NUMBER => {
            let taken = take(bytes, 8)?;
            Amf::Number(f64::from_be_bytes(taken.try_into().expect("8 bytes")))
        }
        BOOLEAN => Amf::Boolean(take(bytes, 1)?[0] != 0),
        STRING => {
            let length = read_u16(bytes)?;
            Amf::String(read_text(bytes, length)?)
        }
        LONG_STRING => {
            let length = read_u32(bytes)?;
            Amf::String(read_text(bytes, length)?)
        }
        OBJECT => Amf::Object(read_entries(bytes, depth)?),
        NULL => Amf::Null,
        UNDEFINED => Amf::Undefined,
        ECMA_ARRAY => {
            // The count is a hint; the entries end with the object-end marker all the same.
            read_u32(bytes)?;
            Amf::EcmaArray(read_entries(bytes, depth)?)
        }
        STRICT_ARRAY => {
            let count = read_u32(bytes)?;
            let mut values = Vec::with_capacity(count.min(256));
            for _ in 0..count {
                values.push(read_value(bytes, depth + 1)?);
            }
            Amf::StrictArray(values)
        }
        other => return Err(AmfError::UnknownType(other)),
    })
}

fn read_entries(bytes: &mut &[u8], depth: usize) -> Result<Vec<(String, Amf)>, AmfError> {
    let mut entries = Vec::new();
    loop {
        let length = read_u16(bytes)?;
        if length == 0 && bytes.first() == Some(&OBJECT_END) {
            take(bytes, 1)?;
            return Ok(entries);
        }
        let key = read_text(bytes, length)?;
        entries.push((key, read_value(bytes, depth + 1)?));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn values_read_back_as_written() {
        let values = vec![
            Amf::string("connect"),
            Amf::Number(1.0),
            Amf::object([
                ("app", Amf::string("live")),
                (
                    "fourCcList",
                    Amf::StrictArray(vec![Amf::string("av01"), Amf::string("hvc1")]),
                ),
                ("flag", Amf::Boolean(true)),
            ]),
            Amf::Null,
            Amf::EcmaArray(vec![("width".into(), Amf::Number(1280.0))]),
        ];
        let mut bytes = Vec::new();
        for value in &values {
            value.write(&mut bytes);
        }
        assert_eq!(Amf::read_all(&bytes).unwrap(), values);
        assert_eq!(
            values[2].get("fourCcList"),
            Some(&Amf::StrictArray(vec![
                Amf::string("av01"),
                Amf::string("hvc1")
            ]))
        );
    }

    #[test]
    fn a_string_is_its_length_then_its_bytes() {
        let mut bytes = Vec::new();
        Amf::string("ab").write(&mut bytes);
        assert_eq!(bytes, [STRING, 0, 2, b'a', b'b']);
    }

    #[test]
    fn bad_data_is_an_error_not_a_panic() {
        assert_eq!(Amf::read_all(&[NUMBER, 0, 0]), Err(AmfError::Truncated));
        assert_eq!(Amf::read_all(&[0x42]), Err(AmfError::UnknownType(0x42)));
        let deep = [STRICT_ARRAY, 0, 0, 0, 1].repeat(40);
        assert_eq!(Amf::read_all(&deep), Err(AmfError::TooDeep));
        assert_eq!(
            Amf::read_all(&[OBJECT, 0, 1, b'k']),
            Err(AmfError::Truncated)
        );
    }
}
