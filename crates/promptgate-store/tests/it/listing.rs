//! `list_prompts`: name filters, status filter and keyset pagination; `list_prompt_listings`:
//! the same page with every prompt's labels and default version.

use std::collections::BTreeSet;

use promptgate_core::{PromptStatus, TrafficSplit};
use promptgate_store::{PromptFilter, PromptUpdate, Store};
use uuid::Uuid;

use crate::fixtures::{Backend, T0, TestDb, create, label, version};

for_each_store!(
    exact_name_matches_one_prompt,
    star_is_the_only_wildcard,
    a_pattern_ignores_ascii_case_only,
    status_filter_splits_active_from_archived,
    pages_cover_every_prompt_exactly_once_in_id_order,
    pagination_applies_the_filter_before_the_limit,
    listings_are_the_page_with_its_labels_and_default_versions,
);

const NAMES: [&str; 9] = [
    "support_agent",
    "support-bot",
    "sales",
    "50%_off",
    "50Xoff",
    "50XXoff",
    "a_b",
    "aXb",
    "back\\slash",
];

async fn seed(store: &dyn Store) {
    for name in NAMES {
        create(store, name).await;
    }
}

/// The names a filter returns, sorted.
async fn names(store: &dyn Store, name: Option<&str>, status: Option<PromptStatus>) -> Vec<String> {
    let filter = PromptFilter {
        name: name.map(str::to_owned),
        status,
    };
    let mut out: Vec<String> = store
        .list_prompts(&filter, None, 500)
        .await
        .unwrap()
        .into_iter()
        .map(|p| p.name)
        .collect();
    out.sort();
    out
}

fn sorted(names: &[&str]) -> Vec<String> {
    let mut v: Vec<String> = names.iter().map(|s| (*s).to_owned()).collect();
    v.sort();
    v
}

async fn exact_name_matches_one_prompt(backend: Backend) {
    let db = TestDb::new(backend).await;
    seed(&*db.store).await;
    assert_eq!(
        names(&*db.store, Some("sales"), None).await,
        sorted(&["sales"])
    );
    // Without `*` the SQL wildcards are plain characters too.
    assert_eq!(
        names(&*db.store, Some("50%_off"), None).await,
        sorted(&["50%_off"])
    );
    assert_eq!(names(&*db.store, Some("a_b"), None).await, sorted(&["a_b"]));
    assert!(names(&*db.store, Some("sale"), None).await.is_empty());
    assert!(names(&*db.store, Some("50%off"), None).await.is_empty());
}

async fn star_is_the_only_wildcard(backend: Backend) {
    let db = TestDb::new(backend).await;
    seed(&*db.store).await;
    assert_eq!(
        names(&*db.store, Some("support*"), None).await,
        sorted(&["support_agent", "support-bot"])
    );
    assert_eq!(
        names(&*db.store, Some("*s"), None).await,
        sorted(&["sales"])
    );
    assert_eq!(names(&*db.store, Some("*"), None).await, sorted(&NAMES));
    // `%` and `_` in a pattern match only themselves.
    assert_eq!(
        names(&*db.store, Some("50%_off*"), None).await,
        sorted(&["50%_off"])
    );
    assert_eq!(
        names(&*db.store, Some("*%_off"), None).await,
        sorted(&["50%_off"])
    );
    assert_eq!(
        names(&*db.store, Some("*_off"), None).await,
        sorted(&["50%_off"])
    );
    assert_eq!(
        names(&*db.store, Some("a_b*"), None).await,
        sorted(&["a_b"])
    );
    assert_eq!(
        names(&*db.store, Some("*_*"), None).await,
        sorted(&["support_agent", "50%_off", "a_b"])
    );
    // The escape character itself is literal.
    assert_eq!(
        names(&*db.store, Some("back\\*"), None).await,
        sorted(&["back\\slash"])
    );
}

/// docs/api-choices.md: with `*`, ASCII case is ignored, and only ASCII case (SQLite's `LIKE`;
/// the PostgreSQL store must match it whatever the database's collation).
async fn a_pattern_ignores_ascii_case_only(backend: Backend) {
    let db = TestDb::new(backend).await;
    for name in [
        "Support_Agent",
        "support-bot",
        "Émile",
        "émile-2",
        "STRASSE",
        "straße",
    ] {
        create(&*db.store, name).await;
    }
    assert_eq!(
        names(&*db.store, Some("SUPPORT*"), None).await,
        sorted(&["Support_Agent", "support-bot"])
    );
    assert_eq!(
        names(&*db.store, Some("*_agent"), None).await,
        sorted(&["Support_Agent"])
    );
    // Non-ASCII letters match only themselves.
    assert_eq!(
        names(&*db.store, Some("é*"), None).await,
        sorted(&["émile-2"])
    );
    assert_eq!(
        names(&*db.store, Some("É*"), None).await,
        sorted(&["Émile"])
    );
    assert_eq!(
        names(&*db.store, Some("stra*"), None).await,
        sorted(&["STRASSE", "straße"])
    );
    assert_eq!(
        names(&*db.store, Some("*SSE"), None).await,
        sorted(&["STRASSE"])
    );
    // Without `*` the match is exact, case included.
    assert!(
        names(&*db.store, Some("support_agent"), None)
            .await
            .is_empty()
    );
}

async fn status_filter_splits_active_from_archived(backend: Backend) {
    let db = TestDb::new(backend).await;
    let (a, _) = create(&*db.store, "alpha").await;
    create(&*db.store, "beta").await;
    create(&*db.store, "gamma").await;
    db.store
        .update_prompt(&PromptUpdate {
            id: a.id,
            expected_revision: 1,
            new_revision: 2,
            updated_at: T0,
            new_version: None,
            traffic: None,
            status: Some(PromptStatus::Archived),
            chat_completions: None,
            labels: None,
            audit: vec![],
        })
        .await
        .unwrap();
    assert_eq!(
        names(&*db.store, None, Some(PromptStatus::Archived)).await,
        sorted(&["alpha"])
    );
    assert_eq!(
        names(&*db.store, None, Some(PromptStatus::Active)).await,
        sorted(&["beta", "gamma"])
    );
    assert_eq!(
        names(&*db.store, None, None).await,
        sorted(&["alpha", "beta", "gamma"])
    );
    assert_eq!(
        names(&*db.store, Some("a*"), Some(PromptStatus::Active)).await,
        Vec::<String>::new()
    );
    assert_eq!(
        names(&*db.store, Some("*a"), Some(PromptStatus::Active)).await,
        sorted(&["beta", "gamma"])
    );
}

async fn pages_cover_every_prompt_exactly_once_in_id_order(backend: Backend) {
    let db = TestDb::new(backend).await;
    let mut ids = Vec::new();
    for i in 0..11 {
        ids.push(create(&*db.store, &format!("p{i:02}")).await.0.id);
    }
    // The order is the ids' text order, whatever order they were created in.
    let mut expected = ids.clone();
    expected.sort_by_key(Uuid::to_string);

    let mut seen = Vec::new();
    let mut sizes = Vec::new();
    let mut after = None;
    loop {
        let page = db
            .store
            .list_prompts(&PromptFilter::default(), after, 4)
            .await
            .unwrap();
        if page.is_empty() {
            break;
        }
        sizes.push(page.len());
        after = page.last().map(|p| p.id);
        seen.extend(page.into_iter().map(|p| p.id));
        assert!(sizes.len() <= 4, "pagination does not end: {sizes:?}");
    }
    assert_eq!(sizes, vec![4, 4, 3]);
    assert_eq!(seen, expected);
    assert_eq!(seen.iter().collect::<BTreeSet<_>>().len(), 11);
}

async fn pagination_applies_the_filter_before_the_limit(backend: Backend) {
    let db = TestDb::new(backend).await;
    for i in 0..6 {
        create(&*db.store, &format!("keep-{i}")).await;
        create(&*db.store, &format!("skip-{i}")).await;
    }
    let filter = PromptFilter {
        name: Some("keep-*".to_owned()),
        status: None,
    };
    let first = db.store.list_prompts(&filter, None, 4).await.unwrap();
    assert_eq!(first.len(), 4);
    let rest = db
        .store
        .list_prompts(&filter, first.last().map(|p| p.id), 4)
        .await
        .unwrap();
    assert_eq!(rest.len(), 2);
    let mut all: Vec<String> = first.iter().chain(&rest).map(|p| p.name.clone()).collect();
    all.sort();
    assert_eq!(all, (0..6).map(|i| format!("keep-{i}")).collect::<Vec<_>>());
}

/// The listing page is what `list_prompts` answers, each prompt with what one `version_labels`
/// and one `get_version` of its default would answer (read in three queries, not 1 + 2n).
async fn listings_are_the_page_with_its_labels_and_default_versions(backend: Backend) {
    let db = TestDb::new(backend).await;
    seed(&*db.store).await;
    // One prompt gets a second version (2.0.0, the new default) and a third (1.10.0): its
    // labels come out in semver order whatever order they were added in.
    let (p, _) = create(&*db.store, "versioned").await;
    for (revision, text, default) in [(1, "2.0.0", "2.0.0"), (2, "1.10.0", "2.0.0")] {
        db.store
            .update_prompt(&PromptUpdate {
                id: p.id,
                expected_revision: revision,
                new_revision: revision + 1,
                updated_at: T0,
                new_version: Some(version(p.id, text, "You are versioned.")),
                traffic: Some(TrafficSplit::single(label(default))),
                status: None,
                chat_completions: None,
                labels: None,
                audit: vec![],
            })
            .await
            .unwrap();
    }
    let filter = PromptFilter::default();
    let mut after = None;
    let mut seen = 0;
    loop {
        let page = db.store.list_prompts(&filter, after, 4).await.unwrap();
        let listings = db
            .store
            .list_prompt_listings(&filter, after, 4)
            .await
            .unwrap();
        assert_eq!(listings.len(), page.len());
        for (listing, prompt) in listings.iter().zip(&page) {
            assert_eq!(&listing.prompt, prompt);
            let mut labels = db.store.version_labels(prompt.id).await.unwrap();
            labels.sort();
            assert_eq!(listing.labels, labels);
            let default = db
                .store
                .get_version(prompt.id, prompt.traffic.default_version())
                .await
                .unwrap();
            assert!(default.is_some());
            assert_eq!(listing.default_version, default);
        }
        seen += page.len();
        match page.last() {
            Some(last) if page.len() == 4 => after = Some(last.id),
            _ => break,
        }
    }
    assert_eq!(seen, NAMES.len() + 1);
    let versioned = db
        .store
        .list_prompt_listings(
            &PromptFilter {
                name: Some("versioned".to_owned()),
                status: None,
            },
            None,
            10,
        )
        .await
        .unwrap();
    assert_eq!(
        versioned[0].labels,
        [label("1.0.0"), label("1.10.0"), label("2.0.0")]
    );
    assert_eq!(
        versioned[0].default_version.as_ref().map(|v| &v.version),
        Some(&label("2.0.0"))
    );
}
