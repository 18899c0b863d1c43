//! Redis's `rand48.c` and `redis_math_random`: the generator behind `math.random` in scripts,
//! so that a script draws the numbers it would draw on Redis (and nothing from the clock or the
//! OS: the simulation stays deterministic). One stream per server, never reseeded by Redis
//! except by a script's `math.randomseed`.

use mlua::Value;

const A: u64 = 0x5DEE_CE66D;
const C: u64 = 0xB;
const MASK_48: u64 = (1 << 48) - 1;
/// Redis's `REDIS_LRAND48_MAX`.
const LRAND48_MAX: u64 = i32::MAX as u64;

/// The 48-bit state of `drand48`.
pub struct Rand48 {
    x: u64,
}

impl Rand48 {
    /// The state `drand48` starts with when never seeded.
    pub fn new() -> Rand48 {
        Rand48 { x: 0x1234_ABCD_330E }
    }

    /// `redisSrand48`: the seed in the high 32 bits, 0x330E below.
    pub fn seed(&mut self, seed: i32) {
        self.x = ((seed as u32 as u64) << 16 | 0x330E) & MASK_48;
    }

    /// `redisLrand48`: the next 31-bit value.
    pub fn next(&mut self) -> u64 {
        self.x = A.wrapping_mul(self.x).wrapping_add(C) & MASK_48;
        self.x >> 17
    }

    /// `redis_math_random`'s `r`: in [0, 1).
    pub fn next_unit(&mut self) -> f64 {
        (self.next() % LRAND48_MAX) as f64 / LRAND48_MAX as f64
    }
}

impl Default for Rand48 {
    fn default() -> Rand48 {
        Rand48::new()
    }
}

/// A `luaL_checkint` argument (a number, or a string holding one), truncated to a C int.
fn check_int(v: &Value, n: usize) -> Result<i64, String> {
    let f = match v {
        Value::Integer(i) => *i as f64,
        Value::Number(f) => *f,
        Value::String(s) => s
            .to_str()
            .ok()
            .and_then(|t| t.trim().parse::<f64>().ok())
            .ok_or(format!("bad argument #{n} to 'random' (number expected, got string)"))?,
        other => return Err(format!("bad argument #{n} to 'random' (number expected, got {})", other.type_name())),
    };
    Ok(f as i32 as i64)
}

/// `luaL_checkint` for randomseed: a number or numeric string, as a C int.
pub fn check_int_value(v: &Value) -> Option<i64> {
    check_int(v, 1).ok()
}

/// `math.random()`, `math.random(u)` and `math.random(l, u)` from one draw `r`.
pub fn random_reply(r: f64, args: &[Value]) -> Result<f64, String> {
    match args {
        [] => Ok(r),
        [u] => {
            let u = check_int(u, 1)?;
            if u < 1 {
                return Err("bad argument #1 to 'random' (interval is empty)".into());
            }
            Ok((r * u as f64).floor() + 1.0)
        }
        [l, u] => {
            let (l, u) = (check_int(l, 1)?, check_int(u, 2)?);
            if l > u {
                return Err("bad argument #2 to 'random' (interval is empty)".into());
            }
            let span = u.saturating_sub(l).saturating_add(1) as f64;
            Ok((r * span).floor() + l as f64)
        }
        _ => Err("wrong number of arguments".into()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_what_redis_draws() {
        // redis-server 7.0 on a fresh start: math.random(100) -> 40, then 85; then
        // tostring(math.random()) -> 0.35333609737146.
        let mut r = Rand48::new();
        assert_eq!(random_reply(r.next_unit(), &[Value::Integer(100)]).unwrap(), 40.0);
        assert_eq!(random_reply(r.next_unit(), &[Value::Integer(100)]).unwrap(), 85.0);
        assert!((r.next_unit() - 0.35333609737146).abs() < 1e-12);
    }
}
