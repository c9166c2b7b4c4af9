//! Sensor configuration compiled in by build.rs from `firmware/sensor.toml`
//! (or the file named by `TMC_SENSOR_CONFIG`). An invalid file stops the
//! build with `error: sensor config <path>: field `<name>`: ...`.
include!(concat!(env!("OUT_DIR"), "/sensor_config.rs"));
