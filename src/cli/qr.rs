//! Drawing the otpauth URI as a QR code in the terminal, two modules per character cell
//! with Unicode half blocks.

use super::args::QrStyle;
use qrcode::{Color, EcLevel, QrCode};

/// Light modules around the code; scanners need a quiet zone to find it.
const QUIET_ZONE: usize = 2;
const UPPER: char = '▀';
const LOWER: char = '▄';
const FULL: char = '█';
/// ANSI colours for `ansi`: black and bright white, foreground and background.
const FG: [&str; 2] = ["\x1b[30m", "\x1b[97m"];
const BG: [&str; 2] = ["\x1b[40m", "\x1b[107m"];
const RESET: &str = "\x1b[0m";

/// The QR code of `data` as lines of text; `None` for [`QrStyle::None`].
///
/// `utf8`: a block is drawn where a module is light, for the usual light-on-dark terminal
/// (`invert`: where it is dark, for dark-on-light terminals). `ansi` (the default): every
/// cell sets its own colours, black modules on a white quiet zone as Google
/// Authenticator's tool draws them, so the code scans whatever the terminal's theme.
pub fn render(data: &str, style: QrStyle, invert: bool) -> Result<Option<String>, String> {
    if style == QrStyle::None {
        return Ok(None);
    }
    let code = QrCode::with_error_correction_level(data.as_bytes(), EcLevel::M)
        .map_err(|e| format!("cannot draw a QR code ({e}); use --qr none and type the secret"))?;
    let width = code.width();
    let colors = code.to_colors();
    let size = width + 2 * QUIET_ZONE;
    // An even number of rows, so every cell has a top and a bottom module.
    let rows = size + size % 2;
    let light = |x: usize, y: usize| -> bool {
        let (Some(x), Some(y)) = (x.checked_sub(QUIET_ZONE), y.checked_sub(QUIET_ZONE)) else {
            return true;
        };
        x >= width || y >= width || colors[y * width + x] == Color::Light
    };
    let mut out = String::new();
    for y in (0..rows).step_by(2) {
        for x in 0..size {
            let (top, bottom) = (light(x, y), light(x, y + 1));
            match style {
                QrStyle::Ansi => {
                    out.push_str(FG[usize::from(top)]);
                    out.push_str(BG[usize::from(bottom)]);
                    out.push(UPPER);
                }
                _ => out.push(match (top != invert, bottom != invert) {
                    (true, true) => FULL,
                    (true, false) => UPPER,
                    (false, true) => LOWER,
                    (false, false) => ' ',
                }),
            }
        }
        if style == QrStyle::Ansi {
            out.push_str(RESET);
        }
        out.push('\n');
    }
    Ok(Some(out))
}

/// The width of the terminal the QR code goes to: standard output's (TIOCGWINSZ), else
/// `$COLUMNS`; `None` when neither says.
pub fn terminal_columns() -> Option<usize> {
    use std::os::fd::AsFd;
    pam_totp::terminal_columns(std::io::stdout().as_fd())
        .map(usize::from)
        .or_else(|| std::env::var("COLUMNS").ok()?.trim().parse().ok())
        .filter(|&columns| columns > 0)
}

/// A warning when `drawing` is wider than a terminal of `columns`: the lines would wrap and
/// the code would not scan.
pub fn too_wide(drawing: &str, columns: Option<usize>) -> Option<String> {
    let columns = columns?;
    let width = drawing
        .lines()
        .map(|line| line.chars().filter(|c| QR_CHARS.contains(c)).count())
        .max()?;
    (width > columns).then(|| {
        format!(
            "Note: the QR code is {width} columns wide but the terminal has {columns}: it will not scan. Widen the window (or make the font smaller) and run this again, or use --qr none and type the key.\n"
        )
    })
}

/// The characters a drawing is made of (everything else is a colour escape).
const QR_CHARS: [char; 4] = [UPPER, LOWER, FULL, ' '];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_code_wider_than_the_terminal_is_warned_about() {
        let drawing = render("otpauth://totp/x", QrStyle::Ansi, false)
            .unwrap()
            .unwrap();
        let width = drawing.lines().next().unwrap().matches(UPPER).count();
        assert!(too_wide(&drawing, Some(width - 1)).is_some());
        assert_eq!(too_wide(&drawing, Some(width)), None);
        assert_eq!(too_wide(&drawing, None), None);
    }

    #[test]
    fn none_draws_nothing() {
        assert_eq!(render("x", QrStyle::None, false).unwrap(), None);
    }

    #[test]
    fn utf8_rows_are_square_and_framed_by_the_quiet_zone() {
        let text = render("otpauth://totp/x", QrStyle::Utf8, false)
            .unwrap()
            .unwrap();
        let lines: Vec<&str> = text.lines().collect();
        let width = lines[0].chars().count();
        assert!(lines.iter().all(|l| l.chars().count() == width));
        assert_eq!(lines.len(), width.div_ceil(2));
        // The quiet zone is light: full blocks in the default style, blanks inverted.
        assert!(lines[0].chars().all(|c| c == FULL));
        let inverted = render("otpauth://totp/x", QrStyle::Utf8, true)
            .unwrap()
            .unwrap();
        assert!(inverted.lines().next().unwrap().chars().all(|c| c == ' '));
    }
}
