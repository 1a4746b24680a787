//! Shared encoders: token ids in, one vector per position out.

pub mod bilstm;
pub mod lstm;

pub use bilstm::BiLstmEncoder;
