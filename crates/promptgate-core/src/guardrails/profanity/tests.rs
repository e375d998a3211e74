use super::*;
use proptest::prelude::*;

const PROFANE: [(&str, &str); 24] = [
    ("what the fuck", "what the ****"),
    ("Fuck this.", "**** this."),
    ("FUCK!!!", "****!!!"),
    ("f*ck this", "**** this"),
    ("fuuuuck", "*******"),
    ("sh1t happens", "**** happens"),
    ("sh!t", "****"),
    ("holy shit", "holy ****"),
    ("this is bullshit", "this is ********"),
    ("you asshole", "you *******"),
    ("a$$hole", "*******"),
    ("what a bitch", "what a *****"),
    ("you bastard", "you *******"),
    ("motherfucker", "************"),
    ("dickhead", "********"),
    ("he's a wanker", "he's a ******"),
    ("stupid twat", "stupid ****"),
    ("cunt", "****"),
    ("what a prick", "what a *****"),
    ("total bollocks", "total ********"),
    ("He's a real shithead.", "He's a real ********."),
    ("ｆｕｃｋ", "****"),
    ("fück", "****"),
    ("f u c k you", "***********"),
];

const CLEAN: [&str; 26] = [
    "Scunthorpe",
    "Middlesex",
    "sextant",
    "assistant",
    "class",
    "cocktail",
    "assassin",
    "grass",
    "therapist",
    "push it",
    "analysis",
    "Sussex",
    "Essex",
    "peacock",
    "shuttlecock",
    "titanic",
    "cockpit",
    "button",
    "butter",
    "arsenal",
    "passion",
    "compass",
    "bass guitar",
    "pen island",
    "Hello wörld, grüße aus Köln! 👋",
    "The patient's sex is recorded; damn, what the hell.",
];

#[test]
fn masks_profanity() {
    let mut failures = Vec::new();
    for (input, expected) in PROFANE {
        let got = mask(input);
        if got.text != expected || got.count == 0 {
            failures.push(format!(
                "{input:?} gave {:?} (count {})",
                got.text, got.count
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn leaves_innocent_words() {
    let mut failures = Vec::new();
    for input in CLEAN {
        let got = mask(input);
        if got.text != input || got.count != 0 {
            failures.push(format!("{input:?} gave {:?}", got.text));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
}

#[test]
fn counts_masked_words() {
    assert_eq!(mask("fuck this shit, you bastard").count, 3);
    assert_eq!(mask("*** is not a word").count, 0);
    assert_eq!(mask("f*ck").count, 1);
}

#[test]
fn keeps_accents_and_every_ascii_character_outside_masks() {
    // rustrict alone would print "hello world" here.
    assert_eq!(mask("hello wörld fück").text, "hello wörld ****");
    for b in 0..=127u8 {
        let c = char::from(b);
        if c == '*' {
            continue;
        }
        let text = format!("x{c}y fuck z");
        let got = mask(&text);
        assert!(
            got.text.starts_with(&format!("x{c}y ")),
            "{c:?}: {:?}",
            got.text
        );
        assert!(got.text.contains("****"), "{c:?}: {:?}", got.text);
    }
}

#[test]
fn invisible_characters_inside_a_word_do_not_hide_it() {
    assert_eq!(mask("f\u{200B}uck").text, "*****");
    assert_eq!(mask("sh\u{202E}it").text, "*****");
}

#[test]
fn a_dropped_combining_mark_goes_with_its_masked_letter() {
    assert_eq!(mask("fu\u{308}ck").text, "*****");
    assert_eq!(mask("cafe\u{301} ok").text, "cafe\u{301} ok");
}

#[test]
fn segments_end_at_lines_sentences_and_length() {
    let mut segmenter = Segmenter::default();
    assert_eq!(segmenter.feed("one\ntwo", 0), Some(4));
    let mut segmenter = Segmenter::default();
    // Too short a sentence to end a segment.
    assert_eq!(segmenter.feed("Hi. You there", 0), None);
    let mut segmenter = Segmenter::default();
    let long = "This sentence is long enough. Next";
    assert_eq!(segmenter.feed(long, 0), Some(30));
    let mut segmenter = Segmenter::default();
    let words = "word ".repeat(40);
    assert_eq!(segmenter.feed(&words, 0), Some(SOFT_SEGMENT_CHARS + 4));
    let mut segmenter = Segmenter::default();
    let run = "x".repeat(1000);
    assert_eq!(segmenter.feed(&run, 0), Some(MAX_SEGMENT_CHARS));
}

#[test]
fn stream_emits_each_segment_when_it_ends() {
    let mut masker = StreamMasker::new();
    assert_eq!(masker.push("What the fu"), "");
    assert_eq!(masker.push("ck is this?\nAnd"), "What the **** is this?\n");
    assert_eq!(masker.count(), 1);
    let rest = masker.finish_masked();
    assert_eq!(rest.text, "And");
    assert_eq!(rest.count, 1);
}

#[test]
fn stream_hold_back_is_bounded() {
    let mut masker = StreamMasker::new();
    let (mut fed, mut emitted) = (0, 0);
    for _ in 0..5000 {
        emitted += masker.push("é").len();
        fed += "é".len();
        assert!(fed - emitted <= 4 * MAX_SEGMENT_CHARS);
    }
}

fn fragment() -> impl Strategy<Value = String> {
    prop_oneof![
        prop::sample::select(vec![
            "fuck",
            "f*ck",
            "shit",
            "sh1t",
            "bitch",
            "f u c k",
            "ass",
            "assistant",
            "Scunthorpe",
            "push it",
            "hello",
            "class",
            " ",
            "  ",
            ". ",
            "! ",
            "?\n",
            "\n",
            ",",
            "*",
            "fück",
            "ｆｕｃｋ",
            "é",
            "e\u{301}",
            "日本",
            "👋",
            "\u{202E}",
            "\u{200B}",
            "word ",
        ])
        .prop_map(str::to_owned),
        "[a-z *.!?\n]{0,12}",
        "\\PC{0,4}",
    ]
}

fn text() -> impl Strategy<Value = String> {
    prop::collection::vec(fragment(), 0..40).prop_map(|parts| parts.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(256))]

    /// However the text is chunked, the stream gives what the whole-text function gives.
    #[test]
    fn stream_matches_whole_text(text in text(), cuts in prop::collection::vec(any::<prop::sample::Index>(), 0..8)) {
        let boundaries: Vec<usize> = (0..=text.len()).filter(|&i| text.is_char_boundary(i)).collect();
        let mut points: Vec<usize> = cuts.iter().map(|c| boundaries[c.index(boundaries.len())]).collect();
        points.sort_unstable();
        let mut masker = StreamMasker::new();
        let mut out = String::new();
        let mut last = 0;
        for p in points {
            out.push_str(&masker.push(&text[last..p]));
            last = p;
        }
        out.push_str(&masker.push(&text[last..]));
        let rest = masker.finish_masked();
        out.push_str(&rest.text);
        let whole = mask(&text);
        prop_assert_eq!(out, whole.text);
        prop_assert_eq!(rest.count, whole.count);
    }

    /// Masking only ever turns characters into asterisks.
    #[test]
    fn masking_only_replaces_characters(text in text()) {
        let got = mask(&text);
        prop_assert_eq!(got.text.chars().count(), text.chars().count());
        for (a, b) in text.chars().zip(got.text.chars()) {
            prop_assert!(a == b || b == '*', "{:?} became {:?}", a, b);
        }
    }
}

/// Regression: rustrict reads across separators into the next word when that word could start
/// a longer match; only the profane word itself may be masked.
#[test]
fn neighbouring_words_and_punctuation_stay_intact() {
    for (input, expected) in [
        ("fuck, hello", "****, hello"),
        ("what the fuck, holy shit", "what the ****, holy ****"),
        ("oh fuck haha", "oh **** haha"),
        ("fuck all of this", "**** all of this"),
        ("well fuck. Anyway", "well ****. Anyway"),
    ] {
        assert_eq!(mask(input).text, expected, "input {input:?}");
    }
    assert_eq!(mask("fuck, hello").count, 1);
}

/// The lines of `testdata/support_corpus.txt`, without comments and empty lines.
fn support_corpus() -> Vec<&'static str> {
    include_str!("../testdata/support_corpus.txt")
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect()
}

/// Corpus lines still masked, each for a reason that cannot be fixed without missing profanity
/// (`docs/guardrails.md`): rustrict reads `FXXX` as a disguised "fuck".
const KNOWN_FALSE_POSITIVES: [&str; 1] = ["IBAN DE89 3704 0044 0532 0130 00, BIC COBADEFFXXX."];

/// Regression (issue 17, item 19): `415-555-0132 4111 1111 1111 1111` came back as
/// `*******-0132 4111 1111 1111 1111` with a count of 1: rustrict read `415-555` as letters.
#[test]
fn phone_number_is_not_taken_for_a_word() {
    let text = "415-555-0132 4111 1111 1111 1111";
    assert_eq!(
        mask(text),
        Masked {
            text: text.to_owned(),
            count: 0
        }
    );
}

/// Regression (issue 17, item 19): on ordinary support text with numbers, codes and names, 105
/// of 377 lines had something masked. Now none is but the documented ones.
#[test]
fn support_corpus_has_no_false_positives() {
    let lines = support_corpus();
    assert!(lines.len() >= 300, "{} lines", lines.len());
    let masked: Vec<String> = lines
        .iter()
        .filter(|line| !KNOWN_FALSE_POSITIVES.contains(line))
        .filter_map(|line| {
            let got = mask(line);
            (got.count > 0 || got.text != *line).then(|| format!("{line:?} became {:?}", got.text))
        })
        .collect();
    assert!(
        masked.is_empty(),
        "{} false positives:\n{}",
        masked.len(),
        masked.join("\n")
    );
    // A known false positive that is fixed must leave the list.
    for line in KNOWN_FALSE_POSITIVES {
        assert!(lines.contains(&line), "{line:?} is not in the corpus");
        assert!(
            mask(line).count > 0,
            "{line:?} is no longer masked; remove it from the list"
        );
    }
}

/// Codes are not words, while lower-case disguises with a few digits still are.
#[test]
fn codes_are_left_and_disguises_are_masked() {
    for text in [
        "SKU A55-204",
        "Booking reference 4SS5KQ.",
        "Account ID acc_455A5S5",
        "Commit 4a55e1f",
        "Licence key 4AS5-5HX1-T0P2-7K9Q",
        "Refund of 450.91 EUR",
        "Deliver to Hauptstrasse 45, 10115 Berlin.",
        "Hi Ann Alcock, Mr Hancock and Ms Dickinson",
    ] {
        assert_eq!(mask(text).text, text, "{text:?}");
    }
    for (text, expected) in [
        ("sh1t happens", "**** happens"),
        ("what the fuck 415", "what the **** 415"),
        ("415 fuck", "415 ****"),
        ("fuck, hello", "****, hello"),
    ] {
        assert_eq!(mask(text).text, expected, "{text:?}");
    }
}
