//! `bit`, the bitwise library Redis gives scripts (LuaBitOp 1.0.2): every operation works on
//! 32-bit integers, arguments are reduced modulo 2^32 the way LuaBitOp does it (adding 2^52 + 2^51
//! to the double and keeping its low 32 bits, which rounds to nearest), and results are signed.
//! Each function returns (ok, value-or-message) for `raising` in `mod.rs`.

use mlua::{Lua, MultiValue, Value};

/// The functions, in the order `mod.rs` registers them.
pub const NAMES: [&str; 12] =
    ["tobit", "tohex", "bnot", "band", "bor", "bxor", "lshift", "rshift", "arshift", "rol", "ror", "bswap"];

/// LuaBitOp's `barg`: argument `i` (1-based) as 32 bits, or its `luaL_checknumber` error.
fn barg(args: &MultiValue, i: usize, name: &str) -> Result<u32, String> {
    let n = match args.get(i.saturating_sub(1)) {
        Some(Value::Integer(v)) => *v as f64,
        Some(Value::Number(v)) => *v,
        Some(Value::String(s)) => s
            .to_str()
            .ok()
            .and_then(|t| crate::cmd::strtod_whole(t.trim()))
            .ok_or_else(|| format!("bad argument #{i} to '{name}' (number expected, got string)"))?,
        other => {
            let got = other.map(|v| v.type_name()).unwrap_or("no value");
            return Err(format!("bad argument #{i} to '{name}' (number expected, got {got})"));
        }
    };
    Ok((n + 6_755_399_441_055_744.0).to_bits() as u32)
}

fn number(b: u32) -> Value {
    Value::Number(f64::from(b as i32))
}

/// Runs `bit.<NAMES[op]>`.
pub fn call(lua: &Lua, op: usize, args: MultiValue) -> mlua::Result<(bool, Value)> {
    let name = NAMES.get(op).copied().unwrap_or("bit");
    match run(lua, name, &args) {
        Ok(v) => Ok((true, v)),
        Err(m) => Ok((false, Value::String(lua.create_string(m)?))),
    }
}

fn run(lua: &Lua, name: &str, args: &MultiValue) -> Result<Value, String> {
    let x = barg(args, 1, name)?;
    Ok(match name {
        "tobit" => number(x),
        "tohex" => {
            let n = if args.len() < 2 { 8 } else { barg(args, 2, name)? as i32 };
            let upper = n < 0;
            let digits = n.unsigned_abs().min(8) as usize;
            let text: String = (0..digits)
                .rev()
                .map(|i| {
                    // `i < 8`: the shift is at most 28.
                    let nibble = x.checked_shr((i as u32).saturating_mul(4)).unwrap_or(0) & 15;
                    let c = std::char::from_digit(nibble, 16).unwrap_or('0');
                    if upper {
                        c.to_ascii_uppercase()
                    } else {
                        c
                    }
                })
                .collect();
            Value::String(lua.create_string(text).map_err(|e| e.to_string())?)
        }
        "bnot" => number(!x),
        "band" | "bor" | "bxor" => {
            let mut acc = x;
            for i in 2..=args.len() {
                let y = barg(args, i, name)?;
                acc = match name {
                    "band" => acc & y,
                    "bor" => acc | y,
                    _ => acc ^ y,
                };
            }
            number(acc)
        }
        "bswap" => number(x.swap_bytes()),
        _ => {
            let n = barg(args, 2, name)? & 31;
            number(match name {
                "lshift" => x.wrapping_shl(n),
                "rshift" => x.wrapping_shr(n),
                "arshift" => (x as i32).wrapping_shr(n) as u32,
                "rol" => x.rotate_left(n),
                _ => x.rotate_right(n),
            })
        }
    })
}
