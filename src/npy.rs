//! Minimal reader for `.npy` files holding a C-order little-endian f32
//! matrix (`<f4`, 2-D), e.g. ../shared/data/minilm-dev/base.npy.

use std::path::Path;

use crate::error::{Error, Result};

/// Rows × dim floats.
pub struct Matrix {
    pub rows: usize,
    pub dim: usize,
    pub data: Vec<f32>,
}

impl Matrix {
    pub fn row(&self, i: usize) -> &[f32] {
        &self.data[i * self.dim..(i + 1) * self.dim]
    }
}

pub fn parse(bytes: &[u8]) -> Result<Matrix> {
    let bad = |why: &str| Error::invalid(format!("not a supported .npy file: {why}"));
    if bytes.len() < 10 || &bytes[..6] != b"\x93NUMPY" {
        return Err(bad("missing \\x93NUMPY magic"));
    }
    let (header_len, start) = match bytes[6] {
        1 => (u16::from_le_bytes([bytes[8], bytes[9]]) as usize, 10),
        2 | 3 if bytes.len() >= 12 => (
            u32::from_le_bytes([bytes[8], bytes[9], bytes[10], bytes[11]]) as usize,
            12,
        ),
        v => return Err(bad(&format!("version {v}"))),
    };
    let header = bytes
        .get(start..start + header_len)
        .ok_or_else(|| bad("truncated header"))?;
    let header = std::str::from_utf8(header).map_err(|_| bad("header is not text"))?;
    if !header.contains("'descr': '<f4'") {
        return Err(bad("dtype must be little-endian float32 ('<f4')"));
    }
    if header.contains("'fortran_order': True") {
        return Err(bad("Fortran order is not supported"));
    }
    let shape = header
        .split("'shape': (")
        .nth(1)
        .and_then(|s| s.split(')').next())
        .ok_or_else(|| bad("no shape"))?;
    let dims: Vec<usize> = shape
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(|s| s.parse::<usize>().map_err(|_| bad("shape is not numeric")))
        .collect::<Result<_>>()?;
    let [rows, dim] = dims[..] else {
        return Err(bad("shape must be 2-D"));
    };
    let body = &bytes[start + header_len..];
    if body.len() != rows * dim * 4 {
        return Err(bad(&format!(
            "body is {} bytes, shape ({rows}, {dim}) needs {}",
            body.len(),
            rows * dim * 4
        )));
    }
    let data = crate::codec::f32_from_le(body)?;
    Ok(Matrix { rows, dim, data })
}

pub fn load(path: &Path) -> Result<Matrix> {
    let bytes =
        std::fs::read(path).map_err(|e| Error::io(format!("reading {}: {e}", path.display())))?;
    parse(&bytes).map_err(|e| e.context(path.display()))
}

#[cfg(test)]
/// `minilm-dev`, which ships in the workspace's `shared/data/`: under
/// `RUVECTOR_MINILM_DIR` when set, else in `shared/data/minilm-dev` of
/// the nearest ancestor of the crate that has one (`../shared` in the
/// main checkout, `../../shared` in a worktree under `wt/`). Missing, it
/// fails the test that needs it, saying where it looked: it is part of
/// the workspace, so its absence is a broken checkout, not a reason to
/// skip.
pub(crate) fn minilm_dev() -> std::path::PathBuf {
    if let Some(dir) = std::env::var_os("RUVECTOR_MINILM_DIR") {
        let dir = std::path::PathBuf::from(dir);
        assert!(
            dir.join("base.npy").is_file(),
            "RUVECTOR_MINILM_DIR={} has no base.npy",
            dir.display()
        );
        return dir;
    }
    let crate_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let tried: Vec<std::path::PathBuf> = crate_dir
        .ancestors()
        .skip(1)
        .map(|a| a.join("shared/data/minilm-dev"))
        .collect();
    match tried.iter().find(|d| d.join("base.npy").is_file()) {
        Some(d) => d.clone(),
        None => panic!(
            "the minilm-dev dataset that ships with the workspace is missing: no \
             shared/data/minilm-dev/base.npy in any ancestor of {} (tried {tried:?}); \
             restore it or point RUVECTOR_MINILM_DIR at a copy",
            crate_dir.display()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn npy(shape: &str, descr: &str, body: &[u8]) -> Vec<u8> {
        let mut header =
            format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
        while (10 + header.len() + 1) % 64 != 0 {
            header.push(' ');
        }
        header.push('\n');
        let mut out = b"\x93NUMPY\x01\x00".to_vec();
        out.extend_from_slice(&(header.len() as u16).to_le_bytes());
        out.extend_from_slice(header.as_bytes());
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn parses_f32_matrix_and_rejects_others() {
        let body = crate::codec::f32_to_le(&[1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
        let m = parse(&npy("(2, 3)", "<f4", &body)).unwrap();
        assert_eq!((m.rows, m.dim), (2, 3));
        assert_eq!(m.row(1), &[4.0, 5.0, 6.0]);
        assert!(parse(&npy("(2, 3)", "<f8", &body)).is_err());
        assert!(parse(&npy("(2, 4)", "<f4", &body)).is_err());
        assert!(parse(b"garbage").is_err());
    }

    #[test]
    fn reads_the_shared_minilm_set() {
        let dir = minilm_dev();
        let m = load(&dir.join("base.npy")).unwrap();
        assert_eq!((m.rows, m.dim), (10_000, 384));
        for i in [0, 4_999, 9_999] {
            let norm: f32 = m.row(i).iter().map(|x| x * x).sum::<f32>().sqrt();
            assert!((norm - 1.0).abs() < 1e-3, "row {i} is unit-norm: {norm}");
        }
        let q = load(&dir.join("queries.npy")).unwrap();
        assert_eq!((q.rows, q.dim), (200, 384));
        // The ground truth is int32: refused by name, not misread as floats.
        let err = match load(&dir.join("groundtruth.npy")) {
            Ok(g) => panic!(
                "int32 groundtruth.npy read as a {}x{} f32 matrix",
                g.rows, g.dim
            ),
            Err(e) => e,
        };
        assert!(err.message.contains("'<f4'"), "{err}");
    }
}
