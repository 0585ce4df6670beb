//! Authentication and authorization: agent passwords (argon2), agent session tokens (JWT),
//! integrator API tokens (random, stored as SHA-256), and the permission checks every use case
//! makes before it touches data.

use crate::error::{AppError, AppResult};
use argon2::password_hash::rand_core::{OsRng, RngCore};
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::Argon2;
use caseflow_core::{ActorKind, AgentId, ApiTokenId, Role};
use jsonwebtoken::{decode, encode, Algorithm, DecodingKey, EncodingKey, Header, Validation};
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

/// What an integrator token may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Scope {
    /// Read cases, customers, agents, teams and skills.
    Read,
    /// Create and change cases, messages and customers (implies read).
    Write,
    /// Everything, including agents, teams, skills and tokens.
    Admin,
}

impl Scope {
    /// Parses one scope name.
    pub fn parse(s: &str) -> AppResult<Self> {
        match s {
            "read" => Ok(Scope::Read),
            "write" => Ok(Scope::Write),
            "admin" => Ok(Scope::Admin),
            other => Err(AppError::invalid(format!(
                "unknown scope {:?}; expected read, write or admin",
                other.chars().take(32).collect::<String>()
            ))),
        }
    }

    /// The stored name.
    pub fn as_str(self) -> &'static str {
        match self {
            Scope::Read => "read",
            Scope::Write => "write",
            Scope::Admin => "admin",
        }
    }
}

/// Who is calling.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Principal {
    /// A logged-in agent, supervisor or admin.
    Agent { id: AgentId, role: Role },
    /// An integrator using an API token.
    Token { id: ApiTokenId, scopes: Vec<Scope> },
    /// The system itself: CLI commands, demo seeding, background workers.
    System,
}

impl Principal {
    fn has_scope(&self, wanted: Scope) -> bool {
        match self {
            Principal::Token { scopes, .. } => scopes
                .iter()
                .any(|s| *s == Scope::Admin || *s == wanted || (wanted == Scope::Read && *s == Scope::Write)),
            _ => false,
        }
    }

    /// May read case data.
    pub fn require_read(&self) -> AppResult<()> {
        match self {
            Principal::Agent { .. } | Principal::System => Ok(()),
            _ if self.has_scope(Scope::Read) => Ok(()),
            _ => Err(AppError::Forbidden("this token lacks the `read` scope".into())),
        }
    }

    /// May change case and customer data.
    pub fn require_write(&self) -> AppResult<()> {
        match self {
            Principal::Agent { .. } | Principal::System => Ok(()),
            _ if self.has_scope(Scope::Write) => Ok(()),
            _ => Err(AppError::Forbidden("this token lacks the `write` scope".into())),
        }
    }

    /// May oversee other agents' work (assign, set skills and presence of others).
    pub fn require_supervisor(&self) -> AppResult<()> {
        match self {
            Principal::Agent { role, .. } if role.is_supervisor_or_admin() => Ok(()),
            Principal::System => Ok(()),
            _ if self.has_scope(Scope::Admin) => Ok(()),
            _ => Err(AppError::Forbidden("this needs the supervisor or admin role".into())),
        }
    }

    /// May configure the system (agents, teams, skills, tokens).
    pub fn require_admin(&self) -> AppResult<()> {
        match self {
            Principal::Agent { role: Role::Admin, .. } | Principal::System => Ok(()),
            _ if self.has_scope(Scope::Admin) => Ok(()),
            _ => Err(AppError::Forbidden("this needs the admin role".into())),
        }
    }

    /// The agent behind this principal, if any.
    pub fn agent_id(&self) -> Option<&AgentId> {
        match self {
            Principal::Agent { id, .. } => Some(id),
            _ => None,
        }
    }

    /// How this principal appears in audit logs.
    pub fn actor(&self) -> (ActorKind, Option<String>) {
        match self {
            Principal::Agent { id, .. } => (ActorKind::Agent, Some(id.to_string())),
            Principal::Token { id, .. } => (ActorKind::Integration, Some(id.to_string())),
            Principal::System => (ActorKind::System, None),
        }
    }
}

/// Recently verified API tokens, so that an integrator's requests do not each cost a database
/// round trip. Entries live `TTL_SECS`; a revocation on this node drops them at once, other
/// nodes notice within the TTL.
#[derive(Debug, Default)]
pub struct TokenCache {
    entries: std::sync::RwLock<std::collections::HashMap<String, (Principal, chrono::DateTime<chrono::Utc>)>>,
}

impl TokenCache {
    /// How long a verified token is trusted without asking the database again.
    pub const TTL_SECS: i64 = 10;
    const MAX_ENTRIES: usize = 10_000;

    /// The principal for a token hash verified less than `TTL_SECS` before `now`.
    pub fn get(&self, hash: &str, now: chrono::DateTime<chrono::Utc>) -> Option<Principal> {
        let entries = self.entries.read().ok()?;
        entries
            .get(hash)
            .filter(|(_, at)| (now - *at).num_seconds() < Self::TTL_SECS && *at <= now)
            .map(|(p, _)| p.clone())
    }

    /// Remembers a verified token.
    pub fn put(&self, hash: String, principal: Principal, now: chrono::DateTime<chrono::Utc>) {
        if let Ok(mut entries) = self.entries.write() {
            if entries.len() >= Self::MAX_ENTRIES {
                entries.retain(|_, (_, at)| (now - *at).num_seconds() < Self::TTL_SECS);
                if entries.len() >= Self::MAX_ENTRIES {
                    entries.clear();
                }
            }
            entries.insert(hash, (principal, now));
        }
    }

    /// Drops every cached entry of the token `id` (after a revocation).
    /// Drops one cached entry (a logged-out browser session).
    pub fn forget(&self, key: &str) {
        if let Ok(mut entries) = self.entries.write() {
            entries.remove(key);
        }
    }

    pub fn forget_token(&self, id: &str) {
        if let Ok(mut entries) = self.entries.write() {
            entries.retain(|_, (p, _)| !matches!(p, Principal::Token { id: t, .. } if t.as_str() == id));
        }
    }
}

/// Hashes a password with argon2id and a random salt (PHC string format).
pub fn hash_password(password: &str) -> AppResult<String> {
    let salt = SaltString::generate(&mut OsRng);
    Argon2::default()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| AppError::Internal(format!("password hashing failed: {e}")))
}

/// Checks a password against a stored PHC hash.
pub fn verify_password(password: &str, hash: &str) -> bool {
    PasswordHash::new(hash)
        .map(|parsed| Argon2::default().verify_password(password.as_bytes(), &parsed).is_ok())
        .unwrap_or(false)
}

/// Session token claims.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Claims {
    pub sub: String,
    pub role: Role,
    pub iss: String,
    pub iat: i64,
    pub exp: i64,
    /// `session` for a browser session (cookie only); absent for a bearer token.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub typ: Option<String>,
}

/// The `typ` claim of browser session tokens.
pub const SESSION_TYP: &str = "session";

/// Signs and checks agent session tokens.
#[derive(Clone)]
pub struct JwtKeys {
    encoding: EncodingKey,
    decoding: DecodingKey,
    /// Derives the CSRF token of a browser session (HMAC with the signing secret).
    csrf_key: Vec<u8>,
    issuer: String,
    pub ttl_secs: i64,
}

impl std::fmt::Debug for JwtKeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("JwtKeys").field("issuer", &self.issuer).finish_non_exhaustive()
    }
}

impl JwtKeys {
    /// Keys for HS256 with `secret`.
    pub fn new(secret: &str, issuer: &str, ttl_secs: u64) -> Self {
        Self {
            encoding: EncodingKey::from_secret(secret.as_bytes()),
            decoding: DecodingKey::from_secret(secret.as_bytes()),
            csrf_key: secret.as_bytes().to_vec(),
            issuer: issuer.to_owned(),
            ttl_secs: i64::try_from(ttl_secs).unwrap_or(900),
        }
    }

    /// Issues a token for `agent` valid from `now` for the configured lifetime.
    pub fn issue(&self, agent: &AgentId, role: Role, now: i64) -> AppResult<String> {
        self.sign(Claims {
            sub: agent.to_string(),
            role,
            iss: self.issuer.clone(),
            iat: now,
            exp: now + self.ttl_secs,
            typ: None,
        })
    }

    /// Issues a browser session token (`typ: session`), valid from `now` for `ttl_secs`: only
    /// accepted from the session cookie, never as a bearer token.
    pub fn issue_session(&self, agent: &AgentId, role: Role, now: i64, ttl_secs: i64) -> AppResult<String> {
        self.sign(Claims {
            sub: agent.to_string(),
            role,
            iss: self.issuer.clone(),
            iat: now,
            exp: now + ttl_secs,
            typ: Some(SESSION_TYP.to_owned()),
        })
    }

    fn sign(&self, claims: Claims) -> AppResult<String> {
        encode(&Header::new(Algorithm::HS256), &claims, &self.encoding)
            .map_err(|e| AppError::Internal(format!("token signing failed: {e}")))
    }

    /// Verifies signature, issuer and expiry (against `now`, with no leeway).
    pub fn verify(&self, token: &str, now: i64) -> AppResult<Claims> {
        let mut v = Validation::new(Algorithm::HS256);
        v.set_issuer(&[self.issuer.as_str()]);
        v.set_required_spec_claims(&["exp", "iss", "sub"]);
        // Expiry is checked below against the injected clock, not the system clock.
        v.validate_exp = false;
        v.leeway = 0;
        let data = decode::<Claims>(token, &self.decoding, &v)
            .map_err(|_| AppError::Unauthenticated("the token is not valid"))?;
        if data.claims.exp <= now {
            return Err(AppError::TokenExpired);
        }
        Ok(data.claims)
    }
}

impl JwtKeys {
    /// The CSRF token that goes with a browser session token: hex HMAC-SHA256 of the session
    /// under the signing secret. Only the server can compute it, and only a page that could
    /// read it (same origin) can send it back in `X-CSRF-Token`.
    pub fn csrf_token(&self, session: &str) -> String {
        use hmac::{Hmac, Mac};
        let Ok(mut mac) = Hmac::<Sha256>::new_from_slice(&self.csrf_key) else { return String::new() };
        mac.update(b"caseflow-csrf:");
        mac.update(session.as_bytes());
        hex(&mac.finalize().into_bytes())
    }

    /// Whether `presented` is the CSRF token of `session` (compared in constant time).
    pub fn csrf_ok(&self, session: &str, presented: &str) -> bool {
        let expected = self.csrf_token(session);
        expected.len() == presented.len()
            && expected.bytes().zip(presented.bytes()).fold(0u8, |acc, (a, b)| acc | (a ^ b)) == 0
    }
}

/// Prefix of every integrator token, so leaked tokens are easy to recognise and scan for.
pub const API_TOKEN_PREFIX: &str = "cfk_";

/// A new random API token (256 bits) in its plaintext form.
pub fn generate_api_token() -> String {
    let mut bytes = [0u8; 32];
    OsRng.fill_bytes(&mut bytes);
    format!("{API_TOKEN_PREFIX}{}", hex(&bytes))
}

/// The stored form of an API token. A fast hash is right here: the token is 256 random bits,
/// so there is nothing to brute-force, and it is checked on every request.
pub fn hash_api_token(token: &str) -> String {
    hex(&Sha256::digest(token.as_bytes()))
}

/// Lower-case hex. Runs on every API request (the token cache is keyed by the token's hash),
/// so no `format!` per byte.
fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        s.push(char::from(DIGITS[usize::from(b >> 4)]));
        s.push(char::from(DIGITS[usize::from(b & 0x0f)]));
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_hashes_are_lower_case_hex_sha256() {
        assert_eq!(hex(&[0x00, 0x0f, 0xa5, 0xff]), "000fa5ff");
        // FIPS 180-2's test vector for "abc".
        assert_eq!(hash_api_token("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }

    #[test]
    fn passwords_verify_only_with_the_right_password() {
        let h = hash_password("correct horse").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse", &h));
        assert!(!verify_password("wrong horse", &h));
        assert!(!verify_password("correct horse", "not a hash"));
    }

    #[test]
    fn jwt_round_trip_expiry_and_tamper() {
        let keys = JwtKeys::new("0123456789abcdef0123456789abcdef", "caseflow", 900);
        let id = AgentId::new("a1");
        let t = keys.issue(&id, Role::Supervisor, 1_000).unwrap();
        let c = keys.verify(&t, 1_100).unwrap();
        assert_eq!(c.sub, "a1");
        assert_eq!(c.role, Role::Supervisor);
        assert!(matches!(keys.verify(&t, 1_900), Err(AppError::TokenExpired)));
        let other = JwtKeys::new("another-secret-another-secret-another", "caseflow", 900);
        assert!(matches!(other.verify(&t, 1_100), Err(AppError::Unauthenticated(_))));
        let wrong_iss = JwtKeys::new("0123456789abcdef0123456789abcdef", "other", 900);
        assert!(wrong_iss.verify(&t, 1_100).is_err());
        assert!(keys.verify("garbage", 1_100).is_err());
    }

    #[test]
    fn csrf_tokens_are_bound_to_the_session_and_the_secret() {
        let keys = JwtKeys::new("a-secret-of-at-least-thirty-two-chars!", "caseflow", 900);
        let other = JwtKeys::new("another-secret-of-at-least-thirty-two!", "caseflow", 900);
        let t = keys.csrf_token("session-a");
        assert_eq!(t.len(), 64);
        assert!(keys.csrf_ok("session-a", &t));
        assert!(!keys.csrf_ok("session-b", &t));
        assert!(!keys.csrf_ok("session-a", &other.csrf_token("session-a")));
        assert!(!keys.csrf_ok("session-a", ""));
        assert!(!keys.csrf_ok("session-a", &t[..63]));
    }

    #[test]
    fn api_tokens_are_random_and_hashed() {
        let a = generate_api_token();
        let b = generate_api_token();
        assert_ne!(a, b);
        assert!(a.starts_with(API_TOKEN_PREFIX) && a.len() == API_TOKEN_PREFIX.len() + 64);
        assert_eq!(hash_api_token(&a), hash_api_token(&a));
        assert_ne!(hash_api_token(&a), hash_api_token(&b));
    }

    #[test]
    fn token_cache_expires_and_forgets_revoked_tokens() {
        let cache = TokenCache::default();
        let t0 = chrono::DateTime::from_timestamp(1_000, 0).unwrap();
        let p = Principal::Token { id: ApiTokenId::new("t1"), scopes: vec![Scope::Read] };
        cache.put("h1".into(), p.clone(), t0);
        assert_eq!(cache.get("h1", t0 + chrono::Duration::seconds(5)), Some(p.clone()));
        assert_eq!(cache.get("h1", t0 + chrono::Duration::seconds(TokenCache::TTL_SECS)), None);
        assert_eq!(cache.get("other", t0), None);
        cache.forget_token("t1");
        assert_eq!(cache.get("h1", t0), None);
    }

    #[test]
    fn scopes_and_roles_gate_actions() {
        let reader = Principal::Token { id: ApiTokenId::new("t"), scopes: vec![Scope::Read] };
        assert!(reader.require_read().is_ok());
        assert!(reader.require_write().is_err());
        let writer = Principal::Token { id: ApiTokenId::new("t"), scopes: vec![Scope::Write] };
        assert!(writer.require_read().is_ok() && writer.require_write().is_ok());
        assert!(writer.require_admin().is_err());
        let agent = Principal::Agent { id: AgentId::new("a"), role: Role::Agent };
        assert!(agent.require_write().is_ok());
        assert!(agent.require_supervisor().is_err());
        assert!(agent.require_admin().is_err());
        let sup = Principal::Agent { id: AgentId::new("s"), role: Role::Supervisor };
        assert!(sup.require_supervisor().is_ok() && sup.require_admin().is_err());
    }
}
