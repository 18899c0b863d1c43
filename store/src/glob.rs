//! Glob-style pattern matching as Redis's `stringmatchlen` (KEYS, SCAN MATCH, PSUBSCRIBE,
//! CONFIG GET): `*`, `?`, `[abc]`, `[^a-z]`, and `\x` escapes.
//!
//! Iterative with backtracking to the last `*` only, so a hostile pattern costs
//! O(pattern × string) rather than exponential time. The pattern comes from clients, so it is
//! walked by slice patterns rather than index arithmetic (issue 12).

pub fn glob_match(pattern: &[u8], string: &[u8], nocase: bool) -> bool {
    let eq = |a: u8, b: u8| {
        if nocase {
            a.eq_ignore_ascii_case(&b)
        } else {
            a == b
        }
    };
    // What is left of each; matching consumes them from the front.
    let (mut p, mut s) = (pattern, string);
    // Where to resume after the most recent `*`: (pattern after it, string from there).
    let mut star: Option<(&[u8], &[u8])> = None;
    while let Some((&c, s_next)) = s.split_first() {
        match p {
            [b'*', ..] => {
                p = skip_stars(p);
                if p.is_empty() {
                    return true;
                }
                star = Some((p, s));
                continue;
            }
            [b'?', p_next @ ..] => {
                p = p_next;
                s = s_next;
                continue;
            }
            [b'[', class @ ..] => {
                let (matched, p_next) = match_class(class, c, nocase);
                if matched {
                    p = p_next;
                    s = s_next;
                    continue;
                }
            }
            [b'\\', lit, p_next @ ..] => {
                if eq(*lit, c) {
                    p = p_next;
                    s = s_next;
                    continue;
                }
            }
            [lit, p_next @ ..] => {
                if eq(*lit, c) {
                    p = p_next;
                    s = s_next;
                    continue;
                }
            }
            [] => {}
        }
        // Mismatch: retry from the last star, consuming one more string byte.
        match star {
            Some((sp, ss)) => {
                // `ss` is non-empty: it is at or before the byte that just failed to match.
                let ss = ss.get(1..).unwrap_or_default();
                p = sp;
                s = ss;
                star = Some((sp, ss));
            }
            None => return false,
        }
    }
    skip_stars(p).is_empty()
}

fn skip_stars(p: &[u8]) -> &[u8] {
    let n = p.iter().take_while(|&&c| c == b'*').count();
    &p[n..]
}

/// Matches a `[...]` class whose body starts at `class` (just after the `[`). Returns whether
/// `c` matched and the pattern after the class. An unterminated class extends to the end of the
/// pattern (Redis).
fn match_class(class: &[u8], c: u8, nocase: bool) -> (bool, &[u8]) {
    let (not, mut p) = match class {
        [b'^', rest @ ..] => (true, rest),
        _ => (false, class),
    };
    let lower = |x: u8| if nocase { x.to_ascii_lowercase() } else { x };
    let c = lower(c);
    let mut matched = false;
    loop {
        match p {
            [] => break,
            [b']', rest @ ..] => {
                p = rest;
                break;
            }
            [b'\\', lit, rest @ ..] => {
                matched |= lower(*lit) == c;
                p = rest;
            }
            [a, b'-', b, rest @ ..] if *b != b']' => {
                let (mut a, mut b) = (lower(*a), lower(*b));
                if a > b {
                    std::mem::swap(&mut a, &mut b);
                }
                matched |= c >= a && c <= b;
                p = rest;
            }
            [lit, rest @ ..] => {
                matched |= lower(*lit) == c;
                p = rest;
            }
        }
    }
    (matched != not, p)
}

#[cfg(test)]
mod tests {
    use super::glob_match;

    #[test]
    fn redis_glob_semantics() {
        let m = |p: &str, s: &str| glob_match(p.as_bytes(), s.as_bytes(), false);
        assert!(m("*", ""));
        assert!(m("h?llo", "hello"));
        assert!(m("h*llo", "heeeello"));
        assert!(m("h[ae]llo", "hallo"));
        assert!(!m("h[ae]llo", "hillo"));
        assert!(m("h[^e]llo", "hallo"));
        assert!(!m("h[^e]llo", "hello"));
        assert!(m("h[a-b]llo", "hbllo"));
        assert!(m("user:*:name", "user:1000:name"));
        assert!(!m("user:*:name", "user:1000:age"));
        assert!(m("a\\*b", "a*b"));
        assert!(!m("a\\*b", "axb"));
        assert!(m("*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaab"));
        assert!(!m("*a*a*a*a*a*a*b", "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"));
        assert!(glob_match(b"MAX*", b"maxmemory", true));
        // Edges of the pattern: a trailing backslash is literal, an unterminated class runs to
        // the end, a class may hold an escaped ']' and a reversed range.
        assert!(m("a\\", "a\\"));
        assert!(m("[ab", "b"));
        assert!(!m("[ab", "bc"));
        assert!(m("[\\]]", "]"));
        assert!(m("[z-a]", "q"));
        assert!(m("[a-]", "-"));
        assert!(m("**", ""));
        assert!(!m("?", ""));
    }
}
