//! A sequential model of the server's data commands, for checking replies.
//!
//! The model is deliberately simple (ordered std collections, one map of keys) and independent
//! of the server's code: it encodes what Redis's documentation says each command returns, so a
//! disagreement between model and server points at one of the two, never at shared code.
//! Workloads use it where the expected reply is fully determined (a client on its own keys, or
//! every history on one node checked against one sequential order).

use std::collections::{BTreeMap, BTreeSet, VecDeque};

use bytes::Bytes;
use store::client::Resp;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum MValue {
    Str(Vec<u8>),
    List(VecDeque<Vec<u8>>),
    Hash(BTreeMap<Vec<u8>, Vec<u8>>),
    Set(BTreeSet<Vec<u8>>),
}

/// Keyed by (db, key). Deadlines are not modelled beyond "has one" (workloads only use TTLs far
/// longer than a run).
#[derive(Clone, Debug, Default)]
pub struct Model {
    pub keys: BTreeMap<(usize, Vec<u8>), (MValue, bool)>,
}

fn bulk(b: &[u8]) -> Resp {
    Resp::Bulk(Some(Bytes::copy_from_slice(b)))
}
fn ok() -> Resp {
    Resp::Simple("OK".into())
}
fn nil() -> Resp {
    Resp::Bulk(None)
}
fn wrongtype() -> Resp {
    Resp::Error("WRONGTYPE Operation against a key holding the wrong kind of value".into())
}
fn not_int() -> Resp {
    Resp::Error("ERR value is not an integer or out of range".into())
}

fn parse_int(v: &[u8]) -> Option<i64> {
    let s = std::str::from_utf8(v).ok()?;
    if s.is_empty() || s.starts_with('+') || (s.len() > 1 && s.starts_with('0')) || s.starts_with("-0") {
        return None;
    }
    s.parse().ok()
}

impl Model {
    /// Applies a command (arguments as given to the server) and returns the reply Redis gives.
    /// Returns None for commands the model does not know.
    pub fn apply(&mut self, db: usize, args: &[Vec<u8>]) -> Option<Resp> {
        let name = String::from_utf8_lossy(&args[0]).to_ascii_lowercase();
        let key = |i: usize| (db, args[i].clone());
        Some(match name.as_str() {
            "get" => match self.keys.get(&key(1)) {
                None => nil(),
                Some((MValue::Str(v), _)) => bulk(v),
                Some(_) => wrongtype(),
            },
            "set" => {
                // SET k v [EX secs]
                let ttl = args.len() > 3;
                self.keys.insert(key(1), (MValue::Str(args[2].clone()), ttl));
                ok()
            }
            "setnx" => {
                if self.keys.contains_key(&key(1)) {
                    Resp::Int(0)
                } else {
                    self.keys.insert(key(1), (MValue::Str(args[2].clone()), false));
                    Resp::Int(1)
                }
            }
            "getset" => {
                let old = match self.keys.get(&key(1)) {
                    None => nil(),
                    Some((MValue::Str(v), _)) => bulk(v),
                    Some(_) => return Some(wrongtype()),
                };
                self.keys.insert(key(1), (MValue::Str(args[2].clone()), false));
                old
            }
            "del" => {
                let mut n = 0;
                for i in 1..args.len() {
                    if self.keys.remove(&key(i)).is_some() {
                        n += 1;
                    }
                }
                Resp::Int(n)
            }
            "exists" => Resp::Int((1..args.len()).filter(|&i| self.keys.contains_key(&key(i))).count() as i64),
            "incr" | "incrby" | "decr" => {
                let delta = match name.as_str() {
                    "incr" => 1,
                    "decr" => -1,
                    _ => parse_int(&args[2])?,
                };
                let (cur, ttl) = match self.keys.get(&key(1)) {
                    None => (0, false),
                    Some((MValue::Str(v), t)) => match parse_int(v) {
                        Some(n) => (n, *t),
                        None => return Some(not_int()),
                    },
                    Some(_) => return Some(wrongtype()),
                };
                let Some(next) = cur.checked_add(delta) else {
                    return Some(Resp::Error("ERR increment or decrement would overflow".into()));
                };
                self.keys.insert(key(1), (MValue::Str(next.to_string().into_bytes()), ttl));
                Resp::Int(next)
            }
            "append" => {
                let entry = self.keys.entry(key(1)).or_insert((MValue::Str(Vec::new()), false));
                match &mut entry.0 {
                    MValue::Str(v) => {
                        v.extend_from_slice(&args[2]);
                        Resp::Int(v.len() as i64)
                    }
                    _ => wrongtype(),
                }
            }
            "strlen" => match self.keys.get(&key(1)) {
                None => Resp::Int(0),
                Some((MValue::Str(v), _)) => Resp::Int(v.len() as i64),
                Some(_) => wrongtype(),
            },
            "type" => Resp::Simple(
                match self.keys.get(&key(1)) {
                    None => "none",
                    Some((MValue::Str(_), _)) => "string",
                    Some((MValue::List(_), _)) => "list",
                    Some((MValue::Hash(_), _)) => "hash",
                    Some((MValue::Set(_), _)) => "set",
                }
                .into(),
            ),
            "ttl" => match self.keys.get(&key(1)) {
                None => Resp::Int(-2),
                Some((_, false)) => Resp::Int(-1),
                // Workload TTLs are 1000 s and runs last far less: the reply is within (990, 1000].
                Some((_, true)) => Resp::Simple("ttl-positive".into()),
            },
            "expire" => match self.keys.get_mut(&key(1)) {
                None => Resp::Int(0),
                Some(e) => {
                    e.1 = true;
                    Resp::Int(1)
                }
            },
            "persist" => match self.keys.get_mut(&key(1)) {
                Some(e) if e.1 => {
                    e.1 = false;
                    Resp::Int(1)
                }
                _ => Resp::Int(0),
            },
            "rpush" | "lpush" => {
                let entry = self.keys.entry(key(1)).or_insert((MValue::List(VecDeque::new()), false));
                match &mut entry.0 {
                    MValue::List(l) => {
                        for v in &args[2..] {
                            if name == "rpush" {
                                l.push_back(v.clone())
                            } else {
                                l.push_front(v.clone())
                            }
                        }
                        Resp::Int(l.len() as i64)
                    }
                    _ => wrongtype(),
                }
            }
            "lpop" | "rpop" => {
                let k = key(1);
                let r = match self.keys.get_mut(&k) {
                    None => nil(),
                    Some((MValue::List(l), _)) => {
                        let v = if name == "lpop" { l.pop_front() } else { l.pop_back() };
                        bulk(&v.expect("lists are never empty"))
                    }
                    Some(_) => wrongtype(),
                };
                if matches!(self.keys.get(&k), Some((MValue::List(l), _)) if l.is_empty()) {
                    self.keys.remove(&k);
                }
                r
            }
            "llen" => match self.keys.get(&key(1)) {
                None => Resp::Int(0),
                Some((MValue::List(l), _)) => Resp::Int(l.len() as i64),
                Some(_) => wrongtype(),
            },
            "hset" => {
                let entry = self.keys.entry(key(1)).or_insert((MValue::Hash(BTreeMap::new()), false));
                match &mut entry.0 {
                    MValue::Hash(h) => {
                        let mut added = 0;
                        for pair in args[2..].chunks(2) {
                            if h.insert(pair[0].clone(), pair[1].clone()).is_none() {
                                added += 1;
                            }
                        }
                        Resp::Int(added)
                    }
                    _ => wrongtype(),
                }
            }
            "hget" => match self.keys.get(&key(1)) {
                None => nil(),
                Some((MValue::Hash(h), _)) => h.get(&args[2]).map(|v| bulk(v)).unwrap_or(nil()),
                Some(_) => wrongtype(),
            },
            "sadd" => {
                let entry = self.keys.entry(key(1)).or_insert((MValue::Set(BTreeSet::new()), false));
                match &mut entry.0 {
                    MValue::Set(s) => Resp::Int(args[2..].iter().filter(|m| s.insert((*m).clone())).count() as i64),
                    _ => wrongtype(),
                }
            }
            "sismember" => match self.keys.get(&key(1)) {
                None => Resp::Int(0),
                Some((MValue::Set(s), _)) => Resp::Int(s.contains(&args[2]) as i64),
                Some(_) => wrongtype(),
            },
            "scard" => match self.keys.get(&key(1)) {
                None => Resp::Int(0),
                Some((MValue::Set(s), _)) => Resp::Int(s.len() as i64),
                Some(_) => wrongtype(),
            },
            _ => return None,
        })
    }

    /// Whether `got` is an acceptable reply where the model expects `want` (TTL values are
    /// checked for range, not equality).
    pub fn reply_matches(want: &Resp, got: &Resp) -> bool {
        match (want, got) {
            (Resp::Simple(s), Resp::Int(n)) if s == "ttl-positive" => *n > 990 && *n <= 1000,
            _ => want == got,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(parts: &[&str]) -> Vec<Vec<u8>> {
        parts.iter().map(|p| p.as_bytes().to_vec()).collect()
    }

    #[test]
    fn model_follows_redis_semantics() {
        let mut m = Model::default();
        assert_eq!(m.apply(0, &a(&["INCR", "x"])), Some(Resp::Int(1)));
        assert_eq!(m.apply(0, &a(&["APPEND", "x", "0"])), Some(Resp::Int(2)));
        assert_eq!(m.apply(0, &a(&["INCRBY", "x", "5"])), Some(Resp::Int(15)));
        assert_eq!(m.apply(0, &a(&["LPUSH", "x", "a"])), Some(wrongtype()));
        assert_eq!(m.apply(0, &a(&["RPUSH", "l", "a", "b"])), Some(Resp::Int(2)));
        assert_eq!(m.apply(0, &a(&["LPOP", "l"])), Some(bulk(b"a")));
        assert_eq!(m.apply(0, &a(&["RPOP", "l"])), Some(bulk(b"b")));
        assert_eq!(m.apply(0, &a(&["EXISTS", "l"])), Some(Resp::Int(0)));
        assert_eq!(m.apply(1, &a(&["GET", "x"])), Some(nil()));
        assert_eq!(m.apply(0, &a(&["SET", "s", "abc"])), Some(ok()));
        assert_eq!(m.apply(0, &a(&["INCR", "s"])), Some(not_int()));
    }
}
