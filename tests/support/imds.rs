//! A minimal EC2 instance metadata service (IMDSv2) on loopback, for tests that point the SDK
//! at it with `AWS_EC2_METADATA_SERVICE_ENDPOINT`. Answers a token, then GETs from a table.

use std::collections::HashMap;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;

/// Starts the service with `paths` (path -> body; everything else is 404). Returns its URL.
/// The thread serves a bounded number of requests and ends with the test process.
pub fn start(paths: &[(&str, &str)]) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let mut table: HashMap<String, String> = paths
        .iter()
        .map(|(p, b)| (p.to_string(), b.to_string()))
        .collect();
    table.insert("/latest/api/token".into(), "fake-token".into());
    std::thread::spawn(move || {
        for stream in listener.incoming().take(1000) {
            let Ok(mut stream) = stream else { continue };
            let Ok(clone) = stream.try_clone() else {
                continue;
            };
            let mut reader = BufReader::new(clone);
            let mut request = String::new();
            if reader.read_line(&mut request).is_err() {
                continue;
            }
            let mut length = 0;
            loop {
                let mut header = String::new();
                if reader.read_line(&mut header).unwrap_or(0) == 0 || header == "\r\n" {
                    break;
                }
                if let Some(v) = header.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            let path = request.split_whitespace().nth(1).unwrap_or("").to_string();
            let (status, text) = match table.get(&path) {
                Some(text) => ("200 OK", text.clone()),
                None => ("404 Not Found", String::new()),
            };
            let response = format!(
                "HTTP/1.1 {status}\r\ncontent-length: {}\r\nx-aws-ec2-metadata-token-ttl-seconds: 21600\r\nconnection: close\r\n\r\n{text}",
                text.len()
            );
            let _ = stream.write_all(response.as_bytes());
        }
    });
    url
}
