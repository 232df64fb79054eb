//! A webhook receiver: a real HTTP server on a free port that keeps every delivery it gets
//! (headers and body as they came) and answers as the test says: `200`, another status, a
//! redirect, or never (a stall).

use std::sync::{Arc, Mutex};

use actix_web::{App, HttpRequest, HttpResponse, HttpServer, web};
use serde_json::Value;
use tokio::sync::mpsc;

use super::WAIT;

/// One delivery as it arrived.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub id: String,
    pub timestamp: String,
    pub signature: String,
    pub body: String,
    pub event: Value,
}

/// How to answer a delivery.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Answer {
    Status(u16),
    /// A `302` to this port on loopback.
    RedirectTo(u16),
    /// No answer at all: the sender's timeout decides.
    Stall,
}

type Rule = Arc<dyn Fn(&Value) -> Answer + Send + Sync>;

struct Shared {
    rule: Mutex<Rule>,
    deliveries: mpsc::UnboundedSender<Delivery>,
}

pub struct Receiver {
    pub port: u16,
    shared: Arc<Shared>,
    deliveries: mpsc::UnboundedReceiver<Delivery>,
    server: actix_web::dev::ServerHandle,
}

impl Receiver {
    /// A receiver that answers `200` to everything until told otherwise.
    pub fn start() -> Self {
        Self::start_on(0)
    }

    /// Like [`Receiver::start`], on this port (0: a free one).
    pub fn start_on(port: u16) -> Self {
        let (sender, deliveries) = mpsc::unbounded_channel();
        let shared = Arc::new(Shared {
            rule: Mutex::new(Arc::new(|_: &Value| Answer::Status(200))),
            deliveries: sender,
        });
        let data = web::Data::from(shared.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(receive))
        })
        .workers(1)
        .disable_signals()
        .bind(("127.0.0.1", port))
        .expect("the receiver binds");
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        Self {
            port,
            shared,
            deliveries,
            server: handle,
        }
    }

    pub fn url(&self) -> String {
        format!("http://127.0.0.1:{}/hook", self.port)
    }

    /// Answers each delivery as `rule` says of its event.
    pub fn answer(&self, rule: impl Fn(&Value) -> Answer + Send + Sync + 'static) {
        *self.shared.rule.lock().expect("rule") = Arc::new(rule);
    }

    /// The next delivery, whatever it was answered.
    pub async fn next(&mut self) -> Delivery {
        tokio::time::timeout(WAIT, self.deliveries.recv())
            .await
            .expect("a delivery within the wait")
            .expect("the receiver runs")
    }

    /// Deliveries until one passes `done`, that one included.
    pub async fn until(&mut self, done: impl Fn(&Delivery) -> bool) -> Vec<Delivery> {
        let mut got = Vec::new();
        loop {
            let delivery = self.next().await;
            let last = done(&delivery);
            got.push(delivery);
            if last {
                return got;
            }
        }
    }

    /// Nothing arrived so far beyond what was taken.
    pub fn nothing_more(&mut self) -> bool {
        self.deliveries.try_recv().is_err()
    }

    /// Takes one delivery that arrived already into `taken`; true when there was none.
    pub fn nothing_more_after(&mut self, taken: &mut Vec<Delivery>) -> bool {
        match self.deliveries.try_recv() {
            Ok(delivery) => {
                taken.push(delivery);
                false
            }
            Err(_) => true,
        }
    }

    pub async fn stop(self) {
        self.server.stop(false).await;
    }
}

async fn receive(
    request: HttpRequest,
    body: web::Bytes,
    shared: web::Data<Shared>,
) -> HttpResponse {
    let header = |name: &str| {
        request
            .headers()
            .get(name)
            .and_then(|value| value.to_str().ok())
            .unwrap_or_default()
            .to_owned()
    };
    let body = String::from_utf8_lossy(&body).into_owned();
    let event: Value = serde_json::from_str(&body).unwrap_or(Value::Null);
    let answer = (shared.rule.lock().expect("rule"))(&event);
    let _ = shared.deliveries.send(Delivery {
        id: header("webhook-id"),
        timestamp: header("webhook-timestamp"),
        signature: header("webhook-signature"),
        body,
        event,
    });
    match answer {
        Answer::Status(status) => {
            HttpResponse::build(actix_web::http::StatusCode::from_u16(status).expect("a status"))
                .finish()
        }
        Answer::RedirectTo(port) => HttpResponse::Found()
            .insert_header(("Location", format!("http://127.0.0.1:{port}/hook")))
            .finish(),
        Answer::Stall => std::future::pending().await,
    }
}
