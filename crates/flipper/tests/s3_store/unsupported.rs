//! A service without conditional writes. moto implements them (`If-None-Match: *` and
//! `If-Match` on `PUT`, answering 412 when they fail), so a service without them is made by
//! putting a small TCP proxy in front of moto that answers every `PUT` carrying either header
//! the way S3 answers headers it does not implement (`501 Not Implemented`, code
//! `NotImplemented`), and forwards every other request to moto unchanged. The store must
//! then refuse conditional writes with [`Error::Unsupported`] (writing nothing), and work
//! with `conditional_writes=false`.

use std::io::{Read, Write};
use std::net::{Shutdown, TcpListener, TcpStream};
use std::time::Duration;

use flipper::store::{PutMode, S3Store, Store, StoreExt};
use flipper::{Error, Item, Value};

const NOT_IMPLEMENTED: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<Error><Code>\
    NotImplemented</Code><Message>A header you provided implies functionality that is not \
    implemented</Message><Header>If-Match</Header></Error>";

/// Starts the proxy in front of `upstream` (a loopback port); returns its port.
fn proxy(upstream: u16) -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for client in listener.incoming().flatten() {
            std::thread::spawn(move || {
                let _ = serve(client, upstream);
            });
        }
    });
    port
}

/// One connection: answer a conditional `PUT` with 501, or forward the request to moto (with
/// `Connection: close`, so that each connection carries one request) and its answer back.
fn serve(mut client: TcpStream, upstream: u16) -> std::io::Result<()> {
    client.set_read_timeout(Some(Duration::from_secs(10)))?;
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if client.read(&mut byte)? == 0 {
            return Ok(());
        }
        head.push(byte[0]);
    }
    let text = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let conditional = text.starts_with("put ")
        && (text.contains("\r\nif-match:") || text.contains("\r\nif-none-match:"));
    if conditional {
        let length: usize = text
            .split("\r\n")
            .find_map(|l| l.strip_prefix("content-length:"))
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let mut body = vec![0; length];
        client.read_exact(&mut body)?;
        write!(
            client,
            "HTTP/1.1 501 Not Implemented\r\nContent-Type: application/xml\r\n\
             Content-Length: {}\r\nConnection: close\r\n\r\n{NOT_IMPLEMENTED}",
            NOT_IMPLEMENTED.len()
        )?;
        return client.shutdown(Shutdown::Both);
    }
    let mut server = TcpStream::connect(("127.0.0.1", upstream))?;
    // The head without its final blank line, then `Connection: close`.
    let head = String::from_utf8_lossy(&head).into_owned();
    let kept: Vec<&str> = head
        .split("\r\n")
        .filter(|l| !l.is_empty() && !l.to_ascii_lowercase().starts_with("connection:"))
        .collect();
    write!(server, "{}\r\nConnection: close\r\n\r\n", kept.join("\r\n"))?;
    let mut to_server = client.try_clone()?;
    let mut from_client = server.try_clone()?;
    let upload = std::thread::spawn(move || {
        let _ = std::io::copy(&mut to_server, &mut from_client);
    });
    std::io::copy(&mut server, &mut client)?;
    client.shutdown(Shutdown::Both)?;
    let _ = upload.join();
    Ok(())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conditional_writes_refused_with_501_are_unsupported() {
    let Some(moto) = flipper_testkit::moto() else {
        return;
    };
    let bucket = moto.create_bucket();
    let port = proxy(moto.port());
    let config = super::config(moto, &bucket).with_endpoint(format!("http://127.0.0.1:{port}"));
    let store = S3Store::new(config.clone()).unwrap();
    let direct = S3Store::new(super::config(moto, &bucket)).unwrap();

    // Plain writes and reads go through.
    let v1 = store
        .put(&Item::new("f", true, 1), PutMode::Overwrite)
        .await
        .unwrap();
    assert_eq!(store.get("f").await.unwrap().unwrap().version, v1);

    // Conditional ones are refused, clearly, and write nothing.
    for mode in [PutMode::Create, PutMode::Update(v1.clone())] {
        let err = store
            .put(&Item::new("f", false, 2), mode.clone())
            .await
            .unwrap_err();
        assert!(matches!(err, Error::Unsupported { .. }), "{mode:?}: {err}");
        let message = err.to_string();
        assert!(
            message.contains("501 Not Implemented") && message.contains("conditional_writes=false"),
            "{message}"
        );
        assert_eq!(direct.get("f").await.unwrap().unwrap().version, v1);
    }
    let err = store.set("f", false).await.unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");

    // With conditional writes off, the same service takes flipper-client's plain overwrites.
    let store = S3Store::new(config.with_conditional_writes(false)).unwrap();
    assert!(!store.capabilities().conditional_put);
    store.set("f", false).await.unwrap();
    store
        .update("f", |item| {
            item.meta.client_data = [("k", Value::from(1))].into_iter().collect();
            Ok(())
        })
        .await
        .unwrap();
    let got = direct.get("f").await.unwrap().unwrap().item;
    assert_eq!(got.is_enabled, Value::Bool(false));
    assert_eq!(got.meta.client_data.as_object().map(|o| o.len()), Some(1));
    // A conditional mode is refused without a request.
    let err = store
        .put(&Item::new("g", true, 1), PutMode::Create)
        .await
        .unwrap_err();
    assert!(matches!(err, Error::Unsupported { .. }), "{err}");
    assert!(direct.get("g").await.unwrap().is_none());
}
