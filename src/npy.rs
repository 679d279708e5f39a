//! numpy's `.npy` format: read f32 and int64 arrays (C or Fortran order), write them atomically.
//!
//! The header is a Python dict literal, `{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }`,
//! after the magic `\x93NUMPY`, a version and the header length (2 bytes in version 1, 4 in
//! versions 2 and 3). Only little-endian `f4` and `i8` are accepted; anything else is an error that
//! says what was found.

use std::path::Path;

use ndarray::{ArrayD, ArrayViewD, IxDyn};

use crate::error::{invalid, Error, Result};

const MAGIC: &[u8] = b"\x93NUMPY";
const OP: &str = "npy";

/// The element types wgconv reads and writes.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Dtype {
    /// `<f4`: activations, weights, gradients.
    F32,
    /// `<i8`: pooling indices (PyTorch's dtype).
    I64,
}

impl Dtype {
    fn descr(self) -> &'static str {
        match self {
            Dtype::F32 => "<f4",
            Dtype::I64 => "<i8",
        }
    }
}

/// A parsed `.npy` array.
#[derive(Clone, Debug, PartialEq)]
pub enum NpyArray {
    /// A float32 (`<f4`) array.
    F32(ArrayD<f32>),
    /// An int64 (`<i8`) array, such as pooling indices.
    I64(ArrayD<i64>),
}

struct Header {
    dtype: Dtype,
    fortran_order: bool,
    shape: Vec<usize>,
    data_offset: usize,
}

/// Parses a whole `.npy` file.
pub fn parse(bytes: &[u8]) -> Result<NpyArray> {
    let h = parse_header(bytes)?;
    let count = h
        .shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .ok_or_else(|| invalid(OP, format!("shape {:?} overflows", h.shape)))?;
    let data = &bytes[h.data_offset..];
    let element_size = match h.dtype {
        Dtype::F32 => 4,
        Dtype::I64 => 8,
    };
    let expected = count
        .checked_mul(element_size)
        .ok_or_else(|| invalid(OP, format!("shape {:?} overflows", h.shape)))?;
    if data.len() != expected {
        return Err(invalid(
            OP,
            format!(
                "shape {:?} of {} needs {expected} data bytes, the file has {}",
                h.shape,
                h.dtype.descr(),
                data.len()
            ),
        ));
    }
    // Fortran order is C order of the reversed shape, transposed back.
    let stored_shape: Vec<usize> = if h.fortran_order {
        h.shape.iter().rev().copied().collect()
    } else {
        h.shape.clone()
    };
    Ok(match h.dtype {
        Dtype::F32 => {
            let values = data
                .chunks_exact(4)
                .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
                .collect();
            NpyArray::F32(arrange(&stored_shape, values, h.fortran_order)?)
        }
        Dtype::I64 => {
            let values = data
                .chunks_exact(8)
                .map(|c| i64::from_le_bytes(c.try_into().expect("chunks of 8")))
                .collect();
            NpyArray::I64(arrange(&stored_shape, values, h.fortran_order)?)
        }
    })
}

/// The array stored as `values` in C order of `stored_shape`, in C order of the logical shape.
fn arrange<T: Clone>(
    stored_shape: &[usize],
    values: Vec<T>,
    fortran_order: bool,
) -> Result<ArrayD<T>> {
    let a = ArrayD::from_shape_vec(IxDyn(stored_shape), values)
        .map_err(|e| invalid(OP, e.to_string()))?;
    Ok(if fortran_order {
        a.reversed_axes().as_standard_layout().into_owned()
    } else {
        a
    })
}

fn parse_header(bytes: &[u8]) -> Result<Header> {
    if bytes.len() < 10 || &bytes[..6] != MAGIC {
        return Err(invalid(
            OP,
            "not a .npy file (missing the \\x93NUMPY magic)",
        ));
    }
    let (header_len, start): (usize, usize) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 => {
            if bytes.len() < 12 {
                return Err(invalid(OP, "truncated header"));
            }
            (
                u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
                12,
            )
        }
        v => return Err(invalid(OP, format!("unsupported .npy version {v}"))),
    };
    let end = start
        .checked_add(header_len)
        .filter(|&e| e <= bytes.len())
        .ok_or_else(|| {
            invalid(
                OP,
                format!("header of {header_len} bytes runs past the end of the file"),
            )
        })?;
    let text =
        std::str::from_utf8(&bytes[start..end]).map_err(|_| invalid(OP, "header is not text"))?;
    let descr = dict_value(text, "descr")?;
    let dtype = match descr.trim_matches(|c| c == '\'' || c == '"') {
        "<f4" | "|f4" => Dtype::F32,
        "<i8" | "|i8" => Dtype::I64,
        other => {
            return Err(invalid(
                OP,
                format!(
                    "dtype {other} is not supported (wgconv reads float32 '<f4' and int64 '<i8')"
                ),
            ))
        }
    };
    let fortran_order = match dict_value(text, "fortran_order")?.trim() {
        "False" => false,
        "True" => true,
        other => {
            return Err(invalid(
                OP,
                format!("fortran_order is {other}, not True or False"),
            ))
        }
    };
    let shape_text = dict_value(text, "shape")?;
    let inner = shape_text
        .trim()
        .strip_prefix('(')
        .and_then(|s| s.strip_suffix(')'))
        .ok_or_else(|| invalid(OP, format!("shape {shape_text} is not a tuple")))?;
    let shape = inner
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| {
            s.parse::<usize>()
                .map_err(|_| invalid(OP, format!("shape entry {s:?} is not a size")))
        })
        .collect::<Result<Vec<_>>>()?;
    Ok(Header {
        dtype,
        fortran_order,
        shape,
        data_offset: end,
    })
}

/// The text of `key`'s value in the header dict: up to the next top-level comma or brace.
fn dict_value<'a>(text: &'a str, key: &str) -> Result<&'a str> {
    let missing = || invalid(OP, format!("header has no '{key}' entry"));
    let at = text
        .find(&format!("'{key}'"))
        .or_else(|| text.find(&format!("\"{key}\"")))
        .ok_or_else(missing)?;
    let rest = &text[at + key.len() + 2..];
    let rest = rest
        .trim_start()
        .strip_prefix(':')
        .ok_or_else(missing)?
        .trim_start();
    let mut depth = 0i32;
    for (i, ch) in rest.char_indices() {
        match ch {
            '(' => depth += 1,
            ')' => depth -= 1,
            ',' | '}' if depth == 0 => return Ok(&rest[..i]),
            _ => {}
        }
    }
    Err(invalid(
        OP,
        format!("header entry '{key}' is not terminated"),
    ))
}

/// Serialises an array as a version 1.0 `.npy` file in C order.
pub fn to_bytes_f32(array: ArrayViewD<f32>) -> Vec<u8> {
    let mut out = header_bytes(Dtype::F32, array.shape());
    for v in array.iter() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

/// Serialises int64 values (pooling indices) as a version 1.0 `.npy` file in C order.
pub fn to_bytes_i64(array: ArrayViewD<i64>) -> Vec<u8> {
    let mut out = header_bytes(Dtype::I64, array.shape());
    for v in array.iter() {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out
}

fn header_bytes(dtype: Dtype, shape: &[usize]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = if dims.len() == 1 {
        format!("({},)", dims[0])
    } else {
        format!("({})", dims.join(", "))
    };
    let mut dict = format!(
        "{{'descr': '{}', 'fortran_order': False, 'shape': {shape}, }}",
        dtype.descr()
    );
    // Pad so that magic + version + length + dict + newline is a multiple of 64.
    let unpadded = MAGIC.len() + 2 + 2 + dict.len() + 1;
    dict.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
    dict.push('\n');
    let mut out = Vec::with_capacity(64 + dict.len());
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&[1, 0]);
    out.extend_from_slice(&(dict.len() as u16).to_le_bytes());
    out.extend_from_slice(dict.as_bytes());
    out
}

/// Reads a `.npy` file.
pub fn read(path: &Path) -> Result<NpyArray> {
    let bytes = std::fs::read(path)
        .map_err(|e| invalid(OP, format!("cannot read {}: {e}", path.display())))?;
    parse(&bytes).map_err(|e| match e {
        Error::InvalidArgument { what, .. } => invalid(OP, format!("{}: {what}", path.display())),
        other => other,
    })
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so that a
/// failure never leaves a partial file behind.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    let tmp = path.with_extension(format!("npy.tmp{}", std::process::id()));
    let result = std::fs::write(&tmp, bytes).and_then(|()| std::fs::rename(&tmp, path));
    if let Err(e) = result {
        let _ = std::fs::remove_file(&tmp);
        return Err(invalid(OP, format!("cannot write {}: {e}", path.display())));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use ndarray::{array, ArrayD};

    #[test]
    fn round_trips_and_pads_the_header_to_64_bytes() {
        let a = array![[1.5f32, -2.0, 3.25], [4.0, 5.0, 6.0]].into_dyn();
        let bytes = to_bytes_f32(a.view());
        let data_start = bytes.len() - 6 * 4;
        assert_eq!(data_start % 64, 0);
        assert_eq!(parse(&bytes).unwrap(), NpyArray::F32(a));
        let i = ArrayD::from_shape_vec(IxDyn(&[3]), vec![0i64, 7, -1]).unwrap();
        assert_eq!(parse(&to_bytes_i64(i.view())).unwrap(), NpyArray::I64(i));
    }

    /// A header exactly as numpy 1.26 writes `np.arange(6, dtype='<f4').reshape(2, 3)` in
    /// Fortran order (`np.asfortranarray`), data in column-major order.
    #[test]
    fn reads_fortran_order() {
        let dict = "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }";
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[1, 0]);
        let mut header = dict.to_string();
        let unpadded = 10 + header.len() + 1;
        header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
        header.push('\n');
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        for v in [0.0f32, 3.0, 1.0, 4.0, 2.0, 5.0] {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let want = array![[0.0f32, 1.0, 2.0], [3.0, 4.0, 5.0]].into_dyn();
        assert_eq!(parse(&bytes).unwrap(), NpyArray::F32(want));
    }

    #[test]
    fn malformed_files_give_errors_that_say_why() {
        let good = to_bytes_f32(array![1.0f32, 2.0].into_dyn().view());
        let e = parse(b"PK\x03\x04 not numpy").unwrap_err().to_string();
        assert!(e.contains("magic"), "{e}");
        let e = parse(&good[..good.len() - 1]).unwrap_err().to_string();
        assert!(e.contains("needs 8 data bytes, the file has 7"), "{e}");
        let mut f8 = good.clone();
        let at = f8.windows(3).position(|w| w == b"<f4").unwrap();
        f8[at + 2] = b'8';
        let e = parse(&f8).unwrap_err().to_string();
        assert!(e.contains("dtype <f8 is not supported"), "{e}");
        let e = parse(&good[..20]).unwrap_err().to_string();
        assert!(e.contains("runs past the end"), "{e}");
    }
}
