//! Test support (feature `testing`): a real registry server on loopback and a
//! busybox image built from the host's `busybox-static`, pushed to it.
//!
//! [`TestRegistry`] runs Debian's `docker-registry` on `127.0.0.1:<free port>`
//! with its storage in a temporary directory, optionally behind htpasswd
//! basic auth; the server is killed (by its pid) and the directory removed on
//! drop. Nothing here talks to anything but 127.0.0.1.

use std::io::{self, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use oci_client::client::{ClientConfig, ClientProtocol, Config, ImageLayer};
use oci_client::secrets::RegistryAuth;

/// Path of the statically linked busybox that `busybox-static` installs.
pub const BUSYBOX: &str = "/bin/busybox";
/// The registry server binary of Debian's `docker-registry`.
pub const REGISTRY_BIN: &str = "/usr/bin/docker-registry";

/// A registry server on loopback, stopped on drop.
pub struct TestRegistry {
    child: Child,
    /// `127.0.0.1:<port>`.
    pub addr: String,
    /// User name and password when started with auth.
    pub credentials: Option<(String, String)>,
    dir: tempfile::TempDir,
}

impl TestRegistry {
    /// Starts a registry; with `auth`, it requires basic auth as `tester`.
    pub fn start(auth: bool) -> io::Result<TestRegistry> {
        let dir = tempfile::tempdir()?;
        let port = TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let addr = format!("127.0.0.1:{port}");
        let credentials = auth.then(|| ("tester".to_string(), "s3cret-pass".to_string()));
        let mut config = format!(
            "version: 0.1\nlog:\n  level: error\nstorage:\n  filesystem:\n    rootdirectory: {}\n  delete:\n    enabled: true\nhttp:\n  addr: {addr}\n",
            dir.path().join("data").display()
        );
        if let Some((user, pass)) = &credentials {
            let hash = bcrypt::hash(pass, 4).map_err(io::Error::other)?;
            let htpasswd = dir.path().join("htpasswd");
            std::fs::write(&htpasswd, format!("{user}:{hash}\n"))?;
            config.push_str(&format!(
                "auth:\n  htpasswd:\n    realm: basic-realm\n    path: {}\n",
                htpasswd.display()
            ));
        }
        let config_path = dir.path().join("config.yml");
        std::fs::write(&config_path, config)?;
        let child = Command::new(REGISTRY_BIN)
            .arg("serve")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(dir.path().join("registry.log"))?)
            .spawn()?;
        let registry = TestRegistry {
            child,
            addr,
            credentials,
            dir,
        };
        registry.wait_ready()?;
        Ok(registry)
    }

    fn wait_ready(&self) -> io::Result<()> {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Ok(mut stream) = TcpStream::connect(&self.addr) {
                let request = format!("GET /v2/ HTTP/1.0\r\nHost: {}\r\n\r\n", self.addr);
                let mut answer = String::new();
                if stream.write_all(request.as_bytes()).is_ok()
                    && stream.read_to_string(&mut answer).is_ok()
                    && answer.starts_with("HTTP/1.")
                {
                    return Ok(());
                }
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(io::Error::other(format!(
            "registry on {} did not come up; log: {}",
            self.addr,
            std::fs::read_to_string(self.dir.path().join("registry.log")).unwrap_or_default()
        )))
    }

    /// A docker-style auth file holding this registry's credentials.
    pub fn write_auth_file(&self, path: &Path) -> io::Result<()> {
        use base64::Engine as _;
        let (user, pass) = self.credentials.clone().unwrap_or_default();
        let auth = base64::engine::general_purpose::STANDARD.encode(format!("{user}:{pass}"));
        let json = serde_json::json!({ "auths": { self.addr.clone(): { "auth": auth } } });
        std::fs::write(path, json.to_string())
    }

    /// Pushes an image made of `layers` (uncompressed tars, bottom first) as `repo:tag`.
    pub async fn push(
        &self,
        repo_tag: &str,
        layers: &[Vec<u8>],
        config: serde_json::Value,
    ) -> io::Result<String> {
        let (client, auth) = self.client();
        let reference: oci_client::Reference = format!("{}/{repo_tag}", self.addr)
            .parse()
            .map_err(io::Error::other)?;
        let (image_layers, diff_ids) = gzip_layers(layers)?;
        let mut config = config;
        config["rootfs"] = serde_json::json!({ "type": "layers", "diff_ids": diff_ids });
        let config = Config {
            data: serde_json::to_vec(&config)?.into(),
            media_type: oci_client::manifest::IMAGE_CONFIG_MEDIA_TYPE.to_string(),
            annotations: None,
        };
        let response = client
            .push(&reference, &image_layers, config, &auth, None)
            .await
            .map_err(io::Error::other)?;
        Ok(response.manifest_url)
    }

    /// Pushes a busybox image (plus `extra` files, `Cmd ["sh"]`) as `repo_tag`
    /// from synchronous code; returns the full reference `127.0.0.1:<port>/<repo_tag>`.
    pub fn push_busybox(&self, repo_tag: &str, extra: &[ExtraFile]) -> io::Result<String> {
        let layer = busybox_layer(extra)?;
        let config = image_config(serde_json::json!({
            "Cmd": ["sh"],
            "Env": ["PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"],
        }));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()?;
        runtime.block_on(self.push(repo_tag, &[layer], config))?;
        Ok(format!("{}/{repo_tag}", self.addr))
    }

    fn client(&self) -> (oci_client::Client, RegistryAuth) {
        let client = oci_client::Client::new(ClientConfig {
            protocol: ClientProtocol::HttpsExcept(vec![self.addr.clone()]),
            ..ClientConfig::default()
        });
        let auth = match &self.credentials {
            Some((u, p)) => RegistryAuth::Basic(u.clone(), p.clone()),
            None => RegistryAuth::Anonymous,
        };
        (client, auth)
    }

    /// Pushes an image index `repo_tag` whose entries are images pushed
    /// before: `(architecture, repo_tag of that image)`, all linux.
    pub async fn push_index(&self, repo_tag: &str, entries: &[(&str, &str)]) -> io::Result<String> {
        let (client, auth) = self.client();
        let parse = |tag: &str| -> io::Result<oci_client::Reference> {
            format!("{}/{tag}", self.addr)
                .parse()
                .map_err(io::Error::other)
        };
        let mut manifests = Vec::new();
        for (arch, tag) in entries {
            let accepted = [oci_client::manifest::OCI_IMAGE_MEDIA_TYPE];
            let (bytes, digest) = client
                .pull_manifest_raw(&parse(tag)?, &auth, &accepted)
                .await
                .map_err(io::Error::other)?;
            manifests.push(serde_json::json!({
                "mediaType": oci_client::manifest::OCI_IMAGE_MEDIA_TYPE,
                "digest": digest,
                "size": bytes.len(),
                "platform": { "architecture": arch, "os": "linux" },
            }));
        }
        let index = serde_json::json!({
            "schemaVersion": 2,
            "mediaType": oci_client::manifest::OCI_IMAGE_INDEX_MEDIA_TYPE,
            "manifests": manifests,
        });
        let index = serde_json::from_value(index).map_err(io::Error::other)?;
        client
            .push_manifest_list(&parse(repo_tag)?, &auth, index)
            .await
            .map_err(io::Error::other)
    }
}

impl Drop for TestRegistry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn gzip_layers(layers: &[Vec<u8>]) -> io::Result<(Vec<ImageLayer>, Vec<String>)> {
    let mut out = Vec::new();
    let mut diff_ids = Vec::new();
    for tar in layers {
        diff_ids.push(crate::store::sha256_digest(tar));
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(tar)?;
        out.push(ImageLayer::oci_v1_gzip(gz.finish()?, None));
    }
    Ok((out, diff_ids))
}

/// An image config with the given process settings (`Cmd`, `Env`, …).
pub fn image_config(process: serde_json::Value) -> serde_json::Value {
    serde_json::json!({
        "architecture": "amd64",
        "os": "linux",
        "config": process,
        "rootfs": { "type": "layers", "diff_ids": [] },
    })
}

/// One file to add to a test layer: path inside the image, content, mode.
pub type ExtraFile = (String, Vec<u8>, u32);

/// An uncompressed layer with busybox, its applet links, a minimal /etc and `extra` files.
pub fn busybox_layer(extra: &[ExtraFile]) -> io::Result<Vec<u8>> {
    let mut builder = tar::Builder::new(Vec::new());
    for dir in [
        "bin", "etc", "tmp", "root", "proc", "sys", "dev", "var", "home", "usr",
    ] {
        let mode = if dir == "tmp" { 0o1777 } else { 0o755 };
        append_dir(&mut builder, dir, mode)?;
    }
    append_file(&mut builder, "bin/busybox", &std::fs::read(BUSYBOX)?, 0o755)?;
    for applet in applets()? {
        if applet != "busybox" {
            append_symlink(&mut builder, &format!("bin/{applet}"), "busybox")?;
        }
    }
    let passwd = "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/home:/bin/false\n";
    append_file(&mut builder, "etc/passwd", passwd.as_bytes(), 0o644)?;
    let group = "root:x:0:\ndaemon:x:1:nobody\nnogroup:x:65534:\n";
    append_file(&mut builder, "etc/group", group.as_bytes(), 0o644)?;
    for (path, bytes, mode) in extra {
        append_file(&mut builder, path, bytes, *mode)?;
    }
    builder.into_inner()
}

fn applets() -> io::Result<Vec<String>> {
    let output = Command::new(BUSYBOX).arg("--list").output()?;
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(str::to_string)
        .collect())
}

fn header(kind: tar::EntryType, size: u64, mode: u32) -> tar::Header {
    let mut header = tar::Header::new_gnu();
    header.set_entry_type(kind);
    header.set_size(size);
    header.set_mode(mode);
    header.set_uid(0);
    header.set_gid(0);
    header.set_mtime(1_700_000_000);
    header
}

fn append_dir(builder: &mut tar::Builder<Vec<u8>>, path: &str, mode: u32) -> io::Result<()> {
    let mut h = header(tar::EntryType::Directory, 0, mode);
    builder.append_data(&mut h, path, io::empty())
}

/// Appends a regular file to a tar being built.
pub fn append_file(
    builder: &mut tar::Builder<Vec<u8>>,
    path: &str,
    bytes: &[u8],
    mode: u32,
) -> io::Result<()> {
    let mut h = header(tar::EntryType::Regular, bytes.len() as u64, mode);
    builder.append_data(&mut h, path, bytes)
}

fn append_symlink(builder: &mut tar::Builder<Vec<u8>>, path: &str, target: &str) -> io::Result<()> {
    let mut h = header(tar::EntryType::Symlink, 0, 0o777);
    builder.append_link(&mut h, path, target)
}

/// A fresh state root in a temporary directory.
pub fn state_root() -> io::Result<(tempfile::TempDir, PathBuf)> {
    let dir = tempfile::tempdir()?;
    let path = dir.path().to_path_buf();
    Ok((dir, path))
}

/// Whether the process runs as root.
pub fn is_root() -> bool {
    rustix::process::geteuid().is_root()
}

/// Writes an OCI bundle to `dir`: busybox in `rootfs/` and a `config.json`
/// with Docker's defaults running `args`. Returns the bundle path.
pub fn oci_bundle(dir: &Path, args: &[&str]) -> io::Result<PathBuf> {
    let rootfs = dir.join("rootfs");
    std::fs::create_dir_all(&rootfs)?;
    let layer = busybox_layer(&[])?;
    crate::unpack::unpack_layer(
        &layer[..],
        crate::unpack::Compression::None,
        &rootfs,
        crate::unpack::Mode::Flat,
    )
    .map_err(io::Error::other)?;
    let config = crate::ContainerConfig {
        command: Some(args.iter().map(|s| s.to_string()).collect()),
        ..crate::ContainerConfig::default()
    };
    let image = oci_spec::image::Config::default();
    let no_limits = |_: &str| None;
    let input = crate::spec::SpecInput {
        id: "bundle",
        config: &config,
        image: &image,
        rootfs: &rootfs,
        passwd: None,
        group: None,
        cgroups_path: "/rcompose/oci-bundle".to_string(),
        hard_limits: &no_limits,
        kernel: None,
        host_hostname: None,
        cgroup_mounts: &[],
        host_bounding: None,
    };
    let mut spec = crate::spec::build_spec(&input).map_err(io::Error::other)?;
    // A bundle names its rootfs relative to itself, and gets a cgroup per id from the runtime.
    spec.set_root(Some(
        oci_spec::runtime::RootBuilder::default()
            .path("rootfs")
            .build()
            .map_err(io::Error::other)?,
    ));
    if let Some(linux) = spec.linux_mut() {
        linux.set_cgroups_path(None);
    }
    std::fs::write(dir.join("config.json"), serde_json::to_vec_pretty(&spec)?)?;
    Ok(dir.to_path_buf())
}
