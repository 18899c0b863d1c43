//! Round-trip, corruption and fixture tests for the RDB codec. The interop half (real
//! redis-server, redis-check-rdb) lives in `tests/rdb_interop.rs`.

use std::collections::{BTreeMap, HashMap, HashSet, VecDeque};
use std::sync::Arc;

use proptest::prelude::*;

use super::encode;
use super::encode::{dump_value, score_text};
use super::*;
use crate::db::{Hasher, Keyspace, Value, ZSet};
use crate::sds::Sds;

const DBS: usize = 4;

fn hasher() -> Hasher {
    Hasher::with_seeds(11, 22, 33, 44)
}

/// A value in a comparable, order-free form (scores by bit pattern: -0.0 must survive).
#[derive(Clone, Debug, PartialEq, Eq)]
enum Canon {
    Str(Vec<u8>),
    List(Vec<Vec<u8>>),
    Set(Vec<Vec<u8>>),
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    ZSet(Vec<(Vec<u8>, u64)>),
}

fn canon(v: &Value) -> Canon {
    match v {
        Value::Str(s) => Canon::Str(s.to_vec()),
        Value::List(l) => Canon::List(l.iter().map(|e| e.to_vec()).collect()),
        Value::Set(s) => {
            let mut m: Vec<Vec<u8>> = s.iter().map(|e| e.to_vec()).collect();
            m.sort();
            Canon::Set(m)
        }
        Value::Hash(h) => {
            let mut m: Vec<_> = h.iter().map(|(f, v)| (f.to_vec(), v.to_vec())).collect();
            m.sort();
            Canon::Hash(m)
        }
        Value::ZSet(z) => {
            assert_eq!(z.scores.len(), z.ordered.len());
            for (s, m) in &z.ordered {
                assert_eq!(z.scores[&m[..]].to_bits(), s.0.to_bits(), "zset halves disagree");
            }
            let mut m: Vec<_> = z.scores.iter().map(|(k, s)| (k.to_vec(), s.to_bits())).collect();
            m.sort();
            Canon::ZSet(m)
        }
    }
}

type CanonDb = BTreeMap<Vec<u8>, (Canon, Option<i64>)>;

fn canon_keyspace(ks: &Keyspace) -> Vec<CanonDb> {
    ks.dbs.iter().map(|db| db.iter().map(|(k, v, e)| (k.to_vec(), (canon(v), e))).collect()).collect()
}

fn canon_loaded(d: &RdbData) -> Vec<CanonDb> {
    d.dbs.iter().map(|db| db.iter().map(|(k, v, e)| (k.to_vec(), (canon(v), *e))).collect()).collect()
}

fn s(b: &[u8]) -> Sds {
    Sds::new(b)
}

// ---- value generation ----------------------------------------------------------------------

/// Deterministic filler for large collections (proptest shrinks the seed and size instead).
struct Mix(u64);
impl Mix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn elem(&mut self) -> Vec<u8> {
        match self.next() % 6 {
            0 => ((self.next() as i64) >> (self.next() % 64)).to_string().into_bytes(),
            1 => format!("m{}", self.next() % 100_000).into_bytes(),
            2 => vec![b'a' + (self.next() % 26) as u8; (self.next() % 300) as usize],
            3 => (0..self.next() % 80).map(|_| self.next() as u8).collect(),
            4 => (self.next() % 1000).to_string().into_bytes(),
            _ => Vec::new(),
        }
    }
}

fn elem() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        any::<i64>().prop_map(|i| i.to_string().into_bytes()),
        (-300i64..300).prop_map(|i| i.to_string().into_bytes()),
        proptest::collection::vec(any::<u8>(), 0..24),
        "[a-z0-9-]{0,12}".prop_map(String::into_bytes),
        (any::<u8>(), 15usize..120).prop_map(|(b, n)| vec![b; n]),
        proptest::collection::vec(any::<u8>(), 60..70),
        Just(b"007".to_vec()),
        Just(b"-0".to_vec()),
        Just(b"9223372036854775808".to_vec()),
    ]
}

fn score() -> impl Strategy<Value = f64> {
    prop_oneof![
        (-1000i64..1000).prop_map(|i| i as f64),
        -1e6f64..1e6,
        any::<f64>().prop_filter("no NaN", |f| !f.is_nan()),
        Just(f64::INFINITY),
        Just(f64::NEG_INFINITY),
        Just(-0.0),
        Just(4_611_686_018_427_387_904.0),
        Just(9_223_372_036_854_775_807.0),
    ]
}

#[derive(Clone, Debug)]
enum Spec {
    Str(Vec<u8>),
    List(Vec<Vec<u8>>),
    BigList(u64, usize),
    Set(Vec<Vec<u8>>),
    IntSet(Vec<i64>),
    BigSet(u64, usize),
    Hash(Vec<(Vec<u8>, Vec<u8>)>),
    BigHash(u64, usize),
    ZSet(Vec<(Vec<u8>, f64)>),
    BigZSet(u64, usize),
}

fn spec() -> impl Strategy<Value = Spec> {
    prop_oneof![
        elem().prop_map(Spec::Str),
        (any::<u8>(), 21usize..3000)
            .prop_map(|(b, n)| Spec::Str((0..n).map(|i| b.wrapping_add((i % 7) as u8)).collect())),
        proptest::collection::vec(elem(), 1..40).prop_map(Spec::List),
        (any::<u64>(), 1usize..4000).prop_map(|(s, n)| Spec::BigList(s, n)),
        proptest::collection::vec(elem(), 1..40).prop_map(Spec::Set),
        proptest::collection::vec(any::<i64>(), 1..40).prop_map(Spec::IntSet),
        proptest::collection::vec(-40000i64..40000, 1..700).prop_map(Spec::IntSet),
        (any::<u64>(), 1usize..800).prop_map(|(s, n)| Spec::BigSet(s, n)),
        proptest::collection::vec((elem(), elem()), 1..40).prop_map(Spec::Hash),
        (any::<u64>(), 1usize..400).prop_map(|(s, n)| Spec::BigHash(s, n)),
        proptest::collection::vec((elem(), score()), 1..40).prop_map(Spec::ZSet),
        (any::<u64>(), 1usize..400).prop_map(|(s, n)| Spec::BigZSet(s, n)),
    ]
}

fn build(spec: &Spec, h: &Hasher) -> Value {
    let set = |items: Vec<Vec<u8>>| {
        let mut s: HashSet<Sds, Hasher> = HashSet::with_hasher(h.clone());
        s.extend(items.iter().map(|e| Sds::new(e)));
        Value::Set(Arc::new(s))
    };
    let hash = |items: Vec<(Vec<u8>, Vec<u8>)>| {
        let mut m: HashMap<Sds, Sds, Hasher> = HashMap::with_hasher(h.clone());
        m.extend(items.iter().map(|(f, v)| (Sds::new(f), Sds::new(v))));
        Value::Hash(Arc::new(m))
    };
    let zset = |items: Vec<(Vec<u8>, f64)>| {
        let mut z = ZSet::new(h.clone());
        for (m, sc) in items {
            z.insert(Sds::new(&m), sc);
        }
        Value::ZSet(Arc::new(z))
    };
    match spec.clone() {
        Spec::Str(v) => Value::Str(Sds::new(&v)),
        Spec::List(v) => Value::List(Arc::new(v.iter().map(|e| Sds::new(e)).collect())),
        Spec::BigList(seed, n) => {
            let mut m = Mix(seed);
            Value::List(Arc::new((0..n).map(|_| Sds::new(&m.elem())).collect()))
        }
        Spec::Set(v) => set(v),
        Spec::IntSet(v) => set(v.iter().map(|i| i.to_string().into_bytes()).collect()),
        Spec::BigSet(seed, n) => {
            let mut m = Mix(seed);
            set((0..n).map(|_| m.elem()).collect())
        }
        Spec::Hash(v) => hash(v),
        Spec::BigHash(seed, n) => {
            let mut m = Mix(seed);
            hash((0..n).map(|_| (m.elem(), m.elem())).collect())
        }
        Spec::ZSet(v) => zset(v),
        Spec::BigZSet(seed, n) => {
            let mut m = Mix(seed);
            zset((0..n).map(|_| (m.elem(), (m.next() % 20_000) as f64 / 8.0 - 1000.0)).collect())
        }
    }
}

type Dataset = Vec<(usize, Vec<u8>, Spec, Option<i64>)>;

fn dataset(max_keys: usize) -> impl Strategy<Value = Dataset> {
    proptest::collection::vec(
        (0..DBS, elem(), spec(), prop_oneof![3 => Just(None), 1 => any::<i64>().prop_map(Some)]),
        0..max_keys,
    )
}

fn keyspace(ds: &Dataset) -> Keyspace {
    let mut ks = Keyspace::new(DBS, [11, 22, 33, 44]);
    let h = ks.hasher();
    for (db, key, spec, exp) in ds {
        ks.dbs[*db].insert(Sds::new(key), build(spec, &h), false);
        if let Some(e) = exp {
            ks.dbs[*db].set_expire(key, *e);
        }
    }
    ks
}

fn aux() -> AuxFields {
    AuxFields {
        ctime: 1_700_000_000,
        used_mem: 123_456_789,
        repl: Some(ReplAux {
            stream_db: 2,
            id: "0123456789abcdef0123456789abcdef01234567".into(),
            offset: 987_654_321,
        }),
        ..AuxFields::default()
    }
}

/// A fixed dataset with every type in compact and large encodings.
fn rich_keyspace() -> Keyspace {
    let specs = vec![
        (0, b"str".to_vec(), Spec::Str(b"hello".to_vec()), None),
        (0, b"int".to_vec(), Spec::Str(b"-123456".to_vec()), Some(1_900_000_000_000)),
        (0, b"long".to_vec(), Spec::Str(vec![b'z'; 500]), None),
        (1, b"list".to_vec(), Spec::List(vec![b"a".to_vec(), b"1".to_vec(), vec![b'q'; 70]]), None),
        (1, b"biglist".to_vec(), Spec::BigList(7, 3000), Some(1)),
        (2, b"intset".to_vec(), Spec::IntSet(vec![1, -70000, 5_000_000_000]), None),
        (2, b"set".to_vec(), Spec::Set(vec![b"x".to_vec(), b"y".to_vec()]), None),
        (2, b"bigset".to_vec(), Spec::BigSet(9, 700), None),
        (3, b"hash".to_vec(), Spec::Hash(vec![(b"f".to_vec(), b"1".to_vec())]), None),
        (3, b"bighash".to_vec(), Spec::BigHash(3, 300), None),
        (3, b"zset".to_vec(), Spec::ZSet(vec![(b"m".to_vec(), 1.5), (b"n".to_vec(), f64::NEG_INFINITY)]), None),
        (3, b"bigzset".to_vec(), Spec::BigZSet(5, 300), None),
    ];
    keyspace(&specs)
}

// ---- round trips ---------------------------------------------------------------------------

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, .. ProptestConfig::default() })]

    #[test]
    fn keyspace_round_trips(ds in dataset(12)) {
        let ks = keyspace(&ds);
        let file = encode_keyspace(&ks, &aux());
        let back = decode(&file, DBS, &hasher()).unwrap();
        prop_assert_eq!(canon_loaded(&back), canon_keyspace(&ks));
        prop_assert_eq!(back.len, file.len());
        prop_assert_eq!(back.empty_keys_skipped, 0);
    }

    #[test]
    fn dump_payloads_round_trip(spec in spec(), compress in any::<bool>()) {
        let v = build(&spec, &hasher());
        let p = dump_value(&v, compress).unwrap();
        prop_assert_eq!(canon(&decode::decode_dump(&p, &hasher()).unwrap()), canon(&v));
    }

    #[test]
    fn uncompressed_and_without_checksum_round_trips(ds in dataset(6)) {
        let ks = keyspace(&ds);
        let mut w = RdbWriter::new(Vec::new()).with_compression(false).with_checksum(false);
        w.write_header(&AuxFields::default()).unwrap();
        for (i, db) in ks.dbs.iter().enumerate() {
            w.write_snapshot(i as u64, &db.snapshot()).unwrap();
        }
        let file = w.finish().unwrap();
        prop_assert_eq!(&file[file.len() - 8..], &[0u8; 8]);
        let back = decode(&file, DBS, &hasher()).unwrap();
        prop_assert_eq!(canon_loaded(&back), canon_keyspace(&ks));
    }

    #[test]
    fn score_text_parses_back_exactly(f in score()) {
        let t = score_text(f);
        let back: f64 = t.parse().unwrap();
        prop_assert_eq!(back.to_bits(), f.to_bits(), "{} -> {}", f, t);
    }
}

#[test]
fn header_and_aux_fields() {
    let ks = rich_keyspace();
    let file = encode_keyspace(&ks, &aux());
    assert_eq!(&file[..9], b"REDIS0010");
    let d = decode(&file, DBS, &hasher()).unwrap();
    assert_eq!(d.version, 10);
    assert_eq!(d.repl_id.as_deref(), Some("0123456789abcdef0123456789abcdef01234567"));
    assert_eq!(d.repl_offset, Some(987_654_321));
    assert_eq!(d.repl_stream_db, Some(2));
    let names: Vec<&[u8]> = d.aux.iter().map(|(k, _)| &k[..]).collect();
    assert_eq!(names, vec![&b"redis-ver"[..], b"redis-bits", b"ctime", b"used-mem", b"aof-base"]);
    assert_eq!(&d.aux_field("redis-ver").unwrap()[..], b"7.0.15");
    assert_eq!(&d.aux_field("redis-bits").unwrap()[..], b"64");
    assert_eq!(&d.aux_field("ctime").unwrap()[..], b"1700000000");
    assert_eq!(&d.aux_field("aof-base").unwrap()[..], b"0");
    assert_eq!(canon_loaded(&d), canon_keyspace(&ks));
    assert_eq!(d.key_count(), 12);
}

#[test]
fn plain_quicklist_nodes_and_multi_node_lists() {
    let h = hasher();
    let list: VecDeque<Sds> =
        (0..2000).map(|i| if i % 100 == 7 { s(&[b'p'; 150]) } else { s(format!("e{i}").as_bytes()) }).collect();
    let v = Value::List(Arc::new(list));
    let mut w = RdbWriter::new(Vec::new()).with_list_packed_threshold(100);
    w.write_header(&AuxFields::default()).unwrap();
    w.begin_db(0, 1, 0).unwrap();
    assert!(w.write_entry(b"l", &v, None).unwrap());
    let file = w.finish().unwrap();
    let d = decode(&file, 1, &h).unwrap();
    assert_eq!(canon(&d.dbs[0][0].1), canon(&v));
}

#[test]
fn empty_collections_are_not_written() {
    let h = hasher();
    let mut w = RdbWriter::new(Vec::new());
    w.write_header(&AuxFields::default()).unwrap();
    w.begin_db(0, 1, 0).unwrap();
    assert!(!w.write_entry(b"e", &Value::List(Arc::new(VecDeque::new())), None).unwrap());
    assert!(!w.write_entry(b"z", &Value::ZSet(Arc::new(ZSet::new(h.clone()))), Some(5)).unwrap());
    let d = decode(&w.finish().unwrap(), 1, &h).unwrap();
    assert_eq!(d.key_count(), 0);
    assert!(dump_value(&Value::Set(Arc::new(HashSet::with_hasher(h))), true).is_none());
}

#[test]
fn empty_keyspace_is_header_and_trailer_only() {
    let ks = Keyspace::new(16, [1, 2, 3, 4]);
    let file = encode_keyspace(&ks, &AuxFields::default());
    let d = decode(&file, 16, &hasher()).unwrap();
    assert_eq!(d.key_count(), 0);
    assert!(!file.contains(&opcode::SELECTDB));
}

#[test]
fn g17_matches_c_printf() {
    // Expected strings from C's printf("%.17g") (Python's % operator uses the same rules).
    for (f, want) in [
        (0.1, "0.10000000000000001"),
        (1.5, "1.5"),
        (1e300, "1.0000000000000001e+300"),
        (7.77, "7.7699999999999996"),
        (3.3, "3.2999999999999998"),
        (1e-5, "1.0000000000000001e-05"),
        (123.456, "123.456"),
        (-2.5e-7, "-2.4999999999999999e-07"),
        (1e17, "1e+17"),
        (5e-324, "4.9406564584124654e-324"),
        (1.7976931348623157e308, "1.7976931348623157e+308"),
        (0.0001, "0.0001"),
        (1.234e-05, "1.234e-05"),
        (1.8446744073709552e19, "1.8446744073709552e+19"),
    ] {
        assert_eq!(encode::format_g17(f), want, "{f:e}");
    }
    assert_eq!(score_text(1e17), "100000000000000000", "integers within 2^62 print as integers");
    assert_eq!(score_text(0.1), "0.10000000000000001");
    assert_eq!(score_text(4_611_686_018_427_387_904.0), "4611686018427387904");
    assert_eq!(score_text(-0.0), "-0");
    assert_eq!(score_text(f64::NEG_INFINITY), "-inf");
    assert_eq!(score_text(12345678901234568.0), "12345678901234568");
}

#[test]
fn canonical_integers() {
    for ok in ["0", "-1", "9223372036854775807", "-9223372036854775808", "10"] {
        assert_eq!(parse_canonical_i64(ok.as_bytes()).map(|v| v.to_string()), Some(ok.to_string()));
    }
    for bad in ["", "-", "-0", "01", "+1", " 1", "1 ", "9223372036854775808", "1a", "-09"] {
        assert_eq!(parse_canonical_i64(bad.as_bytes()), None, "{bad:?}");
    }
}

// ---- fixtures from Redis's test suite ---------------------------------------------------------

fn strs(v: &[&str]) -> Vec<Vec<u8>> {
    v.iter().map(|x| x.as_bytes().to_vec()).collect()
}

fn loaded_map(bytes: &[u8]) -> (RdbData, CanonDb) {
    let d = decode(bytes, 16, &hasher()).unwrap();
    let m = canon_loaded(&d).into_iter().next().unwrap();
    (d, m)
}

#[test]
fn fixture_encodings_v4() {
    // tests/integration/rdb.tcl "RDB encoding loading test" lists exactly these.
    let (d, m) = loaded_map(fixtures::ENCODINGS_V4);
    assert_eq!(d.version, 4);
    let get = |k: &str| m.get(k.as_bytes()).map(|(c, _)| c.clone()).unwrap_or_else(|| panic!("missing {k}"));
    let sorted = |v: &[&str]| {
        let mut x = strs(v);
        x.sort();
        x
    };
    let pairs = |v: &[(&str, &str)]| {
        let mut x: Vec<_> = v.iter().map(|(a, b)| (a.as_bytes().to_vec(), b.as_bytes().to_vec())).collect();
        x.sort();
        x
    };
    let zs = |v: &[(&str, f64)]| {
        let mut x: Vec<_> = v.iter().map(|(a, b)| (a.as_bytes().to_vec(), b.to_bits())).collect();
        x.sort();
        x
    };
    assert_eq!(get("compressible"), Canon::Str(vec![b'a'; 137]));
    assert_eq!(get("string"), Canon::Str(b"Hello World".to_vec()));
    assert_eq!(get("number"), Canon::Str(b"10".to_vec()));
    let list = ["1", "2", "3", "a", "b", "c", "100000", "6000000000"];
    assert_eq!(get("list_zipped"), Canon::List(strs(&list)));
    assert_eq!(get("list"), Canon::List(strs(&list).iter().cycle().take(24).cloned().collect()));
    assert_eq!(get("set"), Canon::Set(sorted(&["1", "100000", "2", "3", "6000000000", "a", "b", "c"])));
    assert_eq!(get("set_zipped_1"), Canon::Set(sorted(&["1", "2", "3", "4"])));
    assert_eq!(get("set_zipped_2"), Canon::Set(sorted(&["100000", "200000", "300000", "400000"])));
    assert_eq!(
        get("set_zipped_3"),
        Canon::Set(sorted(&["1000000000", "2000000000", "3000000000", "4000000000", "5000000000", "6000000000"]))
    );
    assert_eq!(get("hash_zipped"), Canon::Hash(pairs(&[("a", "1"), ("b", "2"), ("c", "3")])));
    assert_eq!(
        get("hash"),
        Canon::Hash(pairs(&[
            ("a", "1"),
            ("aa", "10"),
            ("aaa", "100"),
            ("b", "2"),
            ("bb", "20"),
            ("bbb", "200"),
            ("c", "3"),
            ("cc", "30"),
            ("ccc", "300"),
            ("ddd", "400"),
            ("eee", "5000000000"),
        ]))
    );
    assert_eq!(get("zset_zipped"), Canon::ZSet(zs(&[("a", 1.0), ("b", 2.0), ("c", 3.0)])));
    assert_eq!(
        get("zset"),
        Canon::ZSet(zs(&[
            ("a", 1.0),
            ("b", 2.0),
            ("c", 3.0),
            ("aa", 10.0),
            ("bb", 20.0),
            ("cc", 30.0),
            ("aaa", 100.0),
            ("bbb", 200.0),
            ("ccc", 300.0),
            ("aaaa", 1000.0),
            ("cccc", 123456789.0),
            ("bbbb", 5000000000.0),
        ]))
    );
    assert_eq!(m.len(), 13);
}

#[test]
fn fixture_small_files() {
    let hash = Canon::Hash(vec![(b"f1".to_vec(), b"v1".to_vec()), (b"f2".to_vec(), b"v2".to_vec())]);
    assert_eq!(loaded_map(fixtures::HASH_ZIPMAP_V3).1[&b"hash"[..]].0, hash);
    assert_eq!(loaded_map(fixtures::HASH_ZIPLIST_V9).1[&b"hash"[..]].0, hash);
    let (_, m) = loaded_map(fixtures::ZSET_ZIPLIST_V10);
    assert_eq!(
        m[&b"zset"[..]].0,
        Canon::ZSet(vec![(b"one".to_vec(), 1f64.to_bits()), (b"two".to_vec(), 2f64.to_bits())])
    );
    let (_, m) = loaded_map(fixtures::LIST_QUICKLIST_V8);
    assert_eq!(m[&b"list"[..]].0, Canon::List(strs(&["7"])));
    assert_eq!(m[&b"x"[..]].0, Canon::Str(b"7".to_vec()));
    let (d, m) = loaded_map(fixtures::EMPTY_KEYS_V10);
    assert!(m.is_empty());
    assert_eq!(d.empty_keys_skipped, 9);
}

// ---- corruption ------------------------------------------------------------------------------

fn err_of(file: &[u8]) -> RdbError {
    decode(file, DBS, &hasher()).expect_err("corrupt input must be refused")
}

/// Builds `REDIS0010` + body + EOF + CRC (or a zero CRC).
fn file_with(body: &[u8], crc: bool) -> Vec<u8> {
    let mut f = b"REDIS0010".to_vec();
    f.extend_from_slice(body);
    f.push(opcode::EOF);
    let c = if crc { crc64::crc64(&f) } else { 0 };
    f.extend_from_slice(&c.to_le_bytes());
    f
}

#[test]
fn specific_corruptions_have_clear_errors() {
    let cases: Vec<(Vec<u8>, &str)> = vec![
        (b"RADIS0010".to_vec(), "signature"),
        (b"REDIS0012\xff".to_vec(), "Can't handle RDB format version 12"),
        (b"REDIS0000\xff".to_vec(), "Can't handle RDB format version 0"),
        (file_with(b"\xfe\x09", true), "SELECTDB 9 out of range"),
        // A list claiming 2^64-1 elements: refused before anything is reserved.
        (file_with(b"\x01\x01k\x81\xff\xff\xff\xff\xff\xff\xff\xff", true), "cannot fit"),
        // An LZF string claiming 1 TB from 2 bytes.
        (file_with(b"\x00\x01k\xc3\x02\x81\x00\x00\x01\x00\x00\x00\x00\x00\x00\x00", true), "more than LZF can expand"),
        (file_with(b"\x00\x01k\xc3\x02\x80\x00\x10\x00\x00\x00a", true), "more than LZF can expand"),
        (file_with(b"\x00\x01k\xc3\x02\x05\x20\x00", true), "before the start of the output"),
        (file_with(b"\x02\x01k\x02\x01a\x01a", true), "Duplicate set members"),
        (file_with(b"\x04\x01k\x02\x01a\x01b\x01a\x01c", true), "Duplicate hash fields"),
        (file_with(b"\x03\x01k\x01\x01a\xfd", true), "NAN"),
        (file_with(b"\x05\x01k\x01\x01a\x00\x00\x00\x00\x00\x00\xf8\x7f", true), "NAN"),
        (file_with(b"\x00\x01k\x01v\x00\x01k\x01w", true), "duplicate key 'k' in DB 0"),
        (file_with(b"\x0f\x01k", true), "stream values are not supported (type 15"),
        (file_with(b"\x15\x01k", true), "stream values are not supported (type 21"),
        (file_with(b"\x07\x01k", true), "module/function data not supported"),
        (file_with(b"\xf7\x01", true), "module/function data not supported"),
        (file_with(b"\xf5\x01", true), "module/function data not supported"),
        (file_with(b"\x08\x01k", true), "unknown value type 8"),
        (file_with(b"\x16\x01k", true), "unknown value type 22"),
        (file_with(b"\x00\xc4", true), "unknown string encoding"),
        (file_with(b"\x01\x01k\xc0", true), "expected a length"),
        (file_with(b"\x0b\x01k\x08\x02\x00\x00\x00\x00\x00\x00\x00", true), "empty intset"),
        (file_with(b"\x12\x01k\x01\x03\x01a", true), "Quicklist integrity check failed"),
        (file_with(b"\x00\x01k\x01v", true)[..20].to_vec(), "truncated"),
    ];
    for (file, want) in cases {
        let e = err_of(&file);
        assert!(e.to_string().contains(want), "expected {want:?}, got {e}");
    }
    // A wrong CRC is an error; a zero CRC is not checked.
    let mut f = file_with(b"\x00\x01k\x01v", true);
    let n = f.len();
    f[n - 1] ^= 1;
    assert!(err_of(&f).message.contains("RDB CRC error"));
    let d = decode(&file_with(b"\x00\x01k\x01v", false), DBS, &hasher()).unwrap();
    assert_eq!(d.key_count(), 1);
    // Version 11 files (Redis 7.2) with a set listpack (type 20).
    let mut lp = Vec::new();
    encode::lp_begin(&mut lp);
    encode::lp_append(&mut lp, b"a");
    encode::lp_append(&mut lp, b"5");
    encode::lp_finish(&mut lp, 2);
    let mut body = vec![rdb_type::SET_LISTPACK, 1, b'k', lp.len() as u8];
    body.extend(&lp);
    let mut f = file_with(&body, false);
    f[8] = b'1';
    let d = decode(&f, DBS, &hasher()).unwrap();
    assert_eq!(d.version, 11);
    assert_eq!(canon(&d.dbs[0][0].1), Canon::Set(strs(&["5", "a"])));
    // Old-style expiry in seconds.
    let d = decode(&file_with(b"\xfd\x10\x00\x00\x00\x00\x01k\x01v", true), DBS, &hasher()).unwrap();
    assert_eq!(d.dbs[0][0].2, Some(16_000));
}

fn rich_file(crc: bool) -> Vec<u8> {
    let ks = rich_keyspace();
    let mut w = RdbWriter::new(Vec::new()).with_checksum(crc);
    w.write_header(&aux()).unwrap();
    for (i, db) in ks.dbs.iter().enumerate() {
        w.write_db(i as u64, db.len() as u64, db.expires_len() as u64, db.iter()).unwrap();
    }
    w.finish().unwrap()
}

/// Fixtures with the CRC zeroed, so that flips reach the parsers instead of the checksum.
fn fixtures_unchecked() -> Vec<Vec<u8>> {
    fixtures::ALL
        .iter()
        .map(|(_, b)| {
            let mut b = b.to_vec();
            let v: u32 = std::str::from_utf8(&b[5..9]).unwrap().parse().unwrap();
            if v >= 5 {
                let n = b.len();
                b[n - 8..].fill(0);
            }
            b
        })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 400, .. ProptestConfig::default() })]

    #[test]
    fn truncation_is_always_an_error(cut in any::<prop::sample::Index>()) {
        let f = rich_file(true);
        let cut = cut.index(f.len());
        prop_assert!(decode(&f[..cut], DBS, &hasher()).is_err());
    }

    /// Any change after the header is caught (by a parser or by the CRC). The header itself is
    /// excluded: turning "0010" into "0004" makes a file without a CRC, in Redis too.
    #[test]
    fn flips_are_caught(flips in proptest::collection::vec((any::<prop::sample::Index>(), 1u8..=255), 1..4)) {
        let mut f = rich_file(true);
        let n = f.len();
        for (i, x) in &flips {
            f[9 + i.index(n - 9)] ^= x;
        }
        prop_assert!(decode(&f, DBS, &hasher()).is_err());
    }

    /// Without a CRC, flipped bytes reach every parser: the result may be Ok (a flipped data
    /// byte is still data) but must never be a panic or a runaway allocation.
    #[test]
    fn flips_without_crc_never_panic(
        which in 0usize..7,
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
    ) {
        let mut f = if which == 0 { rich_file(false) } else { fixtures_unchecked().swap_remove(which - 1) };
        let n = f.len();
        for (i, x) in &flips {
            f[i.index(n)] ^= x;
        }
        let _ = decode(&f, 16, &hasher());
    }

    #[test]
    fn random_bodies_never_panic(body in proptest::collection::vec(any::<u8>(), 0..300), version in 1u32..=11) {
        let mut f = format!("REDIS{version:04}").into_bytes();
        f.extend_from_slice(&body);
        let _ = decode(&f, 16, &hasher());
        let _ = decode::decode_dump(&body, &hasher());
    }

    /// Structured garbage: a valid key header followed by a random value of a random type.
    #[test]
    fn random_values_never_panic(ty in prop_oneof![0u8..=21, Just(9u8), Just(10u8), Just(11u8), Just(13u8), Just(14u8), Just(16u8), Just(17u8), Just(18u8), Just(20u8)],
                                 value in proptest::collection::vec(any::<u8>(), 0..120)) {
        let mut body = vec![ty, 1, b'k'];
        body.extend_from_slice(&value);
        let _ = decode(&file_with(&body, false), DBS, &hasher());
        let mut blob = vec![ty, 1, b'k', value.len().min(63) as u8];
        blob.extend_from_slice(&value[..value.len().min(63)]);
        let _ = decode(&file_with(&blob, false), DBS, &hasher());
    }
}
