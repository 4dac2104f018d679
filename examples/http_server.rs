//! A hyper 1 server on tokio whose response bodies are rendered into leased buffers and handed
//! to hyper with `into_bytes()`; the buffer goes back to the pool when hyper has written it
//! out and drops the body. `--mode plain` renders into a `Vec` instead, for comparison.
//!
//! ```sh
//! cargo run --release --example http_server --features bytes -- --size 16384 --secs 30
//! cargo run --example http_server --features bytes -- --self-test 300   # CI's smoke run
//! ```
//!
//! It listens on 127.0.0.1 only and always stops by itself: after `--secs` (default 30, at
//! most 600), after `--requests` responses, after its own `--self-test`, or on Ctrl-C. Then it
//! prints what it served, the shared pool's statistics and its resident set.
//! `tools/load_test.sh` drives it with `wrk`.
//!
//! | option | default | |
//! |---|---|---|
//! | `--mode pooled\|plain` | `pooled` | bodies from `ArrayPool::shared()`, or from `Vec::with_capacity` |
//! | `--size BYTES` | 16384 | the body of every response |
//! | `--port PORT` | 0 | on 127.0.0.1; 0 picks a free port (the address is printed) |
//! | `--secs N` | 30 | stop after N seconds |
//! | `--requests N` | none | stop after N responses |
//! | `--threads N` | tokio's default (one per CPU) | runtime worker threads |
//! | `--self-test N` | off | send N requests to itself over 4 connections, check each body, stop |

use std::convert::Infallible;
use std::io::Write;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use arraypool::ArrayPool;
use http_body_util::Full;
use hyper::body::{Bytes, Incoming};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Notify;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mode {
    Pooled,
    Plain,
}

#[derive(Clone, Copy, Debug)]
struct Options {
    mode: Mode,
    size: usize,
    port: u16,
    secs: u64,
    requests: Option<u64>,
    threads: Option<usize>,
    self_test: Option<u64>,
}

const USAGE: &str = "usage: http_server [--mode pooled|plain] [--size BYTES] [--port PORT] \
                     [--secs N] [--requests N] [--threads N] [--self-test N]";

fn parse_options() -> Result<Options, String> {
    let mut options = Options {
        mode: Mode::Pooled,
        size: 16 * 1024,
        port: 0,
        secs: 30,
        requests: None,
        threads: None,
        self_test: None,
    };
    let mut args = std::env::args().skip(1);
    while let Some(flag) = args.next() {
        if flag == "--help" || flag == "-h" {
            return Err(USAGE.into());
        }
        let value = args
            .next()
            .ok_or_else(|| format!("{flag} needs a value\n{USAGE}"))?;
        let number = || {
            value
                .parse::<u64>()
                .map_err(|_| format!("{flag}: not a number: {value}"))
        };
        match flag.as_str() {
            "--mode" => {
                options.mode = match value.as_str() {
                    "pooled" => Mode::Pooled,
                    "plain" => Mode::Plain,
                    _ => return Err(format!("--mode: pooled or plain, not {value}")),
                }
            }
            "--size" => options.size = number()? as usize,
            "--port" => options.port = number()?.try_into().map_err(|_| "--port: too large")?,
            "--secs" => options.secs = number()?.min(600),
            "--requests" => options.requests = Some(number()?),
            "--threads" => options.threads = Some(number()?.max(1) as usize),
            "--self-test" => options.self_test = Some(number()?),
            _ => return Err(format!("unknown option {flag}\n{USAGE}")),
        }
    }
    if options.size == 0 || options.size > ArrayPool::shared().max_len() {
        return Err(format!(
            "--size: 1 ..= {} (the shared pool's max_len)",
            ArrayPool::shared().max_len()
        ));
    }
    Ok(options)
}

/// The body of response `n`: a first line naming it, then lines of text up to exactly `size`
/// bytes. The same work in both modes; only where the buffer comes from differs.
fn render(out: &mut Vec<u8>, n: u64, size: usize) {
    const LINE: &[u8; 64] = b"0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ.\n";
    let _ = writeln!(out, "response {n}");
    while out.len() + LINE.len() <= size {
        out.extend_from_slice(LINE);
    }
    let rest = size.saturating_sub(out.len());
    out.extend_from_slice(&LINE[..rest]);
    out.truncate(size);
}

fn body(mode: Mode, n: u64, size: usize) -> Bytes {
    match mode {
        Mode::Pooled => {
            let mut lease = ArrayPool::shared().lease_with_capacity(size);
            render(&mut lease, n, size);
            lease.into_bytes() // no copy; back in the pool when hyper drops it
        }
        Mode::Plain => {
            let mut vec = Vec::with_capacity(size);
            render(&mut vec, n, size);
            Bytes::from(vec) // no copy; freed when hyper drops it
        }
    }
}

struct Server {
    options: Options,
    served: AtomicU64,
    stop: Notify,
}

impl Server {
    async fn handle(
        &self,
        _request: Request<Incoming>,
    ) -> Result<Response<Full<Bytes>>, Infallible> {
        let n = self.served.fetch_add(1, Ordering::Relaxed) + 1;
        if self.options.requests.is_some_and(|limit| n >= limit) {
            self.stop.notify_one();
        }
        Ok(Response::new(Full::new(body(
            self.options.mode,
            n,
            self.options.size,
        ))))
    }
}

async fn serve(server: Arc<Server>, listener: TcpListener) {
    let deadline = tokio::time::sleep(Duration::from_secs(server.options.secs));
    tokio::pin!(deadline);
    loop {
        tokio::select! {
            accepted = listener.accept() => {
                let Ok((stream, _)) = accepted else { continue };
                let _ = stream.set_nodelay(true);
                let server = Arc::clone(&server);
                tokio::spawn(async move {
                    let service = service_fn(|request| {
                        let server = Arc::clone(&server);
                        async move { server.handle(request).await }
                    });
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
            () = &mut deadline => break,
            () = server.stop.notified() => break,
            _ = tokio::signal::ctrl_c() => break,
        }
    }
}

/// A plain HTTP/1.1 client on one keep-alive connection: `count` GETs, each body checked.
async fn client(addr: SocketAddr, count: u64, size: usize) -> Result<u64, String> {
    let stream = TcpStream::connect(addr).await.map_err(|e| e.to_string())?;
    let (read, mut write) = stream.into_split();
    let mut read = BufReader::new(read);
    let mut line = String::new();
    let mut body = Vec::with_capacity(size);
    for _ in 0..count {
        write
            .write_all(b"GET / HTTP/1.1\r\nhost: 127.0.0.1\r\n\r\n")
            .await
            .map_err(|e| e.to_string())?;
        let mut length = None;
        loop {
            line.clear();
            read.read_line(&mut line).await.map_err(|e| e.to_string())?;
            let header = line.trim_end();
            if header.is_empty() {
                break;
            }
            if let Some((name, value)) = header.split_once(':') {
                if name.eq_ignore_ascii_case("content-length") {
                    length = value.trim().parse::<usize>().ok();
                }
            }
        }
        if length != Some(size) {
            return Err(format!("content-length {length:?}, expected {size}"));
        }
        body.resize(size, 0);
        read.read_exact(&mut body)
            .await
            .map_err(|e| e.to_string())?;
        if !body.starts_with(b"response ") || body.len() != size {
            return Err("a body that is not ours".into());
        }
    }
    Ok(count)
}

async fn self_test(addr: SocketAddr, total: u64, size: usize) -> Result<u64, String> {
    const CONNECTIONS: u64 = 4;
    let clients: Vec<_> = (0..CONNECTIONS)
        .map(|i| {
            let count = total / CONNECTIONS + u64::from(i < total % CONNECTIONS);
            tokio::spawn(client(addr, count, size))
        })
        .collect();
    let mut checked = 0;
    for client in clients {
        checked += client.await.map_err(|e| e.to_string())??;
    }
    Ok(checked)
}

/// `VmHWM` and `VmRSS` of this process, in KiB (Linux; `None` elsewhere).
fn resident_kib() -> Option<(u64, u64)> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let field = |name: &str| {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))?
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .ok()
    };
    Some((field("VmHWM:")?, field("VmRSS:")?))
}

fn main() {
    let options = match parse_options() {
        Ok(options) => options,
        Err(message) => {
            eprintln!("{message}");
            std::process::exit(2);
        }
    };
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if let Some(threads) = options.threads {
        builder.worker_threads(threads);
    }
    let runtime = builder.enable_all().build().expect("a tokio runtime");
    let server = Arc::new(Server {
        options,
        served: AtomicU64::new(0),
        stop: Notify::new(),
    });
    let started = Instant::now();
    let checked = runtime.block_on(async {
        let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, options.port))
            .await
            .expect("bind 127.0.0.1");
        let addr = listener.local_addr().expect("a local address");
        println!(
            "listening on http://{addr}/ mode={:?} size={} (stops after {} s)",
            options.mode, options.size, options.secs
        );
        let _ = std::io::stdout().flush();
        let serving = tokio::spawn(serve(Arc::clone(&server), listener));
        let checked = match options.self_test {
            Some(total) => {
                let result = self_test(addr, total, options.size).await;
                server.stop.notify_one();
                Some(result)
            }
            None => None,
        };
        let _ = serving.await;
        checked
    });
    // Dropping the runtime ends the open connections (their bodies return to the pool) and
    // its worker threads (their thread caches move to the partitions), so the figures below
    // are final.
    runtime.shutdown_timeout(Duration::from_secs(5));
    let elapsed = started.elapsed().as_secs_f64();
    let served = server.served.load(Ordering::Relaxed);
    println!(
        "served {served} responses of {} bytes in {elapsed:.1} s ({:.0}/s), mode {:?}",
        options.size,
        served as f64 / elapsed,
        options.mode
    );
    if let Some((hwm, rss)) = resident_kib() {
        println!("resident set: peak {hwm} KiB, now {rss} KiB");
    }
    println!("shared pool statistics:\n{}", ArrayPool::shared().stats());
    match checked {
        Some(Ok(n)) => println!("self-test: {n} responses checked"),
        Some(Err(error)) => {
            eprintln!("self-test FAILED: {error}");
            std::process::exit(1);
        }
        None => {}
    }
}
