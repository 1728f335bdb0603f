//! Symbol-server downloads against HTTP servers run by each test on 127.0.0.1 (nothing else is contacted),
//! serving the real `kprocesshacker_amd64.pdb` (key `7F458D92CC6E4B9B9D2A87403D20D4C12`, GROUND_TRUTH.md), a
//! store generated from the synth fixture kernels, cabinets built with `cab::CabinetBuilder`, `file.ptr`
//! files, redirects, error statuses, a stalled server, a server that drops the connection mid-body and a
//! port where nothing listens.

#![allow(clippy::unwrap_used)] // test helpers outside #[test] functions unwrap too

mod common;
use common::{KEY, NAME, kph_id, real_pdb};
use std::collections::BTreeSet;
use std::fs;
use std::io::{Cursor, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use pooltop_analyzer::analysis::{DumpAnalysis, SymbolOptions};
use pooltop_analyzer::kernel::SourceKind;
use pooltop_analyzer::symbols::{
    DownloadError, DownloadOptions, DownloadReporter, DownloadStart, Downloader, MAX_PDB_SIZE,
    PdbFile, PdbId, PdbSource, SilentReporter, SymbolEnv, SymbolError, SymbolLocation, SymbolPath,
    find_pdb, find_pdb_with,
};
use uuid::Uuid;

/// Store-relative path of the real PDB.
const KPH_PATH: &str = "/kprocesshacker.pdb/7F458D92CC6E4B9B9D2A87403D20D4C12/kprocesshacker.pdb";
const KPH_PD_: &str = "/kprocesshacker.pdb/7F458D92CC6E4B9B9D2A87403D20D4C12/kprocesshacker.pd_";
const KPH_PTR: &str = "/kprocesshacker.pdb/7F458D92CC6E4B9B9D2A87403D20D4C12/file.ptr";

/// The real PDB with one GUID byte flipped in the PDB stream (stream 1, GUID @12): another build.
fn pdb_with_other_guid() -> Vec<u8> {
    let mut pdb = real_pdb();
    let u32_at = |pdb: &[u8], at: usize| u32::from_le_bytes(pdb[at..at + 4].try_into().unwrap());
    let block_size = u32_at(&pdb, 32) as usize;
    let block_map = u32_at(&pdb, 52) as usize * block_size;
    let dir_block = u32_at(&pdb, block_map) as usize * block_size;
    // The real PDB's directory fits in its first block: streams count, sizes, then block lists.
    let streams = u32_at(&pdb, dir_block) as usize;
    let size0 = u32_at(&pdb, dir_block + 4);
    let blocks0 = if size0 == 0xFFFF_FFFF {
        0
    } else {
        (size0 as usize).div_ceil(block_size)
    };
    let stream1_first_block = u32_at(&pdb, dir_block + 4 * (1 + streams + blocks0)) as usize;
    pdb[stream1_first_block * block_size + 12] ^= 0x55;
    pdb
}

fn cab_of(name: &str, bytes: &[u8]) -> Vec<u8> {
    let mut builder = cab::CabinetBuilder::new();
    builder
        .add_folder(cab::CompressionType::MsZip)
        .add_file(name);
    let mut writer = builder.build(Cursor::new(Vec::new())).unwrap();
    while let Some(mut file) = writer.next_file().unwrap() {
        file.write_all(bytes).unwrap();
    }
    writer.finish().unwrap().into_inner()
}

// ---------------------------------------------------------------------------------------------------------
// A small HTTP/1.1 server on 127.0.0.1: one request per connection, `Connection: close`.

/// What the server answers for a path.
#[derive(Clone)]
enum Reply {
    /// 200 with `Content-Length`.
    Body(Vec<u8>),
    /// 404.
    NotFound,
    /// Another status with an empty body.
    Status(u16, &'static str),
    /// 302 to this location.
    Redirect(String),
    /// Headers announcing this many bytes, a few bytes, then silence until the server is dropped.
    Stall(u64),
    /// Headers announcing the whole body, half of it, then the connection is closed.
    DropMidBody(Vec<u8>),
}

type Route = dyn Fn(&str) -> Reply + Send + Sync;

struct TestServer {
    base: String,
    requests: Arc<Mutex<Vec<String>>>,
    heads: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

/// The server stops by itself after this long even if a test forgets it.
const SERVER_LIFETIME: Duration = Duration::from_secs(120);

impl TestServer {
    fn start(route: impl Fn(&str) -> Reply + Send + Sync + 'static) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let base = format!("http://{}", listener.local_addr().unwrap());
        let requests = Arc::new(Mutex::new(Vec::new()));
        let heads = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(AtomicBool::new(false));
        let route: Arc<Route> = Arc::new(route);
        let thread = {
            let (requests, heads, stop) = (requests.clone(), heads.clone(), stop.clone());
            std::thread::spawn(move || {
                let started = Instant::now();
                let mut handlers = Vec::new();
                while !stop.load(Ordering::SeqCst) && started.elapsed() < SERVER_LIFETIME {
                    match listener.accept() {
                        Ok((stream, _)) => {
                            let (requests, heads, stop, route) =
                                (requests.clone(), heads.clone(), stop.clone(), route.clone());
                            handlers.push(std::thread::spawn(move || {
                                serve(stream, &*route, &requests, &heads, &stop);
                            }));
                        }
                        Err(_) => std::thread::sleep(Duration::from_millis(5)),
                    }
                }
                stop.store(true, Ordering::SeqCst);
                for handler in handlers {
                    handler.join().unwrap();
                }
            })
        };
        TestServer {
            base,
            requests,
            heads,
            stop,
            thread: Some(thread),
        }
    }

    /// Paths requested so far, in order.
    fn paths(&self) -> Vec<String> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            thread.join().unwrap();
        }
    }
}

fn serve(
    mut stream: TcpStream,
    route: &Route,
    requests: &Mutex<Vec<String>>,
    heads: &Mutex<Vec<String>>,
    stop: &AtomicBool,
) {
    stream.set_nonblocking(false).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") && head.len() < 64 * 1024 {
        match stream.read(&mut byte) {
            Ok(1) => head.push(byte[0]),
            _ => return,
        }
    }
    let head = String::from_utf8_lossy(&head).into_owned();
    let path = head.split(' ').nth(1).unwrap_or("").to_string();
    requests.lock().unwrap().push(path.clone());
    heads.lock().unwrap().push(head);
    let respond = |stream: &mut TcpStream, status: &str, headers: &str, body: &[u8]| {
        let text = format!("HTTP/1.1 {status}\r\n{headers}Connection: close\r\n\r\n");
        let _ = stream.write_all(text.as_bytes());
        let _ = stream.write_all(body);
    };
    match route(&path) {
        Reply::Body(body) => respond(
            &mut stream,
            "200 OK",
            &format!("Content-Length: {}\r\n", body.len()),
            &body,
        ),
        Reply::NotFound => respond(&mut stream, "404 Not Found", "Content-Length: 0\r\n", b""),
        Reply::Status(code, reason) => respond(
            &mut stream,
            &format!("{code} {reason}"),
            "Content-Length: 0\r\n",
            b"",
        ),
        Reply::Redirect(location) => respond(
            &mut stream,
            "302 Found",
            &format!("Location: {location}\r\nContent-Length: 0\r\n"),
            b"",
        ),
        Reply::Stall(announced) => {
            respond(
                &mut stream,
                "200 OK",
                &format!("Content-Length: {announced}\r\n"),
                b"Microsoft C/C++ MSF 7.00\r\n",
            );
            let _ = stream.flush();
            let started = Instant::now();
            while !stop.load(Ordering::SeqCst) && started.elapsed() < SERVER_LIFETIME {
                std::thread::sleep(Duration::from_millis(20));
            }
        }
        Reply::DropMidBody(body) => {
            respond(
                &mut stream,
                "200 OK",
                &format!("Content-Length: {}\r\n", body.len()),
                &body[..body.len() / 2],
            );
            let _ = stream.flush();
            let _ = stream.shutdown(std::net::Shutdown::Both);
        }
    }
}

/// Serves the files of a directory tree (a symbol store) by path; 404 for anything else.
fn serve_dir(root: PathBuf) -> impl Fn(&str) -> Reply + Send + Sync + 'static {
    move |path| {
        let relative = path.trim_start_matches('/');
        if relative.split('/').any(|c| c == ".." || c.is_empty()) {
            return Reply::NotFound;
        }
        match fs::read(root.join(relative)) {
            Ok(bytes) => Reply::Body(bytes),
            Err(_) => Reply::NotFound,
        }
    }
}

/// A port on 127.0.0.1 where nothing listens (bound, then released).
fn closed_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

// ---------------------------------------------------------------------------------------------------------
// Reporter and options

/// Records what a download reports.
#[derive(Default)]
struct Capture {
    events: Mutex<Vec<String>>,
    last_progress: Mutex<u64>,
}

impl DownloadReporter for Capture {
    fn started(&self, download: &DownloadStart<'_>) {
        self.events.lock().unwrap().push(format!(
            "{} [total {:?}]",
            download.message(),
            download.total
        ));
    }
    fn progress(&self, received: u64) {
        *self.last_progress.lock().unwrap() = received;
    }
    fn finished(&self) {
        self.events.lock().unwrap().push("finished".to_string());
    }
    fn warning(&self, message: &str) {
        self.events
            .lock()
            .unwrap()
            .push(format!("warning: {message}"));
    }
}

impl Capture {
    fn events(&self) -> Vec<String> {
        self.events.lock().unwrap().clone()
    }
}

fn options(idle: Duration) -> DownloadOptions {
    DownloadOptions {
        connect_timeout: Duration::from_secs(5),
        idle_timeout: idle,
        total_timeout: Duration::from_secs(60),
        max_size: MAX_PDB_SIZE,
        use_env_proxy: false,
    }
}

fn quiet() -> Downloader {
    Downloader::new(options(Duration::from_secs(5)), Arc::new(SilentReporter))
}

fn capturing() -> (Downloader, Arc<Capture>) {
    let capture = Arc::new(Capture::default());
    (
        Downloader::new(options(Duration::from_secs(5)), capture.clone()),
        capture,
    )
}

fn path(text: &str) -> SymbolPath {
    SymbolPath::parse(text, &SymbolEnv::default())
}

/// Every file under `dir`, relative, as `/`-joined strings.
fn files_under(dir: &Path) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(entries) = fs::read_dir(&d) else {
            continue;
        };
        for entry in entries {
            let p = entry.unwrap().path();
            if p.is_dir() {
                stack.push(p);
            } else {
                let rel = p.strip_prefix(dir).unwrap();
                out.insert(rel.to_string_lossy().replace('\\', "/"));
            }
        }
    }
    out
}

fn cached_file(store: &Path) -> PathBuf {
    store.join(NAME).join(KEY).join(NAME)
}

fn kph_files() -> BTreeSet<String> {
    BTreeSet::from([format!("{NAME}/{KEY}/{NAME}")])
}

// ---------------------------------------------------------------------------------------------------------
// Downloads that succeed

#[test]
fn plain_download_is_checked_cached_and_reported() {
    let server = TestServer::start(|p| {
        if p == KPH_PATH {
            Reply::Body(real_pdb())
        } else {
            Reply::NotFound
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let (downloader, capture) = capturing();
    let found = find_pdb_with(
        &path(&format!("srv*{}*{}", cache.display(), server.base)),
        &kph_id(),
        &downloader,
    )
    .unwrap();

    let url = format!("{}{KPH_PATH}", server.base);
    let file = cached_file(&cache);
    assert!(found.downloaded());
    assert_eq!(
        found.source,
        PdbSource::Downloaded {
            url: url.clone(),
            cached_at: vec![file.clone()],
            cache_errors: vec![],
        }
    );
    assert_eq!(
        found.found_at,
        format!("{url} (cached at {})", file.display())
    );
    assert_eq!(found.pdb.store_key(), KEY);
    assert_eq!(found.pdb.bytes(), real_pdb().as_slice());
    // The local store was searched first (empty), nothing else.
    assert_eq!(found.searched.len(), 1);
    assert!(found.searched[0].contains("no such store directory"));

    // The cache holds exactly the plain file, byte for byte; no temporary file is left.
    assert_eq!(files_under(&cache), kph_files());
    assert_eq!(fs::read(&file).unwrap(), real_pdb());

    // One request, key upper-case, no MSFZ opt-in.
    assert_eq!(server.paths(), vec![KPH_PATH.to_string()]);
    let head = server.heads.lock().unwrap()[0].to_lowercase();
    assert!(!head.contains("msfz"), "{head}");
    assert!(head.starts_with("get "), "{head}");

    // The reporter saw the one-line message, the full size, every byte, and the end.
    assert_eq!(
        capture.events(),
        vec![
            format!("downloading {NAME} (GUID/age {KEY}) from {url} [total Some(314368)]"),
            "finished".to_string(),
        ]
    );
    assert_eq!(*capture.last_progress.lock().unwrap(), 314_368);
}

#[test]
fn second_lookup_is_served_from_the_cache_without_a_request() {
    let server = TestServer::start(|p| {
        if p == KPH_PATH {
            Reply::Body(real_pdb())
        } else {
            Reply::NotFound
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let symbol_path = path(&format!("srv*{}*{}", tmp.path().display(), server.base));
    let first = find_pdb_with(&symbol_path, &kph_id(), &quiet()).unwrap();
    assert!(first.downloaded());
    assert_eq!(server.paths().len(), 1);

    let second = find_pdb_with(&symbol_path, &kph_id(), &quiet()).unwrap();
    assert!(!second.downloaded());
    assert_eq!(second.source, PdbSource::Local);
    assert_eq!(
        second.found_at,
        cached_file(tmp.path()).display().to_string()
    );
    assert!(second.searched.is_empty());
    assert_eq!(server.paths().len(), 1, "the cache hit made a request");
}

#[test]
fn compressed_pd_underscore_is_cached_uncompressed() {
    let cab = cab_of(NAME, &real_pdb());
    let server = TestServer::start(move |p| {
        if p == KPH_PD_ {
            Reply::Body(cab.clone())
        } else {
            Reply::NotFound
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let (downloader, capture) = capturing();
    let found = find_pdb_with(
        &path(&format!("srv*{}*{}", tmp.path().display(), server.base)),
        &kph_id(),
        &downloader,
    )
    .unwrap();
    assert_eq!(server.paths(), vec![KPH_PATH, KPH_PD_]);
    assert!(matches!(&found.source, PdbSource::Downloaded { url, .. } if url.ends_with(".pd_")));
    assert_eq!(found.pdb.bytes(), real_pdb().as_slice());
    // Downstream stores keep the plain file, not the cabinet.
    assert_eq!(files_under(tmp.path()), kph_files());
    assert_eq!(fs::read(cached_file(tmp.path())).unwrap(), real_pdb());
    assert!(capture.events()[0].contains("kprocesshacker.pd_ [total Some("));
}

#[test]
fn file_ptr_on_the_server_points_at_another_url() {
    let tmp = tempfile::tempdir().unwrap();
    let other = TestServer::start(|p| {
        if p == "/elsewhere/kph.pdb" {
            Reply::Body(real_pdb())
        } else {
            Reply::NotFound
        }
    });
    let target = format!("{}/elsewhere/kph.pdb", other.base);
    let pointer_text = format!("PATH:{target}\r\n");
    let server = TestServer::start(move |p| {
        if p == KPH_PTR {
            Reply::Body(pointer_text.clone().into_bytes())
        } else {
            Reply::NotFound
        }
    });
    let found = find_pdb_with(
        &path(&format!("srv*{}*{}", tmp.path().display(), server.base)),
        &kph_id(),
        &quiet(),
    )
    .unwrap();
    assert_eq!(server.paths(), vec![KPH_PATH, KPH_PD_, KPH_PTR]);
    assert_eq!(other.paths(), vec!["/elsewhere/kph.pdb"]);
    let pointer = format!("{}{KPH_PTR}", server.base);
    assert!(
        matches!(&found.source, PdbSource::Downloaded { url, .. } if *url == format!("{pointer} -> {target}"))
    );
    assert_eq!(files_under(tmp.path()), kph_files());
    assert_eq!(fs::read(cached_file(tmp.path())).unwrap(), real_pdb());
}

#[test]
fn file_ptr_relative_target_and_msg() {
    // A relative target is taken relative to the server URL.
    let tmp = tempfile::tempdir().unwrap();
    let server = TestServer::start(|p| match p {
        "/sym/kprocesshacker.pdb/7F458D92CC6E4B9B9D2A87403D20D4C12/file.ptr" => {
            Reply::Body(b"PATH:files/kph.pdb".to_vec())
        }
        "/sym/files/kph.pdb" => Reply::Body(real_pdb()),
        _ => Reply::NotFound,
    });
    let server_url = format!("{}/sym", server.base);
    let found = find_pdb_with(
        &path(&format!("srv*{}*{server_url}", tmp.path().display())),
        &kph_id(),
        &quiet(),
    )
    .unwrap();
    assert!(found.downloaded());
    assert_eq!(server.paths().last().unwrap(), "/sym/files/kph.pdb");
    assert_eq!(fs::read(cached_file(tmp.path())).unwrap(), real_pdb());

    // `MSG:` means not available; a UNC target is not read.
    for (text, reason) in [
        (
            "MSG: withdrawn by publisher",
            "not available (withdrawn by publisher)",
        ),
        (
            "PATH:\\\\corp\\symbols\\kph.pdb",
            "points to the local path \\\\corp\\symbols\\kph.pdb, which is not read from a server's pointer",
        ),
    ] {
        let body = text.as_bytes().to_vec();
        let server = TestServer::start(move |p| {
            if p == KPH_PTR {
                Reply::Body(body.clone())
            } else {
                Reply::NotFound
            }
        });
        let cache = tempfile::tempdir().unwrap();
        let err = find_pdb_with(
            &path(&format!("srv*{}*{}", cache.path().display(), server.base)),
            &kph_id(),
            &quiet(),
        )
        .unwrap_err()
        .to_string();
        assert!(
            err.contains(&format!("{}{KPH_PTR}: {reason}", server.base)),
            "{err}"
        );
        assert!(files_under(cache.path()).is_empty());
    }
}

#[test]
fn local_file_ptr_to_a_url_is_downloaded_not_cached() {
    let server = TestServer::start(|p| {
        if p == "/share/kph.pdb" {
            Reply::Body(real_pdb())
        } else {
            Reply::NotFound
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let pointer = cached_file(tmp.path()).with_file_name("file.ptr");
    fs::create_dir_all(pointer.parent().unwrap()).unwrap();
    let target = format!("{}/share/kph.pdb", server.base);
    fs::write(&pointer, format!("PATH:{target}")).unwrap();
    let found = find_pdb_with(
        &path(&format!("srv*{}", tmp.path().display())),
        &kph_id(),
        &quiet(),
    )
    .unwrap();
    assert_eq!(found.found_at, format!("{} -> {target}", pointer.display()));
    assert_eq!(
        found.source,
        PdbSource::Downloaded {
            url: target,
            cached_at: vec![],
            cache_errors: vec![],
        }
    );
    assert_eq!(found.pdb.bytes(), real_pdb().as_slice());
    // The pointer's store is left as it was.
    assert_eq!(
        files_under(tmp.path()),
        BTreeSet::from([format!("{NAME}/{KEY}/file.ptr")])
    );
}

#[test]
fn redirect_is_followed() {
    let server = TestServer::start(|p| match p {
        KPH_PATH => Reply::Redirect("/blob/container/kph-0001".to_string()),
        "/blob/container/kph-0001" => Reply::Body(real_pdb()),
        _ => Reply::NotFound,
    });
    let tmp = tempfile::tempdir().unwrap();
    let found = find_pdb_with(
        &path(&format!("srv*{}*{}", tmp.path().display(), server.base)),
        &kph_id(),
        &quiet(),
    )
    .unwrap();
    assert_eq!(server.paths(), vec![KPH_PATH, "/blob/container/kph-0001"]);
    assert!(found.downloaded());
    assert_eq!(fs::read(cached_file(tmp.path())).unwrap(), real_pdb());
}

#[test]
fn cascade_into_every_downstream_store() {
    let server = TestServer::start(|p| {
        if p == KPH_PATH {
            Reply::Body(real_pdb())
        } else {
            Reply::NotFound
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let (a, b) = (tmp.path().join("a"), tmp.path().join("b"));
    let found = find_pdb_with(
        &path(&format!(
            "srv*{}*{}*{}",
            a.display(),
            b.display(),
            server.base
        )),
        &kph_id(),
        &quiet(),
    )
    .unwrap();
    let PdbSource::Downloaded { cached_at, .. } = &found.source else {
        panic!("not downloaded: {:?}", found.source);
    };
    assert_eq!(cached_at, &vec![cached_file(&a), cached_file(&b)]);
    for store in [&a, &b] {
        assert_eq!(files_under(store), kph_files());
        assert_eq!(fs::read(cached_file(store)).unwrap(), real_pdb());
    }
}

#[test]
fn cache_element_and_default_store_receive_downloads() {
    let server = TestServer::start(|p| {
        if p == KPH_PATH {
            Reply::Body(real_pdb())
        } else {
            Reply::NotFound
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let home = tmp.path().join("home");
    let env = SymbolEnv {
        home: Some(home.clone()),
        ..SymbolEnv::default()
    };
    let default_store = home.join(".cache/pooltop/sym");

    // `cache*C` caches downloads from servers to its right; the default store is then not needed.
    let cache = tmp.path().join("c");
    let symbol_path = SymbolPath::parse(
        &format!("cache*{};srv*{}", cache.display(), server.base),
        &env,
    );
    assert_eq!(
        symbol_path.locations,
        vec![
            SymbolLocation::Store(cache.clone()),
            SymbolLocation::Http {
                url: server.base.clone(),
                downstream: vec![cache.clone()],
            },
        ]
    );
    find_pdb_with(&symbol_path, &kph_id(), &quiet()).unwrap();
    assert_eq!(files_under(&cache), kph_files());
    assert!(!home.exists());

    // A server without a downstream store: the default downstream store is searched first and caches it.
    let symbol_path = SymbolPath::parse(&format!("srv*{}", server.base), &env);
    assert_eq!(
        symbol_path.locations,
        vec![
            SymbolLocation::Store(default_store.clone()),
            SymbolLocation::Http {
                url: server.base.clone(),
                downstream: vec![default_store.clone()],
            },
        ]
    );
    let found = find_pdb_with(&symbol_path, &kph_id(), &quiet()).unwrap();
    assert!(found.downloaded());
    assert_eq!(files_under(&default_store), kph_files());
    assert_eq!(server.paths().len(), 2);

    // No default store known and no downstream store: the download is used without being cached.
    let symbol_path = SymbolPath::parse(&format!("srv**{}", server.base), &SymbolEnv::default());
    let found = find_pdb_with(&symbol_path, &kph_id(), &quiet()).unwrap();
    assert_eq!(
        found.source,
        PdbSource::Downloaded {
            url: format!("{}{KPH_PATH}", server.base),
            cached_at: vec![],
            cache_errors: vec![],
        }
    );
    assert_eq!(
        found.searched,
        vec![format!(
            "srv**{}: default downstream store unknown (neither XDG_CACHE_HOME nor HOME is set)",
            server.base
        )]
    );
}

#[test]
fn two_tier_downstream_store_gets_the_two_tier_layout() {
    let server = TestServer::start(|p| {
        if p == KPH_PATH {
            Reply::Body(real_pdb())
        } else {
            Reply::NotFound
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    fs::write(tmp.path().join("index2.txt"), "").unwrap();
    find_pdb_with(
        &path(&format!("srv*{}*{}", tmp.path().display(), server.base)),
        &kph_id(),
        &quiet(),
    )
    .unwrap();
    assert_eq!(
        files_under(tmp.path()),
        BTreeSet::from(["index2.txt".to_string(), format!("kp/{NAME}/{KEY}/{NAME}")])
    );
}

#[test]
fn unwritable_downstream_store_is_a_warning() {
    let server = TestServer::start(|p| {
        if p == KPH_PATH {
            Reply::Body(real_pdb())
        } else {
            Reply::NotFound
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    // A regular file where the store should be: its key directory cannot be created.
    let blocked = tmp.path().join("blocked");
    fs::write(&blocked, b"not a directory").unwrap();
    let good = tmp.path().join("good");
    let (downloader, capture) = capturing();
    let found = find_pdb_with(
        &path(&format!(
            "srv*{}*{}*{}",
            blocked.display(),
            good.display(),
            server.base
        )),
        &kph_id(),
        &downloader,
    )
    .unwrap();
    let PdbSource::Downloaded {
        cached_at,
        cache_errors,
        ..
    } = &found.source
    else {
        panic!("not downloaded");
    };
    assert_eq!(cached_at, &vec![cached_file(&good)]);
    assert_eq!(cache_errors.len(), 1);
    assert!(
        cache_errors[0].starts_with(&format!(
            "cannot cache {NAME} in store {}: {}: ",
            blocked.display(),
            blocked.join(NAME).join(KEY).display()
        )),
        "{cache_errors:?}"
    );
    assert!(
        capture
            .events()
            .contains(&format!("warning: {}", cache_errors[0]))
    );
}

#[test]
fn generated_fixture_kernel_store() {
    let tmp = tempfile::tempdir().unwrap();
    let served = tmp.path().join("served");
    for kernel in pooltop_synth::kernels::all() {
        kernel.write_symbol_store(&served).unwrap();
    }
    let server = TestServer::start(serve_dir(served));
    let cache = tmp.path().join("cache");
    for kernel in pooltop_synth::kernels::all() {
        let id = PdbId {
            name: "ntkrnlmp.pdb".to_string(),
            guid: Uuid::from_bytes_le(kernel.guid),
            age: kernel.age,
        };
        let found = find_pdb_with(
            &path(&format!("srv*{}*{}", cache.display(), server.base)),
            &id,
            &quiet(),
        )
        .unwrap();
        assert!(found.downloaded(), "{}", kernel.era);
        assert_eq!(found.pdb.store_key(), kernel.pdb_store_key);
        // The PDB-stream age differs from the DBI age on purpose: the DBI age decided the match.
        assert_ne!(found.pdb.pdb_stream_age(), kernel.age);
        let file = cache.join(kernel.pdb_store_path);
        assert_eq!(fs::read(&file).unwrap(), kernel.pdb, "{}", kernel.era);
    }
    let expected: Vec<String> = pooltop_synth::kernels::all()
        .iter()
        .map(|k| format!("/{}", k.pdb_store_path))
        .collect();
    assert_eq!(server.paths(), expected);
}

// ---------------------------------------------------------------------------------------------------------
// Downloads that fail: nothing may be left in the cache

#[test]
fn stalled_server_times_out_and_caches_nothing() {
    let server = TestServer::start(|p| {
        if p == KPH_PATH {
            Reply::Stall(314_368)
        } else {
            Reply::NotFound
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let capture = Arc::new(Capture::default());
    let downloader = Downloader::new(options(Duration::from_millis(500)), capture.clone());
    let err = find_pdb_with(
        &path(&format!("srv*{}*{}", tmp.path().display(), server.base)),
        &kph_id(),
        &downloader,
    )
    .unwrap_err();
    let SymbolError::PdbNotFound { searched, .. } = &err else {
        panic!("{err}");
    };
    assert_eq!(
        searched.last().unwrap(),
        &format!("{}{KPH_PATH}: no data for 0.5 s; offline?", server.base)
    );
    assert!(files_under(tmp.path()).is_empty());
    // The download had started (headers arrived) and was ended for the reporter.
    assert_eq!(capture.events().len(), 2);
    assert_eq!(capture.events()[1], "finished");
}

#[test]
fn connection_dropped_mid_body_leaves_no_file() {
    let server = TestServer::start(|p| {
        if p == KPH_PATH {
            Reply::DropMidBody(real_pdb())
        } else {
            Reply::NotFound
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let cache = tmp.path().join("cache");
    let err = find_pdb_with(
        &path(&format!("srv*{}*{}", cache.display(), server.base)),
        &kph_id(),
        &quiet(),
    )
    .unwrap_err()
    .to_string();
    let prefix = format!(
        "{}{KPH_PATH}: connection lost after 157184 of 314368 bytes (",
        server.base
    );
    assert!(err.contains(&prefix), "{err}");
    // Neither the final file nor a temporary file, not even a key directory.
    assert!(files_under(tmp.path()).is_empty());
    assert!(!cache.join(NAME).exists());
}

#[test]
fn wrong_guid_is_refused_and_not_cached() {
    let other = pdb_with_other_guid();
    let other_key = PdbFile::from_bytes(other.clone(), "x").unwrap().store_key();
    assert_ne!(other_key, KEY);
    let server = TestServer::start(move |p| {
        if p == KPH_PATH {
            Reply::Body(other.clone())
        } else {
            Reply::NotFound
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let err = find_pdb_with(
        &path(&format!("srv*{}*{}", tmp.path().display(), server.base)),
        &kph_id(),
        &quiet(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(&format!(
            "{}{KPH_PATH}: GUID/age mismatch (has {other_key}, want {KEY})",
            server.base
        )),
        "{err}"
    );
    // A wrong file ends the server's probes: no .pd_ or file.ptr request.
    assert_eq!(server.paths(), vec![KPH_PATH]);
    assert!(files_under(tmp.path()).is_empty());
}

#[test]
fn server_error_status_and_not_on_server() {
    let server = TestServer::start(|p| {
        if p == KPH_PATH {
            Reply::Status(500, "Internal Server Error")
        } else {
            Reply::NotFound
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let err = find_pdb_with(
        &path(&format!("srv*{}*{}", tmp.path().display(), server.base)),
        &kph_id(),
        &quiet(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(&format!(
            "{}{KPH_PATH}: HTTP 500 Internal Server Error",
            server.base
        )),
        "{err}"
    );
    assert!(files_under(tmp.path()).is_empty());

    let empty = TestServer::start(|_| Reply::NotFound);
    let err = find_pdb_with(
        &path(&format!("srv*{}*{}/", tmp.path().display(), empty.base)),
        &kph_id(),
        &quiet(),
    )
    .unwrap_err()
    .to_string();
    assert!(
        err.contains(&format!(
            "{}/{NAME}/{KEY}/{{{NAME},kprocesshacker.pd_,file.ptr}}: not on the server (HTTP 404)",
            empty.base
        )),
        "{err}"
    );
    assert_eq!(empty.paths(), vec![KPH_PATH, KPH_PD_, KPH_PTR]);
}

#[test]
fn oversized_body_is_refused() {
    let server = TestServer::start(|p| {
        if p == KPH_PATH {
            Reply::Body(real_pdb())
        } else {
            Reply::NotFound
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let downloader = Downloader::new(
        DownloadOptions {
            max_size: 100_000,
            ..options(Duration::from_secs(5))
        },
        Arc::new(SilentReporter),
    );
    let err = downloader
        .fetch_pdb(&server.base, &kph_id(), &[tmp.path().to_path_buf()])
        .unwrap_err();
    assert!(matches!(err, DownloadError::TooLarge { .. }));
    assert_eq!(
        err.to_string(),
        format!(
            "{}{KPH_PATH}: 314368 bytes announced, over the limit of 100000 bytes",
            server.base
        )
    );
    assert!(files_under(tmp.path()).is_empty());
}

#[test]
fn refused_connection_is_one_clear_line() {
    let port = closed_port();
    let tmp = tempfile::tempdir().unwrap();
    let store = tmp.path().join("store");
    let err = find_pdb_with(
        &path(&format!("srv*{}*http://127.0.0.1:{port}", store.display())),
        &kph_id(),
        &quiet(),
    )
    .unwrap_err();
    let SymbolError::PdbNotFound { searched, .. } = &err else {
        panic!("{err}");
    };
    // Both the local store and the URL are listed.
    assert_eq!(searched.len(), 2);
    assert_eq!(
        searched[0],
        format!("{} (no such store directory)", store.display())
    );
    let url_prefix = format!("http://127.0.0.1:{port}{KPH_PATH}: cannot connect (");
    assert!(searched[1].starts_with(&url_prefix), "{}", searched[1]);
    assert!(
        searched[1].to_lowercase().contains("refused"),
        "{}",
        searched[1]
    );
    assert!(!err.to_string().contains('\n'));
    assert!(!store.exists());
}

// ---------------------------------------------------------------------------------------------------------
// End to end: a dump whose kernel PDB is only on the symbol server

#[test]
fn dump_analysis_downloads_the_kernel_pdb() {
    let scenario = pooltop_synth::scenario::demo::demo_scenario();
    let kernel = scenario.kernel;
    let tmp = tempfile::tempdir().unwrap();
    let served = tmp.path().join("served");
    kernel.write_symbol_store(&served).unwrap();
    let server = TestServer::start(serve_dir(served));
    let dump = tmp.path().join("demo.dmp");
    scenario
        .build()
        .unwrap()
        .write_file(pooltop_synth::dump::DumpFormat::KernelBitmap, &dump)
        .unwrap();
    let cache = tmp.path().join("cache");
    fs::create_dir_all(&cache).unwrap();

    let options = SymbolOptions {
        path: SymbolPath::parse(
            &format!("srv*{}*{}", cache.display(), server.base),
            &SymbolEnv::default(),
        ),
        ..SymbolOptions::default()
    };
    let analysis = DumpAnalysis::open(&dump, &options).unwrap();
    let symbols = analysis.symbols().unwrap();
    assert_eq!(symbols.source.kind, SourceKind::DownloadedPdb);
    let cached = cache.join(kernel.pdb_store_path);
    assert_eq!(fs::read(&cached).unwrap(), kernel.pdb);
    assert_eq!(server.paths(), vec![format!("/{}", kernel.pdb_store_path)]);

    let usage = analysis.pool_usage().unwrap();
    let truth = scenario.tags.iter().find(|t| &t.tag == b"Lk01").unwrap();
    let row = usage.tags.iter().find(|t| &t.tag == b"Lk01").unwrap();
    let counts = |c: &pooltop_analyzer::pool::PoolCounters| (c.allocs, c.frees, c.bytes);
    assert_eq!(
        counts(&row.nonpaged),
        (
            truth.nonpaged.allocs,
            truth.nonpaged.frees,
            truth.nonpaged.bytes
        )
    );
    assert_eq!(
        counts(&row.paged),
        (truth.paged.allocs, truth.paged.frees, truth.paged.bytes)
    );

    // Opened again: the cache answers, no request, and the source is the local PDB.
    let again = DumpAnalysis::open(&dump, &options).unwrap();
    assert_eq!(again.symbols().unwrap().source.kind, SourceKind::Pdb);
    assert_eq!(server.paths().len(), 1);
}

#[test]
fn default_find_pdb_downloads_too() {
    // `find_pdb` uses the default downloader (stderr reporter, default timeouts); loopback needs no proxy.
    let server = TestServer::start(|p| {
        if p == KPH_PATH {
            Reply::Body(real_pdb())
        } else {
            Reply::NotFound
        }
    });
    let tmp = tempfile::tempdir().unwrap();
    let found = find_pdb(
        &path(&format!("srv*{}*{}", tmp.path().display(), server.base)),
        &kph_id(),
    )
    .unwrap();
    assert!(found.downloaded());
    assert_eq!(files_under(tmp.path()), kph_files());
}

#[test]
fn every_era_downloads_its_pdb_and_reads_the_ground_truth() {
    for kernel in pooltop_synth::kernels::all() {
        let mut scenario = pooltop_synth::scenario::demo::demo_scenario();
        scenario.kernel = kernel;
        let tmp = tempfile::tempdir().unwrap();
        let served = tmp.path().join("served");
        kernel.write_symbol_store(&served).unwrap();
        let server = TestServer::start(serve_dir(served));
        let dump = tmp.path().join("demo.dmp");
        scenario
            .build()
            .unwrap()
            .write_file(pooltop_synth::dump::DumpFormat::Full, &dump)
            .unwrap();
        let cache = tmp.path().join("cache");
        let options = SymbolOptions {
            path: SymbolPath::parse(
                &format!("srv*{}*{}", cache.display(), server.base),
                &SymbolEnv::default(),
            ),
            ..SymbolOptions::default()
        };
        let analysis = DumpAnalysis::open(&dump, &options).unwrap();
        assert_eq!(
            analysis.symbols().unwrap().source.kind,
            SourceKind::DownloadedPdb,
            "{}",
            kernel.era
        );
        let usage = analysis.pool_usage().unwrap();
        assert_eq!(usage.tags.len(), scenario.tags.len(), "{}", kernel.era);
        for truth in &scenario.tags {
            let row = usage.tags.iter().find(|t| t.tag == truth.tag).unwrap();
            assert_eq!(
                (row.nonpaged.allocs, row.nonpaged.frees, row.nonpaged.bytes),
                (
                    truth.nonpaged.allocs,
                    truth.nonpaged.frees,
                    truth.nonpaged.bytes
                ),
                "{}",
                kernel.era
            );
            assert_eq!(
                (row.paged.allocs, row.paged.frees, row.paged.bytes),
                (truth.paged.allocs, truth.paged.frees, truth.paged.bytes),
                "{}",
                kernel.era
            );
        }
    }
}
