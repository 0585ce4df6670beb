//! Live chat over WebSockets: `/chat/ws` for visitors (the widget) and `/api/v1/chat/ws` for
//! agents (JWT or API token). Frames are JSON objects with a `type`; the protocol is written
//! down in `docs/chat.md`. A message is acknowledged only after its transaction committed;
//! lines reach a socket in conversation order, gaps are filled from the database.

use crate::error::ApiError;
use crate::guard::Limits;
use crate::session::Credential;
use actix_web::http::StatusCode;
use actix_web::{web, HttpRequest, HttpResponse};
use actix_ws::{AggregatedMessage, Session};
use caseflow_app::chat::{ChatAuthor, ChatEvent, ChatLine, ChatSession, SessionState, StartChat};
use caseflow_app::{App, AppError, Principal};
use governor::{DefaultDirectRateLimiter, Quota, RateLimiter};
use serde::Deserialize;
use serde_json::json;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::broadcast::{self, error::RecvError};

/// Largest frame a client may send, in bytes.
const MAX_FRAME: usize = 64 * 1024;
/// Lines replayed per database read.
const REPLAY_PAGE: i64 = 500;

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum VisitorFrame {
    Start {
        #[serde(default)]
        visitor_id: Option<String>,
        #[serde(default)]
        name: Option<String>,
        #[serde(default)]
        email: Option<String>,
        #[serde(default)]
        topic: Option<String>,
    },
    Resume {
        session_id: String,
        token: String,
        #[serde(default)]
        last_seq: i64,
    },
    Message {
        client_id: String,
        body: String,
    },
    Typing {
        typing: bool,
    },
    Received {
        seq: i64,
    },
    Email {
        email: String,
    },
    End,
}

#[derive(Debug, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case", deny_unknown_fields)]
enum AgentFrame {
    Message {
        case_id: String,
        client_id: String,
        body: String,
    },
    Typing {
        case_id: String,
        typing: bool,
    },
    History {
        case_id: String,
        #[serde(default)]
        after_seq: i64,
    },
}

fn error_frame(code: &str, message: &str, client_id: Option<&str>) -> serde_json::Value {
    let mut v = json!({"type": "error", "code": code, "message": message});
    if let Some(c) = client_id {
        v["client_id"] = json!(c);
    }
    v
}

fn app_error_frame(e: &AppError, client_id: Option<&str>) -> serde_json::Value {
    let message = match e {
        AppError::Internal(detail) => {
            tracing::error!(error = %detail, "chat: internal error");
            "internal error".to_owned()
        }
        other => other.to_string(),
    };
    error_frame(e.code(), &message, client_id)
}

/// A frame: the value's fields plus `type`.
fn typed(kind: &str, value: &impl serde::Serialize) -> serde_json::Value {
    let mut v = serde_json::to_value(value).unwrap_or_default();
    v["type"] = json!(kind);
    v
}

fn line_frame(l: &ChatLine) -> serde_json::Value {
    typed("message", l)
}

/// A line as the desk sees it: the token of a satisfaction survey's link masked, as in every
/// other view of the desk (ADR 0014); the visitor's copy keeps the working link.
fn desk_line_frame(l: &ChatLine) -> serde_json::Value {
    let mut v = line_frame(l);
    if let Some(body) = v.get_mut("body") {
        if let Some(text) = body.as_str() {
            *body = serde_json::Value::String(caseflow_app::satisfaction::mask_links(text));
        }
    }
    v
}

async fn send(session: &mut Session, v: &serde_json::Value) -> bool {
    session.text(v.to_string()).await.is_ok()
}

fn per_minute(n: u32) -> DefaultDirectRateLimiter {
    let n = NonZeroU32::new(n).unwrap_or(NonZeroU32::MIN);
    RateLimiter::direct(Quota::per_minute(n).allow_burst(n))
}

/// Receives from an optional subscription; never resolves without one.
async fn next_event(rx: &mut Option<broadcast::Receiver<Arc<ChatEvent>>>) -> Result<Arc<ChatEvent>, RecvError> {
    match rx {
        Some(rx) => rx.recv().await,
        None => std::future::pending().await,
    }
}

/// `GET /chat/ws`: the visitor's socket.
pub async fn visitor_ws(
    req: HttpRequest,
    body: web::Payload,
    app: web::Data<App>,
    limits: web::Data<Limits>,
) -> Result<HttpResponse, ApiError> {
    if !app.settings().chat.enabled {
        return Err(AppError::NotFound("page").into());
    }
    let ip = limits.client_ip(&req);
    let (res, session, stream) = actix_ws::handle(&req, body).map_err(|_| not_websocket())?;
    let stream = stream.max_frame_size(MAX_FRAME).aggregate_continuations().max_continuation_size(MAX_FRAME);
    let app = app.into_inner();
    actix_web::rt::spawn(async move {
        let gauge = app.metrics().chat_connections.with_label_values(&["visitor"]);
        gauge.inc();
        Visitor::new(app.clone(), limits.into_inner(), ip, session).run(stream).await;
        gauge.dec();
    });
    Ok(res)
}

fn not_websocket() -> ApiError {
    ApiError::new(
        StatusCode::BAD_REQUEST,
        "websocket_required",
        "this endpoint speaks WebSocket only (Upgrade: websocket)",
    )
}

struct Visitor {
    app: Arc<App>,
    limits: Arc<Limits>,
    ip: String,
    ws: Session,
    chat: Option<ChatSession>,
    rx: Option<broadcast::Receiver<Arc<ChatEvent>>>,
    /// Highest conversation position sent on this socket.
    last_sent: i64,
    /// Highest position this socket confirmed.
    confirmed: i64,
    messages: DefaultDirectRateLimiter,
    /// Every frame (bounds database work per connection).
    frames: DefaultDirectRateLimiter,
    /// Typing indicators forwarded (the rest are dropped).
    typing: DefaultDirectRateLimiter,
    /// Email addresses given on this connection.
    emails: u32,
}

impl Visitor {
    fn new(app: Arc<App>, limits: Arc<Limits>, ip: String, ws: Session) -> Self {
        let messages = per_minute(app.settings().chat.visitor_messages_per_minute);
        let frames = RateLimiter::direct(
            Quota::per_second(NonZeroU32::MIN.saturating_add(9)).allow_burst(NonZeroU32::MIN.saturating_add(39)),
        );
        let typing =
            RateLimiter::direct(Quota::per_second(NonZeroU32::MIN).allow_burst(NonZeroU32::MIN.saturating_add(1)));
        Self {
            app,
            limits,
            ip,
            ws,
            chat: None,
            rx: None,
            last_sent: 0,
            confirmed: 0,
            messages,
            frames,
            typing,
            emails: 0,
        }
    }

    async fn run(mut self, mut stream: actix_ws::AggregatedMessageStream) {
        let beat = Duration::from_secs(self.app.settings().chat.heartbeat_secs);
        let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + beat, beat);
        let mut last_heard = Instant::now();
        loop {
            tokio::select! {
                frame = stream.recv() => {
                    last_heard = Instant::now();
                    let keep = match frame {
                        Some(Ok(AggregatedMessage::Text(text))) => self.on_text(&text).await,
                        Some(Ok(AggregatedMessage::Ping(p))) => self.ws.pong(&p).await.is_ok(),
                        Some(Ok(AggregatedMessage::Pong(_))) => true,
                        Some(Ok(AggregatedMessage::Binary(_))) => {
                            send(&mut self.ws, &error_frame("invalid_frame", "send JSON text frames", None)).await
                        }
                        Some(Ok(AggregatedMessage::Close(_))) | None => false,
                        Some(Err(e)) => {
                            tracing::debug!(error = %e, "chat: visitor protocol error");
                            false
                        }
                    };
                    if !keep {
                        break;
                    }
                }
                event = next_event(&mut self.rx) => {
                    if !self.on_event(event).await {
                        break;
                    }
                }
                _ = heartbeat.tick() => {
                    if last_heard.elapsed() > beat * 3 || self.ws.ping(b"").await.is_err() {
                        break;
                    }
                }
            }
        }
        if let Some(chat) = &self.chat {
            self.app.chat_presence(chat, SessionState::Left);
        }
        let case_id = self.chat.as_ref().and_then(|c| c.case_id.clone());
        self.rx = None;
        if let Some(case_id) = case_id {
            self.app.chat_hub().forget_case(&case_id);
        }
        let _ = self.ws.close(None).await;
    }

    /// Handles one client frame; false closes the socket.
    async fn on_text(&mut self, text: &str) -> bool {
        if self.frames.check().is_err() {
            return send(&mut self.ws, &error_frame("rate_limited", "too many frames; slow down", None)).await;
        }
        let frame: VisitorFrame = match serde_json::from_str(text) {
            Ok(f) => f,
            Err(e) => return send(&mut self.ws, &error_frame("invalid_frame", &e.to_string(), None)).await,
        };
        match frame {
            VisitorFrame::Start { visitor_id, name, email, topic } => {
                if self.chat.is_some() {
                    return send(&mut self.ws, &error_frame("invalid_frame", "the session is already open", None))
                        .await;
                }
                if let Err(wait) = self.limits.check_public(&self.ip) {
                    self.app.count_rejected_submission(caseflow_core::Channel::Chat, "rate_limited");
                    let msg = format!("too many new chats from your address; retry in {wait} s");
                    return send(&mut self.ws, &error_frame("rate_limited", &msg, None)).await;
                }
                match self.app.chat_start(StartChat { visitor_id, name, email, topic }).await {
                    Ok(started) => {
                        let mut v = typed("session", &started.session);
                        v["resume_token"] = json!(started.resume_token);
                        if !send(&mut self.ws, &v).await {
                            return false;
                        }
                        // A new session continues an open case from now on: its history is
                        // only replayed to a `resume` with the session's token.
                        let from = started.session.last_seq;
                        self.opened(started.session, from).await
                    }
                    Err(e) => send(&mut self.ws, &app_error_frame(&e, None)).await,
                }
            }
            VisitorFrame::Resume { session_id, token, last_seq } => {
                if self.chat.is_some() {
                    return send(&mut self.ws, &error_frame("invalid_frame", "the session is already open", None))
                        .await;
                }
                match self.app.chat_resume(session_id, token).await {
                    Ok(chat) => {
                        if !send(&mut self.ws, &typed("session", &chat)).await {
                            return false;
                        }
                        self.opened(chat, last_seq.max(0)).await
                    }
                    Err(e) => send(&mut self.ws, &app_error_frame(&e, None)).await,
                }
            }
            VisitorFrame::Message { client_id, body } => {
                let Some(chat) = self.chat.clone() else {
                    return send(
                        &mut self.ws,
                        &error_frame("no_session", "send start or resume first", Some(&client_id)),
                    )
                    .await;
                };
                if self.messages.check().is_err() {
                    self.app.count_rejected_submission(caseflow_core::Channel::Chat, "rate_limited");
                    let f = error_frame("rate_limited", "too many messages; wait a moment", Some(&client_id));
                    return send(&mut self.ws, &f).await;
                }
                match self.app.chat_post(chat.session_id.clone(), client_id.clone(), body).await {
                    Ok(posted) => {
                        if !send(&mut self.ws, &typed("ack", &posted.ack)).await {
                            return false;
                        }
                        if posted.opened || self.rx.is_none() {
                            // A new case (the first message, or after the old case was closed)
                            // starts its own sequence.
                            let from = if posted.opened { 0 } else { self.last_sent };
                            let mut chat = chat;
                            chat.case_id = Some(posted.ack.case_id.clone());
                            chat.case_number = Some(posted.ack.case_number);
                            return self.opened(chat, from).await;
                        }
                        for line in posted.lines {
                            if !self.deliver(line).await {
                                return false;
                            }
                        }
                        true
                    }
                    Err(e) => send(&mut self.ws, &app_error_frame(&e, Some(&client_id))).await,
                }
            }
            VisitorFrame::Typing { typing } => {
                if self.typing.check().is_err() {
                    return true;
                }
                if let Some(ChatSession { case_id: Some(case_id), customer_name, .. }) = &self.chat {
                    self.app.chat_typing(case_id.clone(), ChatAuthor::Customer, customer_name.clone(), typing);
                }
                true
            }
            VisitorFrame::Received { seq } => {
                // Only what this socket sent, and only progress.
                let seq = seq.min(self.last_sent);
                if seq <= self.confirmed {
                    return true;
                }
                self.confirmed = seq;
                if let Some(chat) = &self.chat {
                    if let Err(e) = self.app.chat_confirm(chat.session_id.clone(), seq).await {
                        return send(&mut self.ws, &app_error_frame(&e, None)).await;
                    }
                }
                true
            }
            VisitorFrame::Email { email } => {
                let Some(chat) = &self.chat else {
                    return send(&mut self.ws, &error_frame("no_session", "send start or resume first", None)).await;
                };
                self.emails += 1;
                if self.emails > 3 {
                    return send(&mut self.ws, &error_frame("rate_limited", "too many addresses on one chat", None))
                        .await;
                }
                match self.app.chat_set_email(chat.session_id.clone(), email).await {
                    Ok(chat) => {
                        let v = typed("session", &chat);
                        self.chat = Some(chat);
                        send(&mut self.ws, &v).await
                    }
                    Err(e) => send(&mut self.ws, &app_error_frame(&e, None)).await,
                }
            }
            VisitorFrame::End => {
                let Some(chat) = self.chat.take() else {
                    return send(&mut self.ws, &error_frame("no_session", "send start or resume first", None)).await;
                };
                match self.app.chat_end(chat.session_id.clone()).await {
                    Ok(_) => {
                        let _ = send(&mut self.ws, &json!({"type": "ended"})).await;
                        self.rx = None;
                        false
                    }
                    Err(e) => {
                        self.chat = Some(chat);
                        send(&mut self.ws, &app_error_frame(&e, None)).await
                    }
                }
            }
        }
    }

    /// The session is open (and perhaps has a case): subscribe first, then replay from the
    /// database what the client has not seen, so nothing falls between the two.
    async fn opened(&mut self, chat: ChatSession, from_seq: i64) -> bool {
        self.last_sent = from_seq;
        self.confirmed = self.confirmed.min(from_seq);
        if let Some(case_id) = chat.case_id.clone() {
            self.rx = Some(self.app.chat_hub().subscribe_case(&case_id));
            self.app.chat_presence(&chat, SessionState::Joined);
            self.chat = Some(chat);
            return self.fill(&case_id).await;
        }
        self.chat = Some(chat);
        true
    }

    /// Sends every committed line after `last_sent`.
    async fn fill(&mut self, case_id: &str) -> bool {
        loop {
            let lines = match self.app.chat_history(case_id.to_owned(), self.last_sent, REPLAY_PAGE).await {
                Ok(l) => l,
                Err(e) => return send(&mut self.ws, &app_error_frame(&e, None)).await,
            };
            let full = i64::try_from(lines.len()).unwrap_or(0) == REPLAY_PAGE;
            for l in lines {
                self.last_sent = l.seq;
                if !send(&mut self.ws, &line_frame(&l)).await {
                    return false;
                }
            }
            if !full {
                return true;
            }
        }
    }

    /// Sends a line in order: duplicates are dropped, a gap is filled from the database.
    async fn deliver(&mut self, line: ChatLine) -> bool {
        if line.seq <= self.last_sent {
            return true;
        }
        if line.seq > self.last_sent + 1 {
            let case_id = line.case_id.clone();
            return self.fill(&case_id).await;
        }
        self.last_sent = line.seq;
        send(&mut self.ws, &line_frame(&line)).await
    }

    async fn on_event(&mut self, event: Result<Arc<ChatEvent>, RecvError>) -> bool {
        match event {
            Ok(e) => match e.as_ref() {
                ChatEvent::Message(line) => self.deliver(line.clone()).await,
                ChatEvent::Typing { from: ChatAuthor::Agent, name, typing, .. } => {
                    send(&mut self.ws, &json!({"type": "typing", "name": name, "typing": typing})).await
                }
                _ => true,
            },
            Err(RecvError::Lagged(_)) => match self.chat.as_ref().and_then(|c| c.case_id.clone()) {
                Some(case_id) => self.fill(&case_id).await,
                None => true,
            },
            Err(RecvError::Closed) => false,
        }
    }
}

/// The credential of an agent socket: `Authorization: Bearer …`, or (browsers cannot set
/// headers on a WebSocket) the subprotocol `caseflow.bearer.<token>` next to `caseflow`, or
/// the browser session cookie when the page is of this origin (a cross-site page's socket
/// would carry the cookie too, so its `Origin` must name this host).
fn socket_credential(req: &HttpRequest) -> Option<Credential> {
    if let Some(v) = req.headers().get(actix_web::http::header::AUTHORIZATION).and_then(|v| v.to_str().ok()) {
        return v
            .split_once(' ')
            .filter(|(s, _)| s.eq_ignore_ascii_case("bearer"))
            .map(|(_, t)| t.trim().to_owned())
            .filter(|t| !t.is_empty())
            .map(Credential::Bearer);
    }
    let offered = req
        .headers()
        .get(actix_web::http::header::SEC_WEBSOCKET_PROTOCOL)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(',').map(str::trim).find_map(|p| p.strip_prefix("caseflow.bearer.")))
        .map(str::to_owned);
    if let Some(t) = offered {
        return Some(Credential::Bearer(t));
    }
    let origin = req.headers().get(actix_web::http::header::ORIGIN).and_then(|v| v.to_str().ok())?;
    let host = req.headers().get(actix_web::http::header::HOST).and_then(|v| v.to_str().ok())?;
    // Scheme included: an `http://` page must not borrow the session of the HTTPS site.
    let scheme = req.connection_info().scheme().to_owned();
    let same = origin == format!("{scheme}://{host}");
    if !same {
        return None;
    }
    crate::session::cookie(req, crate::session::SESSION_COOKIE).map(Credential::Session)
}

#[utoipa::path(
    get,
    path = "/api/v1/chat/ws",
    tag = "chat",
    summary = "Agents' live-chat WebSocket",
    description = "Upgrade to a WebSocket (`Authorization: Bearer`, or the subprotocol \
        `caseflow.bearer.<token>` offered with `caseflow`, or a same-origin browser session \
        cookie). Carries every chat line, visitor \
        typing and presence; accepts `message`, `typing` and `history` frames. See docs/chat.md.",
    operation_id = "chatAgentSocket",
    responses((status = 101, description = "switching to the WebSocket protocol"))
)]
pub async fn agent_ws(req: HttpRequest, body: web::Payload, app: web::Data<App>) -> Result<HttpResponse, ApiError> {
    if !app.settings().chat.enabled {
        return Err(AppError::NotFound("page").into());
    }
    let token = socket_credential(&req).ok_or(AppError::Unauthenticated("missing Authorization: Bearer token"))?;
    let who = crate::session::recheck(&app, &token).await?;
    who.require_read()?;
    let name = app.display_name(&who).await?;
    drop(who);
    let (res, session, stream) =
        actix_ws::handle_with_protocols(&req, body, &["caseflow"]).map_err(|_| not_websocket())?;
    let stream = stream.max_frame_size(MAX_FRAME).aggregate_continuations().max_continuation_size(MAX_FRAME);
    let app = app.into_inner();
    actix_web::rt::spawn(async move {
        let gauge = app.metrics().chat_connections.with_label_values(&["agent"]);
        gauge.inc();
        agent_loop(app.clone(), token, name, session, stream).await;
        gauge.dec();
    });
    Ok(res)
}

/// The credential is checked again before every write and at every heartbeat, so a revoked
/// token, a deactivated agent or an expired session loses the socket.
async fn agent_loop(
    app: Arc<App>,
    token: Credential,
    name: String,
    mut ws: Session,
    mut stream: actix_ws::AggregatedMessageStream,
) {
    let mut rx = Some(app.chat_hub().subscribe_agents());
    let beat = Duration::from_secs(app.settings().chat.heartbeat_secs);
    let mut heartbeat = tokio::time::interval_at(tokio::time::Instant::now() + beat, beat);
    let mut last_heard = Instant::now();
    loop {
        let keep = tokio::select! {
            frame = stream.recv() => {
                last_heard = Instant::now();
                match frame {
                    Some(Ok(AggregatedMessage::Text(text))) => match crate::session::recheck(&app, &token).await {
                        Ok(who) => agent_frame(&app, &who, &name, &mut ws, &text).await,
                        Err(e) => {
                            let _ = send(&mut ws, &app_error_frame(&e, None)).await;
                            false
                        }
                    },
                    Some(Ok(AggregatedMessage::Ping(p))) => ws.pong(&p).await.is_ok(),
                    Some(Ok(AggregatedMessage::Pong(_))) => true,
                    Some(Ok(AggregatedMessage::Binary(_))) => {
                        send(&mut ws, &error_frame("invalid_frame", "send JSON text frames", None)).await
                    }
                    Some(Ok(AggregatedMessage::Close(_))) | None | Some(Err(_)) => false,
                }
            }
            event = next_event(&mut rx) => match event {
                Ok(e) => match e.as_ref() {
                    ChatEvent::Message(line) => send(&mut ws, &desk_line_frame(line)).await,
                    ChatEvent::Typing { case_id, from: ChatAuthor::Customer, name, typing } => {
                        send(&mut ws, &json!({"type": "typing", "case_id": case_id, "name": name, "typing": typing})).await
                    }
                    ChatEvent::Session { case_id, session_id, state, customer_name } => {
                        let f = json!({"type": "presence", "case_id": case_id, "session_id": session_id,
                                       "state": state, "customer_name": customer_name});
                        send(&mut ws, &f).await
                    }
                    ChatEvent::Typing { .. } => true,
                },
                // Fell behind: the client asks for `history` of the cases it shows.
                Err(RecvError::Lagged(n)) => send(&mut ws, &json!({"type": "resync", "missed": n})).await,
                Err(RecvError::Closed) => false,
            },
            _ = heartbeat.tick() => match crate::session::recheck(&app, &token).await {
                Ok(_) => last_heard.elapsed() <= beat * 3 && ws.ping(b"").await.is_ok(),
                Err(e) => {
                    let _ = send(&mut ws, &app_error_frame(&e, None)).await;
                    false
                }
            },
        };
        if !keep {
            break;
        }
    }
    let _ = ws.close(None).await;
}

async fn agent_frame(app: &App, who: &Principal, name: &str, ws: &mut Session, text: &str) -> bool {
    let frame: AgentFrame = match serde_json::from_str(text) {
        Ok(f) => f,
        Err(e) => return send(ws, &error_frame("invalid_frame", &e.to_string(), None)).await,
    };
    match frame {
        AgentFrame::Message { case_id, client_id, body } => {
            match app.chat_agent_reply(who, case_id, client_id.clone(), body).await {
                Ok(ack) => send(ws, &typed("ack", &ack)).await,
                Err(e) => send(ws, &app_error_frame(&e, Some(&client_id))).await,
            }
        }
        AgentFrame::Typing { case_id, typing } => {
            if let Err(e) = who.require_write() {
                return send(ws, &app_error_frame(&e, None)).await;
            }
            app.chat_typing(case_id, ChatAuthor::Agent, name.to_owned(), typing);
            true
        }
        AgentFrame::History { case_id, after_seq } => {
            match app.chat_history_for(who, case_id.clone(), after_seq.max(0), REPLAY_PAGE).await {
                Ok(lines) => send(ws, &json!({"type": "history", "case_id": case_id, "lines": lines})).await,
                Err(e) => send(ws, &app_error_frame(&e, None)).await,
            }
        }
    }
}
