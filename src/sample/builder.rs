//! Text assembly that records gold entity spans while it appends entity surfaces,
//! so spans are exact by construction (the text is never searched afterwards).
//!
//! Templates are plain sentences with slots: `{drug}` inserts a slot's value,
//! `{a procedure}` adds the right indefinite article before it, and `{company's}`
//! adds a possessive after it. The first letter of every rendered sentence is
//! capitalised (an entity there keeps its span, e.g. `The S&P 500`).

use crate::data::EntitySpan;

/// One piece of a slot value: plain text or a typed entity mention.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Piece {
    Text(String),
    Entity { label: &'static str, surface: String },
}

/// The value of a template slot: a sequence of pieces (a case name is
/// `PARTY v. PARTY`, a duration is plain text).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Fill(pub Vec<Piece>);

impl Fill {
    pub fn entity(label: &'static str, surface: impl Into<String>) -> Fill {
        Fill(vec![Piece::Entity { label, surface: surface.into() }])
    }

    pub fn text(text: impl Into<String>) -> Fill {
        Fill(vec![Piece::Text(text.into())])
    }

    /// A case name: `plaintiff v. defendant`.
    pub fn versus(plaintiff: &str, defendant: &str) -> Fill {
        Fill(vec![
            Piece::Entity { label: "PARTY", surface: plaintiff.to_string() },
            Piece::Text(" v. ".to_string()),
            Piece::Entity { label: "PARTY", surface: defendant.to_string() },
        ])
    }

    /// The entity mentions of this value, as (label, surface).
    pub fn entities(&self) -> impl Iterator<Item = (&'static str, &str)> {
        self.0.iter().filter_map(|piece| match piece {
            Piece::Entity { label, surface } => Some((*label, surface.as_str())),
            Piece::Text(_) => None,
        })
    }

    /// The value as plain text (for keys and messages).
    pub fn plain(&self) -> String {
        self.0
            .iter()
            .map(|piece| match piece {
                Piece::Text(text) => text.as_str(),
                Piece::Entity { surface, .. } => surface.as_str(),
            })
            .collect()
    }
}

/// Named slot values of one fact, in a fixed order.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Slots(pub Vec<(&'static str, Fill)>);

impl Slots {
    pub fn new() -> Slots {
        Slots(Vec::new())
    }

    pub fn with(mut self, name: &'static str, fill: Fill) -> Slots {
        self.0.push((name, fill));
        self
    }

    pub fn get(&self, name: &str) -> Option<&Fill> {
        self.0.iter().find(|(n, _)| *n == name).map(|(_, fill)| fill)
    }

    pub fn names(&self) -> impl Iterator<Item = &'static str> + '_ {
        self.0.iter().map(|(name, _)| *name)
    }
}

/// One parsed element of a template.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Token<'t> {
    Literal(&'t str),
    Slot { name: &'t str, article: bool, possessive: bool },
}

/// Splits a template into literals and slots. Panics on an unclosed `{`, which
/// only a mistyped template constant can contain (the tests render them all).
pub fn parse_template(template: &str) -> Vec<Token<'_>> {
    let mut tokens = Vec::new();
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        if open > 0 {
            tokens.push(Token::Literal(&rest[..open]));
        }
        let close = rest[open..].find('}').unwrap_or_else(|| panic!("unclosed slot in template {template:?}")) + open;
        let mut name = &rest[open + 1..close];
        let article = name.starts_with("a ");
        if article {
            name = &name[2..];
        }
        let possessive = name.ends_with("'s");
        if possessive {
            name = &name[..name.len() - 2];
        }
        tokens.push(Token::Slot { name, article, possessive });
        rest = &rest[close + 1..];
    }
    if !rest.is_empty() {
        tokens.push(Token::Literal(rest));
    }
    tokens
}

/// The slot names a template uses, in order of appearance.
pub fn template_slots(template: &str) -> Vec<&str> {
    parse_template(template)
        .into_iter()
        .filter_map(|token| match token {
            Token::Slot { name, .. } => Some(name),
            Token::Literal(_) => None,
        })
        .collect()
}

/// "a" or "an" for a following word, by its spelling (good enough for the
/// vocabulary here: "an MRI scan", "a urinalysis", "an echocardiogram").
pub fn indefinite_article(word: &str) -> &'static str {
    let lower = word.to_lowercase();
    let mut chars = word.chars();
    let first = chars.next().unwrap_or('x');
    let second = chars.next().unwrap_or('x');
    let acronym = first.is_ascii_uppercase() && second.is_ascii_uppercase();
    if acronym {
        return if "AEFHILMNORSX".contains(first) { "an" } else { "a" };
    }
    let consonant_sound = ["uni", "ur", "use", "eu", "one", "uv"].iter().any(|p| lower.starts_with(p));
    if "aeiou".contains(lower.chars().next().unwrap_or('x')) && !consonant_sound {
        "an"
    } else {
        "a"
    }
}

fn capitalised(text: &str) -> String {
    let mut chars = text.chars();
    match chars.next() {
        Some(first) => first.to_uppercase().chain(chars).collect(),
        None => String::new(),
    }
}

/// Builds one text (a query or a passage) and its gold entity spans.
#[derive(Debug, Default)]
pub struct TextBuilder {
    text: String,
    spans: Vec<EntitySpan>,
    capitalise_next: bool,
}

impl TextBuilder {
    pub fn new() -> TextBuilder {
        TextBuilder::default()
    }

    fn push_text(&mut self, text: &str) {
        if text.is_empty() {
            return;
        }
        if std::mem::take(&mut self.capitalise_next) {
            self.text.push_str(&capitalised(text));
        } else {
            self.text.push_str(text);
        }
    }

    fn push_entity(&mut self, label: &'static str, surface: &str) {
        let start = self.text.len();
        self.push_text(surface);
        self.spans.push(EntitySpan { start, end: self.text.len(), label: label.to_string() });
    }

    fn push_fill(&mut self, fill: &Fill) {
        for piece in &fill.0 {
            match piece {
                Piece::Text(text) => self.push_text(text),
                Piece::Entity { label, surface } => self.push_entity(label, surface),
            }
        }
    }

    /// Appends one sentence rendered from `template`, separated by a space from
    /// any text before it, with its first letter capitalised.
    ///
    /// Panics when the template names a slot that `slots` lacks: templates are
    /// constants checked against their relation's slots by the tests.
    pub fn sentence(&mut self, template: &str, slots: &Slots) {
        if !self.text.is_empty() && !self.text.ends_with(' ') {
            self.text.push(' ');
        }
        self.capitalise_next = true;
        for token in parse_template(template) {
            match token {
                Token::Literal(text) => self.push_text(text),
                Token::Slot { name, article, possessive } => {
                    let fill = slots
                        .get(name)
                        .unwrap_or_else(|| panic!("template {template:?} names slot `{name}`, which the fact lacks"));
                    if article {
                        self.push_text(indefinite_article(&fill.plain()));
                        self.push_text(" ");
                    }
                    self.push_fill(fill);
                    if possessive {
                        self.push_text(if fill.plain().ends_with('s') { "'" } else { "'s" });
                    }
                }
            }
        }
        self.capitalise_next = false;
    }

    /// The text and its spans (byte offsets, in text order, never overlapping).
    pub fn finish(self) -> (String, Vec<EntitySpan>) {
        (self.text, self.spans)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn spans_cover_exactly_the_appended_surfaces_including_capitalised_ones() {
        let slots = Slots::new()
            .with("index", Fill::entity("INDEX", "the S&P 500"))
            .with("company", Fill::entity("COMPANY", "Velix Holdings"))
            .with("procedure", Fill::entity("PROCEDURE", "MRI scan"))
            .with("case", Fill::versus("Maria Okafor", "Brennan–Café LLC"));
        let mut builder = TextBuilder::new();
        builder.sentence("{index} counts {company} among {company's} peers.", &slots);
        builder.sentence("{case} concerned {a procedure}.", &slots);
        let (text, spans) = builder.finish();
        assert_eq!(
            text,
            "The S&P 500 counts Velix Holdings among Velix Holdings' peers. \
             Maria Okafor v. Brennan–Café LLC concerned an MRI scan."
        );
        let got: Vec<(&str, &str)> = spans.iter().map(|s| (s.label.as_str(), &text[s.start..s.end])).collect();
        assert_eq!(
            got,
            vec![
                ("INDEX", "The S&P 500"),
                ("COMPANY", "Velix Holdings"),
                ("COMPANY", "Velix Holdings"),
                ("PARTY", "Maria Okafor"),
                ("PARTY", "Brennan–Café LLC"),
                ("PROCEDURE", "MRI scan"),
            ]
        );
    }

    #[test]
    fn articles_follow_the_sound_of_the_next_word() {
        assert_eq!(indefinite_article("echocardiogram"), "an");
        assert_eq!(indefinite_article("urinalysis"), "a");
        assert_eq!(indefinite_article("CT scan"), "a");
        assert_eq!(indefinite_article("MRI scan"), "an");
        assert_eq!(indefinite_article("colonoscopy"), "a");
    }

    #[test]
    fn templates_parse_into_literals_and_slots() {
        assert_eq!(template_slots("How much does {plan} pay for {a procedure} at {company's} clinics?"), vec![
            "plan",
            "procedure",
            "company"
        ]);
    }
}
