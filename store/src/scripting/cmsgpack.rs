//! `cmsgpack`, the MessagePack library Redis gives scripts (lua-cmsgpack 0.4.0, which BullMQ and
//! other job queues use for job options): `pack`, `unpack`, `unpack_one`, `unpack_limit`.
//!
//! Why hand-written: lua-cmsgpack is C inside Redis's Lua; the same encoding rules applied to
//! mlua values give the same bytes (integers in their smallest form, floats as float32 when
//! exact, tables as arrays when their keys are exactly 1..n, maps otherwise in Lua's key order,
//! tables nested 16 deep packed as nil). Each function returns (ok, values-or-message) for
//! `raising` in `mod.rs`, which raises a message with the script's position (`luaL_error`).
//!
//! Limits: unpacking nests at most [`DECODE_DEPTH_MAX`] deep (Redis's C recursion has no bound:
//! a deep enough payload from a client would overflow its stack); lengths in the payload never
//! size an allocation (each element must be present before it is read).

use mlua::{Lua, MultiValue, Table, Value};

/// lua-cmsgpack's `LUACMSGPACK_MAX_NESTING`: a table this deep is packed as nil.
const PACK_NESTING_MAX: usize = 16;
/// Unpacking nests at most this deep (see the module comment).
pub const DECODE_DEPTH_MAX: usize = 1000;

fn fail(lua: &Lua, message: &str) -> mlua::Result<(bool, Value)> {
    Ok((false, Value::String(lua.create_string(message)?)))
}

/// `cmsgpack.pack(v1, v2...)`: the values packed one after another.
pub fn pack(lua: &Lua, args: MultiValue) -> mlua::Result<(bool, Value)> {
    if args.is_empty() {
        return fail(lua, "bad argument #0 to 'pack' (MessagePack pack needs input.)");
    }
    let mut out = Vec::new();
    for v in args.iter() {
        encode(&mut out, v, 0)?;
    }
    Ok((true, Value::String(lua.create_string(&out)?)))
}

fn encode(out: &mut Vec<u8>, v: &Value, level: usize) -> mlua::Result<()> {
    match v {
        Value::String(s) => encode_bytes(out, &s.as_bytes()),
        Value::Boolean(b) => out.push(if *b { 0xc3 } else { 0xc2 }),
        Value::Integer(i) => encode_int(out, *i),
        Value::Number(n) => encode_number(out, *n),
        Value::Table(t) if level < PACK_NESTING_MAX => encode_table(out, t, level)?,
        _ => out.push(0xc0),
    }
    Ok(())
}

fn encode_bytes(out: &mut Vec<u8>, s: &[u8]) {
    let len = s.len();
    if len < 32 {
        out.push(0xa0 | len as u8);
    } else if len <= 0xff {
        out.extend_from_slice(&[0xd9, len as u8]);
    } else if len <= 0xffff {
        out.push(0xda);
        out.extend_from_slice(&(len as u16).to_be_bytes());
    } else {
        out.push(0xdb);
        out.extend_from_slice(&(len as u32).to_be_bytes());
    }
    out.extend_from_slice(s);
}

/// lua-cmsgpack's `mp_encode_lua_number`: an integer if the double is one (and fits an int64),
/// else a float32 when exact, else a float64.
fn encode_number(out: &mut Vec<u8>, n: f64) {
    let int_like = !n.is_infinite() && n == n.trunc() && n >= -9.223_372_036_854_776e18 && n < 9.223_372_036_854_776e18;
    if int_like {
        return encode_int(out, n as i64);
    }
    let f = n as f32;
    if f as f64 == n || n.is_nan() {
        out.push(0xca);
        out.extend_from_slice(&f.to_be_bytes());
    } else {
        out.push(0xcb);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

fn encode_int(out: &mut Vec<u8>, n: i64) {
    if n >= 0 {
        if n <= 127 {
            out.push(n as u8);
        } else if n <= 0xff {
            out.extend_from_slice(&[0xcc, n as u8]);
        } else if n <= 0xffff {
            out.push(0xcd);
            out.extend_from_slice(&(n as u16).to_be_bytes());
        } else if n <= 0xffff_ffff {
            out.push(0xce);
            out.extend_from_slice(&(n as u32).to_be_bytes());
        } else {
            out.push(0xcf);
            out.extend_from_slice(&(n as u64).to_be_bytes());
        }
    } else if n >= -32 {
        out.push(n as i8 as u8);
    } else if n >= -128 {
        out.extend_from_slice(&[0xd0, n as i8 as u8]);
    } else if n >= -32768 {
        out.push(0xd1);
        out.extend_from_slice(&(n as i16).to_be_bytes());
    } else if n >= -2_147_483_648 {
        out.push(0xd2);
        out.extend_from_slice(&(n as i32).to_be_bytes());
    } else {
        out.push(0xd3);
        out.extend_from_slice(&n.to_be_bytes());
    }
}

/// lua-cmsgpack's `table_is_an_array`: every key a positive C int and the largest equal to the
/// count (so the keys are exactly 1..n; an empty table is an empty array).
fn array_len(t: &Table) -> mlua::Result<Option<u64>> {
    let (mut max, mut count) = (0u64, 0u64);
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, _) = pair?;
        let n = match k {
            Value::Integer(i) => i as f64,
            Value::Number(n) => n,
            _ => return Ok(None),
        };
        if n <= 0.0 || n != n.trunc() || n > i32::MAX as f64 {
            return Ok(None);
        }
        max = max.max(n as u64);
        count = count.saturating_add(1);
    }
    Ok((max == count).then_some(max))
}

fn encode_table(out: &mut Vec<u8>, t: &Table, level: usize) -> mlua::Result<()> {
    let next = level.saturating_add(1);
    if let Some(len) = array_len(t)? {
        encode_header(out, len, 0x90, 0xdc, 0xdd);
        for i in 1..=len {
            encode(out, &t.raw_get::<Value>(i)?, next)?;
        }
        return Ok(());
    }
    let pairs: Vec<(Value, Value)> = t.clone().pairs::<Value, Value>().collect::<mlua::Result<_>>()?;
    encode_header(out, pairs.len() as u64, 0x80, 0xde, 0xdf);
    for (k, v) in &pairs {
        encode(out, k, next)?;
        encode(out, v, next)?;
    }
    Ok(())
}

/// An array or map header: the fix form below 16, else 16 or 32 bits.
fn encode_header(out: &mut Vec<u8>, n: u64, fix: u8, b16: u8, b32: u8) {
    if n <= 15 {
        out.push(fix | n as u8);
    } else if n <= 0xffff {
        out.push(b16);
        out.extend_from_slice(&(n as u16).to_be_bytes());
    } else {
        out.push(b32);
        out.extend_from_slice(&(n.min(u32::MAX as u64) as u32).to_be_bytes());
    }
}

/// `cmsgpack.unpack(s)`: every value in `s`.
pub fn unpack(lua: &Lua, args: MultiValue) -> mlua::Result<(bool, Value)> {
    unpack_full(lua, args, "unpack", None)
}

/// `cmsgpack.unpack_one(s [, offset])`: the next offset (-1 at the end), then one value.
pub fn unpack_one(lua: &Lua, args: MultiValue) -> mlua::Result<(bool, Value)> {
    unpack_full(lua, args, "unpack_one", Some(1))
}

/// `cmsgpack.unpack_limit(s, limit [, offset])`: the next offset, then up to `limit` values.
pub fn unpack_limit(lua: &Lua, args: MultiValue) -> mlua::Result<(bool, Value)> {
    unpack_full(lua, args, "unpack_limit", Some(0))
}

/// The values come back in a table `{n = count, ...}` that the prelude unpacks: a Rust
/// function behind `raising` returns one value.
fn unpack_full(lua: &Lua, args: MultiValue, name: &str, fixed_limit: Option<i64>) -> mlua::Result<(bool, Value)> {
    let text = match args.front() {
        Some(Value::String(s)) => s.as_bytes().to_vec(),
        Some(v @ (Value::Integer(_) | Value::Number(_))) => {
            lua.coerce_string(v.clone())?.map(|s| s.as_bytes().to_vec()).unwrap_or_default()
        }
        other => {
            let got = other.map(|v| v.type_name()).unwrap_or("no value");
            return fail(lua, &format!("bad argument #1 to '{name}' (string expected, got {got})"));
        }
    };
    let int_arg = |i: usize| {
        args.get(i).and_then(|v| match v {
            Value::Integer(i) => Some(*i),
            Value::Number(n) => Some(*n as i64),
            _ => None,
        })
    };
    let (limit, offset) = match fixed_limit {
        None => (0, 0),
        Some(1) => (1, int_arg(1).unwrap_or(0)),
        Some(_) => {
            let Some(limit) = int_arg(1) else {
                return fail(lua, &format!("bad argument #2 to '{name}' (number expected, got no value)"));
            };
            (limit, int_arg(2).unwrap_or(0))
        }
    };
    let decode_all = fixed_limit.is_none();
    if offset < 0 || limit < 0 {
        let m = format!("Invalid request to unpack with offset of {offset} and limit of {}.", text.len());
        return fail(lua, &m);
    }
    if offset as u64 > text.len() as u64 {
        return fail(lua, &format!("Start offset {offset} greater than input length {}.", text.len()));
    }
    let mut cur = Cursor { lua, data: &text, pos: offset as usize };
    let results = lua.create_table()?;
    let mut count = 0i64;
    let max = if decode_all { i64::MAX } else { limit };
    while cur.pos < text.len() && count < max {
        match cur.value(0) {
            Ok(v) => {
                count = count.saturating_add(1);
                results.raw_set(count, v)?;
            }
            Err(Bad::Eof) => return fail(lua, "Missing bytes in input."),
            Err(Bad::Format) => return fail(lua, "Bad data format in input."),
            Err(Bad::Lua(e)) => return Err(e),
        }
    }
    if !decode_all {
        let next = if cur.pos >= text.len() { -1 } else { cur.pos as i64 };
        // The offset comes first.
        for i in (1..=count).rev() {
            results.raw_set(i.saturating_add(1), results.raw_get::<Value>(i)?)?;
        }
        results.raw_set(1, next)?;
        count = count.saturating_add(1);
    }
    results.raw_set("n", count)?;
    Ok((true, Value::Table(results)))
}

enum Bad {
    Eof,
    Format,
    Lua(mlua::Error),
}

impl From<mlua::Error> for Bad {
    fn from(e: mlua::Error) -> Bad {
        Bad::Lua(e)
    }
}

struct Cursor<'a> {
    lua: &'a Lua,
    data: &'a [u8],
    pos: usize,
}

impl Cursor<'_> {
    fn take(&mut self, n: usize) -> Result<&[u8], Bad> {
        let end = self.pos.checked_add(n).ok_or(Bad::Eof)?;
        let s = self.data.get(self.pos..end).ok_or(Bad::Eof)?;
        self.pos = end;
        Ok(s)
    }

    fn be(&mut self, n: usize) -> Result<u64, Bad> {
        Ok(self.take(n)?.iter().fold(0u64, |acc, &b| acc << 8 | u64::from(b)))
    }

    fn value(&mut self, depth: usize) -> Result<Value, Bad> {
        if depth > DECODE_DEPTH_MAX {
            return Err(Bad::Format);
        }
        let tag = self.take(1)?[0];
        let next = depth.saturating_add(1);
        Ok(match tag {
            0x00..=0x7f => Value::Number(f64::from(tag)),
            0xe0..=0xff => Value::Number(f64::from(tag as i8)),
            0xcc => Value::Number(self.be(1)? as f64),
            0xcd => Value::Number(self.be(2)? as f64),
            0xce => Value::Number(self.be(4)? as f64),
            // Pushed through lua_pushinteger as Redis does: past i64::MAX it wraps negative.
            0xcf => Value::Number(self.be(8)? as i64 as f64),
            0xd0 => Value::Number(f64::from(self.be(1)? as u8 as i8)),
            0xd1 => Value::Number(f64::from(self.be(2)? as u16 as i16)),
            0xd2 => Value::Number(f64::from(self.be(4)? as u32 as i32)),
            0xd3 => Value::Number(self.be(8)? as i64 as f64),
            0xc0 => Value::Nil,
            0xc2 => Value::Boolean(false),
            0xc3 => Value::Boolean(true),
            0xca => Value::Number(f64::from(f32::from_bits(self.be(4)? as u32))),
            0xcb => Value::Number(f64::from_bits(self.be(8)?)),
            0xa0..=0xbf => self.string(usize::from(tag & 0x1f))?,
            0xd9 => {
                let n = self.be(1)? as usize;
                self.string(n)?
            }
            0xda => {
                let n = self.be(2)? as usize;
                self.string(n)?
            }
            0xdb => {
                let n = self.be(4)? as usize;
                self.string(n)?
            }
            0x90..=0x9f => self.array(u64::from(tag & 0xf), next)?,
            0xdc => {
                let n = self.be(2)?;
                self.array(n, next)?
            }
            0xdd => {
                let n = self.be(4)?;
                self.array(n, next)?
            }
            0x80..=0x8f => self.map(u64::from(tag & 0xf), next)?,
            0xde => {
                let n = self.be(2)?;
                self.map(n, next)?
            }
            0xdf => {
                let n = self.be(4)?;
                self.map(n, next)?
            }
            _ => return Err(Bad::Format),
        })
    }

    fn string(&mut self, n: usize) -> Result<Value, Bad> {
        let s = self.take(n)?.to_vec();
        Ok(Value::String(self.lua.create_string(&s)?))
    }

    /// `n` comes from the payload: elements are read one by one, each must be there.
    fn array(&mut self, n: u64, depth: usize) -> Result<Value, Bad> {
        let t = self.lua.create_table()?;
        for i in 1..=n {
            let v = self.value(depth)?;
            t.raw_set(i, v)?;
        }
        Ok(Value::Table(t))
    }

    fn map(&mut self, n: u64, depth: usize) -> Result<Value, Bad> {
        let t = self.lua.create_table()?;
        for _ in 0..n {
            let k = self.value(depth)?;
            let v = self.value(depth)?;
            // Lua's settable refuses a nil key ("table index is nil"); lua-cmsgpack would raise
            // it. Treat it as a bad payload rather than let Lua raise through Rust.
            if matches!(k, Value::Nil) {
                return Err(Bad::Format);
            }
            t.raw_set(k, v)?;
        }
        Ok(Value::Table(t))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integers_take_their_smallest_form() {
        let enc = |n: i64| {
            let mut v = Vec::new();
            encode_int(&mut v, n);
            v
        };
        assert_eq!(enc(5), [5]);
        assert_eq!(enc(-1), [0xff]);
        assert_eq!(enc(200), [0xcc, 200]);
        assert_eq!(enc(-100), [0xd0, 0x9c]);
        assert_eq!(enc(70000), [0xce, 0, 1, 0x11, 0x70]);
        let mut f = Vec::new();
        encode_number(&mut f, 1.5);
        assert_eq!(f, [0xca, 0x3f, 0xc0, 0, 0]);
    }
}
