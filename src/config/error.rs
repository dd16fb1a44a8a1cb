//! What is wrong with a configuration file, for the edges to say with its path.

#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("config {path}: {problem}")]
    Invalid { path: String, problem: String },
    #[error("no config: give --config FILE or set HALLMARK_CONFIG")]
    Missing,
}
