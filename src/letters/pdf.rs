//! Renders a composed letter to PDF with `pdf-writer`: A4 pages, the PDF base font
//! Helvetica (WinAnsi encoding, so no font file is bundled and `pdftotext` reads the text
//! back), lines wrapped to the page and continued on new pages. Knows nothing of cases.

use pdf_writer::{Content, Name, Pdf, Rect, Ref, Str};

use super::{Block, Document};

const WIDTH: f32 = 595.0;
const HEIGHT: f32 = 842.0;
const MARGIN: f32 = 56.0;
const SIZE: f32 = 10.5;
const LEADING: f32 = 14.0;
/// Characters per line at `SIZE`: Helvetica averages about 0.5 em, so 86 characters fit
/// the text width with room for wide letters.
const LINE_CHARS: usize = 86;

/// One line as drawn: its font (`F1` regular, `F2` bold), size and text.
struct Line {
    bold: bool,
    size: f32,
    text: String,
    /// Extra space before it.
    gap: f32,
}

/// The document as PDF bytes.
pub fn render(doc: &Document) -> Vec<u8> {
    let all = lines(doc);
    let pages = paginate(&all);
    let mut pdf = Pdf::new();
    let catalog = Ref::new(1);
    let tree = Ref::new(2);
    let (regular, bold) = (Ref::new(3), Ref::new(4));
    let first = 5;
    let page_ids: Vec<Ref> = (0..pages.len()).map(|i| Ref::new(first + 2 * i as i32)).collect();
    pdf.catalog(catalog).pages(tree);
    pdf.pages(tree).kids(page_ids.iter().copied()).count(pages.len() as i32);
    pdf.type1_font(regular)
        .base_font(Name(b"Helvetica"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    pdf.type1_font(bold)
        .base_font(Name(b"Helvetica-Bold"))
        .encoding_predefined(Name(b"WinAnsiEncoding"));
    for (i, page_lines) in pages.iter().enumerate() {
        let (page_id, content_id) = (page_ids[i], Ref::new(first + 2 * i as i32 + 1));
        let mut page = pdf.page(page_id);
        page.media_box(Rect::new(0.0, 0.0, WIDTH, HEIGHT)).parent(tree).contents(content_id);
        page.resources().fonts().pair(Name(b"F1"), regular).pair(Name(b"F2"), bold);
        drop(page);
        let mut content = Content::new();
        let mut y = HEIGHT - MARGIN;
        for line in page_lines {
            y -= line.gap + LEADING;
            let font = if line.bold { Name(b"F2") } else { Name(b"F1") };
            content.begin_text();
            content.set_font(font, line.size);
            content.next_line(MARGIN, y);
            content.show(Str(&win_ansi(&line.text)));
            content.end_text();
        }
        let footer = format!("Page {} of {}", i + 1, pages.len());
        content.begin_text();
        content.set_font(Name(b"F1"), 8.0);
        content.next_line(MARGIN, MARGIN / 2.0);
        content.show(Str(footer.as_bytes()));
        content.end_text();
        let bytes = content.finish();
        pdf.stream(content_id, &bytes);
    }
    pdf.finish()
}

/// Every block as wrapped lines.
fn lines(doc: &Document) -> Vec<Line> {
    let mut out = vec![Line { bold: true, size: 15.0, text: doc.title.clone(), gap: 0.0 }];
    for block in &doc.blocks {
        match block {
            Block::Heading(text) => {
                out.push(Line { bold: true, size: 12.0, text: text.clone(), gap: 8.0 })
            }
            Block::Para(text) => {
                for (i, l) in wrap(text, LINE_CHARS).into_iter().enumerate() {
                    let gap = if i == 0 { 3.0 } else { 0.0 };
                    out.push(Line { bold: false, size: SIZE, text: l, gap });
                }
            }
            Block::Bullet(text) => {
                for (i, l) in wrap(text, LINE_CHARS - 4).into_iter().enumerate() {
                    let text = if i == 0 { format!("•  {l}") } else { format!("    {l}") };
                    out.push(Line { bold: false, size: SIZE, text, gap: 0.0 });
                }
            }
        }
    }
    out
}

/// Lines split into pages that fit between the margins.
fn paginate(lines: &[Line]) -> Vec<Vec<&Line>> {
    let usable = HEIGHT - 2.0 * MARGIN;
    let mut pages: Vec<Vec<&Line>> = vec![Vec::new()];
    let mut used = 0.0;
    for line in lines {
        let height = line.gap + LEADING;
        if used + height > usable && pages.last().is_some_and(|p| !p.is_empty()) {
            pages.push(Vec::new());
            used = 0.0;
        }
        used += height;
        if let Some(page) = pages.last_mut() {
            page.push(line);
        }
    }
    pages
}

/// Greedy word wrap at `max` characters (a longer word is cut).
pub(super) fn wrap(text: &str, max: usize) -> Vec<String> {
    let mut out = Vec::new();
    for paragraph in text.lines() {
        let mut line = String::new();
        for word in paragraph.split_whitespace() {
            let mut word = word.to_string();
            while word.chars().count() > max {
                let head: String = word.chars().take(max).collect();
                word = word.chars().skip(max).collect();
                if !line.is_empty() {
                    out.push(std::mem::take(&mut line));
                }
                out.push(head);
            }
            if !line.is_empty() && line.chars().count() + 1 + word.chars().count() > max {
                out.push(std::mem::take(&mut line));
            }
            if !line.is_empty() {
                line.push(' ');
            }
            line.push_str(&word);
        }
        out.push(line);
    }
    out
}

/// The text in the base fonts' WinAnsi encoding (Latin-1 plus typographic punctuation);
/// anything else becomes `?`.
fn win_ansi(text: &str) -> Vec<u8> {
    text.chars()
        .map(|c| match c {
            ' '..='~' | '\u{a0}'..='\u{ff}' => c as u32 as u8,
            '€' => 0x80,
            '‘' => 0x91,
            '’' => 0x92,
            '“' => 0x93,
            '”' => 0x94,
            '•' => 0x95,
            '–' => 0x96,
            '—' => 0x97,
            _ => b'?',
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wraps_at_word_boundaries() {
        let lines = wrap("one two three four", 9);
        assert_eq!(lines, vec!["one two", "three", "four"]);
        assert_eq!(wrap("abcdefghij", 4), vec!["abcd", "efgh", "ij"]);
    }

    #[test]
    fn encodes_latin_and_punctuation() {
        assert_eq!(win_ansi("é–•ж"), vec![0xe9, 0x96, 0x95, b'?']);
    }

    #[test]
    fn renders_a_pdf_over_several_pages() {
        let doc = Document {
            title: "Title".into(),
            blocks: (0..120).map(|i| Block::Para(format!("Line {i}"))).collect(),
        };
        let bytes = render(&doc);
        assert!(bytes.starts_with(b"%PDF-"));
        assert!(String::from_utf8_lossy(&bytes).contains("/Count 3"));
    }
}
