//! The tuning cache's JSON, `{"version": N, "entries": {"KEY": "VARIANT", ...}}`, written and
//! read by hand so that the library needs no JSON crate: only that shape of document is accepted.

use std::collections::BTreeMap;

/// Laid out as `serde_json::to_string_pretty` laid it out (two-space indents, keys sorted:
/// `entries` before `version`), so caches written before and after compare equal.
pub fn write(version: u64, entries: &BTreeMap<String, String>) -> String {
    let mut out = String::from("{\n  \"entries\": {");
    for (i, (key, value)) in entries.iter().enumerate() {
        out.push_str(if i == 0 { "\n    " } else { ",\n    " });
        string(&mut out, key);
        out.push_str(": ");
        string(&mut out, value);
    }
    if !entries.is_empty() {
        out.push_str("\n  ");
    }
    out.push_str(&format!("}},\n  \"version\": {version}\n}}"));
    out
}

/// A JSON string literal, with serde_json's escapes: the short forms where JSON has them,
/// `\u00XX` for the other control characters, everything else as it is.
fn string(out: &mut String, s: &str) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            c if c < ' ' => out.push_str(&format!("\\u{:04x}", c as u32)),
            c => out.push(c),
        }
    }
    out.push('"');
}

/// What a cache file holds; either part may be missing, which the caller judges.
#[derive(Debug, PartialEq)]
pub struct Document {
    pub version: Option<u64>,
    pub entries: Option<BTreeMap<String, String>>,
}

/// The document's `version` (a non-negative integer) and `entries`. Any other key, value
/// type or stray character is an error saying where.
pub fn read(text: &str) -> Result<Document, String> {
    let mut p = Parser { text, pos: 0 };
    let (mut version, mut entries) = (None, None);
    p.object(&mut |p, key| match key.as_str() {
        "version" => {
            let number = p.number()?;
            let v = number
                .parse::<u64>()
                .map_err(|_| format!("version {number}, expected an unsigned integer"))?;
            version = Some(v);
            Ok(())
        }
        "entries" => {
            let mut map = BTreeMap::new();
            p.object(&mut |p, key| {
                let value = p.string()?;
                map.insert(key, value);
                Ok(())
            })?;
            entries = Some(map);
            Ok(())
        }
        other => Err(p.error(&format!("unexpected key {other:?}"))),
    })?;
    p.skip_whitespace();
    if p.pos < text.len() {
        return Err(p.error("trailing characters"));
    }
    Ok(Document { version, entries })
}

struct Parser<'a> {
    text: &'a str,
    pos: usize,
}

type Member<'f, 'a> = dyn FnMut(&mut Parser<'a>, String) -> Result<(), String> + 'f;

impl<'a> Parser<'a> {
    fn error(&self, what: &str) -> String {
        let before = &self.text[..self.pos];
        let line = before.matches('\n').count() + 1;
        let column = before.len() - before.rfind('\n').map_or(0, |i| i + 1) + 1;
        format!("{what} at line {line} column {column}")
    }

    fn peek(&self) -> Option<u8> {
        self.text.as_bytes().get(self.pos).copied()
    }

    fn skip_whitespace(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\t' | b'\n' | b'\r')) {
            self.pos += 1;
        }
    }

    fn expect(&mut self, byte: u8) -> Result<(), String> {
        self.skip_whitespace();
        if self.peek() == Some(byte) {
            self.pos += 1;
            Ok(())
        } else {
            Err(self.error(&format!("expected `{}`", byte as char)))
        }
    }

    /// `{ "key": value, ... }`, each value read by `member`, which is given the key.
    fn object(&mut self, member: &mut Member<'_, 'a>) -> Result<(), String> {
        self.expect(b'{')?;
        self.skip_whitespace();
        if self.peek() == Some(b'}') {
            self.pos += 1;
            return Ok(());
        }
        loop {
            let key = self.string()?;
            self.expect(b':')?;
            self.skip_whitespace();
            member(self, key)?;
            self.skip_whitespace();
            match self.peek() {
                Some(b',') => self.pos += 1,
                Some(b'}') => {
                    self.pos += 1;
                    return Ok(());
                }
                _ => return Err(self.error("expected `,` or `}`")),
            }
        }
    }

    fn string(&mut self) -> Result<String, String> {
        self.expect(b'"')?;
        let mut out = String::new();
        loop {
            let rest = &self.text[self.pos..];
            // Runs without quotes, escapes or control characters are copied whole.
            let run = rest
                .find(|c: char| c == '"' || c == '\\' || c < ' ')
                .ok_or_else(|| self.error("unterminated string"))?;
            out.push_str(&rest[..run]);
            self.pos += run;
            match self.peek() {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    out.push(self.escape()?);
                }
                _ => return Err(self.error("control character in a string")),
            }
        }
    }

    /// The character after a backslash; a UTF-16 surrogate pair is two `\u` escapes.
    fn escape(&mut self) -> Result<char, String> {
        let c = self
            .peek()
            .ok_or_else(|| self.error("unterminated string"))?;
        self.pos += 1;
        Ok(match c {
            b'"' => '"',
            b'\\' => '\\',
            b'/' => '/',
            b'b' => '\u{8}',
            b'f' => '\u{c}',
            b'n' => '\n',
            b'r' => '\r',
            b't' => '\t',
            b'u' => {
                let unit = self.hex4()?;
                let code = match unit {
                    0xd800..=0xdbff => {
                        if !self.text[self.pos..].starts_with("\\u") {
                            return Err(self.error("lone leading surrogate"));
                        }
                        self.pos += 2;
                        let low = self.hex4()?;
                        if !(0xdc00..=0xdfff).contains(&low) {
                            return Err(self.error("lone leading surrogate"));
                        }
                        0x10000 + ((unit - 0xd800) << 10) + (low - 0xdc00)
                    }
                    0xdc00..=0xdfff => return Err(self.error("lone trailing surrogate")),
                    unit => unit,
                };
                char::from_u32(code).ok_or_else(|| self.error("invalid \\u escape"))?
            }
            _ => {
                self.pos -= 1;
                return Err(self.error("invalid escape"));
            }
        })
    }

    fn hex4(&mut self) -> Result<u32, String> {
        let digits = self
            .text
            .get(self.pos..self.pos + 4)
            .filter(|d| d.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| self.error("expected 4 hex digits"))?;
        self.pos += 4;
        Ok(u32::from_str_radix(digits, 16).expect("4 hex digits"))
    }

    /// A JSON number, as its text: `-`, integer part, fraction and exponent as the grammar
    /// allows them.
    fn number(&mut self) -> Result<&'a str, String> {
        let start = self.pos;
        let digits = |p: &mut Self| {
            let from = p.pos;
            while p.peek().is_some_and(|b| b.is_ascii_digit()) {
                p.pos += 1;
            }
            p.pos > from
        };
        if self.peek() == Some(b'-') {
            self.pos += 1;
        }
        match self.peek() {
            // No leading zeros: what follows a `0` is not part of the number.
            Some(b'0') => self.pos += 1,
            Some(b'1'..=b'9') => {
                digits(self);
            }
            _ => {
                self.pos = start;
                return Err(self.error("expected a number"));
            }
        }
        if self.peek() == Some(b'.') {
            self.pos += 1;
            if !digits(self) {
                return Err(self.error("expected digits after `.`"));
            }
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.pos += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.pos += 1;
            }
            if !digits(self) {
                return Err(self.error("expected digits in the exponent"));
            }
        }
        Ok(&self.text[start..self.pos])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entries(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn doc(version: Option<u64>, entries: Option<BTreeMap<String, String>>) -> Document {
        Document { version, entries }
    }

    const AWKWARD: &[(&str, &str)] = &[
        (
            "llvmpipe (LLVM 15.0.6, 256 bits)|Mesa 22.3.6|dw|n1 c16->16 g1 Nchw",
            "subgroup",
        ),
        ("quotes \"here\" and 'there'", "direct"),
        ("back\\slash\\\\ and a trailing one\\", "packed8"),
        (
            "controls \n\r\t\u{8}\u{c}\u{1}\u{1f} and del \u{7f}",
            "tiled",
        ),
        ("unicode é ∑ 🦀 / slash", "depthwise"),
        ("", "direct"),
    ];

    #[test]
    fn awkward_keys_round_trip() {
        let map = entries(AWKWARD);
        let text = write(1, &map);
        assert_eq!(read(&text).unwrap(), doc(Some(1), Some(map)));
        let empty = BTreeMap::new();
        assert_eq!(read(&write(7, &empty)).unwrap(), doc(Some(7), Some(empty)));
    }

    /// The layout serde_json gave the file, byte for byte, and serde_json reads ours back.
    #[test]
    fn writes_what_serde_json_wrote() {
        for map in [entries(AWKWARD), entries(&AWKWARD[..1]), BTreeMap::new()] {
            let json = serde_json::json!({ "version": 1, "entries": map });
            let theirs = serde_json::to_string_pretty(&json).unwrap();
            assert_eq!(write(1, &map), theirs);
            let back: serde_json::Value = serde_json::from_str(&write(1, &map)).unwrap();
            assert_eq!(back, json);
        }
    }

    /// Other writers' spellings of the same document: key order, spacing, every escape.
    #[test]
    fn reads_any_valid_spelling() {
        let text = " {\"entries\":{\"a\\u0041\\/\\ud83e\\udd80\\\"\":\"direct\" , \"b\":\"tiled\"},\r\n\t\"version\" : 1 } \n";
        let want = entries(&[("aA/🦀\"", "direct"), ("b", "tiled")]);
        assert_eq!(read(text).unwrap(), doc(Some(1), Some(want)));
        assert_eq!(read("{\"version\": 3}").unwrap(), doc(Some(3), None));
        assert_eq!(read("{}").unwrap(), doc(None, None));
    }

    /// A file that is not a cache is an `Err` naming it; a missing one is an empty cache.
    #[test]
    fn the_tuner_names_a_file_it_cannot_read() {
        let dir = std::env::temp_dir();
        let path = dir.join(format!("wgconv-tune-json-{}.json", std::process::id()));
        for (text, why) in [
            (
                "{\"version\": 1, \"entries\": {\"k\": \"dir",
                "unterminated string",
            ),
            ("{\"version\": 2, \"entries\": {}}", "version 2, expected 1"),
            ("{\"version\": 1}", "no \"entries\" object"),
            (
                "{\"version\": 1, \"entries\": {\"k\": \"warp9\"}}",
                "\"warp9\"",
            ),
        ] {
            std::fs::write(&path, text).unwrap();
            let e = crate::gpu::conv2d::tune::Tuner::open(&path)
                .unwrap_err()
                .to_string();
            assert!(
                e.contains(&path.display().to_string()) && e.contains(why),
                "{e}"
            );
        }
        std::fs::write(&path, write(1, &entries(&[("k", "direct")]))).unwrap();
        let tuner = crate::gpu::conv2d::tune::Tuner::open(&path).unwrap();
        assert_eq!(tuner.cached("k").map(|v| v.name()), Some("direct"));
        std::fs::remove_file(&path).unwrap();
        let tuner = crate::gpu::conv2d::tune::Tuner::open(&path).unwrap();
        assert!(tuner.cached("k").is_none());
    }

    #[test]
    fn rejects_what_is_not_that_document() {
        for (text, why) in [
            ("", "expected `{` at line 1 column 1"),
            ("{\"entries\": {}", "expected `,` or `}`"),
            (
                "{\"version\": 1} x",
                "trailing characters at line 1 column 16",
            ),
            ("{\"version\": 1.5}", "version 1.5"),
            ("{\"version\": -1}", "version -1"),
            ("{\"version\": 01}", "expected `,` or `}`"),
            ("{\"version\": \"1\"}", "expected a number"),
            ("{\"entries\": {\"k\": 1}}", "expected `\"`"),
            ("{\"entries\": []}", "expected `{`"),
            ("{\"other\": 1}", "unexpected key \"other\""),
            ("{\"entries\": {\"a\nb\": \"direct\"}}", "control character"),
            (
                "{\"entries\": {\"\\ud800\": \"direct\"}}",
                "lone leading surrogate",
            ),
            (
                "{\"entries\": {\"\\udc00\": \"direct\"}}",
                "lone trailing surrogate",
            ),
            ("{\"entries\": {\"\\u12\": \"direct\"}}", "4 hex digits"),
            ("{\"entries\": {\"\\x\": \"direct\"}}", "invalid escape"),
            ("{\"entries\": {\"k\": \"direct", "unterminated string"),
            (
                "{\n  \"version\": 1,\n  \"entries\": {\"k\" \"v\"}}",
                "expected `:` at line 3 column 19",
            ),
        ] {
            let e = read(text).unwrap_err();
            assert!(e.contains(why), "{text:?}: {e}");
        }
    }
}
