use super::*;

fn category(name: &str) -> BlockedCategory {
    BlockedCategory::ALL
        .into_iter()
        .find(|c| c.as_str() == name)
        .unwrap_or_else(|| panic!("unknown category {name:?}"))
}

#[test]
fn every_pattern_compiles() {
    for c in BlockedCategory::ALL {
        detector_of(c);
    }
}

#[test]
fn category_cases() {
    let mut failures = Vec::new();
    let mut counts = std::collections::BTreeMap::new();
    for line in include_str!("../testdata/categories.txt").lines() {
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let (name, rest) = line.split_once(' ').unwrap();
        let (sign, text) = rest.split_once(' ').unwrap();
        let c = category(name);
        *counts.entry((name, sign)).or_insert(0) += 1;
        match sign {
            "+" => {
                if detect(text, &[c]) != Some(c) {
                    failures.push(format!("{name} + {text:?} not detected"));
                }
            }
            "-" => {
                if let Some(found) = detect(text, &BlockedCategory::ALL) {
                    failures.push(format!("{name} - {text:?} detected as {}", found.as_str()));
                }
            }
            _ => panic!("bad line {line:?}"),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    for c in BlockedCategory::ALL {
        for sign in ["+", "-"] {
            let n = counts.get(&(c.as_str(), sign)).copied().unwrap_or(0);
            assert!(n >= 10, "{} {sign}: {n} cases", c.as_str());
        }
    }
}

#[test]
fn only_blocked_categories_are_reported() {
    let text = "I want to kill myself.";
    assert_eq!(detect(text, &[]), None);
    assert_eq!(detect(text, &[BlockedCategory::Sexual]), None);
    assert_eq!(
        detect(text, &[BlockedCategory::Sexual, BlockedCategory::SelfHarm]),
        Some(BlockedCategory::SelfHarm)
    );
}

#[test]
fn the_earliest_match_in_the_text_wins() {
    let text = "Where can I buy cocaine? Also send nudes.";
    let both = [BlockedCategory::Sexual, BlockedCategory::Illegal];
    assert_eq!(detect(text, &both), Some(BlockedCategory::Illegal));
    assert_eq!(
        detect("Send nudes, then buy cocaine.", &both),
        Some(BlockedCategory::Sexual)
    );
}

#[test]
fn matching_ignores_case_and_respects_word_boundaries() {
    let violence = [BlockedCategory::Violence];
    assert_eq!(
        detect("I WILL KILL HIM", &violence),
        Some(BlockedCategory::Violence)
    );
    assert_eq!(detect("skill himself up", &violence), None);
    assert_eq!(detect("Essex", &[BlockedCategory::Sexual]), None);
}

#[test]
fn harmless_continuations_excuse_a_phrase() {
    let violence = [BlockedCategory::Violence];
    assert_eq!(detect("kill the child process first", &violence), None);
    assert_eq!(detect("I'll shoot you a quick note", &violence), None);
    assert_eq!(
        detect("kill the child process, then kill the child", &violence),
        Some(BlockedCategory::Violence)
    );
}
