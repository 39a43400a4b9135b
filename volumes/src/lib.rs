//! Volume drivers, configs and secrets. Not built yet.
