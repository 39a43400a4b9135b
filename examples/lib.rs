//! Example stacks a user can run. Each folder holds one project; the tests
//! below load and validate every one of them with the real loader.

/// Folders of the examples, relative to this crate.
pub const EXAMPLES: [&str; 5] = [
    "webapp",
    "worker-queue",
    "healthchain",
    "dev-override",
    "profiles",
];

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use rcompose_spec::{LoadOptions, load};

    fn load_example(dir: &str, profiles: &[&str]) -> rcompose_spec::Loaded {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join(dir);
        let opts = LoadOptions {
            working_dir: root,
            profiles: profiles.iter().map(|p| p.to_string()).collect(),
            ..LoadOptions::default()
        };
        load(&opts).unwrap_or_else(|e| panic!("example {dir} does not load:\n{e}"))
    }

    fn services(l: &rcompose_spec::Loaded) -> Vec<&str> {
        l.project.services.keys().map(String::as_str).collect()
    }

    #[test]
    fn every_example_folder_is_listed_and_loads() {
        let mut found: Vec<String> = std::fs::read_dir(env!("CARGO_MANIFEST_DIR"))
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.path().join("compose.yaml").exists())
            .map(|e| e.file_name().to_string_lossy().into_owned())
            .collect();
        found.sort();
        let mut listed: Vec<String> = super::EXAMPLES.iter().map(|s| s.to_string()).collect();
        listed.sort();
        assert_eq!(found, listed);
        for dir in super::EXAMPLES {
            assert!(
                !services(&load_example(dir, &[])).is_empty(),
                "{dir} has no services"
            );
        }
    }

    #[test]
    fn webapp_has_a_web_tier_a_database_and_a_cache() {
        let l = load_example("webapp", &[]);
        assert_eq!(services(&l), ["web", "db", "cache"]);
        assert_eq!(l.project.name.as_deref(), Some("webapp"));
    }

    #[test]
    fn the_dev_override_file_is_merged_automatically() {
        let l = load_example("dev-override", &[]);
        let json = serde_json::to_value(&l.project.services["api"]).unwrap();
        assert_eq!(json["environment"]["LOG_LEVEL"], "debug");
        assert_eq!(json["ports"].as_array().unwrap().len(), 2);
    }

    #[test]
    fn profiles_hide_optional_services_until_enabled() {
        assert_eq!(services(&load_example("profiles", &[])), ["app"]);
        assert_eq!(
            services(&load_example("profiles", &["debug"])),
            ["app", "shell"]
        );
        assert_eq!(
            services(&load_example("profiles", &["*"])),
            ["app", "shell", "metrics"]
        );
    }
}
