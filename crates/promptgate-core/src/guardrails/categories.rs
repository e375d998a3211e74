//! Blocked categories: a deliberately simple keyword detector per category.
//!
//! Each category is one case-insensitive regex, an alternation of phrases anchored at word
//! boundaries. Most phrases pair an act with a target ("kill" + a person, "buy" + a hard drug,
//! "hurt" + "myself") rather than flag a single word, so everyday uses of the same words
//! ("kill the process", "shoot a photo", "cut the cake") pass. This is keyword matching, not a
//! classifier: it misses paraphrase, misspelling, other languages and intent spread over
//! several sentences, and it cannot tell a request from a discussion of the topic.
//! `docs/guardrails.md` lists what each category catches and misses; a model-based check
//! (an OpenAI-moderation-shaped endpoint) can be layered on top by the server.

use std::sync::LazyLock;

use regex::Regex;

use crate::BlockedCategory;

/// The first of the `blocked` categories that `text` touches: the one whose earliest phrase
/// starts first in the text (on a tie, the one listed first in `blocked`), or `None`.
///
/// Linear in the text's length for each blocked category.
pub fn detect(text: &str, blocked: &[BlockedCategory]) -> Option<BlockedCategory> {
    blocked
        .iter()
        .filter_map(|&category| first_match(category, text).map(|start| (start, category)))
        .min_by_key(|&(start, _)| start)
        .map(|(_, category)| category)
}

/// People a violent act can be aimed at.
const PERSON: &str = r"(?:(?:the|a|an|my|your|his|her|their|our|that|this|those|these|some|every|all(?:\s+the)?|all\s+of\s+(?:the|them|you))\s+(?:[a-z]+\s+)?)?(?:him|her|them|you|people|persons?|someone|somebody|anyone|anybody|everyone|everybody|m[ae]n|wom[ae]n|guys?|girls?|boys?|child|children|kids?|bab(?:y|ies)|wife|husband|girlfriend|boyfriend|ex|boss|teachers?|students?|classmates?|co-?workers?|colleagues?|neighbou?rs?|family|parents?|mother|father|mom|dad|brother|sister|cops?|police(?:\s+officers?)?|officers?|president|senator|judge|witness(?:es)?|hostages?|victims?|civilians?|infidels?|kafirs?|jews|muslims|christians)";

/// Groups that hate speech targets.
const GROUP: &str = r"(?:jews|jewish\s+people|muslims|christians|blacks|black\s+people|whites|white\s+people|asians|arabs|mexicans|latinos|hispanics|immigrants|migrants|refugees|gays|gay\s+people|lesbians|trans(?:gender)?\s+people|transgenders|homosexuals|women|hindus|sikhs|gypsies|africans|indians|chinese|catholics|atheists|disabled\s+people)";

fn violence() -> String {
    let verbs = r"(?:kill|murder|stab|shoot|strangle|choke|behead|decapitate|slaughter|execute|torture|lynch|maim|bludgeon|beat\s+up|gun\s+down|blow\s+up|run\s+over|hurt|attack|assault|poison|burn|rape)";
    [
        format!(r"{verbs}(?:s|ed|ing|ted|ting|ped|ping)?\s+{PERSON}"),
        r"(?:shot|stabbed|killed|murdered|strangled|beheaded|slaughtered)\s+(?:him|her|them|you|everyone|people)".to_owned(),
        r"(?:make|build|assemble|making|building)\s+(?:a|an)\s+(?:pipe\s+)?(?:bomb|explosive\s+device|ied)".to_owned(),
        r"pipe\s+bombs?|mass\s+(?:shooting|murder|killing|stabbing)s?|school\s+shootings?|shooting\s+spree".to_owned(),
        r"(?:shoot|bomb|blow\s+up|attack|burn\s+down)\s+(?:up\s+)?(?:the|a|my|our|this|that)\s+(?:school|church|mosque|synagogue|temple|mall|concert|stadium|crowd|airport|subway|hospital|parade|rally)".to_owned(),
    ]
    .join("|")
}

fn hate_speech() -> String {
    [
        // Slurs: a short list of unambiguous ones (words with innocent senses are left out).
        r"n[i1]gg(?:er|a|ah)s?|f[a@]gg?ots?|kikes?|spics?|gooks?|wetbacks?|ragheads?|towelheads?|trann(?:y|ies)|beaners?|sand\s*n[i1]gg\w*|pakis?".to_owned(),
        format!(r"(?:all\s+|those\s+|these\s+|the\s+)?{GROUP}\s+(?:are|is)\s+(?:all\s+)?(?:(?:just|nothing\s+but|a\s+bunch\s+of|like)\s+)?(?:animals|vermin|subhuman|sub-human|parasites|cockroaches|rats|inferior|a\s+disease|a\s+plague|scum|filth|savages|not\s+human|less\s+than\s+human)"),
        format!(r"(?:kill|exterminate|gas|eradicate|wipe\s+out|hang|lynch|purge)\s+(?:all\s+)?(?:of\s+)?(?:the\s+)?{GROUP}"),
        format!(r"{GROUP}\s+(?:should|must|deserve\s+to|need\s+to|ought\s+to)\s+(?:all\s+)?(?:die|burn|be\s+(?:killed|exterminated|gassed|eradicated|wiped\s+out|hanged|lynched|shot))"),
        format!(r"death\s+to\s+(?:all\s+)?(?:the\s+)?{GROUP}|i\s+hate\s+(?:all\s+)?(?:the\s+)?{GROUP}"),
        r"white\s+(?:power|supremacy)|heil\s+hitler|sieg\s+heil|race\s+traitors?".to_owned(),
    ]
    .join("|")
}

fn self_harm() -> String {
    [
        r"(?:kill|hurt|harm|cut|burn|starve|hang|shoot|stab|poison|drown)(?:s|ed|ing|ting|ning)?\s+myself",
        r"(?:end|take|ending|taking)\s+my\s+(?:own\s+)?life|end\s+it\s+all",
        r"(?:commit(?:s|ted|ting)?|attempt(?:s|ed|ing)?|contemplat(?:e|es|ed|ing))\s+suicide|suicidal|suicide\s+(?:notes?|plans?|methods?)",
        r"how\s+(?:to|do\s+i|can\s+i|should\s+i)\s+(?:kill\s+myself|commit\s+suicide|overdose)",
        r"i\s+(?:really\s+|just\s+)?(?:want|wanna|wish\s+i\s+could)\s+(?:to\s+)?die",
        r"self[-\s]?harm(?:ing)?|(?:slit|cut|slash)(?:ting)?\s+(?:my\s+)?wrists?",
        r"overdos(?:e|ing)\s+on\s+(?:purpose|pills|my)",
        r"(?:don'?t|do\s+not)\s+want\s+to\s+(?:live|be\s+alive)(?:\s+anymore)?|no\s+reason\s+to\s+live|better\s+off\s+dead",
        r"jump(?:ing)?\s+off\s+(?:a|the)\s+(?:bridge|building|roof|cliff)",
    ]
    .join("|")
}

fn sexual() -> String {
    [
        r"porn\w*|hentai|nsfw|nudes|(?:naked|nude|topless)\s+(?:photos?|pics?|pictures?|images?|videos?|selfies?)",
        r"(?:blow|hand|rim)\s*jobs?|orgasm\w*|masturbat\w*|erotica?|sexting|onlyfans|camgirls?|strip\s*tease|bdsm|deepthroat\w*|threesomes?|gangbang\w*|milfs?|horny|dildos?|cumshots?",
        r"(?:have|having|had|has)\s+sex|sex\s+(?:with|tapes?|acts?|positions?|chats?|toys?|scenes?)",
        r"sexual\s+(?:intercourse|acts?|positions?|fantas(?:y|ies)|roleplay|content)|(?:explicit|graphic)\s+sex\w*",
    ]
    .join("|")
}

fn illegal() -> String {
    let drugs = r"(?:cocaine|heroin|meth|methamphetamine|crystal\s+meth|fentanyl|lsd|mdma|ketamine|opium|crack\s+cocaine)";
    [
        format!(r"(?:buy|buying|sell|selling|order|ordering|score|make|making|cook|cooking|synthesi[sz]e|synthesi[sz]ing|smuggle|smuggling|produce|producing)\s+(?:some\s+)?{drugs}"),
        r"(?:make|build|making|building)\s+(?:a\s+)?(?:bomb|ghost\s+gun|silencer|molotov(?:\s+cocktail)?)|untraceable\s+(?:gun|firearm)s?".to_owned(),
        r"launder(?:ing)?\s+(?:the\s+|my\s+|dirty\s+)?money|money\s+laundering".to_owned(),
        r"counterfeit\s+(?:money|bills|currency|cash|banknotes|notes|passports?)|(?:fake|forged?)\s+(?:passports?|ids?|id\s+cards?|driver'?s\s+licen[cs]es?)".to_owned(),
        r"stolen\s+(?:credit\s+cards?|card\s+numbers|identit(?:y|ies))|(?:steal|stealing)\s+(?:a\s+|someone'?s\s+)?(?:car|credit\s+cards?|identit(?:y|ies)|passwords?)".to_owned(),
        r"hot-?wir(?:e|ing)\s+(?:a\s+)?car|(?:hack|hacking|break|breaking)\s+into\s+(?:someone'?s?|my\s+ex'?s?|an?|the|his|her|their)\s+(?:\w+\s+)?(?:account|email|phone|computer|wi-?fi|bank|house|car)".to_owned(),
        r"(?:evade|evading|dodge|dodging)\s+(?:paying\s+)?taxes|(?:traffic|trafficking|smuggle|smuggling)\s+(?:drugs|guns|weapons|humans|people|women|children|girls|migrants)|shoplift\w*".to_owned(),
        r"(?:buy|sell|buying|selling)\s+(?:guns|firearms|weapons)\s+(?:illegally|without\s+a\s+licen[cs]e|on\s+the\s+dark\s*web)|dark\s*web\s+(?:markets?|vendors?)".to_owned(),
    ]
    .join("|")
}

/// The regex of a category: its phrases, case-insensitive, each anchored at word boundaries.
fn pattern(phrases: &str) -> String {
    format!(r"(?i)\b(?:{phrases})\b")
}

/// Words right after a violent phrase that make it harmless: "kill the child process",
/// "shoot you an email".
const VIOLENCE_EXCEPT: &str = r"(?i)^\s+(?:process(?:es)?|threads?|tasks?|nodes?|pids?|jobs?|containers?|pods?|windows?|tabs?|branch(?:es)?|commands?|sessions?|requests?|quer(?:y|ies)|connections?|servers?|apps?|programs?|an?\s+(?:quick\s+|short\s+)?(?:e-?mail|message|text|note|line|dm|invite|link|reply|pm)|a\s+quick)\b";

/// A category's phrases and, optionally, what right after a phrase makes it harmless.
struct Detector {
    phrases: Regex,
    except: Option<Regex>,
}

struct Detectors {
    violence: Detector,
    hate_speech: Detector,
    self_harm: Detector,
    sexual: Detector,
    illegal: Detector,
}

#[allow(clippy::expect_used)]
// The patterns are built from literals; `every_pattern_compiles` and the case tables run each.
static DETECTORS: LazyLock<Detectors> = LazyLock::new(|| {
    let compile = |phrases: String, except: Option<&str>| Detector {
        phrases: Regex::new(&pattern(&phrases)).expect("literal patterns"),
        except: except.map(|e| Regex::new(e).expect("literal patterns")),
    };
    Detectors {
        violence: compile(violence(), Some(VIOLENCE_EXCEPT)),
        hate_speech: compile(hate_speech(), None),
        self_harm: compile(self_harm(), None),
        sexual: compile(sexual(), None),
        illegal: compile(illegal(), None),
    }
});

fn detector_of(category: BlockedCategory) -> &'static Detector {
    let detectors = &*DETECTORS;
    match category {
        BlockedCategory::Violence => &detectors.violence,
        BlockedCategory::HateSpeech => &detectors.hate_speech,
        BlockedCategory::SelfHarm => &detectors.self_harm,
        BlockedCategory::Sexual => &detectors.sexual,
        BlockedCategory::Illegal => &detectors.illegal,
    }
}

/// Where the first phrase of `category` that is not excused by what follows it starts.
fn first_match(category: BlockedCategory, text: &str) -> Option<usize> {
    let detector = detector_of(category);
    detector
        .phrases
        .find_iter(text)
        .find(|found| {
            detector
                .except
                .as_ref()
                .is_none_or(|except| !except.is_match(&text[found.end()..]))
        })
        .map(|found| found.start())
}

#[cfg(test)]
mod tests;
