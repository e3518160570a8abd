//! Layered settings: the built-in `config/default.toml`, an optional settings file, an
//! optional environment file, then `MDT__SECTION__KEY` variables. Owns nothing at run time;
//! the parsed [`Settings`] are passed to whoever needs them (no global configuration).

use std::path::{Path, PathBuf};

use secrecy::{ExposeSecret, SecretString};
use serde::Deserialize;

/// The defaults file, built into the binary so it runs from any working directory.
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

/// Every setting. No field has a serde default and unknown keys are refused, so
/// `config/default.toml` and this struct cannot drift apart without a test failing.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Settings {
    pub http: HttpSettings,
    pub database: DatabaseSettings,
    pub data: DataSettings,
    pub auth: AuthSettings,
    pub mail: MailSettings,
    pub letters: LetterSettings,
    pub supervision: SupervisionSettings,
    pub live: LiveSettings,
    pub media: MediaSettings,
    pub log: LogSettings,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HttpSettings {
    pub host: String,
    pub port: u16,
    pub workers: usize,
    pub public_origins: Vec<String>,
    pub trust_proxy_headers: bool,
    pub shutdown_timeout_seconds: u64,
    pub web_dir: PathBuf,
    pub json_limit_bytes: usize,
    pub send_buffer_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DatabaseSettings {
    /// May carry a password, so it is a secret.
    pub url: SecretString,
    pub max_connections: u32,
    pub busy_timeout_ms: u64,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DataSettings {
    pub dir: PathBuf,
    pub attachment_max_bytes: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuthSettings {
    pub jwt_secret: SecretString,
    pub jwt_key_id: String,
    pub issuer: String,
    pub audience: String,
    pub access_token_minutes: u32,
    pub refresh_token_days: u32,
    pub cookie_secure: bool,
    pub login_attempts_per_account_per_minute: u32,
    pub login_attempts_per_address_per_minute: u32,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MailSettings {
    pub transport: MailTransportKind,
    pub smtp_url: SecretString,
    pub from: String,
    pub poll_interval_ms: u64,
    pub retry_base_ms: u64,
    pub retry_max_seconds: u64,
    /// Domains to which identified letters may be emailed (e.g. `nhs.net`).
    pub secure_domains: Vec<String>,
}

/// The communication clocks after a signed outcome (see `config/default.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LetterSettings {
    /// Working days after the signing's day by whose end the referrer is informed.
    pub referrer_working_days: u32,
    /// Working days after the signing's day by whose end the patient's letter is sent.
    pub patient_working_days: u32,
}

/// The supervision record (issue 21; see `config/default.toml`).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SupervisionSettings {
    /// Most practitioners one supervisor supervises at a time.
    pub max_supervisees: u32,
    /// Workplace-based assessments a supervisee should have each month.
    pub monthly_assessment_target: u32,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MailTransportKind {
    File,
    Smtp,
}

/// The live meeting channel (see `config/default.toml` for each key).
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LiveSettings {
    pub ticket_seconds: u64,
    pub heartbeat_seconds: u64,
    pub client_timeout_seconds: u64,
    pub queue_capacity: usize,
    pub replay_limit: u64,
    pub poll_interval_ms: u64,
    pub instance_heartbeat_seconds: u64,
    pub room_idle_seconds: u64,
    pub max_message_bytes: usize,
    /// How long before its scheduled start a chair may open a meeting (`too_early`
    /// before that; a coordinator can move the session instead).
    pub open_early_minutes: u32,
    /// The agenda is published at least this many hours before the meeting.
    pub publish_hours_before: u32,
}

/// The SFU's sockets and what browsers are told about ICE.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MediaSettings {
    /// The address media sockets bind to.
    pub udp_host: String,
    /// Inclusive UDP port range for media sockets; `0`–`0` picks ephemeral ports.
    pub udp_port_min: u16,
    pub udp_port_max: u16,
    /// The public address announced instead of `udp_host` (1:1 NAT); empty for none.
    pub public_ip: String,
    /// STUN/TURN URLs handed to browsers.
    pub ice_servers: Vec<String>,
    /// Shared secret for time-limited TURN credentials (the TURN REST scheme); empty
    /// for none.
    pub turn_secret: SecretString,
    pub turn_credential_seconds: u64,
    /// Shortest gap between two keyframe requests sent to a publisher.
    pub keyframe_request_ms: u64,
    /// Packets of the latest keyframe (and what follows it) kept to start late joiners.
    pub keyframe_cache_packets: usize,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct LogSettings {
    pub filter: String,
    pub format: LogFormat,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LogFormat {
    Pretty,
    Json,
}

/// Why settings could not be loaded; printed as one line at start-up.
#[derive(Debug, thiserror::Error)]
pub enum SettingsError {
    #[error("cannot read environment file {path}: {source}")]
    EnvFile { path: PathBuf, source: dotenvy::Error },
    #[error("invalid settings: {0}")]
    Invalid(#[from] config::ConfigError),
    #[error("invalid settings: {0}")]
    Rule(String),
}

impl Settings {
    /// The built-in defaults alone (what tests start from).
    pub fn defaults() -> Result<Self, SettingsError> {
        Self::build(None, false)
    }

    /// Full layering for the binary: defaults, optional settings file, environment file,
    /// then `MDT__…` variables.
    pub fn load(settings_file: Option<&Path>) -> Result<Self, SettingsError> {
        load_env_file()?;
        Self::build(settings_file, true)
    }

    fn build(settings_file: Option<&Path>, with_env: bool) -> Result<Self, SettingsError> {
        let mut builder = config::Config::builder()
            .add_source(config::File::from_str(DEFAULT_TOML, config::FileFormat::Toml));
        if let Some(path) = settings_file {
            builder = builder.add_source(config::File::from(path).required(true));
        }
        if with_env {
            builder = builder.add_source(
                config::Environment::with_prefix("MDT")
                    .prefix_separator("__")
                    .separator("__")
                    .try_parsing(true)
                    .list_separator(",")
                    .with_list_parse_key("http.public_origins")
                    .with_list_parse_key("mail.secure_domains"),
            );
        }
        let settings: Settings = builder.build()?.try_deserialize()?;
        settings.check()?;
        Ok(settings)
    }

    /// Rules that types alone cannot express.
    fn check(&self) -> Result<(), SettingsError> {
        let rule = |ok: bool, msg: &str| {
            if ok {
                Ok(())
            } else {
                Err(SettingsError::Rule(msg.to_string()))
            }
        };
        rule(
            (1..=15).contains(&self.auth.access_token_minutes),
            "auth.access_token_minutes must be between 1 and 15",
        )?;
        rule(self.auth.refresh_token_days >= 1, "auth.refresh_token_days must be at least 1")?;
        let secret = self.auth.jwt_secret.expose_secret();
        rule(
            secret.is_empty() || secret.len() >= 32,
            "auth.jwt_secret must be empty (development) or at least 32 bytes",
        )?;
        rule(
            self.auth.login_attempts_per_account_per_minute >= 1
                && self.auth.login_attempts_per_address_per_minute >= 1,
            "auth.login_attempts_* must be at least 1",
        )?;
        let live = &self.live;
        rule(
            (1..=300).contains(&live.ticket_seconds)
                && live.heartbeat_seconds >= 1
                && live.client_timeout_seconds > live.heartbeat_seconds
                && live.queue_capacity >= 8
                && live.poll_interval_ms >= 50
                && live.instance_heartbeat_seconds >= 1
                && live.max_message_bytes >= 1024,
            "live: ticket_seconds 1–300, client_timeout_seconds above heartbeat_seconds, \
             queue_capacity at least 8, poll_interval_ms at least 50, max_message_bytes at least 1024",
        )?;
        let media = &self.media;
        rule(
            media.udp_host.parse::<std::net::IpAddr>().is_ok()
                && media.udp_port_min <= media.udp_port_max
                && (media.udp_port_min == 0) == (media.udp_port_max == 0)
                && (media.public_ip.is_empty()
                    || media.public_ip.parse::<std::net::IpAddr>().is_ok())
                && media.turn_credential_seconds >= 60
                && media.keyframe_cache_packets <= 10_000,
            "media: udp_host and public_ip are IP addresses, udp_port_min..udp_port_max is \
             a range (both 0 for ephemeral ports), turn_credential_seconds at least 60, \
             keyframe_cache_packets at most 10000",
        )?;
        rule(
            self.mail.transport == MailTransportKind::File
                || !self.mail.smtp_url.expose_secret().is_empty(),
            "mail.smtp_url is required when mail.transport is smtp",
        )?;
        rule(
            self.mail.from.parse::<lettre::message::Mailbox>().is_ok(),
            "mail.from must be an email address, optionally with a display name",
        )?;
        rule(
            self.mail.poll_interval_ms >= 10 && self.mail.retry_base_ms >= 10,
            "mail.poll_interval_ms and mail.retry_base_ms must be at least 10",
        )?;
        rule(self.database.max_connections >= 1, "database.max_connections must be at least 1")
    }
}

/// Loads `MDT_ENV_FILE` if set (it must exist), else `.env` if present. Variables already
/// in the environment win over the file.
fn load_env_file() -> Result<(), SettingsError> {
    match std::env::var_os("MDT_ENV_FILE") {
        Some(path) => {
            let path = PathBuf::from(path);
            dotenvy::from_path(&path).map_err(|source| SettingsError::EnvFile { path, source })
        }
        None => match dotenvy::dotenv() {
            Ok(_) => Ok(()),
            Err(e) if e.not_found() => Ok(()),
            Err(source) => Err(SettingsError::EnvFile { path: PathBuf::from(".env"), source }),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every key in default.toml is a field, and every field has a key: `Settings` has no
    /// serde defaults and refuses unknown fields, so deserialising the file alone proves
    /// both directions. Parsing the file as TOML also proves each key carries a comment.
    #[test]
    fn default_toml_matches_settings_struct() {
        let settings: Settings = toml::from_str(DEFAULT_TOML).expect("default.toml drifted");
        settings.check().expect("defaults break a rule");
        let table: toml::Table = toml::from_str(DEFAULT_TOML).expect("toml");
        let mut previous = "";
        for line in DEFAULT_TOML.lines() {
            let line = line.trim();
            if line.contains('=') && !line.starts_with('#') {
                assert!(previous.starts_with('#'), "key without a comment: {line}");
            }
            if !line.is_empty() {
                previous = line;
            }
        }
        assert_eq!(table.len(), 10);
    }

    #[test]
    fn secrets_redact_in_debug() {
        let mut settings = Settings::defaults().expect("defaults");
        settings.auth.jwt_secret = SecretString::from("super-secret-signing-key-0123456789");
        settings.database.url = SecretString::from("postgres://mdt:hunter2@db/mdt");
        let shown = format!("{settings:?}");
        assert!(!shown.contains("super-secret"));
        assert!(!shown.contains("hunter2"));
    }

    #[test]
    fn short_jwt_secret_is_refused() {
        let mut settings = Settings::defaults().expect("defaults");
        settings.auth.jwt_secret = SecretString::from("short");
        assert!(settings.check().is_err());
    }
}
