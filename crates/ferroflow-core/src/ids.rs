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
    let token = match token {
        None => return Ok(0),
        Some("") => return Ok(0),
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
    usize::try_from(offset).map_err(|_| invalid())
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
