//! Ids, random run names, times and page tokens.

use crate::error::{Error, Result};
use base64::engine::general_purpose::STANDARD;
use base64::Engine;
use rand::seq::IndexedRandom;
use rand::Rng;

/// A new run id: 32 lowercase hex characters.
pub fn new_run_id() -> String {
    uuid::Uuid::new_v4().simple().to_string()
}

/// Milliseconds since the Unix epoch.
pub fn now_millis() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|elapsed| i64::try_from(elapsed.as_millis()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

const ADJECTIVES: &[&str] = &[
    "abundant",
    "able",
    "adaptable",
    "agreeable",
    "amazing",
    "amusing",
    "angry",
    "auspicious",
    "awesome",
    "bald",
    "beautiful",
    "bemused",
    "bedecked",
    "big",
    "bittersweet",
    "blushing",
    "bold",
    "bouncy",
    "brawny",
    "bright",
    "burly",
    "bustling",
    "calm",
    "capable",
    "carefree",
    "capricious",
    "caring",
    "casual",
    "charming",
    "chill",
    "classy",
    "clean",
    "clumsy",
    "colorful",
    "crawling",
    "dapper",
    "debonair",
    "dashing",
    "defiant",
    "delicate",
    "delightful",
    "dazzling",
    "efficient",
    "enchanting",
    "entertaining",
    "enthused",
    "exultant",
    "fearless",
    "flawless",
    "fortunate",
    "fun",
    "funny",
    "gaudy",
    "gentle",
    "gifted",
    "glamorous",
    "grandiose",
    "gregarious",
    "handsome",
    "hilarious",
    "honorable",
    "illustrious",
    "incongruous",
    "indecisive",
    "industrious",
    "intelligent",
    "inquisitive",
    "intrigued",
    "invincible",
    "judicious",
    "kindly",
    "languid",
    "learned",
    "legendary",
    "likeable",
    "loud",
    "luminous",
    "luxuriant",
    "lyrical",
    "magnificent",
    "marvelous",
    "masked",
    "melodic",
    "merciful",
    "mercurial",
    "monumental",
    "mysterious",
    "nebulous",
    "nervous",
    "nimble",
    "nosy",
    "omniscient",
    "orderly",
    "overjoyed",
    "peaceful",
    "painted",
    "persistent",
    "placid",
    "polite",
    "popular",
    "powerful",
    "puzzled",
    "rambunctious",
    "rare",
    "rebellious",
    "respected",
    "resilient",
    "righteous",
    "receptive",
    "redolent",
    "resilient",
    "rogue",
    "rumbling",
    "salty",
    "sassy",
    "secretive",
    "selective",
    "sedate",
    "serious",
    "shivering",
    "skillful",
    "sincere",
    "skittish",
    "silent",
    "smiling",
    "sneaky",
    "sophisticated",
    "spiffy",
    "stately",
    "suave",
    "stylish",
    "tasteful",
    "thoughtful",
    "thundering",
    "traveling",
    "treasured",
    "trusting",
    "unequaled",
    "upset",
    "unique",
    "unleashed",
    "useful",
    "upbeat",
    "unruly",
    "valuable",
    "vaunted",
    "victorious",
    "welcoming",
    "whimsical",
    "wise",
    "worried",
    "youthful",
    "zealous",
];

const NOUNS: &[&str] = &[
    "ant", "ape", "asp", "auk", "bass", "bat", "bear", "bee", "bird", "boar", "bug", "calf",
    "carp", "cat", "chimp", "cod", "colt", "conch", "cow", "crab", "crane", "croc", "crow", "cub",
    "deer", "doe", "dog", "dolphin", "donkey", "dove", "duck", "eel", "elk", "fawn", "finch",
    "fish", "flea", "fly", "foal", "fowl", "fox", "frog", "gnat", "gnu", "goat", "goose", "grouse",
    "grub", "gull", "hare", "hawk", "hen", "hog", "horse", "hound", "jay", "kit", "kite", "koi",
    "lamb", "lark", "loon", "lynx", "mare", "midge", "mink", "mole", "moose", "moth", "mouse",
    "mule", "newt", "owl", "ox", "panda", "penguin", "perch", "pig", "pug", "quail", "ram", "rat",
    "ray", "robin", "roo", "rook", "seal", "shad", "shark", "sheep", "shoat", "shrew", "shrike",
    "shrimp", "skink", "skunk", "sloth", "slug", "smelt", "snail", "snake", "snipe", "sow",
    "sponge", "squid", "squirrel", "stag", "steed", "stoat", "stork", "swan", "tern", "toad",
    "trout", "turtle", "vole", "wasp", "whale", "wolf", "worm", "wren", "yak", "zebra",
];

/// A random run name such as `bold-lynx-417`, as MLflow makes when a run has none.
pub fn random_run_name() -> String {
    let mut rng = rand::rng();
    let adjective = ADJECTIVES.choose(&mut rng).copied().unwrap_or("bold");
    let noun = NOUNS.choose(&mut rng).copied().unwrap_or("lynx");
    let number: u32 = rng.random_range(0..1000);
    format!("{adjective}-{noun}-{number}")
}

/// Encodes an offset as MLflow's opaque page token: base64 of `{"offset": N}`.
pub fn encode_page_token(offset: usize) -> String {
    STANDARD.encode(format!("{{\"offset\": {offset}}}"))
}

/// Decodes a page token; an absent or empty token is offset 0.
pub fn decode_page_token(token: Option<&str>) -> Result<usize> {
    Ok(decode_token_object(token)?.map_or(0, |(offset, _)| offset))
}

/// Where a page of a metric history starts. `offset` is MLflow's; `after` is the sort key (timestamp, step,
/// stored value, is_nan) of the last point already returned, which ferroflow's own tokens carry so that
/// the next page seeks to it in the index instead of skipping `offset` points again. A token from MLflow
/// (offset only) still works.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct HistoryCursor {
    pub offset: usize,
    pub after: Option<HistoryKey>,
}

/// The position of one metric point in a history's order.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HistoryKey {
    pub timestamp: i64,
    pub step: i64,
    pub value: f64,
    pub is_nan: bool,
}

/// A metric-history page token: base64 of `{"offset": N, "after": [timestamp, step, value, is_nan]}`.
pub fn encode_history_token(cursor: &HistoryCursor) -> String {
    match cursor.after {
        None => encode_page_token(cursor.offset),
        Some(key) => STANDARD.encode(
            serde_json::json!({
                "offset": cursor.offset,
                "after": [key.timestamp, key.step, key.value, key.is_nan],
            })
            .to_string(),
        ),
    }
}

/// Decodes a metric-history page token (ferroflow's with `after`, or MLflow's offset alone).
pub fn decode_history_token(token: Option<&str>) -> Result<HistoryCursor> {
    let Some((offset, parsed)) = decode_token_object(token)? else {
        return Ok(HistoryCursor::default());
    };
    let after = match parsed.get("after") {
        None => None,
        Some(after) => {
            let key = after.as_array().and_then(|parts| match parts.as_slice() {
                [timestamp, step, value, is_nan] => Some(HistoryKey {
                    timestamp: timestamp.as_i64()?,
                    step: step.as_i64()?,
                    value: value.as_f64()?,
                    is_nan: is_nan.as_bool()?,
                }),
                _ => None,
            });
            Some(key.ok_or_else(|| {
                Error::invalid_parameter(format!("Invalid page token, parsed value={parsed}"))
            })?)
        }
    };
    Ok(HistoryCursor { offset, after })
}

/// The offset and the whole object of a page token; `None` for an absent or empty token.
fn decode_token_object(token: Option<&str>) -> Result<Option<(usize, serde_json::Value)>> {
    let token = match token {
        None | Some("") => return Ok(None),
        Some(token) => token,
    };
    // MLflow's three messages, one per stage that can fail.
    let bytes = STANDARD
        .decode(token.trim())
        .map_err(|_| Error::invalid_parameter("Invalid page token, could not base64-decode"))?;
    let parsed: serde_json::Value = serde_json::from_slice(&bytes).map_err(|_| {
        Error::invalid_parameter(format!(
            "Invalid page token, decoded value=b'{}'",
            String::from_utf8_lossy(&bytes).escape_default()
        ))
    })?;
    let invalid = || Error::invalid_parameter(format!("Invalid page token, parsed value={parsed}"));
    let offset = parsed
        .get("offset")
        .and_then(serde_json::Value::as_u64)
        .ok_or_else(invalid)?;
    let offset = usize::try_from(offset).map_err(|_| invalid())?;
    Ok(Some((offset, parsed)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn page_token_round_trips_and_matches_mlflow() {
        assert_eq!(encode_page_token(2), "eyJvZmZzZXQiOiAyfQ==");
        assert_eq!(decode_page_token(Some("eyJvZmZzZXQiOiAyfQ==")).unwrap(), 2);
        assert_eq!(decode_page_token(None).unwrap(), 0);
        assert!(decode_page_token(Some("not-a-token")).is_err());
    }

    #[test]
    fn history_tokens_carry_the_last_key_and_accept_mlflow_offsets() {
        let cursor = HistoryCursor {
            offset: 25_000,
            after: Some(HistoryKey {
                timestamp: 1_700_000_000_123,
                step: -4,
                value: 0.1 + 0.2,
                is_nan: false,
            }),
        };
        let token = encode_history_token(&cursor);
        assert_eq!(decode_history_token(Some(&token)).unwrap(), cursor);
        // The largest finite double (how +inf is stored) survives the JSON round trip exactly.
        let stored_infinity = HistoryCursor {
            offset: 1,
            after: Some(HistoryKey {
                timestamp: 0,
                step: 0,
                value: f64::MAX,
                is_nan: true,
            }),
        };
        let token = encode_history_token(&stored_infinity);
        assert_eq!(decode_history_token(Some(&token)).unwrap(), stored_infinity);
        assert_eq!(
            decode_history_token(Some("eyJvZmZzZXQiOiAyfQ==")).unwrap(),
            HistoryCursor {
                offset: 2,
                after: None
            }
        );
        assert_eq!(
            decode_history_token(None).unwrap(),
            HistoryCursor::default()
        );
        let bad = STANDARD.encode(r#"{"offset": 2, "after": [1, 2]}"#);
        let error = decode_history_token(Some(&bad)).unwrap_err();
        assert!(error
            .message
            .starts_with("Invalid page token, parsed value="));
    }

    #[test]
    fn run_ids_are_32_hex() {
        let run_id = new_run_id();
        assert_eq!(run_id.len(), 32);
        assert!(run_id
            .chars()
            .all(|character| character.is_ascii_hexdigit()));
    }

    #[test]
    fn run_names_have_three_parts() {
        let name = random_run_name();
        assert_eq!(name.split('-').count(), 3, "{name}");
    }
}
