//! Globs (`claude-*`, `gpt-4?`): the model patterns of `options.serves` and of prices.

use regex::Regex;

/// Compiles a glob (`claude-*`, `gpt-4?`) into an anchored regex.
pub fn glob(pattern: &str) -> Regex {
    let mut re = String::from("^");
    for c in pattern.chars() {
        match c {
            '*' => re.push_str(".*"),
            '?' => re.push('.'),
            c => re.push_str(&regex::escape(&c.to_string())),
        }
    }
    re.push('$');
    Regex::new(&re).expect("an escaped glob is a valid regex")
}
