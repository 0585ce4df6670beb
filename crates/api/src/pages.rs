//! Public pages: the support form (`/support`, works without JavaScript), the standalone chat
//! page (`/chat`), the embeddable widget script and the shared stylesheet. Server-rendered
//! HTML; every value from a visitor is escaped.

use crate::error::ApiError;
use crate::guard::{set_limit_headers, Limits};
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse};
use caseflow_app::support::{FieldError, SubmitError, SupportReceipt, SupportRequest, Upload};
use caseflow_app::{App, AppError};
use caseflow_core::Channel;
use futures_util::StreamExt;

const CSS: &str = include_str!("../static/caseflow.css");
const WIDGET_JS: &str = include_str!("../static/chat-widget.js");

use caseflow_core::html::escape as esc;

pub(crate) fn page(title: &str, body: &str) -> String {
    format!(
        "<!doctype html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n\
         <meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n\
         <title>{t}</title>\n<link rel=\"stylesheet\" href=\"/static/caseflow.css\">\n</head>\n\
         <body>\n<main class=\"cf-page\" id=\"main\">\n{body}\n</main>\n</body>\n</html>\n",
        t = esc(title)
    )
}

pub(crate) fn html(status: StatusCode, body: String) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'self'; style-src 'self'; form-action 'self'; frame-ancestors 'none'",
        ))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        // A survey page's URL carries its token: never sent on as a referrer.
        .insert_header(("Referrer-Policy", "no-referrer"))
        .body(body)
}

fn disabled() -> ApiError {
    AppError::NotFound("page").into()
}

/// What the form shows: the values typed so far and the errors to correct.
#[derive(Default)]
struct FormState {
    values: SupportRequest,
    errors: Vec<FieldError>,
    /// A message above the form (rate limit, upload too large, unavailable).
    notice: Option<String>,
}

impl FormState {
    fn error(&self, field: &str) -> Option<&str> {
        self.errors.iter().find(|e| e.field == field).map(|e| e.message.as_str())
    }
}

fn label_of(field: &str) -> &'static str {
    match field {
        "name" => "Your name",
        "email" => "Email address",
        "topic" => "Topic",
        "subject" => "Subject",
        "message" => "How can we help?",
        "attachments" => "Attachments",
        _ => "Form",
    }
}

fn render_form(app: &App, st: &FormState) -> String {
    let s = app.settings();
    let mut out = format!("<h1>{}</h1>\n", esc(&s.web_form.title));
    if !st.errors.is_empty() {
        out.push_str(&format!(
            "<div class=\"cf-summary\" role=\"alert\" aria-labelledby=\"cf-summary-title\" tabindex=\"-1\" id=\"cf-summary\">\n\
             <h2 id=\"cf-summary-title\">Please correct {} {}</h2>\n<ul>\n",
            st.errors.len(),
            if st.errors.len() == 1 { "field" } else { "fields" }
        ));
        for e in &st.errors {
            out.push_str(&format!(
                "<li><a href=\"#f-{f}\">{l}: {m}</a></li>\n",
                f = esc(&e.field),
                l = esc(label_of(&e.field)),
                m = esc(&e.message)
            ));
        }
        out.push_str("</ul>\n</div>\n");
    }
    if let Some(n) = &st.notice {
        out.push_str(&format!("<p class=\"cf-notice\" role=\"alert\">{}</p>\n", esc(n)));
    }
    out.push_str("<p>Fields marked * are required. We answer by email.</p>\n");
    out.push_str("<form method=\"post\" action=\"/support\" enctype=\"multipart/form-data\" class=\"cf-form\">\n");
    let sid = st.values.submission_id.clone().unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    out.push_str(&format!("<input type=\"hidden\" name=\"submission_id\" value=\"{}\">\n", esc(&sid)));
    let v = &st.values;
    out.push_str(&input(st, "name", "text", &v.name, "autocomplete=\"name\" maxlength=\"200\""));
    out.push_str(&input(st, "email", "email", &v.email, "autocomplete=\"email\" maxlength=\"254\""));
    if !s.web_form.topics.is_empty() {
        let chosen = v.topic.as_deref().unwrap_or_default();
        out.push_str(&field_open(st, "topic"));
        out.push_str(&format!("<select id=\"f-topic\" name=\"topic\" required{}>\n", described(st, "topic")));
        out.push_str("<option value=\"\">Choose a topic</option>\n");
        for t in &s.web_form.topics {
            out.push_str(&format!(
                "<option value=\"{k}\"{sel}>{l}</option>\n",
                k = esc(&t.key),
                l = esc(&t.label),
                sel = if t.key == chosen { " selected" } else { "" }
            ));
        }
        out.push_str("</select>\n</div>\n");
    }
    out.push_str(&input(st, "subject", "text", &v.subject, "maxlength=\"200\""));
    out.push_str(&field_open(st, "message"));
    out.push_str(&format!(
        "<textarea id=\"f-message\" name=\"message\" rows=\"8\" required{}>{}</textarea>\n</div>\n",
        described(st, "message"),
        esc(&v.message)
    ));
    out.push_str(&format!(
        "<div class=\"cf-field\">\n<label for=\"f-attachments\">Attachments (optional, up to {n} files of {mb} MB)</label>\n\
         <input id=\"f-attachments\" name=\"attachments\" type=\"file\" multiple{d}>\n{e}</div>\n",
        n = s.web_form.max_attachments,
        mb = s.limits.max_attachment_bytes / (1024 * 1024),
        d = described(st, "attachments"),
        e = error_line(st, "attachments"),
    ));
    // The honeypot: hidden from people (and from assistive technology), filled by bots.
    out.push_str(
        "<div class=\"cf-hp\" aria-hidden=\"true\">\n<label for=\"f-website\">Leave this field empty</label>\n\
         <input id=\"f-website\" name=\"website\" type=\"text\" tabindex=\"-1\" autocomplete=\"off\">\n</div>\n",
    );
    out.push_str("<button type=\"submit\">Send request</button>\n</form>\n");
    if s.chat.enabled {
        out.push_str("<p>Prefer to talk now? <a href=\"/chat\">Start a live chat</a>.</p>\n");
    }
    out
}

fn described(st: &FormState, field: &str) -> String {
    if st.error(field).is_some() {
        format!(" aria-invalid=\"true\" aria-describedby=\"e-{field}\"")
    } else {
        String::new()
    }
}

fn error_line(st: &FormState, field: &str) -> String {
    match st.error(field) {
        Some(m) => format!("<p class=\"cf-error\" id=\"e-{field}\">{}</p>\n", esc(m)),
        None => String::new(),
    }
}

fn field_open(st: &FormState, field: &str) -> String {
    format!(
        "<div class=\"cf-field{cls}\">\n<label for=\"f-{field}\">{label} *</label>\n{err}",
        cls = if st.error(field).is_some() { " cf-invalid" } else { "" },
        label = esc(label_of(field)),
        err = error_line(st, field)
    )
}

fn input(st: &FormState, field: &str, kind: &str, value: &str, extra: &str) -> String {
    format!(
        "{open}<input id=\"f-{field}\" name=\"{field}\" type=\"{kind}\" value=\"{v}\" required {extra}{d}>\n</div>\n",
        open = field_open(st, field),
        v = esc(value),
        d = described(st, field)
    )
}

fn confirmation(receipt: Option<&SupportReceipt>, email: &str) -> String {
    let mut out = String::from("<h1>Thank you</h1>\n");
    match receipt {
        Some(r) => {
            out.push_str(&format!(
                "<p role=\"status\">We have received your request. Your case number is \
                 <strong class=\"cf-case-number\">#{n}</strong>.</p>\n",
                n = r.case_number
            ));
            if r.acknowledgement_queued {
                out.push_str(&format!("<p>A confirmation is on its way to {}.</p>\n", esc(email)));
            }
            out.push_str(&format!(
                "<p>Quote [#{}] when you write to us about it; replies to our email reach the same case.</p>\n",
                r.case_number
            ));
        }
        None => out.push_str("<p role=\"status\">We have received your request.</p>\n"),
    }
    out.push_str("<p><a href=\"/support\">Send another request</a></p>\n");
    out
}

/// `GET /support`.
pub async fn support_form(app: web::Data<App>) -> Result<HttpResponse, ApiError> {
    if !app.settings().web_form.enabled {
        return Err(disabled());
    }
    let body = render_form(&app, &FormState::default());
    Ok(html(StatusCode::OK, page(&app.settings().web_form.title, &body)))
}

/// Why reading the posted form failed.
enum ReadError {
    TooLarge,
    Malformed(String),
}

const TEXT_FIELDS: &[&str] = &["name", "email", "topic", "subject", "message", "submission_id", "website"];

/// Reads a `multipart/form-data` or `application/x-www-form-urlencoded` body within the
/// upload limit.
async fn read_form(req: &HttpRequest, payload: web::Payload, app: &App) -> Result<SupportRequest, ReadError> {
    let max_upload = app.settings().web_form.max_upload_bytes;
    let ctype = req.headers().get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()).unwrap_or_default().to_owned();
    if ctype.starts_with("application/x-www-form-urlencoded") {
        let mut body = web::BytesMut::new();
        let mut payload = payload.into_inner();
        while let Some(chunk) = payload.next().await {
            let chunk = chunk.map_err(|e| ReadError::Malformed(e.to_string()))?;
            if body.len() + chunk.len() > app.settings().limits.max_body_bytes {
                return Err(ReadError::TooLarge);
            }
            body.extend_from_slice(&chunk);
        }
        let pairs: Vec<(String, String)> =
            serde_urlencoded::from_bytes(&body).map_err(|e| ReadError::Malformed(e.to_string()))?;
        let mut r = SupportRequest::default();
        for (k, v) in pairs {
            set_field(&mut r, &k, v);
        }
        return Ok(r);
    }
    if !ctype.starts_with("multipart/form-data") {
        return Err(ReadError::Malformed("send multipart/form-data or application/x-www-form-urlencoded".into()));
    }
    let mut mp = actix_multipart::Multipart::new(req.headers(), payload.into_inner());
    let mut r = SupportRequest::default();
    let mut total = 0usize;
    // Over the limit, the rest is read without being kept (up to twice the limit), so the
    // browser gets the answer instead of a reset connection.
    let mut too_large = false;
    while let Some(field) = mp.next().await {
        let mut field = field.map_err(|e| ReadError::Malformed(e.to_string()))?;
        let name = field.name().unwrap_or_default().to_owned();
        let filename = field.content_disposition().and_then(|d| d.get_filename()).map(str::to_owned);
        let content_type = field.content_type().map(|m| m.essence_str().to_owned()).unwrap_or_default();
        let mut bytes = Vec::new();
        while let Some(chunk) = field.next().await {
            let chunk = chunk.map_err(|e| ReadError::Malformed(e.to_string()))?;
            total += chunk.len();
            too_large |= total > max_upload;
            if total > max_upload.saturating_mul(2) {
                return Err(ReadError::TooLarge);
            }
            if !too_large {
                bytes.extend_from_slice(&chunk);
            }
        }
        if too_large {
            continue;
        }
        match (name.as_str(), filename) {
            // Browsers send an empty part when no file was chosen.
            ("attachments", Some(filename)) if !(filename.is_empty() && bytes.is_empty()) => {
                r.attachments.push(Upload { filename, content_type, bytes });
            }
            (n, None) if TEXT_FIELDS.contains(&n) => {
                set_field(&mut r, n, String::from_utf8_lossy(&bytes).into_owned());
            }
            // Unknown fields are ignored, as browsers' forms may carry extras.
            _ => {}
        }
    }
    if too_large {
        return Err(ReadError::TooLarge);
    }
    Ok(r)
}

fn set_field(r: &mut SupportRequest, name: &str, v: String) {
    match name {
        "name" => r.name = v,
        "email" => r.email = v,
        "topic" => r.topic = Some(v),
        "subject" => r.subject = v,
        "message" => r.message = v,
        "submission_id" => r.submission_id = Some(v),
        "website" => r.website = Some(v),
        _ => {}
    }
}

fn too_many(app: &App, limits: &Limits, wait: u64, body: String) -> HttpResponse {
    app.count_rejected_submission(Channel::Web, "rate_limited");
    let mut res = html(StatusCode::TOO_MANY_REQUESTS, body);
    set_limit_headers(&mut res, limits.public_limit(), wait);
    res
}

/// `POST /support`: the form, with or without JavaScript.
pub async fn support_submit(
    req: HttpRequest,
    payload: web::Payload,
    app: web::Data<App>,
    limits: web::Data<Limits>,
) -> Result<HttpResponse, ApiError> {
    if !app.settings().web_form.enabled {
        return Err(disabled());
    }
    let title = app.settings().web_form.title.clone();
    let ip = limits.client_ip(&req);
    let request = match read_form(&req, payload, &app).await {
        Ok(r) => r,
        Err(ReadError::TooLarge) => {
            app.count_rejected_submission(Channel::Web, "too_large");
            let st = FormState {
                notice: Some(format!(
                    "The upload is larger than {} MB in all. Please attach fewer or smaller files.",
                    app.settings().web_form.max_upload_bytes / (1024 * 1024)
                )),
                ..FormState::default()
            };
            return Ok(html(StatusCode::PAYLOAD_TOO_LARGE, page(&title, &render_form(&app, &st))));
        }
        Err(ReadError::Malformed(why)) => {
            tracing::info!(reason = %why, "web form: unreadable body");
            let st = FormState {
                notice: Some("The form could not be read. Please try again.".into()),
                ..FormState::default()
            };
            return Ok(html(StatusCode::BAD_REQUEST, page(&title, &render_form(&app, &st))));
        }
    };
    if let Err(wait) = limits.check_public(&ip) {
        let mut values = request;
        values.attachments.clear();
        let st = FormState {
            values,
            notice: Some(format!(
                "Too many requests from your network. Please wait {wait} seconds and send the form again."
            )),
            ..FormState::default()
        };
        return Ok(too_many(&app, &limits, wait, page(&title, &render_form(&app, &st))));
    }
    let email = request.email.clone();
    let mut values = request.clone();
    values.attachments.clear();
    match app.submit_support(request).await {
        Ok(receipt) => Ok(html(StatusCode::OK, page("Request received", &confirmation(Some(&receipt), &email)))),
        // Bots learn nothing: the page looks like a success, and nothing was stored.
        Err(SubmitError::Spam) => Ok(html(StatusCode::OK, page("Request received", &confirmation(None, "")))),
        Err(SubmitError::Fields(errors)) => {
            let st = FormState { values, errors, notice: None };
            Ok(html(StatusCode::UNPROCESSABLE_ENTITY, page(&title, &render_form(&app, &st))))
        }
        Err(SubmitError::App(e)) => {
            let status = crate::error::status_for(&e);
            let notice = if status.is_server_error() {
                "We could not store your request just now. Nothing was lost on your side: please send the form again in a minute."
            } else {
                "Your request could not be taken. Please check the form and try again."
            };
            if let AppError::Internal(detail) = &e {
                tracing::error!(error = %detail, "web form: internal error");
            }
            let st = FormState { values, notice: Some(notice.into()), ..FormState::default() };
            Ok(html(status, page(&title, &render_form(&app, &st))))
        }
    }
}

/// `GET /chat`: the standalone chat page (the widget, opened full-page).
pub async fn chat_page(app: web::Data<App>) -> Result<HttpResponse, ApiError> {
    if !app.settings().chat.enabled {
        return Err(disabled());
    }
    let body = "<h1>Live chat</h1>\n<p>Talk to our support team. Your conversation is kept: you can close this \
                page and come back, and we answer by email if you are gone.</p>\n\
                <div id=\"caseflow-chat\" data-caseflow-inline=\"true\"></div>\n\
                <noscript><p>The live chat needs JavaScript. Please use the \
                <a href=\"/support\">support form</a> instead.</p></noscript>\n\
                <script src=\"/chat/widget.js\" defer></script>";
    Ok(html(StatusCode::OK, page("Live chat", body)))
}

/// `GET /chat/widget.js`: the embeddable widget (one `<script>` tag on any site).
pub async fn widget_js(app: web::Data<App>) -> Result<HttpResponse, ApiError> {
    if !app.settings().chat.enabled {
        return Err(disabled());
    }
    Ok(HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .body(WIDGET_JS))
}

/// `GET /static/caseflow.css`.
pub async fn stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "public, max-age=300"))
        .insert_header(("Access-Control-Allow-Origin", "*"))
        .body(CSS)
}

const APP_JS: &str = include_str!("../static/app.js");
const APP_CSS: &str = include_str!("../static/app.css");

/// The agent inbox and supervisor console: a static shell, the script does the rest through
/// the API (docs/ui.md). Scripts only from this origin, no inline script or style.
pub async fn agent_app() -> HttpResponse {
    let body = r##"<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Caseflow</title>
<link rel="stylesheet" href="/static/app.css">
<script src="/static/app.js" defer></script>
</head>
<body>
<a class="cf-skip" href="#cf-main">Skip to content</a>
<header class="cf-top">
<span class="cf-brand">Caseflow</span>
<nav id="cf-nav" aria-label="Main" hidden>
<a href="#/inbox/mine" data-section="inbox">Inbox</a>
<a href="#/supervisor" data-section="supervisor" id="cf-nav-supervisor">Supervisor <span id="cf-alert-badge" class="cf-badge" hidden></span></a>
<a href="#/admin" data-section="admin" id="cf-nav-admin" hidden>Admin</a>
<span class="cf-spacer"></span>
<label for="cf-presence">Presence</label>
<select id="cf-presence"><option value="online">Online</option><option value="away">Away</option><option value="offline">Offline</option></select>
<span id="cf-me"></span>
<button type="button" id="cf-logout" class="cf-secondary">Log out</button>
</nav>
</header>
<div id="cf-alert-banner" class="cf-alert-banner" role="alert" hidden></div>
<main id="cf-main" tabindex="-1"><p class="cf-muted">Loading…</p></main>
<div id="cf-toast" role="status" aria-live="polite"></div>
</body>
</html>
"##;
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .insert_header((
            "Content-Security-Policy",
            "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; \
             connect-src 'self'; frame-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
        ))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .insert_header(("Referrer-Policy", "same-origin"))
        .body(body)
}

/// The inbox script.
pub async fn app_script() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/javascript; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .insert_header(("X-Content-Type-Options", "nosniff"))
        .body(APP_JS)
}

/// The inbox stylesheet.
pub async fn app_stylesheet() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::CACHE_CONTROL, "no-cache"))
        .body(APP_CSS)
}

/// `/` leads to the agent inbox.
pub async fn to_app() -> HttpResponse {
    HttpResponse::Found().insert_header((header::LOCATION, "/app")).finish()
}
