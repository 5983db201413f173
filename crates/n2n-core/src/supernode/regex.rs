//! The tiny regular-expression engine C n2n uses for community names
//! (behaviour.md §9.2), with its exact matching semantics but bounded work.
//!
//! Syntax: `.` (any byte except CR/LF), `*` `+` (greedy), `?` (**lazy**:
//! tries "zero" first), `[abc]`, `[a-z]`, `[^…]`, `\s \S \w \W \d \D`, and
//! `\x` for a literal `x`. `^` and `$` are ordinary characters (C n2n
//! disabled the anchors). There is no grouping and no alternation.
//!
//! A community name is allowed by an expression when C's search finds its
//! first match at position 0 *and* that match covers the whole name. Because
//! the C engine stops at the first successful backtracking path, a match can
//! be shorter than the name even when a full match exists: `ab?` does not
//! allow `ab` (the lazy `?` succeeds with `a`). We reproduce that, so a
//! federation of C and Rust supernodes accepts the same names.
//!
//! Differences from C, all on inputs where C misbehaves:
//! * expressions C would compile into garbage are rejected with an error
//!   (a quantifier with nothing to repeat, a trailing `\`, an unterminated
//!   `[`), as are expressions C silently truncates (more than
//!   [`MAX_ELEMENTS`] elements) or fails to compile (character classes over
//!   C's 40-byte buffer, which make C's expression never match);
//! * C keeps the bytes of all character classes in one static buffer that
//!   the next compiled expression overwrites; we do not reproduce that.
//!
//! Matching memoises (element, position) results, so the work is bounded by
//! O(elements × len²) whatever the pattern: a hostile expression cannot hang
//! the supernode. Matching does not allocate.

/// Most elements (characters, classes and quantifiers) C compiles; it
/// silently drops the rest of a longer expression.
pub const MAX_ELEMENTS: usize = 29;
/// Size of C's buffer for the bytes of all character classes of one
/// expression (each class also takes a terminating byte; index 0 unused).
const CCL_BUF: usize = 40;
/// Longest name that can be matched (community names are at most 19 or 20
/// bytes on the wire; anything longer is never allowed).
pub const MAX_NAME: usize = 127;

/// The characters that make a community-file token a regular expression.
pub const SPECIAL: &[u8] = b".*+?[]\\";

/// Is this community-file token a regular expression (contains any of
/// `. * + ? [ ] \`)?
pub fn is_regex(token: &str) -> bool {
    token.bytes().any(|b| SPECIAL.contains(&b))
}

/// Why an expression was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RegexError {
    /// `*`, `+` or `?` at the start or after another quantifier.
    #[error("'{0}' at byte {1} has nothing to repeat")]
    NothingToRepeat(char, usize),
    /// The expression ends with a lone `\`.
    #[error("trailing '\\'")]
    TrailingBackslash,
    /// A `[` without its `]`.
    #[error("'[' at byte {0} is not closed by ']'")]
    UnterminatedClass(usize),
    /// More elements than C compiles.
    #[error("more than {MAX_ELEMENTS} elements (C n2n would silently ignore the rest)")]
    TooLong,
    /// Character classes exceed C's buffer.
    #[error(
        "character classes too long (C n2n limit: 39 bytes, counting one terminator per class; \
         C would never match)"
    )]
    ClassesTooLong,
    /// The expression is empty.
    #[error("empty expression")]
    Empty,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Quant {
    Star,
    Plus,
    Question,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Node {
    Dot,
    Char(u8),
    /// Class bytes framed as C sees them: `[0, bytes.., 0]` (the leading 0
    /// is the byte before the class in C's buffer, always a terminator).
    Class {
        inverted: bool,
        set: Box<[u8]>,
    },
    Digit(bool),
    Alnum(bool),
    Space(bool),
    Quant(Quant),
}

/// A compiled expression.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Regex {
    source: String,
    nodes: Vec<Node>,
}

fn is_digit(c: u8) -> bool {
    c.is_ascii_digit()
}
fn is_alnum(c: u8) -> bool {
    c == b'_' || c.is_ascii_alphanumeric()
}
fn is_space(c: u8) -> bool {
    matches!(c, b' ' | b'\t' | b'\n' | b'\r' | 0x0c | 0x0b)
}
fn is_meta(c: u8) -> bool {
    matches!(c, b's' | b'S' | b'w' | b'W' | b'd' | b'D')
}

/// C's `matchmetachar`.
fn match_meta(c: u8, m: u8) -> bool {
    match m {
        b'd' => is_digit(c),
        b'D' => !is_digit(c),
        b'w' => is_alnum(c),
        b'W' => !is_alnum(c),
        b's' => is_space(c),
        b'S' => !is_space(c),
        _ => c == m,
    }
}

/// C's `matchrange` on `s[i..]` (with C's signed `char` comparison).
fn match_range(c: u8, s: &[u8], i: usize) -> bool {
    let at = |k: usize| s.get(i + k).copied().unwrap_or(0);
    let (a, dash, b) = (at(0), at(1), at(2));
    c != b'-'
        && a != 0
        && a != b'-'
        && dash == b'-'
        && b != 0
        && (c as i8) >= (a as i8)
        && (c as i8) <= (b as i8)
}

/// C's `matchcharclass`; `s` is `[0, class bytes.., 0]`.
fn match_class(c: u8, s: &[u8]) -> bool {
    let at = |k: usize| s.get(k).copied().unwrap_or(0);
    let mut i = 1;
    loop {
        if match_range(c, s, i) {
            return true;
        } else if at(i) == b'\\' {
            i += 1;
            if match_meta(c, at(i)) || (c == at(i) && !is_meta(c)) {
                return true;
            }
        } else if c == at(i) {
            if c == b'-' {
                return at(i - 1) == 0 || at(i + 1) == 0;
            }
            return true;
        }
        if at(i) == 0 {
            return false;
        }
        i += 1;
    }
}

impl Node {
    fn matches(&self, c: u8) -> bool {
        match self {
            Node::Dot => c != b'\n' && c != b'\r',
            Node::Char(x) => *x == c,
            Node::Class { inverted, set } => match_class(c, set) != *inverted,
            Node::Digit(pos) => is_digit(c) == *pos,
            Node::Alnum(pos) => is_alnum(c) == *pos,
            Node::Space(pos) => is_space(c) == *pos,
            Node::Quant(_) => false,
        }
    }
}

/// Memo of `match_from` results: 0 unknown, 1 failure, `end + 2` success.
type Memo = [[u8; MAX_NAME + 1]; MAX_ELEMENTS + 2];

impl Regex {
    /// Compile an expression.
    pub fn new(pattern: &str) -> Result<Self, RegexError> {
        let p = pattern.as_bytes();
        if p.is_empty() {
            return Err(RegexError::Empty);
        }
        let mut nodes: Vec<Node> = Vec::new();
        let mut ccl_idx = 1usize;
        let mut i = 0;
        while i < p.len() {
            if nodes.len() >= MAX_ELEMENTS {
                return Err(RegexError::TooLong);
            }
            let c = p[i];
            let node = match c {
                b'.' => Node::Dot,
                b'*' | b'+' | b'?' => {
                    let q = match c {
                        b'*' => Quant::Star,
                        b'+' => Quant::Plus,
                        _ => Quant::Question,
                    };
                    match nodes.last() {
                        None | Some(Node::Quant(_)) => {
                            return Err(RegexError::NothingToRepeat(char::from(c), i));
                        }
                        Some(_) => Node::Quant(q),
                    }
                }
                b'\\' => {
                    i += 1;
                    let Some(&e) = p.get(i) else {
                        return Err(RegexError::TrailingBackslash);
                    };
                    match e {
                        b'd' => Node::Digit(true),
                        b'D' => Node::Digit(false),
                        b'w' => Node::Alnum(true),
                        b'W' => Node::Alnum(false),
                        b's' => Node::Space(true),
                        b'S' => Node::Space(false),
                        other => Node::Char(other),
                    }
                }
                b'[' => {
                    let start = i;
                    let inverted = p.get(i + 1) == Some(&b'^');
                    if inverted {
                        i += 1;
                    }
                    let mut set = vec![0u8];
                    loop {
                        i += 1;
                        match p.get(i) {
                            None => return Err(RegexError::UnterminatedClass(start)),
                            Some(b']') => break,
                            Some(b'\\') => {
                                if ccl_idx >= CCL_BUF - 1 {
                                    return Err(RegexError::ClassesTooLong);
                                }
                                set.push(b'\\');
                                ccl_idx += 1;
                                i += 1;
                                let Some(&e) = p.get(i) else {
                                    return Err(RegexError::UnterminatedClass(start));
                                };
                                set.push(e);
                                ccl_idx += 1;
                            }
                            Some(&b) => {
                                if ccl_idx >= CCL_BUF {
                                    return Err(RegexError::ClassesTooLong);
                                }
                                set.push(b);
                                ccl_idx += 1;
                            }
                        }
                    }
                    if ccl_idx >= CCL_BUF {
                        return Err(RegexError::ClassesTooLong);
                    }
                    ccl_idx += 1;
                    set.push(0);
                    Node::Class {
                        inverted,
                        set: set.into_boxed_slice(),
                    }
                }
                other => Node::Char(other),
            };
            nodes.push(node);
            i += 1;
        }
        Ok(Self {
            source: pattern.to_owned(),
            nodes,
        })
    }

    /// The expression as written.
    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Does this expression allow the community `name` (C semantics: first
    /// match at position 0, covering the whole name)? A NUL byte ends the
    /// name like in C; empty names and names longer than [`MAX_NAME`] bytes
    /// are never allowed.
    pub fn is_full_match(&self, name: &[u8]) -> bool {
        let len = name.iter().position(|&b| b == 0).unwrap_or(name.len());
        let text = &name[..len];
        if text.is_empty() || text.len() > MAX_NAME {
            return false;
        }
        let mut memo: Memo = [[0; MAX_NAME + 1]; MAX_ELEMENTS + 2];
        self.match_from(0, 0, text, &mut memo) == Some(text.len())
    }

    fn node(&self, i: usize) -> Option<&Node> {
        self.nodes.get(i)
    }

    fn quant_at(&self, i: usize) -> Option<Quant> {
        match self.nodes.get(i) {
            Some(Node::Quant(q)) => Some(*q),
            _ => None,
        }
    }

    /// C's `matchpattern(&pattern[pi], &text[ti])`: the end position of
    /// the first successful path, memoised per (pi, ti).
    fn match_from(&self, pi: usize, ti: usize, text: &[u8], memo: &mut Memo) -> Option<usize> {
        let slot = memo
            .get(pi)
            .and_then(|row| row.get(ti))
            .copied()
            .unwrap_or(0);
        match slot {
            0 => {}
            1 => return None,
            end => return Some(usize::from(end) - 2),
        }
        let result = self.match_from_uncached(pi, ti, text, memo);
        if let Some(cell) = memo.get_mut(pi).and_then(|row| row.get_mut(ti)) {
            *cell = match result {
                None => 1,
                // end <= text.len() <= MAX_NAME, so end + 2 fits in a u8.
                Some(end) => u8::try_from(end + 2).unwrap_or(1),
            };
        }
        result
    }

    fn match_from_uncached(
        &self,
        mut pi: usize,
        mut ti: usize,
        text: &[u8],
        memo: &mut Memo,
    ) -> Option<usize> {
        loop {
            let Some(node) = self.node(pi) else {
                // End of the expression: success.
                return Some(ti);
            };
            match self.quant_at(pi + 1) {
                Some(Quant::Question) => {
                    // Lazy: first without consuming.
                    if let Some(end) = self.match_from(pi + 2, ti, text, memo) {
                        return Some(end);
                    }
                    return match text.get(ti) {
                        Some(&c) if node.matches(c) => self.match_from(pi + 2, ti + 1, text, memo),
                        _ => None,
                    };
                }
                Some(q @ (Quant::Star | Quant::Plus)) => {
                    let mut end = ti;
                    while end < text.len() && text.get(end).is_some_and(|&c| node.matches(c)) {
                        end += 1;
                    }
                    let min = if q == Quant::Plus { ti + 1 } else { ti };
                    let mut k = end;
                    while k >= min {
                        if let Some(e) = self.match_from(pi + 2, k, text, memo) {
                            return Some(e);
                        }
                        if k == 0 {
                            break;
                        }
                        k -= 1;
                    }
                    return None;
                }
                None => match text.get(ti) {
                    Some(&c) if node.matches(c) => {
                        pi += 1;
                        ti += 1;
                    }
                    _ => return None,
                },
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(p: &str, s: &str) -> bool {
        Regex::new(p).unwrap().is_full_match(s.as_bytes())
    }

    #[test]
    fn detects_regex_tokens() {
        for t in ["ntop[0-1][0-9]", ".*", "a+", "b?", "x\\d", "a]"] {
            assert!(is_regex(t), "{t}");
        }
        for t in ["mynetwork", "home", "a^b$", "net-leo_1"] {
            assert!(!is_regex(t), "{t}");
        }
    }

    #[test]
    fn ntop_example() {
        let re = Regex::new("ntop[0-1][0-9]").unwrap();
        for i in 0..20 {
            assert!(re.is_full_match(format!("ntop{i:02}").as_bytes()), "{i}");
        }
        for bad in [
            "ntop20", "ntop1", "ntop001", "xntop01", "ntop0a", "NTOP01", "",
        ] {
            assert!(!re.is_full_match(bad.as_bytes()), "{bad}");
        }
    }

    #[test]
    fn dot_star_allows_everything_nonempty() {
        for s in ["a", "anything", "with space", "x.y*z", "ünï"] {
            assert!(m(".*", s), "{s}");
        }
        assert!(!m(".*", ""));
        assert!(!m(".*", "line\nbreak"));
    }

    #[test]
    fn must_cover_whole_name_and_start_at_zero() {
        assert!(!m("net", "mynet"));
        assert!(m("net.*", "network"));
        assert!(!m("net.*", "mynetwork"));
        assert!(!m("a.c", "abcd"));
        assert!(m("a.c", "abc"));
        // The name is its bytes up to the first NUL, like the C string.
        assert!(Regex::new("ab.").unwrap().is_full_match(b"abc\0\0\0"));
    }

    #[test]
    fn quantifiers() {
        assert!(m("ab+c", "abbbc"));
        assert!(!m("ab+c", "ac"));
        assert!(m("ab*c", "ac"));
        assert!(m("a?b", "ab"));
        assert!(m("a?b", "b"));
        // Greedy star with backtracking.
        assert!(m("a*ab", "aaab"));
        assert!(m(".*x", "abcx"));
        assert!(m("[a-z]+[0-9]+", "abc123"));
    }

    #[test]
    fn lazy_question_quirk_of_c() {
        // C's '?' tries zero first and the search stops at the first success:
        // "ab?" matches only "a" of "ab", so "ab" is not allowed.
        assert!(!m("ab?", "ab"));
        assert!(m("ab?", "a"));
        // A following element forces the longer path.
        assert!(m("ab?c", "abc"));
    }

    #[test]
    fn classes_and_escapes() {
        assert!(m("[abc]x", "bx"));
        assert!(!m("[abc]x", "dx"));
        assert!(m("[a-]", "-"));
        assert!(m("[-a]", "-"));
        assert!(!m("[a-c]", "-"));
        assert!(m("[^abc]", "d"));
        assert!(!m("[^abc]", "a"));
        assert!(m("\\d\\d", "42"));
        assert!(!m("\\d", "x"));
        assert!(m("\\D", "x"));
        assert!(m("\\w+", "a_Z9"));
        assert!(!m("\\w", "-"));
        assert!(m("\\W", "-"));
        assert!(m("a\\sb", "a b"));
        assert!(m("\\S+", "abc"));
        assert!(m("a\\.b", "a.b"));
        assert!(!m("a\\.b", "axb"));
        assert!(m("[\\d_]+", "1_2"));
        assert!(m("[\\]]", "]"));
        // '^' and '$' are plain characters.
        assert!(m("^a.$", "^ab$"));
        assert!(!m("^a.", "ab"));
    }

    #[test]
    fn signed_char_ranges_like_c() {
        // C compares signed chars: bytes >= 0x80 are below 'a'.
        let re = Regex::new("[a-z]").unwrap();
        assert!(!re.is_full_match(&[0xe9]));
        assert!(Regex::new(".").unwrap().is_full_match(&[0xe9]));
    }

    #[test]
    fn refuses_what_c_would_garble() {
        assert_eq!(Regex::new("*a"), Err(RegexError::NothingToRepeat('*', 0)));
        assert_eq!(Regex::new("a**"), Err(RegexError::NothingToRepeat('*', 2)));
        assert_eq!(Regex::new("a*?"), Err(RegexError::NothingToRepeat('?', 2)));
        assert_eq!(Regex::new("a\\"), Err(RegexError::TrailingBackslash));
        assert_eq!(Regex::new("a[bc"), Err(RegexError::UnterminatedClass(1)));
        assert_eq!(Regex::new("a[b\\"), Err(RegexError::UnterminatedClass(1)));
        assert_eq!(Regex::new(""), Err(RegexError::Empty));
        assert_eq!(Regex::new(&"a".repeat(30)), Err(RegexError::TooLong));
        assert!(Regex::new(&"a".repeat(29)).is_ok());
        // 38 class bytes + terminator fit C's buffer, 39 do not.
        assert!(Regex::new(&format!("[{}]", "a".repeat(38))).is_ok());
        assert_eq!(
            Regex::new(&format!("[{}]", "a".repeat(39))),
            Err(RegexError::ClassesTooLong)
        );
        assert_eq!(
            Regex::new(&format!("[{}][{}]", "a".repeat(20), "b".repeat(18))),
            Err(RegexError::ClassesTooLong)
        );
    }

    #[test]
    fn hostile_patterns_are_bounded() {
        // Naive backtracking would need ~C(140,14) steps here.
        let p = "a*".repeat(14) + "b";
        let re = Regex::new(&p).unwrap();
        let name = vec![b'a'; MAX_NAME];
        let t = std::time::Instant::now();
        for _ in 0..10 {
            assert!(!re.is_full_match(&name));
        }
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
        let re = Regex::new(&".*".repeat(14)).unwrap();
        assert!(re.is_full_match(&name));
        assert!(!re.is_full_match(&[b'a'; MAX_NAME + 1]));
    }

    /// Straight port of C's recursive search without memoisation, for
    /// cross-checking on small inputs.
    fn reference(nodes: &[Node], text: &[u8]) -> Option<usize> {
        fn mp(n: &[Node], t: &[u8], ti: usize) -> Option<usize> {
            let Some(node) = n.first() else {
                return Some(ti);
            };
            match n.get(1) {
                Some(Node::Quant(Quant::Question)) => mp(&n[2..], t, ti).or_else(|| {
                    t.get(ti)
                        .filter(|&&c| node.matches(c))
                        .and_then(|_| mp(&n[2..], t, ti + 1))
                }),
                Some(Node::Quant(q)) => {
                    let mut end = ti;
                    while end < t.len() && node.matches(t[end]) {
                        end += 1;
                    }
                    let min = if *q == Quant::Plus { ti + 1 } else { ti };
                    (min..=end).rev().find_map(|k| mp(&n[2..], t, k))
                }
                _ => t
                    .get(ti)
                    .filter(|&&c| node.matches(c))
                    .and_then(|_| mp(&n[1..], t, ti + 1)),
            }
        }
        mp(nodes, text, 0)
    }

    #[test]
    fn memoised_search_equals_plain_backtracking() {
        // Deterministic pseudo-random patterns and names over a small alphabet.
        let atoms = ["a", "b", ".", "[ab]", "[^a]", "\\d", "1"];
        let quants = ["", "", "*", "+", "?"];
        let mut x: u64 = 0x1234_5678_9abc_def1;
        let mut next = |n: usize| {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            (x % n as u64) as usize
        };
        let mut agree = 0;
        for _ in 0..3000 {
            let mut p = String::new();
            for _ in 0..(1 + next(5)) {
                p.push_str(atoms[next(atoms.len())]);
                p.push_str(quants[next(quants.len())]);
            }
            let re = Regex::new(&p).unwrap();
            let name: Vec<u8> = (0..(1 + next(6))).map(|_| b"ab1"[next(3)]).collect();
            let want = reference(&re.nodes, &name) == Some(name.len());
            assert_eq!(re.is_full_match(&name), want, "{p} vs {name:?}");
            agree += usize::from(want);
        }
        // The generator must produce both outcomes.
        assert!(agree > 100 && agree < 2900, "{agree}");
    }
}
