//! The names of the dialect's wire that are data (`dialects/messages.yaml`): the headers its
//! clients send, which carry the name of the API's maker.

use std::sync::LazyLock;

use serde::Deserialize;

/// The dialect's header names.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Wire {
    /// Required on every request.
    pub version_header: String,
    /// The comma-separated beta flags a client asks for.
    pub beta_header: String,
}

/// The dialect's wire names, read once from the file built into the binary.
pub fn wire() -> &'static Wire {
    static WIRE: LazyLock<Wire> = LazyLock::new(|| {
        serde_yaml::from_str(include_str!("../../../dialects/messages.yaml"))
            .expect("dialects/messages.yaml is valid")
    });
    &WIRE
}

#[cfg(test)]
mod tests {
    #[test]
    fn the_wire_names_load() {
        let w = super::wire();
        assert!(w.version_header.ends_with("-version"));
        assert!(w.beta_header.ends_with("-beta"));
    }
}
