//! Pulling images through the OCI distribution API into the [`Store`].
//!
//! Manifest lists and image indexes are resolved to the host's platform;
//! docker v2 schema 2 and OCI manifests are both accepted. Plain HTTP is used
//! only for loopback registries and those the caller names as insecure.
//! Every blob is verified: the registry client checks each layer blob against
//! its digest at the end of the stream, the config is re-hashed here, and each
//! unpacked layer's uncompressed stream must hash to the config's diff id.
//! Layers are fetched in parallel (three at a time) and unpacked on blocking
//! threads; a layer already in the store is neither fetched nor unpacked.

use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{Context, Poll};
use std::time::{SystemTime, UNIX_EPOCH};

use futures_util::{StreamExt as _, TryStreamExt as _};
use oci_client::client::{ClientConfig, ClientProtocol};
use oci_client::manifest::OciDescriptor;
use oci_client::secrets::RegistryAuth;
use tokio::io::AsyncWrite;

use crate::auth;
use crate::reference::Reference;
use crate::store::{self, ImageRecord, Store, StoreError};
use crate::unpack::Compression;

/// Layers fetched at once.
const PARALLEL_LAYERS: usize = 3;

/// Progress of a pull, reported as it happens.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PullProgress {
    /// The manifest is known: these layers (digest, size) will be fetched.
    Layers(Vec<(String, u64)>),
    /// Bytes of one layer arrived (running total for that layer).
    Bytes {
        /// Layer blob digest.
        digest: String,
        /// Bytes received so far.
        done: u64,
    },
    /// A layer is unpacked (or was already present).
    LayerDone(String),
}

/// Callback receiving [`PullProgress`] events; called from several tasks.
pub type ProgressFn = Arc<dyn Fn(PullProgress) + Send + Sync>;

/// How to reach registries.
#[derive(Clone, Default)]
pub struct PullOptions {
    /// Registries (`host:port`) reached over plain HTTP besides loopback ones.
    pub insecure_registries: Vec<String>,
    /// Credential files, in order (see [`auth::auth_files`]).
    pub auth_files: Vec<PathBuf>,
    /// Progress callback.
    pub progress: Option<ProgressFn>,
}

/// Why a pull failed.
#[derive(Debug, thiserror::Error)]
pub enum PullError {
    /// The registry refused or could not be reached.
    #[error("failed to pull {reference} from {registry}")]
    Registry {
        /// Image being pulled.
        reference: String,
        /// Registry contacted.
        registry: String,
        /// Cause.
        #[source]
        source: oci_client::errors::OciDistributionError,
    },
    /// The reference could not be given to the registry client.
    #[error("invalid reference {0}")]
    Reference(String),
    /// The config's digest does not match the manifest.
    #[error("config of {reference} does not match its digest {expected}")]
    ConfigDigest {
        /// Image being pulled.
        reference: String,
        /// Digest from the manifest.
        expected: String,
    },
    /// The manifest and the config disagree on the number of layers.
    #[error("{reference}: manifest lists {layers} layers but the config has {diff_ids} diff ids")]
    LayerCount {
        /// Image being pulled.
        reference: String,
        /// Layers in the manifest.
        layers: usize,
        /// Diff ids in the config.
        diff_ids: usize,
    },
    /// Storing content failed.
    #[error("failed to store {reference}")]
    Store {
        /// Image being pulled.
        reference: String,
        /// Cause.
        #[source]
        source: StoreError,
    },
    /// A blocking unpack task died.
    #[error("unpack task failed")]
    Join(#[source] tokio::task::JoinError),
}

/// The registry client configuration for one reference.
fn client_for(reference: &Reference, opts: &PullOptions) -> oci_client::Client {
    let mut plain = opts.insecure_registries.clone();
    if reference.is_loopback_registry() {
        plain.push(reference.registry.clone());
    }
    oci_client::Client::new(ClientConfig {
        protocol: ClientProtocol::HttpsExcept(plain),
        ..ClientConfig::default()
    })
}

/// The credentials to present to a reference's registry.
pub fn registry_auth(reference: &Reference, opts: &PullOptions) -> RegistryAuth {
    match auth::lookup(&reference.registry, &opts.auth_files) {
        Some(creds) => RegistryAuth::Basic(creds.username, creds.password),
        None => RegistryAuth::Anonymous,
    }
}

/// Converts our normalized reference into the registry client's, field by
/// field (parsing the text again would compile the client's large regex).
pub fn client_reference(reference: &Reference) -> Result<oci_client::Reference, PullError> {
    let (registry, repository) = (reference.registry.clone(), reference.repository.clone());
    Ok(match (&reference.tag, &reference.digest) {
        (Some(tag), Some(digest)) => oci_client::Reference::with_tag_and_digest(
            registry,
            repository,
            tag.clone(),
            digest.clone(),
        ),
        (None, Some(digest)) => {
            oci_client::Reference::with_digest(registry, repository, digest.clone())
        }
        (Some(tag), None) => oci_client::Reference::with_tag(registry, repository, tag.clone()),
        (None, None) => return Err(PullError::Reference(reference.to_string())),
    })
}

/// Pulls `reference` into `store` and tags it; returns the stored record.
pub async fn pull(
    store: &Store,
    reference: &Reference,
    opts: &PullOptions,
) -> Result<ImageRecord, PullError> {
    let name = reference.to_string();
    let registry_err = |source| PullError::Registry {
        reference: name.clone(),
        registry: reference.registry.clone(),
        source,
    };
    let client = client_for(reference, opts);
    let oref = client_reference(reference)?;
    debug_assert_eq!(oref.whole(), reference.to_string());
    let auth = registry_auth(reference, opts);
    let (manifest, manifest_digest, config, list_digest) = client
        .pull_manifest_and_config_and_list_digest(&oref, &auth)
        .await
        .map_err(registry_err)?;
    let config_digest = manifest.config.digest.clone();
    if store::sha256_digest(config.as_bytes()) != config_digest {
        return Err(PullError::ConfigDigest {
            reference: name,
            expected: config_digest,
        });
    }
    let store_err = |source| PullError::Store {
        reference: name.clone(),
        source,
    };
    store
        .put_blob(&config_digest, config.as_bytes())
        .map_err(store_err)?;
    let diff_ids = diff_ids(&config_digest, config.as_bytes()).map_err(store_err)?;
    if diff_ids.len() != manifest.layers.len() {
        return Err(PullError::LayerCount {
            reference: name,
            layers: manifest.layers.len(),
            diff_ids: diff_ids.len(),
        });
    }
    if let Some(progress) = &opts.progress {
        let sizes = manifest
            .layers
            .iter()
            .map(|l| (l.digest.clone(), l.size as u64));
        progress(PullProgress::Layers(sizes.collect()));
    }
    let jobs = manifest
        .layers
        .iter()
        .cloned()
        .zip(diff_ids.iter().cloned());
    futures_util::stream::iter(
        jobs.map(|(layer, diff_id)| fetch_layer(&client, &oref, store, layer, diff_id, opts)),
    )
    .buffer_unordered(PARALLEL_LAYERS)
    .try_collect::<Vec<()>>()
    .await?;
    let record = ImageRecord {
        reference: name.clone(),
        id: config_digest,
        repo_digest: Some(list_digest.unwrap_or_else(|| manifest_digest.clone())),
        manifest_digest,
        layers: diff_ids,
        size: manifest.layers.iter().map(|l| l.size as u64).sum(),
        created: SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| d.as_secs()),
    };
    store.tag(record.clone()).map_err(store_err)?;
    Ok(record)
}

/// The diff ids an image config lists, bottom layer first.
pub fn diff_ids(config_digest: &str, config: &[u8]) -> Result<Vec<String>, StoreError> {
    let parsed: oci_spec::image::ImageConfiguration =
        serde_json::from_slice(config).map_err(|source| StoreError::Config {
            digest: config_digest.to_string(),
            source,
        })?;
    Ok(parsed.rootfs().diff_ids().clone())
}

async fn fetch_layer(
    client: &oci_client::Client,
    oref: &oci_client::Reference,
    store: &Store,
    layer: OciDescriptor,
    diff_id: String,
    opts: &PullOptions,
) -> Result<(), PullError> {
    let name = oref.whole();
    let done = |opts: &PullOptions| {
        if let Some(progress) = &opts.progress {
            progress(PullProgress::LayerDone(layer.digest.clone()));
        }
    };
    if store.has_layer(&diff_id) {
        done(opts);
        return Ok(());
    }
    let store_err = |source| PullError::Store {
        reference: name.clone(),
        source,
    };
    let tmp_dir = store.dir().join("tmp");
    std::fs::create_dir_all(&tmp_dir).map_err(|source| {
        store_err(StoreError::Io {
            path: tmp_dir.clone(),
            source,
        })
    })?;
    let hex = store::digest_hex(&layer.digest).map_err(store_err)?;
    let path = tmp_dir.join(format!("{hex}-{}", std::process::id()));
    let file = tokio::fs::File::create(&path).await.map_err(|source| {
        store_err(StoreError::Io {
            path: path.clone(),
            source,
        })
    })?;
    let writer = Counting::new(file, layer.digest.clone(), opts.progress.clone());
    let pulled = client.pull_blob(oref, &layer, writer).await;
    if let Err(source) = pulled {
        let _ = std::fs::remove_file(&path);
        return Err(PullError::Registry {
            reference: name.clone(),
            registry: oref.resolve_registry().to_string(),
            source,
        });
    }
    let compression = Compression::from_media_type(&layer.media_type);
    let store2 = store.clone();
    let path2 = path.clone();
    let result = tokio::task::spawn_blocking(move || {
        let file = std::fs::File::open(&path2).map_err(|source| StoreError::Io {
            path: path2.clone(),
            source,
        })?;
        store2.add_layer(std::io::BufReader::new(file), compression, &diff_id)
    })
    .await
    .map_err(PullError::Join)?;
    let _ = std::fs::remove_file(&path);
    result.map_err(store_err)?;
    done(opts);
    Ok(())
}

/// An `AsyncWrite` that reports how many bytes went through it.
struct Counting<W> {
    inner: W,
    digest: String,
    done: u64,
    progress: Option<ProgressFn>,
}

impl<W> Counting<W> {
    fn new(inner: W, digest: String, progress: Option<ProgressFn>) -> Self {
        Counting {
            inner,
            digest,
            done: 0,
            progress,
        }
    }
}

impl<W: AsyncWrite + Unpin> AsyncWrite for Counting<W> {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<std::io::Result<usize>> {
        let poll = Pin::new(&mut self.inner).poll_write(cx, buf);
        if let Poll::Ready(Ok(n)) = &poll {
            self.done += *n as u64;
            if let Some(progress) = &self.progress {
                progress(PullProgress::Bytes {
                    digest: self.digest.clone(),
                    done: self.done,
                });
            }
        }
        poll
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<std::io::Result<()>> {
        Pin::new(&mut self.inner).poll_shutdown(cx)
    }
}
