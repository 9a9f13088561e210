//! The headline generator behind `/api/public` and `/api/private`: clickbait about a star.
//!
//! Word lists are curated: wholesome, nothing crude, nothing about real living people's
//! conduct (the stars of the public API are historical figures). Randomness comes through the
//! `Dice` trait so native tests can pin it.

/// A source of random choices.
pub trait Dice {
    /// A number in `0..n`; `n` is never 0.
    fn below(&mut self, n: usize) -> usize;
}

/// The production source: the platform's cryptographic random generator.
pub struct SystemDice;

impl Dice for SystemDice {
    fn below(&mut self, n: usize) -> usize {
        let mut bytes = [0u8; 8];
        // Limitation: if the platform's generator ever fails, the headline uses the first
        // words of each list; a headline is not a secret, so that is all it costs.
        if getrandom::getrandom(&mut bytes).is_err() {
            return 0;
        }
        (u64::from_le_bytes(bytes) % n as u64) as usize
    }
}

const STARS: &[&str] = &[
    "Ada Lovelace",
    "Albert Einstein",
    "Marie Curie",
    "Leonardo da Vinci",
    "Cleopatra",
    "William Shakespeare",
    "Ludwig van Beethoven",
    "Frida Kahlo",
    "Isaac Newton",
    "Amelia Earhart",
    "Nikola Tesla",
    "Galileo Galilei",
    "Wolfgang Amadeus Mozart",
    "Jane Austen",
    "Charles Darwin",
    "Grace Hopper",
    "Vincent van Gogh",
    "Florence Nightingale",
    "Julius Caesar",
    "Harriet Tubman",
    "Alan Turing",
    "Queen Victoria",
];

/// (past tense, base form), so templates can use either.
const VERBS: &[(&str, &str)] = &[
    ("baked", "bake"),
    ("painted", "paint"),
    ("adopted", "adopt"),
    ("knitted", "knit"),
    ("built", "build"),
    ("reviewed", "review"),
    ("organised", "organise"),
    ("juggled", "juggle"),
    ("invented", "invent"),
    ("rescued", "rescue"),
    ("photographed", "photograph"),
    ("redesigned", "redesign"),
    ("composed a song about", "compose a song about"),
    ("taught a class on", "teach a class on"),
    ("wrote a poem about", "write a poem about"),
    ("raced", "race"),
    ("repaired", "repair"),
    ("decorated", "decorate"),
    ("planted", "plant"),
    ("befriended", "befriend"),
    ("sketched", "sketch"),
    ("collected", "collect"),
    ("tamed", "tame"),
    ("discovered", "discover"),
];

const NOUNS: &[&str] = &[
    "a giant sourdough loaf",
    "a family of ducks",
    "a tiny lighthouse",
    "a rainbow-coloured bicycle",
    "a very polite robot",
    "a forgotten sandcastle",
    "a hot-air balloon",
    "an enormous pumpkin",
    "a library of board games",
    "a talking parrot",
    "a solar-powered kettle",
    "a marching band",
    "a garden of sunflowers",
    "a paper airplane",
    "a sleepy hedgehog",
    "a wooden rollercoaster",
    "a lost umbrella",
    "a chess-playing cat",
    "a cloud shaped like a teapot",
    "a moonlit picnic",
    "a pocket telescope",
    "a snow globe",
    "a tandem kayak",
    "a mountain of pancakes",
];

const MODIFIERS: &[&str] = &[
    "in under ten minutes",
    "before breakfast",
    "with one hand",
    "on a Tuesday",
    "during a thunderstorm",
    "in total silence",
    "for charity",
    "while humming",
    "at the top of a hill",
    "in a single afternoon",
    "with a little help from friends",
    "by candlelight",
    "on roller skates",
    "in the middle of the night",
    "from memory",
    "backwards",
];

const MAX_STAR_CHARS: usize = 60;

/// One headline about `star`, or about a historical figure when `star` is `None`.
pub fn headline(star: Option<&str>, dice: &mut impl Dice) -> String {
    let star = match star.map(tidy_star).filter(|s| !s.is_empty()) {
        Some(s) => s,
        None => pick(STARS, dice).to_string(),
    };
    let (past, base) = *pick(VERBS, dice);
    let noun = pick(NOUNS, dice);
    let modifier = pick(MODIFIERS, dice);
    let count = 3 + dice.below(8);

    match dice.below(7) {
        0 => format!(
            "{} {past} {noun} {modifier}, and you won't believe what happened next!",
            capitalised(&star)
        ),
        1 => format!("Experts stunned: {star} {past} {noun} {modifier}."),
        2 => format!("{count} reasons why {star} {past} {noun}."),
        3 => format!("What happened when {star} {past} {noun} will make you smile."),
        4 => format!("The secret reason {star} {past} {noun} {modifier}."),
        5 => format!("Nobody expected {star} to {base} {noun} {modifier}."),
        _ => format!(
            "{} {past} {noun}. People are still talking about it.",
            capitalised(&star)
        ),
    }
}

fn pick<'a, T>(list: &'a [T], dice: &mut impl Dice) -> &'a T {
    &list[dice.below(list.len())]
}

/// A name from a token is display text only: control characters out, length bounded.
fn tidy_star(name: &str) -> String {
    name.chars()
        .filter(|c| !c.is_control())
        .take(MAX_STAR_CHARS)
        .collect::<String>()
        .trim()
        .to_string()
}

fn capitalised(s: &str) -> String {
    let mut chars = s.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    /// Replays a fixed list of choices, so a test knows exactly which words come out.
    struct Loaded(Vec<usize>);

    impl Dice for Loaded {
        fn below(&mut self, n: usize) -> usize {
            self.0.remove(0) % n
        }
    }

    /// A deterministic spread of choices (a small linear congruential generator).
    struct Seeded(u64);

    impl Dice for Seeded {
        fn below(&mut self, n: usize) -> usize {
            self.0 = self
                .0
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((self.0 >> 33) % n as u64) as usize
        }
    }

    #[test]
    fn pinned_dice_give_a_pinned_headline() {
        // star 0, verb 0, noun 1, modifier 2, count 0, template 1
        let mut dice = Loaded(vec![0, 0, 1, 2, 0, 1]);
        assert_eq!(
            headline(None, &mut dice),
            "Experts stunned: Ada Lovelace baked a family of ducks with one hand."
        );
    }

    #[test]
    fn a_named_star_takes_the_place_of_a_figure() {
        let mut dice = Loaded(vec![1, 0, 0, 0, 5]);
        assert_eq!(
            headline(Some("Sam"), &mut dice),
            "Nobody expected Sam to paint a giant sourdough loaf in under ten minutes."
        );
    }

    #[test]
    fn you_is_capitalised_at_the_start() {
        let mut dice = Loaded(vec![0, 0, 0, 0, 0]);
        assert!(headline(Some("you"), &mut dice).starts_with("You baked"));
    }

    #[test]
    fn every_template_is_reachable_and_ends_with_punctuation() {
        let mut seen = HashSet::new();
        for t in 0..7 {
            let mut dice = Loaded(vec![0, 0, 0, 0, t]);
            let h = headline(Some("Sam"), &mut dice);
            assert!(h.ends_with('.') || h.ends_with('!'), "{h}");
            seen.insert(h);
        }
        assert_eq!(seen.len(), 7);
    }

    #[test]
    fn fifty_headlines_are_mostly_different() {
        let mut dice = Seeded(42);
        let distinct: HashSet<String> = (0..50).map(|_| headline(None, &mut dice)).collect();
        assert!(distinct.len() >= 45, "only {} distinct", distinct.len());
    }

    #[test]
    fn control_characters_and_long_names_are_tidied() {
        let mut dice = Loaded(vec![0, 0, 0, 0, 1]);
        let long = format!("Eve\u{0007}\n{}", "x".repeat(200));
        let h = headline(Some(&long), &mut dice);
        assert!(!h.contains('\u{0007}') && !h.contains('\n'));
        assert!(h.len() < 200);
    }

    #[test]
    fn an_empty_name_falls_back_to_a_figure() {
        let mut dice = Loaded(vec![0, 0, 0, 0, 0, 1]);
        assert!(headline(Some("  "), &mut dice).contains("Ada Lovelace"));
    }

    #[test]
    fn word_lists_hold_no_crude_words() {
        let banned = [
            "drunk", "gang", "kill", "sex", "naked", "drug", "hate", "stupid",
        ];
        let all = STARS
            .iter()
            .chain(NOUNS)
            .chain(MODIFIERS)
            .map(|s| s.to_lowercase())
            .chain(VERBS.iter().map(|(p, _)| p.to_lowercase()));
        for phrase in all {
            for word in phrase.split(|c: char| !c.is_alphanumeric()) {
                assert!(!banned.contains(&word), "{phrase}");
            }
        }
    }
}
