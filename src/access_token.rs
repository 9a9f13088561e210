//! Auth0 access tokens for the protected API: RS256 against the tenant's key set, then the
//! claims Auth0 documents (`iss`, `aud`, `exp`, `nbf`).
//!
//! Pure functions over a parsed key set and a clock; fetching and caching the key set is the
//! job of `jwks`.

use chrono::{DateTime, Duration, Utc};
use jwt_compact::alg::{Rsa, RsaPublicKey, StrongAlg, StrongKey};
use jwt_compact::jwk::JsonWebKey;
use jwt_compact::{AlgorithmExt, Claims, TimeOptions, UntrustedToken};
use serde_json::{Map, Value};

const MAX_TOKEN_CHARS: usize = 8192;
/// Auth0 documents at most 60 s of clock skew; we allow no more.
const LEEWAY_SECONDS: i64 = 60;

/// The tenant's signing keys, by `kid`.
pub struct KeySet {
    keys: Vec<(String, StrongKey<RsaPublicKey>)>,
}

impl KeySet {
    /// Parses a JWKS document, keeping only RSA signing keys of at least 2048 bits.
    pub fn parse(json: &str) -> Result<KeySet, String> {
        let doc: Value =
            serde_json::from_str(json).map_err(|e| format!("JWKS is not JSON: {e}"))?;
        let entries = doc
            .get("keys")
            .and_then(Value::as_array)
            .ok_or("JWKS has no keys array")?;
        let mut keys = Vec::new();
        for entry in entries {
            let field = |name| entry.get(name).and_then(Value::as_str);
            let Some(kid) = field("kid") else { continue };
            if field("kty") != Some("RSA")
                || field("use").is_some_and(|u| u != "sig")
                || field("alg").is_some_and(|a| a != "RS256")
            {
                continue;
            }
            let public = serde_json::json!({"kty": "RSA", "n": field("n"), "e": field("e")});
            let Ok(jwk) = serde_json::from_value::<JsonWebKey<'_>>(public) else {
                continue;
            };
            let Ok(key) = RsaPublicKey::try_from(&jwk) else {
                continue;
            };
            // StrongKey refuses RSA moduli under 2048 bits (RFC 7518).
            if let Ok(strong) = StrongKey::try_from(key) {
                keys.push((kid.to_string(), strong));
            }
        }
        Ok(KeySet { keys })
    }

    pub fn get(&self, kid: &str) -> Option<&StrongKey<RsaPublicKey>> {
        self.keys.iter().find(|(k, _)| k == kid).map(|(_, key)| key)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }
}

/// What the tenant must have put in the token.
pub struct Expected<'a> {
    /// `{AUTH0_BASE_URL}/`, trailing slash included.
    pub issuer: &'a str,
    pub audience: &'a str,
    /// Custom claims the Action adds start with this.
    pub claim_namespace: &'a str,
}

#[derive(Debug, PartialEq, Eq)]
pub enum Rejection {
    /// Signed by a key the cached set does not hold: worth one refetch.
    UnknownKey(String),
    Invalid(String),
}

/// The parts of a valid access token the API uses.
#[derive(Debug, PartialEq, Eq)]
pub struct AccessGrant {
    pub subject: String,
    pub name: Option<String>,
}

/// The `kid` of a token that is at least shaped like an RS256 JWT. Runs before any key fetch,
/// so junk and algorithm-confusion attempts never cost a request to the tenant.
pub fn key_id(token: &str) -> Result<String, Rejection> {
    if token.len() > MAX_TOKEN_CHARS {
        return Err(Rejection::Invalid("token too long".into()));
    }
    let untrusted =
        UntrustedToken::new(token).map_err(|e| Rejection::Invalid(format!("malformed: {e}")))?;
    // RS256 only: refuses `none`, and HS256 signed with the public key's bytes.
    if untrusted.algorithm() != "RS256" {
        return Err(Rejection::Invalid(format!(
            "algorithm {} refused",
            untrusted.algorithm()
        )));
    }
    match &untrusted.header().key_id {
        Some(kid) if !kid.is_empty() && kid.len() <= 256 => Ok(kid.clone()),
        _ => Err(Rejection::Invalid("no usable kid".into())),
    }
}

/// Validates `token` against `keys` and `expected` at time `now`.
pub fn validate(
    token: &str,
    keys: &KeySet,
    expected: &Expected<'_>,
    now: DateTime<Utc>,
) -> Result<AccessGrant, Rejection> {
    let kid = key_id(token)?;
    let key = keys.get(&kid).ok_or(Rejection::UnknownKey(kid))?;
    let untrusted = UntrustedToken::new(token).map_err(|e| Rejection::Invalid(e.to_string()))?;
    let verified = StrongAlg(Rsa::rs256())
        .validator::<Map<String, Value>>(key)
        .validate(&untrusted)
        .map_err(|e| Rejection::Invalid(format!("signature: {e}")))?;
    let claims: &Claims<Map<String, Value>> = verified.claims();

    let options = TimeOptions::new(Duration::seconds(LEEWAY_SECONDS), move || now);
    claims
        .validate_expiration(&options)
        .map_err(|e| Rejection::Invalid(format!("exp: {e}")))?;
    if claims.not_before.is_some() {
        claims
            .validate_maturity(&options)
            .map_err(|e| Rejection::Invalid(format!("nbf: {e}")))?;
    }

    let custom = &claims.custom;
    if custom.get("iss").and_then(Value::as_str) != Some(expected.issuer) {
        return Err(Rejection::Invalid("wrong issuer".into()));
    }
    let audience_ok = match custom.get("aud") {
        Some(Value::String(aud)) => aud == expected.audience,
        Some(Value::Array(auds)) => auds.iter().any(|a| a.as_str() == Some(expected.audience)),
        _ => false,
    };
    if !audience_ok {
        return Err(Rejection::Invalid("wrong or missing audience".into()));
    }
    let subject = custom
        .get("sub")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .ok_or_else(|| Rejection::Invalid("no subject".into()))?;
    let name = custom
        .get(&format!("{}name", expected.claim_namespace))
        .and_then(Value::as_str)
        .map(str::to_string);

    Ok(AccessGrant {
        subject: subject.to_string(),
        name,
    })
}

#[cfg(test)]
mod tests {
    //! Test tokens are signed here with a freshly generated RSA key, as the tenant would.
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use chrono::TimeZone;
    use jwt_compact::alg::{Hs256, Hs256Key, RsaPrivateKey};
    use jwt_compact::Header;
    use std::sync::OnceLock;

    const ISSUER: &str = "https://example.us.auth0.com/";
    const AUDIENCE: &str = "https://headlines.example";
    const NS: &str = "https://auth0-voiceit-worker/";

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 3, 12, 0, 0).unwrap()
    }

    fn private_key() -> &'static RsaPrivateKey {
        static KEY: OnceLock<RsaPrivateKey> = OnceLock::new();
        KEY.get_or_init(|| RsaPrivateKey::new(&mut rand_core::OsRng, 2048).unwrap())
    }

    fn jwks(kid: &str) -> String {
        let public = private_key().to_public_key();
        let jwk = JsonWebKey::from(&public);
        let mut v = serde_json::to_value(&jwk).unwrap();
        v["kid"] = kid.into();
        v["use"] = "sig".into();
        v["alg"] = "RS256".into();
        serde_json::json!({ "keys": [v] }).to_string()
    }

    fn claims() -> Value {
        serde_json::json!({
            "iss": ISSUER, "sub": "auth0|alice", "aud": [AUDIENCE, "https://example.us.auth0.com/userinfo"],
            "iat": now().timestamp() - 10, "exp": now().timestamp() + 600,
            format!("{NS}name"): "Alice"
        })
    }

    fn sign(claims: Value, kid: &str) -> String {
        let header = Header::empty().with_key_id(kid);
        let claims: Claims<Value> = Claims::new(claims);
        Rsa::rs256().token(&header, &claims, private_key()).unwrap()
    }

    fn expected() -> Expected<'static> {
        Expected {
            issuer: ISSUER,
            audience: AUDIENCE,
            claim_namespace: NS,
        }
    }

    fn check(token: &str) -> Result<AccessGrant, Rejection> {
        validate(
            token,
            &KeySet::parse(&jwks("k1")).unwrap(),
            &expected(),
            now(),
        )
    }

    fn invalid(token: &str) -> bool {
        matches!(check(token), Err(Rejection::Invalid(_)))
    }

    fn with(field: &str, value: Value) -> Value {
        let mut c = claims();
        if value.is_null() {
            c.as_object_mut().unwrap().remove(field);
        } else {
            c[field] = value;
        }
        c
    }

    #[test]
    fn a_valid_token_gives_the_subject_and_the_name_claim() {
        let grant = check(&sign(claims(), "k1")).unwrap();
        assert_eq!(grant.subject, "auth0|alice");
        assert_eq!(grant.name.as_deref(), Some("Alice"));
    }

    #[test]
    fn aud_may_be_a_string() {
        assert!(check(&sign(with("aud", AUDIENCE.into()), "k1")).is_ok());
    }

    #[test]
    fn a_token_without_the_name_claim_has_no_name() {
        let mut c = claims();
        c.as_object_mut().unwrap().remove(&format!("{NS}name"));
        assert_eq!(check(&sign(c, "k1")).unwrap().name, None);
    }

    #[test]
    fn wrong_or_missing_audience_is_refused() {
        assert!(invalid(&sign(with("aud", "https://other".into()), "k1")));
        assert!(invalid(&sign(
            with("aud", serde_json::json!(["https://other"])),
            "k1"
        )));
        assert!(invalid(&sign(with("aud", Value::Null), "k1")));
    }

    #[test]
    fn wrong_issuer_is_refused_even_without_the_trailing_slash() {
        assert!(invalid(&sign(
            with("iss", "https://evil.auth0.com/".into()),
            "k1"
        )));
        assert!(invalid(&sign(
            with("iss", "https://example.us.auth0.com".into()),
            "k1"
        )));
    }

    #[test]
    fn expiry_is_required_and_honoured_with_at_most_a_minute_of_leeway() {
        assert!(invalid(&sign(with("exp", Value::Null), "k1")));
        assert!(invalid(&sign(
            with("exp", (now().timestamp() - 61).into()),
            "k1"
        )));
        assert!(check(&sign(with("exp", (now().timestamp() - 30).into()), "k1")).is_ok());
    }

    #[test]
    fn not_before_is_honoured() {
        assert!(invalid(&sign(
            with("nbf", (now().timestamp() + 120).into()),
            "k1"
        )));
        assert!(check(&sign(with("nbf", (now().timestamp() - 5).into()), "k1")).is_ok());
    }

    #[test]
    fn an_unknown_kid_asks_for_a_refetch() {
        assert_eq!(
            check(&sign(claims(), "k2")),
            Err(Rejection::UnknownKey("k2".into()))
        );
    }

    #[test]
    fn alg_none_hs256_and_other_algorithms_are_refused_before_any_key_lookup() {
        let b64 = |v: Value| URL_SAFE_NO_PAD.encode(v.to_string());
        let none = format!(
            "{}.{}.",
            b64(serde_json::json!({"alg": "none", "kid": "k1"})),
            b64(claims())
        );
        assert!(matches!(key_id(&none), Err(Rejection::Invalid(_))));

        // The classic confusion: HS256 keyed with the bytes of the public JWKS.
        let key = Hs256Key::new(jwks("k1").as_bytes());
        let header = Header::empty().with_key_id("k1");
        let hs = Hs256.token(&header, &Claims::new(claims()), &key).unwrap();
        assert!(matches!(key_id(&hs), Err(Rejection::Invalid(_))));
        assert!(invalid(&hs));

        let es = format!(
            "{}.{}.c2ln",
            b64(serde_json::json!({"alg": "ES256", "kid": "k1"})),
            b64(claims())
        );
        assert!(invalid(&es));
    }

    #[test]
    fn a_tampered_payload_fails_the_signature() {
        let token = sign(claims(), "k1");
        let parts: Vec<&str> = token.split('.').collect();
        let forged = URL_SAFE_NO_PAD.encode(with("sub", "auth0|mallory".into()).to_string());
        assert!(invalid(&format!("{}.{}.{}", parts[0], forged, parts[2])));
    }

    #[test]
    fn kid_tricks_and_junk_are_plain_rejections() {
        for kid in ["../../etc/passwd", "https://evil.example/jwks.json", ""] {
            assert!(check(&sign(claims(), kid)).is_err());
        }
        for junk in ["", "a.b", "a.b.c", "....", &"x".repeat(9000)] {
            assert!(matches!(key_id(junk), Err(Rejection::Invalid(_))), "{junk}");
        }
    }

    #[test]
    fn key_sets_skip_keys_that_cannot_verify_rs256() {
        let doc = serde_json::json!({"keys": [
            {"kid": "ec", "kty": "EC", "crv": "P-256", "x": "AA", "y": "AA"},
            {"kid": "enc", "kty": "RSA", "use": "enc", "n": "AQAB", "e": "AQAB"},
            {"kid": "small", "kty": "RSA", "n": "AQAB", "e": "AQAB"}
        ]});
        assert!(KeySet::parse(&doc.to_string()).unwrap().is_empty());
        assert!(KeySet::parse("not json").is_err());
        assert!(KeySet::parse("{}").is_err());
        assert_eq!(KeySet::parse(&jwks("k1")).unwrap().len(), 1);
    }
}
