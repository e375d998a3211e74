//! Where the CLI finds the gateway and its credentials: flags, then `PROMPTGATE_*` variables
//! (clap reads both), then the profile file `~/.config/promptgate/config.toml`.
//!
//! The profile holds a client secret, so like ssh the CLI refuses one that other users can
//! read: it must be mode 0600 (or stricter).

use std::path::PathBuf;

use anyhow::{Context, bail};
use serde::Deserialize;

/// The profile file's keys.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Profile {
    /// The gateway URL.
    pub url: Option<String>,
    /// The OAuth client id.
    pub client_id: Option<String>,
    /// The OAuth client secret.
    pub client_secret: Option<String>,
}

/// `$XDG_CONFIG_HOME/promptgate/config.toml`, else `$HOME/.config/promptgate/config.toml`.
pub fn profile_path() -> Option<PathBuf> {
    let base = std::env::var_os("XDG_CONFIG_HOME")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))?;
    Some(base.join("promptgate").join("config.toml"))
}

/// Reads the profile if it exists.
pub fn load() -> anyhow::Result<Profile> {
    let Some(path) = profile_path() else {
        return Ok(Profile::default());
    };
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Profile::default()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&path)?.permissions().mode() & 0o777;
        if mode & 0o077 != 0 {
            bail!(
                "{} holds a client secret but is readable by others (mode {mode:o}); run: chmod 600 {}",
                path.display(),
                path.display()
            );
        }
    }
    toml::from_str(&text).with_context(|| format!("invalid profile {}", path.display()))
}
