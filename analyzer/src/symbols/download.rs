//! Downloading PDBs from HTTP(S) symbol servers into downstream symbol stores.
//!
//! For a server URL `S`, a PDB `name` and its store key `KEY` (GUID upper-case, then the age in hex) the
//! requests are, in order, stopping at the first that is not a 404/410:
//!
//! 1. `GET S/name/KEY/name`: the PDB;
//! 2. `GET S/name/KEY/nam_`: a cabinet holding it (decompressed before use and before caching: downstream
//!    stores keep plain files);
//! 3. `GET S/name/KEY/file.ptr`: text naming the real file. `PATH:` is stripped; `MSG:` means "not
//!    available". An `http(s)://` target is fetched; any other target is taken relative to `S`, except a UNC
//!    or drive-letter path, which is refused: a remote server does not choose local files to read.
//!
//! Redirects are followed (a public server answers with redirects to blob storage). No `Accept:
//! application/msfz0` is sent (MSFZ PDBs cannot be read), nor `Accept-Encoding` (bodies arrive as stored).
//! Every network step is bounded ([`DownloadOptions`]): name resolution and connection by the connect
//! timeout, every read and write by the idle timeout (a stalled server fails with "no data for N s;
//! offline?"), the whole exchange including redirects by the total timeout, the body by the size limit.
//!
//! A downloaded PDB is checked (GUID and DBI age) before anything is written. It is then written into every
//! downstream store atomically: a temporary file in the key directory, flushed to disk, renamed to
//! `<store>/<name>/<KEY>/<name>`; on failure the temporary file is removed, so the final name never holds a
//! partial file. A store that cannot be written is reported as a warning and the download is used anyway.
//!
//! Progress goes to a [`DownloadReporter`]: [`StderrReporter`] prints one line when a download starts and
//! draws an `indicatif` progress bar on stderr when stderr is a terminal; [`SilentReporter`] says nothing.

use std::fmt;
use std::io::{self, IsTerminal, Read};
use std::net::IpAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::codeview::PdbId;
use super::error::SymbolError;
use super::path::is_http;
use super::pdb::{MAX_PDB_SIZE, PdbFile};
use super::store::{
    MAX_FILE_PTR_SIZE, compressed_name, parse_file_ptr, store_pdb, unpack_pdb_bytes,
};

/// Body bytes read per call; also the progress granularity.
const READ_CHUNK: usize = 64 * 1024;
/// Most bytes reserved up front from a `Content-Length` (the rest grows as data arrives).
const MAX_PREALLOCATION: u64 = 64 << 20;

/// Timeouts and limits of symbol-server downloads.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadOptions {
    /// Longest wait to resolve the host name and to establish the connection (TCP and TLS).
    pub connect_timeout: Duration,
    /// Longest wait for any data (or for the server to accept data) once connected: a server silent this
    /// long fails the download with "no data for N s; offline?".
    pub idle_timeout: Duration,
    /// Longest time for one request including redirects and the whole body.
    pub total_timeout: Duration,
    /// Largest body accepted (bytes).
    pub max_size: u64,
    /// Whether `ALL_PROXY`/`HTTPS_PROXY`/`HTTP_PROXY` (and `NO_PROXY`) are honoured. Loopback hosts
    /// (`localhost`, `127.0.0.0/8`, `::1`) are always reached directly.
    pub use_env_proxy: bool,
}

impl Default for DownloadOptions {
    /// 10 s to connect, 10 s without data, 30 min in all, 2 GiB ([`MAX_PDB_SIZE`]), proxies from the environment.
    fn default() -> Self {
        DownloadOptions {
            connect_timeout: Duration::from_secs(10),
            idle_timeout: Duration::from_secs(10),
            total_timeout: Duration::from_secs(30 * 60),
            max_size: MAX_PDB_SIZE,
            use_env_proxy: true,
        }
    }
}

/// A download that has started: the server answered with a body.
#[derive(Debug, Clone, Copy)]
pub struct DownloadStart<'a> {
    /// The wanted PDB.
    pub pdb: &'a PdbId,
    /// The URL requested (before redirects).
    pub url: &'a str,
    /// The body size if the server announced it (`Content-Length`).
    pub total: Option<u64>,
}

impl DownloadStart<'_> {
    /// The one-line message for a person: `downloading ntkrnlmp.pdb (GUID/age 3844…1A) from https://…`.
    pub fn message(&self) -> String {
        format!(
            "downloading {} (GUID/age {}) from {}",
            self.pdb.name,
            self.pdb.store_key(),
            self.url
        )
    }
}

/// Receives download progress. Implementations must be cheap: [`DownloadReporter::progress`] is called for
/// every chunk received.
pub trait DownloadReporter: Send + Sync {
    /// A body starts arriving.
    fn started(&self, download: &DownloadStart<'_>);
    /// `received` bytes of the body have arrived so far.
    fn progress(&self, received: u64);
    /// The body ended (completely or not); follows every [`DownloadReporter::started`].
    fn finished(&self);
    /// Something that does not stop the lookup, e.g. a downstream store that cannot be written.
    fn warning(&self, message: &str);
}

/// Reports nothing.
#[derive(Debug, Clone, Copy, Default)]
pub struct SilentReporter;

impl DownloadReporter for SilentReporter {
    fn started(&self, _download: &DownloadStart<'_>) {}
    fn progress(&self, _received: u64) {}
    fn finished(&self) {}
    fn warning(&self, _message: &str) {}
}

/// Prints [`DownloadStart::message`] and warnings to stderr, and draws a progress bar (bytes of the total, or a
/// spinner when the size is unknown) only when stderr is a terminal.
#[derive(Debug, Default)]
pub struct StderrReporter {
    bar: Mutex<Option<ProgressBar>>,
}

impl StderrReporter {
    fn with_bar(&self, f: impl FnOnce(&mut Option<ProgressBar>)) {
        let mut guard = self
            .bar
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner());
        f(&mut guard);
    }
}

impl DownloadReporter for StderrReporter {
    fn started(&self, download: &DownloadStart<'_>) {
        eprintln!("{}", download.message());
        if !io::stderr().is_terminal() {
            return;
        }
        let (bar, template) = match download.total {
            Some(total) => (
                ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr()),
                "  [{bar:40}] {bytes}/{total_bytes} {bytes_per_sec} {eta}",
            ),
            None => (
                ProgressBar::with_draw_target(None, ProgressDrawTarget::stderr()),
                "  {spinner} {bytes} {bytes_per_sec}",
            ),
        };
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.enable_steady_tick(Duration::from_millis(200));
        self.with_bar(|slot| *slot = Some(bar));
    }

    fn progress(&self, received: u64) {
        self.with_bar(|slot| {
            if let Some(bar) = slot {
                bar.set_position(received);
            }
        });
    }

    fn finished(&self) {
        self.with_bar(|slot| {
            if let Some(bar) = slot.take() {
                bar.finish_and_clear();
            }
        });
    }

    fn warning(&self, message: &str) {
        eprintln!("warning: {message}");
    }
}

/// Why a symbol server did not give the PDB. Every variant names the URL, so `Display` is a complete line.
#[derive(Debug, thiserror::Error)]
pub enum DownloadError {
    /// The host name did not resolve or the connection (TCP or TLS) failed.
    #[error("{url}: cannot connect ({reason})")]
    CannotConnect {
        /// The URL requested.
        url: String,
        /// Why, e.g. `Connection refused (os error 111)` or `no answer within 10 s; offline?`.
        reason: String,
    },
    /// The server stopped sending (or accepting) data.
    #[error("{url}: no data for {}; offline?", seconds(*.idle))]
    Stalled {
        /// The URL requested.
        url: String,
        /// The idle timeout that expired.
        idle: Duration,
    },
    /// The exchange did not finish within the total timeout.
    #[error("{url}: not finished within {}", seconds(*.limit))]
    TimedOut {
        /// The URL requested.
        url: String,
        /// The total timeout.
        limit: Duration,
    },
    /// The server answered with an error status (other than 404/410).
    #[error("{url}: HTTP {status}")]
    Status {
        /// The URL requested.
        url: String,
        /// Code and reason, e.g. `500 Internal Server Error`.
        status: String,
    },
    /// Every probe of the key directory answered 404 or 410.
    #[error("{probed}: not on the server (HTTP 404)")]
    NotOnServer {
        /// The URLs probed, e.g. `https://s/ntkrnlmp.pdb/KEY/{ntkrnlmp.pdb,ntkrnlmp.pd_,file.ptr}`.
        probed: String,
    },
    /// The body is larger than the limit.
    #[error("{url}: {} over the limit of {limit} bytes", announced.map_or("body".to_string(), |n| format!("{n} bytes announced,")))]
    TooLarge {
        /// The URL requested.
        url: String,
        /// `Content-Length`, if the server sent one.
        announced: Option<u64>,
        /// The limit.
        limit: u64,
    },
    /// The connection ended before the whole body arrived.
    #[error("{url}: connection lost after {received} of {} bytes ({reason})", expected.map_or("?".to_string(), |n| n.to_string()))]
    Truncated {
        /// The URL requested.
        url: String,
        /// Bytes received.
        received: u64,
        /// `Content-Length`, if the server sent one.
        expected: Option<u64>,
        /// The transport's error.
        reason: String,
    },
    /// Another transport failure (bad redirect, protocol error).
    #[error("{url}: {reason}")]
    Transfer {
        /// The URL requested.
        url: String,
        /// What went wrong.
        reason: String,
    },
    /// The server's `file.ptr` says the file is not available (`MSG:`), or cannot be used.
    #[error("{pointer}: {reason}")]
    Pointer {
        /// The `file.ptr` URL.
        pointer: String,
        /// Why, e.g. `not available (withdrawn)`.
        reason: String,
    },
    /// Fetching the target of a server's `file.ptr` failed.
    #[error("{pointer} -> {source}")]
    PointerTarget {
        /// The `file.ptr` URL.
        pointer: String,
        /// The target's failure.
        source: Box<DownloadError>,
    },
    /// The bytes arrived but are not the wanted PDB (bad cabinet, not a PDB, GUID/age mismatch, too large).
    #[error(transparent)]
    Pdb(#[from] SymbolError),
}

fn seconds(duration: Duration) -> String {
    format!("{} s", duration.as_secs_f64())
}

/// A PDB obtained from a symbol server.
#[derive(Debug, Clone)]
pub struct DownloadedPdb {
    /// The PDB, already checked against the wanted [`PdbId`].
    pub pdb: PdbFile,
    /// Where its bytes came from: the URL requested (for a `file.ptr`: `<pointer URL> -> <target>`).
    pub url: String,
    /// The files written into downstream stores (`<store>/<name>/<KEY>/<name>`).
    pub cached_at: Vec<PathBuf>,
    /// Downstream stores that could not be written, one line each.
    pub cache_errors: Vec<String>,
}

/// Fetches PDBs from symbol servers with given timeouts, reporting progress to a [`DownloadReporter`].
#[derive(Clone)]
pub struct Downloader {
    options: DownloadOptions,
    reporter: Arc<dyn DownloadReporter>,
}

impl fmt::Debug for Downloader {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Downloader")
            .field("options", &self.options)
            .finish_non_exhaustive()
    }
}

impl Default for Downloader {
    /// Default options, reporting to stderr ([`StderrReporter`]).
    fn default() -> Self {
        Downloader::new(
            DownloadOptions::default(),
            Arc::new(StderrReporter::default()),
        )
    }
}

impl Downloader {
    /// A downloader with these options and this reporter.
    pub fn new(options: DownloadOptions, reporter: Arc<dyn DownloadReporter>) -> Self {
        Downloader { options, reporter }
    }

    /// The options in force.
    pub fn options(&self) -> &DownloadOptions {
        &self.options
    }

    /// Fetches the PDB `id` from the symbol server `server` (probing `<name>`, `<nam_>`, `file.ptr`), checks it,
    /// and writes it into each of `downstream` (symbol stores; may be empty).
    pub fn fetch_pdb(
        &self,
        server: &str,
        id: &PdbId,
        downstream: &[PathBuf],
    ) -> Result<DownloadedPdb, DownloadError> {
        let key_dir = format!(
            "{}/{}/{}",
            server.trim_end_matches('/'),
            url_encode(&id.name),
            id.store_key()
        );
        let compressed = compressed_name(&id.name);
        let agent = self.agent(server);
        for file in [id.name.as_str(), compressed.as_str()] {
            let url = format!("{key_dir}/{}", url_encode(file));
            if let Some(bytes) = self.get(&agent, &url, self.options.max_size, Some(id))? {
                let pdb = check(bytes, id, &url)?;
                return Ok(self.cache(pdb, url, id, downstream));
            }
        }
        let pointer = format!("{key_dir}/file.ptr");
        let Some(text) = self.get(&agent, &pointer, MAX_FILE_PTR_SIZE, None)? else {
            return Err(DownloadError::NotOnServer {
                probed: format!("{key_dir}/{{{},{compressed},file.ptr}}", id.name),
            });
        };
        let pointer_error = |reason: String| DownloadError::Pointer {
            pointer: pointer.clone(),
            reason,
        };
        let target = match parse_file_ptr(&String::from_utf8_lossy(&text)) {
            Ok(target) => target,
            Err(reason) => return Err(pointer_error(reason)),
        };
        if looks_like_local_path(&target) {
            // A path on the server's network (a UNC share, a drive): not followed from a remote pointer.
            return Err(pointer_error(format!(
                "points to the local path {target}, which is not read from a server's pointer"
            )));
        }
        let url = if is_http(&target) {
            target
        } else {
            format!(
                "{}/{}",
                server.trim_end_matches('/'),
                target.trim_start_matches('/')
            )
        };
        let origin = format!("{pointer} -> {url}");
        let pdb = self
            .fetch_pdb_url(&url, id)
            .map_err(|source| DownloadError::PointerTarget {
                pointer: pointer.clone(),
                source: Box::new(source),
            })?;
        Ok(self.cache(pdb, origin, id, downstream))
    }

    /// Fetches one URL that should hold the PDB `id` (plain or as a cabinet) and checks it; nothing is cached.
    pub fn fetch_pdb_url(&self, url: &str, id: &PdbId) -> Result<PdbFile, DownloadError> {
        let agent = self.agent(url);
        match self.get(&agent, url, self.options.max_size, Some(id))? {
            Some(bytes) => check(bytes, id, url),
            None => Err(DownloadError::Status {
                url: url.to_string(),
                status: "404 Not Found".to_string(),
            }),
        }
    }

    /// Writes a checked PDB into the downstream stores, collecting failures as warnings.
    fn cache(
        &self,
        pdb: PdbFile,
        url: String,
        id: &PdbId,
        downstream: &[PathBuf],
    ) -> DownloadedPdb {
        let mut cached_at = Vec::new();
        let mut cache_errors = Vec::new();
        for store in downstream {
            match store_pdb(store, id, pdb.bytes()) {
                Ok(path) => cached_at.push(path),
                Err(e) => {
                    let message =
                        format!("cannot cache {} in store {}: {e}", id.name, store.display());
                    self.reporter.warning(&message);
                    cache_errors.push(message);
                }
            }
        }
        DownloadedPdb {
            pdb,
            url,
            cached_at,
            cache_errors,
        }
    }

    fn agent(&self, url: &str) -> ureq::Agent {
        let o = &self.options;
        let mut config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(10)
            .user_agent(concat!("pooltop/", env!("CARGO_PKG_VERSION")))
            .timeout_resolve(Some(o.connect_timeout))
            .timeout_connect(Some(o.connect_timeout))
            .timeout_per_read(Some(o.idle_timeout))
            .timeout_per_write(Some(o.idle_timeout))
            .timeout_global(Some(o.total_timeout));
        if !o.use_env_proxy || is_loopback_url(url) {
            config = config.proxy(None);
        }
        config.build().new_agent()
    }

    /// GETs `url`: `Ok(None)` on 404/410, the body (at most `limit` bytes) on 2xx, an error otherwise. With
    /// `announce`, the body's progress goes to the reporter.
    fn get(
        &self,
        agent: &ureq::Agent,
        url: &str,
        limit: u64,
        announce: Option<&PdbId>,
    ) -> Result<Option<Vec<u8>>, DownloadError> {
        let mut response = agent.get(url).call().map_err(|e| self.call_error(url, e))?;
        let status = response.status();
        if status.as_u16() == 404 || status.as_u16() == 410 {
            return Ok(None);
        }
        if !status.is_success() {
            return Err(DownloadError::Status {
                url: url.to_string(),
                status: format!(
                    "{} {}",
                    status.as_u16(),
                    status.canonical_reason().unwrap_or("")
                )
                .trim_end()
                .to_string(),
            });
        }
        let total = response.body().content_length();
        if let Some(total) = total.filter(|&n| n > limit) {
            return Err(DownloadError::TooLarge {
                url: url.to_string(),
                announced: Some(total),
                limit,
            });
        }
        if let Some(pdb) = announce {
            self.reporter.started(&DownloadStart { pdb, url, total });
        }
        let mut reader = response.body_mut().as_reader();
        let result = self.read_body(&mut reader, url, limit, total, announce.is_some());
        if announce.is_some() {
            self.reporter.finished();
        }
        result.map(Some)
    }

    fn read_body(
        &self,
        reader: &mut impl Read,
        url: &str,
        limit: u64,
        total: Option<u64>,
        report: bool,
    ) -> Result<Vec<u8>, DownloadError> {
        let reserve = total.unwrap_or(0).min(MAX_PREALLOCATION);
        let mut bytes = Vec::with_capacity(usize::try_from(reserve).unwrap_or(0));
        let mut chunk = vec![0u8; READ_CHUNK];
        loop {
            let n = match reader.read(&mut chunk) {
                Ok(0) => break,
                Ok(n) => n,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
                Err(e) => return Err(self.body_error(url, e, bytes.len() as u64, total)),
            };
            if (bytes.len() + n) as u64 > limit {
                return Err(DownloadError::TooLarge {
                    url: url.to_string(),
                    announced: total,
                    limit,
                });
            }
            bytes.extend_from_slice(&chunk[..n]);
            if report {
                self.reporter.progress(bytes.len() as u64);
            }
        }
        if let Some(expected) = total.filter(|&n| n != bytes.len() as u64) {
            return Err(DownloadError::Truncated {
                url: url.to_string(),
                received: bytes.len() as u64,
                expected: Some(expected),
                reason: "the body ended early".to_string(),
            });
        }
        Ok(bytes)
    }

    /// A failure before the response headers arrived.
    fn call_error(&self, url: &str, error: ureq::Error) -> DownloadError {
        let url_owned = url.to_string();
        let cannot_connect = |reason: String| DownloadError::CannotConnect {
            url: url_owned.clone(),
            reason,
        };
        match error {
            ureq::Error::Timeout(timeout) => self.timeout_error(url, timeout),
            ureq::Error::HostNotFound => cannot_connect("host not found".to_string()),
            ureq::Error::ConnectionFailed => cannot_connect("connection failed".to_string()),
            ureq::Error::Io(e) => match e.kind() {
                io::ErrorKind::UnexpectedEof
                | io::ErrorKind::ConnectionReset
                | io::ErrorKind::ConnectionAborted
                | io::ErrorKind::BrokenPipe => DownloadError::Transfer {
                    url: url_owned.clone(),
                    reason: format!("connection closed before a response ({e})"),
                },
                _ => cannot_connect(e.to_string()),
            },
            ureq::Error::Tls(reason) => cannot_connect(format!("TLS: {reason}")),
            ureq::Error::Rustls(e) => cannot_connect(format!("TLS: {e}")),
            other => DownloadError::Transfer {
                url: url_owned.clone(),
                reason: other.to_string(),
            },
        }
    }

    /// A failure while reading the body.
    fn body_error(
        &self,
        url: &str,
        error: io::Error,
        received: u64,
        expected: Option<u64>,
    ) -> DownloadError {
        let inner = error
            .get_ref()
            .and_then(|inner| inner.downcast_ref::<ureq::Error>());
        if let Some(ureq::Error::Timeout(timeout)) = inner {
            return self.timeout_error(url, *timeout);
        }
        if let Some(ureq::Error::Io(io_error)) = inner
            && io_error.kind() == io::ErrorKind::TimedOut
        {
            return self.timeout_error(url, ureq::Timeout::PerRead);
        }
        DownloadError::Truncated {
            url: url.to_string(),
            received,
            expected,
            reason: error.to_string(),
        }
    }

    fn timeout_error(&self, url: &str, timeout: ureq::Timeout) -> DownloadError {
        let url = url.to_string();
        match timeout {
            ureq::Timeout::Resolve | ureq::Timeout::Connect => DownloadError::CannotConnect {
                url,
                reason: format!(
                    "no answer within {}; offline?",
                    seconds(self.options.connect_timeout)
                ),
            },
            ureq::Timeout::Global | ureq::Timeout::PerCall => DownloadError::TimedOut {
                url,
                limit: self.options.total_timeout,
            },
            _ => DownloadError::Stalled {
                url,
                idle: self.options.idle_timeout,
            },
        }
    }
}

/// Reads, unpacks (a cabinet) and checks downloaded bytes against `id`.
fn check(bytes: Vec<u8>, id: &PdbId, origin: &str) -> Result<PdbFile, DownloadError> {
    let bytes = unpack_pdb_bytes(bytes, &id.name, origin)?;
    let pdb = PdbFile::from_bytes(bytes, origin)?;
    pdb.check_matches(id)?;
    Ok(pdb)
}

/// Whether a `file.ptr` target names a file on a network share or drive (`\\server\share\…`, `C:\…`)
/// rather than a URL or a path relative to the server.
fn looks_like_local_path(target: &str) -> bool {
    let bytes = target.as_bytes();
    target.starts_with("\\\\")
        || (bytes.len() >= 3
            && bytes[0].is_ascii_alphabetic()
            && bytes[1] == b':'
            && (bytes[2] == b'\\' || bytes[2] == b'/'))
}

/// Whether the URL's host is `localhost` or a loopback address.
fn is_loopback_url(url: &str) -> bool {
    let Ok(uri) = url.parse::<ureq::http::Uri>() else {
        return false;
    };
    let Some(host) = uri.host() else {
        return false;
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host.eq_ignore_ascii_case("localhost")
        || host
            .parse::<IpAddr>()
            .is_ok_and(|address| address.is_loopback())
}

/// Percent-encodes everything but RFC 3986 unreserved characters.
fn url_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for byte in text.bytes() {
        if byte.is_ascii_alphanumeric() || matches!(byte, b'-' | b'.' | b'_' | b'~') {
            out.push(char::from(byte));
        } else {
            out.push_str(&format!("%{byte:02X}"));
        }
    }
    out
}
