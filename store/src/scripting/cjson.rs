//! `cjson`, the JSON library Redis gives scripts (lua-cjson 2.1.0 with Redis's defaults):
//! `cjson.encode`, `cjson.decode` and `cjson.null`.
//!
//! Why hand-written: lua-cjson is C inside Redis's Lua; here the same rules are applied to mlua
//! values, so a script encodes the same bytes as on Redis (numbers `%.14g`, `/` escaped, keys in
//! Lua's own table order, an empty table as `{}`, sparse arrays refused) and decodes with the
//! same leniency (hexadecimal, `inf`, leading zeros: Redis builds it with invalid numbers
//! allowed) and the same error texts. Each function returns (ok, value-or-message) for
//! `raising` in `mod.rs`, which raises a message with the script's position, as `luaL_error`.
//!
//! Limits (lua-cjson's): nesting at most [`DEPTH_MAX`] deep both ways.

use mlua::{LightUserData, Lua, MultiValue, Table, Value};

/// lua-cjson's `encode_max_depth` and `decode_max_depth` defaults.
pub const DEPTH_MAX: usize = 1000;
/// `encode_sparse_ratio` and `encode_sparse_safe`: an array whose largest index is more than
/// twice its element count, and above 10, is "excessively sparse".
const SPARSE_RATIO: u64 = 2;
const SPARSE_SAFE: u64 = 10;

/// `cjson.null`: a NULL light userdata, as lua-cjson's.
pub fn null() -> Value {
    Value::LightUserData(LightUserData(std::ptr::null_mut()))
}

fn fail(lua: &Lua, message: &str) -> mlua::Result<(bool, Value)> {
    Ok((false, Value::String(lua.create_string(message)?)))
}

/// `cjson.encode(value)`.
pub fn encode(lua: &Lua, args: MultiValue) -> mlua::Result<(bool, Value)> {
    if args.len() != 1 {
        return fail(lua, "bad argument #1 to 'encode' (expected 1 argument)");
    }
    let mut out = Vec::new();
    match encode_value(&mut out, &args[0], 0) {
        Ok(()) => Ok((true, Value::String(lua.create_string(&out)?))),
        Err(message) => fail(lua, &message),
    }
}

fn encode_value(out: &mut Vec<u8>, v: &Value, depth: usize) -> Result<(), String> {
    match v {
        Value::Nil => out.extend_from_slice(b"null"),
        Value::LightUserData(p) if p.0.is_null() => out.extend_from_slice(b"null"),
        Value::Boolean(b) => out.extend_from_slice(if *b { b"true" } else { b"false" }),
        Value::Integer(i) => encode_number(out, *i as f64)?,
        Value::Number(n) => encode_number(out, *n)?,
        Value::String(s) => encode_string(out, &s.as_bytes()),
        Value::Table(t) => encode_table(out, t, depth.saturating_add(1))?,
        other => return Err(format!("Cannot serialise {}: type not supported", other.type_name())),
    }
    Ok(())
}

fn encode_number(out: &mut Vec<u8>, n: f64) -> Result<(), String> {
    if !n.is_finite() {
        return Err("Cannot serialise number: must not be NaN or Inf".into());
    }
    out.extend_from_slice(crate::protocol::format_g(n, 14).as_bytes());
    Ok(())
}

/// lua-cjson's `char2escape`: control characters, `"`, `\`, `/` and DEL are escaped.
fn encode_string(out: &mut Vec<u8>, s: &[u8]) {
    out.push(b'"');
    for &c in s {
        match c {
            b'"' => out.extend_from_slice(b"\\\""),
            b'\\' => out.extend_from_slice(b"\\\\"),
            b'/' => out.extend_from_slice(b"\\/"),
            0x08 => out.extend_from_slice(b"\\b"),
            b'\t' => out.extend_from_slice(b"\\t"),
            b'\n' => out.extend_from_slice(b"\\n"),
            0x0c => out.extend_from_slice(b"\\f"),
            b'\r' => out.extend_from_slice(b"\\r"),
            0..=0x1f | 0x7f => out.extend_from_slice(format!("\\u{c:04x}").as_bytes()),
            _ => out.push(c),
        }
    }
    out.push(b'"');
}

/// lua-cjson's `lua_array_length`: Some(largest index) when every key is an integer >= 1, None
/// when the table is an object.
fn array_length(t: &Table) -> Result<Option<u64>, String> {
    let (mut max, mut items) = (0u64, 0u64);
    for pair in t.clone().pairs::<Value, Value>() {
        let (k, _) = pair.map_err(|e| e.to_string())?;
        let k = match k {
            Value::Integer(i) if i >= 1 => i as f64,
            Value::Number(n) if n >= 1.0 && n.floor() == n => n,
            _ => return Ok(None),
        };
        max = max.max(k.min(u64::MAX as f64) as u64);
        items = items.saturating_add(1);
    }
    if max > items.saturating_mul(SPARSE_RATIO) && max > SPARSE_SAFE {
        return Err("Cannot serialise table: excessively sparse array".into());
    }
    Ok(Some(max))
}

fn encode_table(out: &mut Vec<u8>, t: &Table, depth: usize) -> Result<(), String> {
    if depth > DEPTH_MAX {
        return Err(format!("Cannot serialise, excessive nesting ({depth})"));
    }
    match array_length(t)? {
        Some(len) if len > 0 => {
            out.push(b'[');
            for i in 1..=len {
                if i > 1 {
                    out.push(b',');
                }
                let v: Value = t.raw_get(i).map_err(|e| e.to_string())?;
                encode_value(out, &v, depth)?;
            }
            out.push(b']');
        }
        _ => {
            out.push(b'{');
            let mut first = true;
            for pair in t.clone().pairs::<Value, Value>() {
                let (k, v) = pair.map_err(|e| e.to_string())?;
                if !first {
                    out.push(b',');
                }
                first = false;
                match &k {
                    Value::String(s) => encode_string(out, &s.as_bytes()),
                    Value::Integer(i) => {
                        out.push(b'"');
                        encode_number(out, *i as f64)?;
                        out.push(b'"');
                    }
                    Value::Number(n) => {
                        out.push(b'"');
                        encode_number(out, *n)?;
                        out.push(b'"');
                    }
                    other => {
                        let t = other.type_name();
                        return Err(format!("Cannot serialise {t}: table key must be a number or string"));
                    }
                }
                out.push(b':');
                encode_value(out, &v, depth)?;
            }
            out.push(b'}');
        }
    }
    Ok(())
}

/// `cjson.decode(text)`.
pub fn decode(lua: &Lua, args: MultiValue) -> mlua::Result<(bool, Value)> {
    if args.len() != 1 {
        return fail(lua, "bad argument #1 to 'decode' (expected 1 argument)");
    }
    let text = match &args[0] {
        Value::String(s) => s.as_bytes().to_vec(),
        Value::Integer(_) | Value::Number(_) => {
            lua.coerce_string(args[0].clone())?.map(|s| s.as_bytes().to_vec()).unwrap_or_default()
        }
        other => {
            let m = format!("bad argument #1 to 'decode' (string expected, got {})", other.type_name());
            return fail(lua, &m);
        }
    };
    if text.len() >= 2 && (text[0] == 0 || text[1] == 0) {
        return fail(lua, "JSON parser does not support UTF-16 or UTF-32");
    }
    let mut p = Parser { lua, text: &text, pos: 0, depth: 0, error_at: None };
    match p.document() {
        Ok(v) => Ok((true, v)),
        Err(Failure::Message(m)) => fail(lua, &m),
        Err(Failure::Lua(e)) => Err(e),
    }
}

enum Failure {
    Message(String),
    Lua(mlua::Error),
}

impl From<mlua::Error> for Failure {
    fn from(e: mlua::Error) -> Failure {
        Failure::Lua(e)
    }
}

/// A token of lua-cjson's scanner; `Error` carries its message ("invalid token"...).
enum Token {
    ObjBegin,
    ObjEnd,
    ArrBegin,
    ArrEnd,
    Str(Vec<u8>),
    Number(f64),
    Boolean(bool),
    Null,
    Colon,
    Comma,
    End,
    Error(&'static str),
}

impl Token {
    /// lua-cjson's `json_token_type_name` (or the error's text).
    fn name(&self) -> &'static str {
        match self {
            Token::ObjBegin => "T_OBJ_BEGIN",
            Token::ObjEnd => "T_OBJ_END",
            Token::ArrBegin => "T_ARR_BEGIN",
            Token::ArrEnd => "T_ARR_END",
            Token::Str(_) => "T_STRING",
            Token::Number(_) => "T_NUMBER",
            Token::Boolean(_) => "T_BOOLEAN",
            Token::Null => "T_NULL",
            Token::Colon => "T_COLON",
            Token::Comma => "T_COMMA",
            Token::End => "T_END",
            Token::Error(m) => m,
        }
    }
}

struct Parser<'a> {
    lua: &'a Lua,
    text: &'a [u8],
    pos: usize,
    depth: usize,
    /// Where a string token's error is (lua-cjson reports the scanner's position then).
    error_at: Option<usize>,
}

impl Parser<'_> {
    /// The byte at `i`, or NUL past the end (lua-cjson reads a NUL-terminated buffer).
    fn at(&self, i: usize) -> u8 {
        self.text.get(i).copied().unwrap_or(0)
    }

    fn document(&mut self) -> Result<Value, Failure> {
        let (token, at) = self.next_token();
        let v = self.value(token, at)?;
        let (token, at) = self.next_token();
        if !matches!(token, Token::End) {
            return Err(expected("the end", &token, at));
        }
        Ok(v)
    }

    fn value(&mut self, token: Token, at: usize) -> Result<Value, Failure> {
        Ok(match token {
            Token::Str(s) => Value::String(self.lua.create_string(&s)?),
            Token::Number(n) => Value::Number(n),
            Token::Boolean(b) => Value::Boolean(b),
            Token::Null => null(),
            Token::ObjBegin => self.object(at)?,
            Token::ArrBegin => self.array(at)?,
            other => return Err(expected("value", &other, at)),
        })
    }

    fn descend(&mut self, at: usize) -> Result<(), Failure> {
        self.depth = self.depth.saturating_add(1);
        if self.depth > DEPTH_MAX {
            let m =
                format!("Found too many nested data structures ({}) at character {}", self.depth, at.saturating_add(1));
            return Err(Failure::Message(m));
        }
        Ok(())
    }

    fn object(&mut self, at: usize) -> Result<Value, Failure> {
        self.descend(at)?;
        let t = self.lua.create_table()?;
        let (mut token, mut at) = self.next_token();
        if matches!(token, Token::ObjEnd) {
            self.depth = self.depth.saturating_sub(1);
            return Ok(Value::Table(t));
        }
        loop {
            let Token::Str(key) = token else {
                return Err(expected("object key string", &token, at));
            };
            let (colon, colon_at) = self.next_token();
            if !matches!(colon, Token::Colon) {
                return Err(expected("colon", &colon, colon_at));
            }
            let (vt, vat) = self.next_token();
            let v = self.value(vt, vat)?;
            t.raw_set(self.lua.create_string(&key)?, v)?;
            let (sep, sep_at) = self.next_token();
            match sep {
                Token::ObjEnd => break,
                Token::Comma => {}
                other => return Err(expected("comma or object end", &other, sep_at)),
            }
            (token, at) = self.next_token();
        }
        self.depth = self.depth.saturating_sub(1);
        Ok(Value::Table(t))
    }

    fn array(&mut self, at: usize) -> Result<Value, Failure> {
        self.descend(at)?;
        let t = self.lua.create_table()?;
        let (mut token, mut at) = self.next_token();
        if matches!(token, Token::ArrEnd) {
            self.depth = self.depth.saturating_sub(1);
            return Ok(Value::Table(t));
        }
        let mut i = 1i64;
        loop {
            let v = self.value(token, at)?;
            t.raw_set(i, v)?;
            i = i.saturating_add(1);
            let (sep, sep_at) = self.next_token();
            match sep {
                Token::ArrEnd => break,
                Token::Comma => {}
                other => return Err(expected("comma or array end", &other, sep_at)),
            }
            (token, at) = self.next_token();
        }
        self.depth = self.depth.saturating_sub(1);
        Ok(Value::Table(t))
    }

    /// lua-cjson's `json_next_token`: the token and where it starts (0-based).
    fn next_token(&mut self) -> (Token, usize) {
        while matches!(self.at(self.pos), b' ' | b'\t' | b'\n' | b'\r') {
            self.pos = self.pos.saturating_add(1);
        }
        let at = self.pos;
        let single = match self.at(at) {
            b'{' => Some(Token::ObjBegin),
            b'}' => Some(Token::ObjEnd),
            b'[' => Some(Token::ArrBegin),
            b']' => Some(Token::ArrEnd),
            b',' => Some(Token::Comma),
            b':' => Some(Token::Colon),
            _ => None,
        };
        if let Some(t) = single {
            self.pos = at.saturating_add(1);
            return (t, at);
        }
        let rest = &self.text[at.min(self.text.len())..];
        let token = match self.at(at) {
            0 => Token::End,
            b'"' => {
                let t = self.string();
                if let (Token::Error(_), Some(e)) = (&t, self.error_at.take()) {
                    return (t, e);
                }
                t
            }
            b'-' | b'0'..=b'9' => self.number(),
            _ if rest.starts_with(b"true") => self.word(4, Token::Boolean(true)),
            _ if rest.starts_with(b"false") => self.word(5, Token::Boolean(false)),
            _ if rest.starts_with(b"null") => self.word(4, Token::Null),
            b'+' | b'i' | b'I' | b'n' | b'N' if invalid_number_start(rest) => self.number(),
            _ => Token::Error("invalid token"),
        };
        (token, at)
    }

    fn word(&mut self, len: usize, t: Token) -> Token {
        self.pos = self.pos.saturating_add(len);
        t
    }

    /// A number as C's `strtod` reads it from here (Redis's cjson allows hexadecimal, `inf`,
    /// `nan`, a leading `+` and leading zeros).
    fn number(&mut self) -> Token {
        let rest = &self.text[self.pos.min(self.text.len())..];
        let candidate_len =
            rest.iter().take(400).take_while(|c| c.is_ascii_alphanumeric() || matches!(c, b'+' | b'-' | b'.')).count();
        for len in (1..=candidate_len).rev() {
            let Ok(s) = std::str::from_utf8(&rest[..len]) else { continue };
            if let Some(v) = strtod_prefix(s) {
                self.pos = self.pos.saturating_add(len);
                return Token::Number(v);
            }
        }
        Token::Error("invalid number")
    }

    /// A string token: escapes decoded, `\uXXXX` (with surrogate pairs) as UTF-8.
    fn string(&mut self) -> Token {
        let mut i = self.pos.saturating_add(1);
        let mut out = Vec::new();
        loop {
            let c = self.at(i);
            match c {
                0 => {
                    self.error_at = Some(i);
                    return Token::Error("unexpected end of string");
                }
                b'"' => break,
                b'\\' => {
                    let e = self.at(i.saturating_add(1));
                    let plain = match e {
                        b'"' => b'"',
                        b'\\' => b'\\',
                        b'/' => b'/',
                        b'b' => 0x08,
                        b't' => b'\t',
                        b'n' => b'\n',
                        b'f' => 0x0c,
                        b'r' => b'\r',
                        b'u' => match self.unicode_escape(i, &mut out) {
                            Some(next) => {
                                i = next;
                                continue;
                            }
                            None => {
                                self.error_at = Some(i);
                                return Token::Error("invalid unicode escape code");
                            }
                        },
                        _ => {
                            self.error_at = Some(i);
                            return Token::Error("invalid escape code");
                        }
                    };
                    out.push(plain);
                    i = i.saturating_add(2);
                }
                _ => {
                    out.push(c);
                    i = i.saturating_add(1);
                }
            }
        }
        self.pos = i.saturating_add(1);
        Token::Str(out)
    }

    /// `\uXXXX` at `i` (and a low surrogate after a high one) appended as UTF-8; where the
    /// string continues, None if malformed.
    fn unicode_escape(&self, i: usize, out: &mut Vec<u8>) -> Option<usize> {
        let hex4 = |at: usize| -> Option<u32> {
            let digits = self.text.get(at..at.checked_add(4)?)?;
            u32::from_str_radix(std::str::from_utf8(digits).ok()?, 16)
                .ok()
                .filter(|_| digits.iter().all(u8::is_ascii_hexdigit))
        };
        let mut code = hex4(i.checked_add(2)?)?;
        let mut next = i.checked_add(6)?;
        if (0xD800..0xDC00).contains(&code) {
            if self.at(next) != b'\\' || self.at(next.checked_add(1)?) != b'u' {
                return None;
            }
            let low = hex4(next.checked_add(2)?)?;
            if !(0xDC00..0xE000).contains(&low) {
                return None;
            }
            code = 0x10000u32.checked_add(((code.checked_sub(0xD800)?) << 10) | low.checked_sub(0xDC00)?)?;
            next = next.checked_add(6)?;
        } else if (0xDC00..0xE000).contains(&code) {
            return None;
        }
        let ch = char::from_u32(code)?;
        let mut buf = [0u8; 4];
        out.extend_from_slice(ch.encode_utf8(&mut buf).as_bytes());
        Some(next)
    }
}

/// lua-cjson's `json_is_invalid_number` for the tokens it only tries as numbers when invalid
/// numbers are allowed: a leading `+`, `inf`, `nan`.
fn invalid_number_start(rest: &[u8]) -> bool {
    let lower: Vec<u8> = rest.iter().take(4).map(u8::to_ascii_lowercase).collect();
    lower.starts_with(b"+") || lower.starts_with(b"inf") || lower.starts_with(b"nan")
}

/// C's `strtod` on a whole candidate: decimal, hexadecimal, `inf`/`infinity`, `nan`.
fn strtod_prefix(s: &str) -> Option<f64> {
    let unsigned = s.trim_start_matches(['+', '-']);
    if s.len().saturating_sub(unsigned.len()) > 1 {
        return None;
    }
    let negative = s.starts_with('-');
    let lower = unsigned.to_ascii_lowercase();
    let v = match lower.as_str() {
        "inf" | "infinity" => f64::INFINITY,
        "nan" => f64::NAN,
        _ if lower.starts_with("0x") => crate::cmd::strtod_whole(unsigned)?,
        _ if lower.bytes().all(|c| c.is_ascii_digit() || matches!(c, b'.' | b'e' | b'+' | b'-')) => {
            if !lower.bytes().next().is_some_and(|c| c.is_ascii_digit() || c == b'.') {
                return None;
            }
            lower.parse::<f64>().ok()?
        }
        _ => return None,
    };
    Some(if negative { -v } else { v })
}

fn expected(what: &str, found: &Token, at: usize) -> Failure {
    Failure::Message(format!("Expected {what} but found {} at character {}", found.name(), at.saturating_add(1)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn strtod_reads_what_c_reads() {
        assert_eq!(strtod_prefix("0x10"), Some(16.0));
        assert_eq!(strtod_prefix("01"), Some(1.0));
        assert_eq!(strtod_prefix("+5"), Some(5.0));
        assert_eq!(strtod_prefix("-1.5e3"), Some(-1500.0));
        assert_eq!(strtod_prefix("inf"), Some(f64::INFINITY));
        assert!(strtod_prefix("1e").is_none() && strtod_prefix("--1").is_none());
    }
}
