//! The VoiceIt Web SDK backend protocol as plain data: its request types, which of them a 2FA
//! session may use, which upstream call each one becomes, and what counts as success.
//!
//! The browser names a request type; the session, never the browser, decides whether it is
//! allowed and with which modality, phrase, language and liveness it goes upstream.

use crate::config::Modality;
use crate::tokens::Mode;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RequestType {
    DeleteAllEnrollments,
    EnoughEnrollments(Modality),
    CreateEnrollment(Modality),
    Verification(Modality),
    InitialLiveness,
    VerificationWithLiveness(Modality),
}

impl RequestType {
    /// Reads `viRequestType`. Unknown names (including the pre-2021 ones) are `None`.
    pub fn parse(name: &str) -> Option<RequestType> {
        use Modality::*;
        use RequestType::*;
        Some(match name {
            "deleteAllEnrollments" => DeleteAllEnrollments,
            "enoughVoiceEnrollments" => EnoughEnrollments(Voice),
            "enoughFaceEnrollments" => EnoughEnrollments(Face),
            "enoughVideoEnrollments" => EnoughEnrollments(Video),
            "createVoiceEnrollment" => CreateEnrollment(Voice),
            "createFaceEnrollment" => CreateEnrollment(Face),
            "createVideoEnrollment" => CreateEnrollment(Video),
            "voiceVerification" => Verification(Voice),
            "faceVerification" => Verification(Face),
            "videoVerification" => Verification(Video),
            "initialLiveness" => InitialLiveness,
            "faceVerificationWithLiveness" => VerificationWithLiveness(Face),
            "videoVerificationWithLiveness" => VerificationWithLiveness(Video),
            _ => return None,
        })
    }

    pub fn name(self) -> &'static str {
        use Modality::*;
        use RequestType::*;
        match self {
            DeleteAllEnrollments => "deleteAllEnrollments",
            EnoughEnrollments(Voice) => "enoughVoiceEnrollments",
            EnoughEnrollments(Face) => "enoughFaceEnrollments",
            EnoughEnrollments(Video) => "enoughVideoEnrollments",
            CreateEnrollment(Voice) => "createVoiceEnrollment",
            CreateEnrollment(Face) => "createFaceEnrollment",
            CreateEnrollment(Video) => "createVideoEnrollment",
            Verification(Voice) => "voiceVerification",
            Verification(Face) => "faceVerification",
            Verification(Video) => "videoVerification",
            InitialLiveness => "initialLiveness",
            VerificationWithLiveness(Face) => "faceVerificationWithLiveness",
            VerificationWithLiveness(_) => "videoVerificationWithLiveness",
        }
    }

    /// A verification whose success decides the login.
    pub fn is_verification(self) -> bool {
        matches!(
            self,
            RequestType::Verification(_) | RequestType::VerificationWithLiveness(_)
        )
    }
}

/// What a session is, as far as the allow-list cares.
#[derive(Debug, Clone, Copy)]
pub struct Phase {
    pub mode: Mode,
    pub modality: Modality,
    pub liveness: bool,
    /// The VoiceIt user was created in this same session.
    pub created_user: bool,
}

/// Whether `request` may run in `phase`. Everything not listed is refused (`IRT`).
///
/// Enrollment may count and create enrollments of the configured modality, and wipe them only
/// for a user this session created (a user enrolled earlier is never wiped from here).
/// Verification may run only the configured verification: with liveness when it is on, so a
/// browser cannot downgrade to a check without liveness. Counting enrollments is read-only and
/// allowed in both, because the Web SDK asks before it verifies.
pub fn allowed(request: RequestType, phase: Phase) -> bool {
    use RequestType::*;
    let configured = phase.modality;
    // Voice has no liveness variant; a voice verification is the plain one.
    let liveness = phase.liveness && configured != Modality::Voice;
    match (phase.mode, request) {
        (_, EnoughEnrollments(m)) => m == configured,
        (Mode::Enroll, CreateEnrollment(m)) => m == configured,
        (Mode::Enroll, DeleteAllEnrollments) => phase.created_user,
        (Mode::Verify, Verification(m)) => m == configured && !liveness,
        (Mode::Verify, InitialLiveness) => liveness,
        (Mode::Verify, VerificationWithLiveness(m)) => m == configured && liveness,
        _ => false,
    }
}

/// How many enrollments a modality needs before verification works (the Web SDK's rule).
pub fn enough_enrollments(modality: Modality, voice: u32, face: u32, video: u32) -> bool {
    match modality {
        Modality::Voice => voice + video >= 3,
        Modality::Face => face + video >= 1,
        Modality::Video => video >= 3,
    }
}

/// Which enrollment lists must be read to decide `enough_enrollments`.
pub fn enrollment_kinds(modality: Modality) -> &'static [Modality] {
    match modality {
        Modality::Voice => &[Modality::Voice, Modality::Video],
        Modality::Face => &[Modality::Face, Modality::Video],
        Modality::Video => &[Modality::Video],
    }
}

/// The number of successful enrollment recordings the browser makes for a modality.
pub fn enrollments_needed(modality: Modality) -> u32 {
    match modality {
        Modality::Face => 1,
        Modality::Voice | Modality::Video => 3,
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Host {
    Api,
    Liveness,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum UpstreamMethod {
    Get,
    Post,
    Delete,
}

/// The browser's file field a request type reads, and the part name VoiceIt expects for it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FileMapping {
    pub browser_field: &'static str,
    pub upstream_part: &'static str,
    pub upstream_filename: &'static str,
    /// The media type family the part must carry: `audio` or `video`.
    pub media: &'static str,
}

/// One call to VoiceIt, with every value already chosen by the worker.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpstreamCall {
    pub host: Host,
    pub method: UpstreamMethod,
    pub path: String,
    pub fields: Vec<(&'static str, String)>,
    pub file: Option<FileMapping>,
    /// `viLCOId` must come from the browser (the liveness server issued it for this user).
    pub needs_lco_id: bool,
}

/// Settings the session and configuration fix for an upstream call.
pub struct CallSettings<'a> {
    pub user_id: &'a str,
    pub phrase: &'a str,
    pub content_language: &'a str,
}

const VOICE_FILE: FileMapping = FileMapping {
    browser_field: "viVoiceData",
    upstream_part: "recording",
    upstream_filename: "recording.webm",
    media: "audio",
};
const VIDEO_FILE: FileMapping = FileMapping {
    browser_field: "viVideoData",
    upstream_part: "video",
    upstream_filename: "video.webm",
    media: "video",
};
const LIVENESS_FILE: FileMapping = FileMapping {
    browser_field: "viVideoData",
    upstream_part: "file",
    upstream_filename: "video.webm",
    media: "video",
};

/// The upstream call for a forwarding request type; `None` for `enough…Enrollments`, which
/// the worker answers itself from the enrollment lists.
pub fn upstream_call(request: RequestType, s: &CallSettings<'_>) -> Option<UpstreamCall> {
    use RequestType::*;
    let user = s.user_id.to_string();
    let spoken = |m: Modality| -> Vec<(&'static str, String)> {
        let mut fields = vec![("userId", user.clone())];
        if m != Modality::Face {
            fields.push(("contentLanguage", s.content_language.to_string()));
            fields.push(("phrase", s.phrase.to_string()));
        }
        fields
    };
    let file_for = |m: Modality| match m {
        Modality::Voice => VOICE_FILE,
        _ => VIDEO_FILE,
    };
    let post = |path: String, fields, file| UpstreamCall {
        host: Host::Api,
        method: UpstreamMethod::Post,
        path,
        fields,
        file: Some(file),
        needs_lco_id: false,
    };
    Some(match request {
        EnoughEnrollments(_) => return None,
        DeleteAllEnrollments => UpstreamCall {
            host: Host::Api,
            method: UpstreamMethod::Delete,
            path: format!("/enrollments/{user}/all"),
            fields: vec![],
            file: None,
            needs_lco_id: false,
        },
        CreateEnrollment(m) => post(
            format!("/enrollments/{}", m.as_str()),
            spoken(m),
            file_for(m),
        ),
        Verification(m) => post(
            format!("/verification/{}", m.as_str()),
            spoken(m),
            file_for(m),
        ),
        InitialLiveness => UpstreamCall {
            host: Host::Liveness,
            method: UpstreamMethod::Get,
            path: format!("/v1/verification/{user}/{}", s.content_language),
            fields: vec![],
            file: None,
            needs_lco_id: false,
        },
        VerificationWithLiveness(m) => {
            let mut fields = vec![("userId", user.clone())];
            if m == Modality::Video {
                fields.push(("phrase", s.phrase.to_string()));
                fields.push(("contentLanguage", s.content_language.to_string()));
            }
            UpstreamCall {
                host: Host::Liveness,
                method: UpstreamMethod::Post,
                path: format!("/v1/verification/{}", m.as_str()),
                fields,
                file: Some(LIVENESS_FILE),
                needs_lco_id: true,
            }
        }
    })
}

/// Whether VoiceIt's answer to `request` is a success. Liveness answers carry `success`
/// (and no `responseCode`); API 2 answers carry `responseCode`.
pub fn succeeded(request: RequestType, answer: &serde_json::Value) -> bool {
    match request {
        RequestType::InitialLiveness | RequestType::VerificationWithLiveness(_) => {
            answer.get("success") == Some(&serde_json::Value::Bool(true))
        }
        _ => answer.get("responseCode").and_then(|c| c.as_str()) == Some("SUCC"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const ALL_NAMES: [&str; 13] = [
        "deleteAllEnrollments",
        "enoughVoiceEnrollments",
        "enoughFaceEnrollments",
        "enoughVideoEnrollments",
        "createVoiceEnrollment",
        "createFaceEnrollment",
        "createVideoEnrollment",
        "voiceVerification",
        "faceVerification",
        "videoVerification",
        "initialLiveness",
        "faceVerificationWithLiveness",
        "videoVerificationWithLiveness",
    ];

    fn phase(mode: Mode, modality: Modality, liveness: bool, created_user: bool) -> Phase {
        Phase {
            mode,
            modality,
            liveness,
            created_user,
        }
    }

    fn allowed_names(p: Phase) -> Vec<&'static str> {
        ALL_NAMES
            .iter()
            .copied()
            .filter(|n| allowed(RequestType::parse(n).unwrap(), p))
            .collect()
    }

    #[test]
    fn the_thirteen_request_types_round_trip() {
        for name in ALL_NAMES {
            assert_eq!(RequestType::parse(name).unwrap().name(), name);
        }
        for old in [
            "faceLiveness",
            "videoLiveness",
            "deleteVoiceEnrollments",
            "",
            "IRT",
        ] {
            assert_eq!(RequestType::parse(old), None);
        }
    }

    #[test]
    fn video_enrollment_allows_counting_creating_and_wiping_its_own_user() {
        let p = phase(Mode::Enroll, Modality::Video, true, true);
        assert_eq!(
            allowed_names(p),
            [
                "deleteAllEnrollments",
                "enoughVideoEnrollments",
                "createVideoEnrollment"
            ]
        );
        let p = phase(Mode::Enroll, Modality::Video, true, false);
        assert_eq!(
            allowed_names(p),
            ["enoughVideoEnrollments", "createVideoEnrollment"]
        );
    }

    #[test]
    fn verification_with_liveness_allows_only_the_liveness_pair() {
        let p = phase(Mode::Verify, Modality::Video, true, false);
        assert_eq!(
            allowed_names(p),
            [
                "enoughVideoEnrollments",
                "initialLiveness",
                "videoVerificationWithLiveness"
            ]
        );
        let p = phase(Mode::Verify, Modality::Face, true, false);
        assert_eq!(
            allowed_names(p),
            [
                "enoughFaceEnrollments",
                "initialLiveness",
                "faceVerificationWithLiveness"
            ]
        );
    }

    #[test]
    fn verification_without_liveness_allows_only_the_plain_check() {
        let p = phase(Mode::Verify, Modality::Face, false, false);
        assert_eq!(
            allowed_names(p),
            ["enoughFaceEnrollments", "faceVerification"]
        );
        let p = phase(Mode::Verify, Modality::Voice, true, false);
        assert_eq!(
            allowed_names(p),
            ["enoughVoiceEnrollments", "voiceVerification"]
        );
    }

    #[test]
    fn verification_never_enrolls_or_deletes() {
        for modality in [Modality::Face, Modality::Voice, Modality::Video] {
            for liveness in [true, false] {
                let p = phase(Mode::Verify, modality, liveness, true);
                for name in allowed_names(p) {
                    assert!(
                        !name.starts_with("create") && !name.starts_with("delete"),
                        "{name}"
                    );
                }
            }
        }
    }

    #[test]
    fn enough_thresholds_follow_the_web_sdk() {
        assert!(enough_enrollments(Modality::Voice, 2, 0, 1));
        assert!(!enough_enrollments(Modality::Voice, 2, 5, 0));
        assert!(enough_enrollments(Modality::Face, 0, 0, 1));
        assert!(!enough_enrollments(Modality::Face, 3, 0, 0));
        assert!(enough_enrollments(Modality::Video, 0, 0, 3));
        assert!(!enough_enrollments(Modality::Video, 3, 3, 2));
    }

    fn settings() -> CallSettings<'static> {
        CallSettings {
            user_id: "usr_0123456789abcdef0123456789abcdef",
            phrase: "never forget tomorrow is a new day",
            content_language: "en-US",
        }
    }

    #[test]
    fn upstream_calls_use_voiceit_paths_fields_and_part_names() {
        let call =
            upstream_call(RequestType::CreateEnrollment(Modality::Video), &settings()).unwrap();
        assert_eq!(call.path, "/enrollments/video");
        assert_eq!(call.file.unwrap().upstream_part, "video");
        assert_eq!(call.file.unwrap().browser_field, "viVideoData");
        let names: Vec<_> = call.fields.iter().map(|(n, _)| *n).collect();
        assert_eq!(names, ["userId", "contentLanguage", "phrase"]);

        let call = upstream_call(RequestType::Verification(Modality::Voice), &settings()).unwrap();
        assert_eq!(call.path, "/verification/voice");
        assert_eq!(call.file.unwrap().upstream_part, "recording");
        assert_eq!(call.file.unwrap().browser_field, "viVoiceData");

        let call = upstream_call(RequestType::Verification(Modality::Face), &settings()).unwrap();
        assert_eq!(call.fields.len(), 1);

        let call = upstream_call(RequestType::InitialLiveness, &settings()).unwrap();
        assert_eq!(call.host, Host::Liveness);
        assert_eq!(
            call.path,
            "/v1/verification/usr_0123456789abcdef0123456789abcdef/en-US"
        );

        let call = upstream_call(
            RequestType::VerificationWithLiveness(Modality::Video),
            &settings(),
        )
        .unwrap();
        assert_eq!(call.path, "/v1/verification/video");
        assert_eq!(call.file.unwrap().upstream_part, "file");
        assert!(call.needs_lco_id);

        let call = upstream_call(RequestType::DeleteAllEnrollments, &settings()).unwrap();
        assert_eq!(call.method, UpstreamMethod::Delete);
        assert_eq!(
            call.path,
            "/enrollments/usr_0123456789abcdef0123456789abcdef/all"
        );
        assert!(
            upstream_call(RequestType::EnoughEnrollments(Modality::Face), &settings()).is_none()
        );
    }

    #[test]
    fn success_is_read_from_the_right_key() {
        let api_ok = serde_json::json!({"responseCode": "SUCC"});
        let api_fail = serde_json::json!({"responseCode": "FAIL", "success": true});
        let live_ok = serde_json::json!({"success": true});
        let live_str = serde_json::json!({"success": "true", "responseCode": "SUCC"});
        let v = RequestType::Verification(Modality::Face);
        let l = RequestType::VerificationWithLiveness(Modality::Face);
        assert!(succeeded(v, &api_ok));
        assert!(!succeeded(v, &api_fail));
        assert!(succeeded(l, &live_ok));
        assert!(!succeeded(l, &live_str));
        assert!(!succeeded(l, &api_ok));
    }

    fn any_mode() -> impl Strategy<Value = Mode> {
        prop_oneof![Just(Mode::Enroll), Just(Mode::Verify)]
    }

    fn any_modality() -> impl Strategy<Value = Modality> {
        prop_oneof![
            Just(Modality::Face),
            Just(Modality::Voice),
            Just(Modality::Video)
        ]
    }

    proptest! {
        #[test]
        fn arbitrary_names_other_than_the_thirteen_are_unknown(name in ".{0,40}") {
            prop_assume!(!ALL_NAMES.contains(&name.as_str()));
            prop_assert!(RequestType::parse(&name).is_none());
        }

        #[test]
        fn an_allowed_request_always_matches_the_configured_modality(
            mode in any_mode(), modality in any_modality(), liveness: bool, created: bool,
            index in 0usize..13,
        ) {
            let request = RequestType::parse(ALL_NAMES[index]).unwrap();
            let p = phase(mode, modality, liveness, created);
            if allowed(request, p) {
                match request {
                    RequestType::EnoughEnrollments(m)
                    | RequestType::CreateEnrollment(m)
                    | RequestType::Verification(m)
                    | RequestType::VerificationWithLiveness(m) => prop_assert_eq!(m, modality),
                    RequestType::InitialLiveness => prop_assert!(liveness && mode == Mode::Verify),
                    RequestType::DeleteAllEnrollments => prop_assert!(created && mode == Mode::Enroll),
                }
                if request.is_verification() {
                    prop_assert_eq!(mode, Mode::Verify);
                }
            }
        }
    }
}
