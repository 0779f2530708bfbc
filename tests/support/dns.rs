//! A name server for one name that the test controls: answers `A` queries for it with the
//! addresses last set (TTL 0), and NXDOMAIN for any other name. UDP on an ephemeral
//! loopback port; a resolver that falls back to TCP finds the port closed and retries.

use hickory_proto::op::{Message, MessageType, ResponseCode};
use hickory_proto::rr::{rdata::A, Name, RData, Record, RecordType};
use std::net::{Ipv4Addr, SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

/// A running name server; it stops with the test process.
pub struct NameServer {
    /// Where it answers.
    pub addr: SocketAddr,
    addresses: Arc<Mutex<Vec<Ipv4Addr>>>,
    queries: Arc<AtomicUsize>,
}

impl NameServer {
    /// Answers for `name` (a fully qualified name, such as `pods.edge.test.`).
    pub fn start(name: &str, addresses: &[Ipv4Addr]) -> NameServer {
        let socket = UdpSocket::bind("127.0.0.1:0").expect("bind the name server");
        let addr = socket.local_addr().expect("name server address");
        let name = Name::from_ascii(name).expect("a valid name");
        let shared = Arc::new(Mutex::new(addresses.to_vec()));
        let queries = Arc::new(AtomicUsize::new(0));
        let (current, counter) = (shared.clone(), queries.clone());
        std::thread::spawn(move || {
            let mut buffer = [0u8; 1500];
            while let Ok((len, peer)) = socket.recv_from(&mut buffer) {
                let Ok(query) = Message::from_vec(&buffer[..len]) else {
                    continue;
                };
                counter.fetch_add(1, Ordering::Relaxed);
                let mut reply = Message::new();
                reply
                    .set_id(query.id())
                    .set_message_type(MessageType::Response)
                    .set_op_code(query.op_code())
                    .set_recursion_desired(query.recursion_desired())
                    .set_recursion_available(true)
                    .set_authoritative(true);
                let mut known = false;
                for question in query.queries() {
                    reply.add_query(question.clone());
                    if question.name().to_lowercase() != name.to_lowercase() {
                        continue;
                    }
                    known = true;
                    if question.query_type() == RecordType::A {
                        for ip in current.lock().unwrap().iter() {
                            reply.add_answer(Record::from_rdata(
                                question.name().clone(),
                                0,
                                RData::A(A(*ip)),
                            ));
                        }
                    }
                }
                if !known {
                    reply.set_response_code(ResponseCode::NXDomain);
                }
                if let Ok(bytes) = reply.to_vec() {
                    let _ = socket.send_to(&bytes, peer);
                }
            }
        });
        NameServer {
            addr,
            addresses: shared,
            queries,
        }
    }

    /// From now on the name resolves to `addresses`.
    pub fn set(&self, addresses: &[Ipv4Addr]) {
        *self.addresses.lock().unwrap() = addresses.to_vec();
    }

    /// Queries answered so far.
    pub fn queries(&self) -> usize {
        self.queries.load(Ordering::Relaxed)
    }
}
