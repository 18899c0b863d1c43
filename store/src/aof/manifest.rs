//! The multi-part AOF manifest (`<appenddirname>/<appendfilename>.manifest`), in Redis 7.0's
//! exact format, so that redis-server and redis-check-aof read ours and we read theirs.
//!
//! One line per file, `file <name> seq <n> type <b|h|i>\n`: the base first, then history
//! (newest first), then the incr files in ascending sequence. A name that needs quoting is
//! written as Redis's `sdscatrepr` does. Parsing follows `aofLoadManifestFromFile`: `#` lines
//! are skipped, keys may come in any order, unknown keys are ignored, and the sequence
//! counters are rebuilt from the base and incr lines only.

/// Longest manifest line (`MANIFEST_MAX_LINE`).
pub const LINE_MAX: usize = 1024;
/// Files one manifest may list (a limit on what a corrupt or hostile file can make us hold).
pub const FILES_MAX: usize = 100_000;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum FileType {
    Base,
    History,
    Incr,
}

impl FileType {
    fn letter(self) -> char {
        match self {
            FileType::Base => 'b',
            FileType::History => 'h',
            FileType::Incr => 'i',
        }
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct AofFile {
    pub name: String,
    pub seq: u64,
    pub kind: FileType,
}

#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Manifest {
    pub base: Option<AofFile>,
    /// Newest first.
    pub history: Vec<AofFile>,
    /// Ascending sequence.
    pub incrs: Vec<AofFile>,
    pub base_seq: u64,
    pub incr_seq: u64,
}

impl Manifest {
    pub fn is_empty(&self) -> bool {
        self.base.is_none() && self.incrs.is_empty()
    }

    /// The text Redis writes (`getAofManifestAsString`).
    pub fn render(&self) -> String {
        let mut out = String::new();
        for f in self.base.iter().chain(self.history.iter()).chain(self.incrs.iter()) {
            out.push_str(&format!("file {} seq {} type {}\n", quote(&f.name), f.seq, f.kind.letter()));
        }
        out
    }

    /// Parses a manifest (`aofLoadManifestFromFile`). Err has Redis's message and the line.
    pub fn parse(bytes: &[u8]) -> Result<Manifest, ManifestError> {
        let mut m = Manifest::default();
        let mut lines = 0usize;
        let mut rest = bytes;
        let mut line_no = 0usize;
        while !rest.is_empty() {
            line_no = line_no.saturating_add(1);
            let (line, next, complete) = match rest.iter().position(|b| *b == b'\n') {
                Some(i) => (&rest[..i], &rest[i.saturating_add(1)..], true),
                None => (rest, &rest[rest.len()..], false),
            };
            rest = next;
            let text = String::from_utf8_lossy(line).into_owned();
            let err = |msg: &str| ManifestError { line_no, line: Some(text.clone()), message: msg.to_string() };
            if line.first() == Some(&b'#') {
                continue;
            }
            if !complete || line.len() > LINE_MAX {
                return Err(err("The AOF manifest file contains too long line"));
            }
            let trimmed = text.trim_matches(|c| matches!(c, ' ' | '\t' | '\r' | '\n'));
            if trimmed.is_empty() {
                return Err(err("Invalid AOF manifest file format"));
            }
            let args = crate::protocol::split_args(trimmed.as_bytes())
                .ok_or_else(|| err("Invalid AOF manifest file format"))?;
            if args.len() < 6 || args.len() % 2 != 0 {
                return Err(err("Invalid AOF manifest file format"));
            }
            let file = parse_line(&args).map_err(|msg| err(msg))?;
            lines = lines.saturating_add(1);
            if lines > FILES_MAX {
                return Err(err("Invalid AOF manifest file format"));
            }
            match file.kind {
                FileType::Base => {
                    if m.base.is_some() {
                        return Err(err("Found duplicate base file information"));
                    }
                    m.base_seq = file.seq;
                    m.base = Some(file);
                }
                FileType::History => m.history.push(file),
                FileType::Incr => {
                    if file.seq <= m.incr_seq {
                        return Err(err("Found a non-monotonic sequence number"));
                    }
                    m.incr_seq = file.seq;
                    m.incrs.push(file);
                }
            }
        }
        if lines == 0 {
            return Err(ManifestError { line_no: 0, line: None, message: "Found an empty AOF manifest".into() });
        }
        Ok(m)
    }
}

/// A manifest Redis would refuse, with its message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct ManifestError {
    pub line_no: usize,
    pub line: Option<String>,
    pub message: String,
}

impl std::fmt::Display for ManifestError {
    /// Redis's fatal report (`*** FATAL AOF MANIFEST FILE ERROR ***`).
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(f, "\n*** FATAL AOF MANIFEST FILE ERROR ***")?;
        if let Some(l) = &self.line {
            writeln!(f, "Reading the manifest file, at line {}", self.line_no)?;
            writeln!(f, ">>> '{l}'")?;
        }
        write!(f, "{}", self.message)
    }
}

fn parse_line(args: &[Vec<u8>]) -> Result<AofFile, &'static str> {
    let (mut name, mut seq, mut kind) = (None, 0u64, None);
    for pair in args.chunks(2) {
        let key = String::from_utf8_lossy(&pair[0]).to_ascii_lowercase();
        let value = &pair[1];
        match key.as_str() {
            "file" => {
                if value.iter().any(|b| *b == b'/' || *b == b'\\') {
                    return Err("File can't be a path, just a filename");
                }
                name = Some(String::from_utf8_lossy(value).into_owned());
            }
            // `atoll`: leading digits, 0 when there are none.
            "seq" => seq = atoll(value),
            "type" => {
                kind = match value.first() {
                    Some(b'b') => Some(FileType::Base),
                    Some(b'h') => Some(FileType::History),
                    Some(b'i') => Some(FileType::Incr),
                    Some(_) => return Err("Unknown AOF file type"),
                    None => None,
                }
            }
            _ => {}
        }
    }
    match (name, kind) {
        (Some(name), Some(kind)) if seq > 0 && !name.is_empty() => Ok(AofFile { name, seq, kind }),
        _ => Err("Invalid AOF manifest file format"),
    }
}

fn atoll(v: &[u8]) -> u64 {
    let digits: Vec<u8> = v.iter().copied().take_while(u8::is_ascii_digit).collect();
    std::str::from_utf8(&digits).ok().and_then(|d| d.parse().ok()).unwrap_or(0)
}

/// A name as `sdscatrepr` writes it when it needs quoting (`sdsneedsrepr`), else as is.
fn quote(name: &str) -> String {
    // Also `'`, which Redis leaves bare although its own parser then opens a quote there.
    let needs = name
        .bytes()
        .any(|b| b == b'\\' || b == b'"' || b == b'\'' || b.is_ascii_whitespace() || !(0x20..0x7f).contains(&b));
    if !needs {
        return name.to_string();
    }
    let mut out = String::from("\"");
    for b in name.bytes() {
        match b {
            b'\\' => out.push_str("\\\\"),
            b'"' => out.push_str("\\\""),
            b'\n' => out.push_str("\\n"),
            b'\r' => out.push_str("\\r"),
            b'\t' => out.push_str("\\t"),
            7 => out.push_str("\\a"),
            8 => out.push_str("\\b"),
            0x20..=0x7e => out.push(b as char),
            _ => out.push_str(&format!("\\x{b:02x}")),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    fn file(name: &str, seq: u64, kind: FileType) -> AofFile {
        AofFile { name: name.into(), seq, kind }
    }

    #[test]
    fn renders_redis_order_and_parses_back() {
        let m = Manifest {
            base: Some(file("appendonly.aof.2.base.rdb", 2, FileType::Base)),
            history: vec![file("appendonly.aof.1.incr.aof", 1, FileType::History)],
            incrs: vec![file("appendonly.aof.2.incr.aof", 2, FileType::Incr)],
            base_seq: 2,
            incr_seq: 2,
        };
        let text = m.render();
        assert_eq!(
            text,
            "file appendonly.aof.2.base.rdb seq 2 type b\nfile appendonly.aof.1.incr.aof seq 1 type h\nfile appendonly.aof.2.incr.aof seq 2 type i\n"
        );
        assert_eq!(Manifest::parse(text.as_bytes()).unwrap(), m);
    }

    #[test]
    fn refuses_what_redis_refuses() {
        for (text, msg) in [
            ("", "Found an empty AOF manifest"),
            ("file a seq 1 type b", "The AOF manifest file contains too long line"),
            ("file a seq 1\n", "Invalid AOF manifest file format"),
            ("file a/b seq 1 type b\n", "File can't be a path, just a filename"),
            ("file a seq 1 type x\n", "Unknown AOF file type"),
            ("file a seq 0 type b\n", "Invalid AOF manifest file format"),
            ("file a seq 1 type b\nfile b seq 2 type b\n", "Found duplicate base file information"),
            ("file a seq 2 type i\nfile b seq 2 type i\n", "Found a non-monotonic sequence number"),
            ("   \n", "Invalid AOF manifest file format"),
        ] {
            assert_eq!(Manifest::parse(text.as_bytes()).unwrap_err().message, msg, "{text:?}");
        }
        // Comments, any key order, unknown keys, gaps in incr sequences.
        let m = Manifest::parse(b"# c\ntype b seq 3 file x.rdb extra y\nfile i1 seq 1 type i\nfile i3 seq 3 type i\n")
            .unwrap();
        assert_eq!((m.base_seq, m.incr_seq, m.incrs.len()), (3, 3, 2));
    }

    proptest! {
        #[test]
        fn any_names_round_trip(names in proptest::collection::vec("[ -~\t\n\"\\\\]{1,20}", 1..5)) {
            let names: Vec<String> = names.into_iter().filter(|n| !n.contains('/') && !n.contains('\\')).collect();
            prop_assume!(!names.is_empty());
            let incrs: Vec<AofFile> =
                names.iter().enumerate().map(|(i, n)| file(n, (i as u64).saturating_add(1), FileType::Incr)).collect();
            let m = Manifest { base: None, history: Vec::new(), incr_seq: incrs.len() as u64, incrs, base_seq: 0 };
            prop_assert_eq!(Manifest::parse(m.render().as_bytes()).unwrap(), m);
        }
    }
}
