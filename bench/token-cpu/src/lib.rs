//! The token operations the worker runs per request, over one fixture, so that the native
//! binary and the wasm module time exactly the same calls.
//!
//! The fixture (keys, a signed access token, a session) is made by bench/lib/cpu.mjs, so both
//! builds see the same bytes and nothing here needs randomness or a clock.

use auth0_voiceit_worker::access_token::{self, Expected, KeySet};
use auth0_voiceit_worker::tokens::{self, Keys, Mode, TwoFactorSession};
use chrono::{DateTime, Utc};
use serde::Deserialize;
use std::hint::black_box;

#[derive(Deserialize)]
pub struct FixtureJson {
    pub redirect_secret: String,
    pub session_secret: String,
    pub jwks: String,
    pub access_token: String,
    pub issuer: String,
    pub audience: String,
    pub claim_namespace: String,
    pub voiceit_id: String,
    pub now: i64,
}

/// What each operation needs, prepared once: the worker's warm state.
pub struct Fixture {
    keys: Keys,
    key_set: KeySet,
    jwks: String,
    access_token: String,
    issuer: String,
    audience: String,
    claim_namespace: String,
    session: TwoFactorSession,
    voiceit_id: String,
    secure_token: String,
    now: DateTime<Utc>,
}

/// The operations, by the number the wasm export takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Op {
    /// Issue a secure token (HS256 sign), as `POST /voiceit_token` does.
    Hs256Sign,
    /// Read a secure token back (HS256 verify and claim checks), as `POST /voiceit_endpoint` does.
    Hs256Verify,
    /// Validate an Auth0 access token against a parsed key set, as `GET /api/private` does warm.
    Rs256Verify,
    /// Parse the JWKS document: the extra work of a cold key cache.
    JwksParse,
}

impl Op {
    pub const ALL: [Op; 4] = [
        Op::Hs256Sign,
        Op::Hs256Verify,
        Op::Rs256Verify,
        Op::JwksParse,
    ];

    pub fn from_index(i: u32) -> Option<Op> {
        Op::ALL.get(i as usize).copied()
    }

    pub fn name(self) -> &'static str {
        match self {
            Op::Hs256Sign => "hs256_sign",
            Op::Hs256Verify => "hs256_verify",
            Op::Rs256Verify => "rs256_verify",
            Op::JwksParse => "jwks_parse",
        }
    }
}

impl Fixture {
    pub fn from_json(text: &str) -> Result<Fixture, String> {
        let f: FixtureJson = serde_json::from_str(text).map_err(|e| format!("fixture: {e}"))?;
        let now = DateTime::from_timestamp(f.now, 0).ok_or("fixture: bad now")?;
        let keys = Keys::new(&f.redirect_secret, &f.session_secret);
        let key_set = KeySet::parse(&f.jwks)?;

        let mut session = TwoFactorSession::start(
            tokens::LoginHandoff {
                user_id: "auth0|bench".into(),
                voiceit_id: Some(f.voiceit_id.clone()),
                mode: Mode::Verify,
            },
            "bench-state-0123456789".into(),
            "0123456789abcdef0123456789abcdef".into(),
        );
        let (_, expires) = session.seal(&keys, now);
        session.expires = Some(expires);
        let secure_token = tokens::issue_secure_token(&keys, &session, &f.voiceit_id, now);

        let fixture = Fixture {
            keys,
            key_set,
            jwks: f.jwks,
            access_token: f.access_token,
            issuer: f.issuer,
            audience: f.audience,
            claim_namespace: f.claim_namespace,
            session,
            voiceit_id: f.voiceit_id,
            secure_token,
            now,
        };
        // Every operation must succeed on the fixture, or its timing would measure a refusal.
        for op in Op::ALL {
            if !fixture.run_once(op) {
                return Err(format!("fixture: {} does not succeed", op.name()));
            }
        }
        Ok(fixture)
    }

    /// Runs `op` once; true when it succeeded.
    pub fn run_once(&self, op: Op) -> bool {
        match op {
            Op::Hs256Sign => {
                let token = tokens::issue_secure_token(
                    &self.keys,
                    black_box(&self.session),
                    &self.voiceit_id,
                    self.now,
                );
                !black_box(token).is_empty()
            }
            Op::Hs256Verify => tokens::read_secure_token(
                &self.keys,
                black_box(&self.secure_token),
                &self.session,
                self.now,
            )
            .is_ok(),
            Op::Rs256Verify => {
                let expected = Expected {
                    issuer: &self.issuer,
                    audience: &self.audience,
                    claim_namespace: &self.claim_namespace,
                };
                access_token::validate(
                    black_box(&self.access_token),
                    &self.key_set,
                    &expected,
                    self.now,
                )
                .is_ok()
            }
            Op::JwksParse => KeySet::parse(black_box(&self.jwks)).is_ok_and(|s| s.len() == 1),
        }
    }

    /// Runs `op` `n` times; the number that succeeded.
    pub fn run(&self, op: Op, n: u32) -> u32 {
        (0..n).map(|_| u32::from(self.run_once(op))).sum()
    }
}

/// The raw exports the Node timer calls: no wasm-bindgen, only integers and linear memory.
#[cfg(target_arch = "wasm32")]
mod exports {
    use super::{Fixture, Op};
    use std::cell::RefCell;

    thread_local! {
        static FIXTURE: RefCell<Option<Fixture>> = const { RefCell::new(None) };
    }

    /// Space for `len` bytes of fixture JSON; handed back to `bench_load`.
    #[no_mangle]
    pub extern "C" fn bench_alloc(len: usize) -> *mut u8 {
        let mut buffer = Vec::<u8>::with_capacity(len);
        let ptr = buffer.as_mut_ptr();
        std::mem::forget(buffer);
        ptr
    }

    /// Loads the fixture written at `ptr`; 0 when it is usable, 1 when it is not.
    ///
    /// # Safety
    /// `ptr` must come from `bench_alloc(len)` with `len` bytes written.
    #[no_mangle]
    pub unsafe extern "C" fn bench_load(ptr: *mut u8, len: usize) -> u32 {
        let bytes = Vec::from_raw_parts(ptr, len, len);
        let fixture = String::from_utf8(bytes)
            .map_err(|e| e.to_string())
            .and_then(|text| Fixture::from_json(&text));
        match fixture {
            Ok(f) => {
                FIXTURE.with(|cell| *cell.borrow_mut() = Some(f));
                0
            }
            Err(_) => 1,
        }
    }

    /// Runs operation `op` (an index into `Op::ALL`) `n` times; the number that succeeded.
    #[no_mangle]
    pub extern "C" fn bench_run(op: u32, n: u32) -> u32 {
        let Some(op) = Op::from_index(op) else {
            return 0;
        };
        FIXTURE.with(|cell| cell.borrow().as_ref().map_or(0, |f| f.run(op, n)))
    }
}
