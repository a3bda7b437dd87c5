//! Redis stream replies (`XRANGE`, `XREVRANGE`, `XREAD`) as plain entries, whatever shape the
//! protocol gave them (RESP2 arrays; RESP3 maps for `XREAD`). Anything unexpected is an error
//! that names it, never a panic.
use bytes::Bytes;
use fred::types::Value;

/// One entry: its stream id and its field/value pairs in order.
pub type Entry = (String, Vec<(Bytes, Bytes)>);

fn text(value: Value) -> Option<String> {
    match value {
        Value::String(s) => Some(s.to_string()),
        Value::Bytes(b) => String::from_utf8(b.to_vec()).ok(),
        Value::Integer(i) => Some(i.to_string()),
        _ => None,
    }
}

fn bytes(value: Value) -> Option<Bytes> {
    match value {
        Value::String(s) => Some(s.inner().clone()),
        Value::Bytes(b) => Some(b),
        Value::Integer(i) => Some(Bytes::from(i.to_string())),
        _ => None,
    }
}

fn fields(value: Value) -> Result<Vec<(Bytes, Bytes)>, String> {
    let items = match value {
        Value::Array(items) => items,
        Value::Null => return Ok(Vec::new()),
        Value::Map(map) => {
            return map
                .inner()
                .into_iter()
                .map(|(k, v)| {
                    let v = bytes(v).ok_or("a field value is not a string")?;
                    Ok((k.into_bytes(), v))
                })
                .collect()
        }
        other => return Err(format!("entry fields are a {:?}, not a list", other.kind())),
    };
    if items.len() % 2 != 0 {
        return Err("entry fields are not name/value pairs".into());
    }
    let mut out = Vec::with_capacity(items.len() / 2);
    let mut iter = items.into_iter();
    while let (Some(name), Some(value)) = (iter.next(), iter.next()) {
        let name = bytes(name).ok_or("a field name is not a string")?;
        let value = bytes(value).ok_or("a field value is not a string")?;
        out.push((name, value));
    }
    Ok(out)
}

/// The entries of an `XRANGE`/`XREVRANGE` reply (a list of `[id, [field, value, ...]]`).
pub fn entries(value: Value) -> Result<Vec<Entry>, String> {
    let items = match value {
        Value::Array(items) => items,
        Value::Null => return Ok(Vec::new()),
        other => {
            return Err(format!(
                "a stream range is a {:?}, not a list",
                other.kind()
            ))
        }
    };
    items
        .into_iter()
        .map(|item| {
            let Value::Array(pair) = item else {
                return Err("a stream entry is not [id, fields]".to_owned());
            };
            let mut pair = pair.into_iter();
            let id = pair
                .next()
                .and_then(text)
                .ok_or("a stream entry has no id")?;
            let fields = fields(pair.next().unwrap_or(Value::Null))?;
            Ok((id, fields))
        })
        .collect()
}

/// The streams of an `XREAD` reply: `(key, entries)` per stream that had any; `Null` (the
/// block timed out) is none.
pub fn streams(value: Value) -> Result<Vec<(String, Vec<Entry>)>, String> {
    match value {
        Value::Null => Ok(Vec::new()),
        Value::Array(items) => items
            .into_iter()
            .map(|item| {
                let Value::Array(pair) = item else {
                    return Err("an XREAD stream is not [key, entries]".to_owned());
                };
                let mut pair = pair.into_iter();
                let key = pair
                    .next()
                    .and_then(text)
                    .ok_or("an XREAD stream has no key")?;
                Ok((key, entries(pair.next().unwrap_or(Value::Null))?))
            })
            .collect(),
        Value::Map(map) => map
            .inner()
            .into_iter()
            .map(|(key, value)| {
                let key = key
                    .as_str()
                    .map(str::to_owned)
                    .ok_or("an XREAD key is not text")?;
                Ok((key, entries(value)?))
            })
            .collect(),
        other => Err(format!("an XREAD reply is a {:?}", other.kind())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Value {
        Value::String(text.into())
    }

    #[test]
    fn a_range_reply_keeps_ids_and_field_order() {
        let reply = Value::Array(vec![Value::Array(vec![
            s("0-1"),
            Value::Array(vec![
                s("type"),
                s("t"),
                s("data"),
                Value::Bytes(Bytes::from_static(b"\xff")),
            ]),
        ])]);
        let got = entries(reply).unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, "0-1");
        assert_eq!(got[0].1[1].1, Bytes::from_static(b"\xff"));
        assert_eq!(got[0].1[0].0, Bytes::from_static(b"type"));
    }

    #[test]
    fn odd_or_wrongly_typed_replies_are_errors() {
        let odd = Value::Array(vec![Value::Array(vec![
            s("0-1"),
            Value::Array(vec![s("data")]),
        ])]);
        assert!(entries(odd).is_err());
        assert!(entries(Value::Integer(3)).is_err());
        assert!(streams(Value::Boolean(true)).is_err());
        assert_eq!(streams(Value::Null).unwrap(), Vec::new());
    }
}
