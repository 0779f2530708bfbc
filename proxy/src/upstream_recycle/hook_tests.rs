//! Hook runs with real processes and a real HTTP listener (real time: the hooks are
//! real processes and sockets).

use super::*;
use mcp_edge_filters::bounded::Seconds;
use std::time::Instant;
use tokio::io::AsyncWriteExt;
use tokio::net::TcpListener;

fn exec(argv: &[&str], timeout: f64) -> RecycleHookConfig {
    RecycleHookConfig {
        exec: Some(argv.iter().map(|s| (*s).to_owned()).collect()),
        http: None,
        timeout: Seconds::try_from_secs_f64(timeout).unwrap(),
    }
}

fn http(method: &str, url: String) -> RecycleHookConfig {
    RecycleHookConfig {
        exec: None,
        http: Some(HttpHookConfig {
            method: method.to_owned(),
            url,
        }),
        timeout: Seconds::from_secs(2),
    }
}

#[tokio::test]
async fn a_successful_exec_hook_substitutes_the_server() {
    let dir = tempfile::tempdir().unwrap();
    let marker = dir.path().join("marker");
    let script = format!("printf '%s\\n' \"$1\" >> {}", marker.display());
    let hook = exec(&["sh", "-c", &script, "hook", "{server}"], 5.0);
    run(&hook, "127.0.0.1:4444", None).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&marker).unwrap(),
        "127.0.0.1:4444\n"
    );
}

#[tokio::test]
async fn a_non_zero_exit_is_an_error_with_its_stderr() {
    let hook = exec(&["sh", "-c", "echo cannot restart >&2; exit 1"], 5.0);
    let error = run(&hook, "a:1", None).await.unwrap_err();
    assert_eq!(error.result_label(), "error");
    let text = error.to_string();
    assert!(
        text.contains("exit status: 1") && text.contains("cannot restart"),
        "{text}"
    );
    let missing = exec(&["/nonexistent/mcp-edge-hook"], 5.0);
    assert!(matches!(
        run(&missing, "a:1", None).await,
        Err(HookError::Spawn { .. })
    ));
}

#[tokio::test]
async fn a_hook_past_its_timeout_is_killed_with_its_children() {
    let dir = tempfile::tempdir().unwrap();
    let pid_file = dir.path().join("pid");
    // The shell starts a child (sleep) and waits: both must die at the timeout.
    let script = format!("sleep 30 & echo $! > {}; wait", pid_file.display());
    let hook = exec(&["sh", "-c", &script], 0.5);
    let started = Instant::now();
    let error = run(&hook, "a:1", None).await.unwrap_err();
    assert!(matches!(error, HookError::Timeout(_)), "{error}");
    assert_eq!(error.result_label(), "timeout");
    assert!(started.elapsed() < Duration::from_secs(5));
    let sleeper: i32 = std::fs::read_to_string(&pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    let deadline = Instant::now() + Duration::from_secs(5);
    while nix::sys::signal::kill(nix::unistd::Pid::from_raw(sleeper), None).is_ok() {
        // A killed child stays a zombie until init reaps it; that counts as gone.
        let state = std::fs::read_to_string(format!("/proc/{sleeper}/stat")).unwrap_or_default();
        if state.split_whitespace().nth(2) == Some("Z") {
            break;
        }
        assert!(
            Instant::now() < deadline,
            "the hook's child {sleeper} survived"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// One HTTP exchange on a 127.0.0.1:0 listener: returns the request head it read.
async fn serve_once(listener: TcpListener, answer: &'static str) -> String {
    let (mut socket, _) = listener.accept().await.unwrap();
    let mut head = Vec::new();
    let mut buffer = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = socket.read(&mut buffer).await.unwrap();
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buffer[..n]);
    }
    socket.write_all(answer.as_bytes()).await.unwrap();
    String::from_utf8_lossy(&head).into_owned()
}

#[tokio::test]
async fn an_http_hook_sends_the_request_and_takes_any_2xx() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = listener.local_addr().unwrap().to_string();
    let served = tokio::spawn(serve_once(
        listener,
        "HTTP/1.1 202 Accepted\r\nContent-Length: 0\r\n\r\n",
    ));
    let hook = http("POST", "http://{server}/admin/recycle?who={server}".into());
    run(&hook, &server, None).await.unwrap();
    let head = served.await.unwrap();
    assert!(
        head.starts_with(&format!("POST /admin/recycle?who={server} HTTP/1.1\r\n")),
        "{head}"
    );
    // Header names go out in lower case (HTTP/1 names are case-insensitive).
    assert!(
        head.to_ascii_lowercase()
            .contains(&format!("host: {server}\r\n")),
        "{head}"
    );
}

#[tokio::test]
async fn http_errors_are_failures() {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let server = listener.local_addr().unwrap().to_string();
    tokio::spawn(serve_once(listener, "HTTP/1.1 503 Busy\r\n\r\n"));
    let hook = http("PUT", "http://{server}/".into());
    let error = run(&hook, &server, None).await.unwrap_err();
    assert!(matches!(error, HookError::Status(503)), "{error}");

    // Nothing listens on a port just released: a connect error.
    let closed = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let gone = closed.local_addr().unwrap().to_string();
    drop(closed);
    let error = run(&hook, &gone, None).await.unwrap_err();
    assert!(matches!(error, HookError::Http(_)), "{error}");
    assert_eq!(error.result_label(), "error");

    // A listener that never answers: a timeout.
    let silent = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let mut slow = http("POST", format!("http://{}/", silent.local_addr().unwrap()));
    slow.timeout = Seconds::from_millis(300);
    let error = run(&slow, "unused", None).await.unwrap_err();
    assert!(matches!(error, HookError::Timeout(_)), "{error}");
}
