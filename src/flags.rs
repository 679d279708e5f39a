//! Parsers for the command line's PyTorch-style flag values (`2`, `2,3`, `1,1,2,2`, `same`).

use crate::error::{invalid, Result};
use crate::params::{Layout, Padding};

const OP: &str = "flags";

fn sizes(flag: &str, text: &str) -> Result<Vec<usize>> {
    text.split(',')
        .map(|part| {
            part.trim().parse::<usize>().map_err(|_| {
                invalid(
                    OP,
                    format!("--{flag} {text:?}: {part:?} is not a non-negative integer"),
                )
            })
        })
        .collect()
}

/// `S` or `SH,SW` (stride, dilation, kernel, output padding).
pub fn pair(flag: &str, text: &str) -> Result<[usize; 2]> {
    match sizes(flag, text)?.as_slice() {
        [v] => Ok([*v, *v]),
        [h, w] => Ok([*h, *w]),
        other => Err(invalid(
            OP,
            format!(
                "--{flag} {text:?}: expected 1 or 2 values, got {}",
                other.len()
            ),
        )),
    }
}

/// `P`, `PH,PW`, `T,B,L,R`, `valid` or `same`.
pub fn padding(text: &str) -> Result<Padding> {
    match text.trim().to_ascii_lowercase().as_str() {
        "valid" => return Ok(Padding::Valid),
        "same" => return Ok(Padding::Same),
        _ => {}
    }
    match sizes("padding", text)?.as_slice() {
        [p] => Ok(Padding::uniform(*p)),
        [h, w] => Ok(Padding::symmetric(*h, *w)),
        [t, b, l, r] => Ok(Padding::explicit(*t, *b, *l, *r)),
        other => Err(invalid(
            OP,
            format!(
                "--padding {text:?}: expected P, PH,PW, T,B,L,R, valid or same, got {} values",
                other.len()
            ),
        )),
    }
}

/// `N,C,H,W`-style four sizes.
pub fn shape4(flag: &str, text: &str) -> Result<[usize; 4]> {
    sizes(flag, text)?.try_into().map_err(|v: Vec<usize>| {
        invalid(
            OP,
            format!("--{flag} {text:?}: expected 4 values, got {}", v.len()),
        )
    })
}

/// `nchw` or `nhwc`.
pub fn layout(text: &str) -> Result<Layout> {
    match text.trim().to_ascii_lowercase().as_str() {
        "nchw" => Ok(Layout::Nchw),
        "nhwc" => Ok(Layout::Nhwc),
        _ => Err(invalid(
            OP,
            format!("--layout {text:?}: expected nchw or nhwc"),
        )),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_pytorch_style_values() {
        assert_eq!(pair("stride", "2").unwrap(), [2, 2]);
        assert_eq!(pair("stride", "2, 3").unwrap(), [2, 3]);
        assert_eq!(padding("same").unwrap(), Padding::Same);
        assert_eq!(padding("VALID").unwrap(), Padding::Valid);
        assert_eq!(padding("1").unwrap(), Padding::uniform(1));
        assert_eq!(padding("1,2").unwrap(), Padding::symmetric(1, 2));
        assert_eq!(padding("0,1,2,3").unwrap(), Padding::explicit(0, 1, 2, 3));
        assert_eq!(shape4("input-shape", "1,3,8,8").unwrap(), [1, 3, 8, 8]);
        assert_eq!(layout("NHWC").unwrap(), Layout::Nhwc);
    }

    #[test]
    fn rejects_malformed_values_with_the_flag_name() {
        for (result, needle) in [
            (
                pair("stride", "1,2,3").map(|_| ()),
                "--stride \"1,2,3\": expected 1 or 2 values",
            ),
            (
                pair("stride", "-1").map(|_| ()),
                "\"-1\" is not a non-negative integer",
            ),
            (padding("1,2,3").map(|_| ()), "got 3 values"),
            (
                shape4("input-shape", "1,2").map(|_| ()),
                "expected 4 values, got 2",
            ),
            (layout("chwn").map(|_| ()), "expected nchw or nhwc"),
        ] {
            let e = result.unwrap_err().to_string();
            assert!(e.contains(needle), "{e}");
        }
    }
}
