//! Which device the stages run the model on: `--device cpu|cuda|cuda:N`,
//! with `MTL_DEVICE` as the fallback when the flag is not given.
//!
//! CUDA needs the crates built with the `cuda` cargo feature (off by
//! default, so that a plain build needs no CUDA toolkit). Without it a CUDA
//! device is refused when the flag is parsed, with a message saying how to
//! rebuild, instead of failing later inside candle.

use std::fmt;
use std::str::FromStr;

use candle_core::Device;

use crate::error::{Error, Result};

/// The environment variable read when `--device` is not given.
pub const ENV: &str = "MTL_DEVICE";

/// A device named on the command line; [`DeviceSpec::open`] makes it.
///
/// `Copy` and cheap, so run options can carry it; the CUDA context is only
/// created when a stage actually runs (a cached stage never opens it).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceSpec {
    #[default]
    Cpu,
    /// A CUDA GPU by ordinal (`cuda` is `cuda:0`).
    Cuda(usize),
}

impl DeviceSpec {
    /// The candle device: for CUDA, a context on that GPU.
    pub fn open(self) -> Result<Device> {
        match self {
            DeviceSpec::Cpu => Ok(Device::Cpu),
            DeviceSpec::Cuda(n) => {
                if !cfg!(feature = "cuda") {
                    return Err(no_cuda());
                }
                Device::new_cuda(n).map_err(|e| {
                    Error::Invalid(format!("--device cuda:{n}: cannot open the GPU: {e}"))
                })
            }
        }
    }

    /// The `--device` value if given, else `$MTL_DEVICE` if set and not
    /// empty, else the CPU.
    pub fn from_flag_or_env(flag: Option<&str>) -> Result<DeviceSpec> {
        Self::from_flag_or(flag, std::env::var(ENV).ok().as_deref())
    }

    /// [`DeviceSpec::from_flag_or_env`] with the variable's value given.
    fn from_flag_or(flag: Option<&str>, env: Option<&str>) -> Result<DeviceSpec> {
        match (flag, env) {
            (Some(s), _) => s.parse(),
            (None, Some(s)) if !s.trim().is_empty() => s
                .parse()
                .map_err(|e: Error| Error::Invalid(format!("{ENV}: {e}"))),
            _ => Ok(DeviceSpec::Cpu),
        }
    }
}

fn no_cuda() -> Error {
    Error::Invalid(
        "this binary was built without the `cuda` feature; rebuild with `--features cuda`".into(),
    )
}

impl FromStr for DeviceSpec {
    type Err = Error;

    /// `cpu`, `cuda` (GPU 0) or `cuda:N`, case-insensitive. CUDA is an
    /// error in a build without the `cuda` feature.
    fn from_str(s: &str) -> Result<DeviceSpec> {
        let v = s.trim().to_ascii_lowercase();
        let bad = || {
            Error::Invalid(format!(
                "--device `{s}` is not a device; use `cpu`, `cuda` or `cuda:N` (N = GPU ordinal)"
            ))
        };
        let spec = match v.as_str() {
            "cpu" => DeviceSpec::Cpu,
            "cuda" => DeviceSpec::Cuda(0),
            _ => match v.strip_prefix("cuda:") {
                Some(n) => DeviceSpec::Cuda(n.parse().map_err(|_| bad())?),
                None => return Err(bad()),
            },
        };
        if matches!(spec, DeviceSpec::Cuda(_)) && !cfg!(feature = "cuda") {
            return Err(no_cuda());
        }
        Ok(spec)
    }
}

impl fmt::Display for DeviceSpec {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            DeviceSpec::Cpu => f.write_str("cpu"),
            DeviceSpec::Cuda(n) => write!(f, "cuda:{n}"),
        }
    }
}

/// Parses a `--device` value and opens the device.
pub fn parse(s: &str) -> Result<Device> {
    s.parse::<DeviceSpec>()?.open()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cpu_parses_in_any_case_and_opens() {
        for s in ["cpu", "CPU", " cpu "] {
            assert_eq!(s.parse::<DeviceSpec>().unwrap(), DeviceSpec::Cpu);
        }
        assert!(matches!(parse("cpu").unwrap(), Device::Cpu));
        assert_eq!(DeviceSpec::default().to_string(), "cpu");
    }

    #[test]
    fn unknown_values_name_the_flag_value() {
        for s in ["gpu", "cuda:", "cuda:x", "cuda:-1", "cuda1", "", "metal"] {
            let err = s.parse::<DeviceSpec>().unwrap_err().to_string();
            assert!(
                err.contains(&format!("--device `{s}`")) && err.contains("cuda:N"),
                "{s}: {err}"
            );
        }
    }

    #[cfg(not(feature = "cuda"))]
    #[test]
    fn cuda_without_the_feature_says_how_to_rebuild() {
        for s in ["cuda", "cuda:0", "CUDA:1"] {
            let err = s.parse::<DeviceSpec>().unwrap_err().to_string();
            assert_eq!(
                err,
                "this binary was built without the `cuda` feature; rebuild with `--features cuda`"
            );
            assert!(parse(s).is_err());
        }
        // A spec made in code is refused when opened, too.
        assert!(DeviceSpec::Cuda(0).open().is_err());
    }

    #[cfg(feature = "cuda")]
    #[test]
    fn cuda_ordinals_parse_with_the_feature() {
        assert_eq!("cuda".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(0));
        assert_eq!("cuda:1".parse::<DeviceSpec>().unwrap(), DeviceSpec::Cuda(1));
        assert_eq!(DeviceSpec::Cuda(1).to_string(), "cuda:1");
    }

    #[test]
    fn the_flag_wins_over_the_environment() {
        let pick = DeviceSpec::from_flag_or;
        assert_eq!(pick(Some("cpu"), Some("tpu")).unwrap(), DeviceSpec::Cpu);
        assert_eq!(pick(None, None).unwrap(), DeviceSpec::Cpu);
        assert_eq!(pick(None, Some(" ")).unwrap(), DeviceSpec::Cpu);
        assert_eq!(pick(None, Some("cpu")).unwrap(), DeviceSpec::Cpu);
        let err = pick(Some("tpu"), None).unwrap_err().to_string();
        assert!(err.contains("`tpu`"), "{err}");
        let err = pick(None, Some("tpu")).unwrap_err().to_string();
        assert!(err.starts_with("MTL_DEVICE: --device `tpu`"), "{err}");
    }
}
