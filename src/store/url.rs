//! Database URLs made fit to show: every password removed, whatever the URL's shape.
//!
//! A URL is masked before anything parses it, because the URLs that fail to parse (a port that is
//! not a number, a broken IPv6 literal, a password with an unencoded `/` or `#`) are exactly the
//! ones that end up quoted in an error message. The masking is textual and errs on the side of
//! hiding too much: the user-info is everything up to the *last* `@`, and a password given as a
//! query parameter (`?password=`, `sslpassword=`) is hidden as well.

/// What replaces a password.
const MASK: &str = "***";

/// Query parameters whose value is a password.
const PASSWORD_PARAMS: &[&str] = &["password", "pass", "passwd", "pwd", "sslpassword"];

/// Where the password parts of a URL are, as byte ranges of it (not overlapping, in order).
fn password_ranges(url: &str) -> Vec<std::ops::Range<usize>> {
    let mut ranges = Vec::new();
    // The authority starts after `scheme://`, or after `scheme:` in a URL without slashes.
    let authority = match url.find("://") {
        Some(i) => i + 3,
        None => url.find(':').map_or(0, |i| i + 1),
    };
    let rest = &url[authority..];
    let mut query_from = authority;
    if let Some(at) = rest.rfind('@') {
        let userinfo = &rest[..at];
        if let Some(colon) = userinfo.find(':') {
            ranges.push(authority + colon + 1..authority + at);
        }
        query_from = authority + at + 1;
    }
    // Query parameters: anything after a `?` past the user-info, split on `&` and `;`.
    if let Some(q) = url[query_from..].find('?') {
        let query_start = query_from + q + 1;
        let query_end = url[query_start..]
            .find('#')
            .map_or(url.len(), |h| query_start + h);
        let mut start = query_start;
        for part in url[query_start..query_end].split(['&', ';']) {
            if let Some((name, value)) = part.split_once('=') {
                let name = percent_decode(name).to_ascii_lowercase();
                if PASSWORD_PARAMS.contains(&name.trim()) && !value.is_empty() {
                    let value_start = start + part.len() - value.len();
                    ranges.push(value_start..start + part.len());
                }
            }
            start += part.len() + 1;
        }
    }
    ranges
}

/// `url` with every password replaced by `***`, for messages. Works on any text, URL or not.
pub fn redact_url(url: &str) -> String {
    let mut shown = String::with_capacity(url.len());
    let mut last = 0;
    for range in password_ranges(url) {
        shown.push_str(&url[last..range.start]);
        shown.push_str(MASK);
        last = range.end;
    }
    shown.push_str(&url[last..]);
    shown
}

/// The passwords a URL holds (as written and percent-decoded), to scrub from driver messages
/// that might quote them. `Debug` shows how many, never which.
#[derive(Clone, Default)]
pub struct UrlSecrets(Vec<String>);

impl std::fmt::Debug for UrlSecrets {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "UrlSecrets([{} redacted])", self.0.len())
    }
}

impl UrlSecrets {
    /// The passwords in `url`.
    pub fn of(url: &str) -> Self {
        let mut secrets = Vec::new();
        for range in password_ranges(url) {
            let raw = &url[range];
            let decoded = percent_decode(raw);
            if decoded != raw && !decoded.is_empty() {
                secrets.push(decoded);
            }
            secrets.push(raw.to_owned());
        }
        // Longest first, so that a password containing another is replaced whole.
        secrets.sort_by_key(|s| std::cmp::Reverse(s.len()));
        Self(secrets)
    }

    /// `text` with every occurrence of a password replaced by `***`.
    pub fn scrub(&self, text: &str) -> String {
        self.0
            .iter()
            .fold(text.to_owned(), |text, secret| text.replace(secret, MASK))
    }
}

/// `%XX` decoded (invalid sequences kept as written; invalid UTF-8 replaced).
fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let hex = |b: u8| char::from(b).to_digit(16);
        if bytes[i] == b'%' && i + 2 < bytes.len() {
            if let (Some(h), Some(l)) = (hex(bytes[i + 1]), hex(bytes[i + 2])) {
                out.push(u8::try_from(h * 16 + l).unwrap_or(b'?'));
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_are_masked_whatever_the_shape() {
        for (url, shown) in [
            (
                "postgres://u:SECRET@127.0.0.1:5432/db",
                "postgres://u:***@127.0.0.1:5432/db",
            ),
            (
                "postgres://u:SECRET@host:notaport/db",
                "postgres://u:***@host:notaport/db",
            ),
            ("postgres://u:SECRET@[::1/db", "postgres://u:***@[::1/db"),
            ("postgres://u:SE/CR#ET@host/db", "postgres://u:***@host/db"),
            ("postgres://u:SE@CRET@host/db", "postgres://u:***@host/db"),
            (
                "postgres://u@host/db?password=SECRET&sslmode=disable",
                "postgres://u@host/db?password=***&sslmode=disable",
            ),
            (
                "postgres://host/db?sslmode=disable&PassWord=SECRET#x",
                "postgres://host/db?sslmode=disable&PassWord=***#x",
            ),
            (
                "sqlite://user:SECRET@host/x.db",
                "sqlite://user:***@host/x.db",
            ),
            ("postgres:u:SECRET@host", "postgres:u:***@host"),
            ("sqlite:///tmp/a@b/x.db", "sqlite:///tmp/a@b/x.db"),
            ("sqlite::memory:", "sqlite::memory:"),
            ("postgres://u@host/db", "postgres://u@host/db"),
        ] {
            assert_eq!(redact_url(url), shown, "{url}");
            assert!(!redact_url(url).contains("SECRET"));
        }
    }

    #[test]
    fn secrets_are_scrubbed_from_any_text_as_written_and_decoded() {
        let secrets = UrlSecrets::of("postgres://u:S%40CRET@host/db?sslpassword=OTHER");
        let text = "cannot open u:S%40CRET and S@CRET with OTHER";
        assert_eq!(secrets.scrub(text), "cannot open u:*** and *** with ***");
        assert!(!format!("{secrets:?}").contains("CRET"));
    }
}
