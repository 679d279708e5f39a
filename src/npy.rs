//! `wgconv run`'s files: float32 and int64 arrays in numpy's `.npy` (and `.npz`) format, on ndarray-npy.
//!
//! ndarray-npy sizes its buffers from what a header declares before reading anything, and
//! unwraps ndarray's shape check, so a few corrupt bytes could make it panic or ask for more
//! memory than the machine has (an abort, not an error). [`parse`] therefore checks the header
//! length, the dtype and the shape against the file before handing it over; everything it
//! lets through reads without surprises.

use std::io::{Cursor, Read};
use std::path::{Path, PathBuf};

use ndarray::{ArrayD, ArrayViewD};
use ndarray_npy::npy::header::{Header, ParseHeaderError, ReadHeaderError};
use ndarray_npy::{ReadNpyExt, WriteNpyExt};

use crate::error::{invalid, Error, Result};

const OP: &str = "npy";

/// A parsed `.npy` array, in C order whatever order the file stored.
#[derive(Clone, Debug, PartialEq)]
pub enum NpyArray {
    /// float32 data.
    F32(ArrayD<f32>),
    /// int64 data: pooling indices, PyTorch's dtype.
    I64(ArrayD<i64>),
}

/// The element types wgconv reads: float32 data and int64 pooling indices (PyTorch's dtype).
#[derive(Clone, Copy)]
enum Dtype {
    F32,
    I64,
}

impl Dtype {
    fn of(header: &Header) -> Result<Self> {
        let descr = header.type_descriptor.as_string().map(String::as_str);
        match descr {
            Some("<f4" | ">f4") => Ok(Dtype::F32),
            Some("<i8" | ">i8") => Ok(Dtype::I64),
            _ => {
                let shown =
                    descr.map_or_else(|| header.type_descriptor.to_string(), str::to_string);
                Err(invalid(
                    OP,
                    format!(
                        "dtype {shown} is not supported (wgconv reads float32 '<f4' and int64 '<i8')"
                    ),
                ))
            }
        }
    }

    fn size(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::I64 => 8,
        }
    }
}

/// Parses a whole `.npy` file.
pub fn parse(bytes: &[u8]) -> Result<NpyArray> {
    check_header_len(bytes)?;
    check_header_nesting(bytes)?;
    let mut data = bytes;
    let header = Header::from_reader(&mut data).map_err(header_error)?;
    let dtype = Dtype::of(&header)?;
    check_shape(&header.shape, dtype, data.len())?;
    let read_error = |e: ndarray_npy::ReadNpyError| invalid(OP, e.to_string());
    Ok(match dtype {
        Dtype::F32 => NpyArray::F32(c_order(ArrayD::read_npy(bytes).map_err(read_error)?)),
        Dtype::I64 => NpyArray::I64(c_order(ArrayD::read_npy(bytes).map_err(read_error)?)),
    })
}

/// Versions 2 and 3 give the header's length in 4 bytes, which ndarray-npy allocates before
/// reading; version 1's 2 bytes cannot ask for much, and anything else it rejects first.
fn check_header_len(bytes: &[u8]) -> Result<()> {
    if let Some(&[2 | 3, _, a, b, c, d]) = bytes.get(6..12) {
        let len = u32::from_le_bytes([a, b, c, d]) as usize;
        if len > bytes.len() - 12 {
            return Err(invalid(
                OP,
                format!("header of {len} bytes runs past the end of the file"),
            ));
        }
    }
    Ok(())
}

/// How deep brackets may nest in the header dict: a plain dtype's header nests 2 deep (the
/// dict and its shape tuple), a structured dtype a little more, which [`Dtype::of`] refuses by
/// name.
const MAX_HEADER_NESTING: usize = 4;

/// ndarray-npy's dict parser backtracks on nested brackets, in time exponential in the depth:
/// a header of 90 `[` in a row would run for hours, so such a header is refused before it is
/// parsed. Brackets inside quoted strings do not count.
fn check_header_nesting(bytes: &[u8]) -> Result<()> {
    if !bytes.starts_with(b"\x93NUMPY") {
        return Ok(());
    }
    let header = match bytes.get(6) {
        Some(1) => bytes.get(10..),
        Some(2 | 3) => bytes.get(12..),
        _ => None,
    };
    let (mut depth, mut quote) = (0usize, None);
    for &b in header.unwrap_or_default() {
        match (quote, b) {
            (Some(q), _) if b == q => quote = None,
            (Some(_), _) => {}
            (None, b'\'' | b'"') => quote = Some(b),
            (None, b'(' | b'[' | b'{') => {
                depth += 1;
                if depth > MAX_HEADER_NESTING {
                    return Err(invalid(
                        OP,
                        format!(
                            "bad header: brackets nested more than {MAX_HEADER_NESTING} deep \
                             (a plain dtype's header nests 2 deep)"
                        ),
                    ));
                }
            }
            (None, b')' | b']' | b'}') => depth = depth.saturating_sub(1),
            (None, b'\n') => break,
            _ => {}
        }
    }
    Ok(())
}

fn header_error(e: ReadHeaderError) -> Error {
    match e {
        ReadHeaderError::Parse(ParseHeaderError::MagicString) => {
            invalid(OP, "not a .npy file (missing the \\x93NUMPY magic)")
        }
        ReadHeaderError::Io(e) if e.kind() == std::io::ErrorKind::UnexpectedEof => {
            invalid(OP, "truncated header")
        }
        // The dict parser's message quotes the whole header over several lines, and a shape
        // can be a long tuple: its first line, cut short, keeps the error to one line.
        ReadHeaderError::Parse(e) => {
            let text = e.to_string();
            let first = text.lines().next().unwrap_or_default();
            let brief: String = first.chars().take(160).collect();
            let cut = if brief.len() < first.len() { "..." } else { "" };
            invalid(OP, format!("bad header: {}{cut}", brief.trim_end()))
        }
        ReadHeaderError::Io(e) => invalid(OP, e.to_string()),
    }
}

/// The shape must be one ndarray can hold (the product of its non-zero axes within `isize`,
/// or ndarray-npy panics) and must match the data the file has (or it allocates first).
fn check_shape(shape: &[usize], dtype: Dtype, data_len: usize) -> Result<()> {
    let overflow = || invalid(OP, format!("shape {shape:?} overflows"));
    let nonzero = shape
        .iter()
        .filter(|&&d| d != 0)
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= isize::MAX as usize)
        .ok_or_else(overflow)?;
    let count = if shape.contains(&0) { 0 } else { nonzero };
    let expected = count
        .checked_mul(dtype.size())
        .filter(|&n| n <= isize::MAX as usize)
        .ok_or_else(overflow)?;
    if data_len != expected {
        let descr = match dtype {
            Dtype::F32 => "<f4",
            Dtype::I64 => "<i8",
        };
        return Err(invalid(
            OP,
            format!(
                "shape {shape:?} of {descr} needs {expected} data bytes, the file has {data_len}"
            ),
        ));
    }
    Ok(())
}

fn c_order<T: Clone>(a: ArrayD<T>) -> ArrayD<T> {
    if a.is_standard_layout() {
        a
    } else {
        a.as_standard_layout().into_owned()
    }
}

/// The array `member` of a `.npz` archive (numpy's `savez` or `savez_compressed`), or its only
/// array when `member` is `None`. As in numpy, `x` names the archive's `x.npy`.
pub fn parse_npz(bytes: &[u8], member: Option<&str>) -> Result<NpyArray> {
    let zip_error = |e: zip::result::ZipError| invalid(OP, format!("not a readable .npz: {e}"));
    let mut archive = zip::ZipArchive::new(Cursor::new(bytes)).map_err(zip_error)?;
    let names = || {
        let names: Vec<&str> = archive
            .file_names()
            .map(|n| n.strip_suffix(".npy").unwrap_or(n))
            .collect();
        names.join(", ")
    };
    let index = match member {
        Some(m) => archive
            .index_for_name(m)
            .or_else(|| archive.index_for_name(&format!("{m}.npy")))
            .ok_or_else(|| invalid(OP, format!("no array {m:?} in the archive ({})", names())))?,
        None if archive.len() == 1 => 0,
        None => {
            return Err(invalid(
                OP,
                format!(
                    "the archive holds {} arrays ({}); name one as FILE.npz:NAME",
                    archive.len(),
                    names()
                ),
            ))
        }
    };
    let mut entry = archive.by_index(index).map_err(zip_error)?;
    let name = entry.name().to_string();
    // Not sized from the entry's declared size, which is as untrusted as a header.
    let mut npy = Vec::new();
    entry
        .read_to_end(&mut npy)
        .map_err(|e| invalid(OP, format!("{name}: {e}")))?;
    parse(&npy).map_err(|e| match e {
        Error::InvalidArgument { what, .. } => invalid(OP, format!("{name}: {what}")),
        other => other,
    })
}

/// Where `wgconv run` reads an array from: a `.npy` file, or `ARCHIVE.npz:NAME` for one array of
/// a `.npz` archive (a bare `ARCHIVE.npz` for its only one).
fn source(path: &Path) -> (PathBuf, Option<&str>, bool) {
    let is_npz = |p: &Path| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("npz"));
    if let Some((archive, member)) = path.to_str().and_then(|s| s.rsplit_once(':')) {
        if is_npz(Path::new(archive)) {
            return (PathBuf::from(archive), Some(member), true);
        }
    }
    (path.to_path_buf(), None, is_npz(path))
}

/// Reads an array from a `.npy` file, or from a `.npz` archive as `ARCHIVE.npz[:NAME]`.
pub fn read(path: &Path) -> Result<NpyArray> {
    let (file, member, is_npz) = source(path);
    let bytes = std::fs::read(&file)
        .map_err(|e| invalid(OP, format!("cannot read {}: {e}", file.display())))?;
    let parsed = if is_npz {
        parse_npz(&bytes, member)
    } else {
        parse(&bytes)
    };
    parsed.map_err(|e| match e {
        Error::InvalidArgument { what, .. } => invalid(OP, format!("{}: {what}", path.display())),
        other => other,
    })
}

/// Whether `path` names an array inside a `.npz` archive, which wgconv reads but does not write.
pub fn is_npz_source(path: &Path) -> bool {
    source(path).2
}

/// Serialises an array as a `.npy` file in C order.
pub fn to_bytes_f32(array: ArrayViewD<f32>) -> Vec<u8> {
    to_bytes(array)
}

/// Serialises int64 values (pooling indices) as a `.npy` file in C order.
pub fn to_bytes_i64(array: ArrayViewD<i64>) -> Vec<u8> {
    to_bytes(array)
}

fn to_bytes<T: ndarray_npy::WritableElement + Clone>(array: ArrayViewD<T>) -> Vec<u8> {
    let mut out = Vec::new();
    array
        .as_standard_layout()
        .write_npy(&mut out)
        .expect("an array's .npy header is at most a few hundred bytes, and memory takes any");
    out
}

/// Writes `bytes` to `path` through a temporary file in the same folder and a rename, so that a
/// failure never leaves a partial file behind.
pub fn write_atomically(path: &Path, bytes: &[u8]) -> Result<()> {
    write_all_atomically(&[(path, bytes)])
}

/// Writes several files as one: each goes to a temporary file beside its destination first,
/// and only once every one is written, and no destination is a folder, are they renamed into
/// place, so that a failure to write (a missing folder, a full disk) leaves none of them and no
/// destination half replaced. (A rename within a folder failing after all that leaves those
/// renamed before it.)
pub fn write_all_atomically(files: &[(&Path, &[u8])]) -> Result<()> {
    // The whole file name plus a suffix, numbered per file: replacing the extension would give
    // `y.npy` and `y.idx` one temporary file.
    let tmp = |i: usize, path: &Path| {
        let mut name = path.as_os_str().to_owned();
        name.push(format!(".tmp{}.{i}", std::process::id()));
        PathBuf::from(name)
    };
    let fail = |path: &Path, e: &dyn std::fmt::Display| {
        invalid(OP, format!("cannot write {}: {e}", path.display()))
    };
    let remove = |n: usize| {
        for (i, (path, _)) in files.iter().enumerate().take(n) {
            let _ = std::fs::remove_file(tmp(i, path));
        }
    };
    for (i, (path, bytes)) in files.iter().enumerate() {
        if let Err(e) = std::fs::write(tmp(i, path), bytes) {
            remove(i + 1);
            return Err(fail(path, &e));
        }
    }
    if let Some((path, _)) = files.iter().find(|(path, _)| path.is_dir()) {
        remove(files.len());
        return Err(fail(path, &"it is a folder"));
    }
    for (i, (path, _)) in files.iter().enumerate() {
        if let Err(e) = std::fs::rename(tmp(i, path), path) {
            for (j, (later, _)) in files.iter().enumerate().skip(i) {
                let _ = std::fs::remove_file(tmp(j, later));
            }
            return Err(fail(path, &e));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;
    use ndarray::{array, IxDyn};

    const MAGIC: &[u8] = b"\x93NUMPY";

    /// A version 1.0 file with header dict `dict` and raw data `data`, padded as numpy pads.
    fn npy_file(dict: &str, data: &[u8]) -> Vec<u8> {
        let mut bytes = MAGIC.to_vec();
        bytes.extend_from_slice(&[1, 0]);
        let mut header = dict.to_string();
        let unpadded = 10 + header.len() + 1;
        header.push_str(&" ".repeat(unpadded.next_multiple_of(64) - unpadded));
        header.push('\n');
        bytes.extend_from_slice(&(header.len() as u16).to_le_bytes());
        bytes.extend_from_slice(header.as_bytes());
        bytes.extend_from_slice(data);
        bytes
    }

    #[test]
    fn round_trips_and_pads_the_header_to_64_bytes() {
        let a = array![[1.5f32, -2.0, 3.25], [4.0, 5.0, 6.0]].into_dyn();
        let bytes = to_bytes_f32(a.view());
        let data_start = bytes.len() - 6 * 4;
        assert_eq!(data_start % 64, 0);
        assert_eq!(parse(&bytes).unwrap(), NpyArray::F32(a.clone()));
        // A transposed view is written in its own (logical) C order.
        let t = parse(&to_bytes_f32(a.t())).unwrap();
        assert_eq!(t, NpyArray::F32(a.t().to_owned()));
        let i = ArrayD::from_shape_vec(IxDyn(&[3]), vec![0i64, 7, -1]).unwrap();
        assert_eq!(parse(&to_bytes_i64(i.view())).unwrap(), NpyArray::I64(i));
    }

    /// A header exactly as numpy 1.26 writes `np.arange(6, dtype='<f4').reshape(2, 3)` in
    /// Fortran order (`np.asfortranarray`), data in column-major order.
    #[test]
    fn reads_fortran_order_and_big_endian() {
        let data: Vec<u8> = [0.0f32, 3.0, 1.0, 4.0, 2.0, 5.0]
            .iter()
            .flat_map(|v| v.to_le_bytes())
            .collect();
        let bytes = npy_file(
            "{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
            &data,
        );
        let want = array![[0.0f32, 1.0, 2.0], [3.0, 4.0, 5.0]].into_dyn();
        let NpyArray::F32(got) = parse(&bytes).unwrap() else {
            panic!("float32 expected")
        };
        assert_eq!(got, want);
        assert!(got.is_standard_layout());
        let data: Vec<u8> = [7i64, -2].iter().flat_map(|v| v.to_be_bytes()).collect();
        let bytes = npy_file(
            "{'descr': '>i8', 'fortran_order': False, 'shape': (2,), }",
            &data,
        );
        assert_eq!(
            parse(&bytes).unwrap(),
            NpyArray::I64(array![7i64, -2].into_dyn())
        );
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
        assert!(e.contains("truncated header"), "{e}");
        let deep = format!("{}{}", "(".repeat(20000), ")".repeat(20000));
        let e = parse(&npy_file(
            &format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {deep}, }}"),
            &[],
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("bad header: brackets nested"), "{e}");
        assert!(!e.contains('\n') && e.len() < 200, "{e}");
    }

    /// Headers that ndarray-npy alone would answer with a panic or a huge allocation.
    #[test]
    fn declared_sizes_are_checked_before_anything_is_allocated() {
        let header = |shape: &str| {
            npy_file(
                &format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}"),
                &[0; 8],
            )
        };
        let e = parse(&header("(0, 10000000000000000000)"))
            .unwrap_err()
            .to_string();
        assert!(e.contains("overflows"), "{e}");
        let e = parse(&header("(100000000000000,)"))
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("needs 400000000000000 data bytes, the file has 8"),
            "{e}"
        );
        let mut v2 = MAGIC.to_vec();
        v2.extend_from_slice(&[2, 0, 0xff, 0xff, 0xff, 0xff]);
        let e = parse(&v2).unwrap_err().to_string();
        assert!(e.contains("runs past the end"), "{e}");
    }

    /// The header's dict parser backtracks on nested brackets, taking time exponential in the
    /// depth (a fuzzer's 90 `[` in a row ran for minutes); no dtype wgconv reads nests at all.
    #[test]
    fn deeply_nested_headers_are_refused_at_once() {
        for depth in [5, 90, 5000] {
            let dict = format!("{{'descr': {}'<f4', 'shape': (2,)}}", "[".repeat(depth));
            let start = std::time::Instant::now();
            let e = parse(&npy_file(&dict, &[0; 8])).unwrap_err().to_string();
            assert!(e.contains("nested"), "{e}");
            assert!(start.elapsed().as_secs_f64() < 1.0, "depth {depth}");
        }
        // Parentheses and braces nest too; quoted brackets do not count.
        let e = parse(&npy_file(
            "{'descr': '<f4', 'shape': ((((((2,),),),),),)}",
            &[0; 8],
        ))
        .unwrap_err()
        .to_string();
        assert!(e.contains("nested"), "{e}");
        let quoted = "{'descr': '<f4', 'fortran_order': False, 'shape': (2,), '[[[[[[': 1}";
        let e = parse(&npy_file(quoted, &[0; 8])).unwrap_err().to_string();
        assert!(!e.contains("nested"), "{e}");
    }

    fn zip_of(members: &[(&str, &[u8])], method: zip::CompressionMethod) -> Vec<u8> {
        let mut zip = zip::ZipWriter::new(Cursor::new(Vec::new()));
        // numpy's savez forces Zip64 entries; the reader must take them.
        let options = zip::write::SimpleFileOptions::default()
            .compression_method(method)
            .large_file(true);
        for (name, bytes) in members {
            zip.start_file(*name, options).unwrap();
            zip.write_all(bytes).unwrap();
        }
        zip.finish().unwrap().into_inner()
    }

    #[test]
    fn reads_npz_members_by_name_stored_or_deflated() {
        let x = array![[1.0f32, 2.0], [3.0, 4.0]].into_dyn();
        let i = array![5i64, 6].into_dyn();
        for method in [
            zip::CompressionMethod::Stored,
            zip::CompressionMethod::Deflated,
        ] {
            let archive = zip_of(
                &[
                    ("x.npy", &to_bytes_f32(x.view())),
                    ("idx.npy", &to_bytes_i64(i.view())),
                ],
                method,
            );
            assert_eq!(
                parse_npz(&archive, Some("x")).unwrap(),
                NpyArray::F32(x.clone())
            );
            assert_eq!(
                parse_npz(&archive, Some("idx.npy")).unwrap(),
                NpyArray::I64(i.clone())
            );
            let e = parse_npz(&archive, Some("w")).unwrap_err().to_string();
            assert!(e.contains("no array \"w\"") && e.contains("x, idx"), "{e}");
            let e = parse_npz(&archive, None).unwrap_err().to_string();
            assert!(
                e.contains("holds 2 arrays") && e.contains("FILE.npz:NAME"),
                "{e}"
            );
        }
        let single = zip_of(
            &[("only.npy", &to_bytes_f32(x.view()))],
            zip::CompressionMethod::Stored,
        );
        assert_eq!(parse_npz(&single, None).unwrap(), NpyArray::F32(x));
        let broken = zip_of(
            &[("x.npy", b"\x93NUMPY\x01")],
            zip::CompressionMethod::Stored,
        );
        let e = parse_npz(&broken, Some("x")).unwrap_err().to_string();
        assert!(e.contains("x.npy: truncated header"), "{e}");
        let e = parse_npz(b"not a zip", None).unwrap_err().to_string();
        assert!(e.contains("not a readable .npz"), "{e}");
    }

    #[test]
    fn sources_split_an_npz_member_off_the_path() {
        let (file, member, npz) = source(Path::new("dir/a.npz:x"));
        assert_eq!(
            (file, member, npz),
            (PathBuf::from("dir/a.npz"), Some("x"), true)
        );
        let (file, member, npz) = source(Path::new("dir/A.NPZ"));
        assert_eq!(
            (file, member, npz),
            (PathBuf::from("dir/A.NPZ"), None, true)
        );
        let (file, member, npz) = source(Path::new("c:/x.npy"));
        assert_eq!(
            (file, member, npz),
            (PathBuf::from("c:/x.npy"), None, false)
        );
    }
}
