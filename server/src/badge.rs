//! Status badges, drawn as shields.io draws its flat ones: the service's name on
//! the left, its status as a word (and its 24-hour uptime) on the right, so the
//! colour is never the only signal. Text widths come from Verdana's advance
//! widths at 11px, the font shields.io measures with.

/// What a badge says.
#[derive(Debug, Clone, PartialEq)]
pub struct Badge {
    /// The left side: the service.
    pub label: String,
    /// The right side: the status, and the uptime.
    pub message: String,
    /// The right side's colour, `#rrggbb`.
    pub color: &'static str,
}

impl Badge {
    /// A badge for `service` with `status` (a ServingStatus name, or `None` when
    /// the service is unknown) and its 24-hour uptime fraction, if history has one.
    pub fn new(service: &str, status: Option<&str>, uptime: Option<f64>) -> Self {
        let label = if service.is_empty() {
            "whole server".to_owned()
        } else {
            service.to_owned()
        };
        let (word, color) = match status {
            Some("SERVING") => ("serving", "#2e7d32"),
            Some("NOT_SERVING") => ("not serving", "#c62828"),
            Some(_) => ("unknown", "#8d6e00"),
            None => ("not found", "#616161"),
        };
        let message = match uptime {
            Some(fraction) if status.is_some() => format!("{word} | {}", percent(fraction)),
            _ => word.to_owned(),
        };
        Self {
            label,
            message,
            color,
        }
    }

    /// The SVG.
    pub fn svg(&self) -> String {
        let (left, right) = (width(&self.label) + 10, width(&self.message) + 10);
        let total = left + right;
        let (label, message) = (escape(&self.label), escape(&self.message));
        let color = self.color;
        format!(
            r##"<svg xmlns="http://www.w3.org/2000/svg" width="{total}" height="20" role="img" aria-label="{label}: {message}"><title>{label}: {message}</title><linearGradient id="s" x2="0" y2="100%"><stop offset="0" stop-color="#bbb" stop-opacity=".1"/><stop offset="1" stop-opacity=".1"/></linearGradient><clipPath id="r"><rect width="{total}" height="20" rx="3" fill="#fff"/></clipPath><g clip-path="url(#r)"><rect width="{left}" height="20" fill="#555"/><rect x="{left}" width="{right}" height="20" fill="{color}"/><rect width="{total}" height="20" fill="url(#s)"/></g><g fill="#fff" text-anchor="middle" font-family="Verdana,Geneva,DejaVu Sans,sans-serif" font-size="11"><text x="{lx}" y="15" fill="#010101" fill-opacity=".3">{label}</text><text x="{lx}" y="14">{label}</text><text x="{mx}" y="15" fill="#010101" fill-opacity=".3">{message}</text><text x="{mx}" y="14">{message}</text></g></svg>"##,
            lx = f64::from(left) / 2.0,
            mx = f64::from(left) + f64::from(right) / 2.0,
        )
    }
}

/// `0.99953` as `99.95%`: never 100% while anything was down.
fn percent(fraction: f64) -> String {
    let hundredths = (fraction * 10_000.0).floor() / 100.0;
    if hundredths >= 100.0 {
        "100%".into()
    } else {
        format!("{hundredths:.2}%")
    }
}

/// Verdana 11px advance widths, in pixels, for printable ASCII; others count as `M`.
fn width(text: &str) -> u32 {
    const ASCII: [u8; 95] = [
        4, 5, 6, 9, 7, 12, 8, 3, 5, 5, 7, 9, 4, 5, 4, 5, 7, 7, 7, 7, 7, 7, 7, 7, 7, 7, 5, 5, 9, 9,
        9, 6, 11, 8, 8, 8, 8, 7, 6, 9, 8, 5, 5, 8, 6, 9, 8, 9, 7, 9, 8, 8, 7, 8, 8, 11, 8, 7, 8, 5,
        5, 5, 9, 7, 7, 7, 7, 6, 7, 7, 4, 7, 7, 3, 4, 7, 3, 11, 7, 7, 7, 7, 5, 6, 4, 7, 7, 9, 7, 7,
        6, 7, 5, 7, 9,
    ];
    text.chars()
        .map(|c| match c {
            ' '..='~' => u32::from(ASCII[c as usize - 32]),
            _ => 11,
        })
        .sum()
}

fn escape(text: &str) -> String {
    text.chars()
        .map(|c| match c {
            '&' => "&amp;".into(),
            '<' => "&lt;".into(),
            '>' => "&gt;".into(),
            '"' => "&quot;".into(),
            '\'' => "&apos;".into(),
            c if c.is_control() => "\u{FFFD}".into(),
            c => c.to_string(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn says_the_status_in_words_and_escapes_the_name() {
        let badge = Badge::new("a<b>&\"c\"", Some("SERVING"), Some(0.99953));
        assert_eq!(badge.message, "serving | 99.95%");
        let svg = badge.svg();
        assert!(
            svg.contains("a&lt;b&gt;&amp;&quot;c&quot;: serving | 99.95%"),
            "{svg}"
        );
        assert!(!svg.contains("a<b>"));
        assert_eq!(Badge::new("x", None, Some(1.0)).message, "not found");
        assert_eq!(
            Badge::new("x", Some("NOT_SERVING"), None).message,
            "not serving"
        );
        assert_eq!(percent(0.999_999), "99.99%");
        assert_eq!(percent(1.0), "100%");
    }
}
