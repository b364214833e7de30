//! Validation of Gemini `generationConfig` (sampling ranges, mime types, thinking) and `safetySettings`.

use serde_json::Value;

use crate::gemini_schema::schema;
use crate::gemini_validate::{
    Errors, boolean, enumeration, float, get, int, join, list, message, string,
};

const GENERATION: &[&str] = &[
    "stopSequences",
    "responseMimeType",
    "responseSchema",
    "responseJsonSchema",
    "responseModalities",
    "candidateCount",
    "maxOutputTokens",
    "temperature",
    "topP",
    "topK",
    "seed",
    "presencePenalty",
    "frequencyPenalty",
    "responseLogprobs",
    "logprobs",
    "enableEnhancedCivicAnswers",
    "speechConfig",
    "thinkingConfig",
    "mediaResolution",
    "imageConfig",
];
const MIME_TYPES: &[&str] = &[
    "text/plain",
    "application/json",
    "application/xml",
    "application/yaml",
    "text/x.enum",
];

fn ranged(e: &mut Errors, path: &str, v: Option<&Value>, int_only: bool, min: f64, max: f64) {
    let Some(v) = v else {
        return;
    };
    let n = if int_only {
        int(e, path, v).map(|n| n as f64)
    } else {
        float(e, path, v)
    };
    if let Some(n) = n.filter(|n| *n < min || *n > max) {
        e.field(
            path,
            &format!("must be in the range [{min}, {max}], got {n}"),
        );
    }
}

pub(crate) fn generation_config(e: &mut Errors, v: Option<&Value>) {
    let path = "generation_config";
    let Some(g) = v.and_then(|v| message(e, path, v, "GenerationConfig", GENERATION)) else {
        return;
    };
    let at = join(path, "stopSequences");
    let stops = get(g, "stopSequences").map_or(&[][..], |v| list(e, &at, v, "TYPE_STRING"));
    for (i, s) in stops.iter().enumerate() {
        string(e, &format!("{at}[{i}]"), s);
    }
    if stops.len() > 5 {
        e.field(&at, "the number of stop_sequences must not exceed 5");
    }
    let mime =
        get(g, "responseMimeType").and_then(|m| string(e, &join(path, "responseMimeType"), m));
    if mime.is_some_and(|m| !MIME_TYPES.contains(&m)) {
        e.field(
            &join(path, "responseMimeType"),
            "allowed mimetypes are `text/plain`, `application/json`, `application/xml`, `application/yaml` and `text/x.enum`.",
        );
    }
    if let Some(s) = get(g, "responseSchema") {
        schema(e, &join(path, "responseSchema"), s);
        if !matches!(mime, Some("application/json" | "text/x.enum")) {
            e.field(&join(path, "responseMimeType"), "response_mime_type must be application/json or text/x.enum when response_schema is set");
        }
        if get(g, "responseJsonSchema").is_some() {
            e.field(
                &join(path, "responseSchema"),
                "response_schema and response_json_schema are mutually exclusive",
            );
        }
    }
    let at = join(path, "responseModalities");
    let modalities = ["MODALITY_UNSPECIFIED", "TEXT", "IMAGE", "AUDIO"];
    for (i, m) in get(g, "responseModalities")
        .map_or(&[][..], |v| list(e, &at, v, "GenerationConfig.Modality"))
        .iter()
        .enumerate()
    {
        enumeration(
            e,
            &format!("{at}[{i}]"),
            m,
            "GenerationConfig.Modality",
            &modalities,
        );
    }
    ranged(
        e,
        &join(path, "candidateCount"),
        get(g, "candidateCount"),
        true,
        1.0,
        8.0,
    );
    ranged(
        e,
        &join(path, "maxOutputTokens"),
        get(g, "maxOutputTokens"),
        true,
        1.0,
        65_536.0,
    );
    ranged(
        e,
        &join(path, "temperature"),
        get(g, "temperature"),
        false,
        0.0,
        2.0,
    );
    ranged(e, &join(path, "topP"), get(g, "topP"), false, 0.0, 1.0);
    ranged(
        e,
        &join(path, "topK"),
        get(g, "topK"),
        true,
        1.0,
        1_000_000.0,
    );
    ranged(
        e,
        &join(path, "presencePenalty"),
        get(g, "presencePenalty"),
        false,
        -2.0,
        2.0,
    );
    ranged(
        e,
        &join(path, "frequencyPenalty"),
        get(g, "frequencyPenalty"),
        false,
        -2.0,
        2.0,
    );
    for key in ["seed", "logprobs"] {
        if let Some(x) = get(g, key) {
            int(e, &join(path, key), x);
        }
    }
    for key in ["responseLogprobs", "enableEnhancedCivicAnswers"] {
        if let Some(x) = get(g, key) {
            boolean(e, &join(path, key), x);
        }
    }
    if let Some(m) = get(g, "mediaResolution") {
        let values = [
            "MEDIA_RESOLUTION_UNSPECIFIED",
            "MEDIA_RESOLUTION_LOW",
            "MEDIA_RESOLUTION_MEDIUM",
            "MEDIA_RESOLUTION_HIGH",
        ];
        enumeration(
            e,
            &join(path, "mediaResolution"),
            m,
            "MediaResolution",
            &values,
        );
    }
    let at = join(path, "thinkingConfig");
    let allowed = ["includeThoughts", "thinkingBudget", "thinkingLevel"];
    if let Some(t) =
        get(g, "thinkingConfig").and_then(|v| message(e, &at, v, "ThinkingConfig", &allowed))
    {
        if let Some(x) = get(t, "includeThoughts") {
            boolean(e, &join(&at, "includeThoughts"), x);
        }
        if let Some(x) = get(t, "thinkingBudget") {
            int(e, &join(&at, "thinkingBudget"), x);
        }
        if let Some(x) = get(t, "thinkingLevel") {
            let levels = [
                "THINKING_LEVEL_UNSPECIFIED",
                "MINIMAL",
                "LOW",
                "MEDIUM",
                "HIGH",
            ];
            enumeration(
                e,
                &join(&at, "thinkingLevel"),
                x,
                "ThinkingConfig.ThinkingLevel",
                &levels,
            );
        }
    }
}

pub(crate) fn safety_settings(e: &mut Errors, v: Option<&Value>) {
    let categories = [
        "HARM_CATEGORY_UNSPECIFIED",
        "HARM_CATEGORY_HARASSMENT",
        "HARM_CATEGORY_HATE_SPEECH",
        "HARM_CATEGORY_SEXUALLY_EXPLICIT",
        "HARM_CATEGORY_DANGEROUS_CONTENT",
        "HARM_CATEGORY_CIVIC_INTEGRITY",
    ];
    let thresholds = [
        "HARM_BLOCK_THRESHOLD_UNSPECIFIED",
        "BLOCK_LOW_AND_ABOVE",
        "BLOCK_MEDIUM_AND_ABOVE",
        "BLOCK_ONLY_HIGH",
        "BLOCK_NONE",
        "OFF",
    ];
    for (i, s) in v
        .map_or(&[][..], |v| list(e, "safety_settings", v, "SafetySetting"))
        .iter()
        .enumerate()
    {
        let path = format!("safety_settings[{i}]");
        let Some(s) = message(
            e,
            &path,
            s,
            "SafetySetting",
            &["category", "threshold", "method"],
        ) else {
            continue;
        };
        match get(s, "category") {
            Some(c) => drop(enumeration(
                e,
                &join(&path, "category"),
                c,
                "HarmCategory",
                &categories,
            )),
            None => e.field(&join(&path, "category"), "category is not specified"),
        }
        match get(s, "threshold") {
            Some(t) => drop(enumeration(
                e,
                &join(&path, "threshold"),
                t,
                "SafetySetting.HarmBlockThreshold",
                &thresholds,
            )),
            None => e.field(&join(&path, "threshold"), "threshold is not specified"),
        }
    }
}
